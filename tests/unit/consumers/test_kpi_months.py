"""consumers/kpi/months.py without a database: kpi_month's packed times read back, percentiles
equal to a sort-based percentile_cont (PostgreSQL's definition), overdue counts at an instant,
sums up the tree, and bad bytes refused."""

from __future__ import annotations

import math
import random
import struct
from datetime import date

import numpy as np
import pytest

from consumers.kpi.indicators import ALL, Counts, Period, Tree
from consumers.kpi.months import (
    MonthRow,
    MonthRows,
    Times,
    overdue_at,
    percentile_cont,
    roll_up,
    timeliness_of,
)
from schemas.agency import AgencyDirectory

TREE = Tree(AgencyDirectory.default())
ROOT = next(r for r in TREE.roots() if TREE.children(r))  # a department with units
CHILD = TREE.children(ROOT)[0]


def packed(values: list[float]) -> bytes:
    """As lt_kpi_month writes them: float8send of each, ascending."""
    return b"".join(struct.pack(">d", v) for v in sorted(values))


def reference(values: list[float], fraction: float) -> float | None:
    """percentile_cont as PostgreSQL's docs define it, over a sorted list."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    first, second = math.floor(position), math.ceil(position)
    if first == second:
        return ordered[first]
    return ordered[first] + (ordered[second] - ordered[first]) * (position - first)


def test_packed_times_are_read_back_with_their_rows() -> None:
    times = Times.decode([packed([3.5, 1.25]), None, b"", packed([math.inf, 7e9])])
    assert times.values.tolist() == [1.25, 3.5, 7e9, math.inf]
    assert times.row.tolist() == [0, 0, 3, 3]
    assert times.of(np.array([False, True, True, True])).tolist() == [7e9, math.inf]
    assert times.at_least(7e9, 4).tolist() == [0, 0, 0, 2]
    assert times.at_least(0.0, 4).tolist() == [2, 0, 0, 2]


@pytest.mark.parametrize("blob", [b"\x00" * 7, packed([1.0]) + b"\x01"])
def test_times_that_are_not_whole_float8_values_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not whole float8"):
        Times.decode([packed([2.0]), blob])


def test_percentiles_equal_postgresqls_to_the_last_bit() -> None:
    rng = random.Random(7)
    for n in [0, 1, 2, 3, 10, 11, 999, 1000]:
        values = [rng.choice([rng.uniform(0, 9e5), float(rng.randint(0, 50))]) for _ in range(n)]
        for fraction in (0.5, 0.9, 0.0, 1.0, 0.25):
            got = percentile_cont(np.array(values, dtype=np.float64), fraction)
            assert got == reference(values, fraction), (n, fraction)
    assert percentile_cont(np.array([5.0, 5.0, 5.0]), 0.5) == 5.0


def test_the_sums_go_up_the_tree_and_into_the_platform() -> None:
    root, child = ROOT, CHILD
    rolled = roll_up({child: 2, root: 1, "000.99.99.H26": 4, "x": 0}, TREE)
    assert rolled[child] == 2 and rolled[root] == 3 and rolled[ALL] == 7
    assert "x" not in rolled and roll_up({}, TREE) == {}


def span(rows: list[MonthRow], a01: list[list[float]], due: list[list[float]]) -> MonthRows:
    empty = Times.decode([b""] * len(rows))
    return MonthRows(
        rows, Times.decode([packed(v) for v in a01]), empty, Times.decode([packed(v) for v in due])
    )


def row(month: date, agency: str, delivered: int, same_day: int = 0) -> MonthRow:
    return MonthRow(month, agency, Counts(docs_recv_e=delivered), delivered, 0, 0, same_day, 0)


def test_a_periods_figures_merge_its_months_and_subtree() -> None:
    root, child = ROOT, CHILD
    oct_, nov = date(2026, 10, 1), date(2026, 11, 1)
    s = span(
        [row(oct_, child, 2, 1), row(nov, child, 1, 1), row(nov, root, 2), row(nov, "x", 1)],
        [[3600.0, 7200.0], [60.0], [10.0, 20.0], [5.0]],
        [[1.0, math.inf], [], [5.0], [math.inf]],
    )
    q4 = Period(oct_, date(2027, 1, 1), "quarter")
    t = timeliness_of(s, q4, TREE, [root])
    assert (t[child].delivered, t[child].arrived_same_day) == (3, 2)
    assert t[root].delivered == 5 and t[ALL].delivered == 6
    # the root's subtree: its own 10, 20 and its child's 3600, 7200, 60
    assert t[root].median_01_h == reference([10.0, 20.0, 3600.0, 7200.0, 60.0], 0.5) / 3600
    assert t[child].median_01_h is None and t[ALL].median_01_h is None  # not asked for
    assert s.own_counts(q4)[child] == Counts(docs_recv_e=3)
    late = overdue_at(s, {oct_, nov}, 3.0, TREE)
    assert late == {child: 1, root: 2, ALL: 3}
