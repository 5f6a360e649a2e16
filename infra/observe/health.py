"""Readiness as named checks, evaluated when asked: by /readyz, and by each scrape of /metrics
(as `lienthong_ready` and `lienthong_readiness_check`, so an alert can fire on it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# A check says whether it passes and why, in one line.
Check = Callable[[], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL'} {self.name}: {self.detail}"


class Health:
    """One service's readiness checks. A check that raises fails, with the error as detail:
    readiness must never take the service down, nor pass by accident."""

    def __init__(self, service: str, checks: dict[str, Check] | None = None) -> None:
        self.service = service
        self.checks: dict[str, Check] = dict(checks or {})

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def evaluate(self) -> list[CheckResult]:
        results = []
        for name, check in self.checks.items():
            try:
                ok, detail = check()
            except Exception as exc:
                ok, detail = False, f"check failed: {type(exc).__name__}: {exc}"
            results.append(CheckResult(name, bool(ok), " ".join(str(detail).split())))
        return results

    def register(self, registry: CollectorRegistry) -> None:
        """Export the checks on the service's registry (evaluated at each scrape)."""
        registry.register(_ReadinessCollector(self))


class _ReadinessCollector(Collector):
    def __init__(self, health: Health) -> None:
        self.health = health

    def describe(self) -> list[Metric]:
        return []  # evaluated at collection only: checks may not be ready at registration

    def collect(self) -> Iterator[Metric]:
        results = self.health.evaluate()
        each = GaugeMetricFamily(
            "lienthong_readiness_check",
            "1 while the readiness check passes, 0 while it fails (GET /readyz says why)",
            labels=["service", "check"],
        )
        for r in results:
            each.add_metric([self.health.service, r.name], 1.0 if r.ok else 0.0)
        ready = GaugeMetricFamily(
            "lienthong_ready", "1 while every readiness check passes", labels=["service"]
        )
        ready.add_metric([self.health.service], 1.0 if all(r.ok for r in results) else 0.0)
        yield each
        yield ready
