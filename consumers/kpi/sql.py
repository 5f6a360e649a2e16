"""KPI repositories: the archive's SQL for the paperless-share indicators, returning typed counts.

Months and days are Vietnam calendar months and days (Asia/Ho_Chi_Minh). Secret documents are
outside every count: the archive never stores a secret electronic document, and a paper record
of one carries `secrecy` <> 'NONE'. An electronic document counts once routed (refused or still
pending is not exchange); a paper record counts unless the router refused it, because the
archive leaves registrations 'pending' (nothing is delivered for them to mark them routed).

The counting itself is the database's (migration 0012): `lt_kpi_month(m)` gives one month's
figures per agency, kept ready in `kpi_month` and refreshed from that function when a month
has changed. Pages add months up here; a month still marked stale is taken from the function
itself, so the figures are never behind the archive (docs/kpi.md, "How the figures are kept").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import chain
from typing import Any

import asyncpg

from consumers.kpi.indicators import (
    ALL,
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

# Each agency's figures per month over [$1, $2): the fresh rows of kpi_month, and the stale
# months from lt_kpi_month itself (one snapshot: a refresh cannot land between the two). The
# answer times are only read for the agencies whose percentiles are wanted ($3: all of them,
# or those in $4): they are most of the bytes.
MONTH_ROWS = """
WITH stale AS (
    SELECT DISTINCT month FROM kpi_month_stale WHERE month >= $1::date AND month < $2::date
), m AS (
    SELECT * FROM kpi_month
    WHERE month >= $1::date AND month < $2::date AND month NOT IN (SELECT month FROM stale)
    UNION ALL
    SELECT f.* FROM stale CROSS JOIN LATERAL lt_kpi_month(stale.month) AS f
)
SELECT month, agency, docs_sent_e, docs_sent_p, docs_recv_e, docs_recv_p, reports_sent_e,
       reports_sent_p, notices_sent_e, deliveries_recv_e, delivered, early_01, early_06,
       arrived_same_day, overdue,
       CASE WHEN $3 OR agency = ANY($4::text[]) THEN answered_01 END AS answered_01,
       CASE WHEN $3 OR agency = ANY($4::text[]) THEN answered_06 END AS answered_06
