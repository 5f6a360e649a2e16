"""Each long-running service's readiness checks and watched certificates, built from settings
(docs/observability.md, "Health"): the command runs them with infra.observe.observability."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from consumers.archive import Archiver
from consumers.inbox import InboxSubscriber
from consumers.router import Router
from consumers.telemetry import ConsumerLag
from consumers.trustfeed import MonitoredCredentials
from infra.observe import CertificateWatch, Health
from infra.observe.certs import CertSource, file_source
from infra.settings import Settings
from signing.certcheck import Validity, chain_validity
from signing.seal import Credential
from signing.trust import TrustStore

# The service loop observes its consumer at least every poll (≤ 0.5 s): silence this long
# means the loop is stuck or the broker does not answer.
SILENCE_S = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def certificate_sources(
    settings: Settings,
    *,
    trust: Callable[[], TrustStore] | None = None,
    signing: Sequence[tuple[str, Callable[[datetime], Sequence[bytes] | None]]] = (),
    clock: Callable[[], datetime] = _utcnow,
) -> list[CertSource]:
    """The transport files the settings name, the trust anchors the service verifies with,
    and its signing chains (`signing`: role and the chain held at a time, None: none valid)."""
    security = settings.kafka_security
    sources = []
    if security.cert_file is not None:
        sources.append(file_source("transport", security.cert_file, "LIENTHONG_KAFKA_CERT_FILE"))
    if security.ca_file is not None:
        sources.append(file_source("transport-ca", security.ca_file, "LIENTHONG_KAFKA_CA_FILE"))
    if trust is not None:
        store = trust

        def anchors() -> list[Validity]:
            return [Validity.of(a) for a in store().anchors]

        sources.append(CertSource("trust-anchor", anchors, str(settings.trust_config)))
    for role, held in signing:

        def chain(held: Callable[[datetime], Sequence[bytes] | None] = held) -> list[Validity]:
            found = held(clock())
            return [] if found is None else chain_validity(found)[:1]

        sources.append(
            CertSource(f"signing:{role}", chain, f"`lienthong pki renew` in {settings.pki_dir}")
        )
    return sources


def monitored_chain(
    credentials: MonitoredCredentials,
) -> Callable[[datetime], Sequence[bytes] | None]:
    def held(at: datetime) -> Sequence[bytes] | None:
        found = credentials.held_at(at)
        return None if found is None else found.credential.chain

    return held


def fixed_chain(credential: Credential) -> Callable[[datetime], Sequence[bytes] | None]:
    return lambda at: credential.chain


def certificate_watch(
    settings: Settings, registry: CollectorRegistry, sources: Sequence[CertSource]
) -> CertificateWatch:
    return CertificateWatch(
        sources,
        registry,
        warn_before=timedelta(days=settings.cert_warn_days),
        critical_before=timedelta(days=settings.cert_critical_days),
    )


def consumer_checks(
    health: Health,
    lag: ConsumerLag,
    settings: Settings,
    *,
    started: Callable[[], bool],
    silence_s: float = SILENCE_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """started (joined and assigned), broker (a fetch answered lately), lag (under
    LIENTHONG_READY_MAX_LAG)."""

    def assigned() -> tuple[bool, str]:
        if not started():
            return False, "not started: connecting to the broker or waiting for partitions"
        return True, f"{len(lag.partitions)} partitions"

    def broker() -> tuple[bool, str]:
        if lag.observed_at is None:
            return False, "the consumer has not polled yet"
        idle = clock() - lag.observed_at
        if idle > silence_s:
            return False, f"the consumer loop has not polled for {idle:.0f} s"
        silent = lag.broker_silent_for()
        if silent is not None and silent > silence_s:
            return False, f"no fetch answered for {silent:.0f} s: is the broker reachable?"
        return True, "fetching" if silent is not None else "polling, no partition fetched"

    def under_bound() -> tuple[bool, str]:
        bound = settings.ready_max_lag
        text = f"{lag.total} behind (bound {bound}, LIENTHONG_READY_MAX_LAG)"
        return lag.total <= bound, text

    health.add("assigned", assigned)
    health.add("broker", broker)
    health.add("lag", under_bound)


def certificate_check(
    health: Health, watch: CertificateWatch, clock: Callable[[], datetime]
) -> None:
    health.add("certificates", lambda: watch.check(clock()))


def router_health(settings: Settings, router: Router) -> Health:
    health = Health("router")
    consumer_checks(health, router.consumer_lag, settings, started=router.ready.is_set)
    signing = []
    if isinstance(router.credential, MonitoredCredentials):
        signing.append(("platform", monitored_chain(router.credential)))
    sources = certificate_sources(settings, trust=lambda: router.trust, signing=signing)
    certificate_check(
        health, certificate_watch(settings, router.metrics.registry, sources), _utcnow
    )
    health.register(router.metrics.registry)
    return health


def archiver_health(settings: Settings, archiver: Archiver) -> Health:
    health = Health("archiver")
    consumer_checks(health, archiver.consumer_lag, settings, started=archiver.ready.is_set)

    def database() -> tuple[bool, str]:
        conn = archiver.conn
        if conn is None or conn.is_closed():
            return False, "no connection to PostgreSQL (reconnecting)"
        return True, f"connected, tree size {archiver.size}"

    health.add("database", database)
    sources = certificate_sources(
        settings,
        trust=lambda: archiver.parse.trust,
        signing=[("archive", lambda at: archiver.signer.chain)],
    )
    registry = archiver.metrics.registry
    certificate_check(health, certificate_watch(settings, registry, sources), _utcnow)
    health.register(registry)
    return health


def subscriber_health(
    settings: Settings,
    subscriber: InboxSubscriber,
    trust: Callable[[], TrustStore],
    credential: Credential | None,
    service: str = "subscriber",
) -> Health:
    health = Health(service)
    lag = subscriber.consumer_lag
    consumer_checks(health, lag, settings, started=lambda: lag.observed_at is not None)
    signing = [("agency", fixed_chain(credential))] if credential is not None else []
    sources = certificate_sources(settings, trust=trust, signing=signing)
    registry = subscriber.metrics.registry
    certificate_check(health, certificate_watch(settings, registry, sources), _utcnow)
    health.register(registry)
    return health
