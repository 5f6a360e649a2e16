"""Live trust beside a long-running service, built from settings: the TrustFeed that swaps each
new trust store into the service, the watch on the service's own signing certificates, and the
publication of the PKI directory's CRL on the crl topic (consumers.trustfeed)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from prometheus_client import CollectorRegistry

from consumers.trustfeed import (
    MonitoredCredentials,
    TrustFeed,
    TrustMetrics,
    crl_record,
    publish_crl,
)
from infra import context
from infra.settings import Settings
from schemas.envelope import SignerRole
from signing.credentials import PkiCredentials
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.trust import TrustStore

log = structlog.get_logger()
T = TypeVar("T")

# A service waits this long for the feed to read the crl topic before it starts serving
# anyway (with trust.yaml's CRLs and a warning): a slow broker must not keep it down.
FEED_READY_TIMEOUT_S = 30.0

_metrics: weakref.WeakKeyDictionary[CollectorRegistry, TrustMetrics] = weakref.WeakKeyDictionary()


def trust_metrics(registry: CollectorRegistry | None = None) -> TrustMetrics:
    """The trust metrics on a service's registry: one set per registry, however often asked."""
    if registry is None:
        return TrustMetrics()
    if registry not in _metrics:
        _metrics[registry] = TrustMetrics(registry)
    return _metrics[registry]


def crl_grace(settings: Settings) -> timedelta:
    return timedelta(hours=settings.crl_grace_hours)


def trust_feed(
    settings: Settings,
    bootstrap: str,
    *,
    clock: Callable[[], datetime],
    owners: Iterable[Callable[[TrustStore], None]],
    metrics: TrustMetrics,
    base: TrustStore | None = None,
) -> TrustFeed:
    """A feed of `<prefix>crl` seeded with trust.yaml's anchors and CRLs."""
    return TrustFeed(
        bootstrap,
        settings.topic("crl"),
        base or context.trust_store(settings),
        clock=clock,
        grace=crl_grace(settings),
        on_update=list(owners),
        metrics=metrics,
        client_options=settings.kafka_options(),
    )


def monitored_credentials(
    settings: Settings, agency: str, role: SignerRole | CertRole, metrics: TrustMetrics
) -> MonitoredCredentials:
    """The identity's certificates from the PKI directory, re-read when it changes (a renewal
    is taken up at once), with the expiry gauge and warning."""
    return MonitoredCredentials(
        PkiCredentials(settings.pki_dir, agency, role),
        role=str(role),
        agency=agency,
        metrics=metrics,
        warn_before=timedelta(days=settings.cert_warn_days),
    )


async def run_with_trust(
    service: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    feed: TrustFeed,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime],
    watches: Sequence[MonitoredCredentials] = (),
    ready_timeout: float = FEED_READY_TIMEOUT_S,
) -> T:
    """Run `service(stop)` with the feed beside it (started first, and waited for until it has
    read the crl topic) and the credential watches. The feed failing stops the service and
    raises: a process that silently stopped learning revocations must not keep serving."""
    inner = asyncio.Event()
    feed_task = asyncio.create_task(feed.run(inner))
    watch_tasks = [asyncio.create_task(w.watch(inner, clock)) for w in watches]
    try:
        waiting = asyncio.create_task(feed.ready.wait())
        await asyncio.wait(
            {waiting, feed_task}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
        )
        waiting.cancel()
        if feed_task.done():
            feed_task.result()  # raises the feed's error
        if not feed.ready.is_set():
            log.warning("trustfeed.not_ready", waited_s=ready_timeout, topic=feed.topic)
        service_task = asyncio.create_task(service(stop))
        await asyncio.wait({service_task, feed_task}, return_when="FIRST_COMPLETED")
        if not service_task.done():
            log.error("trustfeed.failed", error=repr(feed_task.exception()))
            stop.set()
            await service_task
            feed_task.result()
        return service_task.result()
    finally:
        inner.set()
        for task in (*watch_tasks, feed_task):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task


async def publish_pki_crl(settings: Settings, bootstrap: str, pki: PkiDirectory) -> int:
    """Publish the PKI directory's current CRL on `<prefix>crl`; returns its offset."""
    record = crl_record(pki.crl_der(), pki.crl_issuer(), pki.crl_issuer_chain())
    return await publish_crl(
        bootstrap, settings.topic("crl"), record, client_options=settings.kafka_options()
    )
