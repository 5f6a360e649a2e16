"""KPI outputs for the terminal and for machines: a rich table, JSON and CSV of one KpiView.

People read Vietnamese (labels, "chưa có số liệu"); machines read the stable codes (JSON keys,
`status` values, indicator codes). The CSV starts with a UTF-8 BOM so that Excel reads its
Vietnamese text as UTF-8."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.table import Table
from rich.text import Text

from consumers.kpi.indicators import Indicator, Status, trend
from consumers.kpi.sql import KpiView

NO_DATA = "chưa có số liệu"
CSV_BOM = "\ufeff"
_STYLE = {Status.MET: "green", Status.BELOW: "bold red", Status.NO_DATA: "dim", Status.INFO: ""}


def fmt_value(i: Indicator) -> str:
    if i.value is None:
        return NO_DATA
    if i.unit == "%":
        return f"{i.value:.1f}%"
    if i.unit == "h":
        return f"{i.value:.1f} h"
    return f"{i.value:.0f}"


def fmt_target(i: Indicator) -> str:
    if i.target is None:
        return "-"
    sign = "≥" if i.higher_is_better else "≤"
    unit = "%" if i.unit == "%" else ""
    return f"{sign} {i.target:.0f}{unit}"


def fmt_gap(i: Indicator) -> str:
    gap = i.gap
    if gap is None:
        return "-"
    if gap == 0:
        return "đạt"
    return f"-{gap:.1f} pt" if i.unit == "%" else f"{gap:.0f}"


def fmt_ratio(i: Indicator) -> str:
    if i.unit != "%" or i.denominator is None:
        return ""
    return f"{i.numerator}/{i.denominator}"


def kpi_table(view: KpiView) -> Table:
    """Agency, indicator, value (with numerator/denominator), target, gap, trend."""
    prev_label = view.period.previous().label
    table = Table(
        title=f"Tỷ lệ trao đổi văn bản điện tử — kỳ {view.period.label} (so với {prev_label})",
        show_lines=False,
    )
    columns = ("đơn vị", "chỉ tiêu", "giá trị", "tử/mẫu", "mục tiêu", "khoảng cách", "xu hướng")
    for col in columns:
        table.add_column(col, justify="right" if col in columns[2:4] + columns[5:6] else "left")
    for k in view.current:
        prev = view.previous.get(k.agency)
        for n, i in enumerate(k.indicators):
            p = prev.get(i.code) if prev else None
            table.add_row(
                f"{k.agency}\n{k.name}" if n == 0 else "",
                i.name,
                Text(fmt_value(i), style=_STYLE[i.status]),
                fmt_ratio(i),
                fmt_target(i),
                Text(fmt_gap(i), style=_STYLE[i.status]),
                trend(i, p),
                end_section=n == len(k.indicators) - 1,
            )
        reasons = view.reasons.get(k.agency) or {}
        if reasons:
            text = ", ".join(f"{r} {n}" for r, n in reasons.items())
            table.add_row("", "Bị từ chối theo lý do", text, "", "", "", "", end_section=True)
    return table


def indicator_dict(i: Indicator, previous: Indicator | None) -> dict[str, Any]:
    return {
        "code": i.code,
        "name": i.name,
        "unit": i.unit,
        "value": i.value,
        "numerator": i.numerator,
        "denominator": i.denominator,
        "target": i.target,
        "target_source": i.source,
        "gap": i.gap,
        "status": str(i.status),
        "previous": None if previous is None else previous.value,
        "trend": trend(i, previous),
    }


def view_dict(view: KpiView) -> dict[str, Any]:
    agencies = []
    for k in view.current:
        prev = view.previous.get(k.agency)
        agencies.append(
            {
                "agency": k.agency,
                "name": k.name,
                "indicators": [
                    indicator_dict(i, prev.get(i.code) if prev else None) for i in k.indicators
                ],
                "rejections": view.reasons.get(k.agency, {}),
            }
        )
    return {
        "period": view.period.label,
        "previous_period": view.period.previous().label,
        "agencies": agencies,
    }


def view_json(view: KpiView) -> str:
    return json.dumps(view_dict(view), ensure_ascii=False, indent=2)


CSV_COLUMNS = (
    "period",
    "agency",
    "name",
    "indicator",
    "value",
    "numerator",
    "denominator",
    "target",
    "target_source",
    "gap",
    "status",
    "previous",
    "trend",
)


def view_csv(view: KpiView) -> str:
    """One row per (agency, indicator); empty value cells mean "no data" (status says so).
    Starts with a BOM: Excel then opens the Vietnamese names as UTF-8, not as ANSI."""
    buf = io.StringIO()
    buf.write(CSV_BOM)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    doc = view_dict(view)
    for a in doc["agencies"]:
        for i in a["indicators"]:
            row = [doc["period"], a["agency"], a["name"], i["code"]]
            row += [
                i[c]
                for c in ("value", "numerator", "denominator", "target", "target_source", "gap")
            ]
            row += [i["status"], i["previous"], i["trend"]]
            w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()
