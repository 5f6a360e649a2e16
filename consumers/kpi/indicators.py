"""Paperless-share indicators: pure arithmetic from archive counts to Indicator values.

Counting rules (consumers/kpi/sql.py states the SQL side: paper de-duplication, secrecy, time zone):
- Every count here is additive over months and over agencies, so SQL returns each agency's own
  figures per month and this module sums them over a period and up the agency tree: an agency's
  figure is the sum over itself and its descendants (ratio of sums, never an average of ratios).
- Timeliness percentiles are not additive: SQL computes them per ancestor already rolled up
  (`Timeliness`), from the closure this module's `Tree.pairs()` provides.
- A share whose denominator is empty has no value: it reads "no data", never 0% or 100%.
"""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Literal

from schemas.agency import Agency

ALL = "*"  # the whole platform: every agency, also codes the directory does not know
DOCS_TARGET = 90.0  # Plan 190: >= 90% of documents between state agencies are electronic
CONNECTED_TARGET = 100.0  # Plan 190: every unit sends and receives electronically
SAME_DAY_TARGET = 100.0  # Decree 30/2020: the receipt notice (01) is due the same day

# Where each target comes from: the plan (or decree) and its item, as a reader checks it.
PLAN_190 = "Kế hoạch 190/KH-UBND ngày 27/8/2019 của UBND thành phố Hà Nội"
SOURCES = {
    "docs": f"{PLAN_190}, chỉ tiêu: ít nhất 90% văn bản trao đổi giữa các cơ quan nhà nước "
    "dưới dạng điện tử (trừ văn bản mật)",
    "connected": f"{PLAN_190}, chỉ tiêu: 100% phần mềm quản lý văn bản của các sở, ngành, "
    "quận, huyện gửi, nhận văn bản điện tử qua Trục liên thông của Thành phố",
    "reports_30": f"{PLAN_190}, chỉ tiêu: ít nhất 30% báo cáo định kỳ (không mật) gửi, nhận "
    "qua Hệ thống thông tin báo cáo quốc gia",
    "reports_100": "Mục tiêu quốc gia năm 2025: 100% báo cáo định kỳ (không mật) gửi bằng "
    "phương thức điện tử",
    "same_day": "Nghị định 30/2020/NĐ-CP về công tác văn thư: văn bản điện tử đến được "
    "tiếp nhận, báo đã nhận (01) trong ngày",
    "overdue": "Hạn xử lý ghi trên văn bản (hạn giải quyết): không văn bản quá hạn",
}

PeriodKind = Literal["month", "quarter", "year", "range"]
_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar month, quarter or year in Vietnam time; `end` is exclusive."""

    start: date
    end: date
    kind: PeriodKind

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _PERIOD.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"period must be YYYY-MM, YYYY-Qn or YYYY: {text!r}")
        year = int(m[1])
        if m[2] is not None:
            month = int(m[2])
            if not 1 <= month <= 12:
                raise ValueError(f"period {text!r}: there is no month {month}")
            return cls.month(year, month)
        if m[3] is not None:
            q = int(m[3])
            return cls(
                date(year, 3 * q - 2, 1), _add_months(date(year, 3 * q - 2, 1), 3), "quarter"
            )
        return cls(date(year, 1, 1), date(year + 1, 1, 1), "year")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        start = date(year, month, 1)
        return cls(start, _add_months(start, 1), "month")

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return f"{self.start.year}"
        return f"{self.start:%Y-%m}..{_add_months(self.end, -1):%Y-%m}"

    def previous(self) -> Period:
        step = {"month": 1, "quarter": 3, "year": 12}.get(self.kind) or _months_between(
            self.start, self.end
        )
        start = _add_months(self.start, -step)
        return Period(start, self.start, self.kind)

    def months(self) -> list[Period]:
        out, at = [], self.start
        while at < self.end:
            out.append(Period.month(at.year, at.month))
            at = _add_months(at, 1)
        return out

    def __str__(self) -> str:
        return self.label


def month_range(first: str, last: str) -> list[Period]:
    """Every month from `first` to `last` inclusive (both YYYY-MM)."""
    a, b = Period.parse(first), Period.parse(last)
    if a.kind != "month" or b.kind != "month":
        raise ValueError("--from and --to are months: YYYY-MM")
    if b.start < a.start:
        raise ValueError(f"{last} is before {first}")
    return Period(a.start, b.end, "range").months()


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def report_target(period: Period) -> float:
    """Plan 190 asks 30% of non-secret periodic reports online; the national target is 100%
    from 2025. A period is judged by the year it starts in (periods never straddle years)."""
    return 100.0 if period.start.year >= 2025 else 30.0


def report_source(period: Period) -> str:
    return SOURCES["reports_100" if report_target(period) == 100.0 else "reports_30"]


@dataclass(frozen=True, slots=True)
class Counts:
    """One agency's own figures (or a roll-up). e = electronic, p = paper; secret excluded.
    Received counts are per (document, recipient) pair: each addressee got a copy."""

    docs_sent_e: int = 0
    docs_sent_p: int = 0
    docs_recv_e: int = 0
    docs_recv_p: int = 0
    reports_sent_e: int = 0
    reports_sent_p: int = 0
    # For "agencies connected" only: answering with status notices is sending electronically,
    # and any delivery to the inbox (a copy, a report, a notice) is receiving electronically.
    notices_sent_e: int = 0
    deliveries_recv_e: int = 0

    def __add__(self, other: Counts) -> Counts:
        return total((self, other))

    def values(self) -> tuple[int, ...]:
        return _count_values(self)

    @property
    def sends_electronically(self) -> bool:
        return self.docs_sent_e + self.reports_sent_e + self.notices_sent_e > 0

    @property
    def receives_electronically(self) -> bool:
        return self.docs_recv_e + self.deliveries_recv_e > 0


_count_values = operator.attrgetter(*(f.name for f in fields(Counts)))


def total(items: Iterable[Counts]) -> Counts:
    """The column sums (a page adds up thousands of agency-months: one pass per column)."""
    columns = list(zip(*(c.values() for c in items), strict=True))
    return Counts(*(sum(col) for col in columns)) if columns else Counts()


@dataclass(frozen=True, slots=True)
class Timeliness:
    """Deliveries to an agency's subtree in a period, rolled up by SQL. Hours are decimals."""

    delivered: int = 0
    arrived_same_day: int = 0  # 01 dated the same Vietnam calendar day as the delivery, not before
    # Statuses dated before the delivery they answer: flagged, left out of every other figure.
    early_01: int = 0
    early_06: int = 0
    median_01_h: float | None = None
    p90_01_h: float | None = None
    median_06_h: float | None = None
    p90_06_h: float | None = None
    overdue: int = 0  # due date passed (by the period's end) and no 06 from that recipient


