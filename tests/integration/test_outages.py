"""The services ride out a broker outage: started while it is down they wait for it, killed and
back under them they go on without losing or repeating anything, and SIGTERM (the stop event)
ends them within seconds whatever the broker does.

A private broker of this module (its own state directory, started through infra.services like
the session's) is killed with SIGKILL and started again on its remembered port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from consumers.inbox import Delivery, InboxSubscriber, Refusal
from infra.compose.archive import build_archiver
from infra.compose.router import build_router
from infra.context import agency_directory, trust_store
from infra.services import cluster as cluster_service
from infra.services import kafka as kafka_service
from infra.services import procs
from infra.settings import Settings
from signing.seal import seal
from tests.conftest import BA_DINH, H26, PKI_AGENCIES
from tests.integration.test_archive import archive_db, archive_pki, wait_for_records
from tests.integration.test_archive_exactly_once import assert_exactly_once, fill
from tests.integration.test_router import creds, running_router
from tests.support import (
    ensure_exchange_topics,
    kafka_options,
    publish,
    read_topic,
    seed_document,
    utcnow,
)

__all__ = ["archive_db", "archive_pki"]  # fixtures used by name below

PROMPT_S = 8.0  # SIGTERM to exit, at most, whatever the broker does


@dataclass
class PrivateBroker:
    """A broker of this module's own, to kill: plaintext beside the single test broker, or one
    TLS node with the session's transport CA (so the session's client identity works) beside the
    secure cluster."""

    settings: Settings
    bootstrap: str
    secure: bool

    def pid(self) -> int | None:
        if self.secure:
            nodes = cluster_service.status(self.settings, check=False).nodes
            return nodes[0].pid if nodes else None
        return kafka_service.status(self.settings).pid

    def kill(self) -> None:
        pid = self.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while procs.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.pid_alive(pid)

    def start(self) -> None:
        # Connections of the killed broker sit in TIME_WAIT: the port must be reused all the same.
        status = _start(self.settings, self.secure)
        assert status == self.bootstrap

    def ensure_running(self) -> None:
        pid = self.pid()
        if pid is None or not procs.pid_alive(pid):
            self.start()


def _start(settings: Settings, secure: bool) -> str | None:
    if secure:
        return cluster_service.start(settings, brokers=1, secure=True).bootstrap
    return kafka_service.start(settings).bootstrap


@pytest.fixture(scope="module")
def broker(settings: Settings) -> Iterator[PrivateBroker]:
    home = Path(tempfile.mkdtemp(prefix="lienthong-outage-"))
    home.chmod(0o755)
    private = dataclasses.replace(
        settings,
        home=home,
        external_kafka=None,
        kafka_port=None,
        kafka_controller_port=None,
        pki_dir_override=settings.pki_dir,
    )
    secure = not settings.kafka_security.is_plaintext
    bootstrap = _start(private, secure)
    assert bootstrap
    try:
        yield PrivateBroker(private, bootstrap, secure)
    finally:
        cluster_service.stop(private) if secure else kafka_service.stop(private)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def outage(
    broker: PrivateBroker, pki_dir: Path, unique: str
) -> AsyncIterator[tuple[PrivateBroker, Settings]]:
    """The private broker, running, with this test's topics; running again after the test."""
    await asyncio.to_thread(broker.ensure_running)
    private = dataclasses.replace(broker.settings, topic_prefix=f"o{unique}.")
    await ensure_exchange_topics(
        private, broker.bootstrap, [*PKI_AGENCIES, private.platform_agency]
    )
    try:
        yield broker, private
    finally:
        await asyncio.to_thread(broker.ensure_running)


async def _stopped_within(task: asyncio.Task[object], stop: asyncio.Event) -> float:
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(asyncio.shield(task), timeout=60)
    return time.monotonic() - started


async def test_the_router_stops_within_seconds_when_the_broker_dies_mid_transaction(
    outage: tuple[PrivateBroker, Settings], pki_dir: Path
) -> None:
    broker, exchange = outage
    router = build_router(exchange, broker.bootstrap)
    pid = await asyncio.to_thread(broker.pid)
    assert pid is not None
    killed = asyncio.Event()

    def clock() -> datetime:
        # Read once per record, inside the transaction: the broker dies under the first one.
        if not killed.is_set():
            os.kill(pid, signal.SIGKILL)
            killed.set()
        return utcnow()

    stop = asyncio.Event()
    task = asyncio.create_task(router.run(stop))
    await asyncio.wait_for(router.ready.wait(), timeout=60)
    router.clock = clock
    envelope = seal(seed_document(9100, [BA_DINH]), credentials=creds(pki_dir, H26), at=utcnow())
    await publish(broker.bootstrap, exchange.topic("submissions"), [envelope])
    await asyncio.wait_for(killed.wait(), timeout=60)
    await asyncio.sleep(3)  # the transaction's requests wait on a broker that is gone
    assert not task.done(), task.exception()
    assert await _stopped_within(task, stop) < PROMPT_S
    task.result()
    # Nothing of the abandoned transaction is visible, and the next router delivers it once.
    await asyncio.to_thread(broker.start)
    async with running_router(exchange, broker.bootstrap):
        delivered = await read_topic(broker.bootstrap, exchange.inbox(BA_DINH), expect=1)
    assert [r.key for r in delivered] == [envelope.document_id.encode()]


