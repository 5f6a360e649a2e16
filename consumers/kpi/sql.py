"""KPI repositories: the archive's SQL for the paperless-share indicators, returning typed counts.

Months and days are Vietnam calendar months and days (Asia/Ho_Chi_Minh). Secret documents are
outside every count: the archive never stores a secret electronic document, and a paper record
of one carries `secrecy` <> 'NONE'. An electronic document counts once routed (refused or still
pending is not exchange); a paper record counts unless the router refused it, because the
archive leaves registrations 'pending' (nothing is delivered for them to mark them routed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import asyncpg

from consumers.kpi.indicators import (
    AgencyKpi,
    Counts,
    Period,
    Timeliness,
    Tree,
    evaluate,
    own_counts,
    rollup_reasons,
)

VN = timezone(timedelta(hours=7))

# Each agency's own figures per month, one row per (agency, month, metric).
# Paper: one paper document is (sender, number, notation, document date), however many clerks
# registered it (the sender's OUTGOING and each recipient's INCOMING registration describe the
# same sheet of paper); its addressees are the union of the registrations' recipients. Paper
# documents are placed in the month of their document date, which every registration shares,
# so both sides land in the same month. Paper records of type BC (Báo cáo) are the paper side of
# periodic reports and count there, not among documents.
MONTHLY_COUNTS = """
WITH e AS (
    SELECT d.payload_type, d.sender, d.recipients,
           to_char(d.submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month
    FROM document d
    WHERE d.payload_type IN ('OFFICIAL_DOCUMENT', 'PERIODIC_REPORT')
      AND d.routing_outcome = 'routed' AND d.secrecy = 'NONE'
      AND d.submitted_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
      AND d.submitted_at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
), p AS (
    SELECT DISTINCT d.sender, coalesce(d.number, '') AS number,
           coalesce(d.notation, '') AS notation, d.promulgation_date AS day,
           coalesce(d.doc_type, '') = 'BC' AS is_report, r.recipient
    FROM document d CROSS JOIN LATERAL unnest(d.recipients) AS r(recipient)
    WHERE d.payload_type = 'PAPER_EXCHANGE_RECORD'
      AND d.routing_outcome <> 'rejected' AND d.secrecy = 'NONE'
      AND d.promulgation_date >= $1::date AND d.promulgation_date < $2::date
)
SELECT sender AS agency, month,
       CASE payload_type WHEN 'PERIODIC_REPORT' THEN 'reports_sent_e' ELSE 'docs_sent_e' END
           AS metric,
       count(*) AS n
FROM e GROUP BY 1, 2, 3
UNION ALL
SELECT r.recipient, e.month, 'docs_recv_e', count(*)
FROM e CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(e.recipients) AS x) AS r(recipient)
WHERE e.payload_type = 'OFFICIAL_DOCUMENT'
GROUP BY 1, 2
UNION ALL
SELECT sender, to_char(day, 'YYYY-MM'),
       CASE WHEN is_report THEN 'reports_sent_p' ELSE 'docs_sent_p' END,
       count(DISTINCT (number, notation, day))
