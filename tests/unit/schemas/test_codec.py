"""The single-object codec: known answers, every SchemaError reason, envelopes and payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.codec import (
    HEADER_SIZE,
    MAGIC,
    decode,
    decode_envelope,
    decode_payload,
    encode,
    encode_envelope,
    encode_payload,
    schema_identity,
)
from schemas.common import AgencyRef
from schemas.envelope import Envelope, PayloadType, Signature, SignerRole, TraceHop
from schemas.errors import SCHEMA_ERROR_REASONS, SchemaError
from schemas.registry import SchemaRegistry
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice, status_from_record

VN = timezone(timedelta(hours=7))
CRC64_EMPTY = 0xC15D213AA4D7A795


def crc64_avro(data: bytes) -> bytes:
    """CRC-64-AVRO straight from the Avro specification, independent of fastavro."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    fp = CRC64_EMPTY
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp.to_bytes(8, "little")


def zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def avro_str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return zigzag(len(raw)) + raw


def test_crc64_known_answer_from_the_spec() -> None:
    # The Avro spec's Java reference gives 0x7275d51a3f395c8f for "int".
    assert crc64_avro(b'"int"') == bytes.fromhex("8f5c393f1ad57572")


def test_every_registered_fingerprint_matches_the_spec_algorithm(registry: SchemaRegistry) -> None:
    for sv in registry:
        assert sv.fingerprint == crc64_avro(sv.canonical.encode("utf-8")), sv.identity


def test_status_notice_known_answer(registry: SchemaRegistry) -> None:
    record = {
        "document_id": "000.00.00.H26,2019/08/29,191/KH-UBND",
        "from_agency": {"code": "000.00.36.H26", "name": "Ủy ban nhân dân huyện Gia Lâm"},
        "code": "02",
        "description": "Gửi nhầm nơi nhận",
        "staff": None,
        "timestamp": datetime(2019, 8, 29, 8, 30, tzinfo=UTC),
    }
    data = encode("status_notice", record, version=1)
    fp = registry.get("status_notice", 1).fingerprint
    assert data[:2] == b"\xc3\x01"
    assert fp.hex() == "f5120b6533abb0e2"  # changes only if the v1 schema text changes
    assert schema_identity("StatusNotice", 1) == "vn.lienthong.v1.StatusNotice@f5120b6533abb0e2"
    # v2 (edXML contacts, ResponseFor, national origin) is the newest; its text is pinned too.
    assert schema_identity("StatusNotice") == "vn.lienthong.v1.StatusNotice@4eae8f3dc910a98b"
    assert encode(PayloadType.STATUS_NOTICE, record, version=1) == data
    millis = int(datetime(2019, 8, 29, 8, 30, tzinfo=UTC).timestamp() * 1000)
    body = (
        avro_str(record["document_id"])
        + avro_str("000.00.36.H26")
        + avro_str("Ủy ban nhân dân huyện Gia Lâm")
        + avro_str("02")
        + zigzag(1) + avro_str("Gửi nhầm nơi nhận")  # union branch 1 = string
        + zigzag(0)  # staff: null branch
        + zigzag(millis)
    )  # fmt: skip
    assert data == b"\xc3\x01" + fp + body
    decoded = decode(data)
    assert decoded.name == "StatusNotice"
    # Read with v2: what v1 wrote comes back unchanged, v2's fields arrive as their defaults.
    contact = dict.fromkeys(
        ("organization_in_charge", "address", "email", "telephone", "fax", "website")
    )
    assert decoded.record == {
        **record,
        "from_agency": {**record["from_agency"], **contact},
        "response_for": None,
        "national": None,
    }
    assert decoded.writer_fingerprint == fp


def test_vietnamese_text_round_trips_byte_exact() -> None:
    text = "Trích yếu: Kế hoạch ứng dụng CNTT — Hỏa tốc; Tuyệt mật? Không. Nơi nhận: Lưu VT, TTĐT"
    nfd = "Quyết định".encode().decode("utf-8")
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "Quyết định")
    for s in (text, nfd, decomposed):
        rec = {"code": "000.00.00.H26", "name": s}
        notice = example_record("status_notice/v1/arrived-01.json") | {"from_agency": rec}
        data = encode("status_notice", notice)
        assert s.encode("utf-8") in data  # UTF-8 as typed: never re-normalised
        assert decode(data).record["from_agency"]["name"] == s


