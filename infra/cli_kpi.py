"""`lienthong kpi [report]` and `lienthong generate`: the paperless-share composition root."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import asyncpg
import typer

from consumers.kpi import ALL, Period, Tree, month_range
from consumers.kpi_render import kpi_table, view_csv, view_json
from consumers.kpi_sql import KpiView, load_view
from infra import context, services
from infra.cli import clean_errors, out
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
    from consumers.kpi_html import load_report, render_report

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


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")
