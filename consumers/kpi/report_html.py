"""The KPI report: one self-contained HTML file with hand-written inline SVG charts.

No scripts, fonts or images are referenced: the file opens offline and can be mailed as is.
Every drawn figure carries `data-*` attributes holding the number it shows, so a test (or an
auditor) can read the report's figures back from the rendered DOM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

import asyncpg

from consumers.kpi.indicators import (
    ALL,
    STATUS_LABEL,
    AgencyKpi,
    Indicator,
    Period,
    Status,
    Timeliness,
    Tree,
    evaluate,
    rollup_reasons,
)
from consumers.kpi.render import NO_DATA, fmt_gap, fmt_ratio, fmt_target, fmt_value
from consumers.kpi.sql import (
    VN,
    answering,
    due_months,
    month_rows,
    rejections,
    timeliness_by_period,
    trend_of,
)

SERIES = (("docs_sent", "#1f6feb"), ("docs_received", "#8250df"), ("reports_sent", "#bf8700"))
SUMMARY_CODES = ("docs_sent", "docs_received", "reports_sent", "connected", "arrived_same_day")
# What a unit is ranked on: the shares with a target, and the overdue count.
RANKED_CODES = (*SUMMARY_CODES, "overdue")


@dataclass(frozen=True, slots=True)
class ReportData:
    agency: str
    name: str
    whole: AgencyKpi  # the whole range, rolled up
    monthly: list[AgencyKpi]
    ranking: list[AgencyKpi]  # units over the whole range, most targets missed first
    reasons: dict[str, int]
    generated_at: datetime


async def load_report(
    conn: asyncpg.Connection,
    tree: Tree,
    months: Sequence[Period],
    code: str,
    now: datetime,
) -> ReportData:
    whole = Period(months[0].start, months[-1].end, "range")
    # Percentiles do not add up over months: the whole range and each month are judged apart,
    # from one read of the range's month rows. The ranked units are judged on counts and
    # shares only: their percentiles are not taken.
    percentiles = [code]
    periods = [whole, *months]
    span = await month_rows(
        conn, whole.start, whole.end, answering(tree, percentiles), due_months(periods, now)
    )
    t, *per_month = await timeliness_by_period(conn, periods, tree, now, percentiles, span)
    own = span.own_counts(whole)
    # Rank the units one level below the scope (for the platform: below each top-level
    # agency, or the agency itself when it has none), so rolled-up figures never compete
    # with their own parts.
    if code == ALL:
        units = [c for r in tree.roots() for c in (tree.children(r) or [r])]
    else:
        units = tree.children(code)
    ranked = [evaluate(c, whole, own, t.get(c, Timeliness()), tree) for c in units]
    ranked = [k for k in ranked if any(k.get(c).value is not None for c in RANKED_CODES)]
    ranked.sort(key=lambda k: (-len(missed(k)), -total_gap(k), k.agency))
    return ReportData(
        agency=code,
        name=tree.name(code),
        whole=evaluate(code, whole, own, t.get(code, Timeliness()), tree),
        monthly=[
            evaluate(code, m, span.own_counts(m), tm.get(code, Timeliness()), tree)
            for m, tm in zip(months, per_month, strict=True)
        ],
        ranking=ranked,
        reasons=rollup_reasons(await rejections(conn, whole.start, whole.end), code, whole, tree),
        generated_at=now,
    )


async def load_trend(
    conn: asyncpg.Connection, tree: Tree, months: Sequence[Period], code: str, now: datetime
) -> list[AgencyKpi]:
    """Each month's indicators for `code`, without percentiles (they read "no data"): a trend
    of shares and counts. One read of the months' rows."""
    span = await month_rows(
        conn, months[0].start, months[-1].end, answers=(), due=due_months(months, now)
    )
    return await trend_of(conn, span, tree, months, code, now)


def missed(k: AgencyKpi) -> list[Indicator]:
    """The unit's ranked indicators that are below their target."""
    return [k.get(c) for c in RANKED_CODES if k.get(c).status == Status.BELOW]


def total_gap(k: AgencyKpi) -> float:
    return round(sum(i.gap or 0.0 for i in missed(k)), 6)


def _attrs(i: Indicator) -> str:
    def num(v: float | int | None) -> str:
        return "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return (
        f'data-code="{i.code}" data-value="{num(i.value)}" data-numerator="{num(i.numerator)}" '
        f'data-denominator="{num(i.denominator)}" data-target="{num(i.target)}" '
        f'data-gap="{num(i.gap)}" data-status="{escape(str(i.status))}"'
    )


