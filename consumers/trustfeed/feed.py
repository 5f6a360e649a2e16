"""TrustFeed: follows the crl topic, applies each CRL a configured CA signed (and only a newer
one), and hands the resulting TrustStore to the process that owns it; staleness moves with the
clock, so the store is also rebuilt when a CRL goes past its grace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography import x509

from consumers.trustfeed.metrics import TrustMetrics
from consumers.trustfeed.record import issuer_chain_of
from signing.crl import (
    CrlRefused,
    CrlSet,
    Freshness,
    freshness,
    load_issuer_chain,
    seconds_until_next_update,
    verify_crl,
)
from signing.trust import TrustStore

log = structlog.get_logger()

FETCH_BYTES = 9 * 1024 * 1024  # above the topic's max.message.bytes (8 MiB)
TOPIC_WAIT_S = 5.0
STALE_WARN_EVERY = timedelta(minutes=10)

OnUpdate = Callable[[TrustStore], None]


class TrustFeed:
    """The live trust store of one process.

    `offer` and `tick` are the decisions (verify, order, staleness) with the time given; `run`
    is the Kafka loop around them: no consumer group, every partition from the beginning, then
    follow. `ready` is set once the topic was read up to where it ended at start (or found
    missing), so an owner can wait for it before serving.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        base: TrustStore,
        *,
        clock: Callable[[], datetime],
        grace: timedelta,
        on_update: OnUpdate | Iterable[OnUpdate] = (),
        metrics: TrustMetrics | None = None,
        tick_seconds: float = 5.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_options = dict(client_options or {})  # TLS / SASL (signing.transport)
        self.topic = topic
        self.clock = clock
        self.grace = grace
        self.metrics = metrics or TrustMetrics()
        self.tick_seconds = tick_seconds
        self.owners: list[OnUpdate] = [on_update] if callable(on_update) else list(on_update)
        self.crls = CrlSet.of(base)
        self.store = base
        self.ready = asyncio.Event()
        self._unknown: frozenset[x509.Name] = base.revocation_unknown
        self._warned: dict[x509.Name, tuple[Freshness, datetime]] = {}

    # --- decisions (no Kafka) --------------------------------------------------------------

    def offer(
        self, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None, *, at: datetime
    ) -> bool:
        """Verify one record of the topic and apply it if it is a newer CRL; whether applied.
        A refused record is logged and counted, never applied."""
        try:
            chain = load_issuer_chain(issuer_chain_of(headers))
            crl = verify_crl(value or b"", self.store, at=at, issuer_chain=chain)
        except CrlRefused as exc:
            log.warning("trustfeed.crl_refused", topic=self.topic, detail=str(exc))
            self.metrics.crl_refused.labels("untrusted").inc()
            return False
        self.crls, applied = self.crls.offer(crl)
        current = self.crls.current(crl.issuer)
        if not applied:
            log.info(
                "trustfeed.crl_not_newer",
                issuer=crl.issuer_label,
                number=crl.number,
                this_update=crl.this_update.isoformat(),
                held_number=current.number if current else None,
            )
            self.metrics.crl_refused.labels("not_newer").inc()
            return False
        log.info(
            "trustfeed.crl_applied",
            issuer=crl.issuer_label,
            number=crl.number,
            this_update=crl.this_update.isoformat(),
            next_update=crl.next_update.isoformat() if crl.next_update else None,
            revoked=len(crl.crl),
        )
        self.metrics.crl_applied.labels(crl.issuer_label).inc()
        self._publish(at)
        self._alarms(at)
        return True

    def tick(self, at: datetime) -> bool:
        """Gauges and alarms at `at`; a new store when an issuer crossed its grace (either way).
        Whether the store changed."""
        changed = self.crls.unknown_at(at, self.grace) != self._unknown
        if changed:
            self._publish(at)
        self._alarms(at)
        return changed

    def _publish(self, at: datetime) -> None:
        self.store = self.crls.trust_at(at, self.grace)
        if self.store.revocation_unknown != self._unknown:
            log.warning(
                "trustfeed.revocation_unknown",
                issuers=sorted(n.rfc4514_string() for n in self.store.revocation_unknown),
            )
        self._unknown = self.store.revocation_unknown
        for owner in self.owners:
            owner(self.store)

    def _alarms(self, at: datetime) -> None:
        for issuer, crl in self.crls.by_issuer.items():
            label = crl.issuer_label
            seconds = seconds_until_next_update(crl, at)
            if seconds is not None:
                self.metrics.crl_next_update.labels(label).set(seconds)
            state = freshness(crl, at, self.grace)
            self.metrics.crl_stale.labels(label).set(
                {Freshness.FRESH: 0, Freshness.STALE: 1, Freshness.EXPIRED: 2}[state]
            )
            last = self._warned.get(issuer)
            if state is Freshness.FRESH:
                self._warned.pop(issuer, None)
                continue
            if last is not None and last[0] is state and at - last[1] < STALE_WARN_EVERY:
                continue
            self._warned[issuer] = (state, at)
            stale = state is Freshness.STALE
            event = "trustfeed.crl_stale" if stale else "trustfeed.crl_stale_fail_closed"
            (log.warning if stale else log.error)(
                event,
                issuer=label,
                number=crl.number,
                next_update=crl.next_update.isoformat() if crl.next_update else None,
                grace_s=self.grace.total_seconds(),
                detail="run `lienthong pki publish-crl` (or publish the CA's new CRL)",
            )

    # --- the Kafka loop --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # Staleness counts from the start: a CRL of trust.yaml may already be past its grace.
        self._publish(self.clock())
        self._alarms(self.clock())
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,  # every process reads the whole topic; nothing to commit
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=FETCH_BYTES,
            fetch_max_bytes=FETCH_BYTES,
            fetch_max_wait_ms=300,
            **self.client_options,
        )
        # Without a group, a subscription is assigned every partition of the topic, at the
        # earliest offset (nothing is committed), and follows the topic once it exists.
        consumer.subscribe([self.topic])
        await consumer.start()
        try:
            partitions = await self._assigned(consumer, stop)
            if not partitions:
                return
            ends = await consumer.end_offsets(partitions)
            loop = asyncio.get_running_loop()
            next_tick = loop.time() + self.tick_seconds
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    for record in records:
                        self.offer(record.value, record.headers, at=self.clock())
                if not self.ready.is_set() and all(
                    [await consumer.position(tp) >= ends[tp] for tp in partitions]
                ):
                    log.info(
                        "trustfeed.caught_up", topic=self.topic, issuers=len(self.crls.by_issuer)
                    )
                    self.ready.set()
                if loop.time() >= next_tick:
                    self.tick(self.clock())
                    next_tick = loop.time() + self.tick_seconds
        finally:
            self.ready.set()  # nobody waits forever on a feed that stopped
            await consumer.stop()

    async def _assigned(
        self, consumer: AIOKafkaConsumer, stop: asyncio.Event
    ) -> list[TopicPartition]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        warned = False
        while not stop.is_set():
            partitions = sorted(consumer.assignment())
            if partitions:
                return partitions
            if not warned and loop.time() - started > TOPIC_WAIT_S:
                if self.topic not in await consumer.topics():
                    # Serve with trust.yaml's CRLs meanwhile, loudly: revocation is not live.
                    log.error(
                        "trustfeed.no_topic",
                        topic=self.topic,
                        detail="run `lienthong topics ensure`; revocations reach this process "
                        "only at restart until then",
                    )
                    self.ready.set()
                warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
            self.tick(self.clock())
        return []
