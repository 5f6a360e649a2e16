"""`lienthong decode`: print the records of any lienthong topic as decoded JSON lines."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from infra import services
from infra.cli.common import EX_TEMPFAIL, clean_errors
from infra.settings import load_settings
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.recordview import RawRecord, qualify_topic, to_line, view_record

FETCH_BYTES = 40 * 1024 * 1024  # above the largest message a topic accepts (32 MiB)
POLL_MS = 500


async def decode_topic(
    bootstrap: str,
    topic: str,
    *,
    partitions: list[int] | None = None,
    start: str | int = "beginning",  # "beginning", "end", or an offset (negative: from the end)
    follow: bool = False,
    max_records: int | None = None,
    emit: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> int:
    """Print each committed record of `topic` as one JSON line; how many were printed.

    Without `follow`, stops at the end the partitions had when it started."""
    stop = stop or asyncio.Event()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # reads only: no group, no commits
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=max(FETCH_BYTES, MAX_MESSAGE_BYTES),
        fetch_max_bytes=max(FETCH_BYTES, MAX_MESSAGE_BYTES),
        **(client_options or {}),
    )
    known = await _partitions(bootstrap, topic, client_options or {})
    await consumer.start()
    printed = 0
    try:
        chosen = known if partitions is None else partitions
        missing = sorted(set(chosen) - set(known))
        if missing:
            raise ValueError(f"{topic} has partitions {known}, not {missing}")
        tps = [TopicPartition(topic, p) for p in chosen]
        consumer.assign(tps)
        first = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)  # the last stable offset, read_committed
        for tp in tps:
            if start == "beginning":
                consumer.seek(tp, first[tp])
            elif start == "end":
                consumer.seek(tp, end[tp])
            else:
                assert isinstance(start, int)
                at = end[tp] + start if start < 0 else start
                consumer.seek(tp, min(max(at, first[tp]), end[tp]))
        pending = set(tps)
        while not stop.is_set() and (max_records is None or printed < max_records):
            if not follow:
                for tp in list(pending):
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                if not pending:
                    break
            batch = await consumer.getmany(*tps, timeout_ms=POLL_MS)
            for tp in sorted(batch):
                for r in batch[tp]:
                    if max_records is not None and printed >= max_records:
                        break
                    if not follow and r.offset >= end[tp]:
                        continue
                    raw = RawRecord(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        timestamp_ms=r.timestamp,
                        key=r.key,
                        value=r.value,
                        headers=tuple((k, bytes(v)) for k, v in (r.headers or ())),
                    )
                    emit(to_line(view_record(raw)))
                    printed += 1
    finally:
        await consumer.stop()
    return printed


async def _partitions(bootstrap: str, topic: str, client_options: Mapping[str, Any]) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            raise ValueError(f"no topic {topic} on {bootstrap}")
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described.get("partitions") or ())
    finally:
        await admin.close()


def register(app: typer.Typer) -> None:
    @app.command("decode")
    @clean_errors
    def decode(
        topic: str = typer.Option(
            ...,
            "--topic",
            help="Topic name, or a short one: submissions, deadletter, checkpoints, "
            "router-state, inbox.<agency code> (the prefix is added).",
        ),
        from_beginning: bool = typer.Option(
            False, "--from-beginning", help="Start at the first retained record (with --follow)."
        ),
        offset: int | None = typer.Option(
            None, "--offset", help="Start at this offset in each partition; negative: from the end."
        ),
        max_records: int | None = typer.Option(
            None, "--max", min=1, help="Stop after printing this many records."
        ),
        follow: bool = typer.Option(
            False, "--follow", help="Keep waiting for new records (from the end by default)."
        ),
        partition: list[int] | None = typer.Option(
            None, "--partition", min=0, help="Only this partition (repeatable)."
        ),
    ) -> None:
        """Print the records of TOPIC as JSON lines: envelopes and their payloads decoded, dead
        letters, tree heads and router state as text. Bytes that do not decode are printed in
        base64 with an `error`."""
        settings = load_settings()
        bootstrap = services.kafka_bootstrap(settings)
        name = qualify_topic(topic, settings.topic_prefix)
        start: str | int
        if offset is not None:
            start = offset
        elif from_beginning or not follow:
            start = "beginning"
        else:
            start = "end"

        def emit(line: str) -> None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

        async def main() -> int:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            return await decode_topic(
                bootstrap,
                name,
                partitions=partition or None,
                start=start,
                follow=follow,
                max_records=max_records,
                emit=emit,
                stop=stop,
                client_options=settings.kafka_options(),
            )

        try:
            printed = asyncio.run(main())
        except KafkaError as exc:
            print(f"error: kafka: {type(exc).__name__}: {exc}", file=sys.stderr)
            raise typer.Exit(EX_TEMPFAIL if exc.retriable else 2) from None
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            sys.stderr.close()
            raise typer.Exit(0) from None
        print(f"{printed} record(s) from {name}", file=sys.stderr)
