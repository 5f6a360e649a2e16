"""Any record of a lienthong topic as one JSON-ready dict, for operators and outside tools.

Kafka UI tools cannot read an Avro record nested in another (the payload inside the Envelope),
so `lienthong decode` prints this view. Pure: bytes in, dict out; bytes that do not decode are
shown as base64 with an `error`, never raised.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.codec import decode
from schemas.envelope import ENVELOPE_SCHEMA
from schemas.errors import SchemaError
from schemas.jsonform import to_json
from schemas.registry import default_registry
from schemas.topics import DEFAULT_PREFIX

# The topic kinds, named as in schemas/topics/*.yaml (an inbox by its template).
SUBMISSIONS = "submissions"
INBOX = "inbox.{agency}"
DEADLETTER = "deadletter"
CHECKPOINTS = "checkpoints"
ROUTER_STATE = "router-state"
STATIC_KINDS = (SUBMISSIONS, DEADLETTER, CHECKPOINTS, ROUTER_STATE)
_INBOX = re.compile(r"(?:^|\.)inbox\.(\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})$")


@dataclass(frozen=True, slots=True)
class TopicKind:
    kind: str | None  # one of the kinds above; None for a topic that is not lienthong's
    agency: str | None = None  # an inbox's agency code


def topic_kind(topic: str) -> TopicKind:
    """The kind of a topic, whatever its prefix: `<prefix>submissions`, `<prefix>inbox.<code>`."""
    match = _INBOX.search(topic)
    if match:
        return TopicKind(INBOX, match.group(1))
    for kind in STATIC_KINDS:
        if topic == kind or topic.endswith("." + kind):
            return TopicKind(kind)
    return TopicKind(None)


def qualify_topic(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """A short name (`deadletter`, `inbox.000.00.31.H26`) with the prefix; any other name as is."""
    if name.startswith(prefix):
        return name
    if name in STATIC_KINDS or _INBOX.fullmatch(name):
        return prefix + name
    return name


@dataclass(frozen=True, slots=True)
class RawRecord:
    """What a Kafka consumer hands over, without the client's types."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def view_record(record: RawRecord) -> dict[str, Any]:
    """topic, partition, offset, timestamp, key, headers (text) and the value decoded by the
    topic's kind; `error` (with the value in base64) when the value does not decode."""
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _timestamp(record.timestamp_ms),
        "key": _text_or_b64(record.key),
        "headers": _headers(record.headers),
    }
    kind = topic_kind(record.topic).kind
    view = _VALUE_VIEWS.get(kind, _any_value)
    value, error = view(record.value)
    out["value"] = value
    if error is not None:
        out["error"] = error
    return out


def to_line(view: dict[str, Any]) -> str:
    """One JSON line; UTF-8 text stays readable (no \\u escapes)."""
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"), default=str)


# --- values -----------------------------------------------------------------------------------

Viewed = tuple[Any, str | None]  # (JSON-ready value, error or None)


def envelope_view(raw: bytes) -> dict[str, Any]:
    """An Envelope in the readable JSON form (schemas.jsonform), its payload decoded in place.
    Raises SchemaError when the bytes are not an Envelope; a payload that does not decode stays
    base64 with `payload_error`."""
    decoded = decode(raw, expected_name=ENVELOPE_SCHEMA)
    reader = default_registry().latest(decoded.writer.fullname)
    view: dict[str, Any] = to_json(reader.raw, decoded.record)
    view["schema"] = decoded.writer.identity
    try:
        payload = decode(decoded.record["payload"])
    except SchemaError as exc:
        view["payload_error"] = f"{exc.reason}: {exc.message}"
        return view
    payload_reader = default_registry().latest(payload.writer.fullname)
    view["payload"] = to_json(payload_reader.raw, payload.record)
    return view


def _envelope_value(value: bytes | None) -> Viewed:
    if value is None:
        return None, "no value (tombstone)"
    try:
        return {"envelope": envelope_view(value)}, None
    except SchemaError as exc:
        return {"base64": _b64(value)}, f"{exc.reason}: {exc.message}"


def _dead_letter_value(value: bytes | None) -> Viewed:
    # The original bytes: an envelope when the sender's was well formed, anything otherwise, and
    # nothing at all for a secret document (its headers say why).
    if not value:
        return {"empty": True}, None
    try:
        return {"envelope": envelope_view(value)}, None
    except SchemaError as exc:
        return {"base64": _b64(value)}, f"not an envelope: {exc.reason}: {exc.message}"


def _json_value(value: bytes | None) -> Viewed:
    if value is None:
        return None, None  # a tombstone on a compacted topic: the key was deleted
    try:
        return {"json": json.loads(value.decode("utf-8"))}, None
    except (UnicodeDecodeError, ValueError) as exc:
        return {"base64": _b64(value)}, f"not UTF-8 JSON: {exc}"


def _any_value(value: bytes | None) -> Viewed:
    """A topic of unknown kind: an envelope, else JSON, else text, else base64."""
    if value is None:
        return None, None
    try:
        return {"envelope": envelope_view(value)}, None
    except SchemaError:
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": _b64(value)}, None
    try:
        return {"json": json.loads(text)}, None
    except ValueError:
        return {"text": text}, None


_VALUE_VIEWS: dict[str | None, Callable[[bytes | None], Viewed]] = {
    SUBMISSIONS: _envelope_value,
    INBOX: _envelope_value,
    DEADLETTER: _dead_letter_value,
    CHECKPOINTS: _json_value,  # a signed tree head (docs/evidence.md), JSON text
    ROUTER_STATE: _json_value,  # the router's changelog (docs/exchange.md), JSON text
}


# --- the rest ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text_or_b64(data: bytes | None) -> str | dict[str, str] | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": _b64(data)}


def _headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in headers:
        text = bytes(raw).decode("utf-8", errors="backslashreplace")
        if name in out:  # a repeated header: all its values, in order
            previous = out[name]
            out[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            out[name] = text
    return out


def _timestamp(ms: int | None) -> str | None:
    if ms is None or ms < 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
