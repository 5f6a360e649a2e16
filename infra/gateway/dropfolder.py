"""The drop folder's file states: a file in in/ is sealed once, journalled, published until
Kafka acknowledges it, then moved to in/done/ (or, refused, to in/rejected/ with a reason).

Exactly once from the document system's point of view: the journal (fsync'd) holds the sealed
envelope and its message id under the file's SHA-256 *before* anything is published, so a
restart after a crash publishes the same bytes again (the router calls identical bytes
RESUBMITTED, not a second delivery) and the same file dropped again is not sent twice.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from infra.gateway.convert import Imported, flag_codes, import_edxml
from infra.gateway.nationalids import NationalIds
from producers.refusals import SendRefused
from schemas.codec import decode_envelope, encode_envelope
from schemas.document import OfficialDocument
from schemas.envelope import Envelope
from schemas.errors import SchemaError, ValidationError
from schemas.national import SignatureCheck

log = structlog.get_logger()
STATE_DIR = ".gateway"  # inside in/: hidden, so never taken for a dropped file
JOURNAL = "journal.jsonl"
DONE = "done"
REJECTED = "rejected"
# A document system writes a file under one of these names and renames it when complete.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial")


class Step(enum.StrEnum):
    SEAL = "seal"  # never seen: import, seal, journal
    PUBLISH = "publish"  # journalled, not acknowledged: publish the journalled envelope
    MOVE = "move"  # acknowledged: only the move to done/ is left


@dataclass(frozen=True, slots=True)
class JournalEntry:
    sha256: str
    name: str
    message_id: str
    document_id: str
    flags: tuple[str, ...] = ()
    acked: bool = False
    offset: int | None = None


def next_step(entry: JournalEntry | None) -> Step:
    """What is left to do for a file whose bytes have this journal entry."""
    if entry is None:
        return Step.SEAL
    return Step.MOVE if entry.acked else Step.PUBLISH


class Journal:
    """in/.gateway/journal.jsonl (one line per state change, last one wins) and the sealed
    envelopes beside it, <sha256>.avro. Every write is fsync'd before the caller goes on."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / JOURNAL
        self.dir.mkdir(parents=True, exist_ok=True)
        self._entries = self._load()

    def get(self, sha256: str) -> JournalEntry | None:
        return self._entries.get(sha256)

    def envelope(self, sha256: str) -> Envelope:
        return decode_envelope((self.dir / f"{sha256}.avro").read_bytes())

    def sealed(
        self, sha256: str, name: str, envelope: Envelope, flags: Sequence[str]
    ) -> JournalEntry:
        write_durably(self.dir / f"{sha256}.avro", encode_envelope(envelope))
        entry = JournalEntry(sha256, name, envelope.message_id, envelope.document_id, tuple(flags))
        self._append(entry)
        return entry

    def acked(self, entry: JournalEntry, offset: int) -> JournalEntry:
        done = replace(entry, acked=True, offset=offset)
        self._append(done)
        return done

    def _append(self, entry: JournalEntry) -> None:
        line = json.dumps(_record(entry), ensure_ascii=False) + "\n"
        with open(self.path, "ab+") as f:
            if f.tell() > 0:  # a line cut short by a crash must not swallow ours
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self._entries[entry.sha256] = entry

    def _load(self) -> dict[str, JournalEntry]:
        entries: dict[str, JournalEntry] = {}
        if not self.path.exists():
            return entries
        for line in self.path.read_text("utf-8").splitlines():
            try:
                row = json.loads(line)
                entry = JournalEntry(
                    row["sha256"], row["name"], row["message_id"], row["document_id"],
                    tuple(row.get("flags") or ()), bool(row.get("acked")), row.get("offset"),
                )  # fmt: skip
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line torn by a crash: its state change did not happen
            entries[entry.sha256] = entry
        return entries


