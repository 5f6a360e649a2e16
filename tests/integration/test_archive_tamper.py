"""`audit check` on an archive edited behind the rules (as superuser, triggers disabled): a
changed byte, a deleted row, two swapped rows, an edited derived row or refusal are each
reported with the record concerned."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from consumers.archive import store
from consumers.archive.check import check_archive, run_check
from consumers.archive.leaf import archive_time
from consumers.archive.parse import parse_record
from consumers.archive.rows import Kind, Parsed, RecordRow, RejectionRow, SourceRecord
from consumers.router.rejections import dead_letter
from consumers.router.routing import Rejected
from infra.compose.archive import archive_parse_context, archiver_url, build_archiver
from infra.settings import Settings
from schemas.codec import encode_envelope
from schemas.common import AgencyRef, SecrecyMarking
from schemas.status import StatusCode, StatusNotice
from signing.merkle import RightEdge, append_leaves
from signing.pkidir import PkiDirectory
from signing.seal import seal
from tests.conftest import BA_DINH, H26
from tests.integration.test_archive import (
    archive_db,
    archive_pki,
    exchange,
    running_archiver,
    wait_for_records,
)
from tests.integration.test_router import _signed_by_hand, _tampered, creds, running_router
from tests.support import fresh_database, publish, read_topic, seed_document, utcnow

__all__ = ["archive_db", "archive_pki", "exchange"]

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 40


@pytest.fixture
async def archived(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str
) -> AsyncIterator[str]:
    """An archive of 40 records (documents and unparsable bytes) with two signed tree heads."""
    docs = [
        seal(seed_document(9000 + i, [BA_DINH]), credentials=creds(archive_pki, H26), at=utcnow())
        for i in range(RECORDS // 2)
    ]
    subs = exchange.topic("submissions")
    async with running_archiver(exchange, bootstrap, archive_db, max_batch=7):
        await publish(bootstrap, subs, docs[:10])
        await publish(bootstrap, subs, [os.urandom(50) for _ in range(10)], key=b"k")
        assert await wait_for_records(archive_db, 20) == 20
    async with running_archiver(exchange, bootstrap, archive_db, max_batch=7):
        await publish(bootstrap, subs, docs[10:])
        await publish(bootstrap, subs, [os.urandom(50) for _ in range(10)], key=b"k")
        assert await wait_for_records(archive_db, RECORDS) == RECORDS
    yield archive_db


async def tamper(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE archive_record DISABLE TRIGGER USER")
            for sql in statements:
                await conn.execute(sql)
            await conn.execute("ALTER TABLE archive_record ENABLE TRIGGER USER")
    finally:
        await conn.close()


async def identity(url: str, seq: int) -> tuple[str, str]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT message_id, topic || '/' || partition || '/' || \"offset\" AS source"
            " FROM archive_record WHERE seq = $1",
            seq,
        )
        return row["message_id"], row["source"]
    finally:
        await conn.close()


async def first_document_seq(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT min(seq) FROM archive_record WHERE message_id IS NOT NULL AND seq >= 3"
            )
        )
    finally:
        await conn.close()


def check_cli(
    service_env: dict[str, str], url: str, *args: str, prefix: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`lienthong audit check` with the archiver's settings (its topic prefix, for the rows it
    derives from the bytes)."""
    env = {**service_env, "LIENTHONG_DATABASE_URL": url}
    if prefix is not None:
        env["LIENTHONG_TOPIC_PREFIX"] = prefix
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "audit", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_intact_archive_checks_clean_and_the_cli_exits_0(
    service_env: dict[str, str], archived: str, archive_pki: Path, exchange: Settings
) -> None:
    report = await run_check(archived, trust=PkiDirectory(archive_pki).trust_store(), at=utcnow())
    assert report.findings == [] and report.records == RECORDS and report.heads == 2
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact: 40 records" in done.stdout
    # Like every audit command, check ran as the auditor role, after logging the request.
    conn = await asyncpg.connect(archived)
    try:
        logged = await conn.fetch("SELECT db_role, command FROM audit_access_log")
    finally:
        await conn.close()
    assert [(r["db_role"], r["command"]) for r in logged] == [("lienthong_auditor", "check")]


