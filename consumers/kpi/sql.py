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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
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
    rollup_reasons,
)
from consumers.kpi.months import (
    MonthRow,
    MonthRows,
    Times,
    counts_by_month,
    overdue_at,
    overdue_at_month_end,
    roll_up,
    timeliness_of,
)

VN = timezone(timedelta(hours=7))

# Each agency's figures per month over [$1, $2): the fresh rows of kpi_month, and the stale
# months from lt_kpi_month itself (one snapshot: a refresh cannot land between the two). The
# times are only read where they are used (months.py): the answer times for the agencies
# whose percentiles are wanted ($3: all of them, or those in
# $4), the due copies' completion times for the months in $5.
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
       CASE WHEN ($3 OR agency = ANY($4::text[])) AND ($6 OR month = ANY($7::date[]))
            THEN answered_01 END,
       CASE WHEN ($3 OR agency = ANY($4::text[])) AND ($6 OR month = ANY($7::date[]))
            THEN answered_06 END,
       CASE WHEN month = ANY($5::date[]) THEN due_06 END
FROM m
"""

# Overdue: copies (of documents delivered at least once) whose due date fell in the period and
# had passed by its as-of time (the period's end, or now for the current period) without a 06
# from that recipient by then. The as-of time is the period's, not its months': a copy due in
# March and completed in April is overdue in March, not in the year. A period that is over is
# judged from kpi_month (months.py); the month running now (every period still running holds
# it, judged now: due dates before today only) is counted here from kpi_copy
# (kpi_copy_due_idx), per recipient.
OVERDUE_NOW = """
SELECT recipient, count(*) AS overdue FROM kpi_copy
WHERE due_date >= $1::date AND due_date < $2::date
  AND due_date < ($3::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
  AND (at06 IS NULL OR at06 >= $3::timestamptz)
GROUP BY recipient
"""

REJECTIONS = """
SELECT coalesce(sender, '') AS sender, reason,
       to_char(at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month, count(*) AS n
FROM rejection
WHERE at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2, 3
"""


async def month_rows(
    conn: asyncpg.Connection,
    start: date,
    end: date,
    answers: Collection[str] | None = None,
    due: Collection[date] = (),
    answer_months: Collection[date] | None = None,
) -> MonthRows:
    """Every agency's rows for the months in [start, end), with the answer times of the
    agencies in `answers` (all of them when None) in `answer_months` (all when None), and the
    due copies of the months in `due`."""
    rows = await _fetch(
        conn,
        MONTH_ROWS,
        start,
        end,
        answers is None,
        list(answers or ()),
        list(due),
        answer_months is None,
        list(answer_months or ()),
    )
    # Positional: a page reads thousands of these (the columns are in MONTH_ROWS's order).
    return MonthRows(
        [MonthRow(r[0], r[1], Counts(*r[2:10]), r[10], r[11], r[12], r[13], r[14]) for r in rows],
        Times.decode([r[15] for r in rows]),
        Times.decode([r[16] for r in rows]),
        Times.decode([r[17] for r in rows]),
    )


async def monthly_counts(
    conn: asyncpg.Connection, start: date, end: date
) -> dict[tuple[str, str], Counts]:
    """{(agency, 'YYYY-MM'): own Counts} for months in [start, end)."""
    return counts_by_month((await month_rows(conn, start, end, answers=())).rows)


def answering(tree: Tree, percentiles: Collection[str] | None) -> Collection[str] | None:
    """The agencies whose answer times the percentiles of `percentiles` need (None: all)."""
    if percentiles is None or ALL in percentiles:
        return None
    return sorted({d for a in percentiles if a in tree for d in tree.subtree(a)})


@dataclass(frozen=True, slots=True)
class _Judged:
    """How a period's overdue count is taken, `now`: the months judged at the period's end
    from their stored count (a month that is over), the months judged from their times at
    `as_of` (the months of a longer period that are over by then), and the month still
    running, counted from its copies."""

    as_of: datetime
    stored: date | None
    times: frozenset[date]
    running: date | None


def _judge(period: Period, now: datetime) -> _Judged:
    end = _end(period)
    months = period.months()
    if now >= end:
        if len(months) == 1:
            return _Judged(end, months[0].start, frozenset(), None)
        return _Judged(end, None, frozenset(m.start for m in months), None)
    over = frozenset(m.start for m in months if _end(m) <= now)
    running = next((m.start for m in months if m.start <= now.astimezone(VN).date() < m.end), None)
    return _Judged(now, None, over, running)  # months after now: nothing is due yet


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
    span: MonthRows | None = None,
) -> list[dict[str, Timeliness]]:
    """`timeliness` of each period (they may overlap), in order: the month rows of the span
    they cover (read here, or given as `span` by a caller that read them already, with the
    times it needs: `answering` and `due_months`), and, for a period running now, one query
    for the copies due this month. Every ancestor gets its counts; the percentiles only the
    ancestors in `percentiles` (ALL for the platform), all when None."""
    if not periods:
        return []
    for p in periods:
        if p.start.day != 1 or p.end.day != 1:  # periods are added up from whole months
            raise ValueError(f"a period is whole months: {p.start}..{p.end}")
    start, end = min(p.start for p in periods), max(p.end for p in periods)
    judged = [_judge(p, now) for p in periods]
    if span is None:
        due = set().union(*(j.times for j in judged))
        span = await month_rows(conn, start, end, answering(tree, percentiles), due)
    out = [timeliness_of(span, p, tree, percentiles) for p in periods]
    for n, j in enumerate(judged):
        overdue: dict[str, int] = {}
        if j.stored is not None:
            overdue = overdue_at_month_end(span, j.stored, tree)
        elif j.times:
            overdue = overdue_at(span, j.times, j.as_of.timestamp(), tree)
        _add_overdue(out[n], overdue)
    running = [n for n, j in enumerate(judged) if j.running is not None]
    month = judged[running[0]].running if running else None
    if month is not None:  # one month runs now, the same in every period that holds it
        rows = await _fetch(conn, OVERDUE_NOW, month, _next_month(month), now)
        overdue = roll_up({r["recipient"]: int(r["overdue"]) for r in rows}, tree)
        for n in running:
            _add_overdue(out[n], overdue)
    return out


def _add_overdue(timed: dict[str, Timeliness], overdue: dict[str, int]) -> None:
    for code, late in overdue.items():
        t = timed.get(code, Timeliness())
        timed[code] = dataclasses.replace(t, overdue=t.overdue + late)


def _next_month(month: date) -> date:
    return Period.month(month.year, month.month).end


def due_months(periods: Sequence[Period], now: datetime) -> set[date]:
    """The months whose due copies' times judging `periods` at `now` reads."""
    return set().union(*(_judge(p, now).times for p in periods))


def _end(period: Period) -> datetime:
    """The instant a period ends: 00:00 in Vietnam on its end date."""
    return datetime.combine(period.end, time(), VN)


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
    span = await month_rows(
        conn, prev.start, period.end, answering(tree, timed), due_months([period, prev], now)
    )
    return await view_of(conn, span, tree, period, agencies, now, timed)


async def view_of(
    conn: asyncpg.Connection,
    span: MonthRows,
    tree: Tree,
    period: Period,
    agencies: Sequence[str],
    now: datetime,
    timed: Collection[str],
) -> KpiView:
    """`load_view` from month rows read already, with the times it needs."""
    prev = period.previous()
    rej = await rejections(conn, period.start, period.end)
    cur_t, prev_t = await timeliness_by_period(conn, [period, prev], tree, now, timed, span)
    cur_own, prev_own = span.own_counts(period), span.own_counts(prev)
    current, previous, reasons = [], {}, {}
    for code in agencies:
        current.append(evaluate(code, period, cur_own, cur_t.get(code, Timeliness()), tree))
        previous[code] = evaluate(code, prev, prev_own, prev_t.get(code, Timeliness()), tree)
        reasons[code] = rollup_reasons(rej, code, period, tree)
    return KpiView(period, current, previous, reasons)


async def trend_of(
    conn: asyncpg.Connection,
    span: MonthRows,
    tree: Tree,
    months: Sequence[Period],
    code: str,
    now: datetime,
) -> list[AgencyKpi]:
    """Each month's indicators for `code` from month rows read already, without percentiles
    (they read "no data"): a trend of shares and counts."""
    timed = await timeliness_by_period(conn, months, tree, now, [], span)
    return [
        evaluate(code, m, span.own_counts(m), t.get(code, Timeliness()), tree)
        for m, t in zip(months, timed, strict=True)
    ]


async def load_dashboard(
    conn: asyncpg.Connection,
    tree: Tree,
    period: Period,
    agencies: Sequence[str],
    timed: Collection[str],
    trend: Sequence[Period],
    now: datetime,
) -> tuple[KpiView, list[AgencyKpi]]:
    """The console's KPI page: `load_view` of the period and the trend of `agencies[0]` over
    the months `trend`, from one read of the months they cover (the answer times only for the
    view's months)."""
    prev = period.previous()
    view_months = {m.start for p in (period, prev) for m in p.months()}
    span = await month_rows(
        conn,
        min(prev.start, trend[0].start),
        max(period.end, trend[-1].end),
        answering(tree, timed),
        due_months([period, prev, *trend], now),
        view_months,
    )
    view = await view_of(conn, span, tree, period, agencies, now, timed)
    return view, await trend_of(conn, span, tree, trend, agencies[0], now)
