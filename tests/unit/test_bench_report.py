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


def test_audit_rows_show_the_scale_and_the_subject_only_search_beside() -> None:
    corpus = {
        "documents": 1000,
        "body_chars_mean": 993,
        "body_chars_max": 6843,
        "table_bytes": 2 * 2**30,
        "index_bytes": 2**29,
    }
    text = {
        "search": "body phrases, no diacritics",
        **{"p50_ms": 40.0, "p95_ms": 120.0, "p99_ms": 150.0, "cpu_p50_ms": 8, "cpu_p95_ms": 20},
        "before_0008": {"p50_ms": 10.0, "p95_ms": 30.0, "p99_ms": 45.0, "cpu_p50_ms": 2},
        "p95_ratio": 4.0,
        "cpu_p95_ratio": 2.5,
    }
    text["before_0008"]["cpu_p95_ms"] = 8
    plain = {"search": "recipient", "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0}
    audit = {"documents": 1000, "corpus": corpus, "results": [text, plain]}
    results = {"run_id": "t", "quick": True, "repeats": 1, "machine": {"cpus": 2}}
    table = markdown({**results, "scenarios": {"audit": audit}}).splitlines()
    [scale] = [line for line in table if "corpus: body characters" in line]
    assert "993 / 6,843; 2.5 GiB" in scale
    [words] = [line for line in table if "body phrases" in line]
    assert (
        "| 40.0 / 120.0 / 150.0 ms (CPU 8.0 / 20.0) | 10.0 / 30.0 / 45.0 ms (CPU 2.0 / 8.0) "
        "| 4.00 (CPU 2.50) | p95 < 200 ms |"
    ) in words
    [recipient] = [line for line in table if "recipient" in line]
    assert "| – | – |" in recipient  # no words: nothing to compare with
