"""`lienthong route`: the composition root of one router instance."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

import typer
from prometheus_client import start_http_server

from consumers.router import Router, RouterConfig, RouterMetrics, RouterTopics
from consumers.routing import RoutingPolicy
from infra import context, services
from infra.cli import clean_errors
from infra.settings import Settings, load_settings
from schemas.common import AgencyRef
from schemas.envelope import SignerRole
from signing.seal import load_credential


def build_router(
    settings: Settings, bootstrap: str, *, instance: str = "0", replay_window_days: float = 7.0
) -> Router:
    agencies = context.agency_directory(settings)
    platform = agencies.lookup(settings.platform_agency)
    platform_name = platform.name if platform else "Nền tảng liên thông"
    config = RouterConfig(
        topics=RouterTopics(
            submissions=settings.topic("submissions"),
            deadletter=settings.topic("deadletter"),
            state=settings.topic("router-state"),
            inbox=settings.inbox,
        ),
        group_id=settings.topic("router"),
        transactional_id=f"{settings.topic('router')}.{instance}",
        policy=RoutingPolicy(
            platform_agency=settings.platform_agency,
            replay_window=timedelta(days=replay_window_days),
        ),
        platform=AgencyRef(settings.platform_agency, platform_name),
        state_dir=settings.home / "router-state" / settings.topic("router"),
    )
    return Router(
        bootstrap,
        config,
        trust=context.trust_store(settings),
        agencies=agencies,
        platform_credential=load_credential(
            settings.pki_dir, settings.platform_agency, SignerRole.PLATFORM
        ),
        clock=lambda: datetime.now(UTC),
        metrics=RouterMetrics(),
    )


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
            await router.run(stop)

        asyncio.run(main())
