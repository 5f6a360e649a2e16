"""Benchmark: auditors' searches over N archived documents, p50/p95/p99 per kind of search.

Run: python -m bench.audit_search --documents 1000000 [--quick]. The documents are a fixture
written with COPY into a scratch database (`lienthong_bench_audit` on the project's server, or
--database-url), not the pipeline: realistic shape (~640 agencies with skewed volumes, Vietnamese
subjects and bodies with diacritics, agency names, several years of dates, recipient arrays;
bench/audit_corpus.py), made in minutes. Searches run through consumers.audit exactly as
`lienthong audit search` runs them, as the auditor role; each text search is also timed as the
subject-only search was before 0008 (`heading_only`, every word) on the same data, the ratio
beside it. The corpus's scale (rows, body characters, table and index sizes) is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.audit_corpus import COLUMNS, KINDS, YEARS, agencies, documents
from consumers.audit import SearchFilters, build_search, search_documents
from infra import services
from infra.compose.audit import auditor_url
from infra.services.migrate import migrate
from infra.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "audit_search.json"
SCRATCH = "lienthong_bench_audit"

# Words auditors type, without diacritics (what "thu tuc hanh chinh" stands for).
TEXT_QUERIES = [
    "thu tuc hanh chinh", "chuyen doi so", "giai phong mat bang", "phong chay chua chay",
    "khieu nai to cao", "nha o nguoi co cong", "nuoc sach nong thon", "an toan thuc pham",
    "quan ly dat dai dong da", "ke hoach chuyen doi so", "dan quan tu ve", "cho truyen thong",
]  # fmt: skip
# Phrases of the bodies (tasks, closings), rarely in a subject.
BODY_QUERIES = [
    "phan dau duy tri 100 thu tuc hanh chinh", "cai cach hanh chinh", "cong dich vu cong",
    "lien thong phan mem quan ly van ban", "so hoa ho so", "bo phan mot cua",
    "dich vu cong truc tuyen muc do 3 4", "tru van ban mat", "xa hoi hoa huyen soc son",
    "diem nong khieu kien dong nguoi", "bao cao uy ban nhan dan thanh pho qua so noi vu",
    "kiem tra giam sat quan hoan kiem",
]  # fmt: skip
# Words found in no document beside words found in many: partial matches only.
PARTIAL_QUERIES = [f"{q} zzkhongco" for q in TEXT_QUERIES]


async def load(admin_url: str, n: int) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {SCRATCH}")
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        # Bulk load, then index: building each index once is far faster than maintaining it
        # row by row, and gives the same indexes the migrations define. The search columns are
        # the database's (0008's trigger), as for every writer.
        defs = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'document' "
            "AND indexname <> 'document_pkey'"
        )
        for d in defs:
            await conn.execute(f"DROP INDEX {d['indexname']}")
        codes = agencies()
        started = time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        for row in documents(n, codes):
            batch.append(row)
            if len(batch) == 20_000:
                await conn.copy_records_to_table("document", records=batch, columns=COLUMNS)
                batch.clear()
        if batch:
            await conn.copy_records_to_table("document", records=batch, columns=COLUMNS)
        print(f"loaded {n} documents in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for d in defs:
            await conn.execute(d["indexdef"])
        await conn.execute("VACUUM ANALYZE document")
        print(f"indexed in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()
    return url


SCALE = """
SELECT count(*) AS documents,
       round(avg(length(body))) AS body_chars_mean,
       max(length(body)) AS body_chars_max,
       pg_table_size('document') AS table_bytes,
       pg_indexes_size('document') AS index_bytes,
       pg_relation_size('document_search_full_idx') AS full_text_index_bytes,
       pg_relation_size('document_recent_search_idx') AS heading_walk_index_bytes
FROM document"""


async def scale(url: str) -> dict[str, Any]:
    """How big the searched corpus is: rows, body text, table and index sizes."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(SCALE)
    finally:
        await conn.close()
    assert row is not None
    return {k: int(v) if v is not None else None for k, v in row.items()}


Case = Callable[[random.Random], SearchFilters]


def cases(codes: list[str]) -> dict[str, Case]:
    busy = codes[:60]  # agencies with volume worth auditing

    def agency_and_dates(rng: random.Random) -> SearchFilters:
        start = date(2019, 1, 1) + timedelta(days=rng.randrange(YEARS * 365 - 90))
        return SearchFilters(
            sender=rng.choice(busy), date_from=start, date_to=start + timedelta(days=90)
        )

    def recipient(rng: random.Random) -> SearchFilters:
        return SearchFilters(recipient=rng.choice(codes))

    def words(queries: list[str]) -> Case:
        return lambda rng: SearchFilters(text=rng.choice(queries))

    def number_and_kind(rng: random.Random) -> SearchFilters:
        _prefix, _abbr, notation, type_name = rng.choice(KINDS)
        number = rng.randint(1, 9999)
        return SearchFilters(
            text=rng.choice((f"{type_name} {number}", f"{number}/{notation}", f"so {number}"))
        )

    def words_from_agency(rng: random.Random) -> SearchFilters:
        return SearchFilters(text=rng.choice(BODY_QUERIES), sender=rng.choice(busy))

    return {
        "agency + 90-day range": agency_and_dates,
        "recipient": recipient,
        "subject words, no diacritics": words(TEXT_QUERIES),
        "body phrases, no diacritics": words(BODY_QUERIES),
        "number and notation": number_and_kind,
        "partial (a word no document has)": words(PARTIAL_QUERIES),
        "body phrases + sender": words_from_agency,
    }


def before_0008(filters: SearchFilters) -> SearchFilters | None:
    """The same words as the search matched them before 0008: the subject (heading) only,
    every word; None for a search without words."""
    if filters.text is None:
        return None
    return SearchFilters(**{**_fields(filters), "heading_only": True, "all_words": True})


