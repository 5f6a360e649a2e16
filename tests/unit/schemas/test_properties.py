"""Property tests: garbage never crashes the decoder; generated records round-trip exactly."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import (
    HEADER_SIZE,
    decode,
    decode_envelope,
    decode_payload,
    encode,
    encode_envelope,
    encode_payload,
)
from schemas.common import AgencyRef, Attachment
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope
from schemas.errors import SCHEMA_ERROR_REASONS, SchemaError
from schemas.registry import default_registry
from schemas.report import Indicator, report_from_record
from schemas.samples import example_paths, load_example
from schemas.status import Staff, StatusCode, StatusNotice

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADERS = [sv.fingerprint for sv in default_registry()]
VALID = [
    encode(sv.directory, rec, version=sv.version) for sv, rec in map(load_example, example_paths())
]

# Vietnamese letters with every tone mark, plus anything encodable as UTF-8 (no surrogates).
VIET = "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵĐƯƠ"
text = st.text(st.one_of(st.sampled_from(VIET), st.characters(exclude_categories=("Cs",))))
agency_code = st.from_regex(r"\A[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}\Z")
# Avro timestamp-millis keeps milliseconds only.
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def _decode_or_schema_error(data: bytes) -> None:
    try:
        decode(data)
    except SchemaError as exc:
        assert exc.reason in SCHEMA_ERROR_REASONS


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_schema_error(data: bytes) -> None:
    _decode_or_schema_error(data)


@FAST
@given(st.sampled_from(HEADERS), st.binary(max_size=400))
def test_valid_header_random_body(fp: bytes, body: bytes) -> None:
    _decode_or_schema_error(b"\xc3\x01" + fp + body)


@FAST
@given(st.sampled_from(VALID), st.data())
def test_mutated_messages(valid: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(HEADER_SIZE, len(valid) - 1))
    byte = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(valid)))
    _decode_or_schema_error(valid[:pos] + bytes([byte]) + valid[pos + 1 :])
    _decode_or_schema_error(valid[:cut])
    try:
        decode_envelope(valid[:pos] + bytes([byte]) + valid[pos + 1 :])
    except SchemaError as exc:
        assert exc.reason in SCHEMA_ERROR_REASONS


@FAST
@given(
    code=st.sampled_from(list(StatusCode)),
    agency=agency_code,
    name=text.filter(lambda s: 0 < len(s) <= 200),
    description=st.one_of(st.none(), text),
    staff=st.one_of(st.none(), st.builds(Staff, name=text, department=st.one_of(st.none(), text))),
    at=instants,
)
def test_status_round_trip(
    code: StatusCode, agency: str, name: str, description: str | None, staff: Staff | None,
    at: datetime,
) -> None:  # fmt: skip
    notice = StatusNotice(
        "000.00.00.H26,2019/08/28,4612/QĐ-UBND", AgencyRef(agency, name), code, at,
        description, staff,
    )  # fmt: skip
    ptype, identity, payload = encode_payload(notice, validate=False)
    env = Envelope("m", ptype, identity, payload, notice.document_id, agency, (), at)
    assert decode_payload(decode_envelope(encode_envelope(env)), validate=False) == notice


@FAST
@given(
    values=st.lists(
        st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=4)),
        max_size=8,
    ),
    units=text,
    tz_hours=st.integers(-12, 14),
)
def test_report_round_trip(values: list[Decimal | None], units: str, tz_hours: int) -> None:
    _, rec = load_example("periodic_report/v1/labour-report-2019-q3.json")
    base = report_from_record(rec)
    indicators = tuple(Indicator(f"C{i}", f"Chỉ tiêu {i}", v, units) for i, v in enumerate(values))
    submitted = datetime(2019, 10, 10, 9, 0, 0, 123000, tzinfo=timezone(timedelta(hours=tz_hours)))
    report = dataclasses.replace(base, indicators=indicators, submitted_at=submitted)
    back = decode_payload(_envelope(*encode_payload(report)))
    assert back == report
    # Decimals keep their exact scale, trailing zeros included.
    for a, b in zip(back.indicators, report.indicators, strict=True):  # type: ignore[union-attr]
        if b.value is not None:
            assert a.value is not None and a.value.as_tuple() == b.value.as_tuple()


@FAST
@given(subject=text.filter(lambda s: 0 < len(s) <= 500), blob=st.binary(max_size=2000),
       keywords=st.lists(text, max_size=5))  # fmt: skip
def test_document_round_trip(subject: str, blob: bytes, keywords: list[str]) -> None:
    _, rec = load_example("official_document/v1/plan-190-kh-ubnd.json")
    doc = dataclasses.replace(
        document_from_record(rec),
        subject=subject,
        keywords=tuple(keywords),
        attachments=(Attachment.inline("tệp đính kèm.pdf", "application/pdf", blob),),
    )
    back = decode_payload(_envelope(*encode_payload(doc)))
    assert isinstance(back, OfficialDocument) and back == doc
    assert back.subject.encode("utf-8") == subject.encode("utf-8")


def _envelope(ptype: object, identity: str, payload: bytes) -> Envelope:
    return Envelope(
        "m", ptype, identity, payload, "d", "000.00.00.H26", (), datetime(2019, 1, 1, tzinfo=UTC)
    )  # type: ignore[arg-type]
