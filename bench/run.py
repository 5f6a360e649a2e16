"""`python -m bench.run [--quick]`: every benchmark in one process run on the project's broker and
database; writes bench/results/latest.json and prints a markdown table.

Each scenario is repeated (3 times by default) and reported as median, min and max. Nothing here
touches the project's own topics or database: topics get a private prefix, the archive a private
database (dropped at the end), the signatures a development PKI in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import archive, baseline, pipeline, proofs, report
from bench.common import (
    BenchRun,
    combine,
    peak_rss_mb,
    profile_top,
    reset_peak_rss,
    start_archiver,
    start_router,
)
from infra import services
from infra.cli.common import Bar, progress_bar
from infra.logs import configure_logging
from infra.services import Endpoints
from infra.settings import Settings, load_settings

RESULTS = Path(__file__).parent / "results" / "latest.json"
SECTIONS = ("baseline", "pipeline", "steady", "archive", "signing", "codec", "audit", "proofs")


@dataclass
class Options:
    quick: bool = False
    repeats: int = 3
    # (label, target envelope bytes, documents per repeat)
    sizes: list[tuple[str, int, int]] = field(default_factory=list)
    concurrency: int = 16
    steady_rate: float = 200.0
    steady_seconds: float = 20.0
    # The audit search corpus (bodies included): 200 000 load in ~3 minutes here; the 1M figures
    # in docs/benchmarks.md come from `--audit-documents 1000000` (or bench.audit_search).
    audit_documents: int = 200_000
    proof_leaves: int = 1_000_000
    micro_seconds: float = 0.5
    sections: Sequence[str] = SECTIONS
    profile: bool = False
    out: Path = RESULTS

    @classmethod
    def preset(cls, quick: bool) -> Options:
        if quick:
            return cls(
                quick=True,
                sizes=[("2KB", 2048, 200), ("200KB", 200 * 1024, 40), ("1MB", 1 << 20, 12)],
                steady_seconds=5.0,
                audit_documents=20_000,
                proof_leaves=1 << 16,
                micro_seconds=0.05,
            )
        return cls(sizes=[("2KB", 2048, 2000), ("200KB", 200 * 1024, 300), ("1MB", 1 << 20, 60)])


async def run_all(settings: Settings, endpoints: Endpoints, opts: Options) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lienthong-bench-"))
    run = BenchRun.create(settings, endpoints.bootstrap, endpoints.database_url, work)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": opts.quick,
        "repeats": opts.repeats,
        "machine": machine(),
        "scenarios": {},
    }
    scenarios: dict[str, Any] = out["scenarios"]
    wanted = set(opts.sections)
    steps = (
        len(opts.sizes)
        + sum(s in wanted for s in ("steady", "signing", "codec", "audit", "proofs"))
        + int({"archive", "pipeline"} <= wanted and bool(opts.sizes))
    )
    with progress_bar("bench scenarios", steps) as bar:
        await _scenarios(run, opts, scenarios, started, bar)
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


async def _scenarios(
    run: BenchRun, opts: Options, scenarios: dict[str, Any], started: float, bar: Bar
) -> None:
    """Each scenario in turn; one tick of the bar (on a terminal) per scenario done."""
    work = run.work
    try:
        run.issue_pki()
        await run.ensure_exchange_topics()
        db_url = await run.create_database()
        wanted = set(opts.sections)
        for n, (label, target, count) in enumerate(opts.sizes):
            entry: dict[str, Any] = {}
            if "baseline" in wanted:
                entry["baseline"] = await run_baseline(run, opts, target_bytes(run, target), count)
            if "pipeline" in wanted:
                entry["pipeline"] = await run_pipeline(
                    run, opts, db_url, pipeline.RECIPIENTS[n], target, count, None, n
                )
            scenarios[f"throughput {label}"] = entry
            log(f"throughput {label} done at {time.perf_counter() - started:.0f} s")
            bar.advance()
            if n == 0 and "archive" in wanted and "pipeline" in wanted:
                # Now, while the topics hold only the 2 KB documents (same rows on both sides).
                scenarios["archive"] = await archive.measure(run, db_url, opts.repeats)
                log(f"archive done at {time.perf_counter() - started:.0f} s")
                bar.advance()
        if "steady" in wanted:
            count = int(opts.steady_rate * opts.steady_seconds)
            size = target_bytes(run, 2048)
            scenarios[f"steady {opts.steady_rate:.0f}/s 2KB"] = {
                "baseline": await run_baseline(run, opts, size, count, opts.steady_rate),
                "pipeline": await run_pipeline(
                    run, opts, db_url, pipeline.RECIPIENTS[3], 2048, count, opts.steady_rate, 9
                ),
            }
            log(f"steady done at {time.perf_counter() - started:.0f} s")
            bar.advance()
        if "signing" in wanted:
            scenarios["signing"] = signing_rates(opts.micro_seconds)
            bar.advance()
        if "codec" in wanted:
            from bench import codec

            scenarios["codec"] = codec.measure(opts.micro_seconds, opts.repeats)
            bar.advance()
        if "audit" in wanted:
            scenarios["audit"] = await audit(run, opts)
            log(f"audit done at {time.perf_counter() - started:.0f} s")
            bar.advance()
        if "proofs" in wanted:
            scenarios["proofs"] = await proofs.measure(
                run, opts.proof_leaves, 200 if opts.quick else 1000
            )
            bar.advance()
    finally:
        await run.drop_databases()
        await run.delete_topics()
        shutil.rmtree(work, ignore_errors=True)


def target_bytes(run: BenchRun, target: int) -> int:
    """The baseline sends payloads as large as the signed envelopes really are."""
    return pipeline.sized_attachment(run, target)[1]


async def run_baseline(
    run: BenchRun, opts: Options, size: int, count: int, rate: float | None = None
) -> dict[str, Any]:
    reset_peak_rss()
    reps = []
    for _ in range(opts.repeats):
        reps.append(
            await baseline.measure(
                run, size=size, count=count, concurrency=opts.concurrency, rate=rate
            )
        )
    return {"repeats": reps, "summary": combine(reps), "mode": "produce -> relay -> consume"}


async def run_pipeline(
    run: BenchRun,
    opts: Options,
    db_url: str,
    recipient: str,
    target: int,
    count: int,
    rate: float | None,
    slot: int,
) -> dict[str, Any]:
    """Fresh router and archiver processes per scenario, so their peak RSS is this scenario's."""
    reset_peak_rss()
    router = start_router(run, db_url, profile=opts.profile)
    archiver = start_archiver(run, db_url, profile=opts.profile)
    procs = {"router": router, "archiver": archiver}
    try:
        result = await pipeline.measure_repeats(
            run,
            db_url,
            recipient=recipient,
            target_bytes=target,
            count=count,
            repeats=opts.repeats,
            concurrency=opts.concurrency,
            rate=rate,
            services=procs,
            number_base=slot * 1_000_000 + 1,
        )
        result["processes"] = {name: p.memory() for name, p in procs.items()}
        result["processes"]["bench (sender + inbox)"] = {"peak_rss_mb": peak_rss_mb()}
    finally:
        for p in procs.values():
            await p.stop()
    if opts.profile:
        result["profile"] = {name: profile_top(p.profile_path) for name, p in procs.items()}
    result["summary"] = combine(result["repeats"])
    return result


