"""The span sink over OpenTelemetry's SDK: each schemas.trace.Span becomes an OTel span with the
very ids that travel in the records' traceparent headers, exported over OTLP.

Imported only by infra.observe.tracing, and only when tracing is wanted: the `opentelemetry`
packages are an optional extra (`pip install 'lienthong[otel]'`), never a requirement.
"""

from __future__ import annotations

import threading

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator

from schemas import trace

KINDS = {trace.PRODUCER: otel_trace.SpanKind.PRODUCER, trace.CONSUMER: otel_trace.SpanKind.CONSUMER}
SCOPE = "lienthong"


class _GivenIds(IdGenerator):
    """The SDK draws a new span's ids from its IdGenerator; ours hands it the ids that are already
    in the headers, set just before each span starts (under OtelSpans' lock)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:  # asked only for a trace's root
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id

    def is_trace_id_random(self) -> bool:
        return True  # schemas.trace draws them from `secrets`


class OtelSpans:
    """A span sink (schemas.trace.SpanSink) that records each span through its own
    TracerProvider: the process's global provider, if the application has one, is left alone.

    `batch`: export from a background thread in batches (the OTel default); False exports each
    span as it ends, for tests with an in-memory exporter. Sampling follows the W3C flags
    (ParentBased by default; OTEL_TRACES_SAMPLER changes it, as for any OTel SDK).
    """

    def __init__(self, service: str, exporter: SpanExporter, *, batch: bool = True) -> None:
        self._ids = _GivenIds()
        self._lock = threading.Lock()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service}), id_generator=self._ids
        )
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer(SCOPE)

    def __call__(self, span: trace.Span) -> None:
        ids = span.context
        trace_id = int(ids.trace_id, 16)
        flags = otel_trace.TraceFlags(ids.flags)
        if span.parent_id is None:
            # An empty context, not the current one: the root of our trace, whatever span the
            # embedding application may have open.
            parent = otel_context.Context()
        else:
            parent = otel_trace.set_span_in_context(
                otel_trace.NonRecordingSpan(
                    otel_trace.SpanContext(
                        trace_id, int(span.parent_id, 16), is_remote=True, trace_flags=flags
                    )
                ),
                otel_context.Context(),
            )
        with self._lock:
            self._ids.trace_id = trace_id
            self._ids.span_id = int(ids.span_id, 16)
            started = self._tracer.start_span(
                span.name,
                context=parent,
                kind=KINDS.get(span.kind, otel_trace.SpanKind.INTERNAL),
                attributes=dict(span.attributes),
                start_time=span.start_ns,
            )
        if span.error is not None:
            started.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, span.error))
        started.end(end_time=max(span.end_ns, span.start_ns))

    def close(self) -> None:
        """Export what is still queued (bounded by the exporter's timeout), then stop."""
        self.provider.shutdown()


def otlp_exporter(url: str) -> SpanExporter:
    """OTLP over HTTP (protobuf) to `url` (…/v1/traces): what Jaeger, Tempo and the OTel
    Collector accept on port 4318. Headers, TLS files and timeout come from the standard
    OTEL_EXPORTER_OTLP_* variables, which the exporter reads itself."""
    return OTLPSpanExporter(endpoint=url)