async def test_the_router_started_while_the_broker_is_down_waits_then_routes(
    outage: tuple[PrivateBroker, Settings], pki_dir: Path
) -> None:
    broker, exchange = outage
    await asyncio.to_thread(broker.kill)
    router = build_router(exchange, broker.bootstrap)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(router.run(stop))
        try:
            await asyncio.sleep(3)
            assert not task.done()  # waiting, not crashed
            waits = [e for e in logs if e["event"] == "router.kafka_unavailable"]
            assert waits and all(e["log_level"] == "warning" for e in waits)
            delays = [e["retry_in_s"] for e in waits]
            assert delays == sorted(delays) and len(delays) < 10  # backing off, not spinning
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(router.ready.wait(), timeout=60)
            doc = seed_document(9101, [BA_DINH])
            await publish(
                broker.bootstrap,
                exchange.topic("submissions"),
                [seal(doc, credentials=creds(pki_dir, H26), at=utcnow())],
            )
            delivered = await read_topic(broker.bootstrap, exchange.inbox(BA_DINH), expect=1)
            assert [r.key for r in delivered] == [doc.document_id.encode()]
        finally:
            assert await _stopped_within(task, stop) < PROMPT_S
    task.result()


async def test_a_stop_while_the_broker_is_down_before_it_ever_answered(
    outage: tuple[PrivateBroker, Settings], archive_db: str, archive_pki: Path
) -> None:
    broker, exchange = outage
    await asyncio.to_thread(broker.kill)
    router = build_router(exchange, broker.bootstrap)
    archiver = build_archiver(exchange, broker.bootstrap, archive_db)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(router.run(stop)), asyncio.create_task(archiver.run(stop))]
    await asyncio.sleep(2)
    assert not any(t.done() for t in tasks)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert time.monotonic() - started < PROMPT_S


async def test_the_archiver_waits_for_the_broker_and_rides_out_its_crash_exactly_once(
    outage: tuple[PrivateBroker, Settings], archive_db: str, archive_pki: Path
) -> None:
    broker, exchange = outage
    total = 3000
    await fill(broker.bootstrap, exchange.topic("submissions"), total)
    await asyncio.to_thread(broker.kill)
    archiver = build_archiver(exchange, broker.bootstrap, archive_db, max_batch=50)
    archiver.config = dataclasses.replace(archiver.config, refresh_seconds=0.5)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(archiver.run(stop))
        try:
            await asyncio.sleep(3)
            assert not task.done()  # started while the broker is down: waiting
            assert any(e["event"] == "archive.kafka_unavailable" for e in logs)
            await asyncio.to_thread(broker.start)
            deadline = time.monotonic() + 90
            while archiver.size < 300 and time.monotonic() < deadline:
                assert not task.done()
                await asyncio.sleep(0.02)
            await asyncio.to_thread(broker.kill)  # mid-stream
            assert 0 < archiver.size < total
            await asyncio.sleep(4)  # longer than a refresh: list_topics fails meanwhile
            assert not task.done(), task.exception()
            await asyncio.to_thread(broker.start)
            assert await wait_for_records(archive_db, total, timeout_s=90) == total
        finally:
            assert await _stopped_within(task, stop) < PROMPT_S
    task.result()
    await assert_exactly_once(archive_db, total, archive_pki)


async def test_the_subscriber_stops_within_seconds_when_the_broker_dies_under_a_commit(
    outage: tuple[PrivateBroker, Settings], pki_dir: Path, unique: str
) -> None:
    broker, exchange = outage
    envelope = seal(seed_document(9102, [BA_DINH]), credentials=creds(pki_dir, H26), at=utcnow())
    await publish(broker.bootstrap, exchange.inbox(BA_DINH), [envelope])
    stop = asyncio.Event()
    subscriber = InboxSubscriber(
        broker.bootstrap,
        BA_DINH,
        topic=exchange.inbox(BA_DINH),
        group_id=f"outage-{unique}",
        trust=trust_store(exchange),
        agencies=agency_directory(exchange),
        clock=lambda: utcnow() + timedelta(seconds=1),
        stop=stop,
        client_options=kafka_options(),
    )
    handled: list[str] = []

    async def on_delivery(delivery: Delivery) -> str:
        # The broker dies while the record is handled: its commit finds no coordinator.
        await asyncio.to_thread(broker.kill)
        handled.append(delivery.envelope.document_id)
        return "handled"

    async def on_refusal(refusal: Refusal) -> str:
        raise AssertionError(refusal)

    task = asyncio.create_task(subscriber.run(on_delivery, on_refusal))
    deadline = time.monotonic() + 60
    while not handled and time.monotonic() < deadline:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.1)
    assert handled == [envelope.document_id]
    await asyncio.sleep(2)
    assert not task.done()  # waiting for the broker to take the commit
    assert await _stopped_within(task, stop) < PROMPT_S
    assert task.result() == 1
