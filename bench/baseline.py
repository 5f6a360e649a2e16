"""Raw-Kafka baseline: produce -> consume-and-reproduce transactionally -> consume, no signing,
no Avro, no routing: the same hops, sizes and durability as sender -> router -> inbox.

The relay runs in its own process (`python -m bench.baseline relay ...`), as the router does,
so both sides of the ratio have the same topology: a producing and consuming bench process plus
one middle process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import struct
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import (
    FETCH_BYTES,
    BenchRun,
    CpuMeter,
    ServiceProcess,
    latency_summary,
    peak_rss_mb,
)
from infra.settings import load_settings

HEADER = struct.Struct("!qd")  # index (-1 for warm-up), perf_counter at send
WARMUP = 5


def sink_consumer(
    bootstrap: str, topic: str, client_options: Mapping[str, Any] | None = None
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=FETCH_BYTES,
        **(client_options or {}),
    )


def durable_producer(
    bootstrap: str, client_options: Mapping[str, Any] | None = None
) -> AIOKafkaProducer:
    # What DocumentSender uses: acks=all, idempotent.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=FETCH_BYTES,
        **(client_options or {}),
    )


async def relay(
    bootstrap: str,
    source: str,
    target: str,
    group: str,
    stop: asyncio.Event,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """The router's Kafka shape without its work: read_committed batches of at most 200, each one
    transaction holding the copies and the consumed offsets; linger 5 ms, as the router."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{group}.relay",
        max_request_size=FETCH_BYTES,
        linger_ms=5,
        **(client_options or {}),
    )
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=FETCH_BYTES,
        **(client_options or {}),
    )
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300, max_records=200)
            if not batch:
                continue
            async with producer.transaction():
                pending = []
                offsets = {}
                for tp, records in batch.items():
                    for r in records:
                        pending.append(
                            await producer.send(target, r.value, key=r.key, headers=r.headers)
                        )
                    offsets[tp] = records[-1].offset + 1
                await asyncio.gather(*pending)
                await producer.send_offsets_to_transaction(offsets, group)
    finally:
        await consumer.stop()
        await producer.stop()


def start_relay(run: BenchRun, source: str, target: str, group: str) -> ServiceProcess:
    args = ["-m", "bench.baseline", "relay", run.bootstrap, source, target, group]
    return ServiceProcess("relay", args, run.kafka_env(), run.work)


async def drive(
    send_one: Callable[[int], Coroutine[Any, Any, None]],
    count: int,
    concurrency: int,
    rate: float | None,
) -> float:
    """Send `count` items with `concurrency` in flight, or paced at `rate` per second (each send
    launched at its slot whatever the others are doing). Returns the perf_counter of the first."""
    started = time.perf_counter()
    if rate:
        tasks: list[asyncio.Task[None]] = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send_one(i)))
        await asyncio.gather(*tasks)
        return started
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await send_one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started


async def measure(
    run: BenchRun,
    *,
    size: int,
    count: int,
    concurrency: int,
    rate: float | None = None,
    tag: str = "",
) -> dict[str, Any]:
    """One repeat: fresh topics, a relay process, `count` payloads of `size` bytes."""
    base = f"{run.settings.topic_prefix}baseline.{tag}{size}.{time.monotonic_ns() % 10**9}"
    source, target = f"{base}.a", f"{base}.b"
    # As submissions (12 partitions) and an inbox (1 partition).
    await run.make_topics({source: 12, target: 1})
    relay_proc = start_relay(run, source, target, f"{base}.group")
    producer = durable_producer(run.bootstrap, run.kafka_options)
    sink = sink_consumer(run.bootstrap, target, run.kafka_options)
    await producer.start()
    await sink.start()
    filler = os.urandom(max(0, size - HEADER.size))
    received: dict[int, float] = {}
    arrived = asyncio.Event()
    want = {"n": WARMUP}

    async def consume() -> None:
        while True:
            batch = await sink.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    index, sent = HEADER.unpack_from(r.value)
                    received[index] = (now - sent) * 1000
            if len(received) >= want["n"]:
                arrived.set()

    async def send(index: int) -> None:
        value = HEADER.pack(index, time.perf_counter()) + filler
        await producer.send_and_wait(source, value, key=f"doc-{index}".encode())

    consumer_task = asyncio.create_task(consume())
    try:
        # Warm-up: partitions assigned, relay transaction initialised, connections open.
        for i in range(WARMUP):
            await send(-1 - i)
        await asyncio.wait_for(arrived.wait(), timeout=60)
        relay_proc.check_alive()
        received.clear()
        arrived.clear()
        want["n"] = count
        meter = CpuMeter({"bench": "self", "relay": relay_proc.pid, **run.meter_pids})
        first = await drive(send, count, concurrency, rate)
        await asyncio.wait_for(arrived.wait(), timeout=max(60.0, count / 20))
        last = time.perf_counter()
        latencies = [received[i] for i in range(count)]
        elapsed = last - first
        return {
            "documents": count,
            "bytes": size,
            "seconds": round(elapsed, 3),
            "docs_per_s": round(count / elapsed, 1),
            **latency_summary(latencies),
            **meter.figures(count),
            "relay_peak_rss_mb": relay_proc.memory()["peak_rss_mb"] or 0.0,
            "bench_peak_rss_mb": peak_rss_mb() or 0.0,
        }
    finally:
        consumer_task.cancel()
        await asyncio.gather(consumer_task, return_exceptions=True)
        await sink.stop()
        await producer.stop()
        await relay_proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("relay", help="consume SOURCE, reproduce to TARGET transactionally")
    for name in ("bootstrap", "source", "target", "group"):
        r.add_argument(name)
    args = parser.parse_args()

    async def run_relay() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The relay runs as a child process: its TLS / SASL come from the same environment.
        options = load_settings().kafka_options()
        await relay(args.bootstrap, args.source, args.target, args.group, stop, options)

    asyncio.run(run_relay())


if __name__ == "__main__":
    main()
