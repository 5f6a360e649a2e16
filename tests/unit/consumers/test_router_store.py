"""The router's on-disk memory: transactions that follow Kafka's, a bounded cache, checkpoints
that decide where a restore starts, expiry by the age index, one slot per live process."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.router.state import DocumentState, PartitionState, StateChange
from consumers.router.store import DB_FILE, Checkpoint, RouterStore, StoredPartition, claim_slot

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
H26, BA_DINH = "000.00.00.H26", "000.00.31.H26"


def doc(n: int, statuses: dict[str, list[str]] | None = None) -> DocumentState:
    return DocumentState(H26, (BA_DINH,), "OFFICIAL_DOCUMENT", NOW_MS + n, statuses or {})


def doc_id(n: int) -> str:
    return f"{H26},2026/11/27,{n}/QĐ-UBND"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RouterStore]:
    opened = RouterStore.open(tmp_path)
    yield opened
    opened.close()


def at(next_offset: int) -> Checkpoint:
    """A checkpoint whose last record was a message id, just before next_offset."""
    return Checkpoint(next_offset, next_offset - 1, f"msg:m{next_offset - 1}")


def routed(store: RouterStore, part: int, n: int, next_offset: int) -> None:
    store.begin()
    store.apply(part, StateChange.document(doc_id(n), doc(n)))
    store.apply(part, StateChange.message(f"m{n}", NOW_MS))
    store.commit({part: at(next_offset)})


def test_a_batch_reads_its_own_writes_and_commit_keeps_them_with_the_checkpoint(
    tmp_path: Path,
) -> None:
    store = RouterStore.open(tmp_path)
    state = StoredPartition(store, 3)
    store.begin()
    state.apply(StateChange.document(doc_id(1), doc(1)))
    state.apply(StateChange.message("m1", NOW_MS))
    assert doc_id(1) in state.documents and "m1" in state.seen_messages  # before commit
    assert state.documents.get(doc_id(1)) == doc(1)
    store.commit({3: at(42)})
    store.close()

    reopened = RouterStore.open(tmp_path)
    try:
        again = StoredPartition(reopened, 3)
        assert again.documents.get(doc_id(1)) == doc(1) and "m1" in again.seen_messages
        assert reopened.checkpoint(3) == at(42) and reopened.checkpoint(4) is None
        assert doc_id(1) not in StoredPartition(reopened, 4).documents  # partitions apart
    finally:
        reopened.close()


def test_rollback_forgets_the_aborted_batch_even_what_the_cache_had_seen(
    store: RouterStore,
) -> None:
    routed(store, 0, 1, next_offset=2)
    state = StoredPartition(store, 0)
    assert state.documents.get(doc_id(1)) == doc(1)  # now cached
    store.begin()
    state.apply(StateChange.document(doc_id(1), doc(1, {BA_DINH: ["01"]})))
    state.apply(StateChange.document(doc_id(2), doc(2)))
    state.apply(StateChange.message("m2", NOW_MS))
    assert state.documents.get(doc_id(1)) == doc(1, {BA_DINH: ["01"]})
    store.rollback()
    assert state.documents.get(doc_id(1)) == doc(1)
    assert doc_id(2) not in state.documents and "m2" not in state.seen_messages
    assert store.checkpoint(0) == at(2)


def test_changes_outside_a_transaction_are_refused(store: RouterStore) -> None:
    with pytest.raises(RuntimeError, match="begin"):
        store.apply(0, StateChange.message("m1", NOW_MS))


def test_tombstones_delete(store: RouterStore) -> None:
    routed(store, 0, 1, next_offset=2)
    state = StoredPartition(store, 0)
    state.documents.get(doc_id(1))
    store.begin()
    state.apply(StateChange("doc:" + doc_id(1), None))
    state.apply(StateChange("msg:m1", None))
    store.commit({0: at(4)})
    assert state.documents.get(doc_id(1)) is None and doc_id(1) not in state.documents
    assert "m1" not in state.seen_messages


def test_the_cache_keeps_only_the_most_recently_used_documents(tmp_path: Path) -> None:
    store = RouterStore.open(tmp_path, cache_documents=3)
    try:
        store.begin()
        for n in range(10):
            store.apply(0, StateChange.document(doc_id(n), doc(n)))
        store.commit({0: at(10)})
        state = StoredPartition(store, 0)
        for n in range(10):
            assert state.documents.get(doc_id(n)) == doc(n)
        assert store.cached() == 3
        assert state.documents.get(doc_id(7)) is state.documents.get(doc_id(7))  # a cache hit
        state.documents.get(doc_id(0))  # evicts the least recently used: 8
        assert [k[1] for k in store._cache] == [doc_id(9), doc_id(7), doc_id(0)]
    finally:
        store.close()


def test_a_restore_continues_from_the_checkpoint_when_the_log_still_has_it(
    store: RouterStore,
) -> None:
    routed(store, 5, 1, next_offset=10)
    assert store.restart_point(5, log_start=0, log_end=12) == at(10)
    assert store.restart_point(5, log_start=0, log_end=10) == at(10)  # nothing new
    assert doc_id(1) in StoredPartition(store, 5).documents


@pytest.mark.parametrize(
    ("log_start", "log_end"),
    [(11, 20), (0, 9)],
    ids=["checkpoint-below-log-start", "checkpoint-beyond-log-end"],
)
def test_a_checkpoint_the_log_cannot_continue_means_a_restore_from_scratch(
    store: RouterStore, log_start: int, log_end: int
) -> None:
    routed(store, 5, 1, next_offset=10)
    routed(store, 6, 2, next_offset=3)
    assert store.restart_point(5, log_start, log_end) is None
    assert doc_id(1) not in StoredPartition(store, 5).documents
    assert "m1" not in StoredPartition(store, 5).seen_messages
    assert store.checkpoint(5) is None
    assert doc_id(2) in StoredPartition(store, 6).documents  # other partitions untouched


def test_a_checkpoint_without_a_last_record_holds_only_at_the_log_start(
    store: RouterStore,
) -> None:
    store.begin()
    store.commit({1: Checkpoint(0), 2: Checkpoint(3)})  # restored from logs with no records
    assert store.restart_point(1, log_start=0, log_end=5) == Checkpoint(0)
    assert store.restart_point(2, log_start=0, log_end=5) is None  # what log was that?


def test_another_schema_version_is_dropped_it_is_only_a_cache(tmp_path: Path) -> None:
    store = RouterStore.open(tmp_path)
    routed(store, 0, 1, next_offset=2)
    store.db.execute("PRAGMA user_version=0")
    store.close()
    again = RouterStore.open(tmp_path)
    try:
        assert again.checkpoint(0) is None and doc_id(1) not in StoredPartition(again, 0).documents
    finally:
        again.close()


def test_without_a_checkpoint_leftover_rows_are_wiped(store: RouterStore) -> None:
    store.begin()
    store.apply(1, StateChange.document(doc_id(1), doc(1)))
    store.commit({})
    assert store.restart_point(1, log_start=0, log_end=5) is None
    assert doc_id(1) not in StoredPartition(store, 1).documents


def test_expiry_finds_old_message_ids_by_the_age_index(store: RouterStore) -> None:
    window = timedelta(days=7)
    store.begin()
    for n, age in enumerate([timedelta(days=8), timedelta(days=6), timedelta(days=30)]):
        store.apply(2, StateChange.message(f"m{n}", int((NOW - age).timestamp() * 1000)))
    store.apply(3, StateChange.message("other", int((NOW - timedelta(days=9)).timestamp() * 1000)))
    store.commit({2: at(3), 3: at(1)})
    state = StoredPartition(store, 2)
    expired = state.expired_messages(NOW, window)
    assert sorted(c.key for c in expired) == ["msg:m0", "msg:m2"]
    assert all(c.value is None for c in expired)
    reference = PartitionState()
    for n, age in enumerate([timedelta(days=8), timedelta(days=6), timedelta(days=30)]):
        reference.apply(StateChange.message(f"m{n}", int((NOW - age).timestamp() * 1000)))
    assert sorted(expired, key=str) == sorted(reference.expired_messages(NOW, window), key=str)
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT msg_id FROM messages WHERE part = ? AND created_at_ms < ?",
        (2, NOW_MS),
    ).fetchall()
    assert "messages_by_age" in str(plan)


def test_two_live_stores_in_one_directory_get_a_slot_each_and_a_restart_reuses_one(
    tmp_path: Path,
) -> None:
    first = RouterStore.open(tmp_path)
    second = RouterStore.open(tmp_path)
    try:
        assert first.path.parent != second.path.parent
        assert {first.path.parent.name, second.path.parent.name} == {"0", "1"}
        routed(first, 0, 1, next_offset=2)
    finally:
        second.close()
        first.close()
    restarted = RouterStore.open(tmp_path)  # both free again: the first slot, with its data
    try:
        assert restarted.path == first.path and restarted.checkpoint(0) == at(2)
        assert doc_id(1) in StoredPartition(restarted, 0).documents
    finally:
        restarted.close()


def test_a_slot_held_by_someone_is_skipped(tmp_path: Path) -> None:
    slot, fd = claim_slot(tmp_path)
    try:
        store = RouterStore.open(tmp_path)
        assert store.path.parent != slot
        store.close()
    finally:
        os.close(fd)


def test_an_unreadable_database_is_replaced_it_is_only_a_cache(tmp_path: Path) -> None:
    slot = tmp_path / "0"
    slot.mkdir()
    (slot / DB_FILE).write_bytes(b"not a database, " * 512)
    store = RouterStore.open(tmp_path)
    try:
        assert store.path == slot / DB_FILE and store.checkpoint(0) is None
        routed(store, 0, 1, next_offset=2)
    finally:
        store.close()


def test_the_store_behaves_like_the_in_memory_state_routing_is_tested_with(
    store: RouterStore,
) -> None:
    changes = [
        StateChange.document(doc_id(1), doc(1)),
        StateChange.message("m1", NOW_MS),
        StateChange.document(doc_id(2), doc(2)),
        StateChange.document(doc_id(1), doc(1, {BA_DINH: ["01", "03"]})),
        StateChange("doc:" + doc_id(2), None),
        StateChange.message("m2", NOW_MS),
        StateChange("msg:m1", None),
    ]
    memory, stored = PartitionState(), StoredPartition(store, 0)
    store.begin()
    for change in changes:
        memory.apply(change)
        stored.apply(change)
    store.commit({0: at(len(changes))})
    for n in (1, 2, 3):
        assert stored.documents.get(doc_id(n)) == memory.documents.get(doc_id(n))
        assert (doc_id(n) in stored.documents) == (doc_id(n) in memory.documents)
    for m in ("m1", "m2", "m3"):
        assert (m in stored.seen_messages) == (m in memory.seen_messages)
    assert len(stored.documents) == 1 and len(stored.seen_messages) == 1


def test_python_memory_stays_flat_however_many_documents_are_stored(tmp_path: Path) -> None:
    store = RouterStore.open(tmp_path, cache_documents=100)
    try:
        state = StoredPartition(store, 0)

        def add(first: int, count: int) -> None:
            store.begin()
            for n in range(first, first + count):
                state.apply(StateChange.document(doc_id(n), doc(n, {BA_DINH: ["01"]})))
                state.apply(StateChange.message(f"m{n}", NOW_MS))
                state.documents.get(doc_id(n))
            store.commit({0: at(first + count)})

        add(0, 1_000)  # warm: cache full, statements prepared
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            add(1_000, 5_000)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(state.documents) == 6_000
        # In dicts, 5 000 documents and message ids took ~3.7 MB (~770 B each); here only the
        # cache's 100 documents turn over.
        assert grown < 300_000, grown
    finally:
        store.close()
