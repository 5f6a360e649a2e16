"""`lienthong demo`: the seed scenario end to end on the services, printed as tables."""

from __future__ import annotations

import asyncio
import os

import typer
from rich.console import Console

from infra import services
from infra.cli.common import clean_errors, out
from infra.logs import configure_logging
from infra.settings import load_settings


@clean_errors
def demo() -> None:
    """Run the main flow end to end on the services, printing what happened."""
    from infra.demo.scenario import run_demo

    # The demo prints what happened as tables; per-message log lines would drown them.
    configure_logging(os.environ.get("LIENTHONG_LOG_LEVEL", "WARNING"))
    settings = load_settings()
    ep = services.up(settings)
    console = out if out.is_terminal else Console(width=150)
    asyncio.run(run_demo(settings, ep, console))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
