"""Domain rules: Decree 30 sizes, codes, ids, priorities, reasons, attachments, periods."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.common import AgencyRef, Attachment, DocumentCode, DocumentType, SecrecyMarking
from schemas.document import (
    BusinessOperation,
    BusinessOperationType,
    OfficialDocument,
    Place,
    document_from_record,
    validate_document,
)
from schemas.errors import ValidationError
from schemas.paper import PaperDirection, paper_from_record, validate_paper
from schemas.report import (
    Indicator,
    PeriodKind,
    ReportPeriod,
    decimal_from_text,
    report_from_record,
    validate_report,
)
from schemas.samples import example_record
from schemas.status import StatusCode, status_from_record, validate_status

ID_190 = "000.00.00.H26,2019/08/27,190/KH-UBND"


def doc(**changes: Any) -> OfficialDocument:
    base = document_from_record(example_record("official_document/v1/plan-190-kh-ubnd.json"))
    return dataclasses.replace(base, **changes)


def reason_of(fn: Any, obj: Any) -> str:
    with pytest.raises(ValidationError) as e:
        fn(obj)
    return e.value.reason


def test_seed_examples_are_valid() -> None:
    validate_document(doc())
    for path in ("official_document/v1/plan-191-kh-ubnd.json",
                 "official_document/v2/decision-4612-qd-ubnd.json"):  # fmt: skip
        validate_document(document_from_record(example_record(path)))
    validate_status(status_from_record(example_record("status_notice/v1/rejected-02.json")))
    validate_report(
        report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    )
    validate_paper(
        paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json"))
    )


def test_decision_4612_goes_to_15_districts() -> None:
    d = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    assert len(d.to) == 15 and d.code == DocumentCode("4612", "QĐ-UBND")
    assert d.document_id == "000.00.00.H26,2019/08/28,4612/QĐ-UBND"
    assert "000.00.05.H26" in d.recipient_codes  # the labour department, as a copy


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"document_id": "000.00.00.H26/2019/08/27/190"}, "bad_document_id"),
        ({"document_id": "000.00.00.H26,2019/02/30,190/KH-UBND"}, "bad_document_id"),
        ({"document_id": "000.00.00.H26,2019/08/28,190/KH-UBND"}, "document_id_mismatch"),
        ({"code": DocumentCode("123456789012", "KH-UBND")}, "document_id_mismatch"),
        ({"to": ()}, "no_recipients"),
        ({"to": (AgencyRef("H26", "Hà Nội"),)}, "bad_agency_code"),
        ({"to": (AgencyRef("000.00.31.H26", "x" * 201),)}, "field_too_long"),
        ({"to_places": (Place("Lưu", "26"),)}, "bad_agency_code"),
        ({"subject": "a" * 501}, "field_too_long"),
        ({"subject": ""}, "missing_field"),
        ({"priority": 5}, "bad_priority"),
        ({"priority": -1}, "bad_priority"),
        ({"priority": 4}, "missing_field"),
        ({"steering_type": 0}, "bad_steering_type"),
        ({"page_count": 1000}, "bad_page_count"),
        ({"page_count": 0}, "bad_page_count"),
        ({"number_of_copies": 0}, "bad_copies"),
        ({"due_date": date(2019, 1, 1)}, "bad_due_date"),
        ({"response_for": ("nonsense",)}, "bad_document_id"),
        ({"document_type": DocumentType("XX", "Không rõ")}, "unknown_document_type"),
        ({"document_type": DocumentType(None, "Thư")}, "unknown_document_type"),
        ({"secrecy": SecrecyMarking.MAT}, "secret_document"),
        ({"priority_deadline": datetime(2019, 8, 27, 17, 0)}, "naive_timestamp"),
        ({"business": BusinessOperation(BusinessOperationType.REVOKE)}, "bad_business_operation"),
        ({"business": BusinessOperation(BusinessOperationType.NEW, ID_190)},
         "bad_business_operation"),
        ({"business": BusinessOperation(BusinessOperationType.REPLACE, "x", "sai")},
         "bad_document_id"),
    ],
)  # fmt: skip
def test_document_rules(changes: dict[str, Any], reason: str) -> None:
    assert reason_of(validate_document, doc(**changes)) == reason


def test_size_limits_are_inclusive() -> None:
    number = "1" * 11
    notation = "N" * 30
    ok = doc(
        document_id=f"000.00.00.H26,2019/08/27,{number}/{notation}",
        code=DocumentCode(number, notation),
        subject="Đ" * 500,
        page_count=999,
        to=(AgencyRef("000.00.31.H26", "Ư" * 200),),
    )
    validate_document(ok)
    too_long = doc(
        document_id=f"000.00.00.H26,2019/08/27,1/{'N' * 31}", code=DocumentCode("1", "N" * 31)
    )
    assert reason_of(validate_document, too_long) == "bad_document_id"


def test_notation_over_30_caught_on_the_code_itself() -> None:
    with pytest.raises(ValidationError) as e:
        DocumentCode("1", "N" * 31).validate()
    assert (e.value.reason, e.value.field) == ("field_too_long", "code.notation")
    with pytest.raises(ValidationError) as e:
        DocumentCode("1" * 12, "KH-UBND").validate()
    assert (e.value.reason, e.value.field) == ("field_too_long", "code.number")


def test_secret_allowed_only_when_asked() -> None:
    validate_document(doc(secrecy=SecrecyMarking.TUYET_MAT), allow_secret=True)


def test_revocation_needs_target_and_reason() -> None:
    target = "000.00.00.H26,2019/08/27,190/KH-UBND"
    no_reason = doc(business=BusinessOperation(BusinessOperationType.REVOKE, target))
    assert reason_of(validate_document, no_reason) == "missing_field"
    validate_document(doc(business=BusinessOperation(BusinessOperationType.REVOKE, target, "Sai")))


def test_attachment_rules() -> None:
    att = Attachment.inline("a.pdf", "application/pdf", b"%PDF-1.4 abc")
    att.validate()
    tampered = dataclasses.replace(att, data=b"%PDF-1.4 abd")
    assert reason_of(Attachment.validate, tampered) == "sha256_mismatch"
    assert reason_of(Attachment.validate, dataclasses.replace(att, size=1)) == "size_mismatch"
    both = dataclasses.replace(att, uri="lienthong-blob://x")
    assert reason_of(Attachment.validate, both) == "bad_attachment_content"
    assert reason_of(Attachment.validate, dataclasses.replace(att, sha256=b"1")) == "bad_sha256"
    assert reason_of(validate_document, doc(attachments=(tampered,))) == "sha256_mismatch"


def test_status_rules() -> None:
    rejected = status_from_record(example_record("status_notice/v1/rejected-02.json"))
    for description in (None, "", "   "):
        no_reason = dataclasses.replace(rejected, description=description)
        assert reason_of(validate_status, no_reason) == "missing_reason"
    accepted = dataclasses.replace(rejected, code=StatusCode.ACCEPTED, description=None)
    validate_status(accepted)
    assert (
        reason_of(validate_status, dataclasses.replace(accepted, document_id="x"))
        == "bad_document_id"
    )
    naive = dataclasses.replace(accepted, timestamp=datetime(2019, 8, 29))
    assert reason_of(validate_status, naive) == "naive_timestamp"
    with pytest.raises(ValidationError) as e:
        status_from_record(example_record("status_notice/v1/rejected-02.json") | {"code": "99"})
    assert e.value.reason == "unknown_status_code"


def test_report_rules() -> None:
    report = report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    assert report.indicators[1].value == Decimal("780000000")
    assert report.indicators[3].value is None
    month = ReportPeriod(PeriodKind.MONTH, date(2019, 7, 15), date(2019, 8, 14))  # cut-off window
    validate_report(dataclasses.replace(report, period=month))
    bad_periods = [
        ReportPeriod(PeriodKind.MONTH, date(2019, 7, 1), date(2019, 9, 30)),
        ReportPeriod(PeriodKind.YEAR, date(2019, 12, 31), date(2019, 1, 1)),
        ReportPeriod(PeriodKind.NINE_MONTHS, date(2019, 1, 1), date(2019, 6, 30)),
    ]
    for period in bad_periods:
        assert (
            reason_of(validate_report, dataclasses.replace(report, period=period)) == "bad_period"
        )
    dup = (*report.indicators, report.indicators[0])
    assert (
        reason_of(validate_report, dataclasses.replace(report, indicators=dup))
        == "duplicate_indicator"
    )
    nan = (Indicator("X", "x", Decimal("NaN")),)
    assert (
        reason_of(validate_report, dataclasses.replace(report, indicators=nan))
        == "bad_indicator_value"
    )
    secret = dataclasses.replace(report, secrecy=SecrecyMarking.MAT)
    assert reason_of(validate_report, secret) == "secret_document"
    for text in ("1e5", "1,5", "NaN", " 1", "", "+1", "١"):
        assert reason_of(decimal_from_text, text) == "bad_indicator_value"
    assert decimal_from_text("-0.50") == Decimal("-0.50")


def test_paper_rules() -> None:
    paper = paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json"))
    outgoing = dataclasses.replace(paper, direction=PaperDirection.OUTGOING)
    assert reason_of(validate_paper, outgoing) == "bad_direction"
    assert reason_of(validate_paper, dataclasses.replace(paper, recipients=())) == "no_recipients"
    assert (
        reason_of(validate_paper, dataclasses.replace(paper, registering_agency="x"))
        == "bad_agency_code"
    )
    secret = dataclasses.replace(paper, secrecy=SecrecyMarking.TOI_MAT)
    assert reason_of(validate_paper, secret) == "secret_subject"
    validate_paper(dataclasses.replace(secret, subject=None))
