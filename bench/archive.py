"""Archive write rate: the archiver catching up on a filled exchange, next to a raw asyncpg COPY
of the same archive_record rows into the same table (same indexes, same batch size)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.common import BenchRun, start_archiver

BATCH = 500  # the archiver's default max_batch: one transaction per batch on both sides
COLUMNS = (
    "seq", "topic", "partition", "offset", "kind", "message_id", "document_id", "payload_type",
    "sender", "raw", "raw_sha256", "parse_error", "leaf_data", "leaf_hash", "archived_at",
)  # fmt: skip


async def archiver_catch_up(run: BenchRun, expected: int, suffix: str) -> dict[str, Any]:
    """A fresh archiver on a fresh database reads every record the exchange holds. The rate is
    timed from its first committed batch to the last, so process start and Kafka assignment
    (a fixed cost, paid once) stay out of it."""
    url = await run.create_database(suffix)
    proc = start_archiver(run, url, name=f"archiver{suffix}")
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
            if count >= expected:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"archiver wrote {count} of {expected} records")
            await asyncio.sleep(0.05)
        memory = proc.memory()
    finally:
        await conn.close()
        await proc.stop()
    rows = expected - first_count
    seconds = max(now - first_at, 1e-6)
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if rows else 0.0,
        "archiver_peak_rss_mb": memory["peak_rss_mb"] or 0.0,
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
    archiver = []
    copy = []
    for k in range(repeats):
        archiver.append(await archiver_catch_up(run, len(rows), f"_arch{k}"))
        copy.append(await raw_copy(run, rows, f"_copy{k}"))
    return {
        "records": len(rows),
        "mean_record_bytes": round(sum(len(r[9] or b"") for r in rows) / max(1, len(rows))),
        "archiver": archiver,
        "raw_copy": copy,
    }