def _fields(filters: SearchFilters) -> dict[str, Any]:
    return {k: getattr(filters, k) for k in filters.__slots__}


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _latency(samples: list[float], cpu: list[float]) -> dict[str, float]:
    figures = {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 95), 2),
        "p99_ms": round(percentile(samples, 99), 2),
    }
    if cpu:
        figures["cpu_p50_ms"] = round(statistics.median(cpu), 2)
        figures["cpu_p95_ms"] = round(percentile(cpu, 95), 2)
    return figures


class ServerCpu:
    """CPU time of the connection's server process (/proc/PID/schedstat, nanoseconds): what a
    search costs whatever else the machine runs; absent when the server is on another host."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/schedstat")

    def ns(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


async def _timed(
    conn: asyncpg.Connection, filters: SearchFilters, cpu: ServerCpu
) -> tuple[float, float | None, Any]:
    before = cpu.ns()
    started = time.perf_counter()
    page = await search_documents(conn, filters, limit=20)
    wall = (time.perf_counter() - started) * 1000
    after = cpu.ns()
    spent = (after - before) / 1e6 if before is not None and after is not None else None
    return wall, spent, page


async def measure(url: str, iterations: int) -> list[dict[str, Any]]:
    """Each kind of search `iterations` times; a text search also as before 0008, alternating
    with it so both meet the same cache and the same neighbours on the machine."""
    conn = await asyncpg.connect(
        auditor_url(url), server_settings={"plan_cache_mode": "force_custom_plan"}
    )
    results = []
    cpu = ServerCpu(await conn.fetchval("SELECT pg_backend_pid()"))
    try:
        for name, make in cases(agencies()).items():
            rng = random.Random(name)
            for _ in range(5):  # warm the cache as a running archive would be
                filters = make(rng)
                await search_documents(conn, filters, limit=20)
                if (old := before_0008(filters)) is not None:
                    await search_documents(conn, old, limit=20)
            samples, before, hits, old_hits = [], [], [], []
            cpu_ms: list[float] = []
            old_cpu_ms: list[float] = []
            matches: dict[str, int] = {}
            for _ in range(iterations):
                filters = make(rng)
                ms, spent, page = await _timed(conn, filters, cpu)
                samples.append(ms)
                cpu_ms += [spent] if spent is not None else []
                hits.append(len(page.hits))
                first = page.hits[0].match if page.hits else None
                matches[str(first)] = matches.get(str(first), 0) + 1
                if (old := before_0008(filters)) is not None:
                    ms, spent, page = await _timed(conn, old, cpu)
                    before.append(ms)
                    old_cpu_ms += [spent] if spent is not None else []
                    old_hits.append(len(page.hits))
            example = make(rng)
            query = build_search(example, limit=20)
            plan_rows = await conn.fetch("EXPLAIN (ANALYZE) " + query.text, *query.args)
            result: dict[str, Any] = {
                "search": name,
                "iterations": iterations,
                **_latency(samples, cpu_ms),
                "mean_hits": round(statistics.mean(hits), 1),
                "first_hit_match": matches,
                "plan": [r[0] for r in plan_rows],
            }
            if before:
                result["before_0008"] = {
                    **_latency(before, old_cpu_ms),
                    "mean_hits": round(statistics.mean(old_hits), 1),
                }
                result["p95_ratio"] = round(result["p95_ms"] / result["before_0008"]["p95_ms"], 2)
                if cpu_ms and old_cpu_ms:
                    old_cpu = result["before_0008"]["cpu_p95_ms"]
                    result["cpu_p95_ratio"] = round(result["cpu_p95_ms"] / max(old_cpu, 0.01), 2)
            results.append(result)
    finally:
        await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="30 searches per kind, not 300.")
    parser.add_argument("--database-url", help="Server to use (default: the project's own).")
    parser.add_argument("--reuse", action="store_true", help="Search the loaded scratch data.")
    args = parser.parse_args()
    admin_url = args.database_url or services.database_url(load_settings())
    if args.reuse:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    else:
        url = asyncio.run(load(admin_url, args.documents))
    corpus = asyncio.run(scale(url))
    results = asyncio.run(measure(url, 30 if args.quick else 300))
    print(
        f"\n{corpus['documents']:,} documents, bodies of {corpus['body_chars_mean']} characters "
        f"on average (at most {corpus['body_chars_max']:,}); table {_mib(corpus['table_bytes'])}, "
        f"indexes {_mib(corpus['index_bytes'])} (full text {_mib(corpus['full_text_index_bytes'])})"
    )
    print(
        "one page of 20, as the auditor role: wall-clock latency, and the server process's CPU"
        " time per search; 'before' = the same words, subject only, as before 0008"
    )
    print(
        f"{'search':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'cpu p50':>8} {'cpu p95':>8}"
        f" {'hits':>6} {'before p95':>11} {'before cpu p95':>15}"
    )
    nan = float("nan")
    for r in results:
        old = r.get("before_0008")
        print(
            f"{r['search']:34} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r.get('cpu_p50_ms', nan):8.2f} {r.get('cpu_p95_ms', nan):8.2f} "
            f"{r['mean_hits']:6.1f} "
            + (
                f"{old['p95_ms']:8.2f} ×{r['p95_ratio']} "
                f"{old.get('cpu_p95_ms', nan):8.2f} ×{r.get('cpu_p95_ratio')}"
                if old
                else ""
            )
        )
    for r in results:
        print(f"\n-- plan: {r['search']}\n" + "\n".join(r["plan"]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"corpus": corpus, "results": results}, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


def _mib(n: int | None) -> str:
    return f"{(n or 0) / 1048576:,.0f} MiB"


if __name__ == "__main__":
    main()
