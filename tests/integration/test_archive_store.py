"""The batch writer keeps the one-row-at-a-time semantics: documents, outcomes, every table."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from consumers.archive import store
from consumers.archive.leaf import archive_time
from consumers.archive.parse import ArchiveTopics, ParseContext, Parsed, SourceRecord, parse_record
from consumers.archive.pool import ParsePool, ParseSource
from consumers.archive.tree import load_right_edge
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope, encode_payload
from schemas.common import AgencyRef, SecrecyMarking
from schemas.envelope import Envelope, SignerRole
from schemas.status import StatusCode, StatusNotice
from signing.envelope import sign_envelope
from signing.merkle import RightEdge, append_leaves
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from tests.integration.test_archive import archive_db  # noqa: F401 (fixture)
from tests.support import fresh_database, seed_document

NOW = datetime.now(UTC).replace(microsecond=0)
H26, BA_DINH, HBT = "000.00.00.H26", "000.00.31.H26", "000.00.32.H26"
TOPICS = ArchiveTopics("s.submissions", "s.deadletter", "s.inbox.")


@pytest.fixture(scope="module")
def ctx_and_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[ParseContext, Path]:
    root = tmp_path_factory.mktemp("pki")
    pki = PkiDirectory(root)
    pki.init(now=NOW - timedelta(days=1))
    for code in (H26, BA_DINH):
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
    ctx = ParseContext(TOPICS, pki.trust_store(), AgencyDirectory.default())
    return ctx, root


async def test_documents_of_a_batch_go_in_once_first_submission_first_with_their_arrays(
    archive_db: str,  # noqa: F811
    ctx_and_root: tuple[ParseContext, Path],
) -> None:
    ctx, root = ctx_and_root
    cred = load_credential(root, H26, SignerRole.AGENCY)
    one = encode_envelope(seal(seed_document(1, [BA_DINH, HBT]), credentials=[cred], at=NOW))
    two = encode_envelope(seal(seed_document(2, [HBT]), credentials=[cred], at=NOW))
    # The same submission twice (a producer retry that made it to the topic), then another.
    parsed = [
        parse_record(SourceRecord(TOPICS.submissions, 0, o, b"k", v, (), NOW), ctx)
        for o, v in enumerate([one, one, two])
    ]
    at = archive_time(NOW)
    rows = store.leaf_rows(0, parsed, at)
    _, nodes = append_leaves(RightEdge.empty(), 0, [r.leaf_hash for r in rows])
    conn = await asyncpg.connect(archive_db)
    try:
        async with conn.transaction():
            await store.write_batch(conn, rows, nodes, {(TOPICS.submissions, 0): 3})
        got = await conn.fetch(
            "SELECT document_id, submission_seq, recipients, copies, subject, subject_folded,"
            " search IS NOT NULL AS searchable, signatures, signer"
            " FROM document ORDER BY submission_seq"
        )
    finally:
        await conn.close()
    first, second = (p.document for p in (parsed[0], parsed[2]))
    assert first is not None and second is not None
    assert [(r["document_id"], r["submission_seq"]) for r in got] == [
        (first.document_id, 0),
        (second.document_id, 2),
    ]
    assert list(got[0]["recipients"]) == [BA_DINH, HBT] == list(first.recipients)
    assert list(got[0]["copies"]) == list(first.copies)
    assert got[0]["subject"] == first.subject and got[0]["searchable"]
    assert got[0]["subject_folded"] and got[0]["subject_folded"] == got[0]["subject_folded"].lower()
    assert store.dumps(first.signatures) is not None and got[0]["signatures"] is not None


def _letter(value: bytes, key: bytes | None, headers: dict[str, str], offset: int) -> SourceRecord:
    encoded = tuple((k, v.encode()) for k, v in headers.items())
    return SourceRecord(TOPICS.deadletter, 0, offset, key, value, encoded, NOW)


def _mixed_records(root: Path) -> list[SourceRecord]:
    """A multi-recipient document and its deliveries, a secret document and its secret dead
    letter, a rejected document, a delivery read before its submission, a document never
    routed, and an agency's status notice: every row kind a batch can carry."""
    cred = load_credential(root, H26, SignerRole.AGENCY)
    multi = encode_envelope(seal(seed_document(11, [BA_DINH, HBT]), credentials=[cred], at=NOW))
    doc = dataclasses.replace(seed_document(12, [BA_DINH]), secrecy=SecrecyMarking.MAT)
    ptype, identity, body = encode_payload(doc, validate=False)
    env = Envelope("m-secret", ptype, identity, body, doc.document_id, H26, (BA_DINH,), NOW)
    secret = encode_envelope(
        sign_envelope(env, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=NOW)
    )
    rejected_env = seal(seed_document(13, [HBT]), credentials=[cred], at=NOW)
    rejected = encode_envelope(rejected_env)
    late = encode_envelope(seal(seed_document(14, [BA_DINH]), credentials=[cred], at=NOW))
    never = encode_envelope(seal(seed_document(15, [HBT]), credentials=[cred], at=NOW))
    notice = StatusNotice(
        seed_document(11, []).document_id, AgencyRef(BA_DINH, "Ba Đình"), StatusCode.ARRIVED, NOW
    )
    ba_cred = load_credential(root, BA_DINH, SignerRole.AGENCY)
    status = encode_envelope(seal(notice, credentials=[ba_cred], at=NOW, recipients=[H26]))
    sub, inbox = TOPICS.submissions, TOPICS.inbox_prefix
    return [
        SourceRecord(sub, 0, 0, b"k", multi, (), NOW),
        SourceRecord(inbox + BA_DINH, 0, 0, b"k", multi, (), NOW),
        SourceRecord(inbox + HBT, 0, 0, b"k", multi, (), NOW),
        SourceRecord(sub, 0, 1, b"k", secret, (), NOW),
        _letter(
            b"",
            None,
            {
                "lt-reason": "SECRET_DOCUMENT",
                "lt-sha256": hashlib.sha256(secret).hexdigest(),
                "lt-sender": H26,
            },
            0,
        ),
        SourceRecord(sub, 1, 0, b"k", rejected, (), NOW),
        _letter(
            rejected,
            rejected_env.document_id.encode(),
            {"lt-reason": "UNKNOWN_RECIPIENT", "lt-detail": "no inbox", "lt-sender": H26},
            1,
        ),
        SourceRecord(inbox + BA_DINH, 0, 1, b"k", late, (), NOW),
        SourceRecord(sub, 1, 1, b"k", late, (), NOW),
        SourceRecord(sub, 1, 2, b"k", never, (), NOW),
        SourceRecord(inbox + H26, 0, 0, b"k", status, (), NOW),
    ]


