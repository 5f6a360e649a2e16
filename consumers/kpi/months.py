"""A span of kpi_month rows in memory: each agency's figures per month, and their times, from
which a period's percentiles and overdue counts are taken. Pure: no database.

kpi_month (migration 0012, docs/kpi.md) keeps, per (month, agency), the copies' answer times
and the due copies' completion times as packed float8 values. A page needs percentiles over
the times of a whole subtree and period (a year of the platform: ~370 000 values a metric at a
million documents) and counts of values past an instant. Python lists of floats would cost
more than the query, so the times are read with numpy: one buffer per metric, each value
tagged with its row, selected by row masks, and percentiles found by selection
(np.partition) instead of a sort.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.kpi.indicators import ALL, Counts, Period, Timeliness, Tree, total

# kpi_month's times: float8 values in network byte order, 8 bytes each (float8send).
_FLOAT8 = np.dtype(">f8")
_EMPTY = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Times:
    """The times of many rows, concatenated: `values`, and for each value the index of its row
    (`row`). Each row's times are in ascending order (not needed here)."""

    values: npt.NDArray[np.float64]
    row: npt.NDArray[np.intp]

    @classmethod
    def decode(cls, blobs: Sequence[bytes | None]) -> Times:
        """From each row's bytes (None: the row's times were not read)."""
        sizes = [0 if b is None else len(b) for b in blobs]
        if any(n % _FLOAT8.itemsize for n in sizes):
            raise ValueError("a row's times are not whole float8 values")
        values = np.frombuffer(b"".join(b for b in blobs if b), dtype=_FLOAT8)
        counts = np.array(sizes, dtype=np.intp) // _FLOAT8.itemsize
        return cls(values.astype(np.float64), np.repeat(np.arange(len(blobs)), counts))

    def of(self, rows: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        """The values of the rows selected by a mask over the rows."""
        return self.values[rows[self.row]] if len(self.values) else _EMPTY

    def at_least(self, threshold: float, rows: int) -> npt.NDArray[np.intp]:
        """How many values of each row are >= threshold."""
        return np.bincount(self.row[self.values >= threshold], minlength=rows)


def percentile_cont(values: npt.NDArray[np.float64], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over `values` (in any order), step for step: the same
    positions, the same floating-point interpolation, so the same result to the last bit."""
    n = len(values)
    if n == 0:
        return None
    position = fraction * (n - 1)
    first, second = math.floor(position), math.ceil(position)
    chosen = np.partition(values, [first, second])
    low = float(chosen[first])
    if first == second:
        return low
    return low + (float(chosen[second]) - low) * (position - first)


class MonthRow(NamedTuple):
    """One agency's figures for one month (a row of kpi_month): what it sent and received, and
    the copies first delivered to it that month. (A named tuple: a page reads thousands.)"""

    month: date
    agency: str
    counts: Counts
    delivered: int
    early_01: int
    early_06: int
    arrived_same_day: int
    overdue: int  # copies due this month and not completed (06) by the month's end


@dataclass(frozen=True)
class MonthRows:
    """Every agency's rows over a span of months, with the times that were read: seconds from
    delivery to 01 and to 06 (answered copies only), and the epoch of the 06 of each copy due
    (infinity for none). Times not read are none for their row."""

    rows: list[MonthRow]
    answered_01: Times
    answered_06: Times
    due_06: Times
    _month: npt.NDArray[np.int64] = field(init=False, repr=False)
    _agency: npt.NDArray[np.intp] = field(init=False, repr=False)
    _agency_ids: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.rows)
        ids: dict[str, int] = {}
        agencies = np.fromiter(
            (ids.setdefault(r.agency, len(ids)) for r in self.rows), dtype=np.intp, count=n
        )
        months = np.fromiter((r.month.toordinal() for r in self.rows), dtype=np.int64, count=n)
        object.__setattr__(self, "_month", months)
        object.__setattr__(self, "_agency", agencies)
        object.__setattr__(self, "_agency_ids", ids)

    @cached_property
    def by_month(self) -> dict[date, list[MonthRow]]:
        out: dict[date, list[MonthRow]] = {}
        for r in self.rows:
            out.setdefault(r.month, []).append(r)
        return out

    @cached_property
    def own_by_month(self) -> dict[date, dict[str, Counts]]:
        """{month: {agency: own Counts}}, for the agencies that sent or received anything."""
        out: dict[date, dict[str, Counts]] = {}
        nothing = Counts()
        for r in self.rows:
            if r.counts != nothing:
                out.setdefault(r.month, {})[r.agency] = r.counts
        return out

    def own_counts(self, period: Period) -> dict[str, Counts]:
        """Each agency's own Counts summed over the period's months (indicators.own_counts)."""
        months = [m.start for m in period.months()]
        if len(months) == 1:
            return dict(self.own_by_month.get(months[0], {}))
        per: dict[str, list[Counts]] = {}
        for m in months:
            for agency, c in self.own_by_month.get(m, {}).items():
                per.setdefault(agency, []).append(c)
        return {agency: total(cs) for agency, cs in per.items()}

    def mask(
        self, months: Collection[date], agencies: Collection[str] | None
    ) -> npt.NDArray[np.bool_]:
        """The rows of these months and agencies (None: every agency)."""
        rows = np.isin(self._month, [m.toordinal() for m in months])
        if agencies is not None:
            ids = [i for a in agencies if (i := self._agency_ids.get(a)) is not None]
            rows &= np.isin(self._agency, ids)
        return rows


def counts_by_month(rows: Iterable[MonthRow]) -> dict[tuple[str, str], Counts]:
    """{(agency, 'YYYY-MM'): own Counts}, for the agencies that sent or received anything."""
    return {(r.agency, f"{r.month:%Y-%m}"): r.counts for r in rows if r.counts != Counts()}


def timeliness_of(
    span: MonthRows, period: Period, tree: Tree, percentiles: Collection[str] | None
) -> dict[str, Timeliness]:
    """{ancestor or ALL: Timeliness without overdue} of the copies first delivered in the
    period: counts summed over the ancestor's subtree and months, percentiles over their
    answer times (only for the ancestors in `percentiles`; all when None). An ancestor with
    no copy in the period has no entry."""
    months = {m.start for m in period.months()}
    # Each agency's (delivered, arrived the same day, early 01, early 06) in the period.
    own: dict[str, tuple[int, int, int, int]] = {}
    for r in (r for m in months for r in span.by_month.get(m, ())):
        if r.delivered:
            d, s, e1, e6 = own.get(r.agency, (0, 0, 0, 0))
            own[r.agency] = (
                d + r.delivered,
                s + r.arrived_same_day,
                e1 + r.early_01,
                e6 + r.early_06,
            )
    ancestors = {a for a, d in tree.pairs() if d in own}
    if own:
        ancestors.add(ALL)
    out: dict[str, Timeliness] = {}
    for code in sorted(ancestors):
        agencies = None if code == ALL else tree.subtree(code)
        mine = [own[a] for a in (own if agencies is None else agencies) if a in own]
        delivered, same_day, early_01, early_06 = (sum(c) for c in zip(*mine, strict=True))
        a01 = a06 = _EMPTY
        if percentiles is None or code in percentiles:
            rows = span.mask(months, agencies)
            a01, a06 = span.answered_01.of(rows), span.answered_06.of(rows)
        out[code] = Timeliness(
            delivered=delivered,
            arrived_same_day=same_day,
            early_01=early_01,
            early_06=early_06,
            median_01_h=_hours(a01, 0.5),
            p90_01_h=_hours(a01, 0.9),
            median_06_h=_hours(a06, 0.5),
            p90_06_h=_hours(a06, 0.9),
        )
    return out


def _hours(values: npt.NDArray[np.float64], fraction: float) -> float | None:
    seconds = percentile_cont(values, fraction)
    return None if seconds is None else seconds / 3600


def overdue_at_month_end(span: MonthRows, month: date, tree: Tree) -> dict[str, int]:
    """{ancestor or ALL: overdue} of a month judged at its own end (the stored column)."""
    return roll_up({r.agency: r.overdue for r in span.rows if r.month == month and r.overdue}, tree)


def overdue_at(
    span: MonthRows, months: Collection[date], as_of: float, tree: Tree
) -> dict[str, int]:
    """{ancestor or ALL: overdue} of the copies due in `months` judged at `as_of` (epoch
    seconds), every one of them due before it: those with no 06 before that instant."""
    late = span.due_06.at_least(as_of, len(span.rows))
    own: dict[str, int] = {}
    for k in np.flatnonzero(late):
        r = span.rows[k]
        if r.month in months:
            own[r.agency] = own.get(r.agency, 0) + int(late[k])
    return roll_up(own, tree)


def roll_up(own: dict[str, int], tree: Tree) -> dict[str, int]:
    """Each agency's own count summed up the tree: {ancestor or ALL: n} for those with any."""
    own = {a: n for a, n in own.items() if n}
    ancestors = {a for a, d in tree.pairs() if d in own}
    out = {a: sum(own.get(d, 0) for d in tree.subtree(a)) for a in ancestors}
    if own:
        out[ALL] = sum(own.values())
    return out
