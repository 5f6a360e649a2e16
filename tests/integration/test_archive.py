"""The archiver on the real broker and database: a routed flow archived once, with metadata,
search, routing outcomes, the secret-document rule, a signed tree head, and `audit check`."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from consumers.archive.archiver import Archiver
from consumers.archive.check import run_check
from consumers.archive.deadletter import decode_dead_letter
from infra.compose.archive import archive_parse_context, build_archiver
from infra.settings import Settings
from schemas.codec import encode_envelope
from schemas.common import AgencyRef, SecrecyMarking
from schemas.status import StatusCode, StatusNotice
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import seal
from tests.conftest import BA_DINH, H26, HAI_BA_TRUNG, PKI_AGENCIES
from tests.integration.test_router import _signed_by_hand, creds, running_router
from tests.support import (
    ensure_exchange_topics,
    fresh_database,
    publish,
    read_topic,
    seed_document,
    utcnow,
)


@pytest.fixture(scope="session")
def archive_pki(pki_dir: Path, settings: Settings) -> Path:
    """The session PKI plus the platform's ARCHIVE certificate, which signs tree heads."""
    pki = PkiDirectory(pki_dir)
    if not pki.find(agency_code=settings.platform_agency, role=CertRole.ARCHIVE):
        pki.issue(
            agency_code=settings.platform_agency,
            role=CertRole.ARCHIVE,
            now=utcnow() - timedelta(days=1),
        )
    return pki_dir


@pytest.fixture
async def exchange(settings: Settings, bootstrap: str, archive_pki: Path, unique: str) -> Settings:
    private = dataclasses.replace(settings, topic_prefix=f"a{unique}.")
    await ensure_exchange_topics(private, bootstrap, [*PKI_AGENCIES, settings.platform_agency])
    return private


@pytest.fixture
async def archive_db(migrated_database: str, unique: str) -> AsyncIterator[str]:
    """A database of this test's own, so no test sees another's rows."""
    async with fresh_database(migrated_database, f"lt_{unique}") as url:
        yield url


