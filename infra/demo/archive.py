"""The demo's second half: archive what travelled, audit it, and measure the paperless share."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from rich.console import Console
from rich.table import Table

from consumers.archive import WitnessPolicy, check_archive, collect_cosignatures, load_log_key
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
from infra.compose.archive import archive_log_id, archive_parse_context, build_archiver
from infra.compose.witness import witness_main
from infra.services.migrate import migrate
from infra.settings import Settings
from signing.note import COSIGNATURE_V1, NoteSigner

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


DEMO_WITNESSES = ("bo-noi-vu.gov.vn/witness", "vpcp.gov.vn/witness")


async def witness_the_archive(
    settings: Settings, bootstrap: str, url: str, demo_home: Path, out: Console
) -> WitnessPolicy:
    """Two witnesses outside the platform (the Ministry of Home Affairs, the Government Office),
    each with its own key and state file in the demo's home, cosign the checkpoint the
    archiver published on its way out; the cosignatures are collected into the archive. The
    auditor then holds the archive to both (`audit check --witness`)."""
    log_key = load_log_key(settings.pki_dir, archive_log_id(settings)).verifier
    folder = demo_home / "witnesses"
    folder.mkdir(parents=True, exist_ok=True)
    signers = []
    for name in DEMO_WITNESSES:
        key_file = folder / f"{name.split('/')[0]}.key"
        if key_file.exists():
            signer = NoteSigner.parse(key_file.read_text())
        else:
            signer = NoteSigner.generate(name, COSIGNATURE_V1)
            key_file.write_text(signer.encode() + "\n")
            key_file.chmod(0o600)
        key_file.with_suffix(".vkey").write_text(signer.verifier.encode() + "\n")
        signers.append(signer)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            witness_main(
                settings,
                bootstrap,
                url,
                signer=signer,
                log_key=log_key,
                state_file=folder / f"{signer.name.split('/')[0]}.state.json",
                stop=stop,
            )
        )
        for signer in signers
    ]
    tasks.append(
        asyncio.create_task(
            collect_cosignatures(
                bootstrap,
                settings.topic("cosignatures"),
                url,
                stop,
                client_options=settings.kafka_options(),
            )
        )
    )
    conn = await asyncpg.connect(url)
    try:
        head = await conn.fetchval("SELECT max(size) FROM tree_head")
        cosigned = 0
        for _ in range(150):
            cosigned = await conn.fetchval(
                "SELECT count(DISTINCT witness) FROM cosignature WHERE size = $1", head
            )
            if cosigned >= len(signers) or any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await conn.close()
    out.print(
        f"witnesses: {cosigned} of {len(signers)} cosigned the archive's checkpoint of size "
        f"{head}; their verifier keys are in {folder}/*.vkey",
        soft_wrap=True,
    )
    return WitnessPolicy(witnesses=tuple(s.verifier for s in signers), required=len(signers))


async def audit(
    settings: Settings,
    url: str,
    decision_id: str,
    out: Console,
    witnesses: WitnessPolicy | None = None,
) -> None:
    trust, agencies = context.trust_store(settings), context.exchange_directory(settings)
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
            conn,
            trust=trust,
            at=datetime.now(UTC),
            derive=archive_parse_context(settings),
            witnesses=witnesses,
            origin=archive_log_id(settings),
        )
        held = f" --witnesses {witnesses.required}" if witnesses else ""
        out.print(f"audit check{held}: {report.summary()}")
        if report.findings:
            for finding in report.findings[:5]:
                out.print(f"  [red]{finding}[/]")
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
