"""KPI arithmetic on hand-computed fixtures: periods, shares, "no data", targets and roll-ups."""

from __future__ import annotations

from datetime import date

import pytest

from consumers.kpi.indicators import (
    ALL,
    Counts,
    Indicator,
    Period,
    Status,
    Timeliness,
    Tree,
    connected,
    evaluate,
    month_range,
    own_counts,
    report_target,
    rollup,
    rollup_reasons,
    share,
    trend,
)
from schemas.agency import Agency

CITY = "000.00.00.H26"
DEPT = "000.00.02.H26"
DIST = "000.00.31.H26"
WARD = "000.01.31.H26"
OLD = "000.00.05.H26"  # closed on 2025-03-01

TREE = Tree(
    [
        Agency(CITY, "Ủy ban nhân dân thành phố Hà Nội", None, date(2008, 8, 1)),
        Agency(DEPT, "Sở Nội vụ", CITY, date(2008, 8, 1)),
        Agency(DIST, "UBND quận Ba Đình", CITY, date(2008, 8, 1)),
        Agency(WARD, "UBND phường Phúc Xá", DIST, date(2008, 8, 1)),
        Agency(OLD, "Sở Lao động", CITY, date(2008, 8, 1), date(2025, 3, 1), DEPT),
    ]
)
NOV = Period.parse("2026-11")


def test_periods_parse_and_step_back() -> None:
    assert (NOV.start, NOV.end, NOV.label) == (date(2026, 11, 1), date(2026, 12, 1), "2026-11")
    jan = Period.parse("2026-01")
    assert jan.previous().label == "2025-12"
    q = Period.parse("2026-Q1")
    assert (q.start, q.end, q.label, q.previous().label) == (
        date(2026, 1, 1),
        date(2026, 4, 1),
        "2026-Q1",
        "2025-Q4",
    )
    y = Period.parse("2026")
    assert [m.label for m in y.months()][::11] == ["2026-01", "2026-12"]
    assert y.previous().label == "2025"
    assert [m.label for m in month_range("2025-11", "2026-02")] == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    for bad in ("2026-13", "26-11", "2026-Q5", "nov"):
        with pytest.raises(ValueError):
            Period.parse(bad)


def test_report_target_depends_on_the_period() -> None:
    assert report_target(Period.parse("2024-12")) == 30.0
    assert report_target(Period.parse("2025-01")) == 100.0
    assert report_target(Period.parse("2026-Q3")) == 100.0


def test_share_value_gap_status() -> None:
    i = share("docs_sent", "x", 9, 12, 90.0)
    assert (i.value, i.gap, i.status) == (75.0, 15.0, Status.BELOW)
    met = share("docs_sent", "x", 19, 20, 90.0)
    assert (met.value, met.gap, met.status) == (95.0, 0.0, Status.MET)
    exact = share("docs_sent", "x", 9, 10, 90.0)
    assert exact.status is Status.MET


def test_empty_denominator_is_no_data_not_zero_or_hundred() -> None:
    i = share("docs_sent", "x", 0, 0, 90.0)
    assert i.value is None and i.gap is None and i.status is Status.NO_DATA
    assert (i.numerator, i.denominator) == (0, 0)
    k = evaluate(CITY, NOV, {}, Timeliness(), TREE)
    assert {x.code: x.status for x in k.indicators if x.unit == "%"} == {
        "docs_sent": Status.NO_DATA,
        "docs_received": Status.NO_DATA,
        "reports_sent": Status.NO_DATA,
        "connected": Status.BELOW,  # 4 open agencies, none connected: a real 0%
        "arrived_same_day": Status.NO_DATA,
    }
    assert k.get("overdue").status is Status.NO_DATA
    assert k.get("median_01_h").status is Status.NO_DATA


def test_lower_is_better_gap() -> None:
    i = Indicator("overdue", "x", "n", 3.0, 0.0, 3, None, higher_is_better=False)
    assert (i.gap, i.status) == (3.0, Status.BELOW)
    assert Indicator("overdue", "x", "n", 0.0, 0.0, higher_is_better=False).status is Status.MET


MONTHLY = {
    (CITY, "2026-11"): Counts(docs_sent_e=10, docs_sent_p=0, docs_recv_e=4),
    (DIST, "2026-11"): Counts(docs_sent_e=3, docs_sent_p=1, docs_recv_e=5, docs_recv_p=5),
    (WARD, "2026-11"): Counts(docs_sent_e=1, docs_sent_p=3, reports_sent_e=1, reports_sent_p=1),
    (WARD, "2026-10"): Counts(docs_sent_e=100),
    ("000.00.00.G22", "2026-11"): Counts(docs_sent_e=7, docs_recv_e=1),  # outside the tree
}


