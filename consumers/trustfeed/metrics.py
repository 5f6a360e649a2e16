"""The trust alarms a service exports: CRL freshness, its own certificates' expiry, refusals."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class TrustMetrics:
    """On the service's own registry (the router's or the archiver's), or a fresh one."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.crl_next_update = Gauge(
            "lienthong_crl_seconds_until_next_update",
            "Seconds until the CRL held for an issuer is stale (negative: stale)",
            ["issuer"],
            registry=r,
        )
        self.crl_stale = Gauge(
            "lienthong_crl_stale",
            "1 while the issuer's CRL is past nextUpdate, 2 when past the grace (fail closed)",
            ["issuer"],
            registry=r,
        )
        self.crl_applied = Counter(
            "lienthong_crl_applied", "CRLs applied from the crl topic", ["issuer"], registry=r
        )
        self.crl_refused = Counter(
            "lienthong_crl_refused",
            "Records of the crl topic refused (foreign CA, not a CRL) or ignored (older)",
            ["reason"],
            registry=r,
        )
        self.credential_expiry = Gauge(
            "lienthong_credential_seconds_until_expiry",
            "Seconds until the certificate this service signs with expires (negative: none valid)",
            ["role", "agency"],
            registry=r,
        )
        self.credential_unavailable = Counter(
            "lienthong_credential_unavailable",
            "Signatures not made because no certificate of the role was valid at signing time",
            ["role", "agency"],
            registry=r,
        )