def signing_rates(seconds: float) -> list[dict[str, Any]]:
    """signing.bench's per-algorithm comparison (ours vs raw cryptography), as data."""
    from signing import bench as sb

    return [
        {
            "algorithm": name,
            "op": op,
            "ours_per_s": round(ours, 1),
            "raw_per_s": round(raw, 1),
            "ratio": round(ours / raw, 3),
        }
        for name, op, ours, raw in sb.measure(seconds)
    ]


async def audit(run: BenchRun, opts: Options) -> dict[str, Any]:
    from bench import audit_search

    load_started = time.perf_counter()
    url = await audit_search.load(run.admin_url, opts.audit_documents)
    run.databases.append(audit_search.SCRATCH)  # dropped with the others at the end
    load_s = time.perf_counter() - load_started
    corpus = await audit_search.scale(url)
    results = await audit_search.measure(url, 30 if opts.quick else 300)
    for r in results:
        r.pop("plan", None)  # bench/results/audit_search.json keeps plans; this file stays small
    return {
        "documents": opts.audit_documents,
        "corpus": corpus,
        "load_s": round(load_s, 1),
        "results": results,
    }


def machine() -> dict[str, Any]:
    import os

    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: under 2 minutes")
    parser.add_argument("--repeats", type=int, help="repeats per scenario (default 3)")
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", help="comma-separated labels among 2KB, 200KB, 1MB")
    parser.add_argument("--profile", action="store_true", help="cProfile router and archiver")
    parser.add_argument(
        "--audit-documents",
        type=int,
        help="documents (with bodies) the audit search runs over (default 200000; target 1M)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    opts = Options.preset(args.quick)
    opts.out = args.out
    opts.profile = args.profile
    if args.repeats:
        opts.repeats = args.repeats
    if args.audit_documents:
        opts.audit_documents = args.audit_documents
    if args.sizes:
        keep = {s.strip() for s in args.sizes.split(",")}
        opts.sizes = [s for s in opts.sizes if s[0] in keep]
    if args.only:
        opts.sections = [s.strip() for s in args.only.split(",")]
    # The sender's and the subscriber's per-message lines would flood the terminal; the router's
    # and the archiver's (in their own processes) are kept at INFO, as deployed.
    configure_logging("WARNING")
    settings = load_settings()
    # Outside the event loop: the service checks run their own.
    endpoints = services.endpoints(settings)
    results = asyncio.run(run_all(settings, endpoints, opts))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    print(report.markdown(results))
    print(f"\nwrote {opts.out} in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
