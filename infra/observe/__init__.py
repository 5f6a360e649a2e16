"""What a long-running service shows its operators: the HTTP endpoints /metrics, /healthz and
/readyz (server), the readiness checks behind them (health), the expiry of every certificate
it uses (certs), and its spans to an OpenTelemetry collector when one is configured (tracing;
the OTel SDK itself is used only in otel, imported only then). docs/observability.md.

Public names: CertificateWatch, Check, CheckResult, Health, serve, observability, start_tracing,
traces_url.
"""

from infra.observe.certs import CertificateWatch
from infra.observe.health import Check, CheckResult, Health
from infra.observe.server import observability, serve
from infra.observe.tracing import start_tracing, traces_url

__all__ = [
    "CertificateWatch",
    "Check",
    "CheckResult",
    "Health",
    "observability",
    "serve",
    "start_tracing",
    "traces_url",
]
