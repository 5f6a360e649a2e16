"""`lienthong route`: the composition root of one router instance."""

from __future__ import annotations

import asyncio
import signal

import typer

from infra import services
from infra.cli.common import METRICS_PORT, clean_errors
from infra.compose.router import build_router, run_router
from infra.settings import load_settings


def register(app: typer.Typer) -> None:
    @app.command("route")
    @clean_errors
    def route(
        instance: str = typer.Option("0", help="This instance's id; one transactional id each."),
        metrics_port: int = METRICS_PORT,
        replay_window_days: float = typer.Option(7.0, help="Refuse envelopes older than this."),
    ) -> None:
        """Route submissions to the recipients' inboxes until SIGTERM or SIGINT."""
        settings = load_settings()
        bootstrap = services.kafka_bootstrap(settings)
        router = build_router(
            settings, bootstrap, instance=instance, replay_window_days=replay_window_days
        )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_router(settings, bootstrap, router, stop, metrics_port=metrics_port)

        asyncio.run(main())
