"""`lienthong subscribe`: read an agency's inbox, write each delivery to files, answer 01 / 02."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from infra import services
from infra.cli.common import METRICS_PORT, broker_errors
from infra.compose.subscribe import run_subscribe
from infra.settings import load_settings
from schemas.agency import is_valid_agency_code

F = TypeVar("F", bound=Callable[..., Any])


@broker_errors()
def subscribe(
    agency: str = typer.Option(..., "--agency", help="Agency code whose inbox to read."),
    out: Path = typer.Option(..., "--out", help="Directory to write deliveries into."),
    from_beginning: bool = typer.Option(
        False,
        "--from-beginning",
        help="Re-read the whole inbox (files are overwritten, not duplicated).",
    ),
    max_messages: int | None = typer.Option(
        None, "--max-messages", min=1, help="Stop after handling this many records."
    ),
    idle_timeout: float | None = typer.Option(
        None, "--idle-timeout", min=0.0, help="Stop after this many seconds with nothing new."
    ),
    no_answer: bool = typer.Option(
        False, "--no-answer", help="Do not send status 01 / 02 back to senders."
    ),
    group: str | None = typer.Option(
        None, "--group", help="Consumer group (default <prefix>subscriber.<agency>)."
    ),
    metrics_port: int = METRICS_PORT,
) -> None:
    """Read AGENCY's inbox, verify every envelope, write it under OUT and answer 01 (arrived)."""
    if not is_valid_agency_code(agency):
        raise ValueError(f"--agency {agency!r} is not an agency code (DDD.DD.DD.LDD)")
    settings = load_settings()
    # Reading needs Kafka only: an agency's machine need not see the platform's database.
    bootstrap = services.kafka_bootstrap(settings)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled_signals = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                # The signal only asks; the loop finishes the record in hand, commits, stops.
                loop.add_signal_handler(sig, stop.set)
                handled_signals.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (e.g. under a test runner): no signal handling
        try:
            return await run_subscribe(
                settings=settings,
                bootstrap=bootstrap,
                agency=agency,
                out_dir=out,
                group_id=group or settings.topic(f"subscriber.{agency}"),
                from_beginning=from_beginning,
                max_messages=max_messages,
                idle_timeout=idle_timeout,
                answer=not no_answer,
                stop=stop,
                live_trust=True,
                metrics_port=metrics_port,
            )
        finally:
            for sig in handled_signals:
                loop.remove_signal_handler(sig)

    handled = asyncio.run(main())
    print(f"{handled} record(s) handled from {settings.inbox(agency)}", flush=True)


def register(app: typer.Typer) -> None:
    """Add `subscribe` to the `lienthong` command."""
    app.command("subscribe")(subscribe)
