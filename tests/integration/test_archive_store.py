"""The batch writer's one-statement document insert keeps the one-row-at-a-time semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from consumers import archive_store as store
from consumers.archive_leaf import archive_time, leaves
from consumers.archive_parse import ArchiveTopics, ParseContext, SourceRecord, parse_record
from schemas.agency import AgencyDirectory
from schemas.envelope import SignerRole, encode_envelope
from signing.merkle import RightEdge, append_leaves
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from tests.integration.test_archive import archive_db  # noqa: F401 (fixture)
from tests.support import seed_document

NOW = datetime.now(UTC).replace(microsecond=0)
H26, BA_DINH, HBT = "000.00.00.H26", "000.00.31.H26", "000.00.32.H26"
TOPICS = ArchiveTopics("s.submissions", "s.deadletter", "s.inbox.")


@pytest.fixture(scope="module")
def ctx_and_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[ParseContext, Path]:
    root = tmp_path_factory.mktemp("pki")
    pki = PkiDirectory(root)
    pki.init(now=NOW - timedelta(days=1))
    pki.issue(agency_code=H26, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
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
    made = leaves(
        0,
        [
            (p.record.topic, p.record.partition, p.record.offset, p.record.message_id,
             p.record.raw_sha256)
            for p in parsed
        ],
        at,
    )  # fmt: skip
    rows = [
        store.LeafRow(i, p, d, h, at)
        for i, (p, (d, h)) in enumerate(zip(parsed, made, strict=True))
    ]
    _, nodes = append_leaves(RightEdge.empty(), 0, [h for _, h in made])
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
