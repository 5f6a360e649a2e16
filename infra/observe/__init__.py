"""What a long-running service shows its operators: the HTTP endpoints /metrics, /healthz and
/readyz (server), the readiness checks behind them (health), the expiry of every certificate
it uses (certs). docs/observability.md.

Public names: CertificateWatch, Check, CheckResult, Health, serve, observability.
"""

from infra.observe.certs import CertificateWatch
from infra.observe.health import Check, CheckResult, Health
from infra.observe.server import observability, serve

__all__ = ["CertificateWatch", "Check", "CheckResult", "Health", "observability", "serve"]
