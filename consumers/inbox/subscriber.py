"""InboxSubscriber: read one agency's inbox, verify every envelope again, yield deliveries."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from consumers.inbox.metrics import InboxMetrics
from consumers.lifecycle import Stopped, close_all, unless_stopped
from consumers.telemetry import ConsumerLag, record_trace, seconds_since, trace_fields
from schemas import trace
from schemas.addressing import addressing
from schemas.codec import Payload, decode_envelope, decode_payload
from schemas.envelope import Envelope
from schemas.errors import SchemaError, ValidationError
from schemas.limits import MAX_MESSAGE_BYTES
from signing.envelope import AgencyRegistry, VerifiedSender, verify_envelope
from signing.errors import VerificationError
from signing.trust import TrustStore

log = structlog.get_logger()

# Reason codes the subscriber adds to those of SchemaError and VerificationError.
EMPTY_RECORD = "EMPTY_RECORD"  # a null value (tombstone): nothing to decode
WRONG_RECIPIENT = "WRONG_RECIPIENT"  # our code is not among the envelope's recipients
ADDRESSING_MISMATCH = "ADDRESSING_MISMATCH"  # envelope and payload disagree on who/what

POLL_MS = 500  # how long one fetch waits; bounds how late a stop request is noticed


@dataclass(frozen=True, slots=True)
class Delivery:
    """An envelope addressed to us whose signatures we verified ourselves."""

    envelope: Envelope
    payload: Payload
    verified: VerifiedSender
    raw: bytes  # the exact bytes received: evidence, never re-encoded
    partition: int
    offset: int
    topic: str = ""
    verified_at: datetime | None = None
    timestamp_ms: int | None = None  # the Kafka record's (the router's write)
    trace: trace.TraceContext | None = None  # its traceparent header


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record we will not act on, with a stable reason code; the loop goes on."""

    reason_code: str
    detail: str
    raw: bytes
    partition: int
    offset: int
    message_id: str | None = None
    document_id: str | None = None
    sender: str | None = None  # as the envelope claims it; unproven when signatures failed
    topic: str = ""
    payload_type: str | None = None  # as the envelope claims it
    # True once the signatures verified: only then is `sender` proven, and worth answering.
    sender_verified: bool = False
    timestamp_ms: int | None = None
    trace: trace.TraceContext | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


Item = Delivery | Refusal
Handler = Callable[[Delivery], Awaitable[str | None]]
RefusalHandler = Callable[[Refusal], Awaitable[str | None]]


