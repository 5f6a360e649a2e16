"""The router's memory on disk: one SQLite database per router process, a bounded cache of
decoded documents in front of it, and the router-state changelog behind it as the truth.

Like a Kafka Streams state store: changes of a batch are applied inside an open SQLite
transaction (routing reads its own writes), committed only once the batch's Kafka transaction
has committed and rolled back when it aborts. Each commit records per partition the changelog
offset up to which the rows are complete, so a restart or a re-assignment reads only the tail
of the changelog instead of all of it.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from consumers.router.state import (
    DOC_PREFIX,
    MSG_PREFIX,
    DocumentState,
    StateChange,
    parse_message_value,
    replay_cutoff_ms,
)

CACHE_DOCUMENTS = 4096  # decoded DocumentStates kept in memory, most recently used
PAGE_CACHE_KIB = 8192  # SQLite's own page cache, per connection
DB_FILE = "store.sqlite"
SCHEMA_VERSION = 2  # a store of another version is dropped and restored afresh: it is a cache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    part INTEGER NOT NULL, doc_id TEXT NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (part, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    part INTEGER NOT NULL, msg_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
    digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (part, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_age ON messages (part, created_at_ms);
-- Every committed changelog record of the partition below next_offset is in the tables above;
-- the last of them (offset and key) tells whether the log is still the one they came from.
CREATE TABLE IF NOT EXISTS checkpoints (
    part INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL, last_offset INTEGER, last_key TEXT
);
"""
_DROP = """
DROP TABLE IF EXISTS documents; DROP TABLE IF EXISTS messages; DROP TABLE IF EXISTS checkpoints;
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far into a partition's changelog the store is: all committed records below
    next_offset applied, the last of them at last_offset with last_key (None: none yet)."""

    next_offset: int
    last_offset: int | None = None
    last_key: str | None = None


_PUT_DOCUMENT = "INSERT OR REPLACE INTO documents (part, doc_id, state) VALUES (?, ?, ?)"
_DROP_DOCUMENT = "DELETE FROM documents WHERE part = ? AND doc_id = ?"
_PUT_MESSAGE = (
    "INSERT OR REPLACE INTO messages (part, msg_id, created_at_ms, digest) VALUES (?, ?, ?, ?)"
)
_DROP_MESSAGE = "DELETE FROM messages WHERE part = ? AND msg_id = ?"


