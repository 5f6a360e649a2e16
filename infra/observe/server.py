"""A service's HTTP endpoints for operators, on the service's own event loop:

- `/metrics`: the Prometheus exposition of its registry (OpenMetrics when asked, with
  exemplars carrying trace ids);
- `/healthz`: 200 while the event loop answers (it is the loop that answers);
- `/readyz`: 200 when every readiness check passes, else 503; one line per check;
- anything else: 404; a method other than GET or HEAD: 405; a malformed request: 400.

Deliberately tiny (asyncio streams, one request per connection, bounded head and time): the
endpoints are for a scraper and a kubelet, not for people.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from http import HTTPStatus

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from infra.observe.health import Health

log = structlog.get_logger()

MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0


async def serve(
    host: str, port: int, registry: CollectorRegistry, health: Health
) -> asyncio.Server:
    """Listen on host:port (port 0: any free port) until the server is closed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, headers, body, head_only = await _answer(reader, registry, health)
            writer.write(_response(status, headers, b"" if head_only else body, len(body)))
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), READ_TIMEOUT_S)

    return await asyncio.start_server(handle, host, port, limit=MAX_HEAD_BYTES)


@contextlib.asynccontextmanager
async def observability(
    host: str,
    port: int | None,
    registry: CollectorRegistry,
    health: Health,
    *,
    every_s: float = 60.0,
) -> AsyncIterator[asyncio.Server | None]:
    """For the life of the block: the endpoints (none when `port` is 0 or None), and the
    readiness checks evaluated every `every_s` whatever the port, so that a certificate's
    warning and a change of readiness reach the logs even where nothing scrapes."""
    server = None
    if port:
        try:
            server = await serve(host, port, registry, health)
        except OSError as exc:
            # One line naming the setting, not a traceback: the port is taken or not ours.
            raise OSError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): choose "
                "another --metrics-port, or set LIENTHONG_METRICS_HOST"
            ) from None
        log.info("observe.listening", host=host, port=port, service=health.service)
    watching = asyncio.create_task(_watch(health, every_s))
    try:
        yield server
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), READ_TIMEOUT_S)


async def _watch(health: Health, every_s: float) -> None:
    """Log each change of readiness, with the failing checks."""
    was: bool | None = None
    while True:
        await asyncio.sleep(every_s)
        results = health.evaluate()
        ready = all(r.ok for r in results)
        if ready != was:
            failing = [r.line() for r in results if not r.ok]
            if ready:
                log.info("service.ready", service=health.service)
            else:
                log.warning("service.not_ready", service=health.service, failing=failing)
            was = ready


async def _answer(
    reader: asyncio.StreamReader, registry: CollectorRegistry, health: Health
) -> tuple[HTTPStatus, dict[str, str], bytes, bool]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
        return _text(HTTPStatus.BAD_REQUEST, "bad request\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return _text(HTTPStatus.BAD_REQUEST, "bad request\n")
    method, target, _ = parts
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    head_only = method == "HEAD"
    if method not in ("GET", "HEAD"):
        status, headers, body, _ = _text(HTTPStatus.METHOD_NOT_ALLOWED, "GET or HEAD only\n")
        return status, {**headers, "Allow": "GET, HEAD"}, body, False
    path = target.split("?", 1)[0]
    if path == "/metrics":
        encoder, content_type = choose_encoder(fields.get("accept", ""))
        return HTTPStatus.OK, {"Content-Type": content_type}, encoder(registry), head_only
    if path == "/healthz":
        return (*_text(HTTPStatus.OK, "ok\n")[:3], head_only)
    if path == "/readyz":
        results = health.evaluate()
        ok = all(r.ok for r in results)
        text = "".join(r.line() + "\n" for r in results) or "ok: no checks\n"
        code = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        return (*_text(code, text)[:3], head_only)
    return (*_text(HTTPStatus.NOT_FOUND, "not found\n")[:3], head_only)


def _text(status: HTTPStatus, text: str) -> tuple[HTTPStatus, dict[str, str], bytes, bool]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8"), False


def _response(status: HTTPStatus, headers: dict[str, str], body: bytes, length: int) -> bytes:
    head = [f"HTTP/1.1 {status.value} {status.phrase}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(head).encode("latin-1") + body
