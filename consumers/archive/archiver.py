"""The archiver: every record of submissions, inboxes and dead letters into PostgreSQL, once.

Offsets live in the database (archive_offset), written in the same transaction as the rows and
the Merkle nodes they produce, so a crash anywhere leaves each record archived exactly once:
on start, each partition is read again from the offset the database holds. One writer at a
time (an advisory lock), so seq stays gapless and equal to the leaf index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumers.archive import store
from consumers.archive.config import (
    TRANSIENT_DB_ERRORS,
    ArchiveLockedError,
    ArchiverConfig,
    ArchiverMetrics,
)
from consumers.archive.leaf import archive_time
from consumers.archive.parse import ParseContext, Parsed, SourceRecord
from consumers.archive.pool import ParsePool, ParseSource
from consumers.archive.tree import HeadSigner, load_right_edge
from consumers.lifecycle import Backoff, Stopped, close_all, keep_starting, pause, unless_stopped
from consumers.telemetry import ConsumerLag, record_trace, seconds_since, trace_fields
from schemas.trace import CONSUMER, AttributeValue, Span, SpanSink, TraceContext, span_sink
from signing.merkle import RightEdge, append_leaves
from signing.trust import TrustStore

log = structlog.get_logger()
_stdlib_log = logging.getLogger(__name__)  # the logger structlog's stdlib factory uses

FETCH_BYTES = 40 * 1024 * 1024  # above the largest message a topic accepts (32 MiB)
# Archiving is not on the delivery path: let the broker gather up to this much (or wait at most
# this long) per fetch, so that a trickle of documents is archived in batches of dozens rather
# than one small transaction each, which left less CPU for routing and delivery (measured at
# a steady 200 documents/s, docs/benchmarks.md). Catching up, fetches are full at once.
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 250
KAFKA_CALL_TIMEOUT_S = 10.0  # a metadata request or a tree-head publication, at most
# Stale KPI months refreshed with each checkpoint: ~0.1 s each at a city's million documents.
# An exchange changes this month and the last few (late notices) between two checkpoints.
KPI_MONTHS_PER_CHECKPOINT = 4

__all__ = [  # defined in archive_config; the command line imports them from here
    "TRANSIENT_DB_ERRORS",
    "ArchiveLockedError",
    "Archiver",
    "ArchiverConfig",
    "ArchiverMetrics",
]


class Archiver:
    def __init__(
        self,
        bootstrap: str,
        config: ArchiverConfig,
        *,
        parse: ParseContext,
        parse_source: ParseSource | None = None,
        signer: HeadSigner,
        clock: Callable[[], datetime],
        metrics: ArchiverMetrics | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_options = dict(client_options or {})  # TLS / SASL (signing.transport)
        self.config = config
        self.parse = parse
        # Worker processes when config.parse_workers > 0; they build their context from
        # parse_source, once each.
        self.parser = ParsePool(parse, parse_source, config.parse_workers)
        self.signer = signer
        self.clock = clock
        self.metrics = metrics or ArchiverMetrics()
        self.conn: asyncpg.Connection | None = None
        self.size = 0
        self.edge = RightEdge.empty()
        self.offsets: dict[tuple[str, int], int] = {}
        self.head_size = 0
        self.head_at: datetime | None = None
        self._assigned: set[TopicPartition] = set()
        self._refreshed = 0.0
        self._unpublished: tuple[int, str, str | None] | None = None
        self._kafka_backoff = Backoff()
        self._kafka_retry_at = 0.0  # monotonic time before which the broker is not asked again
        self._kpi_refreshed = 0.0  # monotonic time of the last KPI refresh
        self._started = clock()
        self.ready = asyncio.Event()  # set once the lock is held and partitions assigned
        self.consumer_lag = ConsumerLag(self.metrics.consumer_lag, config.lag_group)
        # (topic, partition, offset) -> (Kafka timestamp in ms, traceparent, fetched at in ns,
        # 0 without a span sink): what the archive delay histogram, the trace_id column, the
        # per-record log line and the archive span need of records being written.
        self._stamps: dict[tuple[str, int, int], Stamp] = {}

    def update_trust(self, trust: TrustStore) -> None:
        """A new trust store (a CRL from consumers.trustfeed): used from the next batch on."""
        self.parser.update_trust(trust)
        self.parse = self.parser.ctx

    # --- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._started = self.clock()
        await self._open(stop)
        # Started while the broker is away, the archiver holds its lock and waits for it.
        clients = None if stop.is_set() else await self._start_clients(stop)
        if clients is None:
            await self._close()
            return
        consumer, producer, admin = clients
        writing: asyncio.Task[bool] | None = None
        try:
            self.parser.start()
            log.info("archive.started", size=self.size, partitions=len(self.offsets))
            # Batch N is written (a task: its round trips wait on PostgreSQL) while batch N+1 is
            # fetched and parsed, so the database's share and ours overlap instead of adding up.
            # Writes stay one at a time and in order: a batch's seqs, leaves and offsets are
            # taken from the state its predecessor committed, when its own write starts. Every
            # other use of the connection or of that state (assignment from the stored offsets,
            # tree heads) first waits for the write in flight.
            while not stop.is_set():
                if self._refresh_due():
                    if not await _settle(writing):
                        break  # stopped while the database was away: nothing of it was stored
                    writing = None
                    await self._refresh_assignment(consumer, admin, stop)
                if not self._assigned:
                    await pause(stop, 0.3)
                    continue
                try:
                    # While the broker is away the consumer's fetches come back empty, and it
                    # resumes from its positions when the broker is back.
                    batch = await unless_stopped(
                        consumer.getmany(timeout_ms=300, max_records=self.config.max_batch), stop
                    )
                except Stopped:
                    break
                records = [r for tp in sorted(batch) for r in batch[tp]]
                parsed = await self.parser.parse([_source(r) for r in records])
                if not await _settle(writing):
                    break
                writing = None
                fetched = time.time_ns() if span_sink() is not None else 0
                for r in records:
                    self._stamps[(r.topic, r.partition, r.offset)] = (
                        r.timestamp,
                        record_trace(r.headers),
                        fetched,
                    )
                if parsed:
                    writing = asyncio.create_task(self._archive_with_retry(parsed, stop))
                # The batch just handed to the writer is not archived yet: it counts as lag.
                await self._observe(
                    consumer, Tally(TopicPartition(r.topic, r.partition) for r in records)
                )
                if self._checkpoint_due():
                    if not await _settle(writing):
                        break
                    writing = None
                    await self._checkpoint(producer, stop, force=False)
                if self._kpi_refresh_due():  # also while nothing comes in (after an upgrade)
                    if not await _settle(writing):
                        break
                    writing = None
                    await self._refresh_kpi()
            await _settle(writing)  # done already if the loop broke out
            writing = None
            await self._checkpoint(producer, stop, force=True)
        finally:
            if writing is not None and not writing.done():
                # Left by an error elsewhere: its transaction dies with the connection, and the
                # stored offsets say where the next start resumes.
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, *TRANSIENT_DB_ERRORS):
                    await writing
            self.parser.close()  # waits for a chunk still running if cancelled mid-parse: ms
            self.consumer_lag.forget()
            await close_all(consumer.stop(), producer.stop(), admin.close(), what="archive")
            await self._close()
            log.info("archive.stopped", size=self.size)

    async def _start_clients(
        self, stop: asyncio.Event
    ) -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient] | None:
        """The three clients, started; tried again with back-off while the broker does not
        answer. None when stopped first."""

        async def attempt() -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient]:
            consumer, producer, admin = self._clients()
            try:
                await unless_stopped(admin.start(), stop)
                await unless_stopped(consumer.start(), stop)
                await unless_stopped(producer.start(), stop)
                return consumer, producer, admin
            except BaseException:
                await close_all(consumer.stop(), producer.stop(), admin.close(), what="archive")
                raise

        return await keep_starting(attempt, stop, what="archive")

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,  # partitions are assigned by hand; offsets live in the database
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=FETCH_BYTES,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            **self.client_options,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            **self.client_options,
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.client_options)
        return consumer, producer, admin

    def _refresh_due(self) -> bool:
        if time.monotonic() < self._kafka_retry_at:
            return False  # the broker did not answer the last time: back off
        return (
            not self._assigned or time.monotonic() - self._refreshed >= self.config.refresh_seconds
        )

    def _checkpoint_due(self) -> bool:
        since = self.head_at or self._started
        due = (self.clock() - since).total_seconds() >= self.config.checkpoint_seconds
        return (self.size > self.head_size and due) or self._unpublished is not None

    async def _refresh_assignment(
        self,
        consumer: AIOKafkaConsumer,
        admin: AIOKafkaAdminClient,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Manual assignment of every matching topic: a new inbox is picked up within
        refresh_seconds, and each partition starts where the database says. While the broker
        does not answer, the assignment stays as it is and the next look waits longer."""
        if not self._refresh_due():
            return
        self._refreshed = time.monotonic()
        try:
            wanted = await unless_stopped(
                asyncio.wait_for(self._partitions(admin), KAFKA_CALL_TIMEOUT_S),
                stop or asyncio.Event(),
            )
        except Stopped:
            return
        except (KafkaError, OSError, TimeoutError) as exc:
            delay = self._kafka_backoff.next()
            self._kafka_retry_at = time.monotonic() + delay
            log.warning("archive.kafka_unavailable", error=repr(exc), retry_in_s=delay)
            return
        self._kafka_backoff.reset()
        self.ready.set()  # below: the partitions every matching topic has now, assigned
        if wanted == self._assigned:
            return
        # assign() forgets every position: put them all back from the database's offsets
        # (between batches, so memory and database agree).
        consumer.assign(sorted(wanted))
        fresh = []
        for tp in wanted:
            stored = self.offsets.get((tp.topic, tp.partition))
            if stored is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, stored)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        log.info("archive.assigned", partitions=len(wanted), new=len(wanted - self._assigned))
        self._assigned = wanted

    async def _partitions(self, admin: AIOKafkaAdminClient) -> set[TopicPartition]:
        pattern = self.config.topics.pattern
        topics = sorted(t for t in await admin.list_topics() if pattern.match(t))
        wanted: set[TopicPartition] = set()
        if topics:
            for desc in await admin.describe_topics(topics):
                for part in desc.get("partitions") or ():
                    wanted.add(TopicPartition(desc["topic"], part["partition"]))
        return wanted

    async def _observe(
        self, consumer: AIOKafkaConsumer, pending: Mapping[TopicPartition, int]
    ) -> None:
        # From the consumer's position, which passes transaction markers, not from the stored
        # offsets, which stop after the last record: with a marker after it (every
        # transaction ends with one), "end - stored" stays 1 per partition once all is
        # archived (consumers.telemetry.lag).
        self.metrics.lag.set(await self.consumer_lag.observe(consumer, pending))
        if self.head_at is not None:
            self.metrics.head_age.set((self.clock() - self.head_at).total_seconds())

    # --- writing -------------------------------------------------------------------------

    async def _archive_with_retry(self, parsed: Sequence[Parsed], stop: asyncio.Event) -> bool:
        """True once the batch is stored; False if stopped while the database was away."""
        delay = 0.2
        while True:
            try:
                if self.conn is None or self.conn.is_closed():
                    await self._reconnect()
                await self._write(parsed)
                return True
            except TRANSIENT_DB_ERRORS as exc:
                self.metrics.retries.inc()
                log.warning("archive.retry", error=repr(exc), delay_s=delay)
                await self._drop_connection()
                if stop.is_set():
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write(self, parsed: Sequence[Parsed]) -> None:
        assert self.conn is not None
        # After a reconnect, part of this batch may already be in (its commit succeeded but
        # its answer was lost): the offsets just reloaded say which.
        todo = [
            p
            for p in parsed
            if p.record.offset >= self.offsets.get((p.record.topic, p.record.partition), -1)
        ]
        if not todo:
            return
        started = time.monotonic()
        archived_at = archive_time(self.clock())
        stamps = [
            self._stamps.get((p.record.topic, p.record.partition, p.record.offset), UNSTAMPED)
            for p in todo
        ]
        # Each record's trace id, kept beside its row (not in its leaf: the header is not signed).
        trace_ids = [c.trace_id if (c := s[1]) is not None else None for s in stamps]
        rows = store.leaf_rows(self.size, todo, archived_at, trace_ids)
        edge, nodes = append_leaves(self.edge, self.size, [r.leaf_hash for r in rows])
        offsets = dict(self.offsets)
        for p in todo:
            offsets[(p.record.topic, p.record.partition)] = p.record.offset + 1
        changed = {k: v for k, v in offsets.items() if self.offsets.get(k) != v}
        async with self.conn.transaction():
            await store.write_batch(self.conn, rows, nodes, changed)
        first = self.size
        self.size, self.edge, self.offsets = edge.size, edge, offsets
        self._account(todo, stamps, first, time.monotonic() - started)
        for p in parsed:
            self._stamps.pop((p.record.topic, p.record.partition, p.record.offset), None)

    def _account(
        self, todo: Sequence[Parsed], stamps: Sequence[Stamp], first: int, seconds: float
    ) -> None:
        kinds = Tally(str(p.record.kind) for p in todo)
        for kind, n in kinds.items():
            self.metrics.records.labels(kind).inc(n)
        now = self.clock()
        for p, (stamp, context, _) in zip(todo, stamps, strict=True):
            rec = p.record
            delay = seconds_since(stamp, now)
            if delay is not None:
                exemplar = {"trace_id": context.trace_id} if context is not None else None
                self.metrics.delay.labels(str(rec.kind)).observe(delay, exemplar)
        errors = sum(p.record.parse_error is not None for p in todo)
        self.metrics.parse_errors.inc(errors)
        self.metrics.batches.inc()
        self.metrics.tree_size.set(self.size)
        # Ask the level (configure_logging sets the root's) once per batch rather than have every
        # record build a debug call's arguments that the filtering logger then drops.
        per_record = _stdlib_log.isEnabledFor(logging.DEBUG)
        for i, p in enumerate(todo if per_record else ()):
            rec = p.record
            context = stamps[i][1]
            # Secret rows carry no document id, so nothing identifying reaches the logs.
            log.debug(
                "archive.record",
                seq=first + i,
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                kind=str(rec.kind),
                message_id=rec.message_id,
                document_id=rec.document_id,
                parse_error=rec.parse_error,
                **trace_fields(context),
            )
        log.info(
            "archive.batch",
            records=len(todo),
            first_seq=first,
            size=self.size,
            kinds=dict(kinds),
            parse_errors=errors,
            ms=round(seconds * 1000, 1),
        )
        spans = span_sink()
        if spans is not None:
            _archive_spans(spans, todo, stamps, first, time.time_ns())

    # --- checkpoints ---------------------------------------------------------------------

    def _kpi_refresh_due(self) -> bool:
        return time.monotonic() - self._kpi_refreshed >= self.config.checkpoint_seconds

    async def _refresh_kpi(self) -> None:
        """The KPI's monthly figures the records archived since changed (migration 0012), with
        each checkpoint and at least every checkpoint_seconds, a few months at a time so that
        it stays short (after an upgrade every month is stale: `lienthong kpi refresh` does
        them all at once). Readers count a stale month themselves, so a refresh deferred costs
        speed, never a figure."""
        started = self._kpi_refreshed = time.monotonic()
        try:
            if self.conn is None or self.conn.is_closed():
                await self._reconnect()
            assert self.conn is not None
            months, left = await store.refresh_kpi(self.conn, KPI_MONTHS_PER_CHECKPOINT)
        except TRANSIENT_DB_ERRORS as exc:
            log.warning("archive.kpi_refresh_deferred", error=repr(exc))
            await self._drop_connection()
            return
        self.metrics.kpi_stale.set(left)
        if months:
            log.info("archive.kpi_refreshed", months=months, stale=left,
                     ms=round((time.monotonic() - started) * 1000, 1))  # fmt: skip

    async def _checkpoint(
        self, producer: AIOKafkaProducer, stop: asyncio.Event, *, force: bool
    ) -> None:
        now = self.clock()
        since = self.head_at or self._started
        due = (now - since).total_seconds() >= self.config.checkpoint_seconds
        if self.size > self.head_size and (due or force):
            signed, text = self.signer.sign(self.size, self.edge.root(), now)
            note = self.signer.checkpoint(self.size, self.edge.root())
            try:
                if self.conn is None or self.conn.is_closed():
                    await self._reconnect()
                assert self.conn is not None
                await store.insert_tree_head(
                    self.conn, self.size, self.edge.root(), text, now, note
                )
            except TRANSIENT_DB_ERRORS as exc:
                # The next checkpoint covers these leaves too; nothing is lost by waiting.
                log.warning("archive.checkpoint_deferred", error=repr(exc))
                await self._drop_connection()
                return
            self.head_size, self.head_at = self.size, signed.head.timestamp
            self._unpublished = (self.size, text, note)
            log.info("archive.tree_head", size=self.size, root=self.edge.root().hex())
            await self._refresh_kpi()
        if self._unpublished is not None and (force or time.monotonic() >= self._kafka_retry_at):
            # The head is in the database already; publishing it can wait for the broker.
            size, text, note = self._unpublished
            # Keyed per tree size: the topic keeps every head (docs/evidence.md), and a key per
            # size would keep them all even on a topic left compacted.
            headers = [("lt-checkpoint", note.encode())] if note else None
            try:
                await unless_stopped(
                    asyncio.wait_for(
                        producer.send_and_wait(
                            self.config.checkpoints_topic,
                            text.encode(),
                            key=f"{self.signer.log_id}/{size}".encode(),
                            headers=headers,
                        ),
                        KAFKA_CALL_TIMEOUT_S,
                    ),
                    stop,
                )
                self._unpublished = None
            except (KafkaError, TimeoutError, Stopped) as exc:
                if not isinstance(exc, Stopped):
                    self._kafka_retry_at = time.monotonic() + self._kafka_backoff.next()
                log.warning("archive.checkpoint_unpublished", size=size, error=repr(exc))

    # --- connection, lock and state ------------------------------------------------------

    async def _open(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self.config.database_url)
        while not await store.try_writer_lock(conn):
            if not self.config.wait_for_lock:
                await conn.close()
                raise ArchiveLockedError(
                    "another archiver is writing to this archive (it holds the writer lock); "
                    "stop it first, or pass --wait to take over when it stops"
                )
            log.info("archive.waiting_for_lock")
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
                await conn.close()
                return
            except TimeoutError:
                continue
        self.conn = conn
        await self._load_state()

    async def _reconnect(self) -> None:
        await self._drop_connection()
        conn = await asyncpg.connect(self.config.database_url, timeout=10)
        if not await store.try_writer_lock(conn):
            await conn.close()
            # Our session (and lock) died with the connection and someone else took over.
            raise ArchiveLockedError("the writer lock was taken by another archiver")
        self.conn = conn
        await self._load_state()
        log.info("archive.reconnected", size=self.size)

    async def _load_state(self) -> None:
        assert self.conn is not None
        self.offsets = await store.load_offsets(self.conn)
        self.size = await store.record_count(self.conn)
        self.edge = await load_right_edge(self.conn, self.size)
        head = await store.last_tree_head(self.conn)
        if head is not None:
            self.head_size, self.head_at = head.size, head.created_at
        self.metrics.tree_size.set(self.size)

    async def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)  # closing the session releases the writer lock
            except TRANSIENT_DB_ERRORS:
                conn.terminate()


