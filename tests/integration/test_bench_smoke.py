"""Smoke test of the benchmark harness: the tiniest baseline + pipeline run writes valid JSON,
and the audit search benchmark runs on a tiny corpus.

Never asserts speed: benchmarks are not timed tests (make bench runs them).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
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


async def test_audit_search_bench_runs_on_a_tiny_corpus(database_url: str) -> None:
    """bench.audit_search end to end on 300 documents: scale reported, every kind of search
    timed, each text search beside the subject-only search of before 0008."""
    from bench import audit_search

    url = await audit_search.load(database_url, 300)
    try:
        corpus = await audit_search.scale(url)
        assert corpus["documents"] == 300 and corpus["body_chars_mean"] > 500
        assert corpus["full_text_index_bytes"] > 0
        results = await audit_search.measure(url, 3)
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {audit_search.SCRATCH} WITH (FORCE)")
        finally:
            await admin.close()
    by_name = {r["search"]: r for r in results}
    assert set(by_name) == set(audit_search.cases(audit_search.agencies()))
    words = by_name["body phrases, no diacritics"]
    assert {"p50_ms", "p95_ms", "p99_ms", "before_0008", "p95_ratio"} <= words.keys()
    assert {"cpu_p50_ms", "cpu_p95_ms", "cpu_p95_ratio"} <= words.keys()  # server on this host
    assert "before_0008" not in by_name["recipient"]  # no words, nothing to compare
    assert sum(words["first_hit_match"].values()) == 3
    loaded = {"scenarios": {"audit": {"documents": 300, "corpus": corpus, "results": results}}}
    table = report.markdown(
        {**loaded, "run_id": "t", "quick": True, "repeats": 1, "machine": {"cpus": 2}}
    )
    assert "corpus: body characters mean / max" in table and "body phrases" in table
