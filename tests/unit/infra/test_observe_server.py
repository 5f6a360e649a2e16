"""The operators' endpoints on a real socket: /metrics, /healthz, /readyz, and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from structlog.testing import capture_logs

from infra.observe import Health, observability, serve


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), fields, body


def get(path: str, *, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


class Switch:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> tuple[bool, str]:
        return self.ok, "fine" if self.ok else "broker away"


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[int, Switch, CollectorRegistry]]:
    registry = CollectorRegistry()
    Counter("lienthong_test_things", "Things", registry=registry).inc(3)
    switch = Switch()
    health = Health("tester", {"broker": switch})
    health.register(registry)
    server = await serve("127.0.0.1", 0, registry, health)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, switch, registry
    finally:
        server.close()
        await server.wait_closed()


async def test_metrics_are_served_with_the_readiness_gauges(endpoint) -> None:
    port, switch, _ = endpoint
    status, fields, body = await request(port, get("/metrics"))
    assert status == 200 and fields["content-type"].startswith("text/plain")
    text = body.decode()
    assert "lienthong_test_things_total 3.0" in text
    assert 'lienthong_ready{service="tester"} 1.0' in text
    assert 'lienthong_readiness_check{check="broker",service="tester"} 1.0' in text
    switch.ok = False
    _, _, body = await request(port, get("/metrics?x=1"))
    assert 'lienthong_ready{service="tester"} 0.0' in body.decode()


async def test_openmetrics_when_asked_carries_exemplars(endpoint) -> None:
    port, _, registry = endpoint
    hist = Histogram("lienthong_test_seconds", "Seconds", buckets=(1.0,), registry=registry)
    hist.observe(0.5, {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
    accept = "Accept: application/openmetrics-text; version=1.0.0\r\n"
    status, fields, body = await request(port, get("/metrics", extra=accept))
    assert status == 200 and fields["content-type"].startswith("application/openmetrics-text")
    assert '# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.5' in body.decode()


async def test_healthz_answers_while_the_loop_runs(endpoint) -> None:
    port, switch, _ = endpoint
    switch.ok = False  # alive is not ready
    status, _, body = await request(port, get("/healthz"))
    assert (status, body) == (200, b"ok\n")


async def test_readyz_follows_the_checks(endpoint) -> None:
    port, switch, _ = endpoint
    status, _, body = await request(port, get("/readyz"))
    assert (status, body) == (200, b"ok broker: fine\n")
    switch.ok = False
    status, _, body = await request(port, get("/readyz"))
    assert (status, body) == (503, b"FAIL broker: broker away\n")


@pytest.mark.parametrize("path", ["/", "/metrics/", "/health", "/readyz/x", "//metrics", "*"])
async def test_other_paths_are_not_found(endpoint, path: str) -> None:
    port, _, _ = endpoint
    status, _, body = await request(port, get(path))
    assert (status, body) == (404, b"not found\n")


async def test_head_has_headers_and_no_body(endpoint) -> None:
    port, _, _ = endpoint
    status, fields, body = await request(port, get("/metrics", method="HEAD"))
    assert status == 200 and body == b"" and int(fields["content-length"]) > 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE"])
async def test_other_methods_are_refused(endpoint, method: str) -> None:
    port, _, _ = endpoint
    status, fields, _ = await request(port, get("/metrics", method=method))
    assert status == 405 and fields["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /metrics\r\n\r\n",  # no protocol
        b"GET /metrics SMTP/1.0\r\n\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",  # a head beyond the bound
    ],
)
async def test_malformed_requests_get_400(endpoint, raw: bytes) -> None:
    port, _, _ = endpoint
    status, _, _ = await request(port, raw)
    assert status == 400


async def test_a_client_that_sends_nothing_does_not_stop_the_others(endpoint) -> None:
    port, _, _ = endpoint
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)  # and says nothing
    status, _, _ = await request(port, get("/healthz"))
    assert status == 200
    writer.close()


async def test_a_check_that_raises_fails_readiness_with_its_error() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("no such attribute")

    health = Health("svc", {"odd": broken, "fine": lambda: (True, "yes")})
    results = {r.name: r for r in health.evaluate()}
    assert not results["odd"].ok and "RuntimeError: no such attribute" in results["odd"].detail
    assert results["fine"].ok


async def test_observability_off_without_a_port_and_a_taken_port_is_one_line() -> None:
    registry = CollectorRegistry()
    health = Health("svc")
    async with observability("127.0.0.1", 0, registry, health) as server:
        assert server is None
    async with observability("127.0.0.1", None, registry, health) as server:
        assert server is None
    holder = await serve("127.0.0.1", 0, registry, health)
    port = holder.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}.*--metrics"):
            async with observability("127.0.0.1", port, registry, health):
                pass
    finally:
        holder.close()
        await holder.wait_closed()


async def test_readiness_changes_are_logged() -> None:
    switch = Switch()
    switch.ok = False
    health = Health("svc", {"broker": switch})
    with capture_logs() as logs:
        async with observability("127.0.0.1", 0, CollectorRegistry(), health, every_s=0.01):
            await asyncio.sleep(0.05)
            switch.ok = True
            await asyncio.sleep(0.05)
    events = [e["event"] for e in logs]
    assert events[:2] == ["service.not_ready", "service.ready"]  # changes only, not each check
    assert logs[0]["failing"] == ["FAIL broker: broker away"]