async def _settle(writing: asyncio.Task[bool] | None) -> bool:
    """Wait for the write in flight: False if it stopped before storing its batch."""
    return True if writing is None else await writing


Stamp = tuple[int | None, TraceContext | None, int]
UNSTAMPED: Stamp = (None, None, 0)


def _archive_spans(
    spans: SpanSink, todo: Sequence[Parsed], stamps: Sequence[Stamp], first: int, ended: int
) -> None:
    """One span per archived record that carried a trace: a child of the span that wrote the
    record, from its fetch to the commit of its rows. No ids of a secret record's content."""
    for i, (p, (_, context, fetched)) in enumerate(zip(todo, stamps, strict=True)):
        if context is None:
            continue  # no trace to join
        rec = p.record
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": rec.topic,
            "messaging.destination.partition.id": str(rec.partition),
            "messaging.kafka.offset": rec.offset,
            "lienthong.kind": str(rec.kind),
            "lienthong.archive.seq": first + i,
            "lienthong.parse_error": rec.parse_error is not None,
        }
        if rec.message_id and rec.raw is not None:
            attributes["messaging.message.id"] = rec.message_id
        spans(
            Span(
                "archive",
                CONSUMER,
                context.child(),
                context.span_id,
                fetched or ended,
                ended,
                attributes,
            )
        )


def _source(r: ConsumerRecord) -> SourceRecord:
    return SourceRecord(
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value=r.value,
        # A header Kafka carries with a null value is kept as empty: bytes(None) would stop the
        # archiver on one odd record.
        headers=tuple((k, bytes(v) if v is not None else b"") for k, v in (r.headers or ())),
        timestamp=datetime.fromtimestamp(r.timestamp / 1000, tz=UTC),
    )
