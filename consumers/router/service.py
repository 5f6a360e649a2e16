"""The router: submissions in; inboxes, dead letters and platform notices out, exactly once.

Each batch is one Kafka transaction holding the deliveries, the dead letters, the router's
changelog and the consumed offsets, so a crash at any point either publishes all of a batch or
none of it (downstream consumers read_committed). The changelog (router-state) is co-partitioned
with submissions: whoever owns submissions partition p restores its memory from state partition p.
That memory lives on disk (consumers.router.store), its SQLite transaction committed right after
the Kafka one, so memory stays bounded however many documents the router has seen.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumers.lifecycle import Backoff, Stopped, close_all, keep_starting, pause, unless_stopped
from consumers.router.metrics import RejectionAlarm, RouterMetrics, account, route_span
from consumers.router.partitions import home_partition
from consumers.router.rejections import dead_letter, rejection_notice
from consumers.router.restore import restore_from_changelog
from consumers.router.routing import (
    Rejected,
    Routed,
    RoutingPolicy,
    Submission,
    decide,
    parse_submission,
)
from consumers.router.state import PartitionMemory, StateChange
from consumers.router.store import Checkpoint, RouterStore, StoredPartition
from consumers.telemetry import ConsumerLag, seconds_since
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope
from schemas.common import AgencyRef
from schemas.trace import SpanSink, TraceContext, from_headers, span_sink
from signing.credentials import CredentialSource
from signing.seal import Credential
from signing.trust import TrustStore

log = structlog.get_logger()

# Set on a submission the router moved to its document's partition (topic/partition/offset of
# where it arrived); a record carrying it is routed where it is, never moved twice.
FORWARDED_HEADER = "lt-forwarded-from"
FETCH_BYTES = 40 * 1024 * 1024  # above the largest message a topic accepts (32 MiB)
PRUNE_EVERY_S = 600.0


@dataclass(frozen=True, slots=True)
class RouterTopics:
    submissions: str
    deadletter: str
    state: str
    inbox: Callable[[str], str]


@dataclass(frozen=True, slots=True)
class RouterConfig:
    topics: RouterTopics
    group_id: str
    # Stable per router instance: a restarted instance fences its dead predecessor's open
    # transaction at once instead of waiting for it to time out.
    transactional_id: str
    policy: RoutingPolicy
    platform: AgencyRef
    max_batch: int = 200
    alarm_share: float = 0.5  # of the last alarm_window messages
    alarm_window: int = 200
    transaction_timeout_ms: int = 30_000
    # Where the on-disk memory lives, one slot directory per running instance (a restarted one
    # reuses a free slot and reads only the changelog's tail). None: a temporary directory,
    # removed at stop, so every start restores the whole changelog.
    state_dir: Path | None = None


class Router:
    def __init__(
        self,
        bootstrap: str,
        config: RouterConfig,
        *,
        trust: TrustStore,
        agencies: AgencyDirectory,
        platform_credential: Credential | CredentialSource,  # chosen at each signing time
        clock: Callable[[], datetime],
        metrics: RouterMetrics | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        # TLS / SASL for every client the router opens (signing.transport); none for PLAINTEXT.
        self.client_options = dict(client_options or {})
        self.config = config
        self.trust = trust
        self.agencies = agencies
        self.credential = platform_credential
        self.clock = clock
        self.metrics = metrics or RouterMetrics()
        self.alarm = RejectionAlarm(config.alarm_share, config.alarm_window)
        self.store: RouterStore | None = None
        self.states: dict[int, StoredPartition] = {}
        self.lock = asyncio.Lock()
        self._topics: set[str] = set()
        self._topics_checked = 0.0
        self._last_prune: dict[int, float] = {}  # partition -> monotonic time
        self._partitions = 0  # of the submissions topic, from the consumer's metadata
        self.ready = asyncio.Event()  # set once partitions are assigned and restored
        self.stopping = asyncio.Event()  # run()'s stop event, for the rebalance listener
        self.consumer_lag = ConsumerLag(self.metrics.consumer_lag, config.group_id)
        # Of the batch in its transaction: (Kafka timestamp in ms, outcome, trace) per record,
        # observed into the send->routed histogram once the transaction has committed.
        self._handled: list[tuple[int, str, TraceContext]] = []
        # With a span sink only (docs/observability.md, Traces): the batch's route spans, each
        # (outcome, record, its context, the sender's span id, start in ns), ended at the commit.
        self._spans: SpanSink | None = None
        self._traced: list[tuple[Routed | Rejected, ConsumerRecord, TraceContext, str | None, int]]
        self._traced = []

    async def run(self, stop: asyncio.Event) -> None:
        self.stopping = stop
        scratch = None
        if self.config.state_dir is None:
            scratch = tempfile.TemporaryDirectory(prefix="router-state-")
        self.store = RouterStore.open(
            self.config.state_dir or Path(scratch.name if scratch else ".")
        )
        clients = None
        try:
            # Started while the broker is away, the router waits for it (and for a stop request).
            clients = await self._start_clients(stop)
            if clients is None:
                return
            consumer, producer, admin = clients
            log.info(
                "router.started",
                group=self.config.group_id,
                transactional_id=self.config.transactional_id,
            )
            while not stop.is_set():
                try:
                    batch = await unless_stopped(
                        consumer.getmany(timeout_ms=300, max_records=self.config.max_batch), stop
                    )
                    if not batch:
                        # Idle: the position has passed any transaction marker by now.
                        await self.consumer_lag.observe(consumer)
                        continue
                    # A revocation may hold the lock while it waits on an absent broker.
                    await unless_stopped(self.lock.acquire(), stop)
                except Stopped:
                    break
                try:
                    await self._route_with_retry(consumer, producer, admin, batch, stop)
                finally:
                    self.lock.release()
                await self.consumer_lag.observe(consumer)
        finally:
            self.consumer_lag.forget()
            if clients is not None:
                consumer, producer, admin = clients
                await close_all(consumer.stop(), producer.stop(), admin.close(), what="router")
            self._close_store(scratch)
            log.info("router.stopped")

    async def _start_clients(
        self, stop: asyncio.Event
    ) -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient] | None:
        """The three clients, started; tried again with back-off while the broker does not
        answer. None when stopped first."""

        async def attempt() -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient]:
            consumer, producer, admin = self._clients()
            try:
                # The producer starts first: its init_transactions fences this instance's
                # predecessor, which releases the state partitions' last stable offset before
                # we restore from them.
                await unless_stopped(producer.start(), stop)
                await unless_stopped(admin.start(), stop)
                consumer.subscribe([self.config.topics.submissions], listener=_Rebalance(self))
                await unless_stopped(consumer.start(), stop)
                return consumer, producer, admin
            except BaseException:
                await close_all(consumer.stop(), producer.stop(), admin.close(), what="router")
                raise

        return await keep_starting(attempt, stop, what="router")

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient]:
        cfg = self.config
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=cfg.transactional_id,
            max_request_size=FETCH_BYTES,
            transaction_timeout_ms=cfg.transaction_timeout_ms,
            linger_ms=5,
            **self.client_options,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=FETCH_BYTES,
            **self.client_options,
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.client_options)
        return consumer, producer, admin

    def _close_store(self, scratch: tempfile.TemporaryDirectory[str] | None) -> None:
        self.states.clear()
        if self.store is not None:
            self.store.close()
            self.store = None
        if scratch is not None:
            scratch.cleanup()

    async def _route_with_retry(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        stop: asyncio.Event | None = None,
    ) -> None:
        # A partition revoked while this batch waited for the lock belongs to someone else now.
        batch = {tp: msgs for tp, msgs in batch.items() if tp.partition in self.states}
        if not batch:
            return
        self._partitions = len(consumer.partitions_for_topic(self.config.topics.submissions) or ())
        stop = stop or asyncio.Event()
        backoff = Backoff(first=0.5, most=10.0)
        while True:
            try:
                # Stopped mid-batch (the broker away): the transaction is abandoned, so its
                # offsets are not committed and whoever owns the partitions next routes it.
                await unless_stopped(self._route_batch(producer, admin, batch), stop)
                return
            except Stopped:
                log.info("router.stopped_mid_batch", records=sum(map(len, batch.values())))
                return
            except KafkaError as exc:
                if not getattr(exc, "retriable", False) and not _abortable(exc):
                    raise  # e.g. fenced by a newer instance: crash loudly
                self.metrics.retries.inc()
                log.warning("router.retry", error=repr(exc))
                # The store rolled back with Kafka; should the commit have gone through after
                # all, the changelog's tail since the checkpoint says so.
                partitions = sorted(tp.partition for tp in batch)
                if not await self._restore_retrying(partitions, stop, backoff):
                    return

    async def _restore_retrying(
        self, partitions: list[int], stop: asyncio.Event, backoff: Backoff
    ) -> bool:
        """Restore these partitions, after a pause, again and again while the broker is away:
        routing on a memory that missed a committed batch would refuse its records as replays.
        False when stopped first."""
        while True:
            delay = backoff.next()
            if await pause(stop, delay):
                return False
            try:
                await unless_stopped(self._restore(partitions), stop)
                return True
            except Stopped:
                return False
            except (KafkaError, OSError) as exc:
                log.warning("router.restore_retry", error=repr(exc), delay_s=backoff.delay)

    async def _route_batch(
        self,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        assert self.store is not None
        self.store.begin()
        self._handled = []
        self._traced = []
        self._spans = span_sink()
        try:
            state_offsets = await self._route_in_transaction(producer, admin, batch)
        except BaseException:
            self.store.rollback()
            raise
        # Only now that Kafka has committed: the store's checkpoint is the changelog's offset.
        self.store.commit(state_offsets)
        self.metrics.batches.inc()
        now = self.clock()
        for stamp, outcome, context in self._handled:
            waited = seconds_since(stamp, now)
            if waited is not None:
                self.metrics.route_seconds.labels(outcome).observe(
                    waited, {"trace_id": context.trace_id}
                )
        self._handled = []
        if self._spans is not None and self._traced:
            ended = time.time_ns()
            group = self.config.group_id
            for decided, record, context, parent_id, started in self._traced:
                self._spans(route_span(decided, record, context, parent_id, started, ended, group))
        self._traced = []

    async def _route_in_transaction(
        self,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> dict[int, Checkpoint]:
        """Route the batch in one Kafka transaction; per partition, the last changelog record
        it wrote (its offset and key) and the offset after it."""
        cfg = self.config
        pending: list[asyncio.Future[object]] = []
        offsets: dict[TopicPartition, int] = {}
        written: dict[int, list[tuple[asyncio.Future[Any], str]]] = {}
        async with producer.transaction():
            for tp, records in batch.items():
                state = self.states[tp.partition]
                for record in records:
                    now = self.clock()
                    # Deliveries, dead letter and 02 continue the sender's trace: a new span,
                    # this one's, child of the sender's (a fresh trace when it carried none).
                    parent = from_headers(record.headers)
                    context = parent.child() if parent is not None else TraceContext.start()
                    started = time.time_ns() if self._spans is not None else 0
                    sub = parse_submission(record.value or b"")
                    home = self._home(sub, record)
                    if home is not None and home != tp.partition:
                        pending.append(await self._forward(producer, sub, record, home))
                        offsets[tp] = record.offset + 1
                        continue
                    outcome = decide(
                        sub,
                        state=state,
                        trust=self.trust,
                        agencies=self.agencies,
                        policy=cfg.policy,
                        now=now,
                    )
                    if isinstance(outcome, Routed):
                        outcome = await self._check_inboxes(admin, outcome)
                    changes: Sequence[StateChange] = ()
                    if isinstance(outcome, Routed):
                        pending += await self._deliver(producer, outcome, record, context)
                        changes = outcome.changes
                    else:
                        pending += await self._reject(
                            producer, admin, outcome, record, now, context
                        )
                    for change in changes:
                        state.apply(change)
                        sent = await producer.send(
                            cfg.topics.state,
                            change.value,
                            key=change.key.encode(),
                            partition=tp.partition,
                        )
                        written.setdefault(tp.partition, []).append((sent, change.key))
                    offsets[tp] = record.offset + 1
                    account(outcome, record, self.metrics, self.alarm, context)
                    label = "routed" if isinstance(outcome, Routed) else "rejected"
                    self._handled.append((record.timestamp, label, context))
                    if self._spans is not None:
                        parent_id = parent.span_id if parent is not None else None
                        self._traced.append((outcome, record, context, parent_id, started))
                pruned = await self._prune(producer, tp.partition, state)
                if pruned:
                    written.setdefault(tp.partition, []).extend(pruned)
            await asyncio.gather(*pending, *(f for fs in written.values() for f, _ in fs))
            await producer.send_offsets_to_transaction(offsets, cfg.group_id)
        checkpoints = {}
        for p, sent in written.items():
            # Each future resolved to a RecordMetadata: the offset its record got.
            offset, key = max((f.result().offset, key) for f, key in sent)
            checkpoints[p] = Checkpoint(offset + 1, offset, key)
        return checkpoints

    def _home(self, sub: Submission, record: ConsumerRecord) -> int | None:
        """The partition the document lives on (its memory: routed documents, statuses, message
        ids), whatever partition the client's partitioner chose; None: route where it is (the
        bytes do not decode, or the record was already moved once)."""
        if sub.document_id is None or self._partitions == 0:
            return None
        if any(k == FORWARDED_HEADER for k, _ in record.headers or ()):
            return None
        return home_partition(sub.document_id, self._partitions)

    async def _forward(
        self, producer: AIOKafkaProducer, sub: Submission, record: ConsumerRecord, home: int
    ) -> asyncio.Future[object]:
        """Move the record, bytes unchanged, to its document's partition in this transaction:
        it is routed there, once, against that partition's memory."""
        assert sub.document_id is not None
        source = f"{record.topic}/{record.partition}/{record.offset}"
        headers = [*(record.headers or ()), (FORWARDED_HEADER, source.encode())]
        self.metrics.forwarded.inc()
        log.info(
            "router.forwarded",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            to_partition=home,
            sha256=sub.digest,
        )
        return await producer.send(
            record.topic,
            record.value,
            key=sub.document_id.encode(),
            partition=home,
            headers=headers,
        )

    async def _missing_topics(self, admin: AIOKafkaAdminClient, wanted: set[str]) -> set[str]:
        missing = wanted - self._topics
        if missing and time.monotonic() - self._topics_checked > 5.0:
            self._topics = set(await admin.list_topics())
            self._topics_checked = time.monotonic()
            missing = wanted - self._topics
        return missing

    async def _check_inboxes(self, admin: AIOKafkaAdminClient, routed: Routed) -> Routed | Rejected:
        """Sending to a topic that does not exist would stall the whole transaction: refuse
        instead (an agency in the directory whose inbox has not been created yet)."""
        missing = await self._missing_topics(
            admin, {self.config.topics.inbox(r) for r in routed.recipients}
        )
        if not missing:
            return routed
        env = routed.envelope
        return Rejected(
            "NO_INBOX",
            f"no inbox topic for {sorted(missing)}",
            routed.digest,
            message_id=env.message_id,
            document_id=env.document_id,
            sender=env.sender,
            payload_type=str(env.payload_type),
        )

    async def _deliver(
        self,
        producer: AIOKafkaProducer,
        routed: Routed,
        record: ConsumerRecord,
        context: TraceContext,
    ) -> list[asyncio.Future[object]]:
        env = routed.envelope
        value = encode_envelope(env)
        headers = [
            ("lt-message-id", env.message_id.encode()),
            ("lt-payload-type", str(env.payload_type).encode()),
            ("lt-sender", env.sender.encode()),
            context.header(),
        ]
        return [
            await producer.send(self.config.topics.inbox(r), value, key=record.key, headers=headers)
            for r in routed.recipients
        ]

    async def _reject(
        self,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        rejected: Rejected,
        record: ConsumerRecord,
        now: datetime,
        context: TraceContext,
    ) -> list[asyncio.Future[object]]:
        source = f"{record.topic}/{record.partition}/{record.offset}"
        letter = dead_letter(record.value or b"", record.key, rejected, source, now)
        futures = [
            await producer.send(
                self.config.topics.deadletter,
                letter.value,
                key=letter.key,
                headers=[*letter.headers, context.header()],
            )
        ]
        notice = rejection_notice(
            rejected,
            platform=self.config.platform,
            credential=self.credential,
            agencies=self.agencies,
            now=now,
        )
        if notice is None or not rejected.sender:
            return futures
        inbox = self.config.topics.inbox(rejected.sender)
        if await self._missing_topics(admin, {inbox}):
            log.warning("router.notice_undeliverable", inbox=inbox, reason=rejected.reason)
        else:
            futures.append(
                await producer.send(
                    inbox,
                    encode_envelope(notice),
                    key=notice.document_id.encode(),
                    headers=[
                        ("lt-message-id", notice.message_id.encode()),
                        ("lt-payload-type", str(notice.payload_type).encode()),
                        ("lt-sender", notice.sender.encode()),
                        context.header(),
                    ],
                )
            )
        return futures

    async def _prune(
        self, producer: AIOKafkaProducer, partition: int, state: PartitionMemory
    ) -> list[tuple[asyncio.Future[Any], str]]:
        # Each partition on its own clock (pruned in its first batch after assignment).
        if time.monotonic() - self._last_prune.get(partition, -PRUNE_EVERY_S) < PRUNE_EVERY_S:
            return []
        self._last_prune[partition] = time.monotonic()
        futures: list[tuple[asyncio.Future[Any], str]] = []
        for change in state.expired_messages(self.clock(), self.config.policy.replay_window):
            state.apply(change)
            sent = await producer.send(
                self.config.topics.state, None, key=change.key.encode(), partition=partition
            )
            futures.append((sent, change.key))
        return futures

    async def _restore(self, partitions: list[int]) -> None:
        """Bring these partitions' store up to date with the changelog (committed records)."""
        assert self.store is not None
        started = time.monotonic()
        restored = await restore_from_changelog(
            self.bootstrap,
            self.config.topics.state,
            self.store,
            partitions,
            FETCH_BYTES,
            client_options=self.client_options,
        )
        self.states.update({p: StoredPartition(self.store, p) for p in partitions})
        log.info(
            "router.restored",
            partitions=partitions,
            read_from=restored.read_from,
            up_to=restored.up_to,
            records=restored.records,
            seconds=round(time.monotonic() - started, 3),
        )


def _abortable(exc: KafkaError) -> bool:
    # Errors after which the transaction can be aborted and the batch tried again.
    return type(exc).__name__ in {
        "OutOfOrderSequenceNumber",
        "KafkaTimeoutError",
        "RequestTimedOutError",
        "NotEnoughReplicasError",
        "NotLeaderForPartitionError",
        "ConcurrentTransactions",
    }


class _Rebalance(ConsumerRebalanceListener):
    """Revocation waits for the batch in hand to commit (it takes the router's lock), so no
    partition changes owner in the middle of a transaction (aiokafka issue #844)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.router.lock:
            for tp in revoked:
                self.router.states.pop(tp.partition, None)
                self.router._last_prune.pop(tp.partition, None)
            if revoked:
                log.info("router.revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in assigned)
        async with self.router.lock:
            try:
                await self.router._restore(partitions)
            except (KafkaError, OSError) as exc:
                # The client would log and drop this error, leaving the partitions assigned
                # but unrouted: keep trying while the broker comes back.
                log.warning("router.restore_retry", error=repr(exc), partitions=partitions)
                if not await self.router._restore_retrying(
                    partitions, self.router.stopping, Backoff()
                ):
                    return
        self.router.ready.set()
