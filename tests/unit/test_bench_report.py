"""The benchmark report's arithmetic: percentiles, repeat spreads, and the markdown table."""

from __future__ import annotations

from typing import Any

from bench.common import combine, latency_summary, percentile
from bench.report import markdown


def test_percentile_is_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 51.0
    assert percentile(samples, 99) == 99.0
    assert percentile([7.0], 95) == 7.0


def test_combine_gives_median_min_max_of_numeric_keys() -> None:
    reps = [{"docs_per_s": 10.0, "mode": "x"}, {"docs_per_s": 30.0}, {"docs_per_s": 20.0}]
    assert combine(reps) == {"docs_per_s": {"median": 20.0, "min": 10.0, "max": 30.0}}


def _side(docs_per_s: float, p99: float, **extra: float) -> dict[str, Any]:
    rep = {"bytes": 2052, "docs_per_s": docs_per_s, **latency_summary([p99]), **extra}
    return {"repeats": [rep], "summary": combine([rep])}


def test_table_prints_ratio_against_the_baseline() -> None:
    pipeline = _side(100.0, 400.0, archived_p99_ms=500.0, archived_docs_per_s=90.0)
    pipeline["processes"] = {"router": {"peak_rss_mb": 70.0}}
    results = {
        "run_id": "t",
        "quick": True,
        "repeats": 1,
        "machine": {"cpus": 2},
        "scenarios": {
            "throughput 2KB": {
                "baseline": {**_side(400.0, 100.0), "mode": "produce -> relay -> consume"},
                "pipeline": pipeline,
            }
        },
    }
    table = markdown(results)
    docs_row = next(line for line in table.splitlines() if "| docs/s |" in line)
    assert "| 0.25 |" in docs_row
    assert "≥ 0.50 of raw Kafka" in docs_row
    assert "router 70" in table
