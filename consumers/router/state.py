"""The router's memory per submissions partition, and its changelog (the router-state topic)."""

from __future__ import annotations

import json
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from sys import intern
from typing import Protocol

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


class DocumentLookup(Protocol):
    def get(self, doc_id: str, /) -> DocumentState | None: ...

    def __contains__(self, doc_id: object, /) -> bool: ...


class PartitionView(Protocol):
    """What routing decisions read of a partition's memory (a dict or a disk-backed store)."""

    @property
    def documents(self) -> DocumentLookup: ...

    @property
    def seen_messages(self) -> Container[str]: ...

    def message_digest(self, msg_id: str, /) -> str | None:
        """SHA-256 hex of the routed envelope's bytes with this message id ("" when the
        changelog record predates digests), or None for a message id not seen."""
        ...


class PartitionMemory(PartitionView, Protocol):
    """What the router does with it: apply its changelog records, expire old message ids."""

    def apply(self, change: StateChange) -> None: ...

    def expired_messages(self, now: datetime, window: timedelta) -> list[StateChange]: ...


def replay_cutoff_ms(now: datetime, window: timedelta) -> int:
    return int((now - window).timestamp() * 1000)


@dataclass(slots=True)
class PartitionState:
    """Documents routed and message ids seen (within the replay window) for one partition, in
    memory: routing's unit tests use it; the router keeps its memory in consumers.router.store."""

    documents: dict[str, DocumentState] = field(default_factory=dict)
    seen_messages: dict[str, int] = field(default_factory=dict)  # message id -> created_at ms
    digests: dict[str, str] = field(default_factory=dict)  # message id -> SHA-256 hex

    def message_digest(self, msg_id: str, /) -> str | None:
        if msg_id not in self.seen_messages:
            return None
        return self.digests.get(msg_id, "")

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
                self.digests.pop(msg_id, None)
            else:
                created_ms, digest = parse_message_value(change.value)
                self.seen_messages[msg_id] = created_ms
                if digest:
                    self.digests[msg_id] = digest

    def expired_messages(self, now: datetime, window: timedelta) -> list[StateChange]:
        """Tombstones for message ids older than the replay window: envelopes that old are
        refused as stale anyway, so remembering their ids buys nothing."""
        cutoff = replay_cutoff_ms(now, window)
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
    def message(msg_id: str, created_at_ms: int, digest: str = "") -> StateChange:
        """The value is "<created_at ms> <sha256 hex>"; records written before digests were
        kept hold the time alone, and parse_message_value reads both."""
        value = f"{created_at_ms} {digest}" if digest else str(created_at_ms)
        return StateChange(MSG_PREFIX + msg_id, value.encode())


def parse_message_value(value: bytes) -> tuple[int, str]:
    created_ms, _, digest = value.decode("ascii").partition(" ")
    return int(created_ms), digest
