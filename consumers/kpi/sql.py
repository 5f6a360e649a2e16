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

# The first delivery of each non-secret official document to each recipient, with that
# recipient's first 01 and first 06; shared by the two timeliness queries.
_DELIVERIES = """
WITH closure AS (
    SELECT * FROM unnest($3::text[], $4::text[]) AS c(ancestor, descendant)
), dl AS (
    SELECT dv.document_id, dv.recipient, min(dv.delivered_at) AS delivered_at
    FROM delivery dv JOIN document d USING (document_id)
    WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE'
    GROUP BY dv.document_id, dv.recipient
), t AS (
    SELECT dl.*, d.due_date,
           (SELECT min(s.at) FROM status_event s WHERE s.document_id = dl.document_id
              AND s.from_agency = dl.recipient AND s.code = '01') AS at01,
           (SELECT min(s.at) FROM status_event s WHERE s.document_id = dl.document_id
              AND s.from_agency = dl.recipient AND s.code = '06') AS at06
    FROM dl JOIN document d USING (document_id)
    WHERE {where}
), up AS (
    -- every delivery counts for each ancestor of its recipient, and for the whole platform
    SELECT t.*, a.ancestor FROM t CROSS JOIN LATERAL (
        SELECT c.ancestor FROM closure c WHERE c.descendant = t.recipient
        UNION ALL SELECT '*'
    ) AS a
)
"""

TIMELINESS = (
    _DELIVERIES.format(
        where="dl.delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') "
        "AND dl.delivered_at < ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')"
    )
    + """
SELECT ancestor,
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
FROM up GROUP BY ancestor
"""
)

# Overdue: copies whose due date fell in the period and had passed by $5 (the period's end, or
# now for the current period) without a 06 from that recipient by then.
OVERDUE = (
    _DELIVERIES.format(where="d.due_date >= $1::date AND d.due_date < $2::date")
    + """
SELECT ancestor, count(*) AS overdue
FROM up
WHERE due_date < ($5::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
  AND (at06 IS NULL OR at06 >= $5::timestamptz)
GROUP BY ancestor
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
    for r in await conn.fetch(MONTHLY_COUNTS, start, end):
        acc.setdefault((r["agency"], r["month"]), {})[r["metric"]] = int(r["n"])
    return {k: Counts(**v) for k, v in acc.items()}


async def timeliness(
    conn: asyncpg.Connection, period: Period, tree: Tree, now: datetime
) -> dict[str, Timeliness]:
    """{ancestor or ALL: Timeliness} for deliveries in the period, rolled up the tree."""
    pairs = tree.pairs()
    ancestors, descendants = [a for a, _ in pairs], [d for _, d in pairs]
    args: list[Any] = [period.start, period.end, ancestors, descendants]
    base: dict[str, dict[str, Any]] = {}
    for r in await conn.fetch(TIMELINESS, *args):
        base[r["ancestor"]] = {k: _num(r[k]) for k in r.keys() if k != "ancestor"}
    as_of = min(now, datetime.combine(period.end, time(), VN))
    for r in await conn.fetch(OVERDUE, *args, as_of):
        base.setdefault(r["ancestor"], {})["overdue"] = int(r["overdue"])
    return {k: Timeliness(**v) for k, v in base.items()}


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
    cur_t = await timeliness(conn, period, tree, now)
    prev_t = await timeliness(conn, prev, tree, now)
    cur_own, prev_own = own_counts(monthly, period), own_counts(monthly, prev)
    current, previous, reasons = [], {}, {}
    for code in agencies:
        current.append(evaluate(code, period, cur_own, cur_t.get(code, Timeliness()), tree))
        previous[code] = evaluate(code, prev, prev_own, prev_t.get(code, Timeliness()), tree)
        reasons[code] = rollup_reasons(rej, code, period, tree)
    return KpiView(period, current, previous, reasons)
