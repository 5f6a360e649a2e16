"""Archive write rate: the archiver catching up on a filled exchange, next to a raw asyncpg COPY
of the same archive_record rows into the same table (same indexes, same batch size).

Each repeat runs the archiver once per parse-worker count in WORKERS (interleaved, so they share
the machine's conditions); `archiver` in the results is the command's default count."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import BenchRun, ServiceProcess, cpu_seconds, machine_jiffies, peak_rss_mb
from infra.compose.archive import default_parse_workers

# LIENTHONG_BENCH_ARCHIVE_WORKERS="0,2": the `--parse-workers` values compared in one run.
WORKERS = tuple(
    int(w) for w in os.environ.get("LIENTHONG_BENCH_ARCHIVE_WORKERS", "0,2").split(",") if w
)
BATCH = 500  # the archiver's default max_batch: one transaction per batch on both sides
COLUMNS = (
    "seq", "topic", "partition", "offset", "kind", "message_id", "document_id", "payload_type",
    "sender", "raw", "raw_sha256", "parse_error", "leaf_data", "leaf_hash", "archived_at",
)  # fmt: skip


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(c) for c in task.read_text().split()]
    return found


def _cpu(pid: int) -> tuple[float, float, tuple[int, int]]:
    """CPU seconds of the archiver, of its parse workers, and the machine's jiffies."""
    return cpu_seconds(pid), sum(cpu_seconds(c) for c in _children(pid)), machine_jiffies()


async def archiver_catch_up(
    run: BenchRun, expected: int, suffix: str, workers: int
) -> dict[str, Any]:
    """A fresh archiver on a fresh database reads every record the exchange holds. The rate is
    timed from its first committed batch to the last, so process start, worker start and Kafka
    assignment (a fixed cost, paid once) stay out of it."""
    url = await run.create_database(suffix)
    args = ["-m", "infra.cli", "archive", "--checkpoint-seconds", "5"]
    args += ["--parse-workers", str(workers)]
    proc = ServiceProcess(f"archiver{suffix}", args, run.service_env(url), run.work)
    worker_rss: list[float] = []
    conn = await asyncpg.connect(url)
    try:
        first_at, first_count = 0.0, 0
        deadline = time.monotonic() + max(180.0, expected / 50)
        while True:
            proc.check_alive()
            count = await conn.fetchval("SELECT count(*) FROM archive_record")
            now = time.perf_counter()
            if count and not first_at:
                first_at, first_count = now, count
                cpu_first = _cpu(proc.pid)
            if count >= expected:
                cpu_last = _cpu(proc.pid)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"archiver wrote {count} of {expected} records")
            await asyncio.sleep(0.05)
        memory = proc.memory()
        worker_rss = [peak_rss_mb(c) or 0.0 for c in _children(proc.pid)]
    finally:
        await conn.close()
        await proc.stop()
    rows = expected - first_count
    seconds = max(now - first_at, 1e-6)
    (own0, work0, (busy0, all0)), (own1, work1, (busy1, all1)) = cpu_first, cpu_last
    per_row = 1000 / max(rows, 1)
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if rows else 0.0,
        "archiver_peak_rss_mb": memory["peak_rss_mb"] or 0.0,
        "parse_workers": workers,
        "workers_peak_rss_mb": round(sum(worker_rss), 1),
        # Where the CPU went while timed: the machine's 2 cores are shared with the broker
        # and PostgreSQL, so a busy share near 1.0 means no core was left to parse on.
        "cpu_ms_per_row": {
            "archiver": round((own1 - own0) * per_row, 3),
            "workers": round((work1 - work0) * per_row, 3),
        },
        "machine_busy_share": round((busy1 - busy0) / max(all1 - all0, 1), 2),
    }


async def raw_copy(run: BenchRun, rows: list[tuple[Any, ...]], suffix: str) -> dict[str, Any]:
    url = await run.create_database(suffix)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "archive_record", records=rows[i : i + BATCH], columns=COLUMNS
                )
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {
        "rows": len(rows),
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(rows) / seconds, 1),
    }


async def audit_check(run: BenchRun, url: str) -> dict[str, Any]:
    """`audit check` over the archive just written: the Merkle half alone (leaves, nodes, signed
    heads), then with every derived row parsed again from the signed bytes (which verifies
    every envelope's signatures once more). A bench of an honest archive: any finding fails."""
    from consumers.archive import check_archive
    from infra import context
    from infra.compose.archive import archive_parse_context

    trust = context.trust_store(run.settings)
    derive = archive_parse_context(run.settings)
    conn = await asyncpg.connect(url)
    out: dict[str, Any] = {}
    try:
        for name, ctx in (("tree", None), ("tree_and_rows", derive)):
            started = time.perf_counter()
            cpu0 = time.process_time()
            report = await check_archive(conn, trust=trust, at=datetime.now(UTC), derive=ctx)
            seconds = time.perf_counter() - started
            if report.findings:
                raise AssertionError(f"audit check on the bench's archive: {report.summary()}")
            out[name] = {
                "records": report.records,
                "seconds": round(seconds, 3),
                "records_per_s": round(report.records / max(seconds, 1e-6), 1),
                "client_cpu_s": round(time.process_time() - cpu0, 3),
            }
    finally:
        await conn.close()
    return out


async def measure(run: BenchRun, source_url: str, repeats: int) -> dict[str, Any]:
    """`source_url` is the pipeline's archive, complete for what the topics hold right now."""
    conn = await asyncpg.connect(source_url)
    try:
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        rows = [
            tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM archive_record ORDER BY seq")
        ]
    finally:
        await conn.close()
    by_workers: dict[int, list[dict[str, Any]]] = {w: [] for w in WORKERS}
    copy = []
    for k in range(repeats):
        for w in WORKERS:
            by_workers[w].append(await archiver_catch_up(run, len(rows), f"_arch{k}w{w}", w))
        copy.append(await raw_copy(run, rows, f"_copy{k}"))
    default = by_workers.get(default_parse_workers()) or next(iter(by_workers.values()))
    return {
        "records": len(rows),
        "mean_record_bytes": round(sum(len(r[9] or b"") for r in rows) / max(1, len(rows))),
        "archiver": default,
        "archiver_by_workers": {str(w): runs for w, runs in by_workers.items()},
        "raw_copy": copy,
        "audit_check": await audit_check(run, source_url),
    }
