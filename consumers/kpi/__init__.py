"""The paperless share per agency and period against the city's targets.

Modules: indicators (the pure counting rules and targets), sql (counts from the archive),
months (a span of kpi_month rows in memory: sums, percentiles, overdue), render (table, CSV,
JSON), report_html (the HTML report), plan (a generated year of exchange).

Public names: ALL, KpiView, Period, Tree, kpi_table, load_dashboard, load_report, load_trend,
load_view, month_range, plan_exchange, refresh, render_report, view_csv, view_json.
"""

from consumers.kpi.indicators import ALL, Period, Tree, month_range
from consumers.kpi.plan import plan_exchange
from consumers.kpi.render import kpi_table, view_csv, view_json
from consumers.kpi.report_html import load_report, load_trend, render_report
from consumers.kpi.sql import KpiView, load_dashboard, load_view, refresh

__all__ = [
    "ALL",
    "KpiView",
    "Period",
    "Tree",
    "kpi_table",
    "load_dashboard",
    "load_report",
    "load_trend",
    "load_view",
    "month_range",
    "plan_exchange",
    "refresh",
    "render_report",
    "view_csv",
    "view_json",
]
