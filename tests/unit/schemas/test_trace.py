"""W3C traceparent: what is accepted, what is refused (then a fresh trace), and the next hop."""

from __future__ import annotations

import pytest

from schemas.trace import (
    HEADER,
    TraceContext,
    continue_from,
    from_headers,
    parse_traceparent,
    replace_header,
)

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # the W3C text's example


def test_the_specification_example_parses() -> None:
    ctx = parse_traceparent(VALID)
    assert ctx == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)
    assert ctx.header_value() == VALID
    assert parse_traceparent(VALID.encode()) == ctx


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        VALID.upper(),  # hex must be lower case
        "ff" + VALID[2:],  # version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        VALID + "-extra",  # version 00 has exactly four fields
        VALID[:-1],  # truncated flags
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # 31-digit trace id
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    ],
)
def test_malformed_values_are_refused(value: str) -> None:
    assert parse_traceparent(value) is None


def test_bytes_that_are_not_ascii_are_refused() -> None:
    assert parse_traceparent(b"\xff" + VALID.encode()[1:]) is None


def test_a_later_version_may_append_fields() -> None:
    ctx = parse_traceparent("01" + VALID[2:] + "-whatever")
    assert ctx is not None and ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_flags_other_than_sampled_are_dropped() -> None:
    ctx = parse_traceparent(VALID[:-2] + "ff")
    assert ctx is not None and ctx.flags == 1
    unsampled = parse_traceparent(VALID[:-2] + "00")
    assert unsampled is not None and not unsampled.sampled


def test_two_traceparent_headers_are_invalid() -> None:
    other = TraceContext.start().header()
    assert from_headers([(HEADER, VALID.encode()), other]) is None
    assert from_headers([("lt-sender", b"x"), (HEADER, VALID.encode())]) is not None
    assert from_headers(None) is None


def test_the_next_hop_keeps_the_trace_and_takes_a_new_span() -> None:
    parent = parse_traceparent(VALID)
    assert parent is not None
    child = continue_from([(HEADER, VALID.encode())])
    assert child.trace_id == parent.trace_id
    assert child.span_id != parent.span_id and len(child.span_id) == 16
    assert child.flags == parent.flags


def test_a_record_without_a_valid_context_starts_a_new_trace() -> None:
    fresh = continue_from([(HEADER, b"00-forged")])
    again = continue_from([])
    assert parse_traceparent(fresh.header_value()) == fresh
    assert fresh.trace_id != again.trace_id
    assert fresh.trace_id.strip("0") and fresh.span_id.strip("0")


def test_replace_header_leaves_exactly_one() -> None:
    ctx = TraceContext.start()
    headers = replace_header([(HEADER, VALID.encode()), ("a", b"1"), (HEADER, b"x")], ctx)
    assert headers == [("a", b"1"), ctx.header()]
