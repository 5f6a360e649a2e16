"""One router instance built from settings: topics, policy, trust and the platform's credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumers.router import Router, RouterConfig, RouterMetrics, RouterTopics, RoutingPolicy
from infra import context
from infra.settings import Settings
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