FROM p GROUP BY 1, 2, 3
UNION ALL
SELECT recipient, to_char(day, 'YYYY-MM'), 'docs_recv_p', count(*)
FROM p WHERE NOT is_report GROUP BY 1, 2
UNION ALL
-- Connectedness: notices an agency sent (kind 'delivery': not the platform's own 02s) ...
SELECT s.from_agency, to_char(s.at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM'),
       'notices_sent_e', count(*)
FROM status_event s JOIN archive_record a USING (seq)
WHERE a.kind = 'delivery'
  AND s.at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND s.at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2
UNION ALL
-- ... and anything delivered to its inbox.
SELECT recipient, to_char(delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM'),
       'deliveries_recv_e', count(*)
FROM delivery
WHERE delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND delivered_at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2
"""

# Both timeliness queries judge several periods at once, so a page's period and the previous
# one, or a trend's months and their whole range, cost one read of the copies, not one each.
# $1..$2 (Vietnam dates) spans every period; each period n is given as its months, with the
# time it is judged at ($5 n, $6 first day of a month, $7 as-of time): periods are whole
# months, so "in period n" is an equality on the month, a hash join, not a range test per pair.
_PERIODS = """
WITH closure AS (
    SELECT * FROM unnest($3::text[], $4::text[]) AS c(ancestor, descendant)
), periods AS (
    SELECT * FROM unnest($5::int[], $6::date[], $7::timestamptz[]) AS p(n, month, as_of)
)"""

# A copy is (non-secret official document, recipient), timed from its first delivery, with that
# recipient's first 01 and first 06; it belongs to the month its first delivery falls in. Only
# the copies delivered within $1..$2 are read (delivery_time_idx), each then looked up by key
# for its first delivery, which must not be before $1 — never the whole delivery table.
TIMELINESS = (
    _PERIODS
    + """, span AS (
    SELECT DISTINCT dv.document_id, dv.recipient
    FROM delivery dv
    WHERE dv.delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
      AND dv.delivered_at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
), t AS (
    SELECT c.recipient, f.delivered_at, st.at01, st.at06,
           date_trunc('month', f.delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS month
    FROM span c JOIN document d USING (document_id)
    CROSS JOIN LATERAL (
        SELECT min(e.delivered_at) AS delivered_at FROM delivery e
        WHERE e.document_id = c.document_id AND e.recipient = c.recipient
    ) AS f
    CROSS JOIN LATERAL (
        SELECT min(s.at) FILTER (WHERE s.code = '01') AS at01,
               min(s.at) FILTER (WHERE s.code = '06') AS at06
        FROM status_event s
        WHERE s.document_id = c.document_id AND s.from_agency = c.recipient
          AND s.code IN ('01', '06')
    ) AS st
    WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE'
      AND f.delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
), tp AS (
    SELECT p.n, t.recipient, t.delivered_at, t.at01, t.at06 FROM t JOIN periods p USING (month)
), up AS (
    -- every copy counts in its periods, for each ancestor of its recipient and the platform
    SELECT tp.*, c.ancestor FROM tp JOIN closure c ON c.descendant = tp.recipient
    UNION ALL
    SELECT tp.*, '*' FROM tp
)
SELECT n, ancestor,
       count(*) AS delivered,
       -- A status dated before the delivery it answers is data to check (a clock, a copy made
       -- by hand), never a negative duration: it is counted here and left out of every figure.
       count(*) FILTER (WHERE at01 < delivered_at) AS early_01,
       count(*) FILTER (WHERE at06 < delivered_at) AS early_06,
       count(*) FILTER (WHERE at01 >= delivered_at
                          AND (at01 AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                            = (delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
           AS arrived_same_day,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at01 - delivered_at))
           FILTER (WHERE at01 >= delivered_at) / 3600 AS median_01_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM at01 - delivered_at))
           FILTER (WHERE at01 >= delivered_at) / 3600 AS p90_01_h,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at06 - delivered_at))
           FILTER (WHERE at06 >= delivered_at) / 3600 AS median_06_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM at06 - delivered_at))
           FILTER (WHERE at06 >= delivered_at) / 3600 AS p90_06_h
