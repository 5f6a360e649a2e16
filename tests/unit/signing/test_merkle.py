"""Merkle tree: RFC 6962 known answers, an RFC-literal oracle, properties and refusals."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signing.merkle import (
    EMPTY_ROOT,
    DictNodeStore,
    MissingNodeError,
    ProofError,
    RightEdge,
    append_leaves,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    plan_inclusion,
    root_at,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The 8-leaf tree of google/certificate-transparency and transparency-dev/merkle
# (testonly/constants.go, proof/verify_test.go).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# (level, index) -> hash, every perfect subtree of the 8-leaf tree.
NODES = {
    (0, 0): "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    (0, 1): "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    (0, 2): "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    (0, 3): "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    (0, 4): "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    (0, 5): "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    (0, 6): "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    (0, 7): "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 1): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (1, 3): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (2, 1): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (leaf index, tree size, proof) — transparency-dev numbers leaves from 1 there.
INCLUSION = [
    (0, 1, []),
    (0, 8, ["(0, 1)", "(1, 1)", "(2, 1)"]),
    (5, 8, ["(0, 4)", "(1, 3)", "(2, 0)"]),
    (2, 3, ["(1, 0)"]),
    (1, 5, ["(0, 0)", "(1, 1)", "(0, 4)"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["(0, 1)", "(1, 1)", "(2, 1)"]),
    (6, 8, ["(1, 2)", "(1, 3)", "(2, 0)"]),
    (2, 5, ["(1, 1)", "(0, 4)"]),
    (6, 7, ["(1, 2)", "(0, 6)", "(2, 0)"]),
]


def node(ref: str) -> bytes:
    level, index = (int(x) for x in ref.strip("()").split(","))
    return bytes.fromhex(NODES[(level, index)])


HASHES = [leaf_hash(d) for d in LEAVES]


def tree(n: int) -> tuple[RightEdge, DictNodeStore]:
    edge, nodes = append_leaves(
        RightEdge.empty(), 0, [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    )
    store = DictNodeStore()
    store.put_many(nodes)
    return edge, store


# --- RFC 6962 §2.1.1 / §2.1.2 written literally: the oracle for the stored-node proofs ---


def oracle_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*oracle_path(m, d[:k]), root_of(d[k:])]
    return [*oracle_path(m - k, d[k:]), root_of(d[:k])]


def oracle_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [root_of(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*oracle_subproof(m, d[:k], b), root_of(d[k:])]
    return [*oracle_subproof(m - k, d[k:], False), root_of(d[:k])]


# --- known answers ---


def test_hashes_and_roots() -> None:
    assert EMPTY_ROOT == ROOTS[0] == root_of([])
    for i, h in enumerate(HASHES):
        assert h.hex() == NODES[(0, i)]
    assert node_hash(HASHES[0], HASHES[1]).hex() == NODES[(1, 0)]
    for size in range(9):
        assert root_of(HASHES[:size]) == ROOTS[size]


def test_incremental_append_matches_vectors() -> None:
    edge, store = RightEdge.empty(), DictNodeStore()
    for size in range(1, 9):
        edge, new = append_leaves(edge, size - 1, HASHES[size - 1 : size])
        store.put_many(new)
        assert edge.size == size and edge.root() == ROOTS[size]
        assert root_at(size, store) == ROOTS[size]
    assert {k: v.hex() for k, v in store.nodes.items()} == NODES
    # Appending in one batch or one by one persists the same nodes.
    batch, new = append_leaves(RightEdge.empty(), 0, HASHES)
    assert batch == edge and sorted(new) == sorted((lv, i, h) for (lv, i), h in store.nodes.items())
    assert RightEdge.load(7, store).root() == ROOTS[7]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    _, store = tree(0)
    store.put_many([(lv, i, bytes.fromhex(h)) for (lv, i), h in NODES.items()])
    expected = [node(p) for p in proof]
    assert inclusion_proof(index, size, store) == expected
    assert oracle_path(index, HASHES[:size]) == expected
    verify_inclusion(HASHES[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    store = DictNodeStore({k: bytes.fromhex(h) for k, h in NODES.items()})
    expected = [node(p) for p in proof]
    assert consistency_proof(old, new, store) == expected
    assert oracle_subproof(old, HASHES[:new], True) == expected
    verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


# --- properties ---

SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(st.integers(1, 300), st.data())
def test_stored_proofs_equal_rfc_and_verify(n: int, data: st.DataObject) -> None:
    edge, store = tree(n)
    hashes = [store.nodes[(0, i)] for i in range(n)]
    assert edge.root() == root_of(hashes) == root_at(n, store)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    root, old_root = root_of(hashes[:size]), root_of(hashes[:old])

    calls = store.calls
    path = inclusion_proof(index, size, store)
    assert store.calls == calls + (size > 1)  # one read, whatever the size
    assert path == oracle_path(index, hashes[:size])
    verify_inclusion(hashes[index], index, size, path, root)

    sub = consistency_proof(old, size, store)
    assert sub == ([] if old in (0, size) else oracle_subproof(old, hashes[:size], True))
    verify_consistency(old, size, old_root, root, sub)

    # Any flipped byte, another index, another size or another leaf is refused. (Sizes are
    # doubled and halved as in transparency-dev: size + 1 can share a proof shape, which is
    # why a tree head signs size and root together.)
    for i, h in enumerate(path):
        for pos in (0, 31):
            bad = [*path[:i], h[:pos] + bytes([h[pos] ^ 1]) + h[pos + 1 :], *path[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(hashes[index], index, size, bad, root)
    for other_index, other_size in ((index + 1, size), (index - 1, size), (index, 2 * size)):
        if 0 <= other_index and (other_index, other_size) != (index, size):
            with pytest.raises(ProofError):
                verify_inclusion(hashes[index], other_index, other_size, path, root)
    if size > 1:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[(index + 1) % size], index, size, path, root)
    for i, h in enumerate(sub):
        bad = [*sub[:i], bytes([h[0] ^ 0x80]) + h[1:], *sub[i + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(old, size, old_root, root, bad)
    if 0 < old < size:
        for o, s in ((old + 1, size), (old - 1, size), (old, 2 * size), (old, size // 2)):
            if (o, s) != (size, size) and o <= s:
                with pytest.raises(ProofError):
                    verify_consistency(o, s, old_root, root, sub)
        with pytest.raises(ProofError):
            verify_consistency(old, size, root, old_root, sub)


@SETTINGS
@given(st.lists(st.integers(0, 40), min_size=1, max_size=8))
def test_append_in_any_batches_equals_reference(batches: list[int]) -> None:
    edge, store, hashes = RightEdge.empty(), DictNodeStore(), list[bytes]()
    for count in batches:
        fresh = [leaf_hash(len(hashes).to_bytes(4, "big") + bytes([j])) for j in range(count)]
        edge, new = append_leaves(edge, edge.size, fresh)
        assert all((lv, i) not in store.nodes for lv, i, _ in new)  # written once, never updated
        store.put_many(new)
        hashes += fresh
        assert edge.root() == root_of(hashes) == root_at(len(hashes), store)


# --- refusals ---


def test_inclusion_refusals() -> None:
    proof = [node(p) for p in INCLUSION[1][2]]
    leaf, root = HASHES[0], ROOTS[8]
    cases = [
        (leaf, 0, 8, [*proof, proof[0]], root),  # trailing hash
        (leaf, 0, 8, [ROOTS[8], *proof], root),  # preceding hash
        (leaf, 0, 8, proof[:-1], root),  # truncated
        (leaf, 0, 8, [proof[0], b"x" * 31, proof[2]], root),  # not a hash
        (b"WrongLeaf", 0, 8, proof, root),
        (leaf, 0, 8, proof, EMPTY_ROOT),
        (leaf, 8, 8, proof, root),  # index beyond the tree
        (leaf, -1, 8, proof, root),
        (leaf, 0, 0, [], EMPTY_ROOT),  # nothing is in the empty tree
        (leaf, 0, 16, proof, root),
        (leaf, 0, 4, proof, root),
    ]
    for args in cases:
        with pytest.raises(ProofError) as err:
            verify_inclusion(*args)
        assert err.value.reason


def test_consistency_refusals() -> None:
    proof = [node(p) for p in CONSISTENCY[2][2]]
    r6, r8 = ROOTS[6], ROOTS[8]
    cases = [
        (6, 8, r6, r8, []),
        (6, 8, r6, r8, proof[:-1]),
        (6, 8, r6, r8, [*proof, r8]),
        (6, 8, r6, r8, [proof[0], *proof]),
        (6, 8, r8, r6, proof),
        (8, 6, r8, r6, proof),  # time travel
        (6, 6, r6, ROOTS[5], []),  # two roots for one size
        (6, 6, r6, r6, [r6]),
        (0, 8, EMPTY_ROOT, r8, [r8]),
        (0, 8, r6, r8, []),
        (6, 8, r6[:31], r8, proof),
    ]
    for args in cases:
        with pytest.raises(ProofError) as err:
            verify_consistency(*args)
        assert err.value.reason
    verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    verify_consistency(8, 8, r8, r8, [])


def test_store_and_append_refusals() -> None:
    edge, store = tree(10)
    del store.nodes[(1, 4)]
    with pytest.raises(MissingNodeError):
        inclusion_proof(0, 10, store)
    with pytest.raises(ValueError):
        inclusion_proof(10, 10, store)
    with pytest.raises(ValueError):
        consistency_proof(11, 10, store)
    with pytest.raises(ValueError):
        append_leaves(edge, 9, [HASHES[0]])  # caller and edge disagree on the size
    with pytest.raises(ValueError):
        append_leaves(edge, 10, [b"short"])
    with pytest.raises(ValueError):
        RightEdge(3, (HASHES[0],))


def test_proof_reads_are_logarithmic() -> None:
    size = 10_000_000_000  # no tree needed: only the plan
    keys = plan_inclusion(size - 1, size).keys
    assert len(keys) <= 2 * size.bit_length()
    assert root_at(0, DictNodeStore()) == EMPTY_ROOT