def claim_slot(root: Path) -> tuple[Path, int]:
    """A directory under root that no other live process holds, and the descriptor holding it:
    the first free existing slot (a restarted router finds its predecessor's store there), else
    a new one. An flock, so the kernel releases it however its holder dies."""
    root.mkdir(parents=True, exist_ok=True)
    existing = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())
    for n in itertools.chain(existing, itertools.count(max(existing, default=-1) + 1)):
        slot = root / str(n)
        slot.mkdir(exist_ok=True)
        fd = os.open(slot / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise AssertionError("unreachable: slots are counted without end")


class RouterStore:
    """Documents and message ids of every partition this process has held, with checkpoints."""

    def __init__(
        self, path: Path, *, cache_documents: int = CACHE_DOCUMENTS, lock_fd: int | None = None
    ) -> None:
        self.path = path
        self.cache_documents = cache_documents
        self._lock_fd = lock_fd
        self._cache: OrderedDict[tuple[int, str], DocumentState] = OrderedDict()
        # Autocommit mode: transactions are opened and closed explicitly, around Kafka's.
        self.db = sqlite3.connect(path, isolation_level=None)
        try:
            # No fsync per commit: the changelog is the truth, so a power cut may cost the last
            # commits of this cache, which the next restore reads again from the checkpoint. WAL
            # with synchronous=NORMAL (unlike OFF) keeps the file consistent through a power cut,
            # so the rows and their checkpoint never disagree; only WAL checkpoints fsync.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self.db.executescript(_DROP)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.executescript(_SCHEMA)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, root: Path, *, cache_documents: int = CACHE_DOCUMENTS) -> RouterStore:
        """The store in a slot of root that this process claims until close()."""
        slot, fd = claim_slot(root)
        try:
            try:
                return cls(slot / DB_FILE, cache_documents=cache_documents, lock_fd=fd)
            except sqlite3.DatabaseError:
                # Unreadable (damaged, or not a database): it is only a cache, start afresh.
                for stale in slot.glob(DB_FILE + "*"):
                    stale.unlink()
                return cls(slot / DB_FILE, cache_documents=cache_documents, lock_fd=fd)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()
        self._cache.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the slot
            self._lock_fd = None

    # --- transactions, mirroring Kafka's ---------------------------------------------------

    def begin(self) -> None:
        self.db.execute("BEGIN")

    def commit(self, checkpoints: Mapping[int, Checkpoint]) -> None:
        """Make the open transaction's changes durable, with how far into the changelog of each
        partition they reach (partitions not named keep their checkpoint)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)",
            [(p, c.next_offset, c.last_offset, c.last_key) for p, c in checkpoints.items()],
        )
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self._cache.clear()  # it may hold documents the aborted transaction changed

    def apply(self, part: int, change: StateChange) -> None:
        if not self.db.in_transaction:
            raise RuntimeError("state changes are applied inside a transaction: begin() first")
        if change.key.startswith(DOC_PREFIX):
            doc_id = change.key[len(DOC_PREFIX) :]
            self._cache.pop((part, doc_id), None)
            if change.value is None:
                self.db.execute(_DROP_DOCUMENT, (part, doc_id))
            else:
                self.db.execute(_PUT_DOCUMENT, (part, doc_id, change.value))
        elif change.key.startswith(MSG_PREFIX):
            msg_id = change.key[len(MSG_PREFIX) :]
            if change.value is None:
                self.db.execute(_DROP_MESSAGE, (part, msg_id))
            else:
                created_ms, digest = parse_message_value(change.value)
                self.db.execute(_PUT_MESSAGE, (part, msg_id, created_ms, digest))

    # --- reads -------------------------------------------------------------------------------

    def document(self, part: int, doc_id: str) -> DocumentState | None:
        """The document's state; shared with the cache, so callers must not mutate it."""
        key = (part, doc_id)
        doc = self._cache.get(key)
        if doc is not None:
            self._cache.move_to_end(key)
            return doc
        row = self.db.execute(
            "SELECT state FROM documents WHERE part = ? AND doc_id = ?", key
        ).fetchone()
        if row is None:
            return None
        doc = DocumentState.from_json(row[0])
        self._cache[key] = doc
        if len(self._cache) > self.cache_documents:
            self._cache.popitem(last=False)
        return doc

    def has_document(self, part: int, doc_id: str) -> bool:
        if (part, doc_id) in self._cache:
            return True
        sql = "SELECT 1 FROM documents WHERE part = ? AND doc_id = ?"
        return self.db.execute(sql, (part, doc_id)).fetchone() is not None

    def has_message(self, part: int, msg_id: str) -> bool:
        return self.message_digest(part, msg_id) is not None

    def message_digest(self, part: int, msg_id: str) -> str | None:
        sql = "SELECT digest FROM messages WHERE part = ? AND msg_id = ?"
        row = self.db.execute(sql, (part, msg_id)).fetchone()
        return None if row is None else str(row[0])

    def messages_before(self, part: int, cutoff_ms: int) -> list[str]:
        sql = "SELECT msg_id FROM messages WHERE part = ? AND created_at_ms < ?"  # messages_by_age
        return [m for (m,) in self.db.execute(sql, (part, cutoff_ms))]

    def count(self, part: int, table: str) -> int:
        assert table in {"documents", "messages"}
        sql = f"SELECT count(*) FROM {table} WHERE part = ?"
        return int(self.db.execute(sql, (part,)).fetchone()[0])

    def cached(self) -> int:
        return len(self._cache)

    # --- restore -----------------------------------------------------------------------------

    def checkpoint(self, part: int) -> Checkpoint | None:
        sql = "SELECT next_offset, last_offset, last_key FROM checkpoints WHERE part = ?"
        row = self.db.execute(sql, (part,)).fetchone()
        return None if row is None else Checkpoint(*row)

    def restart_point(self, part: int, log_start: int, log_end: int) -> Checkpoint | None:
        """The checkpoint to continue the partition's changelog from, if the log still holds
        everything after it; else None, having wiped the partition (restore from the start).
        The caller still checks that the log holds the checkpoint's last record."""
        checkpoint = self.checkpoint(part)
        if checkpoint is not None and log_start <= checkpoint.next_offset <= log_end:
            if checkpoint.last_offset is not None or checkpoint.next_offset == log_start:
                return checkpoint
        self.wipe(part)
        return None

    def wipe(self, part: int) -> None:
        in_transaction = self.db.in_transaction
        if not in_transaction:
            self.db.execute("BEGIN")
        for table in ("documents", "messages", "checkpoints"):
            self.db.execute(f"DELETE FROM {table} WHERE part = ?", (part,))
        if not in_transaction:
            self.db.execute("COMMIT")
        self.forget(part)

    def forget(self, part: int) -> None:
        """Drop the partition's cached documents: someone else may change them meanwhile."""
        for key in [k for k in self._cache if k[0] == part]:
            del self._cache[key]


class StoredPartition:
    """One partition's memory in the store, as routing reads it and the router applies to it."""

    __slots__ = ("_part", "_store", "documents", "seen_messages")

    def __init__(self, store: RouterStore, part: int) -> None:
        self._store = store
        self._part = part
        self.documents = StoredDocuments(store, part)
        self.seen_messages = StoredMessages(store, part)

    def apply(self, change: StateChange) -> None:
        self._store.apply(self._part, change)

    def message_digest(self, msg_id: str, /) -> str | None:
        return self._store.message_digest(self._part, msg_id)

    def expired_messages(self, now: datetime, window: timedelta) -> list[StateChange]:
        """Tombstones for message ids older than the replay window (by the age index)."""
        expired = self._store.messages_before(self._part, replay_cutoff_ms(now, window))
        return [StateChange(MSG_PREFIX + m, None) for m in expired]


class StoredDocuments:
    __slots__ = ("_part", "_store")

    def __init__(self, store: RouterStore, part: int) -> None:
        self._store = store
        self._part = part

    def get(self, doc_id: str, /) -> DocumentState | None:
        return self._store.document(self._part, doc_id)

    def __contains__(self, doc_id: object, /) -> bool:
        return isinstance(doc_id, str) and self._store.has_document(self._part, doc_id)

    def __len__(self) -> int:
        return self._store.count(self._part, "documents")


class StoredMessages:
    __slots__ = ("_part", "_store")

    def __init__(self, store: RouterStore, part: int) -> None:
        self._store = store
        self._part = part

    def __contains__(self, msg_id: object, /) -> bool:
        return isinstance(msg_id, str) and self._store.has_message(self._part, msg_id)

    def __len__(self) -> int:
        return self._store.count(self._part, "messages")