def test_rollup_sums_the_subtree_and_ratio_of_sums() -> None:
    own = own_counts(MONTHLY, NOV)
    assert own[WARD] == Counts(docs_sent_e=1, docs_sent_p=3, reports_sent_e=1, reports_sent_p=1)
    assert rollup(DIST, own, TREE) == Counts(4, 4, 5, 5, 1, 1)
    assert rollup(CITY, own, TREE) == Counts(14, 4, 9, 5, 1, 1)
    assert rollup(ALL, own, TREE) == Counts(21, 4, 10, 5, 1, 1)
    k = evaluate(DIST, NOV, own, Timeliness(), TREE)
    # (3+1) / (3+1+1+3) = 50%, not the mean of 75% and 25%.
    assert k.get("docs_sent").value == 50.0
    assert (k.get("docs_sent").numerator, k.get("docs_sent").denominator) == (4, 8)
    assert k.get("docs_sent").gap == 40.0
    assert k.get("docs_received").value == 50.0
    assert k.get("reports_sent").value == 50.0 and k.get("reports_sent").target == 100.0
    city = evaluate(CITY, NOV, own, Timeliness(), TREE)
    assert city.get("docs_sent").value == pytest.approx(100 * 14 / 18)


def test_quarter_sums_months() -> None:
    own = own_counts(MONTHLY, Period.parse("2026-Q4"))
    assert own[WARD].docs_sent_e == 101


def test_connected_counts_open_agencies_that_sent_and_received() -> None:
    own = own_counts(MONTHLY, NOV)
    # CITY sent and received; DIST too; WARD sent only; DEPT nothing; OLD closed in 2025.
    assert connected(CITY, own, TREE, NOV) == (2, 4)
    assert connected(DIST, own, TREE, NOV) == (1, 2)
    feb25 = Period.parse("2025-02")
    assert connected(CITY, own_counts(MONTHLY, feb25), TREE, feb25) == (0, 5)
    k = evaluate(WARD, NOV, own, Timeliness(), TREE)
    assert (k.get("connected").value, k.get("connected").gap) == (0.0, 100.0)


def test_timeliness_indicators() -> None:
    t = Timeliness(delivered=4, arrived_same_day=3, median_01_h=1.5, p90_01_h=30.0, overdue=2)
    k = evaluate(DIST, NOV, {}, t, TREE)
    assert k.get("arrived_same_day").value == 75.0
    assert k.get("median_01_h").value == 1.5 and k.get("median_01_h").status is Status.INFO
    assert k.get("median_06_h").status is Status.NO_DATA
    assert (k.get("overdue").value, k.get("overdue").status) == (2.0, Status.BELOW)


def test_trend_arrows() -> None:
    a, b = share("x", "x", 1, 2, 90.0), share("x", "x", 3, 4, 90.0)
    assert trend(b, a) == "↑" and trend(a, b) == "↓" and trend(a, a) == "→"
    assert trend(a, share("x", "x", 0, 0, 90.0)) == "" and trend(a, None) == ""


def test_rejection_reasons_roll_up_by_sender() -> None:
    rows = {
        (WARD, "BAD_SIGNATURE", "2026-11"): 2,
        (DIST, "UNKNOWN_RECIPIENT", "2026-11"): 1,
        (DEPT, "BAD_SIGNATURE", "2026-11"): 5,
        ("", "UNPARSEABLE", "2026-11"): 1,
        (WARD, "BAD_SIGNATURE", "2026-10"): 9,
    }
    assert rollup_reasons(rows, DIST, NOV, TREE) == {"BAD_SIGNATURE": 2, "UNKNOWN_RECIPIENT": 1}
    assert rollup_reasons(rows, ALL, NOV, TREE) == {
        "BAD_SIGNATURE": 7,
        "UNKNOWN_RECIPIENT": 1,
        "UNPARSEABLE": 1,
    }


def test_tree_closure_and_roots() -> None:
    assert TREE.roots() == [CITY]
    assert TREE.subtree(DIST) == [DIST, WARD]
    assert (CITY, WARD) in TREE.pairs() and (WARD, WARD) in TREE.pairs()
    assert (DIST, DEPT) not in TREE.pairs()
    assert TREE.children(ALL) == [CITY]


def test_answering_with_statuses_and_receiving_copies_make_an_agency_connected() -> None:
    # A district that only received (a copy) and answered with status notices is connected;
    # one that only received is not; notices alone, with nothing received, are not enough.
    own = {
        DIST: Counts(deliveries_recv_e=2, notices_sent_e=3),
        WARD: Counts(deliveries_recv_e=1),
        DEPT: Counts(notices_sent_e=1),
        CITY: Counts(docs_sent_e=1, deliveries_recv_e=1),
    }
    assert connected(CITY, own, TREE, NOV) == (2, 4)
    assert Counts(notices_sent_e=1).sends_electronically
    assert not Counts(notices_sent_e=1).receives_electronically