def test_envelope_round_trip_and_nesting() -> None:
    notice = status_from_record(example_record("status_notice/v1/rejected-02.json"))
    ptype, identity, payload = encode_payload(notice)
    assert ptype is PayloadType.STATUS_NOTICE
    assert identity == schema_identity("status_notice")
    env = Envelope(
        message_id="6f1c2a7e-1b0d-4f7e-9a51-2c3d4e5f6a7b",
        payload_type=ptype,
        payload_schema=identity,
        payload=payload,
        document_id=notice.document_id,
        sender=notice.from_agency.code,
        recipients=("000.00.00.H26",),
        created_at=datetime(2019, 8, 29, 15, 30, 5, 123000, tzinfo=VN),
        trace=(TraceHop("000.00.36.H26", datetime(2019, 8, 29, 8, 30, tzinfo=UTC), "gateway"),),
        signatures=(
            Signature(SignerRole.PERSON, "ed25519", (b"0",), "2019-08-29T15:30:05+07:00", b"sig"),
        ),
    )
    data = encode_envelope(env)
    assert data[:2] == MAGIC and data[2:HEADER_SIZE].hex() == schema_identity("envelope")[-16:]
    back = decode_envelope(data)
    assert back == env  # aware datetimes compare by instant
    assert back.payload == payload  # the inner single-object bytes are untouched
    assert decode_payload(back) == notice


def test_envelope_requires_aware_time() -> None:
    env = Envelope("m", PayloadType.STATUS_NOTICE, "x", b"", "d", "s", (), datetime(2019, 1, 1))
    with pytest.raises(SchemaError) as e:
        encode_envelope(env)
    assert e.value.reason == "invalid_record"


def _status_bytes() -> bytes:
    return encode("status_notice", example_record("status_notice/v1/rejected-02.json"))


def _reason(data: object, expected: str | None = None) -> str:
    with pytest.raises(SchemaError) as e:
        decode(data, expected_name=expected)  # type: ignore[arg-type]
    return e.value.reason


def test_truncated() -> None:
    data = _status_bytes()
    assert _reason(data[:1]) == "truncated"
    assert _reason(data[:7]) == "truncated"
    assert _reason(b"") == "truncated"
    for cut in range(HEADER_SIZE, len(data)):
        assert _reason(data[:cut]) == "truncated", cut


def test_bad_magic() -> None:
    data = _status_bytes()
    assert _reason(b"\x00" + data[1:]) == "bad_magic"
    assert _reason(b"\xc3\x02" + data[2:]) == "bad_magic"
    assert _reason(b"{}") == "bad_magic"


def test_unknown_schema() -> None:
    data = bytearray(_status_bytes())
    data[5] ^= 0xFF
    assert _reason(bytes(data)) == "unknown_schema"
    with pytest.raises(SchemaError) as e:
        encode("NoSuchRecord", {})
    assert e.value.reason == "unknown_schema"


def test_invalid_record() -> None:
    rec = example_record("status_notice/v1/rejected-02.json")
    broken_records = [
        {**rec, "code": 2},
        {k: v for k, v in rec.items() if k != "document_id"},
        {**rec, "timestamp": "yesterday"},
        {**rec, "staff": {"name": None}},
    ]
    for broken in broken_records:
        with pytest.raises(SchemaError) as e:
            encode("status_notice", broken)
        assert e.value.reason == "invalid_record"


def test_an_invalid_record_is_refused_with_the_field_and_value_named() -> None:
    # The boolean validation pass finds the fault; the detailed pass words it.
    rec = example_record("status_notice/v1/rejected-02.json")
    with pytest.raises(SchemaError) as e:
        encode("status_notice", {**rec, "code": 2})
    assert "StatusNotice.code is <2>" in e.value.message


def test_malformed() -> None:
    data = _status_bytes()
    assert _reason(data + b"\x00") == "malformed"  # trailing bytes
    # Union index 7 where the schema has two branches.
    bad_union = encode("status_notice", example_record("status_notice/v1/arrived-01.json"))
    header = bad_union[:HEADER_SIZE]
    body = avro_str("x") + avro_str("y") + avro_str("z") + avro_str("01") + zigzag(7)
    assert _reason(header + body) == "malformed"
    bad_utf8 = avro_str("x")[:1] + b"\xff"
    assert _reason(header + bad_utf8) == "malformed"
    assert _reason(header + zigzag(-3)) == "malformed"  # negative length