FROM m
"""

# Overdue: copies (of documents delivered at least once) whose due date fell in the period and
# had passed by its as-of time (the period's end, or now for the current period) without a 06
# from that recipient by then. The as-of time is the period's, not its months': a copy due in
# March and completed in April is overdue in March, not in the year. So it is counted per
# period from kpi_copy (the copies due in the span, kpi_copy_due_idx), then up the tree ($3, $4:
# the closure); each period n is given as its months with the time it is judged at.
OVERDUE = """
WITH closure AS (
    SELECT * FROM unnest($3::text[], $4::text[]) AS c(ancestor, descendant)
), periods AS (
    SELECT * FROM unnest($5::int[], $6::date[], $7::timestamptz[]) AS p(n, month, as_of)
), own AS (
    SELECT p.n, k.recipient, count(*) AS overdue
    FROM kpi_copy k JOIN periods p ON p.month = date_trunc('month', k.due_date::timestamp)::date
    WHERE k.due_date >= $1::date AND k.due_date < $2::date
      AND k.due_date < (p.as_of AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
      AND (k.at06 IS NULL OR k.at06 >= p.as_of)
    GROUP BY p.n, k.recipient
)
SELECT o.n, c.ancestor, sum(o.overdue)::bigint AS overdue
FROM own o JOIN closure c ON c.descendant = o.recipient GROUP BY o.n, c.ancestor
UNION ALL
SELECT n, '*', sum(overdue)::bigint FROM own GROUP BY n
"""

REJECTIONS = """
SELECT coalesce(sender, '') AS sender, reason,
       to_char(at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month, count(*) AS n
FROM rejection
WHERE at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True, slots=True)
class MonthRow:
    """One agency's figures for one month (a row of kpi_month): what it sent and received, and
    the copies first delivered to it that month, with their answer times when asked for."""

    month: date
    agency: str
    counts: Counts
    delivered: int
    early_01: int
    early_06: int
    arrived_same_day: int
    overdue: int  # copies due this month and not completed (06) by the month's end
    answered_01: list[float] | None  # seconds, ascending; None when not read
    answered_06: list[float] | None


async def month_rows(
    conn: asyncpg.Connection, start: date, end: date, answers: Collection[str] | None = None
) -> list[MonthRow]:
    """Every agency's rows for the months in [start, end); answer times for the agencies in
    `answers` (all of them when None)."""
    rows = await _fetch(conn, MONTH_ROWS, start, end, answers is None, list(answers or ()))
    # Positional: a page reads thousands of these (the columns are in MONTH_ROWS's order).
    return [MonthRow(r[0], r[1], Counts(*r[2:10]), *r[10:]) for r in rows]


def counts_by_month(rows: Iterable[MonthRow]) -> dict[tuple[str, str], Counts]:
    """{(agency, 'YYYY-MM'): own Counts}, for the agencies that sent or received anything."""
    return {(r.agency, f"{r.month:%Y-%m}"): r.counts for r in rows if r.counts != Counts()}


async def monthly_counts(
    conn: asyncpg.Connection, start: date, end: date
) -> dict[tuple[str, str], Counts]:
    """{(agency, 'YYYY-MM'): own Counts} for months in [start, end)."""
    return counts_by_month(await month_rows(conn, start, end, answers=()))


def percentile_cont(ordered: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over values already in ascending order, step for step
    (the same floating-point operations, so the same result to the last bit)."""
    n = len(ordered)
    if n == 0:
        return None
    position = fraction * (n - 1)
    first, second = math.floor(position), math.ceil(position)
    if first == second:
        return ordered[first]
    return ordered[first] + (ordered[second] - ordered[first]) * (position - first)


def _hours(ordered: Sequence[float], fraction: float) -> float | None:
    seconds = percentile_cont(ordered, fraction)
    return None if seconds is None else seconds / 3600


def timeliness_of(
    rows: Sequence[MonthRow], period: Period, tree: Tree, percentiles: Collection[str] | None
) -> dict[str, Timeliness]:
    """{ancestor or ALL: Timeliness without overdue} of the copies first delivered in the
    period: counts summed over the ancestor's subtree and months, percentiles over the merged
    answer times (only for the ancestors in `percentiles`; all when None). An ancestor with
    no copy in the period has no entry."""
    months = {m.start for m in period.months()}
    inside = [r for r in rows if r.month in months and r.delivered]
    by_agency: dict[str, list[MonthRow]] = {}
    for r in inside:
        by_agency.setdefault(r.agency, []).append(r)
    ancestors = {a for a, d in tree.pairs() if d in by_agency}
    out: dict[str, Timeliness] = {}
    for code in sorted(ancestors | ({ALL} if inside else set())):
        mine = (
            inside if code == ALL else [r for c in tree.subtree(code) for r in by_agency.get(c, ())]
        )
        timed = percentiles is None or code in percentiles
        # Each row's times are in order already: sorting their concatenation merges runs.
        a01 = sorted(chain.from_iterable(r.answered_01 or () for r in mine)) if timed else []
        a06 = sorted(chain.from_iterable(r.answered_06 or () for r in mine)) if timed else []
        out[code] = Timeliness(
            delivered=sum(r.delivered for r in mine),
            arrived_same_day=sum(r.arrived_same_day for r in mine),
            early_01=sum(r.early_01 for r in mine),
            early_06=sum(r.early_06 for r in mine),
            median_01_h=_hours(a01, 0.5),
            p90_01_h=_hours(a01, 0.9),
            median_06_h=_hours(a06, 0.5),
            p90_06_h=_hours(a06, 0.9),
        )
    return out


def answering(tree: Tree, percentiles: Collection[str] | None) -> Collection[str] | None:
    """The agencies whose answer times the percentiles of `percentiles` need (None: all)."""
    if percentiles is None or ALL in percentiles:
        return None
    return sorted({d for a in percentiles if a in tree for d in tree.subtree(a)})


async def timeliness(
    conn: asyncpg.Connection, period: Period, tree: Tree, now: datetime
) -> dict[str, Timeliness]:
    """{ancestor or ALL: Timeliness} for deliveries in the period, rolled up the tree."""
    return (await timeliness_by_period(conn, [period], tree, now))[0]


async def timeliness_by_period(
    conn: asyncpg.Connection,
    periods: Sequence[Period],
    tree: Tree,
    now: datetime,
    percentiles: Collection[str] | None = None,
    rows: Sequence[MonthRow] | None = None,
) -> list[dict[str, Timeliness]]:
    """`timeliness` of each period (they may overlap), in order: the month rows of the span
    they cover (read here, or given as `rows` by a caller that read them already, answer
    times included where wanted), and one overdue query. Every ancestor gets its counts; the
    percentiles only the ancestors in `percentiles` (ALL for the platform), all when None."""
    if not periods:
        return []
    for p in periods:
        if p.start.day != 1 or p.end.day != 1:  # periods are added up from whole months
            raise ValueError(f"a period is whole months: {p.start}..{p.end}")
    start, end = min(p.start for p in periods), max(p.end for p in periods)
    if rows is None:
        rows = await month_rows(conn, start, end, answering(tree, percentiles))
    out = [timeliness_of(rows, p, tree, percentiles) for p in periods]
    # A month that is over is judged at its end: its overdue figure is kept with its rows.
    # Longer periods, and the month still running (judged now), are counted from the copies.
    ended = {n for n, p in enumerate(periods) if p.kind == "month" and _end(p) <= now}
    for n in ended:
        for code, late in _rolled_up(rows, periods[n], tree).items():
            out[n][code] = dataclasses.replace(out[n].get(code, Timeliness()), overdue=late)
    judged = [(n, p) for n, p in enumerate(periods) if n not in ended]
    if not judged:
        return out
    pairs = tree.pairs()
    months = [(n + 1, m.start, min(now, _end(p))) for n, p in judged for m in p.months()]
    overdue = await _fetch(
        conn,
        OVERDUE,
        min(p.start for _, p in judged),
        max(p.end for _, p in judged),
        [a for a, _ in pairs],
        [d for _, d in pairs],
        [n for n, _, _ in months],
        [m for _, m, _ in months],
        [t for _, _, t in months],
    )
    for r in overdue:
        t = out[r["n"] - 1].get(r["ancestor"], Timeliness())
        out[r["n"] - 1][r["ancestor"]] = dataclasses.replace(t, overdue=int(r["overdue"]))
    return out


def _end(period: Period) -> datetime:
    """The instant a period ends: 00:00 in Vietnam on its end date."""
    return datetime.combine(period.end, time(), VN)


def _rolled_up(rows: Sequence[MonthRow], month: Period, tree: Tree) -> dict[str, int]:
    """{ancestor or ALL: overdue} of one month's rows, for the ancestors with any."""
    own = {r.agency: r.overdue for r in rows if r.month == month.start and r.overdue}
    ancestors = {a for a, d in tree.pairs() if d in own}
    out = {a: sum(own.get(d, 0) for d in tree.subtree(a)) for a in ancestors}
    if own:
        out[ALL] = sum(own.values())
    return out


async def _fetch(conn: asyncpg.Connection, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run a KPI query without JIT compilation: on a large archive the planner's estimates
    (an index probe per copy) call for it, and compiling took 0.2-3 s, more than running.
    SET LOCAL ends with this transaction (or with the caller's, if this one is nested in it)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL jit = off")
        return await conn.fetch(query, *args)


async def refresh(conn: asyncpg.Connection, most: int | None = None) -> int:
    """Bring the stale months of kpi_month up to date (at most `most`, the oldest first);
    returns how many were. Another refresh under way makes this one return 0."""
    return int(await conn.fetchval("SELECT lt_kpi_refresh($1)", most))


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
    timed: Collection[str] | None = None,
) -> KpiView:
    """The period's indicators for `agencies`, beside the previous period's. The timeliness
    percentiles are taken for the agencies in `timed` (default: all of `agencies`); the others
    read "no data" there, which is what a ranking (counts and shares only) wants to pay for."""
    prev = period.previous()
    timed = agencies if timed is None else timed
    rows = await month_rows(conn, prev.start, period.end, answering(tree, timed))
    monthly = counts_by_month(rows)
    rej = await rejections(conn, period.start, period.end)
    cur_t, prev_t = await timeliness_by_period(conn, [period, prev], tree, now, timed, rows)
    cur_own, prev_own = own_counts(monthly, period), own_counts(monthly, prev)
    current, previous, reasons = [], {}, {}
    for code in agencies:
        current.append(evaluate(code, period, cur_own, cur_t.get(code, Timeliness()), tree))
        previous[code] = evaluate(code, prev, prev_own, prev_t.get(code, Timeliness()), tree)
        reasons[code] = rollup_reasons(rej, code, period, tree)
    return KpiView(period, current, previous, reasons)
