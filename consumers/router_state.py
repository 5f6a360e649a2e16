"""The router's memory per submissions partition, and its changelog (the router-state topic)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from sys import intern

DOC_PREFIX = "doc:"
MSG_PREFIX = "msg:"


@dataclass(slots=True)
class DocumentState:
    """What the router has routed about one document (or report): enough to route its statuses."""

    sender: str
    recipients: tuple[str, ...]
    kind: str  # payload type of the original
    routed_at_ms: int
    # Per recipient agency: the status codes of its (document, recipient) history, oldest first,
    # including the sender's revocation requests (13) addressed to it.
    statuses: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "sender": self.sender,
                "recipients": list(self.recipients),
                "kind": self.kind,
                "routed_at_ms": self.routed_at_ms,
                "statuses": self.statuses,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DocumentState:
        raw = json.loads(data)
        # The router keeps one of these per routed document: interning the few hundred agency
        # codes and the handful of kinds and status codes shares them across all documents.
        return cls(
            intern(raw["sender"]),
            tuple(intern(r) for r in raw["recipients"]),
            intern(raw["kind"]),
            int(raw["routed_at_ms"]),
            {intern(k): [intern(c) for c in v] for k, v in raw.get("statuses", {}).items()},
        )


@dataclass(slots=True)
class PartitionState:
    """Documents routed and message ids seen (within the replay window) for one partition."""

    documents: dict[str, DocumentState] = field(default_factory=dict)
    seen_messages: dict[str, int] = field(default_factory=dict)  # message id -> created_at ms

    def apply(self, change: StateChange) -> None:
        if change.key.startswith(DOC_PREFIX):
            doc_id = change.key.removeprefix(DOC_PREFIX)
            if change.value is None:
                self.documents.pop(doc_id, None)
            else:
                self.documents[doc_id] = DocumentState.from_json(change.value)
        elif change.key.startswith(MSG_PREFIX):
            msg_id = change.key.removeprefix(MSG_PREFIX)
            if change.value is None:
                self.seen_messages.pop(msg_id, None)
            else:
                self.seen_messages[msg_id] = int(change.value)

    def expired_messages(self, now: datetime, window: timedelta) -> list[StateChange]:
        """Tombstones for message ids older than the replay window: envelopes that old are
        refused as stale anyway, so remembering their ids buys nothing."""
        cutoff = int((now - window).timestamp() * 1000)
        return [
            StateChange(MSG_PREFIX + m, None) for m, at in self.seen_messages.items() if at < cutoff
        ]


@dataclass(frozen=True, slots=True)
class StateChange:
    """One changelog record: key and value (None = tombstone)."""

    key: str
    value: bytes | None

    @staticmethod
    def document(doc_id: str, state: DocumentState) -> StateChange:
        return StateChange(DOC_PREFIX + doc_id, state.to_json())

    @staticmethod
    def message(msg_id: str, created_at_ms: int) -> StateChange:
        return StateChange(MSG_PREFIX + msg_id, str(created_at_ms).encode())
