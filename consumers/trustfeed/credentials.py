"""A service's own signing certificates watched: the time left before expiry as a gauge and a
warning well before it, and every signature refused for want of a valid one logged and counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from consumers.trustfeed.metrics import TrustMetrics
from signing.credentials import CredentialSource, HeldCredential
from signing.seal import Credential

log = structlog.get_logger()

DEFAULT_WARN_BEFORE = timedelta(days=30)
WARN_EVERY = timedelta(hours=6)


class MonitoredCredentials:
    """A CredentialSource (signing.credentials) with its alarms; signs nothing itself."""

    def __init__(
        self,
        source: CredentialSource,
        *,
        role: str,
        agency: str,
        metrics: TrustMetrics,
        warn_before: timedelta = DEFAULT_WARN_BEFORE,
    ) -> None:
        self.source = source
        self.role = role
        self.agency = agency
        self.metrics = metrics
        self.warn_before = warn_before
        self._warned_at: datetime | None = None

    def held_at(self, at: datetime) -> HeldCredential | None:
        return self.source.held_at(at)

    def credential_at(self, at: datetime) -> Credential | None:
        held = self.source.held_at(at)
        if held is None:
            # Never sign outside a certificate's validity: the caller skips the signature.
            log.error(
                "credential.none_valid",
                role=self.role,
                agency=self.agency,
                at=at.isoformat(),
                detail=f"run `lienthong pki renew --agency {self.agency}` with the role's option",
            )
            self.metrics.credential_unavailable.labels(self.role, self.agency).inc()
            self.check(at)
            return None
        return held.credential

    def check(self, at: datetime) -> float | None:
        """Set the expiry gauge at `at` and warn when under `warn_before`; seconds left, or
        None when no certificate is valid at `at` (gauge -1)."""
        held = self.source.held_at(at)
        gauge = self.metrics.credential_expiry.labels(self.role, self.agency)
        if held is None:
            gauge.set(-1)
            return None
        left = held.not_after - at
        gauge.set(left.total_seconds())
        if left < self.warn_before and (
            self._warned_at is None or at - self._warned_at >= WARN_EVERY
        ):
            self._warned_at = at
            log.warning(
                "credential.expires_soon",
                role=self.role,
                agency=self.agency,
                not_after=held.not_after.isoformat(),
                days_left=round(left.total_seconds() / 86400, 1),
                detail=f"run `lienthong pki renew --agency {self.agency}` with the role's option",
            )
        return left.total_seconds()

    async def watch(
        self, stop: asyncio.Event, clock: Callable[[], datetime], every_s: float = 60.0
    ) -> None:
        """Check now and every `every_s` until stop (a renewal is seen at the next check)."""
        while not stop.is_set():
            self.check(clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