class Tree:
    """The agency tree through `parent` links; agencies outside it roll up only into ALL."""

    def __init__(self, agencies: Iterable[Agency]) -> None:
        self._agencies = {a.code: a for a in agencies}
        self._children: dict[str, list[str]] = {}
        for a in self._agencies.values():
            if a.parent is not None and a.parent in self._agencies:
                self._children.setdefault(a.parent, []).append(a.code)

    def __contains__(self, code: object) -> bool:
        return code in self._agencies

    def __iter__(self) -> Iterator[Agency]:
        return iter(sorted(self._agencies.values(), key=lambda a: a.code))

    def name(self, code: str) -> str:
        if code == ALL:
            return "Toàn hệ thống"
        a = self._agencies.get(code)
        return a.name if a is not None else code

    def roots(self) -> list[str]:
        return sorted(a.code for a in self._agencies.values() if a.parent not in self._agencies)

    def children(self, code: str) -> list[str]:
        if code == ALL:
            return self.roots()
        return sorted(self._children.get(code, ()))

    def subtree(self, code: str) -> list[str]:
        """The agency and all its descendants (a cycle in bad data is walked once)."""
        if code == ALL:
            return sorted(self._agencies)
        out: list[str] = []
        stack, seen = [code], set()
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            out.append(c)
            stack.extend(self._children.get(c, ()))
        return sorted(out)

    def pairs(self) -> list[tuple[str, str]]:
        """(ancestor, descendant) for every agency and itself too: the closure SQL joins on."""
        return [(a, d) for a in sorted(self._agencies) for d in self.subtree(a)]

    def open_in(self, code: str, period: Period) -> bool:
        a = self._agencies.get(code)
        # valid_to is exclusive (the first day out of use), as in the directory file.
        return (
            a is not None
            and a.valid_from < period.end
            and (a.valid_to is None or a.valid_to > period.start)
        )


def own_counts(monthly: Mapping[tuple[str, str], Counts], period: Period) -> dict[str, Counts]:
    """Sum each agency's monthly rows {(agency, 'YYYY-MM'): Counts} over the period's months."""
    months = {p.label for p in period.months()}
    rows: dict[str, list[Counts]] = {}
    for (agency, month), c in monthly.items():
        if month in months:
            rows.setdefault(agency, []).append(c)
    return {agency: total(cs) for agency, cs in rows.items()}


def rollup(code: str, own: Mapping[str, Counts], tree: Tree) -> Counts:
    if code == ALL:
        return total(own.values())
    return total(own.get(c, Counts()) for c in tree.subtree(code))


def connected(code: str, own: Mapping[str, Counts], tree: Tree, period: Period) -> tuple[int, int]:
    """(agencies open in the period that sent and received electronically, agencies open)."""
    units = [c for c in tree.subtree(code) if tree.open_in(c, period)]
    ok = [
        c
        for c in units
        if own.get(c, Counts()).sends_electronically
        and own.get(c, Counts()).receives_electronically
    ]
    return len(ok), len(units)


class Status(enum.StrEnum):
    """Machine codes (JSON, CSV); people read STATUS_LABEL."""

    MET = "met"
    BELOW = "below target"
    NO_DATA = "no data"
    INFO = "info"


