"""bench/results/latest.json as a markdown table: every figure with its baseline, the ratio, and
the target it is read against (where we stand, not a pass/fail)."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, str, str, str]


def _m(spread: dict[str, float] | None, unit: str = "") -> str:
    if not spread:
        return "–"
    return f"{_num(spread['median'])}{unit} [{_num(spread['min'])}–{_num(spread['max'])}]"


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def _ratio(ours: float | None, base: float | None) -> str:
    return f"{ours / base:.2f}" if ours is not None and base else "–"


def _med(s: dict[str, Any] | None, key: str) -> float | None:
    return s[key]["median"] if s and key in s else None


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, sc in results["scenarios"].items():
        if name.startswith(("throughput", "steady")):
            out += _exchange_rows(name, sc)
    if arch := results["scenarios"].get("archive"):
        ours = [r["rows_per_s"] for r in arch["archiver"]]
        raw = [r["rows_per_s"] for r in arch["raw_copy"]]
        out.append(
            (
                f"archive ({arch['records']} records, ~{arch['mean_record_bytes']} B)",
                "rows/s written",
                _m(_spread(ours)),
                _m(_spread(raw)),
                _ratio(statistics.median(ours), statistics.median(raw)),
                "≥ 0.50 of raw COPY",
            )
        )
        peak = max(r["archiver_peak_rss_mb"] for r in arch["archiver"])
        out.append(("archive", "archiver peak RSS", f"{peak:.0f} MiB", "–", "–", ""))
        if check := arch.get("audit_check"):
            tree, full = check["tree"], check["tree_and_rows"]
            out.append(
                (
                    f"audit check ({full['records']} records)",
                    "records/s: with every row re-derived (vs the Merkle half alone)",
                    f"{full['records_per_s']:,.0f}",
                    f"{tree['records_per_s']:,.0f}",
                    _ratio(full["records_per_s"], tree["records_per_s"]),
                    "",
                )
            )
    if audit := results["scenarios"].get("audit"):
        corpus = audit.get("corpus") or {}
        scenario = f"audit search ({audit['documents']:,} docs)"
        if corpus.get("body_chars_mean") is not None:
            out.append(
                (
                    scenario,
                    "corpus: body characters mean / max; table + indexes",
                    f"{corpus['body_chars_mean']:,} / {corpus['body_chars_max']:,}; "
                    f"{(corpus['table_bytes'] + corpus['index_bytes']) / 2**30:.1f} GiB",
                    "–",
                    "–",
                    "",
                )
            )
        for r in audit["results"]:
            # The baseline of a text search: the same words, subject only, as before 0008.
            old = r.get("before_0008")
            ratio = "–"
            if old:
                ratio = f"{r['p95_ratio']:.2f}"
                ratio += f" (CPU {r['cpu_p95_ratio']:.2f})" if "cpu_p95_ratio" in r else ""
            out.append(
                (
                    scenario,
                    f"{r['search']}: p50 / p95 / p99 (server CPU p50 / p95)",
                    _audit_latency(r),
                    _audit_latency(old) if old else "–",
                    ratio,
                    "p95 < 200 ms",
                )
            )
    if pr := results["scenarios"].get("proofs"):
        for store in ("dict", "postgres"):
            s = pr[store]
            out.append(
                (
                    f"inclusion proof ({pr['leaves']:,} leaves)",
                    f"{store} store: p50 / p99",
                    f"{s['p50_ms']:.3f} / {s['p99_ms']:.3f} ms",
                    "–",
                    "–",
                    "",
                )
            )
    for r in results["scenarios"].get("signing", []):
        out.append(
            (
                f"signing {r['algorithm']}",
                f"{r['op']} /s",
                _num(r["ours_per_s"]),
                _num(r["raw_per_s"]),
                f"{r['ratio']:.2f}",
                "",
            )
        )
    for r in results["scenarios"].get("codec", []):
        out.append(
            (
                f"codec ({r['bytes']} B)",
                f"{r['case']} /s",
                f"{_num(r['ours_per_s'])} [{_num(r['ours_min'])}–{_num(r['ours_max'])}]",
                _num(r["raw_per_s"]),
                f"{r['ratio']:.2f}",
                "",
            )
        )
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _exchange_rows(name: str, sc: dict[str, Any]) -> list[Row]:
    pipe, base = sc.get("pipeline"), sc.get("baseline")
    ps: dict[str, Any] = (pipe or {}).get("summary") or {}
    bs: dict[str, Any] = (base or {}).get("summary") or {}
    measured = (pipe or base or {}).get("repeats")
    if not measured:
        return []  # a scenario this run did not measure (--only)
    size = measured[0]["bytes"]
    label = f"{name} ({size:,} B)"
    steady = name.startswith("steady")
    keys = [("docs/s", "docs_per_s", "")] if not steady else []
    keys += [(f"send→delivered {p}", f"{p}_ms", " ms") for p in ("p50", "p95", "p99")]
    out: list[Row] = []
    for figure, key, unit in keys:
        if key == "docs_per_s":
            target = "≥ 0.50 of raw Kafka" if "2KB" in name else ""
        else:
            target = "< 250 ms" if steady and key == "p99_ms" else ""
        out.append(
            (
                label,
                figure,
                _m(ps.get(key), unit),
                _m(bs.get(key), unit),
                _ratio(_med(ps, key), _med(bs, key)),
                target,
            )
        )
    for stage, title in (
        ("acked", "stage: send→acked (seal + broker ack)"),
        ("routed", "stage: send→routed (router's decision)"),
        ("routed_to_delivered", "stage: routed→delivered (transaction, inbox, verify)"),
    ):
        if f"{stage}_p50_ms" in ps:
            p50, p99 = _med(ps, f"{stage}_p50_ms"), _med(ps, f"{stage}_p99_ms")
            out.append((label, f"{title} p50 / p99", f"{_num(p50)} / {_num(p99)} ms", "–", "–", ""))
    if ps:
        out.append((label, "send→archived p99", _m(ps.get("archived_p99_ms"), " ms"), "–", "–", ""))
        if not steady:
            out.append((label, "archived docs/s", _m(ps.get("archived_docs_per_s")), "–", "–", ""))
    cpu = [k for k in ps if k.startswith("cpu_ms_per_doc_")]
    base_cpu = [k for k in bs if k.startswith("cpu_ms_per_doc_")]
    if cpu:
        ours_total = sum(ps[k]["median"] for k in cpu)
        base_total = sum(bs[k]["median"] for k in base_cpu)
        out.append(
            (
                label,
                "CPU ms per document",
                ", ".join(f"{k[15:]} {_num(ps[k]['median'])}" for k in cpu),
                ", ".join(f"{k[15:]} {_num(bs[k]['median'])}" for k in base_cpu) or "–",
                _ratio(ours_total, base_total),
                "",
            )
        )
        out.append(
            (
                label,
                "machine busy share (2 CPUs)",
                _m(ps.get("machine_busy_share")),
                _m(bs.get("machine_busy_share")),
                "–",
                "",
            )
        )
    if pipe:
        mem = ", ".join(
            f"{k} {v['peak_rss_mb']:.0f}" for k, v in pipe["processes"].items() if v["peak_rss_mb"]
        )
        relay_peak = 0.0
        for r in (base or {}).get("repeats", []):
            relay_peak = max(relay_peak, float(r.get("relay_peak_rss_mb") or 0.0))
        relay = f"relay {relay_peak:.0f}" if relay_peak else "–"
        out.append((label, "peak RSS (MiB)", mem, relay, "–", ""))
    return out


def markdown(results: dict[str, Any]) -> str:
    head = ("scenario", "figure", "lienthong: median [min–max]", "baseline", "ratio", "target")
    lines = [
        f"lienthong benchmarks, run {results['run_id']} ({'quick' if results['quick'] else 'full'}"
        f", {results['repeats']} repeats; {results['machine']['cpus']} CPUs)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", type=Path, nargs="?", default=Path(__file__).parent / "results" / "latest.json"
    )
    args = parser.parse_args()
    print(markdown(json.loads(args.path.read_text())))


if __name__ == "__main__":
    main()


def _audit_latency(r: dict[str, Any]) -> str:
    text = f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f} ms"
    if "cpu_p50_ms" in r:
        text += f" (CPU {r['cpu_p50_ms']:.1f} / {r['cpu_p95_ms']:.1f})"
    return text
