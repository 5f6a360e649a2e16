"""`python -m bench.soak --minutes 10`: a paced 2 KB stream through sender -> router -> inbox and
the archiver, sampling every process's RSS; is memory flat? Writes bench/results/soak.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import pipeline
from bench.common import RECIPIENTS, BenchRun, ServiceProcess, rss_mb, start_archiver, start_router
from infra import services
from infra.logs import configure_logging
from infra.services import Endpoints
from infra.settings import Settings, load_settings

RESULTS = Path(__file__).parent / "results" / "soak.json"
WINDOW_S = 30.0  # one measured batch per window: latencies per window show any drift


async def sample(
    procs: dict[str, ServiceProcess], every_s: float, out: list[dict[str, Any]]
) -> None:
    start = time.monotonic()
    while True:
        row: dict[str, Any] = {"t_s": round(time.monotonic() - start, 1), "bench": rss_mb()}
        row.update({name: rss_mb(p.pid) for name, p in procs.items()})
        out.append(row)
        await asyncio.sleep(every_s)


async def soak(
    settings: Settings, endpoints: Endpoints, minutes: float, rate: float
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lienthong-soak-"))
    run = BenchRun.create(settings, endpoints.bootstrap, endpoints.database_url, work)
    samples: list[dict[str, Any]] = []
    try:
        run.issue_pki()
        await run.ensure_exchange_topics()
        db_url = await run.create_database()
        procs = {"router": start_router(run, db_url), "archiver": start_archiver(run, db_url)}
        sampler = asyncio.create_task(sample(procs, 10.0, samples))
        try:
            windows = max(1, round(minutes * 60 / WINDOW_S))
            result = await pipeline.measure_repeats(
                run,
                db_url,
                recipient=RECIPIENTS[0],
                target_bytes=2048,
                count=int(rate * WINDOW_S),
                repeats=windows,
                concurrency=1,
                rate=rate,
                services=procs,
                number_base=1,
            )
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            for p in procs.values():
                await p.stop()
    finally:
        await run.drop_databases()
        await run.delete_topics()
        shutil.rmtree(work, ignore_errors=True)
    names = ["bench", "router", "archiver"]
    first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
    return {
        "minutes": minutes,
        "rate_per_s": rate,
        # The first sample is taken before warm-up; the second is the steady start.
        "rss_start_mb": {n: first[n] for n in names},
        "rss_end_mb": {n: last[n] for n in names},
        "windows": [
            {k: r[k] for k in ("docs_per_s", "p50_ms", "p99_ms", "archived_p99_ms")}
            for r in result["repeats"]
        ],
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="documents per second")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    configure_logging("WARNING")
    settings = load_settings()
    endpoints = services.endpoints(settings)
    result = asyncio.run(soak(settings, endpoints, args.minutes, args.rate))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.minutes:g} min at {args.rate:g} documents/s (2 KB), RSS in MiB")
    print(f"{'process':10}{'start':>8}{'end':>8}")
    for name, start in result["rss_start_mb"].items():
        print(f"{name:10}{start:>8.1f}{result['rss_end_mb'][name]:>8.1f}")
    p99 = [w["p99_ms"] for w in result["windows"]]
    print(
        f"p99 send->delivered per {WINDOW_S:.0f} s window: first {p99[0]:.0f} ms, "
        f"last {p99[-1]:.0f} ms, worst {max(p99):.0f} ms"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
