"""The trace context of a record read: for its log line and its histogram exemplar."""

from __future__ import annotations

from collections.abc import Iterable

from schemas import trace


def record_trace(headers: Iterable[tuple[str, bytes]] | None) -> trace.TraceContext | None:
    """The record's `traceparent`, or None (absent, malformed, repeated)."""
    return trace.from_headers(headers)


def trace_fields(context: trace.TraceContext | None) -> dict[str, str]:
    """Log fields: the trace id and the span that wrote the record; none without a context."""
    if context is None:
        return {}
    return {"trace_id": context.trace_id, "span_id": context.span_id}