def share_chart(monthly: Sequence[AgencyKpi]) -> str:
    """Monthly shares as lines over 0-100%, with the 90% target as a dashed line."""
    w, h, left, top, bottom = 720, 300, 48, 16, 40
    n = max(len(monthly), 1)
    step = (w - left - 16) / max(n - 1, 1)

    def x(k: int) -> float:
        return left + k * step if n > 1 else left + (w - left) / 2

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / 100)

    parts = [
        f'<svg id="chart-share" role="img" viewBox="0 0 {w} {h}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Tỷ lệ văn bản điện tử theo tháng">'
    ]
    for v in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{w - 8}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v}%</text>'
        )
    # One target line per series, in its colour: documents and reports have different targets,
    # and a report target can change within the range (30% before 2025, 100% from 2025).
    for n, (code, colour) in enumerate(SERIES):
        targets = [m.get(code).target for m in monthly]
        if any(v is None for v in targets):
            continue
        path = " ".join(f"{x(k):.1f},{y(v or 0):.1f}" for k, v in enumerate(targets))
        label = " / ".join(sorted({f"{v:g}%" for v in targets if v is not None}))
        parts.append(
            f'<polyline id="target-{code}" class="target" data-series="{code}" '
            f'data-targets="{",".join(f"{v:g}" for v in targets if v is not None)}" '
            f'points="{path}" fill="none" stroke="{colour}" stroke-dasharray="6 4" '
            f'stroke-width="1.5" opacity="0.8"/>'
            f'<text x="{w - 10}" y="{y(targets[-1] or 0) - 4 - 12 * n:.1f}" text-anchor="end" '
            f'font-size="11" fill="{colour}">mục tiêu {escape(label)}</text>'
        )
    for k, m in enumerate(monthly):
        parts.append(
            f'<text x="{x(k):.1f}" y="{h - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{m.period.label[2:]}</text>'
        )
    for code, colour in SERIES:
        points = [(k, m.get(code)) for k, m in enumerate(monthly)]
        known = [(k, i) for k, i in points if i.value is not None]
        if len(known) > 1:
            path = " ".join(f"{x(k):.1f},{y(i.value or 0):.1f}" for k, i in known)
            parts.append(
                f'<polyline data-series="{code}" points="{path}" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        for k, i in points:
            month = monthly[k].period.label
            if i.value is None:
                # "no data" is drawn as an empty tick, never as a point at 0%.
                parts.append(
                    f'<g class="point no-data" data-series="{code}" data-month="{month}" '
                    f"{_attrs(i)}></g>"
                )
                continue
            parts.append(
                f'<circle class="point" data-series="{code}" data-month="{month}" {_attrs(i)} '
                f'cx="{x(k):.1f}" cy="{y(i.value):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(i.name)} {month}: {fmt_value(i)} ({fmt_ratio(i)})</title>"
                f"</circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def ranking_chart(ranking: Sequence[AgencyKpi], limit: int = 30) -> str:
    """Horizontal bars: how many targets each unit misses, and which (most missed first)."""
    rows = list(ranking[:limit])
    bar_h, label_w, w = 22, 300, 720
    h = max(len(rows), 1) * bar_h + 24
    scale = 28.0  # per missed target; at most len(RANKED_CODES) of them
    parts = [
        f'<svg id="chart-ranking" role="img" viewBox="0 0 {w} {h}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Xếp hạng đơn vị theo chỉ tiêu chưa đạt">'
    ]
    for r, k in enumerate(rows):
        below = missed(k)
        yy = r * bar_h + 4
        names = ", ".join(i.name for i in below) or STATUS_LABEL[Status.MET]
        colour = "#2da44e" if not below else "#cf222e"
        parts.append(
            f'<g class="rank" data-agency="{k.agency}" data-rank="{r + 1}" '
            f'data-missed="{len(below)}" data-gap-total="{total_gap(k):g}" '
            f'data-missed-codes="{",".join(i.code for i in below)}">'
            f'<text x="{label_w - 6}" y="{yy + 14}" text-anchor="end" font-size="12">'
            f"{escape(k.name[:44])}</text>"
            f'<rect x="{label_w}" y="{yy}" width="{max(len(below), 0.15) * scale:.1f}" '
            f'height="{bar_h - 6}" fill="{colour}"/>'
            f'<text x="{label_w + max(len(below), 0.15) * scale + 4:.1f}" y="{yy + 14}" '
            f'font-size="11">{escape(names[:70])}</text></g>'
        )
    if not rows:
        parts.append(f'<text x="10" y="20" font-size="13">{NO_DATA}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reasons_chart(reasons: dict[str, int]) -> str:
    bar_h, label_w, w = 24, 260, 720
    h = max(len(reasons), 1) * bar_h + 8
    top = max(reasons.values(), default=1)
    scale = (w - label_w - 60) / top
    parts = [
        f'<svg id="chart-rejections" role="img" viewBox="0 0 {w} {h}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="Lý do từ chối">'
    ]
    for r, (reason, n) in enumerate(reasons.items()):
        yy = r * bar_h + 4
        parts.append(
            f'<g class="reason" data-reason="{escape(reason)}" data-count="{n}">'
            f'<text x="{label_w - 6}" y="{yy + 14}" text-anchor="end" font-size="12">'
            f"{escape(reason)}</text>"
            f'<rect x="{label_w}" y="{yy}" width="{n * scale:.1f}" height="{bar_h - 8}" '
            f'fill="#6e7781"/><text x="{label_w + n * scale + 4:.1f}" y="{yy + 14}" '
            f'font-size="11">{n}</text></g>'
        )
    if not reasons:
        parts.append(f'<text x="10" y="20" font-size="13">{NO_DATA}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _figure_rows(k: AgencyKpi) -> str:
    rows = []
    for i in k.indicators:
        rows.append(
            f'<tr id="fig-{i.code}" class="figure {i.status.name.lower()}" {_attrs(i)}>'
            f"<td>{escape(i.name)}</td><td class=num>{fmt_value(i)}</td>"
            f"<td class=num>{fmt_ratio(i)}</td><td>{escape(fmt_target(i))}</td>"
            f"<td class=num>{escape(fmt_gap(i))}</td>"
            f'<td class="source">{escape(i.source or "")}</td></tr>'
        )
    return "".join(rows)


def _monthly_rows(monthly: Sequence[AgencyKpi]) -> str:
    rows = []
    for m in monthly:
        cells = "".join(
            f'<td class=num data-month="{m.period.label}" {_attrs(m.get(c))}>'
            f"{fmt_value(m.get(c))}<br><small>{fmt_ratio(m.get(c))}</small></td>"
            for c in SUMMARY_CODES
        )
        rows.append(f"<tr><td>{m.period.label}</td>{cells}</tr>")
    return "".join(rows)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,
sans-serif;margin:2rem auto;max-width:1000px;color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #eaeef2;padding:.3rem .5rem;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}.below td:nth-child(2){color:#cf222e}
.met td:nth-child(2){color:#1a7f37}.no_data td:nth-child(2){color:#6e7781}
.legend span{display:inline-block;margin-right:1rem}.note{color:#57606a;font-size:.85rem}
.source{color:#57606a;font-size:.75rem;max-width:18rem}
"""


def render_report(data: ReportData) -> str:
    first, last = data.monthly[0].period.label, data.monthly[-1].period.label
    legend = "".join(
        f'<span style="color:{c}">● {escape(data.monthly[0].get(code).name)}</span>'
        for code, c in SERIES
    )
    scope = "toàn hệ thống" if data.agency == ALL else f"{data.agency}"
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Báo cáo tỷ lệ văn bản điện tử {first} – {last}</title><style>{CSS}</style></head>
<body data-agency="{escape(data.agency)}" data-from="{first}" data-to="{last}">
<h1>Tỷ lệ trao đổi văn bản điện tử — {escape(data.name)}</h1>
<p class="note">Phạm vi: {escape(scope)}; kỳ {first} – {last}. Số liệu từ kho lưu trữ liên thông
và sổ đăng ký văn bản giấy; không tính văn bản mật. "{NO_DATA}": mẫu số rỗng.
Trạng thái ghi trước lúc nhận văn bản được đếm riêng để kiểm tra, không tính vào thời gian.
Lập lúc {data.generated_at.astimezone(VN):%d/%m/%Y %H:%M} (giờ Việt Nam).</p>
<h2>Chỉ tiêu cả kỳ</h2>
<table id="figures"><thead><tr><th>Chỉ tiêu</th><th class=num>Giá trị</th>
<th class=num>Tử/mẫu</th><th>Mục tiêu</th><th class=num>Khoảng cách</th>
<th>Căn cứ</th></tr></thead>
<tbody>{_figure_rows(data.whole)}</tbody></table>
<h2>Tỷ lệ điện tử theo tháng</h2><div class="legend">{legend}</div>
<figure id="figure-share">{share_chart(data.monthly)}</figure>
<table id="table-monthly"><thead><tr><th>Tháng</th>{
        "".join(f"<th class=num>{escape(data.monthly[0].get(c).name)}</th>" for c in SUMMARY_CODES)
    }</tr></thead><tbody>{_monthly_rows(data.monthly)}</tbody></table>
<h2>Xếp hạng đơn vị theo số chỉ tiêu chưa đạt</h2>
<figure id="figure-ranking">{ranking_chart(data.ranking)}</figure>
<h2>Lý do từ chối</h2>
<figure id="figure-rejections">{reasons_chart(data.reasons)}</figure>
</body></html>
"""
