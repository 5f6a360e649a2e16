"""The alert rules and the dashboard cannot silently reference nothing: every metric they name
is one the code exports; every alert has its runbook; and, where promtool is installed, the
rules' own unit tests (alerts.test.yml) pass."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumers.archive import ArchiverMetrics
from consumers.inbox.metrics import InboxMetrics
from consumers.router import RouterMetrics
from consumers.trustfeed import TrustMetrics
from consumers.witness import WitnessMetrics
from infra.observe import CertificateWatch, Health

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "infra/deploy/prometheus/alerts.yml"
RULE_TESTS = ROOT / "infra/deploy/prometheus/alerts.test.yml"
DASHBOARD = ROOT / "infra/deploy/grafana/lienthong.json"
RUNBOOK = ROOT / "docs/observability.md"

# Series Prometheus makes itself, not the services.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def exported_series() -> set[str]:
    """Every series name the services can export, from their real metric classes."""
    registries = []
    for cls in (RouterMetrics, ArchiverMetrics, InboxMetrics, WitnessMetrics, TrustMetrics):
        registries.append(cls().registry)
    extra = CollectorRegistry()
    CertificateWatch([], extra, warn_before=timedelta(1), critical_before=timedelta(1))
    Health("any", {"x": lambda: (True, "")}).register(extra)
    registries.append(extra)
    names = set(PROMETHEUS_OWN)
    for registry in registries:
        for family in registry.collect():
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, labels (inside {} or by/without/on/ignoring lists), durations or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        after = text[match.end() :].lstrip()
        if after.startswith("(") or name.lower() in PROMQL_WORDS:
            continue
        if match.start() and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the e of 1e-9
        found.add(name)
    return found


def rules() -> list[dict[str, object]]:
    loaded = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in dash["panels"]:
        for target in panel.get("targets", ()):
            found.append((panel["title"], target["expr"]))
    return found


def test_the_expression_reader_finds_metrics_and_only_metrics() -> None:
    expr = (
        'sum by (group, le) (rate(a_total{reason!="x y"}[10m])) / clamp_min(b + c_bucket, 1e-9)'
        " > 0.05 and on(instance) up == 0 or vector(1) unless d offset 5m"
    )
    assert metric_names(expr) == {"a_total", "b", "c_bucket", "up", "d"}


def test_every_metric_an_alert_names_is_exported() -> None:
    exported = exported_series()
    for rule in rules():
        names = metric_names(str(rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], sorted(names - exported))


def test_every_metric_a_dashboard_panel_names_is_exported() -> None:
    exported = exported_series()
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for title, expr in exprs:
        names = metric_names(expr)
        assert names and names <= exported, (title, sorted(names - exported))


def test_the_dashboard_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def test_a_misspelt_metric_would_be_caught() -> None:
    # The check above can fail: a name one letter off is not exported.
    assert "lienthong_consumer_lags" not in exported_series()
    assert "lienthong_consumer_lag" in exported_series()


def test_the_alerts_the_issue_asks_for_are_there_with_a_runbook() -> None:
    names = {str(r["alert"]) for r in rules()}
    assert {
        "LienthongServiceDown",
        "LienthongNotReady",
        "LienthongConsumerLagGrowing",
        "LienthongDeadLetterRate",
        "LienthongArchiveDelay",
        "LienthongCertificateExpiring",
    } <= names
    runbook = RUNBOOK.read_text(encoding="utf-8")
    for rule in rules():
        name = str(rule["alert"])
        assert re.search(rf"^### {name}$", runbook, re.M), f"no runbook section for {name}"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"docs/observability.md#{name.lower()}"
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]


def promtool() -> str | None:
    """$LIENTHONG_PROMTOOL, else beside this Python (`make promtool`), else on the PATH."""
    beside = Path(sys.executable).parent / "promtool"
    if os.environ.get("LIENTHONG_PROMTOOL"):
        return os.environ["LIENTHONG_PROMTOOL"]
    return str(beside) if beside.exists() else shutil.which("promtool")


@pytest.mark.skipif(promtool() is None, reason="promtool is not installed (make promtool)")
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    tool = promtool()
    assert tool is not None
    check = subprocess.run(
        [tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_case_in_the_rules_unit_tests() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    firing = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert {str(r["alert"]) for r in rules()} <= firing
