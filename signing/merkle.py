"""RFC 6962 / RFC 9162 Merkle tree: hashing, incremental append, proofs over stored nodes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A perfect subtree: (level, index) covers leaves [index * 2**level, (index + 1) * 2**level).
NodeKey = tuple[int, int]


class ProofError(ValueError):
    """A proof does not prove what it claims; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MissingNodeError(LookupError):
    """The node store lacks a node the proof needs: the store is incomplete, not the proof."""


def leaf_hash(data: bytes) -> bytes:
    """MTH of one entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right); the prefixes keep leaves and nodes apart."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 §2.1 defines it: the reference every other path must match."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def _fold(hashes: Sequence[bytes]) -> bytes:
    # Perfect subtrees of a range, largest (leftmost) first: the range's MTH nests to the
    # right, H(a, H(b, c)), so the fold runs right to left.
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def range_keys(start: int, size: int) -> tuple[NodeKey, ...]:
    """The perfect subtrees covering [start, start + size), largest first.

    `start` must be a multiple of the largest power of two in `size`, which holds for every
    range RFC 6962's recursive split produces (and for [0, n)).
    """
    keys = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            if pos % (1 << level):
                raise ValueError(f"range [{start}, {start + size}) is not split-aligned")
            keys.append((level, pos >> level))
            pos += 1 << level
    return tuple(keys)


class NodeStore(Protocol):
    """Where completed perfect-subtree hashes live (PostgreSQL in the archive)."""

    def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]: ...


class DictNodeStore:
    """In-memory NodeStore, for tests and small tools."""

    def __init__(self, nodes: Mapping[NodeKey, bytes] | None = None) -> None:
        self.nodes: dict[NodeKey, bytes] = dict(nodes or {})
        self.calls = 0  # get_many round trips, so tests can hold proofs to one read

    def put_many(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        for level, index, digest in nodes:
            self.nodes[(level, index)] = digest

    def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.calls += 1
        return {k: self.nodes[k] for k in keys if k in self.nodes}


@dataclass(frozen=True, slots=True)
class RightEdge:
    """The compact range of a tree: roots of the perfect subtrees covering [0, size)."""

    size: int
    nodes: tuple[bytes, ...]  # largest subtree first, one per set bit of size

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.nodes) != self.size.bit_count():
            raise ValueError(f"a right edge of size {self.size} has {self.size.bit_count()} nodes")

    @classmethod
    def empty(cls) -> RightEdge:
        return cls(0, ())

    def keys(self) -> tuple[NodeKey, ...]:
        return range_keys(0, self.size)

    def root(self) -> bytes:
        return _fold(self.nodes) if self.nodes else EMPTY_ROOT

    @classmethod
    def load(cls, size: int, store: NodeStore) -> RightEdge:
        """Rebuild the right edge from stored nodes (one read), e.g. when the archiver restarts."""
        keys = range_keys(0, size)
        found = _fetch(store, keys)
        return cls(size, tuple(found[k] for k in keys))


def append_leaves(
    right_edge: RightEdge, start_size: int, leaf_hashes: Sequence[bytes]
) -> tuple[RightEdge, list[tuple[int, int, bytes]]]:
    """Append leaves; return the new edge and every node completed by them, leaves included.

    Persisting the returned (level, index, hash) triples is all a store needs: a perfect
    subtree never changes once complete, so nodes are written once and never updated.
    """
    if start_size != right_edge.size:
        raise ValueError(f"right edge has size {right_edge.size}, caller says {start_size}")
    levels = [lv for lv, _ in right_edge.keys()]
    stack = list(zip(levels, right_edge.nodes, strict=True))
    new_nodes: list[tuple[int, int, bytes]] = []
    index = start_size
    for digest in leaf_hashes:
        if len(digest) != HASH_SIZE:
            raise ValueError(f"leaf hash {index} is {len(digest)} bytes, not {HASH_SIZE}")
        new_nodes.append((0, index, digest))
        level, acc = 0, digest
        # Binary carry: two subtrees of one level merge into their parent.
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            level, acc = level + 1, node_hash(left, acc)
            new_nodes.append((level, index >> level, acc))
        stack.append((level, acc))
        index += 1
    return RightEdge(index, tuple(h for _, h in stack)), new_nodes


def _fetch(store: NodeStore, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
    wanted = sorted(set(keys))
    found = store.get_many(wanted) if wanted else {}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise MissingNodeError(f"node store lacks {len(missing)} node(s), first {missing[0]}")
    return found


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """Which stored nodes a proof needs, and how to fold them into proof hashes.

    Separate from fetching so an async repository can read `keys` in one query and call
    `assemble` itself.
    """

    parts: tuple[tuple[NodeKey, ...], ...]  # one per proof hash: the subtrees whose fold it is

    @property
    def keys(self) -> list[NodeKey]:
        return sorted({k for part in self.parts for k in part})

    def assemble(self, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
        try:
            return [_fold([nodes[k] for k in part]) for part in self.parts]
        except KeyError as exc:
            raise MissingNodeError(f"missing node {exc.args[0]}") from None

    def run(self, store: NodeStore) -> list[bytes]:
        return self.assemble(_fetch(store, self.keys))


def plan_root(size: int) -> ProofPlan:
    if size < 0:
        raise ValueError("tree size is negative")
    return ProofPlan((range_keys(0, size),) if size else ())


def plan_inclusion(index: int, size: int) -> ProofPlan:
    """PATH(index, D[size]) of RFC 6962 §2.1.1, as perfect-subtree folds, leaf end first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    siblings: list[tuple[NodeKey, ...]] = []  # collected root first, reversed at the end
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            siblings.append(range_keys(start + k, n - k))
            n = k
        else:
            siblings.append(range_keys(start, k))
            start, n, m = start + k, n - k, m - k
    return ProofPlan(tuple(reversed(siblings)))


def plan_consistency(old_size: int, new_size: int) -> ProofPlan:
    """PROOF(old, D[new]) = SUBPROOF(old, D[new], true) of RFC 6962 §2.1.2."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return ProofPlan(())
    tail: list[tuple[NodeKey, ...]] = []
    start, n, m, complete = 0, new_size, old_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            tail.append(range_keys(start + k, n - k))
            n = k
        else:
            tail.append(range_keys(start, k))
            start, n, m, complete = start + k, n - k, m - k, False
    # SUBPROOF(m, D[m], b): nothing when D[m] is the old tree itself, else its root.
    head = [] if complete else [range_keys(start, m)]
    return ProofPlan((*head, *reversed(tail)))


def root_at(size: int, store: NodeStore) -> bytes:
    """MTH of the first `size` leaves, from at most log2(size) stored nodes."""
    hashes = plan_root(size).run(store)
    return hashes[0] if hashes else EMPTY_ROOT


def inclusion_proof(index: int, size: int, store: NodeStore) -> list[bytes]:
    return plan_inclusion(index, size).run(store)


def consistency_proof(old_size: int, new_size: int, store: NodeStore) -> list[bytes]:
    return plan_consistency(old_size, new_size).run(store)


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{name} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2), or ProofError."""
    _check_hash("leaf hash", leaf)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is high")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree `root`."""
    _check_hash("root", root)
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the tree head root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless tree `new_root` extends tree `old_root` (RFC 9162 §2.1.4.2)."""
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree cannot shrink from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for tree size {old_size}")
        return
    if old_size == 0:
        # Every tree extends the empty one; a non-empty proof is malformed, not harmless.
        if proof:
            raise ProofError("proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("root of the empty tree is not SHA-256('')")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a proof node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {new_size}")
