"""`lienthong gateway edxml`: a document system's drop folders, in/ to the exchange and the
agency's inbox to out/, as edXML (docs/edxml.md)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from infra import services
from infra.cli.common import METRICS_PORT, broker_errors
from infra.compose.gateway import run_gateway
from infra.settings import load_settings
from schemas.agency import is_valid_agency_code

F = TypeVar("F", bound=Callable[..., Any])


@broker_errors()
def gateway_edxml(
    in_dir: Path = typer.Option(..., "--in", help="Drop folder: edXML files to send."),
    out_dir: Path = typer.Option(..., "--out", help="Where deliveries are written as edXML."),
    agency: str = typer.Option(..., "--agency", help="The agency the document system is."),
    poll_seconds: float = typer.Option(2.0, "--poll-seconds", min=0.1, help="Scan interval."),
    no_answer: bool = typer.Option(
        False, "--no-answer", help="Do not answer 01 (arrived) for deliveries."
    ),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Re-read the inbox."),
    group: str | None = typer.Option(
        None, "--group", help="Consumer group (default <prefix>gateway.<agency>)."
    ),
    metrics_port: int = METRICS_PORT,
) -> None:
    """Send every edXML file dropped in IN (moved to IN/done once Kafka has it, to
    IN/rejected with a reason if refused) and write AGENCY's deliveries to OUT as edXML."""
    if not is_valid_agency_code(agency):
        raise ValueError(f"--agency {agency!r} is not an agency code (DDD.DD.DD.LDD)")
    settings = load_settings()
    bootstrap = services.kafka_bootstrap(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)  # finish the file in hand, then stop
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            await run_gateway(
                settings=settings,
                bootstrap=bootstrap,
                agency=agency,
                in_dir=in_dir,
                out_dir=out_dir,
                stop=stop,
                group_id=group,
                from_beginning=from_beginning,
                answer=not no_answer,
                poll_seconds=poll_seconds,
                metrics_port=metrics_port,
            )
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Add `lienthong gateway edxml`."""
    group = typer.Typer(help="Gateways to other systems' formats.", no_args_is_help=True)
    group.command("edxml")(gateway_edxml)
    app.add_typer(group, name="gateway")
