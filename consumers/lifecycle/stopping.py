"""Riding out a broker outage: waits that a stop request cuts short, and bounded back-off.

SIGTERM only sets an asyncio.Event. A Kafka call can block for its whole request timeout (40 s)
or retry forever while the broker is away, so every such call in a service loop is raced
against that event: the call in hand gets `finish_s` to complete on its own (a healthy batch
commits), then it is cancelled and the loop stops. Shared by the router, archiver and inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaError

log = structlog.get_logger()
T = TypeVar("T")

FINISH_S = 2.0  # after stop: how long the call in hand may still take to complete by itself
CANCEL_S = 1.0  # after each cancel: how long it may take to unwind
CLOSE_S = 3.0  # stopping the clients, all together, when the broker does not answer


class Stopped(Exception):
    """Stop was requested while a call waited on the broker; the call was cancelled."""


async def unless_stopped(aw: Awaitable[T], stop: asyncio.Event, *, finish_s: float = FINISH_S) -> T:
    """The result of `aw`, or Stopped once `stop` is set and `aw` has not completed within
    `finish_s` more (it is then cancelled, and given a moment to unwind)."""
    task = asyncio.ensure_future(aw)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=finish_s)
    except asyncio.CancelledError:
        await _cancel(task)
        raise
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    await _cancel(task)
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()  # it completed while being cancelled
    raise Stopped()


async def _cancel(task: asyncio.Future[T]) -> None:
    # A cancelled transaction aborts in its __aexit__, which waits on the broker again (shielded):
    # cancel again until it gives up, so nothing of it runs on once we return.
    for _ in range(3):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_S)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if stop is set: True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


@dataclass
class Backoff:
    """Doubling delays between tries, from `first` to at most `most` seconds; reset on success."""

    first: float = 0.5
    most: float = 10.0
    delay: float = 0.0

    def next(self) -> float:
        self.delay = self.first if self.delay == 0.0 else min(self.delay * 2, self.most)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


async def close_all(*closing: Awaitable[object], seconds: float = CLOSE_S, what: str = "") -> None:
    """Stop clients together, within `seconds`: a producer flushing to a broker that is away
    would otherwise wait out its request timeout. Errors while closing are logged, not raised."""
    tasks = [asyncio.ensure_future(c) for c in closing]
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        await _cancel(task)
    errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if pending or errors:
        log.warning(
            "kafka.close_incomplete",
            service=what,
            timed_out=len(pending),
            errors=[repr(e) for e in errors],
        )


async def keep_starting(
    attempt: Callable[[], Awaitable[T]], stop: asyncio.Event, *, what: str
) -> T | None:
    """`attempt()` until it returns, backing off while the broker does not answer; None when
    stop comes first. An attempt that fails closes what it opened before it raises."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            return await attempt()
        except Stopped:
            return None
        except (KafkaError, OSError) as exc:
            delay = backoff.next()
            log.warning(f"{what}.kafka_unavailable", error=repr(exc), retry_in_s=delay)
            await pause(stop, delay)
    return None
