"""Inclusion proofs over a 1M-leaf tree: built in memory (DictNodeStore), and read from the
archive's merkle_node table through consumers.audit.verify's PgNodeStore."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

import asyncpg

from bench.common import BenchRun, latency_summary
from consumers.audit import PgNodeStore
from signing.merkle import (
    DictNodeStore,
    RightEdge,
    append_leaves,
    inclusion_proof,
    plan_inclusion,
    verify_inclusion,
)

CHUNK = 65_536


def build_tree(leaves: int) -> tuple[DictNodeStore, list[bytes], bytes, float]:
    """Leaf hashes of synthetic records, appended in archiver-sized chunks."""
    store = DictNodeStore()
    edge = RightEdge.empty()
    hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(leaves)]
    started = time.perf_counter()
    for i in range(0, leaves, CHUNK):
        edge, nodes = append_leaves(edge, edge.size, hashes[i : i + CHUNK])
        store.put_many(nodes)
    return store, hashes, edge.root(), time.perf_counter() - started


def time_dict_proofs(
    store: DictNodeStore, hashes: list[bytes], root: bytes, samples: int
) -> dict[str, Any]:
    rng = random.Random(1)
    size = len(hashes)
    durations = []
    for _ in range(samples):
        index = rng.randrange(size)
        started = time.perf_counter()
        proof = inclusion_proof(index, size, store)
        verify_inclusion(hashes[index], index, size, proof, root)
        durations.append((time.perf_counter() - started) * 1000)
    return {"samples": samples, **latency_summary(durations)}


async def time_pg_proofs(
    url: str, hashes: list[bytes], root: bytes, samples: int
) -> dict[str, Any]:
    """One round trip for the nodes (as load_evidence does), then the fold and the check."""
    conn = await asyncpg.connect(url)
    try:
        store = PgNodeStore(conn)
        rng = random.Random(2)
        size = len(hashes)
        durations = []
        for _ in range(samples):
            index = rng.randrange(size)
            started = time.perf_counter()
            plan = plan_inclusion(index, size)
            proof = plan.assemble(await store.get_many(plan.keys))
            verify_inclusion(hashes[index], index, size, proof, root)
            durations.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return {"samples": samples, **latency_summary(durations)}


async def measure(run: BenchRun, leaves: int, samples: int) -> dict[str, Any]:
    store, hashes, root, build_s = build_tree(leaves)
    dict_proofs = time_dict_proofs(store, hashes, root, samples)
    # The same nodes in a scratch archive's merkle_node (its real table and primary key).
    url = await run.create_database("_merkle")
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        nodes = [(lv, idx, h) for (lv, idx), h in store.nodes.items()]
        await conn.copy_records_to_table(
            "merkle_node", records=nodes, columns=("level", "idx", "hash")
        )
        await conn.execute("ANALYZE merkle_node")
        load_s = time.perf_counter() - started
    finally:
        await conn.close()
    del store
    pg_proofs = await time_pg_proofs(url, hashes, root, samples)
    return {
        "leaves": leaves,
        "build_s": round(build_s, 2),
        "pg_load_s": round(load_s, 2),
        "dict": dict_proofs,
        "postgres": pg_proofs,
    }