STATUS_LABEL = {
    Status.MET: "đạt",
    Status.BELOW: "chưa đạt",
    Status.NO_DATA: "chưa có số liệu",
    Status.INFO: "tham khảo",
}


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    name: str
    unit: Literal["%", "h", "n"]
    value: float | None
    target: float | None = None
    numerator: int | None = None
    denominator: int | None = None
    higher_is_better: bool = True
    source: str | None = None  # where the target comes from (plan and item)

    @property
    def gap(self) -> float | None:
        """How far short of the target (percentage points, hours or documents); 0 when met."""
        if self.value is None or self.target is None:
            return None
        short = self.target - self.value if self.higher_is_better else self.value - self.target
        return round(max(0.0, short), 6)

    @property
    def status(self) -> Status:
        if self.value is None:
            return Status.NO_DATA
        if self.target is None:
            return Status.INFO
        return Status.MET if self.gap == 0 else Status.BELOW


def share(
    code: str, name: str, num: int, den: int, target: float | None, source: str | None = None
) -> Indicator:
    value = None if den == 0 else round(100.0 * num / den, 6)
    return Indicator(code, name, "%", value, target, num, den, source=source)


def hours(code: str, name: str, value: float | None) -> Indicator:
    return Indicator(code, name, "h", None if value is None else round(value, 2))


@dataclass(frozen=True, slots=True)
class AgencyKpi:
    agency: str
    name: str
    period: Period
    indicators: list[Indicator] = field(default_factory=list)

    def get(self, code: str) -> Indicator:
        return next(i for i in self.indicators if i.code == code)


def evaluate(
    code: str,
    period: Period,
    own: Mapping[str, Counts],
    timeliness: Timeliness,
    tree: Tree,
) -> AgencyKpi:
    """Every indicator of one agency (rolled up) for one period, from its subtree's counts."""
    c = rollup(code, own, tree)
    conn_num, conn_den = connected(code, own, tree, period)
    t = timeliness
    indicators = [
        share(
            "docs_sent",
            "Văn bản điện tử — gửi",
            c.docs_sent_e,
            c.docs_sent_e + c.docs_sent_p,
            DOCS_TARGET,
            SOURCES["docs"],
        ),
        share(
            "docs_received",
            "Văn bản điện tử — nhận",
            c.docs_recv_e,
            c.docs_recv_e + c.docs_recv_p,
            DOCS_TARGET,
            SOURCES["docs"],
        ),
        share(
            "reports_sent",
            "Báo cáo định kỳ điện tử",
            c.reports_sent_e,
            c.reports_sent_e + c.reports_sent_p,
            report_target(period),
            report_source(period),
        ),
        share(
            "connected",
            "Đơn vị kết nối liên thông",
            conn_num,
            conn_den,
            CONNECTED_TARGET,
            SOURCES["connected"],
        ),
        share(
            "arrived_same_day",
            "Báo đã nhận (01) trong ngày",
            t.arrived_same_day,
            t.delivered - t.early_01,
            SAME_DAY_TARGET,
            SOURCES["same_day"],
        ),
        hours("median_01_h", "Trung vị đến 01 (giờ)", t.median_01_h),
        hours("p90_01_h", "P90 đến 01 (giờ)", t.p90_01_h),
        hours("median_06_h", "Trung vị đến 06 (giờ)", t.median_06_h),
        hours("p90_06_h", "P90 đến 06 (giờ)", t.p90_06_h),
        Indicator(
            "status_before_delivery",
            "Trạng thái ghi trước lúc nhận (cần kiểm tra, không tính)",
            "n",
            None if t.delivered == 0 else float(t.early_01 + t.early_06),
            None,
            t.early_01 + t.early_06,
            t.delivered,
        ),
        # Overdue is a count judged against zero; with nothing delivered there is nothing to judge.
        Indicator(
            "overdue",
            "Quá hạn chưa hoàn thành (06)",
            "n",
            None if t.delivered == 0 and t.overdue == 0 else float(t.overdue),
            0.0,
            t.overdue,
            None,
            higher_is_better=False,
            source=SOURCES["overdue"],
        ),
    ]
    return AgencyKpi(code, tree.name(code), period, indicators)


def trend(current: Indicator, previous: Indicator | None) -> str:
    """Arrow of the value against the previous period (direction of the number, not of merit)."""
    if previous is None or current.value is None or previous.value is None:
        return ""
    if abs(current.value - previous.value) < 1e-9:
        return "→"
    return "↑" if current.value > previous.value else "↓"


def rollup_reasons(
    rows: Mapping[tuple[str, str, str], int], code: str, period: Period, tree: Tree
) -> dict[str, int]:
    """Rejections {(sender, reason, 'YYYY-MM'): n} -> {reason: n} for a subtree and period."""
    months = {p.label for p in period.months()}
    senders = None if code == ALL else set(tree.subtree(code))
    out: dict[str, int] = {}
    for (sender, reason, month), n in rows.items():
        if month in months and (senders is None or sender in senders):
            out[reason] = out.get(reason, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
