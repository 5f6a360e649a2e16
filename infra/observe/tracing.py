"""The optional OpenTelemetry exporter, switched on per process: with LIENTHONG_OTEL_ENDPOINT set
and the `otel` extra installed, the spans the services report (schemas.trace.Span) go to that
collector; otherwise nothing is imported and nothing changes (docs/observability.md, Traces).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import structlog

from schemas import trace

log = structlog.get_logger()

ENDPOINT_SETTING = "LIENTHONG_OTEL_ENDPOINT"
TRACES_PATH = "/v1/traces"  # OTLP/HTTP's path for spans


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP URL for spans: a collector's base address gets /v1/traces, a URL with a
    path is taken as it is. ValueError, naming the setting, for anything but http(s)."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{ENDPOINT_SETTING}={endpoint!r} is not an http(s) URL "
            "(an OTLP/HTTP collector, e.g. http://otel-collector:4318)"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path=TRACES_PATH)
    return urlunsplit(parts)


def start_tracing(endpoint: str | None, service: str) -> Callable[[], None] | None:
    """Install an OTLP span sink for this process when `endpoint` is set and OpenTelemetry's
    SDK is installed; returns what flushes and stops it (call it at exit), or None when
    nothing was started. Without the packages, a warning says how to get them: the service
    runs as it would without the setting."""
    if not endpoint:
        return None
    url = traces_url(endpoint)
    try:
        from infra.observe import otel
    except ImportError as exc:
        log.warning(
            "otel.unavailable",
            detail=f"{ENDPOINT_SETTING} is set but OpenTelemetry is not installed ({exc})",
            hint="pip install 'lienthong[otel]'",
        )
        return None
    spans = otel.OtelSpans(service, otel.otlp_exporter(url))
    # The host only: a URL may carry credentials.
    log.info("otel.started", collector=urlsplit(url).hostname, service=service)
    return install(spans, spans.close)


def install(sink: trace.SpanSink, close: Callable[[], None]) -> Callable[[], None]:
    """Make `sink` the process's span sink; returns what removes it again and then calls
    `close` (which exports what is queued)."""
    trace.set_span_sink(sink)

    def stop() -> None:
        if trace.span_sink() is sink:
            trace.set_span_sink(None)
        close()

    return stop
