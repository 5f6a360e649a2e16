"""The KPI dashboard: one agency and period, the same figures as `lienthong kpi --format json`
(built by the same functions, from the same rows), with charts, targets and their sources,
trends, and the ranking of the units below it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumers.kpi import ALL, KpiView, Period, Tree, load_dashboard, view_csv, view_json
from infra.console.charts import RANKED_CODES, missed, ranking_chart, share_bars, trend_chart
from infra.console.web import PageContext, console_of, page, render

VN = ZoneInfo("Asia/Ho_Chi_Minh")
STATUS_LABEL = {
    "met": "đạt",
    "below target": "chưa đạt",
    "no data": "chưa có số liệu",
    "info": "tham khảo",
}
NO_DATA = "chưa có số liệu"
TREND_MONTHS = 12
# The columns of the table of sub-units: the indicators with a target.
UNIT_COLUMNS = RANKED_CODES


def kpi_agencies(tree: Tree, agency: str) -> list[str]:
    """What `lienthong kpi --agency A` shows: A (rolled up) and its children; for the whole
    platform, it and the top-level agencies."""
    if agency == ALL:
        return [ALL, *tree.roots()]
    return [agency, *tree.children(agency)]


def ranked_units(tree: Tree, agency: str) -> list[str]:
    """The units ranked under a scope, one level below it (for the platform: below each
    top-level agency), as `lienthong kpi report` ranks them."""
    if agency == ALL:
        return [c for r in tree.roots() for c in (tree.children(r) or [r])]
    return tree.children(agency)


def next_period(p: Period) -> Period:
    if p.kind == "quarter":
        return Period.parse(f"{p.end.year}-Q{(p.end.month - 1) // 3 + 1}")
    if p.kind == "year":
        return Period.parse(f"{p.end.year}")
    return Period.parse(f"{p.end:%Y-%m}")


def trend_months(p: Period) -> list[Period]:
    """The twelve months ending with the period's last month."""
    last = Period.parse(f"{p.months()[-1].start:%Y-%m}")
    months = [last]
    while len(months) < TREND_MONTHS:
        months.insert(0, months[0].previous())
    return months


def fmt_value(i: dict[str, Any]) -> str:
    v = i["value"]
    if v is None:
        return NO_DATA
    if i["unit"] == "%":
        return f"{v:.1f}%"
    if i["unit"] == "h":
        return f"{v:.1f} giờ"
    return f"{v:.0f}"


def fmt_target(i: dict[str, Any]) -> str:
    t = i["target"]
    if t is None:
        return "—"
    sign = "≤" if i["code"] == "overdue" else "≥"
    return f"{sign} {t:g}{'%' if i['unit'] == '%' else ''}"


def fmt_gap(i: dict[str, Any]) -> str:
    g = i["gap"]
    if g is None:
        return "—"
    if g == 0:
        return "đạt"
    return f"−{g:.1f} điểm %" if i["unit"] == "%" else f"{g:g}"


def fmt_ratio(i: dict[str, Any]) -> str:
    if i["unit"] != "%" or not i["denominator"]:  # nothing over nothing says nothing
        return ""
    return f"{i['numerator']}/{i['denominator']}"


def data_attrs(i: dict[str, Any]) -> str:
    """The figure's numbers exactly as the JSON has them, for a reader or a test."""

    def num(v: Any) -> str:
        return "" if v is None else json.dumps(v)

    return " ".join(
        f'data-{k.replace("_", "-")}="{num(i[k])}"'
        for k in ("value", "numerator", "denominator", "target", "gap", "previous")
    )


async def _default_period(ctx: PageContext) -> str:
    """The year of the newest document: where there is something to see."""
    newest = await ctx.conn.fetchval("SELECT max(submitted_at) FROM document")
    at = newest or datetime.now(UTC)
    return f"{at.astimezone(VN).year}"


_PERIOD_TEXT = re.compile(r"^\d{4}(-\d{2}|-Q[1-4])?$")


async def _kpi(request: Request, ctx: PageContext) -> dict[str, Any]:
    config = console_of(request).config
    tree = Tree(config.agencies)
    period_text = (request.query_params.get("period") or "").strip()
    agency = (request.query_params.get("agency") or ALL).strip()
    if not period_text:
        period_text = await _default_period(ctx)
    if not _PERIOD_TEXT.fullmatch(period_text):
        raise ValueError(f"Kỳ {period_text[:20]!r} không hợp lệ: YYYY, YYYY-Qn hoặc YYYY-MM")
    period = Period.parse(period_text)
    if agency != ALL and agency not in tree:
        raise ValueError(f"Đơn vị {agency[:20]!r} không có trong danh bạ")
    shown = kpi_agencies(tree, agency)
    units = [u for u in ranked_units(tree, agency) if u not in shown]
    # One read of the months the period, its previous one and the trend cover.
    view, trend = await load_dashboard(
        ctx.conn, tree, period, [*shown, *units], shown, trend_months(period), ctx.now
    )
    by_code = {k.agency: k for k in view.current}
    table = KpiView(period, [by_code[c] for c in shown], view.previous, view.reasons)
    figures = json.loads(view_json(table))
    ranking = [by_code[u] for u in ranked_units(tree, agency)]
    ranking = [k for k in ranking if any(k.get(c).value is not None for c in RANKED_CODES)]
    ranking.sort(key=lambda k: (-len(missed(k)), -sum(i.gap or 0 for i in missed(k)), k.agency))
    return {
        "tree": tree,
        "period": period,
        "agency": agency,
        "view": table,
        "figures": figures,
        "main": figures["agencies"][0],
        "children": figures["agencies"][1:],
        "ranking": ranking,
        "missed": missed,
        "trend": trend,
        "charts": {
            "shares": share_bars(figures["agencies"][0]["indicators"]),
            "trend": trend_chart(trend),
            "ranking": ranking_chart(ranking),
        },
    }


def _helpers() -> dict[str, Any]:
    return {
        "fmt_value": fmt_value,
        "fmt_target": fmt_target,
        "fmt_gap": fmt_gap,
        "fmt_ratio": fmt_ratio,
        "data_attrs": data_attrs,
        "status_label": STATUS_LABEL,
        "unit_columns": UNIT_COLUMNS,
    }


@page("console.kpi", "kpi_viewer")
async def kpi(request: Request, ctx: PageContext) -> Response:
    config = console_of(request).config
    tree = Tree(config.agencies)
    options = [(ALL, tree.name(ALL)), *((a.code, a.name) for a in tree)]
    try:
        data = await _kpi(request, ctx)
    except ValueError as exc:
        return render(
            request,
            "kpi.html",
            {"error": str(exc), "options": options, **_helpers()},
            session=ctx.session,
            status=400,
        )
    p = data["period"]
    return render(
        request,
        "kpi.html",
        {
            **data,
            **_helpers(),
            "error": "",
            "options": options,
            "previous_period": p.previous().label,
            "next_period": next_period(p).label,
            "generated_at": ctx.now,
        },
        session=ctx.session,
    )


@page("console.kpi_csv", "kpi_viewer")
async def kpi_csv(request: Request, ctx: PageContext) -> Response:
    try:
        data = await _kpi(request, ctx)
    except ValueError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
    scope = "toan-he-thong" if data["agency"] == ALL else data["agency"]
    name = f"kpi-{data['period'].label}-{scope}"
    return Response(
        view_csv(data["view"]),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.csv"'},
    )


def routes() -> list[Route]:
    return [Route("/kpi", kpi), Route("/kpi.csv", kpi_csv)]
