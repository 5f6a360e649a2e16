"""W3C trace context (https://www.w3.org/TR/trace-context/) in a Kafka header: `traceparent`.

The SDK starts a trace per send; each hop that writes a record from another (the router's
delivery and dead letter) keeps the trace id and takes a new span id, so one document can be
followed from its sender to every inbox and the archive. The header is a tool, never trusted:
it is not signed, and a malformed one is replaced by a fresh trace, as the W3C text says.

Spans: each service can report what it did with a record as a `Span` (send, route, deliver,
archive) carrying the ids that travel in the headers, to the process's span sink. There is no
sink unless one is installed (infra.observe.start_tracing, when OpenTelemetry is installed and
configured); without one, the services only test `span_sink() is None` and carry on.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

HEADER = "traceparent"
_VERSION = "00"
# version-traceid-parentid-flags, lower-case hex; version ff is invalid. A future version may
# append fields after the flags ("-..."), which a version-00 parser must accept and ignore.
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
SAMPLED = 0x01

# The trace a piece of work belongs to while it runs (a subscriber handling a delivery): a
# record sent meanwhile (the 01 answer) continues it instead of starting a new one.
current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "lienthong_trace", default=None
)


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits, not all zero
    span_id: str  # 16 lower-case hex digits, not all zero: the span that wrote the record
    flags: int = SAMPLED

    @classmethod
    def start(cls) -> TraceContext:
        """A new trace, sampled (the exporter, when there is one, decides what to keep)."""
        return cls(_nonzero_hex(16), _nonzero_hex(8), SAMPLED)

    def child(self) -> TraceContext:
        """The next hop: the same trace, a new span, the same flags."""
        return TraceContext(self.trace_id, _nonzero_hex(8), self.flags)

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    def header_value(self) -> str:
        return f"{_VERSION}-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def header(self) -> tuple[str, bytes]:
        return (HEADER, self.header_value().encode("ascii"))


def parse_traceparent(value: bytes | str | None) -> TraceContext | None:
    """The context a header value carries, or None when it is absent or invalid."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _PATTERN.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == _VERSION and rest is not None):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, int(flags, 16) & SAMPLED)


def from_headers(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext | None:
    """The record's trace context; None with no header, a malformed one, or several (the W3C
    text: more than one traceparent is invalid)."""
    found = [v for k, v in headers or () if k == HEADER]
    return parse_traceparent(found[0]) if len(found) == 1 else None


def continue_from(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext:
    """The context for a record written because of this one: a child of its trace, or a new
    trace when it carried none (or a broken one)."""
    parent = from_headers(headers)
    return parent.child() if parent is not None else TraceContext.start()


def replace_header(
    headers: Iterable[tuple[str, bytes]], context: TraceContext
) -> list[tuple[str, bytes]]:
    """`headers` with every traceparent replaced by `context`'s."""
    return [*((k, v) for k, v in headers if k != HEADER), context.header()]


def _nonzero_hex(nbytes: int) -> str:
    while True:
        value = secrets.token_hex(nbytes)
        if value.strip("0"):
            return value


# --- spans -------------------------------------------------------------------------------

# Span kinds, as OpenTelemetry names them: a send writes a record (producer), the router, a
# subscriber and the archiver each handle one (consumer).
PRODUCER = "producer"
CONSUMER = "consumer"

AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Span:
    """One service's work on one record, done: what a span sink receives.

    `context` is the span's own trace id and span id (for a send, exactly those its record's
    traceparent carries); `parent_id` the span it continues (the traceparent of the record
    handled), None for the root of a trace. Times are Unix nanoseconds. `error` set: the work
    failed or the record was refused, and why (a reason code, never a document's content).
    """

    name: str
    kind: str
    context: TraceContext
    parent_id: str | None
    start_ns: int
    end_ns: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None


SpanSink = Callable[[Span], None]

_sink: SpanSink | None = None


def span_sink() -> SpanSink | None:
    """The process's span sink, or None (the default): then no span is even built."""
    return _sink


def set_span_sink(sink: SpanSink | None) -> SpanSink | None:
    """Install `sink` for the whole process (None: none); returns the one it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous
