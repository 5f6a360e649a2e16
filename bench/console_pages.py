"""Benchmark: console page latency (p50/p95) over the audit benchmark's scratch archive.

Run: python -m bench.console_pages [--documents N | --reuse] [--iterations 30]. The documents
are bench.audit_search's fixture (COPY into `lienthong_bench_audit`); the console runs in
process (Starlette's TestClient, no network) as lienthong_console, logged in as a bench account,
so each figure is the whole page: session check, access log entry, queries, template. The
fixture has document rows only (no archive records, tree heads or deliveries): the document and
verify pages measure their queries on a large table, not a long timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.audit_search import SCRATCH, TEXT_QUERIES, agencies, load, percentile
from infra import context, services
from infra.compose.archive import archive_log_id, archive_parse_context
from infra.console import ConsoleConfig, add_account, console_url, create_app
from infra.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "console_pages.json"
USER, PASSWORD = "bench.console", "benchmark console password"


async def prepare(url: str) -> list[str]:
    """The bench account (made again each run), and some document ids to open."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM console_session WHERE username = $1", USER)
        await conn.execute("DELETE FROM console_login_attempt WHERE username = $1", USER)
        await conn.execute("DELETE FROM console_account WHERE username = $1", USER)
        await add_account(conn, USER, PASSWORD, ["auditor", "kpi_viewer"])
        rows = await conn.fetch("SELECT document_id FROM document TABLESAMPLE SYSTEM (1) LIMIT 200")
    finally:
        await conn.close()
    return [r["document_id"] for r in rows]


def pages(ids: list[str], codes: list[str]) -> dict[str, Any]:
    def search_words(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/search", {"q": rng.choice(TEXT_QUERIES)}

    def search_filters(rng: random.Random) -> tuple[str, dict[str, str]]:
        year = rng.randint(2019, 2025)
        return "/search", {"sender": rng.choice(codes[:60]), "from": f"{year}-01-01",
                           "to": f"{year}-03-31"}  # fmt: skip

    def document(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/document", {"id": rng.choice(ids)}

    def verify(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/document/verify", {"id": rng.choice(ids)}

    def integrity(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/integrity", {}

    def kpi_month(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/kpi", {"period": f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}"}

    return {
        "search: words, no diacritics": search_words,
        "search: agency + quarter": search_filters,
        "document page": document,
        "verify page": verify,
        "integrity page": integrity,
        "KPI: a month, whole platform": kpi_month,
    }


def measure(url: str, ids: list[str], iterations: int) -> list[dict[str, Any]]:
    from starlette.testclient import TestClient

    settings = load_settings()
    config = ConsoleConfig(
        database_url=console_url(url),
        agencies=context.agency_directory(settings),
        trust=lambda: context.trust_store(settings),  # only asked once evidence exists
        parse_context=lambda: archive_parse_context(settings),  # the check is not measured
        log_origin=archive_log_id(settings),
    )
    results = []
    with TestClient(create_app(config), follow_redirects=False) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token is not None
        reply = client.post(
            "/login", data={"csrf": token[1], "username": USER, "password": PASSWORD}
        )
        assert reply.status_code == 303, reply.text
        for name, make in pages(ids, agencies()).items():
            rng = random.Random(name)
            for _ in range(3):
                path, params = make(rng)
                client.get(path, params=params)
            samples = []
            for _ in range(iterations):
                path, params = make(rng)
                started = time.perf_counter()
                reply = client.get(path, params=params)
                samples.append((time.perf_counter() - started) * 1000)
                assert reply.status_code == 200, (path, params, reply.status_code)
            results.append(
                {
                    "page": name,
                    "iterations": iterations,
                    "p50_ms": round(statistics.median(samples), 1),
                    "p95_ms": round(percentile(samples, 95), 1),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--database-url", help="Server to use (default: the project's own).")
    parser.add_argument("--reuse", action="store_true", help="Use the loaded scratch data.")
    args = parser.parse_args()
    admin_url = args.database_url or services.database_url(load_settings())
    if args.reuse:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    else:
        url = asyncio.run(load(admin_url, args.documents))
    ids = asyncio.run(prepare(url))
    count = asyncio.run(_count(url))
    results = measure(url, ids, args.iterations)
    print(f"\n{count} documents; whole console pages, in process, as lienthong_console")
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8}")
    for r in results:
        print(f"{r['page']:34} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"documents": count, "results": results}, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


async def _count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM document"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