def _record(entry: JournalEntry) -> dict[str, Any]:
    return {
        "sha256": entry.sha256,
        "name": entry.name,
        "message_id": entry.message_id,
        "document_id": entry.document_id,
        "flags": list(entry.flags),
        "acked": entry.acked,
        "offset": entry.offset,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one dropped file (one line of the gateway's output)."""

    name: str
    state: str  # sent, sent before, rejected (drop folder), refused (import command)
    document_id: str | None = None
    message_id: str | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None

    def line(self) -> str:
        if self.state in ("rejected", "refused"):
            return f"{self.name}  {self.state}  {self.reason}"
        flags = ",".join(self.flags) or "-"
        return (
            f"{self.name}  {self.state}  document_id={self.document_id} "
            f"message_id={self.message_id} flags={flags}"
        )


class Acknowledged(Protocol):
    @property
    def offset(self) -> int: ...


Seal = Callable[[Any, Sequence[str] | None], Envelope]
Publish = Callable[[Envelope], Awaitable[Acknowledged]]


class DropFolder:
    """in/ as a queue of edXML files. ``seal`` is DocumentSender.seal and ``publish`` its
    send_envelope; both are parameters so the states can be tested without Kafka."""

    def __init__(
        self,
        in_dir: Path,
        *,
        seal: Seal,
        publish: Publish,
        legacy_codes: Mapping[str, str] | None = None,
        verify: Callable[[bytes], SignatureCheck] | None = None,
        national_ids: NationalIds | None = None,
    ) -> None:
        self.in_dir = in_dir
        self._national_ids = national_ids
        for sub in (DONE, REJECTED):
            (in_dir / sub).mkdir(parents=True, exist_ok=True)
        self.journal = Journal(in_dir / STATE_DIR)
        self._seal = seal
        self._publish = publish
        self._legacy_codes = legacy_codes or {}
        self._verify = verify

    def pending(self) -> list[Path]:
        """Complete dropped files, by name: no folders, no hidden or partial files."""
        return sorted(
            p
            for p in self.in_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(PARTIAL_SUFFIXES)
        )

    async def run_once(self) -> list[Outcome]:
        return [await self.handle(path) for path in self.pending()]

    async def handle(self, path: Path) -> Outcome:
        # File work off the event loop: fsync must not starve the producer's heartbeats.
        data = await asyncio.to_thread(path.read_bytes)
        sha = hashlib.sha256(data).hexdigest()
        entry = self.journal.get(sha)
        # Acknowledged before (a crash before the move, or the same bytes dropped again).
        state = "sent before" if next_step(entry) is Step.MOVE else "sent"
        if next_step(entry) is Step.SEAL:
            try:
                signature = self._verify(data) if self._verify is not None else None
                ids = self._national_ids
                imported = import_edxml(
                    data,
                    legacy_codes=self._legacy_codes,
                    signature=signature,
                    index=ids.index() if ids is not None else None,
                )
                envelope = self._seal(imported.payload, _recipients(imported))
            except (SchemaError, ValidationError, SendRefused, ValueError) as exc:
                return await asyncio.to_thread(self.reject, path, _reason(exc))
            flags = flag_codes(imported.national)
            if ids is not None and isinstance(imported.payload, OfficialDocument):
                await asyncio.to_thread(ids.remember, imported.payload)
            entry = await asyncio.to_thread(self.journal.sealed, sha, path.name, envelope, flags)
        assert entry is not None
        if next_step(entry) is Step.PUBLISH:
            try:
                ack = await self._publish(await asyncio.to_thread(self.journal.envelope, sha))
            except SendRefused as exc:
                return await asyncio.to_thread(self.reject, path, _reason(exc))
            entry = await asyncio.to_thread(self.journal.acked, entry, ack.offset)
        await asyncio.to_thread(self.move, path, self.in_dir / DONE)
        outcome = Outcome(path.name, state, entry.document_id, entry.message_id, entry.flags)
        log.info("gateway.file", file=path.name, state=state, message_id=entry.message_id)
        return outcome

    def reject(self, path: Path, reason: str) -> Outcome:
        target = self.move(path, self.in_dir / REJECTED)
        write_durably(target.with_name(target.name + ".reason.txt"), (reason + "\n").encode())
        log.warning("gateway.rejected", file=path.name, reason=reason)
        return Outcome(path.name, "rejected", reason=reason)

    def move(self, path: Path, folder: Path) -> Path:
        target = folder / path.name
        if target.exists():  # a file of the same name dropped earlier: keep both
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            target = folder / f"{digest}-{path.name}"
        os.replace(path, target)
        _fsync_dir(folder)
        _fsync_dir(path.parent)
        return target


def _recipients(imported: Imported) -> list[str] | None:
    return list(imported.recipients) or None


def _reason(exc: Exception) -> str:
    kind = getattr(exc, "reason_code", None) or getattr(exc, "reason", None) or type(exc).__name__
    return f"{kind}: {exc}" if str(kind) not in str(exc) else str(exc)


def write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