async def _write_in_batches(url: str, parsed: list[Parsed], size: int) -> dict[str, list[Any]]:
    """Write `parsed` in batches of `size` as the archiver does, then every table's rows."""
    at = archive_time(NOW)
    edge, offsets = RightEdge.empty(), {}
    conn = await asyncpg.connect(url)
    try:
        for first in range(0, len(parsed), size):
            batch = parsed[first : first + size]
            rows = store.leaf_rows(first, batch, at)
            edge, nodes = append_leaves(edge, first, [r.leaf_hash for r in rows])
            changed = {(p.record.topic, p.record.partition): p.record.offset + 1 for p in batch}
            offsets.update(changed)
            async with conn.transaction():
                await store.write_batch(conn, rows, nodes, changed)
        tables = {
            "archive_record": "seq",
            "document": "document_id",
            "delivery": "seq, recipient",
            "rejection": "seq",
            "status_event": "seq",
            "merkle_node": "level, idx",
            "archive_offset": "topic, partition",
        }
        return {
            table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
            for table, order in tables.items()
        }
    finally:
        await conn.close()


async def test_one_batch_writes_the_rows_that_one_record_at_a_time_writes(
    migrated_database: str, ctx_and_root: tuple[ParseContext, Path]
) -> None:
    """Outcomes settled as documents go in (one batch) or afterwards (one record per batch,
    through SETTLE_ROUTING) end the same: every table, row for row."""
    ctx, root = ctx_and_root
    parsed = [parse_record(src, ctx) for src in _mixed_records(root)]
    async with fresh_database(migrated_database) as one, fresh_database(migrated_database) as each:
        batched = await _write_in_batches(one, parsed, len(parsed))
        single = await _write_in_batches(each, parsed, 1)
    assert batched == single
    docs = {d["submission_seq"]: d for d in batched["document"]}
    assert set(docs) == {0, 5, 8, 9}  # the secret document has no row
    assert (docs[0]["routing_outcome"], docs[0]["routing_seq"]) == ("routed", 1)
    assert list(docs[0]["recipients"]) == [BA_DINH, HBT]
    assert (docs[5]["routing_outcome"], docs[5]["routing_reason"], docs[5]["routing_seq"]) == (
        "rejected",
        "UNKNOWN_RECIPIENT",
        6,
    )
    assert (docs[8]["routing_outcome"], docs[8]["routing_seq"]) == ("routed", 7)
    assert (docs[9]["routing_outcome"], docs[9]["routing_seq"]) == ("pending", None)
    assert all(d["signatures"] and '"valid": true' in d["signatures"] for d in docs.values())
    secret = batched["archive_record"][3]
    assert secret["raw"] is None and secret["document_id"] is None
    assert [(r["seq"], r["secret"]) for r in batched["rejection"]] == [(4, True), (6, False)]
    assert [(d["seq"], d["recipient"]) for d in batched["delivery"]] == [
        (1, BA_DINH),
        (2, HBT),
        (7, BA_DINH),
        (10, H26),
    ]
    assert [(s["seq"], s["code"]) for s in batched["status_event"]] == [(10, "01")]
    assert len(batched["archive_record"]) == len(parsed)


