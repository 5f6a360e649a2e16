"""`lienthong kpi [report]` and `lienthong generate`: the paperless-share composition root."""

from __future__ import annotations

import asyncio
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from consumers.kpi import (
    ALL,
    KpiView,
    Period,
    Tree,
    kpi_table,
    load_view,
    month_range,
    view_csv,
    view_json,
)
from infra import context, services
from infra.cli.common import clean_errors, out
from infra.settings import load_settings

kpi_app = typer.Typer(
    help="Paperless share per agency and period against the e-government targets.",
    invoke_without_command=True,
)
Format = Literal["table", "json", "csv"]


def agencies_to_show(tree: Tree, agency: str | None, every: bool) -> list[str]:
    """The platform and its top-level agencies by default; with --agency, it and its children."""
    if every:
        return [ALL, *(a.code for a in tree)]
    if agency is None:
        return [ALL, *tree.roots()]
    if agency != ALL and agency not in tree:
        raise ValueError(f"agency {agency} is not in the agency directory")
    return [agency, *tree.children(agency)]


async def _view(url: str, tree: Tree, period: Period, codes: list[str]) -> KpiView:
    conn = await asyncpg.connect(url)
    try:
        return await load_view(conn, tree, period, codes, datetime.now(UTC))
    finally:
        await conn.close()


