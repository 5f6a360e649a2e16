"""A status notice answers a document or a periodic report; each id has its own strict form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.common import AgencyRef, check_answerable_id
from schemas.errors import ValidationError
from schemas.status import StatusCode, StatusNotice, validate_status


@pytest.mark.parametrize(
    "value",
    [
        "000.00.00.H26,2019/08/28,4612/QĐ-UBND",
        "000.00.05.H26/BC/2019-Q3/01",
    ],
)
def test_documents_and_reports_can_be_answered(value: str) -> None:
    assert check_answerable_id(value, "document_id")["sender"] == value[:13]
    notice = StatusNotice(
        document_id=value,
        from_agency=AgencyRef("000.00.00.H26", "UBND"),
        code=StatusCode.ARRIVED,
        timestamp=datetime(2019, 9, 1, tzinfo=UTC),
    )
    validate_status(notice)


@pytest.mark.parametrize(
    "value",
    [
        "BC/2019-Q3/01",  # no agency
        "000.00.05.H26/",  # no reference
        "000.00.05.H26/BC 2019",  # whitespace
        "000.00.00.H26,2019/02/30,1/QĐ",  # no such date
        "",
    ],
)
def test_other_ids_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        check_answerable_id(value, "document_id")
