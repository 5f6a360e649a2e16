"""`make bench-secure`: the raw Kafka baseline (produce acks=all -> transactional relay ->
read_committed consume) on a 3-node cluster, plaintext beside TLS + client certificates + ACLs.

Each mode gets a fresh cluster in its own directory, one after the other (never six JVMs on the
machine at once), RF 3 and min.insync.replicas=2 in both. In the secure mode every client is
`User:lienthong-bench`, an ordinary principal with prefixed ACLs (not a super user, so each
request pays the authorizer too). Writes bench/results/secure-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baseline
from bench.common import BenchRun, combine
from infra.acl import AclAdmin, AclRule
from infra.services import cluster
from infra.settings import Settings, load_settings
from signing.profile import TransportKind

PRINCIPAL = "lienthong-bench"
RESULTS = Path(__file__).parent / "results" / "secure-latest.json"


def bench_acls(prefix: str) -> list[AclRule]:
    user = f"User:{PRINCIPAL}"
    rules = [AclRule(user, "TOPIC", "PREFIXED", prefix, op) for op in ("READ", "WRITE", "DESCRIBE")]
    rules += [AclRule(user, "TOPIC", "PREFIXED", prefix, "CREATE")]
    rules += [AclRule(user, "GROUP", "PREFIXED", prefix, "READ")]
    rules += [
        AclRule(user, "TRANSACTIONAL_ID", "PREFIXED", prefix, op) for op in ("WRITE", "DESCRIBE")
    ]
    rules += [AclRule(user, "CLUSTER", "LITERAL", "kafka-cluster", "IDEMPOTENT_WRITE")]
    return rules


def _security_env(settings: Settings) -> dict[str, str]:
    security = cluster.transport(settings).client_security(PRINCIPAL)
    return {
        "LIENTHONG_KAFKA_SECURITY_PROTOCOL": security.protocol.value,
        "LIENTHONG_KAFKA_CA_FILE": str(security.ca_file),
        "LIENTHONG_KAFKA_CERT_FILE": str(security.cert_file),
        "LIENTHONG_KAFKA_KEY_FILE": str(security.key_file),
    }


async def _measure(run: BenchRun, opts: argparse.Namespace) -> dict[str, Any]:
    # The fresh JVMs are still compiling their hot paths: repeats kept rising by half in the
    # first runs. One discarded round first, the same in both modes.
    for _ in range(opts.warmup):
        await baseline.measure(
            run, size=opts.size, count=opts.count, concurrency=opts.concurrency, tag="warm"
        )
    reps = []
    for _ in range(opts.repeats):
        reps.append(
            await baseline.measure(
                run, size=opts.size, count=opts.count, concurrency=opts.concurrency, tag="sec"
            )
        )
    return {"repeats": reps, "summary": combine(reps)}


def run_mode(secure: bool, work: Path, opts: argparse.Namespace) -> dict[str, Any]:
    home = work / ("secure" if secure else "plaintext")
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_KAFKA_")}
    env["LIENTHONG_HOME"] = str(home)
    settings = load_settings(env)
    saved = dict(os.environ)
    try:
        status = cluster.start(settings, brokers=3, secure=secure)
        assert status.bootstrap
        if secure:
            tp = cluster.transport(settings)
            tp.issue(TransportKind.SERVICE, PRINCIPAL, now=datetime.now(UTC))
            admin = cluster.admin_security(settings)
            run_id = f"s{int(time.time())}"
            AclAdmin(status.bootstrap, admin.librdkafka_options()).add(
                bench_acls(f"bench.{run_id}.")
            )
            security_env = _security_env(settings)
            settings = load_settings({**env, **security_env})
        else:
            run_id = f"p{int(time.time())}"
            security_env = {}
        # The relay is a child process: it reads its TLS settings from the environment.
        os.environ.clear()
        os.environ.update({**env, **security_env})
        private = dataclasses.replace(settings, topic_prefix=f"bench.{run_id}.")
        brokers = {f"broker{n.node_id}": n.pid for n in status.nodes if n.pid}
        run = BenchRun(
            private, status.bootstrap, "", run_id, home / "work", replication=3, meter_pids=brokers
        )
        run.work.mkdir(parents=True, exist_ok=True)
        measured = asyncio.run(_measure(run, opts))
        for rep in measured["repeats"]:
            rep["cpu_ms_per_doc_brokers"] = round(
                sum(v for k, v in rep.items() if k.startswith("cpu_ms_per_doc_broker")), 3
            )
        measured["summary"] = combine(measured["repeats"])
        return measured
    finally:
        os.environ.clear()
        os.environ.update(saved)
        cluster.stop(settings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--size", type=int, default=2048, help="payload bytes")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds per mode")
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lienthong-bench-secure-"))
    work.chmod(0o755)
    plain = run_mode(False, work, opts)
    secure = run_mode(True, work, opts)
    shutil.rmtree(work, ignore_errors=True)  # kept after a failure: the nodes' logs are there
    p = plain["summary"]["docs_per_s"]["median"]
    s = secure["summary"]["docs_per_s"]["median"]
    result = {
        "at": datetime.now(UTC).isoformat(),
        "settings": vars(opts) | {"out": str(opts.out)},
        "plaintext": plain,
        "tls_acl": secure,
        "ratio_docs_per_s": round(s / p, 3),
        "target_ratio": 0.85,
        # CPU per document does not depend on what else the shared machine runs; throughput does.
        "ratio_cpu_per_doc": {
            who: round(
                secure["summary"][f"cpu_ms_per_doc_{who}"]["median"]
                / plain["summary"][f"cpu_ms_per_doc_{who}"]["median"],
                3,
            )
            for who in ("bench", "relay", "brokers")
        },
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, mode in (("plaintext", plain), ("TLS+ACL", secure)):
        summary = mode["summary"]
        print(
            f"{name:10} {summary['docs_per_s']['median']:>8} docs/s  "
            f"p50 {summary['p50_ms']['median']} ms  p99 {summary['p99_ms']['median']} ms  "
            f"CPU ms/doc: brokers {summary['cpu_ms_per_doc_brokers']['median']}, "
            f"relay {summary['cpu_ms_per_doc_relay']['median']}, "
            f"client {summary['cpu_ms_per_doc_bench']['median']}  "
            f"machine busy {summary['machine_busy_share']['median']}"
        )
    print(f"throughput ratio {result['ratio_docs_per_s']} (target >= 0.85)")
    print(f"CPU per document, TLS+ACL / plaintext: {result['ratio_cpu_per_doc']}")


if __name__ == "__main__":
    main()