def test_wrong_type() -> None:
    assert _reason("not bytes") == "wrong_type"
    assert _reason(_status_bytes(), "envelope") == "wrong_type"
    with pytest.raises(SchemaError) as e:
        decode_envelope(_status_bytes())
    assert e.value.reason == "wrong_type"
    with pytest.raises(SchemaError) as e:
        encode_payload(AgencyRef("000.00.00.H26", "x"))  # type: ignore[arg-type]
    assert e.value.reason == "wrong_type"


def test_every_reason_is_reachable_and_stable() -> None:
    assert SCHEMA_ERROR_REASONS == {
        "truncated", "bad_magic", "unknown_schema", "invalid_record", "malformed", "wrong_type",
        "non_canonical",
    }  # fmt: skip


def test_decode_payload_checks_envelope_and_domain_rules() -> None:
    notice = status_from_record(example_record("status_notice/v1/rejected-02.json"))
    _, identity, payload = encode_payload(notice)
    env = Envelope("m", PayloadType.PERIODIC_REPORT, identity, payload, "d", "s", (),
                   datetime(2019, 1, 1, tzinfo=UTC))  # fmt: skip
    with pytest.raises(SchemaError) as e:
        decode_payload(env)
    assert e.value.reason == "wrong_type"
    env = Envelope("m", PayloadType.STATUS_NOTICE, "vn.lienthong.v1.StatusNotice@0000000000000000",
                   payload, "d", "s", (), datetime(2019, 1, 1, tzinfo=UTC))  # fmt: skip
    with pytest.raises(SchemaError) as e:
        decode_payload(env)
    assert e.value.reason == "wrong_type"
    # A 02 without its reason is well-formed Avro but breaks a domain rule.
    bad = encode(
        "status_notice", example_record("status_notice/v1/rejected-02.json") | {"description": None}
    )
    env = Envelope("m", PayloadType.STATUS_NOTICE, identity, bad, "d", "s", (),
                   datetime(2019, 1, 1, tzinfo=UTC))  # fmt: skip
    with pytest.raises(SchemaError) as e:
        decode_payload(env)
    assert (e.value.reason, e.value.detail) == ("invalid_record", "missing_reason")
    legacy = decode_payload(env, validate=False)
    assert isinstance(legacy, StatusNotice) and legacy.code is StatusCode.REJECTED
    with pytest.raises(SchemaError) as e:
        encode_payload(legacy)
    assert e.value.detail == "missing_reason"


def _overlong(data: bytes, at: int) -> bytes:
    """The one-byte varint at `at` written again in two bytes (0x80|b, 0x00): the same value."""
    assert data[at] < 0x80
    return data[:at] + bytes([data[at] | 0x80, 0x00]) + data[at + 1 :]


def test_a_non_canonical_enum_index_is_refused() -> None:
    env = Envelope("m-1", PayloadType.STATUS_NOTICE, "x@0", b"p", "d", "s", (),
                   datetime(2019, 1, 1, tzinfo=UTC))  # fmt: skip
    data = encode_envelope(env)
    enum_at = 10 + 1 + len("m-1")  # header, length of message_id, its bytes
    assert data[enum_at] == 2  # STATUS_NOTICE: index 1, zig-zag encoded
    twin = _overlong(data, enum_at)
    # fastavro alone reads both as the same envelope: that is what must not be accepted.
    import io

    import fastavro

    from schemas.codec import read_header

    writer = read_header(twin)
    assert fastavro.schemaless_reader(io.BytesIO(twin[10:]), writer.parsed)["payload_type"] == (
        "STATUS_NOTICE"
    )
    assert _reason(twin) == "non_canonical"
    with pytest.raises(SchemaError) as e:
        decode_envelope(twin)
    assert e.value.reason == "non_canonical" and "byte 14" in str(e.value)
    assert decode_envelope(data) == env  # the canonical bytes still decode


def test_a_non_canonical_length_or_long_is_refused() -> None:
    data = _status_bytes()
    # The first field's string length (a one-byte varint right after the header).
    assert _reason(_overlong(data, 10)) == "non_canonical"
    assert decode(data).record  # untouched bytes are fine
