"""Exactly once into the database: the archiver SIGKILLed mid-stream, and PostgreSQL restarted
under a running archiver, still leave every record archived once, seq gapless, tree intact."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.archive.check import run_check
from infra.services import postgres as postgres_service
from infra.settings import Settings
from signing.pkidir import PkiDirectory
from tests.integration.test_archive import (
    archive_db,
    archive_pki,
    exchange,
    running_archiver,
    wait_for_records,
)
from tests.support import kafka_options, utcnow

__all__ = ["archive_db", "archive_pki", "exchange"]  # fixtures used by name below

ROOT = Path(__file__).resolve().parents[2]


async def fill(bootstrap: str, topic: str, count: int) -> None:
    """`count` records over every partition; not envelopes, which the archive keeps all the same."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, os.urandom(64), key=str(i).encode()) for i in range(count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def children(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").glob("*/children")
        for c in task.read_text().split()
    ]


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


async def count_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM archive_record"))
    finally:
        await conn.close()


async def assert_exactly_once(url: str, expected: int, pki: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            'SELECT count(*) AS n, count(DISTINCT (topic, partition, "offset")) AS d,'
            " max(seq) AS top FROM archive_record"
        )
        assert (row["n"], row["d"], row["top"]) == (expected, expected, expected - 1)
    finally:
        await conn.close()
    report = await run_check(url, trust=PkiDirectory(pki).trust_store(), at=utcnow())
    assert report.findings == [], [f.line() for f in report.findings]


def start_archiver(service_env: dict[str, str], exchange: Settings, url: str) -> subprocess.Popen:
    env = {
        **service_env,
        "LIENTHONG_TOPIC_PREFIX": exchange.topic_prefix,
        "LIENTHONG_DATABASE_URL": url,
        "LIENTHONG_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "archive", "--max-batch", "50"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_sigkill_mid_stream_then_restart_archives_each_record_once(
    service_env: dict[str, str],
    exchange: Settings,
    bootstrap: str,
    archive_db: str,
    archive_pki: Path,
) -> None:
    total = 3000
    await fill(bootstrap, exchange.topic("submissions"), total)
    first = start_archiver(service_env, exchange, archive_db)
    try:
        deadline = time.monotonic() + 60
        while await count_rows(archive_db) < 400 and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            await asyncio.sleep(0.05)
        workers = children(first.pid)  # parse workers, when LIENTHONG_ARCHIVE_PARSE_WORKERS > 0
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert 0 < await count_rows(archive_db) < total  # killed mid-stream
        for _ in range(100):  # orphaned workers notice and leave within a second or so
            if not alive(workers):
                break
            await asyncio.sleep(0.1)
        assert not alive(workers)
    finally:
        if first.poll() is None:
            first.kill()
    second = start_archiver(service_env, exchange, archive_db)
    try:
        assert await wait_for_records(archive_db, total, timeout_s=90) == total
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, second.stderr.read() if second.stderr else ""
    finally:
        if second.poll() is None:
            second.kill()
    await assert_exactly_once(archive_db, total, archive_pki)


async def test_a_second_archiver_refuses_while_one_is_writing(
    service_env: dict[str, str], exchange: Settings, bootstrap: str, archive_db: str
) -> None:
    async with running_archiver(exchange, bootstrap, archive_db):
        other = start_archiver(service_env, exchange, archive_db)
        assert other.wait(60) == 2
        assert b"another archiver" in (other.stderr.read() if other.stderr else b"")


async def test_postgres_restart_under_a_running_archiver_loses_and_repeats_nothing(
    settings: Settings,
    exchange: Settings,
    bootstrap: str,
    archive_db: str,
    archive_pki: Path,
) -> None:
    if settings.external_database:
        pytest.skip("the database is external: this test restarts the session's own cluster")
    total = 2000
    await fill(bootstrap, exchange.topic("submissions"), total)
    async with running_archiver(exchange, bootstrap, archive_db, max_batch=20) as archiver:
        for _ in range(3000):  # mid-stream: some batches in, most to come
            if archiver.size >= 200:
                break
            await asyncio.sleep(0.02)
        # pg_ctl restart keeps the port and options every other fixture relies on.
        pg_ctl = str(postgres_service.find_bindir() / "pg_ctl")
        data = str(settings.postgres_dir / "data")
        logfile = str(settings.postgres_dir / "postgres.log")
        restart = [pg_ctl, "-D", data, "-l", logfile, "-m", "fast", "-w", "-t", "60", "restart"]
        # No pipes: the restarted server would hold them open and the wait would never end.
        done = await asyncio.to_thread(
            subprocess.run,
            postgres_service._as_owner(restart),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0
        assert await wait_for_records(archive_db, total, timeout_s=60) == total
        assert archiver.metrics.retries._value.get() >= 1  # it did see the outage
    await assert_exactly_once(archive_db, total, archive_pki)


async def test_the_writers_connection_killed_again_and_again_loses_and_repeats_nothing(
    exchange: Settings,
    bootstrap: str,
    archive_db: str,
    archive_pki: Path,
) -> None:
    """The next batch is parsed while the previous one is written: a write killed in flight,
    many times over, is retried from the stored offsets while its successor waits."""
    total = 3000
    await fill(bootstrap, exchange.topic("submissions"), total)
    admin = await asyncpg.connect(archive_db)
    killed = 0
    try:
        async with running_archiver(exchange, bootstrap, archive_db, max_batch=50) as archiver:
            deadline = time.monotonic() + 90
            while archiver.size < total and time.monotonic() < deadline:
                await asyncio.sleep(0.15)
                # The writer is whoever holds the archive's advisory lock right now.
                killed += await admin.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            assert await wait_for_records(archive_db, total, timeout_s=60) == total
            assert archiver.metrics.retries._value.get() >= 1
    finally:
        await admin.close()
    assert killed >= 3, killed  # it was interrupted mid-stream, more than once
    await assert_exactly_once(archive_db, total, archive_pki)


async def test_parse_workers_killed_again_and_again_lose_and_repeat_nothing(
    exchange: Settings,
    bootstrap: str,
    archive_db: str,
    archive_pki: Path,
) -> None:
    """A worker process dying mid-parse breaks its pool: the pool is replaced and the batch
    parsed again whole (nothing of it was written), so every record still goes in once."""
    total = 3000
    await fill(bootstrap, exchange.topic("submissions"), total)
    killed = 0
    async with running_archiver(
        exchange, bootstrap, archive_db, max_batch=50, parse_workers=2
    ) as archiver:
        # Six kills, each once the new pool has had time to take up a batch: enough to break
        # it again and again mid-parse, without keeping it broken until the deadline.
        deadline = time.monotonic() + 90
        while archiver.size < total and killed < 6 and time.monotonic() < deadline:
            for pid in archiver.parser.pids()[:1]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            await asyncio.sleep(1.0)
        assert await wait_for_records(archive_db, total, timeout_s=60) == total
        assert archiver.parser.restarts >= 1
    assert killed >= 2, killed
    assert archiver.parser.pids() == []  # stopped with the archiver
    await assert_exactly_once(archive_db, total, archive_pki)