@kpi_app.callback()
@clean_errors
def kpi(
    ctx: typer.Context,
    period: str = typer.Option(
        None, "--period", help="YYYY-MM, YYYY-Qn or YYYY (default: this month)."
    ),
    agency: str = typer.Option(
        None, "--agency", help="Agency code: it (rolled up) and its children."
    ),
    every: bool = typer.Option(False, "--all", help="Every agency of the directory."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
) -> None:
    """Indicators for one period: value, target, gap and trend against the previous period."""
    if ctx.invoked_subcommand is not None:
        return
    if fmt not in ("table", "json", "csv"):
        raise ValueError(f"--format must be table, json or csv, not {fmt!r}")
    settings = load_settings()
    tree = Tree(context.agency_directory(settings))
    p = Period.parse(period) if period else Period.parse(f"{datetime.now(UTC):%Y-%m}")
    codes = agencies_to_show(tree, agency, every)
    view = asyncio.run(_view(services.database_url(settings), tree, p, codes))
    if fmt == "json":
        sys.stdout.write(view_json(view) + "\n")
    elif fmt == "csv":
        sys.stdout.write(view_csv(view))
    else:
        out.print(kpi_table(view))


@kpi_app.command("report")
@clean_errors
def kpi_report(
    first: str = typer.Option(..., "--from", help="First month, YYYY-MM."),
    last: str = typer.Option(..., "--to", help="Last month, YYYY-MM."),
    path: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write."),
    agency: str = typer.Option(None, "--agency", help="Report on this agency's subtree."),
) -> None:
    """One self-contained HTML file: share over time against the target, ranking, rejections."""
    from consumers.kpi import load_report, render_report

    settings = load_settings()
    tree = Tree(context.agency_directory(settings))
    months = month_range(first, last)
    code = agency or ALL
    if code != ALL and code not in tree:
        raise ValueError(f"agency {code} is not in the agency directory")

    url = services.database_url(settings)  # probes with asyncio.run: not inside run()

    async def run() -> str:
        conn = await asyncpg.connect(url)
        try:
            data = await load_report(conn, tree, months, code, datetime.now(UTC))
        finally:
            await conn.close()
        return render_report(data)

    path.write_text(asyncio.run(run()), encoding="utf-8")
    out.print(f"wrote {path} ({len(months)} months, {tree.name(code)})")


@kpi_app.command("refresh")
@clean_errors
def kpi_refresh() -> None:
    """Bring the KPI's monthly figures (kpi_month) up to date with the archive now.

    The archiver does it with each checkpoint; until then a changed month is counted again on
    every page that shows it, so this is only ever a matter of speed, never of correctness."""
    from consumers.kpi import refresh

    url = services.database_url(load_settings())

    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(url)
        try:
            done = await refresh(conn)
            left = await conn.fetchval("SELECT count(DISTINCT month) FROM kpi_month_stale")
            return done, int(left)
        finally:
            await conn.close()

    done, left = asyncio.run(run())
    out.print(
        f"{done} months refreshed; {left} still stale (changed meanwhile, or being refreshed)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")
    app.command("generate")(clean_errors(generate))


def generate(
    months: int = typer.Option(12, "--months", help="How many months, ending last month."),
    agencies: int = typer.Option(10, "--agencies", help="How many units beside the city."),
    seed: int = typer.Option(190, "--seed", help="Same seed, same year."),
) -> None:
    """A year of mixed electronic and paper exchange through the real sender and router.

    Like `lienthong demo`, it runs in its own time (the router judges each document at the
    moment it was sent), so it uses its own topic prefix and development PKI, printed at the
    end: archive them with `LIENTHONG_TOPIC_PREFIX=... LIENTHONG_PKI_DIR=... lienthong archive`.
    """
    import dataclasses
    import os
    import time as _time

    from consumers.kpi import plan_exchange
    from infra.logs import configure_logging
    from schemas.common import AgencyRef

    # A line per message would bury the progress bar: warnings only, unless asked otherwise.
    configure_logging(os.environ.get("LIENTHONG_LOG_LEVEL", "WARNING"))
    settings = load_settings()
    ep = services.up(settings)
    run = f"gen{int(_time.time())}"
    settings = dataclasses.replace(
        settings, topic_prefix=f"{run}.", pki_dir_override=settings.home / "generate" / run / "pki"
    )
    directory = context.agency_directory(settings)
    now = datetime.now(UTC)
    first = Period.parse(f"{now:%Y-%m}").start
    for _ in range(months):
        first = Period.parse(f"{first:%Y-%m}").previous().start
    hub = directory.lookup("000.00.00.H26")
    if hub is None:
        raise ValueError("the agency directory has no 000.00.00.H26 to act as the city")
    units = [
        AgencyRef(a.code, a.name)
        for a in directory
        if a.parent == hub.code
        and a.is_open(first)
        and a.is_open(now)
        and a.code != settings.platform_agency
    ][:agencies]
    events = plan_exchange(units, AgencyRef(hub.code, hub.name), first, months, seed)
    asyncio.run(_publish_plan(settings, ep.bootstrap, events, first))
    out.print(f"generated {len(events)} messages for {len(units) + 1} agencies from {first:%Y-%m}")
    # Plain print, one line each: the console would wrap a long path, and a pasted half sets
    # one variable. `export` lines, then the command.
    print(f"export LIENTHONG_TOPIC_PREFIX={shlex.quote(settings.topic_prefix)}")
    print(f"export LIENTHONG_PKI_DIR={shlex.quote(str(settings.pki_dir))}")
    print("lienthong archive")


async def _publish_plan(settings: Any, bootstrap: str, events: list[Any], first: Any) -> None:
    """Publish each planned event at its own time; the in-process router follows that clock."""
    import contextlib
    from datetime import time as dtime
    from datetime import timedelta

    from infra.compose.router import build_router
    from infra.demo.scenario import VN, ScenarioClock, wait_for_statuses
    from infra.services.topic_setup import ensure_for_agencies
    from producers.sender import DocumentSender
    from schemas.envelope import SignerRole
    from schemas.status import StatusCode, StatusNotice
    from signing.pkidir import PkiDirectory
    from signing.profile import CertRole
    from signing.seal import load_credential

    start = datetime.combine(first, dtime(), VN) - timedelta(days=30)
    clock = ScenarioClock(start)
    actors = sorted({e.actor for e in events})
    person = "Nguyễn Văn An"
    pki = PkiDirectory(settings.pki_dir)
    pki.init(now=start)
    for code in actors:
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=start)
        pki.issue(agency_code=code, role=CertRole.PERSON, person_name=person, now=start)
    pki.issue(agency_code=settings.platform_agency, role=CertRole.PLATFORM, now=start)
    pki.issue(agency_code=settings.platform_agency, role=CertRole.ARCHIVE, now=start)
    await ensure_for_agencies(settings, bootstrap, [*actors, settings.platform_agency])
    stop = asyncio.Event()
    router = build_router(settings, bootstrap, replay_window_days=400)
    router.clock = clock
    task = asyncio.create_task(router.run(stop))
    await asyncio.wait_for(router.ready.wait(), timeout=60)
    try:
        async with contextlib.AsyncExitStack() as stack:
            senders = {}
            for code in actors:
                creds = [
                    load_credential(settings.pki_dir, code, SignerRole.AGENCY),
                    load_credential(settings.pki_dir, code, SignerRole.PERSON, person_name=person),
                ]
                senders[code] = await stack.enter_async_context(
                    DocumentSender(
                        bootstrap,
                        credentials=creds,
                        topic=settings.topic("submissions"),
                        clock=clock,
                        client_options=settings.kafka_options(),
                    )
                )
            published = 0
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=out,
                transient=True,
            )
            stack.enter_context(progress)
            task_id = progress.add_task("gửi theo kế hoạch", total=len(events))
            for e in events:
                if isinstance(e.payload, StatusNotice):
                    # Causality: the router stamps a delivery with its clock when it routes, so
                    # it must have routed what was sent before the clock jumps to the answer
                    # (else a 01 would predate its delivery).
                    await _until_routed(router, published)
                clock.jump(e.at)
                if isinstance(e.payload, StatusNotice):
                    await senders[e.actor].send_status(e.payload, to=e.to)
                else:
                    await senders[e.actor].send(e.payload)
                published += 1
                progress.advance(task_id)
        hub_arrivals = sum(
            isinstance(e.payload, StatusNotice)
            and e.payload.code is StatusCode.ARRIVED
            and e.to == "000.00.00.H26"
            for e in events
        )
        await wait_for_statuses(
            bootstrap,
            settings.inbox("000.00.00.H26"),
            StatusCode.ARRIVED,
            hub_arrivals,
            client_options=settings.kafka_options(),
        )
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def _until_routed(router: Any, count: int, timeout_s: float = 60.0) -> None:
    """Wait until the router has handled (routed or refused) `count` submissions."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while handled_by(router.metrics.registry) < count:
        if loop.time() > deadline:
            raise TimeoutError(f"the router handled fewer than {count} submissions in time")
        await asyncio.sleep(0.02)


def handled_by(registry: Any) -> int:
    """Submissions the router routed or refused, from its own counters."""
    names = {"lienthong_router_routed_total", "lienthong_router_rejected_total"}
    return int(sum(s.value for m in registry.collect() for s in m.samples if s.name in names))
