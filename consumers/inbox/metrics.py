"""The subscriber's account of what it did: records handled, how long after routing, its lag."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from consumers.telemetry import LATENCY_BUCKETS, lag_gauge


class InboxMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.handled = Counter(
            "lienthong_inbox_handled",
            "Inbox records handled: delivered, or refused with a reason code",
            ["outcome", "reason"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "lienthong_inbox_delivery_seconds",
            "From an inbox record's Kafka timestamp (the router's write) to its handling "
            "(files written, 01 answered)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = lag_gauge(r)
