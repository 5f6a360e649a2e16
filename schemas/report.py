"""PeriodicReport: a report under a reporting regime (Decree 09/2019), with data indicators."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from schemas.common import (
    AgencyRef,
    Attachment,
    SecrecyMarking,
    check_aware,
    check_not_secret,
    check_report_id,
    check_text,
    require,
)
from schemas.errors import ValidationError

# Values travel as exact decimal text; no exponent, no "NaN", no thousands separators.
DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$", re.ASCII)


class ReportKind(enum.StrEnum):
    PERIODIC = "PERIODIC"
    THEMATIC = "THEMATIC"
    AD_HOC = "AD_HOC"


class PeriodKind(enum.StrEnum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    HALF_YEAR = "HALF_YEAR"
    NINE_MONTHS = "NINE_MONTHS"
    YEAR = "YEAR"


# Inclusive length in days a period of each kind may have. Cut-off windows (15th to 14th)
# shift a period but keep its length, so the check holds for them too.
PERIOD_DAYS: dict[PeriodKind, tuple[int, int]] = {
    PeriodKind.MONTH: (28, 31),
    PeriodKind.QUARTER: (89, 92),
    PeriodKind.HALF_YEAR: (181, 184),
    PeriodKind.NINE_MONTHS: (273, 275),
    PeriodKind.YEAR: (365, 366),
}


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    kind: PeriodKind
    start: date  # inclusive
    end: date  # inclusive

    def validate(self) -> None:
        require(self.start <= self.end, "bad_period", "start after end", "period")
        days = (self.end - self.start).days + 1
        low, high = PERIOD_DAYS[self.kind]
        require(
            low <= days <= high,
            "bad_period",
            f"{self.kind.value} spans {low}..{high} days, got {days}",
            "period",
        )


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    name: str
    value: Decimal | None  # None: not reported
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class PeriodicReport:
    report_id: str
    regime_code: str
    regime_title: str
    kind: ReportKind
    period: ReportPeriod
    reporting_agency: AgencyRef
    recipient_agency: AgencyRef
    submitted_at: datetime
    summary: str | None = None
    indicators: tuple[Indicator, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    secrecy: SecrecyMarking = SecrecyMarking.NONE


def decimal_to_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValidationError("bad_indicator_value", f"{value} is not finite", "value")
    return format(value, "f")


def decimal_from_text(text: str) -> Decimal:
    if not DECIMAL_TEXT.fullmatch(text):
        raise ValidationError("bad_indicator_value", f"not a decimal: {text!r}", "value")
    return Decimal(text)


def validate_report(report: PeriodicReport, *, allow_secret: bool = False) -> None:
    check_text(report.report_id, 100, "report_id")
    m = check_report_id(report.report_id, "report_id")
    require(
        m["sender"] == report.reporting_agency.code,
        "report_id_sender",
        "a report id starts with its reporting agency's code",
        "report_id",
    )
    check_text(report.regime_code, 50, "regime_code")
    check_text(report.regime_title, 500, "regime_title")
    report.period.validate()
    report.reporting_agency.validate("reporting_agency")
    report.recipient_agency.validate("recipient_agency")
    check_aware(report.submitted_at, "submitted_at")
    seen: set[str] = set()
    for i, ind in enumerate(report.indicators):
        check_text(ind.code, 50, f"indicators[{i}].code")
        check_text(ind.name, 500, f"indicators[{i}].name")
        require(ind.code not in seen, "duplicate_indicator", ind.code, f"indicators[{i}]")
        seen.add(ind.code)
        if ind.value is not None:
            decimal_to_text(ind.value)
    for i, att in enumerate(report.attachments):
        att.validate(f"attachments[{i}]")
    if not allow_secret:
        check_not_secret(report.secrecy)


def report_to_record(report: PeriodicReport) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "regime": {"code": report.regime_code, "title": report.regime_title},
        "kind": report.kind.value,
        "period": {
            "kind": report.period.kind.value,
            "start": report.period.start,
            "end": report.period.end,
        },
        "reporting_agency": report.reporting_agency.to_record(),
        "recipient_agency": report.recipient_agency.to_record(),
        "submitted_at": report.submitted_at,
        "summary": report.summary,
        "indicators": [
            {
                "code": i.code,
                "name": i.name,
                "value": None if i.value is None else decimal_to_text(i.value),
                "unit": i.unit,
            }
            for i in report.indicators
        ],
        "attachments": [a.to_record() for a in report.attachments],
        "secrecy": report.secrecy.value,
    }


def report_from_record(rec: dict[str, Any]) -> PeriodicReport:
    period = rec["period"]
    return PeriodicReport(
        report_id=rec["report_id"],
        regime_code=rec["regime"]["code"],
        regime_title=rec["regime"]["title"],
        kind=ReportKind(rec["kind"]),
        period=ReportPeriod(PeriodKind(period["kind"]), period["start"], period["end"]),
        reporting_agency=AgencyRef.from_record(rec["reporting_agency"]),
        recipient_agency=AgencyRef.from_record(rec["recipient_agency"]),
        submitted_at=rec["submitted_at"],
        summary=rec["summary"],
        indicators=tuple(
            Indicator(
                code=i["code"],
                name=i["name"],
                value=None if i["value"] is None else decimal_from_text(i["value"]),
                unit=i["unit"],
            )
            for i in rec["indicators"]
        ),
        attachments=tuple(Attachment.from_record(a) for a in rec["attachments"]),
        secrecy=SecrecyMarking(rec["secrecy"]),
    )
