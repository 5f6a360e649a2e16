"""The archiver's settings, metrics and errors: what its command line and its tests see of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumers.archive.rows import ArchiveTopics
from consumers.telemetry import LATENCY_BUCKETS, lag_gauge

# Errors after which reconnecting can help; anything else (a constraint, a bad value) cannot,
# and must stop the archiver loudly rather than loop on it.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    # A connection left mid-operation when the server went away: drop it and reconnect; the
    # batch's transaction never committed, and the stored offsets say where to resume.
    asyncpg.exceptions.InternalClientError,
)


class ArchiveLockedError(Exception):
    """Another archiver holds the writer lock."""


@dataclass(frozen=True, slots=True)
class ArchiverConfig:
    topics: ArchiveTopics
    database_url: str
    checkpoints_topic: str
    max_batch: int = 500
    checkpoint_seconds: float = 60.0
    refresh_seconds: float = 5.0  # how often new inbox topics are looked for
    wait_for_lock: bool = False
    parse_workers: int = 0  # processes that parse records; 0: in the archiver's own process
    lag_group: str = "archiver"  # the `group` label of its lag (offsets live in the database)


class ArchiverMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "lienthong_archive_records", "Records archived", ["kind"], registry=r
        )
        self.parse_errors = Counter(
            "lienthong_archive_parse_errors", "Records archived raw only", registry=r
        )
        self.batches = Counter("lienthong_archive_batches", "Batches committed", registry=r)
        self.retries = Counter(
            "lienthong_archive_retries", "Batches retried after database errors", registry=r
        )
        self.lag = Gauge(
            "lienthong_archive_lag",
            "Committed records not yet archived, all partitions (0 when caught up)",
            registry=r,
        )
        self.consumer_lag = lag_gauge(r)
        self.delay = Histogram(
            "lienthong_archive_delay_seconds",
            "From a record's Kafka timestamp to its archiving transaction's commit",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tree_size = Gauge("lienthong_archive_tree_size", "Leaves in the tree", registry=r)
        self.head_age = Gauge(
            "lienthong_archive_tree_head_age_seconds",
            "Seconds since the last signed tree head",
            registry=r,
        )
        self.kpi_stale = Gauge(
            "lienthong_archive_kpi_stale_months",
            "Months of the KPI's figures (kpi_month) still stale after the last refresh",
            registry=r,
        )
