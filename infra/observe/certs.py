"""Every certificate a service uses, watched: its transport client certificate and the CA that
checks the broker's, the trust anchors it verifies signatures with, and its own signing
certificate. A gauge of seconds until each one's notAfter, a warning in the logs from
LIENTHONG_CERT_WARN_DAYS before, and a readiness check that fails once one is expired (or
within LIENTHONG_CERT_CRITICAL_DAYS of it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Gauge

from signing.certcheck import Validity, certificates_in_file
from signing.errors import PkiError

log = structlog.get_logger()

CERT_METRIC = "lienthong_certificate_seconds_until_expiry"
WARN_EVERY = timedelta(hours=6)

# What a source yields now: the certificates it holds (none: the role has no valid one).
Loader = Callable[[], list[Validity]]


@dataclass(frozen=True, slots=True)
class CertSource:
    role: str  # transport, transport-ca, trust-anchor, signing:<role>
    load: Loader
    where: str  # the setting or file that names it, for the fix in a warning
    required: bool = True  # an empty source (no valid certificate) fails readiness


def file_source(role: str, path: Path, setting: str) -> CertSource:
    """The certificates of one PEM or DER file, read again at each check (a renewal written
    over the file is seen at once)."""
    return CertSource(role, lambda: certificates_in_file(path), f"{setting}={path}")


class CertificateWatch:
    def __init__(
        self,
        sources: Iterable[CertSource],
        registry: CollectorRegistry,
        *,
        warn_before: timedelta,
        critical_before: timedelta,
    ) -> None:
        self.sources = list(sources)
        self.warn_before = warn_before
        self.critical_before = critical_before
        self.gauge = Gauge(
            CERT_METRIC,
            "Seconds until the certificate's notAfter (negative: expired)",
            ["role", "subject"],
            registry=registry,
        )
        self._series: set[tuple[str, str]] = set()
        self._warned: dict[tuple[str, str], datetime] = {}

    def check(self, now: datetime) -> tuple[bool, str]:
        """Update the gauge and warn; (ready, one line): not ready while a certificate is
        expired, within the critical margin, or missing."""
        problems: list[str] = []
        soonest: tuple[timedelta, str] | None = None
        seen: set[tuple[str, str]] = set()
        for source in self.sources:
            try:
                certs = source.load()
            except PkiError as exc:
                problems.append(f"{source.role}: {exc}")
                continue
            if not certs and source.required:
                problems.append(f"{source.role}: no valid certificate ({source.where})")
            for cert in certs:
                key = (source.role, cert.subject)
                seen.add(key)
                left = cert.not_after - now
                self.gauge.labels(*key).set(left.total_seconds())
                if soonest is None or left < soonest[0]:
                    soonest = (left, f"{source.role} {cert.subject}")
                if left <= timedelta(0):
                    problems.append(
                        f"{source.role} {cert.subject} expired {cert.not_after:%Y-%m-%d %H:%M} "
                        f"UTC: renew it ({source.where})"
                    )
                elif left < self.critical_before:
                    problems.append(
                        f"{source.role} {cert.subject} expires {cert.not_after:%Y-%m-%d %H:%M} "
                        f"UTC: renew it now ({source.where})"
                    )
                if left < self.warn_before:
                    self._warn(key, cert, left, source, now)
        for key in self._series - seen:
            self.gauge.remove(*key)
        self._series = seen
        if problems:
            return False, "; ".join(problems)
        if soonest is None:
            return True, "no certificate in use"
        return True, f"soonest to expire: {soonest[1]} in {soonest[0].days} days"

    def _warn(
        self,
        key: tuple[str, str],
        cert: Validity,
        left: timedelta,
        source: CertSource,
        now: datetime,
    ) -> None:
        last = self._warned.get(key)
        if last is not None and now - last < WARN_EVERY:
            return
        self._warned[key] = now
        log.warning(
            "certificate.expires_soon" if left > timedelta(0) else "certificate.expired",
            role=source.role,
            subject=cert.subject,
            not_after=cert.not_after.isoformat(),
            days_left=round(left.total_seconds() / 86400, 1),
            where=source.where,
        )
