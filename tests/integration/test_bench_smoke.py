"""Smoke test of the benchmark harness: the tiniest baseline + pipeline run writes valid JSON.

Never asserts speed: benchmarks are not timed tests (make bench runs them).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench import report
from bench.run import Options, run_all
from infra.services import Endpoints
from infra.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_tiny_run_writes_results(settings: Settings, endpoints: Endpoints, tmp_path: Path) -> None:
    opts = Options(
        repeats=1,
        sizes=[("2KB", 2048, 20)],
        concurrency=4,
        sections=["baseline", "pipeline"],
        out=tmp_path / "latest.json",
    )
    results = asyncio.run(run_all(settings, endpoints, opts))
    opts.out.write_text(json.dumps(results, default=str))

    loaded = json.loads(opts.out.read_text())
    scenario = loaded["scenarios"]["throughput 2KB"]
    for side in ("baseline", "pipeline"):
        summary = scenario[side]["summary"]
        assert {"docs_per_s", "p50_ms", "p95_ms", "p99_ms"} <= summary.keys()
        assert set(summary["docs_per_s"]) == {"median", "min", "max"}
        assert scenario[side]["repeats"][0]["documents"] == 20
    assert {"router", "archiver"} <= scenario["pipeline"]["processes"].keys()
    assert "archived_p99_ms" in scenario["pipeline"]["summary"]
    # Where send->delivered goes: the three stages, each a median of p50 and of p99.
    stages = ("acked", "routed", "routed_to_delivered")
    assert {f"{s}_{p}_ms" for s in stages for p in ("p50", "p99")} <= scenario["pipeline"][
        "summary"
    ].keys()
    assert "stage: send→routed" in report.markdown(loaded)
    assert "| throughput 2KB" in report.markdown(loaded)