FROM up GROUP BY n, ancestor
"""
)

# Overdue: copies (of documents delivered at least once) whose due date fell in the period and
# had passed by its as-of time (the period's end, or now for the current period) without a 06
# from that recipient by then.
OVERDUE = (
    _PERIODS
    + """, t AS (
    SELECT c.recipient, c.due_date, st.at06,
           date_trunc('month', c.due_date::timestamp)::date AS month
    FROM (
        SELECT DISTINCT dv.document_id, dv.recipient, d.due_date
        FROM document d JOIN delivery dv USING (document_id)
        WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE'
          AND d.due_date >= $1::date AND d.due_date < $2::date
    ) AS c
    CROSS JOIN LATERAL (
        SELECT min(s.at) AS at06 FROM status_event s
        WHERE s.document_id = c.document_id AND s.from_agency = c.recipient AND s.code = '06'
    ) AS st
), tp AS (
    SELECT p.n, t.recipient
    FROM t JOIN periods p USING (month)
    WHERE t.due_date < (p.as_of AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
      AND (t.at06 IS NULL OR t.at06 >= p.as_of)
), up AS (
    SELECT tp.n, c.ancestor FROM tp JOIN closure c ON c.descendant = tp.recipient
    UNION ALL
    SELECT tp.n, '*' FROM tp
)
SELECT n, ancestor, count(*) AS overdue FROM up GROUP BY n, ancestor
"""
)

REJECTIONS = """
SELECT coalesce(sender, '') AS sender, reason,
       to_char(at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month, count(*) AS n
FROM rejection
WHERE at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2, 3
"""


async def monthly_counts(
    conn: asyncpg.Connection, start: date, end: date
) -> dict[tuple[str, str], Counts]:
    """{(agency, 'YYYY-MM'): own Counts} for months in [start, end)."""
    acc: dict[tuple[str, str], dict[str, int]] = {}
    for r in await _fetch(conn, MONTHLY_COUNTS, start, end):
        acc.setdefault((r["agency"], r["month"]), {})[r["metric"]] = int(r["n"])
    return {k: Counts(**v) for k, v in acc.items()}


async def timeliness(
    conn: asyncpg.Connection, period: Period, tree: Tree, now: datetime
) -> dict[str, Timeliness]:
    """{ancestor or ALL: Timeliness} for deliveries in the period, rolled up the tree."""
    return (await timeliness_by_period(conn, [period], tree, now))[0]


async def timeliness_by_period(
    conn: asyncpg.Connection, periods: Sequence[Period], tree: Tree, now: datetime
) -> list[dict[str, Timeliness]]:
    """`timeliness` of each period (they may overlap), in order, from one pass over the copies
    of the span they cover: two queries whatever the number of periods."""
    if not periods:
        return []
    for p in periods:
        if p.start.day != 1 or p.end.day != 1:  # the queries join on whole months
            raise ValueError(f"a period is whole months: {p.start}..{p.end}")
    pairs = tree.pairs()
    # One row per month of each period; overdue is judged at the period's end, or now while
    # the period is still running.
    months = [
        (n, m.start, min(now, datetime.combine(p.end, time(), VN)))
        for n, p in enumerate(periods, start=1)
        for m in p.months()
    ]
    args: list[Any] = [
        min(p.start for p in periods),
        max(p.end for p in periods),
        [a for a, _ in pairs],
        [d for _, d in pairs],
        [n for n, _, _ in months],
        [m for _, m, _ in months],
        [t for _, _, t in months],
    ]
    base: list[dict[str, dict[str, Any]]] = [{} for _ in periods]
    for r in await _fetch(conn, TIMELINESS, *args):
        base[r["n"] - 1][r["ancestor"]] = {
            k: _num(r[k]) for k in r.keys() if k not in ("n", "ancestor")
        }
    for r in await _fetch(conn, OVERDUE, *args):
        base[r["n"] - 1].setdefault(r["ancestor"], {})["overdue"] = int(r["overdue"])
    return [{k: Timeliness(**v) for k, v in b.items()} for b in base]


async def _fetch(conn: asyncpg.Connection, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run a KPI query without JIT compilation: on a large archive the planner's estimates
    (an index probe per copy) call for it, and compiling took 0.2-3 s, more than running.
    SET LOCAL ends with this transaction (or with the caller's, if this one is nested in it)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL jit = off")
        return await conn.fetch(query, *args)


def _num(v: Any) -> Any:
    # percentile_cont returns double precision; counts come back as int.
    return float(v) if isinstance(v, float) else v


async def rejections(
    conn: asyncpg.Connection, start: date, end: date
) -> dict[tuple[str, str, str], int]:
    """{(sender, reason, 'YYYY-MM'): n}; an unreadable dead letter has sender ''."""
    rows = await conn.fetch(REJECTIONS, start, end)
    return {(r["sender"], r["reason"], r["month"]): int(r["n"]) for r in rows}


@dataclass(frozen=True, slots=True)
class KpiView:
    """One period's indicators per agency, the previous period's for trend arrows, and reasons."""

    period: Period
    current: list[AgencyKpi]
    previous: dict[str, AgencyKpi]
    reasons: dict[str, dict[str, int]]  # agency -> reason -> n


async def load_view(
    conn: asyncpg.Connection,
    tree: Tree,
    period: Period,
    agencies: Sequence[str],
    now: datetime,
) -> KpiView:
    prev = period.previous()
    monthly = await monthly_counts(conn, prev.start, period.end)
    rej = await rejections(conn, period.start, period.end)
    cur_t, prev_t = await timeliness_by_period(conn, [period, prev], tree, now)
    cur_own, prev_own = own_counts(monthly, period), own_counts(monthly, prev)
    current, previous, reasons = [], {}, {}
    for code in agencies:
        current.append(evaluate(code, period, cur_own, cur_t.get(code, Timeliness()), tree))
        previous[code] = evaluate(code, prev, prev_own, prev_t.get(code, Timeliness()), tree)
        reasons[code] = rollup_reasons(rej, code, period, tree)
    return KpiView(period, current, previous, reasons)
