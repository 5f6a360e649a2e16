"""`audit check` on an archive edited behind the rules (as superuser, triggers disabled): a
changed byte, a deleted row and two swapped rows are each reported with the record concerned."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from consumers.archive.check import run_check
from infra.settings import Settings
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
from tests.integration.test_router import creds
from tests.support import fresh_database, publish, seed_document, utcnow

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


def check_cli(service_env: dict[str, str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**service_env, "LIENTHONG_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "audit", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_intact_archive_checks_clean_and_the_cli_exits_0(
    service_env: dict[str, str], archived: str, archive_pki: Path
) -> None:
    report = await run_check(archived, trust=PkiDirectory(archive_pki).trust_store(), at=utcnow())
    assert report.findings == [] and report.records == RECORDS and report.heads == 2
    done = await asyncio.to_thread(check_cli, service_env, archived)
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
    service_env: dict[str, str], archived: str
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
    done = await asyncio.to_thread(check_cli, service_env, archived)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"TAMPERED seq={seq} ")]
    assert lines and f"source={source}" in lines[0] and f"message_id={message_id}" in lines[0]
    assert "raw was altered" in done.stdout
    assert "tree head of size" in done.stdout  # the signed roots no longer match


async def test_a_deleted_row_is_reported_with_its_seq(
    service_env: dict[str, str], archived: str
) -> None:
    # A record nothing else refers to (unparsable bytes) can be deleted despite foreign keys.
    conn = await asyncpg.connect(archived)
    seq = await conn.fetchval(
        "SELECT min(seq) FROM archive_record WHERE parse_error IS NOT NULL AND seq > 5"
    )
    await conn.close()
    await tamper(archived, f"DELETE FROM archive_record WHERE seq = {seq}")
    done = await asyncio.to_thread(check_cli, service_env, archived)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"TAMPERED seq={seq}: record is missing (deleted)" in done.stdout


async def test_two_swapped_rows_are_reported_as_reordered(
    service_env: dict[str, str], archived: str
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
    done = await asyncio.to_thread(check_cli, service_env, archived)
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
