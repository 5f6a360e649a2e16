"""The witness's loop: the checkpoints topic from its beginning, each head judged by Witness,
each cosignature published on the cosignatures topic; refusals logged with their evidence and
written beside the state file (conflict-<size>.txt)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from consumers.telemetry import ConsumerLag, lag_gauge
from consumers.witness.core import Refused, Witness

log = structlog.get_logger()


class WitnessMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cosigned = Counter("lienthong_witness_cosigned", "Checkpoints cosigned", registry=r)
        self.refused = Counter(
            "lienthong_witness_refused",
            "Checkpoints refused (inconsistent, bad signature, rolled back)",
            ["reason"],
            registry=r,
        )
        self.consumer_lag = lag_gauge(r)


def _checkpoint_of(headers: object) -> bytes | None:
    for key, value in headers or ():  # type: ignore[attr-defined]
        if key == "lt-checkpoint":
            return bytes(value)
    return None


async def run_witness(
    witness: Witness,
    bootstrap: str,
    checkpoints_topic: str,
    cosignatures_topic: str,
    stop: asyncio.Event,
    *,
    idle: asyncio.Event | None = None,
    client_options: Mapping[str, Any] | None = None,
    metrics: WitnessMetrics | None = None,
    lag: ConsumerLag | None = None,
) -> None:
    """Until `stop`: cosign every new consistent head. `idle` is set whenever the witness has
    caught up with the topic (tests wait on it)."""
    options = dict(client_options or {})
    metrics = metrics or WitnessMetrics()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options
    )
    await consumer.start()
    await producer.start()
    try:
        tp = TopicPartition(checkpoints_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300, max_records=100)
            if lag is not None:
                pending = {tp: len(records) for tp, records in batch.items()}
                await lag.observe(consumer, pending)
            if not batch and idle is not None:
                end = (await consumer.end_offsets([tp]))[tp]
                if await consumer.position(tp) >= end:
                    idle.set()  # every checkpoint published so far was judged
            for records in batch.values():
                for record in records:
                    data = _checkpoint_of(record.headers)
                    if data is None:
                        log.warning("witness.no_checkpoint", offset=record.offset)
                        continue
                    await _judge(witness, producer, cosignatures_topic, data, metrics)
    finally:
        if lag is not None:
            lag.forget()
        await consumer.stop()
        await producer.stop()


async def _judge(
    witness: Witness,
    producer: AIOKafkaProducer,
    topic: str,
    data: bytes,
    metrics: WitnessMetrics,
) -> None:
    try:
        cosigned = await witness.observe(data)
    except Refused as refused:
        log.error("witness.refused", reason=refused.reason, detail=refused.detail)
        metrics.refused.labels(refused.reason).inc()
        if refused.evidence:
            path = _conflict_path(witness.state_path, refused)
            path.write_text("\n".join(refused.evidence), encoding="utf-8")
        return
    if cosigned is None:
        return
    state = witness.state
    assert state is not None
    await producer.send_and_wait(
        topic, cosigned.encode(), key=f"{state.origin}/{state.size}".encode()
    )
    metrics.cosigned.inc()
    log.info("witness.cosigned", origin=state.origin, size=state.size, root=state.root.hex())


def _conflict_path(state_path: Path, refused: Refused) -> Path:
    digest = hashlib.sha256("\n".join(refused.evidence).encode()).hexdigest()[:16]
    return state_path.with_name(f"conflict-{refused.reason.lower()}-{digest}.txt")
