"""How long a record waited, from its Kafka timestamp (the producer's clock at send)."""

from __future__ import annotations

from datetime import datetime

# Seconds: routing is sub-second when healthy, archiving batches for up to a quarter second and
# checkpoints every minute; a backlog shows in the top buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 900.0, 3600.0)  # fmt: skip


def seconds_since(timestamp_ms: int | None, now: datetime) -> float | None:
    """Seconds from a record's timestamp to `now`; None without a timestamp. Never negative:
    the producer's clock may run ahead of ours, and a histogram cannot take a negative value."""
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    return max(0.0, now.timestamp() - timestamp_ms / 1000)
