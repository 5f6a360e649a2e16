"""One router instance built from settings: topics, policy, trust and the platform's credential;
`run_router` runs it with live trust (the crl topic followed, the platform certificate watched)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from consumers.router import Router, RouterConfig, RouterMetrics, RouterTopics, RoutingPolicy
from consumers.trustfeed import MonitoredCredentials
from infra import context
from infra.compose.trust import monitored_credentials, run_with_trust, trust_feed, trust_metrics
from infra.settings import Settings
from schemas.common import AgencyRef
from schemas.envelope import SignerRole
from signing.trust import TrustStore


def build_router(
    settings: Settings, bootstrap: str, *, instance: str = "0", replay_window_days: float = 7.0
) -> Router:
    agencies = context.exchange_directory(settings)
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
    metrics = RouterMetrics()
    return Router(
        bootstrap,
        config,
        trust=context.trust_store(settings),
        agencies=agencies,
        # Chosen at each signing time among the PKI directory's PLATFORM certificates, re-read
        # when it changes: never an expired one, a renewed one at once.
        platform_credential=monitored_credentials(
            settings,
            settings.platform_agency,
            SignerRole.PLATFORM,
            trust_metrics(metrics.registry),
        ),
        clock=lambda: datetime.now(UTC),
        metrics=metrics,
        client_options=settings.kafka_options(),
    )


async def run_router(
    settings: Settings, bootstrap: str, router: Router, stop: asyncio.Event
) -> None:
    """The router with the crl topic followed beside it: each new trust store is swapped in
    (`router.trust`, read per submission), and its platform certificate watched."""

    def swap(store: TrustStore) -> None:
        router.trust = store

    feed = trust_feed(
        settings,
        bootstrap,
        clock=lambda: router.clock(),
        owners=[swap],
        metrics=trust_metrics(router.metrics.registry),
        base=router.trust,
    )
    watches = [router.credential] if isinstance(router.credential, MonitoredCredentials) else []
    await run_with_trust(router.run, feed, stop, clock=lambda: router.clock(), watches=watches)
