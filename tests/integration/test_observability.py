"""Observability on the real broker and database: one trace id from the SDK's send to every
inbox copy, the dead letter and the subscriber's handler; lag gauges that reach 0 once all is
handled although transaction markers follow the records; latency histograms; the router's
/readyz and /metrics on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from consumers.inbox import Delivery, Refusal
from consumers.router import Router
from infra.compose.router import build_router, run_router
from infra.settings import Settings
from producers.sender import DocumentSender
from schemas import trace
from schemas.trace import TraceContext, parse_traceparent
from tests.conftest import BA_DINH, H26, HAI_BA_TRUNG
from tests.integration.test_archive import (  # noqa: F401 - fixtures
    archive_db,
    archive_pki,
    exchange,
    running_archiver,
    wait_for_records,
)
from tests.integration.test_router import creds
from tests.integration.test_subscribe import subscriber as inbox_subscriber
from tests.support import header, kafka_options, read_topic, seed_document


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


@contextlib.asynccontextmanager
async def served_router(settings: Settings, bootstrap: str, port: int) -> AsyncIterator[Router]:
    """The router as `lienthong route --metrics-port PORT` runs it (live trust, endpoints)."""
    router = build_router(settings, bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(run_router(settings, bootstrap, router, stop, metrics_port=port))
    try:
        ready = asyncio.create_task(router.ready.wait())
        await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        yield router
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def eventually(check, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


def lag_samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for metric in registry.collect()
        if metric.name == "lienthong_consumer_lag"
        for s in metric.samples
    }


async def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", **kafka_options()
    )
    await consumer.start()
    try:
        return await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


async def test_one_trace_from_send_to_inboxes_and_lags_reach_zero_after_markers(
    exchange: Settings,  # noqa: F811
    bootstrap: str,
    archive_pki: Path,  # noqa: F811
    archive_db: str,  # noqa: F811
) -> None:
    port = free_port()
    doc = seed_document(9101, [BA_DINH, HAI_BA_TRUNG])
    async with (
        served_router(exchange, bootstrap, port) as router,
        running_archiver(exchange, bootstrap, archive_db) as archiver,
    ):
        async with DocumentSender(
            bootstrap,
            credentials=creds(archive_pki, H26),
            topic=exchange.topic("submissions"),
            client_options=kafka_options(),
        ) as sender:
            receipt = await sender.send_document(doc)
        # A record the SDK did not write, with a forged traceparent: refused, dead-lettered,
        # and given a trace of its own rather than the forged one.
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_options())
        await producer.start()
        try:
            await producer.send_and_wait(
                exchange.topic("submissions"),
                b"not an envelope",
                key=b"x",
                headers=[("traceparent", b"00-FORGED-00f067aa0ba902b7-01")],
            )
        finally:
            await producer.stop()

        submitted = await read_topic(bootstrap, exchange.topic("submissions"), expect=2)
        ba_dinh = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1, settle_s=0)
        hai_ba_trung = await read_topic(
            bootstrap, exchange.inbox(HAI_BA_TRUNG), expect=1, settle_s=0
        )
        letters = await read_topic(bootstrap, exchange.topic("deadletter"), expect=1, settle_s=0)

        sent = parse_traceparent(
            header(next(r for r in submitted if r.key == doc.document_id.encode()), "traceparent")
        )
        assert sent is not None and sent.trace_id == receipt.trace_id
        for copy in (ba_dinh[0], hai_ba_trung[0]):
            routed = parse_traceparent(header(copy, "traceparent"))
            assert routed is not None and routed.trace_id == receipt.trace_id
            assert routed.span_id != sent.span_id  # the router's span, child of the send
        letter = parse_traceparent(header(letters[0], "traceparent"))
        assert letter is not None and letter.trace_id not in (receipt.trace_id, "forged")

        # submission, two deliveries, the garbage submission and its dead letter
        assert await wait_for_records(archive_db, 5) == 5

        # The router wrote each inbox in a transaction: a commit marker follows the record, so
        # the end offset is the record's offset + 2. The archiver stored "next = offset + 1";
        # its lag must nonetheless be 0 (it sat at one per partition before).
        inbox_tp = TopicPartition(ba_dinh[0].topic, ba_dinh[0].partition)
        end = (await end_offsets(bootstrap, [inbox_tp]))[inbox_tp]
        assert end == ba_dinh[0].offset + 2
        assert archiver.offsets[(inbox_tp.topic, inbox_tp.partition)] == end - 1
        registry = archiver.metrics.registry
        await eventually(lambda: registry.get_sample_value("lienthong_archive_lag") == 0)
        lags = lag_samples(registry)
        assert lags[(inbox_tp.topic, str(inbox_tp.partition))] == 0
        assert set(lags.values()) == {0.0}
        delays = registry.get_sample_value(
            "lienthong_archive_delay_seconds_count", {"kind": "delivery"}
        )
        assert delays == 2

        # The router: lag 0, one routed and one refused in its histogram, ready on /readyz.
        await eventually(lambda: router.consumer_lag.total == 0 and router.consumer_lag.partitions)
        rr = router.metrics.registry
        assert rr.get_sample_value("lienthong_router_route_seconds_count", {"outcome": "routed"})
        assert rr.get_sample_value("lienthong_router_route_seconds_count", {"outcome": "rejected"})
        status, body = await http_get(port, "/readyz")
        assert status == 200, body
        assert "ok assigned" in body and "ok certificates" in body
        status, body = await http_get(port, "/metrics")
        assert status == 200
        assert f'lienthong_consumer_lag{{group="{exchange.topic("router")}"' in body
        assert 'lienthong_ready{service="router"} 1.0' in body
        assert (await http_get(port, "/nope"))[0] == 404

    # The subscriber of BA_DINH: its handler runs inside the delivery's trace (what it sends
    # meanwhile continues it), and its lag is 0 past the marker.
    seen: list[TraceContext | None] = []

    async def on_delivery(delivery: Delivery) -> str:
        seen.append(trace.current.get())
        return "handled"

    async def on_refusal(refusal: Refusal) -> str:
        raise AssertionError(refusal)

    subscriber = inbox_subscriber(exchange, bootstrap, exchange.topic(f"subscriber.{BA_DINH}"))
    observed: list[dict[TopicPartition, int]] = []
    record = subscriber.consumer_lag.record

    def spy(lags):  # type: ignore[no-untyped-def]
        record(lags)
        observed.append(dict(lags))

    subscriber.consumer_lag.record = spy  # type: ignore[method-assign]
    assert await subscriber.run(on_delivery, on_refusal) == 1
    assert len(seen) == 1 and seen[0] is not None and seen[0].trace_id == receipt.trace_id
    sr = subscriber.metrics.registry
    assert sr.get_sample_value("lienthong_inbox_delivery_seconds_count") == 1
    assert sr.get_sample_value(
        "lienthong_inbox_handled_total", {"outcome": "delivered", "reason": ""}
    )
    # Fetched and not yet handled, the record counted; at the idle polls after it, past the
    # router's commit marker, 0; then the series went with the consumer.
    assert {inbox_tp: 1} in observed
    assert observed[-2] == {inbox_tp: 0} and observed[-1] == {}
