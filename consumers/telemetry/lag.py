"""Consumer lag per group and partition: the partition's end minus what the service has done.

The end is the last stable offset (every consumer here reads read_committed), the position is
the consumer's: the offset of the next record it will read. A transactional producer writes a
commit marker after each transaction's records; the marker takes an offset but is no record,
so "end minus the next offset after the last record handled" stays at one per partition for
ever once all is handled (the archive gauge sat at 12-13 with everything archived). The
consumer's position moves past markers as it reads them, so end minus position is 0 when
caught up. Records handed out but not yet finished (the batch the archiver is writing, the
subscriber's buffer) are added by the caller as `pending`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry, Gauge

LAG_METRIC = "lienthong_consumer_lag"
# A position not known at once (a seek to the beginning in flight) is skipped this time.
POSITION_WAIT_S = 0.2


def lag_gauge(registry: CollectorRegistry) -> Gauge:
    """The lag gauge on a service's registry (its metrics class makes it, once)."""
    return Gauge(
        LAG_METRIC,
        "Offsets after the consumer's position not yet handled (0 when caught up)",
        ["group", "topic", "partition"],
        registry=registry,
    )


class ConsumerLag:
    """One consumer's lag, observed by its service loop between batches."""

    def __init__(
        self,
        gauge: Gauge,
        group: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.gauge = gauge
        self.group = group
        self.clock = clock
        self.wall = wall
        self.total = 0
        self.partitions: dict[TopicPartition, int] = {}
        self.observed_at: float | None = None  # clock() of the last observation
        self.answered_at: float | None = None  # wall() of the newest fetch answer seen

    async def observe(
        self,
        consumer: AIOKafkaConsumer,
        pending: Mapping[TopicPartition, int] | None = None,
    ) -> int:
        """Set the gauge for every assigned partition; the total. A partition whose end is not
        known yet (no fetch answered) is left out until it is."""
        assigned = set(consumer.assignment())
        positions = await self._positions(consumer, assigned)
        lags: dict[TopicPartition, int] = {}
        newest_answer = None
        for tp in assigned:
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:  # read_uncommitted consumers report -1
                end = consumer.highwater(tp)
            position = positions.get(tp)
            if end is None or position is None:
                continue
            lags[tp] = max(0, end - position) + (pending or {}).get(tp, 0)
            polled = consumer.last_poll_timestamp(tp)
            if polled is not None and (newest_answer is None or polled > newest_answer):
                newest_answer = polled
        self.record(lags)
        if newest_answer is not None:
            self.answered_at = newest_answer / 1000
        return self.total

    def record(self, lags: Mapping[TopicPartition, int]) -> None:
        """Set the gauge to these lags; series of partitions no longer here are removed."""
        for tp in set(self.partitions) - set(lags):
            try:
                self.gauge.remove(self.group, tp.topic, str(tp.partition))
            except KeyError:
                pass
        for tp, lag in lags.items():
            self.gauge.labels(self.group, tp.topic, str(tp.partition)).set(lag)
        self.partitions = dict(lags)
        self.total = sum(lags.values())
        self.observed_at = self.clock()

    def forget(self) -> None:
        """The consumer stopped: its series go (another instance reports those partitions)."""
        self.record({})

    def broker_silent_for(self) -> float | None:
        """Seconds since the broker last answered a fetch of an assigned partition; None when
        no partition has been fetched (nothing assigned, or not started)."""
        if self.answered_at is None or not self.partitions:
            return None
        return max(0.0, self.wall() - self.answered_at)

    @staticmethod
    async def _positions(
        consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        async def one(tp: TopicPartition) -> tuple[TopicPartition, int | None]:
            try:
                return tp, await asyncio.wait_for(consumer.position(tp), POSITION_WAIT_S)
            except (TimeoutError, IllegalStateError):
                return tp, None

        found = await asyncio.gather(*(one(tp) for tp in assigned))
        return {tp: pos for tp, pos in found if pos is not None}
