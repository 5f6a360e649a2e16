"""The witness's decisions, over a real Merkle tree and a real state file: cosign the first and
every consistent larger head, never a smaller one, refuse a split view and an inconsistent head
with both signed statements as evidence, and keep its state before it cosigns."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.witness import Refused, Witness, load_state
from signing.merkle import DictNodeStore, RightEdge, append_leaves, consistency_proof
from signing.note import (
    COSIGNATURE_V1,
    ED25519,
    Checkpoint,
    NoteSigner,
    parse_note,
    sign_note,
    verify_cosignature,
)

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
LOG = NoteSigner.generate("lienthong.archive/000.00.00.H26", ED25519)
ME = NoteSigner.generate("bo-noi-vu.gov.vn/witness", COSIGNATURE_V1)
LEAVES = [hashlib.sha256(b"leaf %d" % i).digest() for i in range(20)]


def tree(leaves: list[bytes]) -> tuple[DictNodeStore, list[bytes]]:
    """The store and the root at every size 0..len(leaves)."""
    store, edge, roots = DictNodeStore(), RightEdge.empty(), [RightEdge.empty().root()]
    for leaf in leaves:
        edge, nodes = append_leaves(edge, edge.size, [leaf])
        store.put_many(nodes)
        roots.append(edge.root())
    return store, roots


STORE, ROOTS = tree(LEAVES)


def checkpoint(size: int, root: bytes | None = None, signer: NoteSigner = LOG) -> bytes:
    text = Checkpoint(LOG.name, size, ROOTS[size] if root is None else root).text()
    return sign_note(text, signer).encode()


def witness(tmp_path: Path, store: DictNodeStore = STORE) -> Witness:
    async def proofs(old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, store)

    return Witness(ME, LOG.verifier, tmp_path / "state.json", proofs, lambda: NOW)


async def test_cosigns_the_first_and_each_consistent_larger_head(tmp_path: Path) -> None:
    w = witness(tmp_path)
    first = await w.observe(checkpoint(5))
    assert first is not None and verify_cosignature(first, ME.verifier) == int(NOW.timestamp())
    state = load_state(tmp_path / "state.json")
    assert state is not None and (state.size, state.root) == (5, ROOTS[5])
    later = await w.observe(checkpoint(13))
    assert later is not None and parse_note(later.encode()).text.split("\n")[1] == "13"
    # Read again from the topic's beginning: an older consistent head is skipped, not cosigned.
    assert await witness(tmp_path).observe(checkpoint(5)) is None
    again = await witness(tmp_path).observe(checkpoint(13))  # republished: same statement
    assert again is not None


async def test_a_split_view_is_refused_with_both_statements(tmp_path: Path) -> None:
    w = witness(tmp_path)
    await w.observe(checkpoint(8))
    forked = checkpoint(8, hashlib.sha256(b"other").digest())
    with pytest.raises(Refused) as refused:
        await w.observe(forked)
    assert refused.value.reason == "SPLIT_VIEW"
    assert refused.value.evidence == (checkpoint(8).decode(), forked.decode())
    state = load_state(tmp_path / "state.json")
    assert state is not None and state.root == ROOTS[8]  # the state was not moved


async def test_an_inconsistent_larger_or_smaller_head_is_refused(tmp_path: Path) -> None:
    # The log rewrote leaf 3 and serves proofs of its rewritten tree.
    other_store, other_roots = tree([*LEAVES[:3], hashlib.sha256(b"x").digest(), *LEAVES[4:]])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    w = witness(tmp_path / "a", other_store)
    await w.observe(checkpoint(5))  # cosigned before the rewrite
    with pytest.raises(Refused) as refused:
        await w.observe(checkpoint(12, other_roots[12]))
    assert refused.value.reason == "INCONSISTENT" and len(refused.value.evidence) == 2
    state = load_state(tmp_path / "a" / "state.json")
    assert state is not None and state.size == 5
    w2 = witness(tmp_path / "b", other_store)
    await w2.observe(checkpoint(12, other_roots[12]))
    with pytest.raises(Refused) as refused:
        await w2.observe(checkpoint(5))  # the honest 5 is not a prefix of the rewritten 12
    assert refused.value.reason == "INCONSISTENT"


async def test_a_checkpoint_not_signed_by_the_log_is_refused(tmp_path: Path) -> None:
    impostor = NoteSigner.generate(LOG.name, ED25519)
    with pytest.raises(Refused) as refused:
        await witness(tmp_path).observe(checkpoint(3, signer=impostor))
    assert refused.value.reason == "BAD_CHECKPOINT"
    assert load_state(tmp_path / "state.json") is None