async def test_rows_parsed_by_worker_processes_write_what_the_archivers_own_parse_writes(
    migrated_database: str, ctx_and_root: tuple[ParseContext, Path]
) -> None:
    ctx, root = ctx_and_root
    records = _mixed_records(root)
    inline = await ParsePool(ctx, None, 0).parse(records)
    pool = ParsePool(ctx, ParseSource(TOPICS, PkiDirectory(root).trust_config), 2)
    try:
        pooled = await pool.parse(records)
    finally:
        pool.close()
    assert pooled == inline
    async with fresh_database(migrated_database) as a, fresh_database(migrated_database) as b:
        assert await _write_in_batches(a, pooled, 4) == await _write_in_batches(b, inline, 4)


async def test_delivered_wins_over_a_dead_letter_of_the_same_message_in_any_order(
    archive_db: str,  # noqa: F811
    ctx_and_root: tuple[ParseContext, Path],
) -> None:
    """A copy of a delivered envelope, resent or replayed, is dead-lettered (RESUBMITTED) with
    the delivered message's id; the archiver meets the dead letter topic and the inbox in
    whatever order. Whether the dead letter comes first in one batch, or in an earlier batch,
    the document is 'routed', never 'rejected'."""
    ctx, root = ctx_and_root
    cred = load_credential(root, H26, SignerRole.AGENCY)

    def records(number: int) -> tuple[SourceRecord, SourceRecord, SourceRecord]:
        envelope = seal(seed_document(number, [BA_DINH]), credentials=[cred], at=NOW)
        raw = encode_envelope(envelope)
        headers = (
            ("lt-reason", b"RESUBMITTED"),
            ("lt-sender-verified", b"true"),  # the same bytes verified when routed
            ("lt-message-id", envelope.message_id.encode()),
        )
        key = envelope.document_id.encode()
        return (
            SourceRecord(TOPICS.submissions, 0, number, key, raw, (), NOW),
            SourceRecord(TOPICS.deadletter, 0, number, key, raw, headers, NOW),
            SourceRecord(TOPICS.inbox_prefix + BA_DINH, 0, number, key, raw, (), NOW),
        )

    same_batch = records(51)
    across = records(52)
    conn = await asyncpg.connect(archive_db)
    seq = await conn.fetchval("SELECT coalesce(max(seq) + 1, 0) FROM archive_record")
    edge = await load_right_edge(conn, seq)

    async def write(srcs: tuple[SourceRecord, ...]) -> None:
        nonlocal seq, edge
        parsed = [parse_record(s, ctx) for s in srcs]
        rows = store.leaf_rows(seq, parsed, archive_time(NOW))
        edge, nodes = append_leaves(edge, seq, [r.leaf_hash for r in rows])
        async with conn.transaction():
            await store.write_batch(conn, rows, nodes, {})
        seq += len(rows)

    try:
        await write(same_batch)  # submission, dead letter, delivery: one batch
        await write(across[:2])  # submission and dead letter ...
        mid = await conn.fetchval(
            "SELECT routing_outcome FROM document WHERE document_id = $1",
            across[0].key.decode(),  # type: ignore[union-attr]
        )
        await write(across[2:])  # ... then, a batch later, the delivery
        got = await conn.fetch(
            "SELECT document_id, routing_outcome FROM document WHERE document_id = ANY($1)",
            [r[0].key.decode() for r in (same_batch, across)],  # type: ignore[union-attr]
        )
    finally:
        await conn.close()
    assert mid == "rejected"  # all it knew then
    assert {r["routing_outcome"] for r in got} == {"routed"} and len(got) == 2
