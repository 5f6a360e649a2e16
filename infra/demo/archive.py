"""The demo's second half: archive what travelled, audit it, and measure the paperless share."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from rich.console import Console
from rich.table import Table

from consumers.archive import check_archive
from consumers.audit import SearchFilters, load_evidence, search_documents, verify_evidence
from consumers.kpi import (
    ALL,
    Period,
    Tree,
    kpi_table,
    load_report,
    load_view,
    month_range,
    render_report,
)
from infra import context
from infra.compose.archive import archive_parse_context, build_archiver
from infra.services.migrate import migrate
from infra.settings import Settings

DEMO_DATABASE = "lienthong_demo"


async def demo_database(url: str) -> str:
    """A fresh database for the demo's archive, so a second run counts nothing twice. On a
    server where we may not create databases, the configured one is used as it is."""
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = await asyncpg.connect(admin, timeout=10)
    except (OSError, asyncpg.PostgresError):
        return url
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        await conn.execute(
            f"CREATE DATABASE \"{DEMO_DATABASE}\" TEMPLATE template0 ENCODING 'UTF8'"
        )
    except asyncpg.PostgresError:
        return url
    finally:
        await conn.close()
    demo_url = urlunsplit(parts._replace(path=f"/{DEMO_DATABASE}"))
    conn = await asyncpg.connect(demo_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return demo_url


async def archive_everything(settings: Settings, bootstrap: str, url: str, out: Console) -> None:
    """Run the archiver until it has caught up (the row count stops moving), then stop it: it
    signs a tree head on the way out."""
    archiver = build_archiver(settings, bootstrap, url, checkpoint_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))
    conn = await asyncpg.connect(url)
    try:
        last, steady = -1, 0
        for _ in range(240):
            await asyncio.sleep(0.5)
            if task.done():
                break
            count = await conn.fetchval("SELECT count(*) FROM archive_record")
            steady = steady + 1 if count == last and count > 0 else 0
            last = count
            if steady >= 4:
                break
        stop.set()
        await task
        kinds = await conn.fetch(
            "SELECT kind, count(*) AS n FROM archive_record GROUP BY kind ORDER BY kind"
        )
        head = await conn.fetchrow(
            "SELECT size, encode(root, 'hex') AS root FROM tree_head ORDER BY size DESC LIMIT 1"
        )
    finally:
        await conn.close()
    out.print(
        "archived: "
        + ", ".join(f"{r['n']} {r['kind']}" for r in kinds)
        + (
            f"; signed tree head: size {head['size']}, root {head['root'][:16]}…"
            if head
            else "; no tree head"
        )
    )


async def audit(settings: Settings, url: str, decision_id: str, out: Console) -> None:
    trust, agencies = context.trust_store(settings), context.agency_directory(settings)
    conn = await asyncpg.connect(url)
    try:
        query = "nha o cuu thanh nien xung phong"
        page = await search_documents(conn, SearchFilters(text=query), limit=5)
        found = Table(
            "document", "subject", "rank", title=f'Auditor\'s search, without diacritics: "{query}"'
        )
        for hit in page.hits:
            found.add_row(hit.document_id, (hit.subject or "")[:70], f"{hit.rank or 0:.3f}")
        out.print(found)
        evidence = await load_evidence(conn, decision_id)
        checks = Table("check", "result", "detail", title=f"audit verify {decision_id}")
        for r in verify_evidence(evidence, trust=trust, agencies=agencies, now=datetime.now(UTC)):
            checks.add_row(r.name, "PASS" if r.ok else "FAIL", r.detail[:80])
        out.print(checks)
        report = await check_archive(
            conn, trust=trust, at=datetime.now(UTC), derive=archive_parse_context(settings)
        )
        out.print(f"audit check: {report.summary()}")
    finally:
        await conn.close()


async def paperless_share(settings: Settings, url: str, demo_home: Path, out: Console) -> Path:
    tree = Tree(context.agency_directory(settings))
    period = Period.parse("2019")
    conn = await asyncpg.connect(url)
    try:
        view = await load_view(conn, tree, period, [ALL, "000.00.00.H26"], datetime.now(UTC))
        data = await load_report(
            conn, tree, month_range("2019-08", "2019-10"), ALL, datetime.now(UTC)
        )
    finally:
        await conn.close()
    out.print(kpi_table(view))
    path = demo_home / "kpi-report.html"
    path.write_text(render_report(data), encoding="utf-8")
    return path
