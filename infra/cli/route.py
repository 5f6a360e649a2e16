"""`lienthong route`: the composition root of one router instance."""

from __future__ import annotations

import asyncio
import signal

import typer
from prometheus_client import start_http_server

from infra import services
from infra.cli.common import clean_errors
from infra.compose.router import build_router, run_router
from infra.settings import load_settings


def register(app: typer.Typer) -> None:
    @app.command("route")
    @clean_errors
    def route(
        instance: str = typer.Option("0", help="This instance's id; one transactional id each."),
        metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on 127.0.0.1:PORT."),
        replay_window_days: float = typer.Option(7.0, help="Refuse envelopes older than this."),
    ) -> None:
        """Route submissions to the recipients' inboxes until SIGTERM or SIGINT."""
        settings = load_settings()
        bootstrap = services.kafka_bootstrap(settings)
        router = build_router(
            settings, bootstrap, instance=instance, replay_window_days=replay_window_days
        )
        if metrics_port:
            start_http_server(metrics_port, addr="127.0.0.1", registry=router.metrics.registry)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_router(settings, bootstrap, router, stop)

        asyncio.run(main())
