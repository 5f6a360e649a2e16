"""The KPI dashboard's charts: hand-written inline SVG (no script, no style attribute, nothing
fetched), each drawn figure carrying its number in data-* attributes for a reader or a test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

# The series the trend chart draws, each with its colour; each gets its own target line.
SERIES = (
    ("docs_sent", "#1f6feb", "gửi"),
    ("docs_received", "#8250df", "nhận"),
    ("reports_sent", "#bf8700", "báo cáo"),
    ("arrived_same_day", "#1a7f37", "01 trong ngày"),
)
# What a unit is ranked on: the shares with a target, and the overdue count.
RANKED_CODES = (
    "docs_sent",
    "docs_received",
    "reports_sent",
    "connected",
    "arrived_same_day",
    "overdue",
)


def _num(v: float | int | None) -> str:
    return "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _svg(chart_id: str, w: int, h: int, label: str) -> str:
    return (
        f'<svg id="{chart_id}" role="img" viewBox="0 0 {w} {h}" class="chart" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )


def share_bars(indicators: Sequence[Mapping[str, Any]]) -> Markup:
    """The period's shares as horizontal bars over 0-100%, each with its own target mark."""
    rows = [i for i in indicators if i["unit"] == "%"]
    bar_h, label_w, w = 30, 250, 760
    span = w - label_w - 90
    h = len(rows) * bar_h + 30
    parts = [_svg("chart-shares", w, h, "Tỷ lệ của kỳ so với mục tiêu")]
    for v in (0, 50, 100):
        x = label_w + span * v / 100
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h - 20}" stroke="#d0d7de"/>'
            f'<text x="{x:.1f}" y="{h - 6}" text-anchor="middle" font-size="11">{v}%</text>'
        )
    for r, i in enumerate(rows):
        y = r * bar_h + 4
        value, target = i["value"], i["target"]
        colour = {"met": "#2da44e", "below target": "#cf222e"}.get(i["status"], "#8c959f")
        parts.append(
            f'<g class="bar" data-code="{escape(i["code"])}" data-value="{_num(value)}" '
            f'data-target="{_num(target)}" data-status="{escape(i["status"])}">'
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">'
            f"{escape(i['name'])}</text>"
        )
        if value is not None:
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{span * min(value, 100) / 100:.1f}" '
                f'height="{bar_h - 12}" fill="{colour}"/>'
                f'<text x="{label_w + span + 12:.1f}" y="{y + 16}" '
                f'font-size="12">{value:.1f}%</text>'
            )
        else:
            parts.append(
                f'<text x="{label_w + 6}" y="{y + 16}" font-size="12" fill="#6e7781">'
                "chưa có số liệu</text>"
            )
        if target is not None:
            x = label_w + span * min(target, 100) / 100
            parts.append(
                f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + bar_h - 6}" '
                f'stroke="#1f2328" stroke-width="2.5"><title>mục tiêu {target:g}%</title></line>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_chart(months: Sequence[Any]) -> Markup:
    """Monthly shares (AgencyKpi per month) as lines, each series with its own dashed target
    line in its colour (documents 90%, reports 30% or 100% by year, same-day receipt 100%)."""
    w, h, left, top, bottom, right = 760, 300, 48, 14, 40, 175
    n = max(len(months), 1)
    step = (w - left - right) / max(n - 1, 1)

    def x(k: int) -> float:
        return left + k * step if n > 1 else left + (w - left - right) / 2

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - min(max(v, 0), 100) / 100)

    parts = [_svg("chart-trend", w, h, "Tỷ lệ điện tử theo tháng, với mục tiêu của từng chỉ tiêu")]
    for v in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v}%</text>'
        )
    for k, m in enumerate(months):
        parts.append(
            f'<text x="{x(k):.1f}" y="{h - bottom + 16}" text-anchor="middle" font-size="11">'
            f"{m.period.start:%m/%y}</text>"
        )
    labels: list[tuple[float, str, str]] = []  # (y, text, colour) of each target line
    for s, (code, colour, short) in enumerate(SERIES):
        inds = [m.get(code) for m in months]
        targets = [i.target for i in inds]
        if targets and all(t is not None for t in targets):
            path = " ".join(f"{x(k):.1f},{y(t):.1f}" for k, t in enumerate(targets))
            parts.append(
                f'<polyline class="target" data-series="{code}" '
                f'data-targets="{",".join(_num(t) for t in targets)}" points="{path}" '
                f'fill="none" stroke="{colour}" stroke-dasharray="{6 + 2 * s} {4 + 2 * s}" '
                f'stroke-width="1.5"/>'
            )
            labels.append((y(targets[-1] or 0), f"{short}: {_num(targets[-1])}%", colour))
        known = [(k, i) for k, i in enumerate(inds) if i.value is not None]
        if len(known) > 1:
            path = " ".join(f"{x(k):.1f},{y(i.value):.1f}" for k, i in known)
            parts.append(
                f'<polyline data-series="{code}" points="{path}" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        # Equal values of several series overlap: drawn as rings, largest first.
        for k, i in known:
            parts.append(
                f'<circle class="point" data-series="{code}" '
                f'data-month="{months[k].period.label}" data-value="{_num(i.value)}" '
                f'cx="{x(k):.1f}" cy="{y(i.value):.1f}" r="{6 - 1.2 * s:.1f}" fill="{colour}" '
                f'stroke="#fff" stroke-width="1">'
                f"<title>{escape(i.name)} {months[k].period.label}: {i.value:.1f}%</title>"
                "</circle>"
            )
    # The target labels beside the plot, pushed apart where targets coincide.
    last = -100.0
    for ty, text, colour in sorted(labels):
        ty = max(ty + 4, last + 13)
        last = ty
        parts.append(
            f'<text x="{w - right + 6}" y="{ty:.1f}" font-size="10.5" fill="{colour}">'
            f"mục tiêu {escape(text)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def missed(k: Any) -> list[Any]:
    """A unit's ranked indicators that fall short of their target."""
    out = []
    for code in RANKED_CODES:
        i = k.get(code)
        if i.value is not None and i.target is not None and (i.gap or 0) > 0:
            out.append(i)
    return out


def ranking_chart(ranking: Sequence[Any], limit: int = 15) -> Markup:
    """Horizontal bars: how many targets each unit misses (most first), and which."""
    rows = list(ranking[:limit])
    bar_h, label_w, w, scale = 24, 300, 760, 30.0
    h = max(len(rows), 1) * bar_h + 8
    parts = [_svg("chart-ranking", w, h, "Xếp hạng đơn vị theo số chỉ tiêu chưa đạt")]
    for r, k in enumerate(rows):
        below = missed(k)
        y = r * bar_h + 4
        width = max(len(below), 0.15) * scale
        names = ", ".join(i.name for i in below) or "đạt mọi chỉ tiêu"
        colour = "#cf222e" if below else "#2da44e"
        parts.append(
            f'<g class="rank" data-agency="{escape(k.agency)}" data-rank="{r + 1}" '
            f'data-missed="{len(below)}">'
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{r + 1}. {escape(_short(k.name, 40))}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{width:.1f}" height="{bar_h - 8}" '
            f'fill="{colour}"/><text x="{label_w + width + 6:.1f}" y="{y + 14}" font-size="11">'
            f"{escape(_short(names, 64))}</text></g>"
        )
    if not rows:
        parts.append('<text x="10" y="20" font-size="13">chưa có số liệu</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