@asynccontextmanager
async def running_archiver(
    settings: Settings,
    bootstrap: str,
    database_url: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    max_batch: int = 500,
    parse_workers: int | None = None,  # None: $LIENTHONG_ARCHIVE_PARSE_WORKERS, else 0
) -> AsyncIterator[Archiver]:
    archiver = build_archiver(
        settings, bootstrap, database_url, max_batch=max_batch, parse_workers=parse_workers
    )
    archiver.config = dataclasses.replace(archiver.config, refresh_seconds=0.5)
    archiver.clock = clock
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))
    ready = asyncio.create_task(archiver.ready.wait())
    await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raise what stopped it
    try:
        yield archiver
    finally:
        ready.cancel()
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def wait_for_records(url: str, count: int, timeout_s: float = 30.0) -> int:
    """Wait for `count` rows, then a little longer so a duplicate (a bug) can show up."""
    conn = await asyncpg.connect(url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        found = 0
        while loop.time() < deadline:
            found = await conn.fetchval("SELECT count(*) FROM archive_record")
            if found >= count:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        return int(await conn.fetchval("SELECT count(*) FROM archive_record"))
    finally:
        await conn.close()


def _value(row: asyncpg.Record) -> tuple[bytes | None, bytes]:
    """(the record's value as the archive keeps it, the value's SHA-256): a dead letter's is
    inside its dead-letter record (docs/evidence.md, "Dead letters"), whose own digest is the
    row's raw_sha256."""
    if row["kind"] != "deadletter":
        return row["raw"], bytes(row["raw_sha256"])
    assert hashlib.sha256(row["raw"]).digest() == bytes(row["raw_sha256"])
    letter = decode_dead_letter(bytes(row["raw"]))
    if letter.value is None:
        assert letter.withheld_sha256 is not None
        return None, letter.withheld_sha256
    return letter.value, hashlib.sha256(letter.value).digest()


async def test_a_routed_flow_is_archived_once_with_its_metadata_outcomes_and_timeline(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str
) -> None:
    now = utcnow()
    doc = seed_document(8001, [BA_DINH, HAI_BA_TRUNG])
    submission = seal(doc, credentials=creds(archive_pki, H26), at=now)
    arrived = seal(
        StatusNotice(doc.document_id, AgencyRef(BA_DINH, "Ba Đình"), StatusCode.ARRIVED, now),
        credentials=creds(archive_pki, BA_DINH),
        at=now,
        recipients=[H26],
    )
    duplicate = seal(seed_document(8001, [BA_DINH]), credentials=creds(archive_pki, H26), at=now)
    unknown = seal(
        seed_document(8003, ["000.00.99.H26"]), credentials=creds(archive_pki, H26), at=now
    )
    secret_doc = dataclasses.replace(
        seed_document(8002, [BA_DINH]),
        secrecy=SecrecyMarking.MAT,
        subject="Phương án bảo vệ mục tiêu trọng yếu",
    )
    secret = _signed_by_hand(secret_doc, archive_pki, (BA_DINH,))
    garbage = os.urandom(200)
    subs = exchange.topic("submissions")
    async with (
        running_router(exchange, bootstrap),
        running_archiver(exchange, bootstrap, archive_db, max_batch=3),
    ):
        await publish(bootstrap, subs, [submission])
        await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1, settle_s=0)
        await publish(bootstrap, subs, [arrived, duplicate, unknown, secret])
        await publish(bootstrap, subs, [garbage], key=b"x")
        # 6 submissions; 3 deliveries (2 copies, the 01); 2 platform 02s (the proven senders
        # of the duplicate and of the unknown recipient; none about the secret document,
        # whose 02 would name it, nor the garbage); 4 dead letters
        assert await wait_for_records(archive_db, 15) == 15
    conn = await asyncpg.connect(archive_db)
    try:
        kinds = dict(await conn.fetch("SELECT kind, count(*) FROM archive_record GROUP BY kind"))
        assert kinds == {"submission": 6, "delivery": 3, "notice": 2, "deadletter": 4}
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM archive_record ORDER BY seq")]
        assert seqs == list(range(15))
        raw = await conn.fetchval(
            "SELECT raw FROM archive_record WHERE message_id = $1 AND kind = 'submission'",
            submission.message_id,
        )
        assert raw == encode_envelope(submission)  # byte for byte

        row = await conn.fetchrow("SELECT * FROM document WHERE document_id = $1", doc.document_id)
        assert row["routing_outcome"] == "routed" and row["sender"] == H26
        assert row["recipients"] == [BA_DINH, HAI_BA_TRUNG] and row["number"] == "8001"
        assert row["subject"] == doc.subject and row["doc_type"] == doc.document_type.abbreviation
        signatures = json.loads(row["signatures"])
        assert [s["valid"] for s in signatures] == [True] and signatures[0]["fingerprint"]
        assert json.loads(row["signer"])["full_name"] == doc.signer.full_name
        # Vietnamese subject, searched without diacritics.
        found = await conn.fetch(
            "SELECT document_id FROM document WHERE subject_folded LIKE '%' || $1 || '%'"
            " AND search @@ plainto_tsquery('simple', lt_fold($2))",
            "cuu thanh nien xung phong",
            "Quyet dinh ho tro sua chua",
        )
        # 8003 shares the seed's subject; the secret 8002 must not be found.
        assert sorted(r["document_id"] for r in found) == [doc.document_id, unknown.document_id]

        rejected = await conn.fetchrow(
            "SELECT routing_outcome, routing_reason FROM document WHERE number = '8003'"
        )
        assert tuple(rejected) == ("rejected", "UNKNOWN_RECIPIENT")
        deliveries = await conn.fetch(
            "SELECT recipient FROM delivery WHERE document_id = $1 ORDER BY recipient",
            doc.document_id,
        )
        assert [r["recipient"] for r in deliveries] == sorted([BA_DINH, H26, HAI_BA_TRUNG])
        timeline = await conn.fetch(
            "SELECT from_agency, to_agency, code FROM status_event ORDER BY seq"
        )
        assert (BA_DINH, H26, "01") in [tuple(r) for r in timeline]
        assert (
            sum(
                r["code"] == "02" and r["from_agency"] == exchange.platform_agency for r in timeline
            )
            == 2
        )
        reasons = dict(await conn.fetch("SELECT reason, count(*) FROM rejection GROUP BY reason"))
        assert reasons == {
            "DUPLICATE_DOCUMENT": 1,
            "UNKNOWN_RECIPIENT": 1,
            "SECRET_DOCUMENT": 1,
            "MALFORMED": 1,
        }
        # Garbage might be a secret document's bytes: digest, size and reason, not content.
        records = await conn.fetch("SELECT * FROM archive_record ORDER BY seq")
        malformed = [r for r in records if _value(r)[1] == hashlib.sha256(garbage).digest()]
        assert sorted(r["kind"] for r in malformed) == ["deadletter", "submission"]
        assert all(_value(r)[0] is None and r["parse_error"] for r in malformed)
        kept = await conn.fetchval(
            "SELECT count(*) FROM archive_record WHERE position($1::bytea IN raw) > 0", garbage
        )
        assert kept == 0

        # The secret document: digest, sender and reason only, wherever it was read.
        digest = hashlib.sha256(encode_envelope(secret)).digest()
        secret_rows = [r for r in records if _value(r)[1] == digest]
        assert sorted(r["kind"] for r in secret_rows) == ["deadletter", "submission"]
        for r in secret_rows:
            assert _value(r)[0] is None and r["document_id"] is None and r["sender"] == H26
            assert r["parse_error"].startswith("SECRET_DOCUMENT")
        assert not await conn.fetchval(
            "SELECT count(*) FROM archive_record WHERE position($1::bytea IN raw) > 0",
            secret_doc.document_id.encode(),
        )
        secret_rejection = await conn.fetchrow(
            "SELECT * FROM rejection WHERE reason = 'SECRET_DOCUMENT'"
        )
        assert secret_rejection["secret"] and secret_rejection["sender"] == H26
        assert secret_rejection["document_id"] is None and secret_rejection["detail"] is None
        assert not await conn.fetchval(
            "SELECT count(*) FROM document WHERE document_id = $1 OR subject = $2",
            secret_doc.document_id,
            secret_doc.subject,
        )

        # Shutdown signed a tree head over everything, and published it.
        head = await conn.fetchrow("SELECT size, signed FROM tree_head ORDER BY size DESC")
        assert head["size"] == 15
    finally:
        await conn.close()
    checkpoints = await read_topic(bootstrap, exchange.topic("checkpoints"), expect=1)
    assert [json.loads(c.value)["tree_head"]["size"] for c in checkpoints] == [15]
    report = await run_check(
        archive_db,
        trust=PkiDirectory(archive_pki).trust_store(),
        at=utcnow(),
        derive=archive_parse_context(exchange),
    )
    assert report.findings == [] and report.records == 15 and report.heads == 1
    # 4 submissions (not the secret, not the garbage), 3 + 2 inbox, 4 dead letters
    assert report.derived == 13 and report.legacy_dead_letters == 0
