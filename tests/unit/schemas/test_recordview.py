"""`lienthong decode`'s pure half: topic kinds, short names, and every record shown as JSON,
garbage included, never raised."""

from __future__ import annotations

import base64
import json

import pytest

from schemas.codec import encode, encode_with
from schemas.recordview import (
    INBOX,
    RawRecord,
    envelope_view,
    qualify_topic,
    to_line,
    topic_kind,
    view_record,
)
from schemas.samples import example_record, load_example

BA_DINH = "000.00.31.H26"


def _envelope_bytes() -> bytes:
    sv, record = load_example("envelope/v1/status-02-envelope.json")
    return encode_with(sv, record)


def _record(topic: str, value: bytes | None, **kw: object) -> RawRecord:
    fields: dict[str, object] = {
        "topic": topic,
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1_567_067_405_000,  # 2019-08-29T08:30:05Z
        "key": b"000.00.00.H26,2019/08/29,191/KH-UBND",
        "value": value,
        "headers": (("lt-sender", b"000.00.36.H26"),),
    }
    fields.update(kw)
    return RawRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("topic", "kind", "agency"),
    [
        ("lienthong.submissions", "submissions", None),
        ("a1b2.submissions", "submissions", None),
        ("lienthong.inbox.000.00.31.H26", INBOX, BA_DINH),
        ("lienthong.deadletter", "deadletter", None),
        ("lienthong.checkpoints", "checkpoints", None),
        ("lienthong.router-state", "router-state", None),
        ("lienthong.inbox.31", None, None),  # not an agency code
        ("something.else", None, None),
        ("mysubmissions", None, None),
    ],
)
def test_topic_kinds_whatever_the_prefix(topic: str, kind: str | None, agency: str | None) -> None:
    found = topic_kind(topic)
    assert (found.kind, found.agency) == (kind, agency)


def test_short_names_get_the_prefix_and_others_stay() -> None:
    assert qualify_topic("deadletter", "lienthong.") == "lienthong.deadletter"
    assert qualify_topic(f"inbox.{BA_DINH}", "x.") == f"x.inbox.{BA_DINH}"
    assert qualify_topic("lienthong.submissions", "lienthong.") == "lienthong.submissions"
    assert qualify_topic("other.topic", "lienthong.") == "other.topic"


def test_an_inbox_record_shows_the_envelope_with_its_payload_decoded() -> None:
    raw = _envelope_bytes()
    view = view_record(_record(f"lienthong.inbox.{BA_DINH}", raw))
    assert "error" not in view
    assert view["topic"] == f"lienthong.inbox.{BA_DINH}"
    assert (view["partition"], view["offset"]) == (2, 41)
    assert view["timestamp"] == "2019-08-29T08:30:05.000+00:00"
    assert view["key"] == "000.00.00.H26,2019/08/29,191/KH-UBND"
    assert view["headers"] == {"lt-sender": "000.00.36.H26"}
    env = view["value"]["envelope"]
    assert env["schema"] == "vn.lienthong.v1.Envelope@" + raw[2:10].hex()
    assert env["payload_type"] == "STATUS_NOTICE"
    # The payload, itself Avro, is JSON here: the readable form of the example file.
    expected = example_record("status_notice/v1/rejected-02.json")
    assert env["payload"]["code"] == "02" == expected["code"]
    assert env["payload"]["from_agency"]["name"] == "Ủy ban nhân dân huyện Gia Lâm"
    line = to_line(view)
    assert "Gia Lâm" in line and json.loads(line) == view  # UTF-8 as is, one JSON line


def test_a_submission_that_is_not_an_envelope_prints_as_base64_with_an_error() -> None:
    status = encode("status_notice", example_record("status_notice/v1/rejected-02.json"))
    for value, reason in [
        (b"\x00garbage", "bad_magic"),
        (_envelope_bytes()[:30], "truncated"),
        (b"\xc3\x01" + b"\xff" * 8 + b"x", "unknown_schema"),
        (status, "wrong_type"),  # a payload sent bare
    ]:
        view = view_record(_record("lienthong.submissions", value))
        assert view["value"] == {"base64": base64.b64encode(value).decode()}
        assert view["error"].startswith(reason), view["error"]
        json.loads(to_line(view))


def test_an_envelope_whose_payload_does_not_decode_keeps_it_in_base64() -> None:
    sv, record = load_example("envelope/v1/status-02-envelope.json")
    record = {**record, "payload": b"\xc3\x01not a payload"}
    view = envelope_view(encode_with(sv, record))
    assert view["payload"] == base64.b64encode(b"\xc3\x01not a payload").decode()
    assert view["payload_error"].startswith("truncated") or view["payload_error"].startswith(
        "unknown_schema"
    )


def test_dead_letters_show_an_envelope_garbage_or_nothing_with_their_headers() -> None:
    headers = (("lt-reason", b"bad_signature"), ("lt-detail", "chữ ký sai".encode()))
    enveloped = view_record(_record("lienthong.deadletter", _envelope_bytes(), headers=headers))
    assert "envelope" in enveloped["value"] and "error" not in enveloped
    assert enveloped["headers"] == {"lt-reason": "bad_signature", "lt-detail": "chữ ký sai"}
    garbage = view_record(_record("lienthong.deadletter", b"\x01\x02", headers=headers))
    assert garbage["value"] == {"base64": "AQI="}
    assert garbage["error"].startswith("not an envelope: bad_magic")
    secret = view_record(_record("lienthong.deadletter", b"", key=None))
    assert secret["value"] == {"empty": True} and secret["key"] is None


def test_checkpoints_and_router_state_are_json_and_tombstones_null() -> None:
    head = {"size": 3, "root": "ab" * 32}
    view = view_record(_record("lienthong.checkpoints", json.dumps(head).encode()))
    assert view["value"] == {"json": head}
    state = view_record(_record("lienthong.router-state", b'{"sender":"000.00.00.H26"}'))
    assert state["value"] == {"json": {"sender": "000.00.00.H26"}}
    tombstone = view_record(_record("lienthong.router-state", None, key=b"msg:1"))
    assert tombstone["value"] is None and "error" not in tombstone
    bad = view_record(_record("lienthong.router-state", b"\xff{"))
    assert bad["value"] == {"base64": "/3s="} and bad["error"].startswith("not UTF-8 JSON")


def test_keys_and_headers_that_are_not_utf8_still_print() -> None:
    view = view_record(
        _record(
            "lienthong.submissions",
            None,
            key=b"\xff\xfe",
            headers=(("h", b"\xff"), ("h", b"b")),
            timestamp_ms=None,
        )
    )
    assert view["key"] == {"base64": "//4="}
    assert view["headers"] == {"h": ["\\xff", "b"]}
    assert view["timestamp"] is None
    assert view["value"] is None and view["error"].startswith("no value")


def test_a_topic_of_unknown_kind_is_shown_as_best_it_can() -> None:
    assert "envelope" in view_record(_record("x", _envelope_bytes()))["value"]
    assert view_record(_record("x", b'{"a": 1}'))["value"] == {"json": {"a": 1}}
    assert view_record(_record("x", "văn bản".encode()))["value"] == {"text": "văn bản"}
    assert view_record(_record("x", b"\xff"))["value"] == {"base64": "/w=="}
