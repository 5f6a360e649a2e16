"""Benchmark: console page latency (p50/p95) over the audit benchmark's scratch archive.

Run: python -m bench.console_pages [--documents N | --reuse] [--exchange] [--iterations 30]
[--only TEXT]. The documents are bench.audit_search's fixture (COPY into
`lienthong_bench_audit`); the console runs in process (Starlette's TestClient, no network) as
lienthong_console, logged in as a bench account, so each figure is the whole page: session check,
access log entry, queries, template. The fixture has document rows only (no archive records,
tree heads or deliveries), and their payload type is not one the KPI counts: the document and
verify pages measure their queries on a large table, not a long timeline, and the KPI page reads
a period where nothing counts. `--exchange` (slow: it rewrites the table) turns the fixture into
an exchange the KPI sees: payload types, due dates, every routed copy delivered, and the
recipients' 01 and 06 notices (`add_exchange`).
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
from consumers.kpi import Tree
from infra import context, services
from infra.compose.archive import archive_log_id, archive_parse_context
from infra.console import ConsoleConfig, add_account, console_url, create_app
from infra.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "console_pages.json"
USER, PASSWORD = "bench.console", "benchmark console password"


# The fixture as an exchange: 1 document in 10 a paper registration, half the reports (BC) sent
# as periodic reports, 3 in 10 with a due date; each routed electronic document delivered to
# every recipient (1 copy in 100 delivered again a day later), 9 copies in 10 answered with a 01
# within a day, 6 in 10 with a 06 within a month. Hash-derived, so a rerun gives the same rows;
# written in time order, as the archiver appends them.
EXCHANGE = [
    """UPDATE document SET
        payload_type = CASE
            WHEN abs(hashtext(document_id)) % 10 = 0 THEN 'PAPER_EXCHANGE_RECORD'
            WHEN doc_type = 'BC' AND abs(hashtext(document_id)) % 2 = 0 THEN 'PERIODIC_REPORT'
            ELSE 'OFFICIAL_DOCUMENT' END,
        due_date = CASE WHEN abs(hashtext(document_id)) % 10 IN (1, 2, 3)
                        THEN promulgation_date + 15 END""",
    # The scratch copies have no archive records behind them.
    "ALTER TABLE delivery DROP CONSTRAINT IF EXISTS delivery_seq_fkey",
    "ALTER TABLE status_event DROP CONSTRAINT IF EXISTS status_event_seq_fkey",
    "CREATE TEMP SEQUENCE bench_seq",
    """INSERT INTO delivery (document_id, recipient, seq, delivered_at)
    SELECT d.document_id, r.recipient, nextval('bench_seq'),
           d.submitted_at + make_interval(secs => 1 + abs(hashtext(d.document_id || r.recipient))
                                                      % 600)
    FROM document d CROSS JOIN LATERAL unnest(d.recipients) AS r(recipient)
    WHERE d.routing_outcome = 'routed' AND d.payload_type <> 'PAPER_EXCHANGE_RECORD'
    ORDER BY 4""",
    """INSERT INTO delivery (document_id, recipient, seq, delivered_at)
    SELECT document_id, recipient, nextval('bench_seq'), delivered_at + interval '1 day'
    FROM delivery WHERE abs(hashtext(document_id || recipient || 'again')) % 100 = 0
    ORDER BY 4""",
    """INSERT INTO status_event (seq, document_id, from_agency, to_agency, code, at)
    SELECT nextval('bench_seq'), c.document_id, c.recipient, d.sender, x.code,
           c.delivered_at + CASE x.code
               WHEN '01' THEN make_interval(mins => abs(hashtext(c.key || '01')) % 1500)
               ELSE make_interval(hours => abs(hashtext(c.key || '06')) % 700) END
    FROM (SELECT document_id, recipient, document_id || recipient AS key,
                 min(delivered_at) AS delivered_at
          FROM delivery GROUP BY 1, 2) AS c
    JOIN document d USING (document_id)
    CROSS JOIN (VALUES ('01', 9), ('06', 6)) AS x(code, tenths)
    WHERE abs(hashtext(c.key)) % 10 < x.tenths
    ORDER BY 6""",
]


async def add_exchange(url: str) -> None:
    """Rewrite the scratch documents into an exchange the KPI counts (EXCHANGE), indexes off
    while rows are written, as `load` does."""
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        defs = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('document', 'delivery', 'status_event') AND indexname NOT LIKE '%_pkey'"
        )
        for d in defs:
            await conn.execute(f"DROP INDEX {d['indexname']}")
        for step in EXCHANGE:
            await conn.execute(step)
        await conn.execute("VACUUM FULL document")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for d in defs:
            await conn.execute(d["indexdef"])
        for table in ("document", "delivery", "status_event", "kpi_copy"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        copies = await conn.fetchval("SELECT count(*) FROM delivery")
        notices = await conn.fetchval("SELECT count(*) FROM status_event")
        print(
            f"exchange: {copies} deliveries, {notices} notices "
            f"in {time.perf_counter() - started:.0f} s"
        )
    finally:
        await conn.close()


async def prepare(url: str) -> list[str]:
    """The bench account (made again each run), some document ids to open, and the KPI's
    monthly figures made ready, as the archiver's checkpoints keep them (a stale month would
    be counted again on every page that shows it)."""
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        months = await conn.fetchval("SELECT lt_kpi_refresh()")
        if months:
            await conn.execute("VACUUM ANALYZE kpi_month")
            print(f"KPI: {months} months refreshed in {time.perf_counter() - started:.1f} s")
        await conn.execute("DELETE FROM console_session WHERE username = $1", USER)
        await conn.execute("DELETE FROM console_login_attempt WHERE username = $1", USER)
        await conn.execute("DELETE FROM console_account WHERE username = $1", USER)
        await add_account(conn, USER, PASSWORD, ["auditor", "kpi_viewer"])
        rows = await conn.fetch("SELECT document_id FROM document TABLESAMPLE SYSTEM (1) LIMIT 200")
    finally:
        await conn.close()
    return [r["document_id"] for r in rows]


def pages(ids: list[str], codes: list[str], units: list[str]) -> dict[str, Any]:
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

    def kpi_year(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/kpi", {"period": f"{rng.randint(2019, 2025)}"}

    def kpi_unit(rng: random.Random) -> tuple[str, dict[str, str]]:
        return "/kpi", {
            "period": f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}",
            "agency": rng.choice(units),
        }

    return {
        "search: words, no diacritics": search_words,
        "search: agency + quarter": search_filters,
        "document page": document,
        "verify page": verify,
        "integrity page": integrity,
        "KPI: a month, whole platform": kpi_month,
        "KPI: a year, whole platform": kpi_year,
        "KPI: a month, one unit": kpi_unit,
    }


def measure(url: str, ids: list[str], iterations: int, only: str = "") -> list[dict[str, Any]]:
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
        tree = Tree(config.agencies)
        units = [c for r in tree.roots() for c in tree.children(r)]
        for name, make in pages(ids, agencies(), units).items():
            if only.lower() not in name.lower():
                continue
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
    parser.add_argument(
        "--exchange", action="store_true", help="Make the fixture an exchange the KPI counts."
    )
    parser.add_argument("--only", default="", help="Only the pages whose name contains this.")
    args = parser.parse_args()
    admin_url = args.database_url or services.database_url(load_settings())
    if args.reuse:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    else:
        url = asyncio.run(load(admin_url, args.documents))
        if args.exchange:
            asyncio.run(add_exchange(url))
    ids = asyncio.run(prepare(url))
    count, deliveries = asyncio.run(_count(url))
    results = measure(url, ids, args.iterations, args.only)
    print(
        f"\n{count} documents, {deliveries} deliveries; whole console pages, in process, "
        "as lienthong_console"
    )
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8}")
    for r in results:
        print(f"{r['page']:34} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"documents": count, "deliveries": deliveries, "results": results}, indent=2)
        + "\n"
    )
    print(f"\nwrote {RESULTS}")


async def _count(url: str) -> tuple[int, int]:
    """Documents, and the deliveries among them (0 unless --exchange made some)."""
    conn = await asyncpg.connect(url)
    try:
        documents = await conn.fetchval("SELECT count(*) FROM document")
        return int(documents), int(await conn.fetchval("SELECT count(*) FROM delivery"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