def one_line(text: str, limit: int = 300) -> str:
    """Details go to logs, files and headers: one bounded line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def examine(
    raw: bytes | None,
    *,
    agency_code: str,
    trust: TrustStore,
    agencies: AgencyRegistry,
    at: datetime,
    topic: str = "",
    partition: int = 0,
    offset: int = 0,
) -> Item:
    """Turn one inbox record into a Delivery or a Refusal; pure, never raises for bad input.

    Signatures are checked before the payload is decoded: the payload's content is not
    trusted (or even parsed) until its sender is proven.
    """
    envelope: Envelope | None = None
    verified: VerifiedSender | None = None

    def refuse(reason: str, detail: str) -> Refusal:
        return Refusal(
            reason,
            one_line(detail),
            raw or b"",
            partition,
            offset,
            message_id=envelope.message_id if envelope else None,
            document_id=envelope.document_id if envelope else None,
            sender=envelope.sender if envelope else None,
            topic=topic,
            payload_type=envelope.payload_type.value if envelope else None,
            sender_verified=verified is not None,
        )

    if raw is None:
        return refuse(EMPTY_RECORD, "the record has no value")
    try:
        envelope = decode_envelope(raw)
    except SchemaError as exc:
        return refuse(exc.reason, exc.message)
    try:
        verified = verify_envelope(envelope, trust=trust, agencies=agencies, at=at)
    except VerificationError as exc:
        where = "" if exc.signature_index is None else f"signature #{exc.signature_index}: "
        return refuse(exc.reason.value, where + exc.detail)
    if agency_code not in envelope.recipients:
        return refuse(
            WRONG_RECIPIENT,
            f"addressed to {', '.join(envelope.recipients) or 'nobody'}, not {agency_code}",
        )
    try:
        payload = decode_payload(envelope)
    except SchemaError as exc:
        return refuse(exc.reason, f"{exc.detail}: {exc.message}" if exc.detail else exc.message)
    mismatch = _addressing_mismatch(envelope, payload)
    if mismatch:
        return refuse(ADDRESSING_MISMATCH, mismatch)
    return Delivery(envelope, payload, verified, raw, partition, offset, topic, at)


def _addressing_mismatch(envelope: Envelope, payload: Payload) -> str | None:
    # verify_envelope proves who signed the envelope; this proves the signed payload says the
    # same, so a status "from" one agency cannot ride in another agency's envelope.
    try:
        where = addressing(payload, envelope.recipients)
    except (ValidationError, TypeError) as exc:
        return one_line(str(exc))
    if where.sender != envelope.sender:
        return f"envelope sender {envelope.sender}, payload sender {where.sender}"
    if where.document_id != envelope.document_id:
        return one_line(f"envelope is about {envelope.document_id}, payload {where.document_id}")
    return None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, subscriber: InboxSubscriber) -> None:
        self._subscriber = subscriber

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._subscriber._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._subscriber._on_assigned(set(assigned))


class InboxSubscriber:
    """One agency's inbox reader (at-least-once, offsets committed by hand).

    Two ways to use it, inside ``async with subscriber:``:

    - ``async for item in subscriber:`` yields Delivery | Refusal. An item counts as handled
      when the next one is requested, or when ``await subscriber.commit()`` is called; only
      handled items are committed. After leaving the loop early, call ``commit()`` if the
      item in hand was handled, otherwise it is delivered again next time.
    - ``await subscriber.run(handler, refusal_handler, stop)`` calls the matching handler for
      each item and commits after it returns; an exception from a handler stops the run with
      that item uncommitted (it will come again) and propagates.

    ``stop`` (an asyncio.Event) ends either loop after the item in hand. ``from_beginning``
    re-reads the inbox from its first retained record, whatever the group committed.
    """

    def __init__(
        self,
        bootstrap: str,
        agency_code: str,
        *,
        topic: str,
        group_id: str,
        trust: TrustStore,
        agencies: AgencyRegistry,
        clock: Callable[[], datetime],
        from_beginning: bool = False,
        stop: asyncio.Event | None = None,
        idle_timeout: float | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        client_options: Mapping[str, Any] | None = None,
        metrics: InboxMetrics | None = None,
    ) -> None:
        self.agency_code = agency_code
        self.metrics = metrics or InboxMetrics()
        self.consumer_lag = ConsumerLag(self.metrics.consumer_lag, group_id)
        self.topic = topic
        self.group_id = group_id
        self._trust = trust
        self._agencies = agencies
        self._clock = clock
        self._from_beginning = from_beginning
        self._stop = stop or asyncio.Event()
        self._idle_timeout = idle_timeout
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            # A new group starts at the oldest retained record: an inbox keeps what arrived
            # while the agency's system was not yet subscribed.
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=max_message_bytes,
            fetch_max_bytes=max(max_message_bytes, 52_428_800),
            max_poll_records=50,
            **(client_options or {}),
        )
        self._started = False
        self._rewound = False
        self._buffer: deque[ConsumerRecord[bytes, bytes]] = deque()
        self._in_hand: Item | None = None
        self._done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._trace_token: contextvars.Token[trace.TraceContext | None] | None = None
        # With a span sink only: the deliver span of the item in hand (its context, the
        # router's span id, start in ns), ended with the item.
        self._deliver_span: tuple[trace.TraceContext, str, int] | None = None

    def update_trust(self, trust: TrustStore) -> None:
        """A new trust store (a CRL from consumers.trustfeed): the next record verifies with it."""
        self._trust = trust

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._started:
            self._consumer.subscribe([self.topic], listener=_Rebalance(self))
            await self._consumer.start()
            self._started = True

    async def stop(self) -> None:
        """Commit what was handled and leave the group; safe to call twice."""
        if not self._started:
            return
        self._started = False
        try:
            # Stopping while the broker is away: what was handled but not committed comes again
            # (at-least-once), rather than waiting for a coordinator that does not answer.
            await unless_stopped(self._commit_done(), self._stop)
        except Stopped:
            log.warning("inbox.commit_abandoned", topic=self.topic)
        finally:
            self.consumer_lag.forget()
            await close_all(self._consumer.stop(), what="inbox")

    async def __aenter__(self) -> InboxSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> InboxSubscriber:
        return self

    async def __anext__(self) -> Item:
        if self._in_hand is not None:
            self._finish(self._in_hand, None)
        item = await self._next_item()
        if item is None:
            await self._commit_done()
            raise StopAsyncIteration
        self._hand_out(item)
        return item

    async def commit(self) -> None:
        """Mark the item in hand handled and commit every handled offset."""
        if self._in_hand is not None:
            self._finish(self._in_hand, None)
        await self._commit_done()

    async def run(
        self,
        handler: Handler,
        refusal_handler: RefusalHandler,
        stop: asyncio.Event | None = None,
        *,
        max_items: int | None = None,
    ) -> int:
        """Handle items until ``stop`` is set, ``max_items`` were handled or the idle timeout
        passes; commit after each handler returns. Returns how many items were handled."""
        if stop is not None:
            self._stop = stop
        own_lifecycle = not self._started
        handled = 0
        try:
            if own_lifecycle:
                await self.start()
            while max_items is None or handled < max_items:
                item = await self._next_item()
                if item is None:
                    break
                self._hand_out(item)
                try:
                    # A handler that answers waits on the broker: a stop request cuts it short.
                    handling = (
                        handler(item) if isinstance(item, Delivery) else refusal_handler(item)
                    )
                    outcome = await unless_stopped(handling, self._stop)
                except Stopped:
                    self._abandon(item, "stopped")
                    break
                except BaseException:
                    # Not committed: the record comes again on the next run (at-least-once).
                    self._abandon(item)
                    raise
                self._finish(item, outcome)
                handled += 1
                try:
                    await unless_stopped(self._commit_done(), self._stop)
                except Stopped:
                    break  # handled, not committed: it comes again, and is answered once
        finally:
            if own_lifecycle:
                await self.stop()
        return handled

    # --- internals -------------------------------------------------------------------------

    async def _next_item(self) -> Item | None:
        """The next record examined, or None when stopped or idle for idle_timeout."""
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while not self._buffer:
            if self._stop.is_set():
                return None
            if self._idle_timeout is not None and loop.time() - idle_since >= self._idle_timeout:
                return None
            batches = await self._consumer.getmany(timeout_ms=POLL_MS)
            for records in batches.values():
                self._buffer.extend(records)
            # Fetched but not handed out yet: still lag (the position is past them).
            await self.consumer_lag.observe(self._consumer, Counter(map(_tp, self._buffer)))
        if self._stop.is_set():
            return None
        record = self._buffer.popleft()
        item = examine(
            record.value,
            agency_code=self.agency_code,
            trust=self._trust,
            agencies=self._agencies,
            at=self._clock(),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return dataclasses.replace(
            item, timestamp_ms=record.timestamp, trace=record_trace(record.headers)
        )

    def _hand_out(self, item: Item) -> None:
        self._in_hand = item
        structlog.contextvars.bind_contextvars(**_context(item))
        # What the handler sends meanwhile (the 01 answer) continues the record's trace; with a
        # span sink, as a child of this delivery's own span.
        current = item.trace
        if item.trace is not None and trace.span_sink() is not None:
            current = item.trace.child()
            self._deliver_span = (current, item.trace.span_id, time.time_ns())
        self._trace_token = trace.current.set(current)

    def _release(self, item: Item, outcome: str, error: str | None) -> None:
        self._in_hand = None
        if self._deliver_span is not None:
            spans = trace.span_sink()
            if spans is not None:
                spans(_deliver_span(item, self.group_id, outcome, error, *self._deliver_span))
            self._deliver_span = None
        structlog.contextvars.unbind_contextvars(*_context(item))
        if self._trace_token is not None:
            trace.current.reset(self._trace_token)
            self._trace_token = None

    def _finish(self, item: Item, outcome: str | None) -> None:
        """The one canonical log line per handled message; its offset becomes committable."""
        self._done[TopicPartition(item.topic, item.partition)] = item.offset + 1
        if isinstance(item, Delivery):
            log.info("inbox.message", outcome=outcome or "delivered")
            self.metrics.handled.labels("delivered", "").inc()
            waited = seconds_since(item.timestamp_ms, self._clock())
            if waited is not None:
                exemplar = {"trace_id": item.trace.trace_id} if item.trace else None
                self.metrics.delivery_seconds.observe(waited, exemplar)
        else:
            log.warning(
                "inbox.message",
                outcome=outcome or "refused",
                reason=item.reason_code,
                detail=item.detail,
            )
            self.metrics.handled.labels("refused", item.reason_code).inc()
        if isinstance(item, Delivery):
            self._release(item, "delivered", None)
        else:
            self._release(item, "refused", item.reason_code)

    def _abandon(self, item: Item, outcome: str = "handler_failed") -> None:
        if outcome == "handler_failed":
            log.error("inbox.message", outcome=outcome)
        else:
            log.warning("inbox.message", outcome=outcome)
        self._release(item, outcome, outcome)

    async def _commit_done(self, only: set[TopicPartition] | None = None) -> None:
        todo = {
            tp: off
            for tp, off in self._done.items()
            if self._committed.get(tp) != off and (only is None or tp in only)
        }
        if todo:
            await self._consumer.commit(todo)
            self._committed.update(todo)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        # Commit what was handled before another member takes the partitions over; records
        # fetched but not handed out will be fetched again by whoever gets them.
        await self._commit_done(only=revoked)
        self._buffer = deque(r for r in self._buffer if _tp(r) not in revoked)
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._from_beginning and not self._rewound:
            self._rewound = True
            await self._consumer.seek_to_beginning(*assigned)


def _tp(record: ConsumerRecord[bytes, bytes]) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _deliver_span(
    item: Item,
    group: str,
    outcome: str,
    error: str | None,
    context: trace.TraceContext,
    parent_id: str,
    started_ns: int,
) -> trace.Span:
    """An inbox record's handling as a span, child of the router's: verified, handed to the
    agency's handler (its 01 answer a child of this span), ended when the handler returned.
    `outcome` is delivered, refused, handler_failed or stopped, never the handler's own text."""
    attributes: dict[str, trace.AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": item.topic,
        "messaging.destination.partition.id": str(item.partition),
        "messaging.kafka.offset": item.offset,
        "messaging.consumer.group.name": group,
        "lienthong.outcome": outcome,
    }
    if isinstance(item, Delivery):
        attributes["messaging.message.id"] = item.envelope.message_id
        attributes["lienthong.sender"] = item.envelope.sender
    elif item.sender_verified and item.sender:
        attributes["lienthong.sender"] = item.sender
    return trace.Span(
        "deliver",
        trace.CONSUMER,
        context,
        parent_id,
        started_ns,
        time.time_ns(),
        attributes,
        error=error,
    )


def _context(item: Item) -> dict[str, Any]:
    if isinstance(item, Delivery):
        env = item.envelope
        ids: dict[str, str | None] = {
            "message_id": env.message_id,
            "document_id": env.document_id,
            "sender": env.sender,
        }
    else:
        ids = {"message_id": item.message_id, "document_id": item.document_id}
        ids["sender"] = item.sender
    where = {"topic": item.topic, "partition": item.partition, "offset": item.offset}
    return {**where, **ids, **trace_fields(item.trace)}
