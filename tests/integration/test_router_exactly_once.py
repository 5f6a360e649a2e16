"""Exactly once through crashes and rebalances: SIGKILL mid-stream, two instances, SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.router.service import Router
from infra.settings import Settings
from schemas.codec import decode_envelope
from schemas.envelope import Envelope, SignerRole
from signing.seal import load_credential, seal
from tests.conftest import BA_DINH, H26, HAI_BA_TRUNG, PKI_AGENCIES
from tests.integration.test_router import running_router
from tests.support import ensure_exchange_topics, publish, read_topic, seed_document, utcnow

RECIPIENTS = (BA_DINH, HAI_BA_TRUNG)


@pytest.fixture
async def exchange(settings: Settings, bootstrap: str, pki_dir: Path, unique: str) -> Settings:
    private = dataclasses.replace(settings, topic_prefix=f"eo{unique}.")
    await ensure_exchange_topics(private, bootstrap, [*PKI_AGENCIES, settings.platform_agency])
    return private


def _documents(pki_dir: Path, first: int, count: int) -> list[Envelope]:
    cred = [load_credential(pki_dir, H26, SignerRole.AGENCY)]
    now = utcnow()
    return [
        seal(seed_document(first + i, RECIPIENTS), credentials=cred, at=now) for i in range(count)
    ]


def _router_process(
    service_env: dict[str, str], prefix: str, log: Path, instance: str = "0"
) -> subprocess.Popen[bytes]:
    env = {**service_env, "LIENTHONG_TOPIC_PREFIX": prefix}
    # A file, not a pipe: one log line per message would fill a pipe nobody reads and block it.
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "--log-json", "route", "--instance", instance],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


async def _count_ids(
    bootstrap: str, topic: str, expect: int, timeout_s: float = 90.0
) -> collections.Counter[str]:
    records = await read_topic(bootstrap, topic, expect=expect, timeout_s=timeout_s, settle_s=2.0)
    return collections.Counter(decode_envelope(r.value).document_id for r in records)


async def _wait_for(bootstrap: str, topic: str, at_least: int, timeout_s: float = 60.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen = 0
    while loop.time() < deadline:
        seen = len(await read_topic(bootstrap, topic, expect=at_least, timeout_s=2, settle_s=0))
        if seen >= at_least:
            return seen
    raise AssertionError(f"only {seen} records on {topic} after {timeout_s}s")


async def test_sigkill_mid_stream_then_restart_delivers_every_document_exactly_once(
    exchange: Settings,
    bootstrap: str,
    pki_dir: Path,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    total = 400
    envelopes = _documents(pki_dir, 10_000, total)
    await publish(bootstrap, exchange.topic("submissions"), envelopes)
    first = _router_process(service_env, exchange.topic_prefix, tmp_path / "first.log")
    try:
        seen = await _wait_for(bootstrap, exchange.inbox(BA_DINH), at_least=40)
        assert seen < total, "the router finished before it could be killed: use more documents"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    second = _router_process(service_env, exchange.topic_prefix, tmp_path / "second.log")
    try:
        for recipient in RECIPIENTS:
            counts = await _count_ids(bootstrap, exchange.inbox(recipient), expect=total)
            assert len(counts) == total, f"{recipient}: {total - len(counts)} documents missing"
            duplicated = {doc: n for doc, n in counts.items() if n > 1}
            assert not duplicated, f"{recipient}: delivered more than once: {duplicated}"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)


def _routed(router: Router) -> float:
    value = router.metrics.registry.get_sample_value(
        "lienthong_router_routed_total", {"payload_type": "OFFICIAL_DOCUMENT"}
    )
    return value or 0.0


async def test_two_routers_share_the_work_through_a_rebalance_exactly_once(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    total = 300
    envelopes = _documents(pki_dir, 20_000, total)
    async with running_router(exchange, bootstrap, instance="0") as one:
        await publish(bootstrap, exchange.topic("submissions"), envelopes[: total // 2])
        # The second instance joins mid-stream: partitions move while the first is routing.
        async with running_router(exchange, bootstrap, instance="1") as two:
            await publish(bootstrap, exchange.topic("submissions"), envelopes[total // 2 :])
            counts = await _count_ids(bootstrap, exchange.inbox(BA_DINH), expect=total)
            routed_by_two = _routed(two)
        routed_by_one = _routed(one)
    assert len(counts) == total and set(counts.values()) == {1}
    assert routed_by_one > 0 and routed_by_two > 0
    assert routed_by_one + routed_by_two == total


async def test_sigterm_finishes_the_batch_in_hand_and_stops_cleanly(
    exchange: Settings,
    bootstrap: str,
    pki_dir: Path,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    total = 200
    await publish(bootstrap, exchange.topic("submissions"), _documents(pki_dir, 30_000, total))
    log = tmp_path / "router.log"
    router = _router_process(service_env, exchange.topic_prefix, log)
    await _wait_for(bootstrap, exchange.inbox(BA_DINH), at_least=20)
    router.send_signal(signal.SIGTERM)
    router.wait(timeout=30)
    assert router.returncode == 0, log.read_text()[-2000:]
    assert "router.stopped" in log.read_text()
    # Whatever it routed was committed: a new instance completes the rest, once each.
    async with running_router(exchange, bootstrap):
        counts = await _count_ids(bootstrap, exchange.inbox(BA_DINH), expect=total)
    assert len(counts) == total and set(counts.values()) == {1}