async def test_one_changed_byte_is_reported_with_its_record(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    # A document's record (garbage records carry no message id to report): which seq that is
    # depends on how the archiver's fetches interleaved the two kinds.
    seq = await first_document_seq(archived)
    message_id, source = await identity(archived, seq)
    await tamper(
        archived,
        "UPDATE archive_record SET raw = overlay(raw placing '\\xff'::bytea from 40 for 1)"
        f" WHERE seq = {seq}",
    )
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"TAMPERED seq={seq} ")]
    assert lines and f"source={source}" in lines[0] and f"message_id={message_id}" in lines[0]
    assert "raw was altered" in done.stdout
    assert "tree head of size" in done.stdout  # the signed roots no longer match


async def test_a_deleted_row_is_reported_with_its_seq(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    # A record nothing else refers to (unparsable bytes) can be deleted despite foreign keys.
    conn = await asyncpg.connect(archived)
    seq = await conn.fetchval(
        "SELECT min(seq) FROM archive_record WHERE parse_error IS NOT NULL AND seq > 5"
    )
    await conn.close()
    await tamper(archived, f"DELETE FROM archive_record WHERE seq = {seq}")
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"TAMPERED seq={seq}: record is missing (deleted)" in done.stdout


async def test_two_swapped_rows_are_reported_as_reordered(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    # Two records nothing refers to, so foreign keys let them move.
    conn = await asyncpg.connect(archived)
    a, b = [
        r["seq"]
        for r in await conn.fetch(
            "SELECT seq FROM archive_record WHERE parse_error IS NOT NULL ORDER BY seq LIMIT 2"
        )
    ]
    await conn.close()
    _, a_source = await identity(archived, a)
    await tamper(
        archived,
        f"UPDATE archive_record SET seq = seq + 1000000 WHERE seq IN ({a}, {b})",
        f"UPDATE archive_record SET seq = {b} WHERE seq = {a + 1000000}",
        f"UPDATE archive_record SET seq = {a} WHERE seq = {b + 1000000}",
    )
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    moved = [line for line in done.stdout.splitlines() if f"source={a_source}" in line]
    assert moved and moved[0].startswith(f"TAMPERED seq={b} ") and "reordered" in moved[0]


async def test_an_unreachable_database_is_an_error_not_a_verdict(
    service_env: dict[str, str], migrated_database: str
) -> None:
    async with fresh_database(migrated_database, "lt_check_gone") as url:
        pass
    done = await asyncio.to_thread(check_cli, service_env, url)
    assert done.returncode == 2 and done.stderr.startswith("error:")


async def as_superuser(url: str, *statements: str) -> None:
    """An insider with the database's superuser: every trigger off for the transaction."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_deleted_tree_heads_leave_records_no_signed_head_covers(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    await as_superuser(archived, "DELETE FROM tree_head")
    done = await asyncio.to_thread(
        check_cli, service_env, archived, "--head-grace", "0", prefix=exchange.topic_prefix
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"records seq 0..{RECORDS - 1} are covered by no signed tree head" in done.stdout
    # Within the grace, fresh records waiting for their first head are no finding.
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_truncated_tail_with_its_heads_deleted_is_found(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    cut = 25
    await as_superuser(
        archived,
        f"DELETE FROM document WHERE submission_seq >= {cut}",
        f"DELETE FROM archive_record WHERE seq >= {cut}",
        f"DELETE FROM merkle_node WHERE ((idx + 1) << level) > {cut}",
        f"DELETE FROM tree_head WHERE size > {cut}",
    )
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "but that record is missing (records were removed)" in done.stdout


async def test_truncate_is_refused_and_a_superuser_truncate_is_found(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    truncate = "TRUNCATE archive_record, merkle_node, tree_head CASCADE"
    conn = await asyncpg.connect(archived)
    try:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(truncate)
    finally:
        await conn.close()
    await as_superuser(archived, truncate)
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TAMPERED: 0 records" in done.stdout
    assert "but that record is missing (records were removed)" in done.stdout


async def test_erased_bytes_are_found_though_the_archive_withholds_bytes_too(
    service_env: dict[str, str], archived: str, exchange: Settings
) -> None:
    seq = await first_document_seq(archived)
    await as_superuser(archived, f"UPDATE archive_record SET raw = NULL WHERE seq = {seq}")
    done = await asyncio.to_thread(check_cli, service_env, archived, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    erased = [line for line in done.stdout.splitlines() if "bytes were erased" in line]
    assert len(erased) == 1 and erased[0].startswith(f"TAMPERED seq={seq} "), done.stdout
    # The 20 records of undecodable bytes, withheld by the archive itself, are no finding.
    conn = await asyncpg.connect(archived)
    try:
        withheld = await conn.fetchval("SELECT count(*) FROM archive_record WHERE raw IS NULL")
    finally:
        await conn.close()
    assert withheld == RECORDS // 2 + 1


@pytest.fixture
async def routed(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str
) -> AsyncIterator[str]:
    """A document routed to Ba Đình, and Ba Đình's 01 delivered back: submission, delivery,
    status, with their document, delivery and status_event rows."""
    now = utcnow()
    doc = seed_document(9100, [BA_DINH])
    arrived = StatusNotice(doc.document_id, AgencyRef(BA_DINH, "Ba Đình"), StatusCode.ARRIVED, now)
    subs = exchange.topic("submissions")
    async with (
        running_router(exchange, bootstrap),
        running_archiver(exchange, bootstrap, archive_db, max_batch=3) as archiver,
    ):
        await publish(bootstrap, subs, [seal(doc, credentials=creds(archive_pki, H26), at=now)])
        await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1, settle_s=0)
        answer = seal(arrived, credentials=creds(archive_pki, BA_DINH), at=now, recipients=[H26])
        await publish(bootstrap, subs, [answer])
        assert await wait_for_records(archive_db, 4) == 4
    # Its last checkpoint refreshed the KPI's months, as its own role, and said none is left.
    stale = archiver.metrics.registry.get_sample_value("lienthong_archive_kpi_stale_months")
    assert stale == 0
    yield archive_db


async def test_a_routed_story_checks_clean(
    routed: str, archive_pki: Path, exchange: Settings
) -> None:
    report = await run_check(
        routed,
        trust=PkiDirectory(archive_pki).trust_store(),
        at=utcnow(),
        derive=archive_parse_context(exchange),
    )
    assert report.findings == [] and report.derived == 4


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        ("UPDATE document SET subject = 'Kế hoạch khác'", "subject 'Kế hoạch khác' (stored)"),
        ("UPDATE document SET sender = '000.00.31.H26'", "sender '000.00.31.H26' (stored)"),
        (
            'UPDATE document SET signatures = \'[{"valid": true, "role": "AGENCY"}]\'',
            "signatures",
        ),
        ("UPDATE status_event SET code = '06'", "code '06' (stored)"),
        (
            "UPDATE delivery SET delivered_at = delivered_at - interval '3 days'",
            "delivered_at",
        ),
        ("UPDATE document SET routing_outcome = 'rejected'", "routing says rejected"),
        ("UPDATE archive_record SET sender = '000.00.31.H26' WHERE kind = 'submission'", "sender"),
        ("DELETE FROM status_event", "has no status_event row"),
    ],
)
async def test_an_edited_derived_column_is_found(
    service_env: dict[str, str], routed: str, exchange: Settings, edit: str, finding: str
) -> None:
    await as_superuser(routed, edit)
    done = await asyncio.to_thread(check_cli, service_env, routed, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("TAMPERED seq=")]
    assert any(finding in line for line in lines), done.stdout


async def test_the_kpi_copy_of_a_routed_story_is_kept_by_the_database(routed: str) -> None:
    """The archiver's COPYs keep kpi_copy (migration 0012's triggers): Ba Đình's copy, first
    delivered when its delivery row says, answered by the 01 its status row holds; the 01's
    own delivery to the sender is no copy of the document."""
    conn = await asyncpg.connect(routed)
    try:
        copies = await conn.fetch("SELECT * FROM kpi_copy")
        delivery = await conn.fetchrow("SELECT * FROM delivery WHERE recipient = $1", BA_DINH)
        stale = await conn.fetchval("SELECT count(*) FROM kpi_month_stale")
        month = await conn.fetch(
            "SELECT agency, delivered, early_01, arrived_same_day, length(answered_01) / 8 "
            "FROM kpi_month WHERE delivered > 0"
        )
        # the 01 travelled back to the sender: a delivery row too, but no copy of the document
        assert await conn.fetchval("SELECT count(*) FROM delivery WHERE recipient = $1", H26) == 1
        arrived = await conn.fetchval(
            "SELECT min(at) FROM status_event WHERE code = '01' AND from_agency = $1", BA_DINH
        )
    finally:
        await conn.close()
    assert [(c["document_id"], c["recipient"]) for c in copies] == [
        (delivery["document_id"], BA_DINH)
    ]
    assert copies[0]["delivered_at"] == delivery["delivered_at"]
    assert copies[0]["at01"] == arrived and copies[0]["at06"] is None
    # The archiver's last checkpoint refreshed the month's figures: nothing is left stale. The
    # 01 is dated when the story was written, before the router delivered: flagged as early.
    assert stale == 0 and [tuple(r) for r in month] == [(BA_DINH, 1, 1, 0, 0)]


async def test_an_idle_archiver_still_refreshes_the_stale_kpi_months(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str
) -> None:
    """After an upgrade every month is stale and nothing may be coming in: the archiver
    refreshes them anyway, every checkpoint interval, and says how many are left."""
    conn = await asyncpg.connect(archive_db)
    try:
        await conn.execute(
            "INSERT INTO kpi_month_stale (month) VALUES ('2026-09-01'), ('2026-10-01')"
        )
        archiver = build_archiver(exchange, bootstrap, archive_db, checkpoint_seconds=0.5)
        archiver.config = dataclasses.replace(archiver.config, refresh_seconds=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(archiver.run(stop))
        try:
            for _ in range(100):
                if await conn.fetchval("SELECT count(*) FROM kpi_month_stale") == 0:
                    break
                await asyncio.sleep(0.1)
            assert await conn.fetchval("SELECT count(*) FROM kpi_month_stale") == 0
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
    finally:
        await conn.close()
    assert archiver.size == 0  # nothing was archived: the refresh came from the idle loop
    stale = archiver.metrics.registry.get_sample_value("lienthong_archive_kpi_stale_months")
    assert stale == 0


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        # a faster answer, for a better "01 the same day"
        ("UPDATE kpi_copy SET at01 = delivered_at", "at01 "),
        # a month's figures: fewer copies delivered, a better share on the console
        ("UPDATE kpi_month SET delivered = delivered + 1", "delivered 1 (stored), 0"),
        ("DELETE FROM kpi_month", "not in kpi_month"),
        ("DELETE FROM kpi_copy", "not in kpi_copy"),
        (
            "INSERT INTO kpi_copy SELECT document_id, '000.00.99.H26', delivered_at, month, "
            "due_date, at01, at06 FROM kpi_copy",
            "the archive gives none (kpi_copy was altered)",
        ),
        # the row the summary stands on, edited alone: both disagree
        ("UPDATE status_event SET at = at + interval '2 days'", "(the archive gives)"),
    ],
)
async def test_an_edited_kpi_copy_is_found(
    service_env: dict[str, str], routed: str, exchange: Settings, edit: str, finding: str
) -> None:
    """The KPI reads kpi_copy, not the records: an insider who edits it to better an agency's
    figures leaves the records intact, and `audit check` still names the copy."""
    await as_superuser(routed, edit)
    done = await asyncio.to_thread(check_cli, service_env, routed, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "the KPI's" in line]
    assert any(finding in line for line in lines), done.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE archive_record SET raw = NULL",
        "DELETE FROM tree_head",
        "TRUNCATE archive_record, merkle_node, tree_head CASCADE",
        "ALTER TABLE archive_record DISABLE TRIGGER USER",
        "SET session_replication_role = replica",
        "UPDATE document SET subject = 'khác'",
        "DELETE FROM cosignature",
        "UPDATE kpi_copy SET at01 = delivered_at",
        "DELETE FROM kpi_copy",
        "INSERT INTO kpi_copy VALUES ('d', 'r', now(), current_date, NULL, NULL, NULL)",
        "UPDATE kpi_month SET delivered = 0",
        "DELETE FROM kpi_month_stale",  # a stale month made to look fresh
    ],
)
async def test_the_archivers_own_role_cannot_alter_the_evidence(
    archive_db: str, statement: str
) -> None:
    conn = await asyncpg.connect(archiver_url(archive_db))
    try:
        assert (
            await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            is False
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def refused(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str
) -> AsyncIterator[str]:
    """Three refusals, archived with their submissions: a document to an unknown recipient
    (the sender proven, its bytes kept, a platform 02 back to it), a document whose signature
    no longer verifies (sender unproven, bytes kept) and a secret document (nothing kept)."""
    now = utcnow()
    unknown = seal(
        seed_document(9200, ["000.00.99.H26"]), credentials=creds(archive_pki, H26), at=now
    )
    forged = _tampered(
        seal(seed_document(9201, [BA_DINH]), credentials=creds(archive_pki, H26), at=now)
    )
    secret_doc = dataclasses.replace(seed_document(9202, [BA_DINH]), secrecy=SecrecyMarking.MAT)
    secret = _signed_by_hand(secret_doc, archive_pki, (BA_DINH,))
    async with (
        running_router(exchange, bootstrap),
        running_archiver(exchange, bootstrap, archive_db, max_batch=3),
    ):
        await publish(bootstrap, exchange.topic("submissions"), [unknown, forged, secret])
        await read_topic(bootstrap, exchange.topic("deadletter"), expect=3, settle_s=0)
        # 3 submissions, 3 dead letters, the 02 to H26
        assert await wait_for_records(archive_db, 7) == 7
    yield archive_db


async def test_refusals_check_clean_and_their_rows_are_derived_again(
    refused: str, archive_pki: Path, exchange: Settings
) -> None:
    report = await run_check(
        refused,
        trust=PkiDirectory(archive_pki).trust_store(),
        at=utcnow(),
        derive=archive_parse_context(exchange),
    )
    assert report.findings == [], [f.line() for f in report.findings]
    # 2 submissions (not the secret one, withheld), 3 dead letters, the 02
    assert report.derived == 6 and report.legacy_dead_letters == 0
    assert "dead letters archived before" not in report.summary()


@pytest.mark.parametrize(
    ("edits", "finding"),
    [
        (
            ["UPDATE rejection SET reason = 'DUPLICATE_DOCUMENT' WHERE reason = 'BAD_SIGNATURE'"],
            "rejection row differs from what its signed bytes say: reason 'DUPLICATE_DOCUMENT' "
            "(stored) vs 'BAD_SIGNATURE' (from the bytes)",
        ),
        (  # the insider also edits the document's routing reason, so the two agree
            [
                "UPDATE rejection SET reason = 'NO_INBOX' WHERE reason = 'UNKNOWN_RECIPIENT'",
                "UPDATE document SET routing_reason = 'NO_INBOX'"
                " WHERE routing_reason = 'UNKNOWN_RECIPIENT'",
            ],
            "reason 'NO_INBOX' (stored) vs 'UNKNOWN_RECIPIENT' (from the bytes)",
        ),
        (
            ["UPDATE document SET routing_reason = 'NO_INBOX' WHERE routing_outcome = 'rejected'"],
            "routing says rejected (seq",
        ),
        (
            [
                "UPDATE rejection SET detail = 'người nhận đã giải thể'"
                " WHERE reason = 'UNKNOWN_RECIPIENT'"
            ],
            "detail 'người nhận đã giải thể' (stored)",
        ),
        (
            ["UPDATE rejection SET sender = '000.00.31.H26' WHERE reason = 'SECRET_DOCUMENT'"],
            "sender '000.00.31.H26' (stored) vs '000.00.00.H26' (from the bytes)",
        ),
        (
            ["UPDATE rejection SET secret = false WHERE reason = 'SECRET_DOCUMENT'"],
            "secret False (stored) vs True (from the bytes)",
        ),
        (["UPDATE rejection SET at = at - interval '2 days'"], "rejection row differs"),
        (
            ["UPDATE rejection SET document_id = NULL WHERE reason = 'UNKNOWN_RECIPIENT'"],
            "document_id None (stored)",
        ),
        (
            ["DELETE FROM rejection WHERE reason = 'BAD_SIGNATURE'"],
            "the dead letter has no rejection row (it was deleted)",
        ),
        (
            [
                "INSERT INTO rejection (seq, reason, detail, sender, secret, at)"
                " SELECT min(seq), 'SIGNATURE_INVALID', 'chữ ký sai', '000.00.00.H26', false,"
                " now() FROM archive_record WHERE kind = 'submission'"
            ],
            "rejection SIGNATURE_INVALID is derived from no record that could give it",
        ),
        (  # pointing at no record at all (foreign keys are off for the superuser)
            [
                "INSERT INTO rejection (seq, reason, secret, at)"
                " VALUES (999, 'SIGNATURE_INVALID', false, now())"
            ],
            "rejection SIGNATURE_INVALID is derived from no record that could give it",
        ),
        (
            [
                "UPDATE archive_record SET parse_error = NULL"
                " WHERE kind = 'deadletter' AND parse_error LIKE 'SECRET_DOCUMENT%'"
            ],
            "parse_error None (stored) vs 'SECRET_DOCUMENT: content not archived'",
        ),
        (
            ["UPDATE archive_record SET kind = 'deadletter' WHERE raw IS NULL"],
            "kind 'deadletter' (stored) vs 'submission' (from its topic)",
        ),
    ],
)
async def test_an_edited_refusal_is_found(
    service_env: dict[str, str],
    refused: str,
    exchange: Settings,
    edits: list[str],
    finding: str,
) -> None:
    await as_superuser(refused, *edits)
    done = await asyncio.to_thread(check_cli, service_env, refused, prefix=exchange.topic_prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("TAMPERED seq=")]
    assert any(finding in line for line in lines), done.stdout


async def test_dead_letters_archived_before_their_headers_were_kept_are_said_once(
    settings: Settings, archive_pki: Path, archive_db: str, unique: str
) -> None:
    """An archive written before dead-letter records: the Kafka value alone (or nothing, for a
    secret document) as a dead letter's bytes. Its rejection rows cannot be derived again: no
    finding, one line; a deleted one is still found, and so is an edit of a newer one."""
    private = dataclasses.replace(settings, topic_prefix=f"l{unique}.")
    ctx = archive_parse_context(private)
    topics, now = ctx.topics, utcnow()
    unknown = seal(
        seed_document(9300, ["000.00.99.H26"]), credentials=creds(archive_pki, H26), at=now
    )
    raw, secret_digest = encode_envelope(unknown), hashlib.sha256(b"secret bytes").digest()
    old_kept = Parsed(
        RecordRow(
            topics.deadletter, 0, 0, Kind.DEADLETTER, unknown.message_id, unknown.document_id,
            str(unknown.payload_type), H26, raw, hashlib.sha256(raw).digest(), None,
        ),
        rejection=RejectionRow(
            "UNKNOWN_RECIPIENT", "x", H26, unknown.message_id, unknown.document_id, False,
            "s/0/0", now,
        ),
    )  # fmt: skip
    old_secret = Parsed(
        RecordRow(
            topics.deadletter, 0, 1, Kind.DEADLETTER, None, None, None, H26, None, secret_digest,
            "SECRET_DOCUMENT: content not archived",
        ),
        rejection=RejectionRow("SECRET_DOCUMENT", None, H26, None, None, True, None, now),
    )  # fmt: skip
    rejected = Rejected(
        "NO_INBOX", "no inbox", hashlib.sha256(raw).hexdigest(), sender=H26, keep_content=True
    )
    letter = dead_letter(raw, None, rejected, "s/0/1", now)
    new = parse_record(
        SourceRecord(topics.deadletter, 0, 2, None, letter.value, tuple(letter.headers), now), ctx
    )
    submission = parse_record(SourceRecord(topics.submissions, 0, 0, None, raw, (), now), ctx)
    parsed = [submission, old_kept, old_secret, new]
    rows = store.leaf_rows(0, parsed, archive_time(now))
    _, nodes = append_leaves(RightEdge.empty(), 0, [r.leaf_hash for r in rows])
    offsets = {(topics.submissions, 0): 1, (topics.deadletter, 0): 3}
    conn = await asyncpg.connect(archive_db)
    try:
        async with conn.transaction():
            await store.write_batch(conn, rows, nodes, offsets)
        trust = PkiDirectory(archive_pki).trust_store()
        report = await check_archive(conn, trust=trust, at=utcnow(), derive=ctx)
        assert report.findings == [], [f.line() for f in report.findings]
        assert report.legacy_dead_letters == 2 and report.derived == 2  # submission, new letter
        summary = report.summary()
        assert summary.startswith("intact: 4 records") and summary.count("dead letters") == 1
        assert "2 dead letters archived before their headers were kept" in summary
    finally:
        await conn.close()
    await as_superuser(
        archive_db,
        "DELETE FROM rejection WHERE seq = 2",  # the old secret dead letter's
        "UPDATE rejection SET detail = 'khác' WHERE seq = 3",  # the new one's
        "UPDATE archive_record SET kind = 'submission' WHERE seq = 1",  # the old kept one's
    )
    conn = await asyncpg.connect(archive_db)
    try:
        report = await check_archive(conn, trust=trust, at=utcnow(), derive=ctx)
    finally:
        await conn.close()
    problems = {(f.seq, f.problem.split(":")[0]) for f in report.findings}
    assert problems == {
        (2, "the dead letter has no rejection row (it was deleted)"),
        (3, "rejection row differs from what its signed bytes say"),
        (1, "archive_record differs from what its signed leaf says"),
        # its document's outcome no longer follows from the records' kinds
        (0, f"document {unknown.document_id}"),
    }, [f.line() for f in report.findings]
    assert any("kind 'submission' (stored) vs 'deadletter'" in f.problem for f in report.findings)
