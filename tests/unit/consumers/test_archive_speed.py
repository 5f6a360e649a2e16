"""What the archiver does to go faster must not change what it stores: the payload cache, the
batch leaf encoder, the one-statement document insert and the parse worker processes give what
the slow paths gave."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.archive.leaf import leaves, record_leaf
from consumers.archive.parse import (
    ArchiveTopics,
    Kind,
    ParseContext,
    PayloadCache,
    SourceRecord,
    parse_record,
)
from consumers.archive.pool import CHUNK, ParsePool, ParseSource, shard_of
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload, encode_envelope
from schemas.envelope import SignerRole
from signing.pkidir import PkiDirectory
from signing.seal import load_credential, seal
from tests.support import seed_document
from tests.unit.consumers.conftest import ARCHIVE_NOW

NOW = ARCHIVE_NOW
H26, BA_DINH = "000.00.00.H26", "000.00.31.H26"
TOPICS = ArchiveTopics("p.submissions", "p.deadletter", "p.inbox.")


def sealed(pki_root: Path, number: int) -> bytes:
    cred = load_credential(pki_root, H26, SignerRole.AGENCY)
    return encode_envelope(seal(seed_document(number, [BA_DINH]), credentials=[cred], at=NOW))


def source(topic: str, value: bytes, offset: int = 0) -> SourceRecord:
    return SourceRecord(topic, 0, offset, b"k", value, (), NOW)


def test_a_delivery_reuses_its_submissions_decoded_payload_and_parses_the_same(
    pki_root: Path,
) -> None:
    ctx = ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())
    cold = ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())
    raw = sealed(pki_root, 1)
    submission = parse_record(source(TOPICS.submissions, raw), ctx)
    delivery = parse_record(source(TOPICS.inbox_prefix + BA_DINH, raw, 1), ctx)
    assert ctx.payloads.hits == 1 and len(ctx.payloads) == 1
    assert submission.record.kind is Kind.SUBMISSION and delivery.record.kind is Kind.DELIVERY
    # The same answers as a context that never saw the submission.
    assert delivery == parse_record(source(TOPICS.inbox_prefix + BA_DINH, raw, 1), cold)
    assert submission == parse_record(source(TOPICS.submissions, raw), cold)


def test_the_payload_cache_returns_what_decoding_returns_and_stays_bounded(
    pki_root: Path,
) -> None:
    envelopes = [decode_envelope(sealed(pki_root, n)) for n in range(6)]
    size = len(envelopes[0].payload)
    cache = PayloadCache(max_entries=4)
    for env in envelopes:
        assert cache.decode(env) == decode_payload(env, validate=False)
    assert len(cache) == 4  # the least recently used went first
    assert cache.decode(envelopes[-1]) == decode_payload(envelopes[-1], validate=False)
    assert cache.hits == 1
    tiny = PayloadCache(max_bytes=16 * (size - 1))
    tiny.decode(envelopes[0])
    assert len(tiny) == 0  # larger than a sixteenth of the budget: decoded, not kept


def test_batch_leaves_are_byte_for_byte_the_leaves_of_record_leaf() -> None:
    at = datetime(2026, 11, 27, 3, 4, 5, 678901, tzinfo=UTC)
    records = [
        ("p.submissions", 0, 0, "m-1", bytes(range(32))),
        ("p.inbox.000.00.31.H26", 3, 17, None, bytes(32)),
        ("p.deadletter", 1, 2**40, 'quoted "Việt" \\ id', b"\xff" * 32),
    ]
    made = leaves(41, records, at)
    for i, ((topic, partition, offset, message_id, digest), got) in enumerate(
        zip(records, made, strict=True)
    ):
        assert got == record_leaf(
            seq=41 + i,
            topic=topic,
            partition=partition,
            offset=offset,
            message_id=message_id,
            sha256=digest,
            archived_at=at,
        )
    assert leaves(0, [], at) == []


@pytest.mark.parametrize(
    "bad",
    [
        ("t", -1, 0, None, bytes(32)),
        ("t", 0, -5, None, bytes(32)),
        ("t", 0, 0, None, bytes(31)),
        ("t", True, 0, None, bytes(32)),
        ("t", 0, 0, 7, bytes(32)),
    ],
)
def test_batch_leaves_refuse_what_a_verifier_would_refuse(bad: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        leaves(0, [bad], NOW)  # type: ignore[list-item]


def _mixed(pki_root: Path) -> list[SourceRecord]:
    """Submissions and their deliveries (same key, so the same shard), status-less inbox noise,
    bytes that do not parse and a dead letter: every path of parse_record, over both shards."""
    out = []
    for n in range(12):
        raw = sealed(pki_root, 100 + n)
        key = f"doc-{n}".encode()
        out.append(SourceRecord(TOPICS.submissions, n % 3, n, key, raw, (), NOW))
        out.append(SourceRecord(TOPICS.inbox_prefix + BA_DINH, 0, n, key, raw, (), NOW))
    out.append(SourceRecord(TOPICS.submissions, 0, 99, None, b"\x00garbage", (), NOW))
    letter = (("lt-reason", b"UNKNOWN_RECIPIENT"), ("lt-sender", H26.encode()))
    out.append(SourceRecord(TOPICS.deadletter, 0, 0, b"k", sealed(pki_root, 7), letter, NOW))
    return out


async def test_worker_processes_parse_exactly_what_the_archivers_own_process_parses(
    pki_root: Path,
) -> None:
    records = _mixed(pki_root)
    ctx = ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())
    source = ParseSource(TOPICS, PkiDirectory(pki_root).trust_config)
    inline = await ParsePool(ctx, None, 0).parse(records)
    pool = ParsePool(ctx, source, 2)
    try:
        # Chunks smaller than a batch, so results come back from several tasks per shard.
        for chunk in (CHUNK, 5):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr("consumers.archive.pool.CHUNK", chunk)
                assert await pool.parse(records) == inline
        assert {shard_of(r, 2) for r in records} == {0, 1}  # both workers had work
    finally:
        pool.close()
    assert [p.record.offset for p in inline] == [r.offset for r in records]
    assert sum(p.document is not None for p in inline) == 12
    assert sum(p.delivery is not None for p in inline) == 12


async def test_a_killed_worker_is_replaced_and_the_batch_parsed_again_whole(
    pki_root: Path,
) -> None:
    records = _mixed(pki_root)
    ctx = ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())
    inline = await ParsePool(ctx, None, 0).parse(records)
    pool = ParsePool(ctx, ParseSource(TOPICS, PkiDirectory(pki_root).trust_config), 2)
    try:
        assert await pool.parse(records) == inline
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(0.2)
        assert await pool.parse(records) == inline  # not one record lost or repeated
        assert pool.restarts == 1 and victim not in pool.pids()
    finally:
        pool.close()
    assert pool.pids() == []
