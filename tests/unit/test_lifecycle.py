"""Starting Kafka clients while the broker is away: back off, and stop when asked."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError

from consumers.lifecycle import Stopped, keep_starting


async def test_keep_starting_backs_off_until_the_broker_answers() -> None:
    tries: list[float] = []

    async def attempt() -> str:
        tries.append(asyncio.get_running_loop().time())
        if len(tries) < 3:
            raise KafkaConnectionError("broker away")
        return "started"

    assert await keep_starting(attempt, asyncio.Event(), what="test") == "started"
    assert len(tries) == 3
    assert tries[2] - tries[1] > tries[1] - tries[0] >= 0.45  # 0.5 s, then 1 s


async def test_keep_starting_gives_up_when_stopped_and_lets_bugs_through() -> None:
    stop = asyncio.Event()

    async def away() -> str:
        stop.set()  # SIGTERM arrives while the broker is away
        raise KafkaConnectionError("broker away")

    assert await keep_starting(away, stop, what="test") is None

    async def cancelled() -> str:
        raise Stopped()

    assert await keep_starting(cancelled, asyncio.Event(), what="test") is None

    async def bug() -> str:
        raise ZeroDivisionError

    try:
        await keep_starting(bug, asyncio.Event(), what="test")
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("a bug must not be retried as if the broker were away")
