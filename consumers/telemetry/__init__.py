"""What every consuming service reports about itself, not a subsystem of its own: consumer lag
per partition, how late records are handled (from their timestamps), and the trace context
that rides in their headers.

Modules: lag (ConsumerLag, LAG_METRIC), latency (seconds_since, LATENCY_BUCKETS), tracing
(record_trace, trace_fields).

Public names: ConsumerLag, LAG_METRIC, LATENCY_BUCKETS, lag_gauge, record_trace, seconds_since,
trace_fields.
"""

from consumers.telemetry.lag import LAG_METRIC, ConsumerLag, lag_gauge
from consumers.telemetry.latency import LATENCY_BUCKETS, seconds_since
from consumers.telemetry.tracing import record_trace, trace_fields

__all__ = [
    "LAG_METRIC",
    "LATENCY_BUCKETS",
    "ConsumerLag",
    "lag_gauge",
    "record_trace",
    "seconds_since",
    "trace_fields",
]
