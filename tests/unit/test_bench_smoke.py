"""The micro-benchmarks run and write valid JSON (speed is never asserted here)."""

from __future__ import annotations

import json

from bench import codec


def test_codec_benchmark_runs_and_reports_ratios() -> None:
    rows = codec.measure(seconds=0.01, repeats=1)
    assert {r["case"] for r in rows} == {
        "encode record",
        "decode record",
        "encode domain object",
        "decode to domain object",
    }
    assert all(float(r["ours_per_s"]) > 0 and float(r["raw_per_s"]) > 0 for r in rows)  # type: ignore[arg-type]
    json.dumps(rows)  # serialisable as the results file
