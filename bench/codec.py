"""Micro-benchmark: encode/decode of a seed OfficialDocument through our codec next to raw fastavro.

Run: python -m bench.codec [--seconds S]. Same record, same parsed schema: the ratio is the
cost of our layer (domain objects, validation, single-object framing, schema resolution).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from schemas.codec import decode, encode, encode_payload
from schemas.document import OfficialDocument, document_from_record, document_to_record
from schemas.registry import default_registry
from schemas.samples import example_record

RESULTS = Path(__file__).parent / "results" / "codec.json"


def _rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def _document() -> OfficialDocument:
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    return doc


def measure(seconds: float, repeats: int) -> list[dict[str, object]]:
    doc = _document()
    record = document_to_record(doc)
    schema = default_registry().latest("official_document").parsed
    _, _, ours_bytes = encode_payload(doc)

    def raw_encode() -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, record)
        return buf.getvalue()

    raw_bytes = raw_encode()

    def raw_decode() -> object:
        return fastavro.schemaless_reader(io.BytesIO(raw_bytes), schema, schema)

    cases = [
        ("encode record", lambda: encode("official_document", record), raw_encode),
        ("decode record", lambda: decode(ours_bytes), raw_decode),
        ("encode domain object", lambda: encode_payload(doc), raw_encode),
        (
            "decode to domain object",
            lambda: document_from_record(decode(ours_bytes).record),
            raw_decode,
        ),
    ]
    rows: list[dict[str, object]] = []
    for name, ours, raw in cases:
        ours_rates = [_rate(ours, seconds) for _ in range(repeats)]
        raw_rates = [_rate(raw, seconds) for _ in range(repeats)]
        rows.append(
            {
                "case": name,
                "bytes": len(ours_bytes),
                "ours_per_s": statistics.median(ours_rates),
                "raw_per_s": statistics.median(raw_rates),
                "ours_min": min(ours_rates),
                "ours_max": max(ours_rates),
                "ratio": statistics.median(ours_rates) / statistics.median(raw_rates),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="0.1 s per case, 3 repeats")
    args = parser.parse_args()
    seconds = 0.1 if args.quick else args.seconds
    rows = measure(seconds, args.repeats)
    print(f"OfficialDocument of {rows[0]['bytes']} bytes (median of {args.repeats} runs)")
    print(f"{'case':<26}{'ours/s':>10}{'raw fastavro/s':>16}{'ours/raw':>10}")
    for r in rows:
        print(f"{r['case']:<26}{r['ours_per_s']:>10.0f}{r['raw_per_s']:>16.0f}{r['ratio']:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
