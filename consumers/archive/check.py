"""`audit check`: recompute the archive's leaves, tree and signed heads from its rows, streaming.

Every finding names what was altered: the record (seq, message id, topic/partition/offset), the
node, or the tree head. The checker trusts nothing stored but the trust store: leaf data is
recomputed from the columns, digests from the bytes, the tree from the leaves.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from consumers.archive.derived import check_derived
from consumers.archive.leaf import record_leaf
from consumers.archive.parse import ParseContext
from consumers.archive.store import fetch_nodes
from consumers.archive.witnessed import Statement, Witnessed, WitnessPolicy, gather
from signing.errors import VerificationError
from signing.merkle import (
    MissingNodeError,
    ProofError,
    RightEdge,
    append_leaves,
    leaf_hash,
    plan_consistency,
    verify_consistency,
)
from signing.merkle_leaf import LeafFormatError, decode_leaf
from signing.treehead import signed_tree_head_from_json, verify_tree_head
from signing.trust import TrustStore

# The database hashes the bytes (pg_catalog's, not a look-alike on the search path), so
# multi-megabyte envelopes are not shipped to the checker.
RECORDS = """
SELECT seq, topic, partition, "offset", message_id, raw IS NULL AS secret,
       pg_catalog.sha256(raw) AS raw_digest, raw_sha256, leaf_data, leaf_hash, archived_at
FROM archive_record ORDER BY seq
"""
HEADS = "SELECT size, root, signed::text AS signed FROM tree_head ORDER BY size"

# The KPI's summaries (migration 0012) against their definitions over the archived rows: each
# copy of kpi_copy against kpi_copy_derived (from delivery, status_event and document), each
# row of a fresh month of kpi_month against lt_kpi_month (a month marked stale is not read by
# anyone: it is counted again when shown). Summaries, not evidence, but the KPI reads them: an
# edit there would change the figures without touching a record.
KPI_COPIES = """
SELECT format('the KPI''s copy of %s to %s', coalesce(k.document_id, d.document_id),
              coalesce(k.recipient, d.recipient)) AS what,
       to_jsonb(k) - 'document_id' - 'recipient' AS stored,
       to_jsonb(d) - 'document_id' - 'recipient' AS derived
FROM kpi_copy k FULL JOIN kpi_copy_derived d
  ON d.document_id = k.document_id AND d.recipient = k.recipient
WHERE k IS DISTINCT FROM d
ORDER BY coalesce(k.document_id, d.document_id), coalesce(k.recipient, d.recipient)
"""
KPI_MONTHS = """
WITH fresh AS (
    SELECT month FROM (
        SELECT month FROM kpi_month
        UNION SELECT lt_vn_month(submitted_at) FROM document
        UNION SELECT date_trunc('month', promulgation_date)::date FROM document
        UNION SELECT lt_vn_month(delivered_at) FROM delivery
        UNION SELECT lt_vn_month(at) FROM status_event
        UNION SELECT date_trunc('month', due_date)::date FROM kpi_copy
    ) AS every_month
    WHERE month IS NOT NULL AND month NOT IN (SELECT month FROM kpi_month_stale)
), derived AS (
    SELECT f.* FROM fresh CROSS JOIN LATERAL lt_kpi_month(fresh.month) AS f
), stored AS (
    SELECT k.* FROM kpi_month k JOIN fresh USING (month)
)
SELECT format('the KPI''s figures of %s for %s', coalesce(s.agency, d.agency),
              to_char(coalesce(s.month, d.month), 'YYYY-MM')) AS what,
       to_jsonb(s) - 'month' - 'agency' AS stored, to_jsonb(d) - 'month' - 'agency' AS derived
FROM stored s FULL JOIN derived d ON d.month = s.month AND d.agency = s.agency
WHERE s IS DISTINCT FROM d
ORDER BY coalesce(s.month, d.month), coalesce(s.agency, d.agency)
"""
# How many differing rows of each are named one by one; the rest are counted.
KPI_NAMED = 20


@dataclass(frozen=True, slots=True)
class Finding:
    problem: str
    seq: int | None = None
    message_id: str | None = None
    source: str | None = None  # topic/partition/offset

    def line(self) -> str:
        where = [f"seq={self.seq}"] if self.seq is not None else []
        if self.source:
            where.append(f"source={self.source}")
        if self.message_id:
            where.append(f"message_id={self.message_id}")
        return f"TAMPERED {' '.join(where)}: {self.problem}".replace("TAMPERED :", "TAMPERED")


@dataclass(slots=True)
class CheckReport:
    records: int = 0
    nodes: int = 0
    heads: int = 0
    derived: int | None = None  # records whose derived rows were parsed again (None: not asked)
    witnessed: int | None = None  # size of the newest checkpoint the quorum cosigned
    # Dead letters archived before their headers were kept (docs/evidence.md, "Dead letters"):
    # their rejection rows cannot be derived again. Said once, in the summary: no finding.
    legacy_dead_letters: int = 0
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "TAMPERED" if self.findings else "intact"
        derived = "" if self.derived is None else f", {self.derived} re-derived"
        if self.witnessed is not None:
            derived += f", witnessed up to {self.witnessed}"
        legacy = ""
        if self.legacy_dead_letters:
            legacy = (
                f"; {self.legacy_dead_letters} dead letters archived before their headers were "
                "kept: their rejection rows are not re-derived"
            )
        return (
            f"{verdict}: {self.records} records, {self.nodes} Merkle nodes, "
            f"{self.heads} signed tree heads checked{derived}; {len(self.findings)} findings"
            f"{legacy}"
        )


@dataclass(frozen=True, slots=True)
class _Head:
    size: int
    root: bytes
    signed: str


# How long a record may wait for a signed tree head before its absence is a finding: the
# archiver signs every checkpoint_seconds (60 by default) and on shutdown.
HEAD_GRACE = timedelta(minutes=10)

# The archiver stores each partition's next offset in the same transaction as the records it
# read: the record just below it must exist, and no record may be at or above it.
OFFSETS_WITHOUT_RECORDS = """
SELECT o.topic, o.partition, o.next_offset FROM archive_offset o
WHERE NOT EXISTS (SELECT 1 FROM archive_record r WHERE r.topic = o.topic
                  AND r.partition = o.partition AND r."offset" = o.next_offset - 1)
ORDER BY o.topic, o.partition
"""
RECORDS_WITHOUT_OFFSETS = """
SELECT r.topic, r.partition, max(r."offset") AS last, min(r.seq) AS seq FROM archive_record r
LEFT JOIN archive_offset o ON o.topic = r.topic AND o.partition = r.partition
GROUP BY r.topic, r.partition, o.next_offset
HAVING o.next_offset IS NULL OR max(r."offset") >= o.next_offset
"""


async def run_check(
    database_url: str,
    *,
    trust: TrustStore,
    at: datetime,
    chunk: int = 2000,
    derive: ParseContext | None = None,
    head_grace: timedelta = HEAD_GRACE,
    witnesses: WitnessPolicy | None = None,
    origin: str | None = None,
) -> CheckReport:
    conn = await asyncpg.connect(database_url)
    try:
        return await check_archive(
            conn,
            trust=trust,
            at=at,
            chunk=chunk,
            derive=derive,
            head_grace=head_grace,
            witnesses=witnesses,
            origin=origin,
        )
    finally:
        await conn.close()


async def check_archive(
    conn: asyncpg.Connection,
    *,
    trust: TrustStore,
    at: datetime,
    chunk: int = 2000,
    derive: ParseContext | None = None,
    head_grace: timedelta = HEAD_GRACE,
    witnesses: WitnessPolicy | None = None,
    origin: str | None = None,
) -> CheckReport:
    """Everything the database can say against itself. `derive` (the archiver's parse context)
    also re-derives every document, delivery and status row from the signed bytes; records
    older than `head_grace` (before `at`) must be covered by a signed tree head. With
    `witnesses`, every checkpoint of log `origin` (stored, or given in the policy) must agree
    with the records, and the records older than the grace must be covered by one that the
    required number of witnesses cosigned."""
    checker = _Checker(conn, trust)
    # One snapshot for rows, nodes and heads: a running archiver cannot make them disagree.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        checker.heads = [
            _Head(r["size"], bytes(r["root"]), r["signed"]) for r in await conn.fetch(HEADS)
        ]
        if witnesses is not None:
            if origin is None:
                raise ValueError("checking witnessed checkpoints needs the log's origin")
            checker.witnessed = await gather(conn, origin, witnesses)
        buffer: list[asyncpg.Record] = []
        async for row in conn.cursor(RECORDS, prefetch=chunk):
            buffer.append(row)
            if len(buffer) >= chunk:
                await checker.feed(buffer)
                buffer = []
        await checker.feed(buffer)
        await checker.finish()
        await checker.check_offsets()
        await checker.check_coverage(at - head_grace)
        if witnesses is not None:
            await checker.check_witnessed(witnesses.required, len(witnesses.witnesses),
                                          at - head_grace)  # fmt: skip
        await checker.check_kpi()
        if derive is not None:
            checker.sources = {}
            counted = await check_derived(conn, derive, checker.find)
            checker.report.derived = counted.parsed
            checker.report.legacy_dead_letters = counted.legacy_dead_letters
    return checker.report


class _Checker:
    def __init__(self, conn: asyncpg.Connection, trust: TrustStore) -> None:
        self.conn = conn
        self.trust = trust
        self.report = CheckReport()
        self.heads: list[_Head] = []
        self.edge = RightEdge.empty()
        self.bad_leaves: list[int] = []  # sorted: leaves already reported, to quiet their parents
        self.sources: dict[int, Finding] = {}  # seq -> identity, for records of this chunk
        self.witnessed: Witnessed | None = None

    def find(self, problem: str, seq: int | None = None) -> None:
        ident = self.sources.get(seq) if seq is not None else None
        self.report.findings.append(
            Finding(
                problem, seq, ident.message_id if ident else None, ident.source if ident else None
            )
        )
        if seq is not None and (not self.bad_leaves or self.bad_leaves[-1] != seq):
            bisect.insort(self.bad_leaves, seq)

    async def feed(self, rows: Sequence[asyncpg.Record]) -> None:
        leaves: list[bytes] = []
        self.sources = {}
        for row in rows:
            expected = self.edge.size + len(leaves)
            if row["seq"] > expected:
                leaves += await self._missing(expected, row["seq"])
            self.sources[row["seq"]] = Finding(
                "",
                row["seq"],
                row["message_id"],
                f"{row['topic']}/{row['partition']}/{row['offset']}",
            )
            leaves.append(self._leaf(row))
        self.report.records += len(rows)
        await self._extend(leaves)

    def _leaf(self, row: asyncpg.Record) -> bytes:
        seq = row["seq"]
        stored_digest = bytes(row["raw_sha256"])
        digest = stored_digest if row["secret"] else bytes(row["raw_digest"])
        if digest != stored_digest:
            self.find("its bytes do not match their recorded SHA-256 (raw was altered)", seq)
        stored = bytes(row["leaf_data"])
        withheld = bool(row["secret"])
        if withheld and _says_kept(stored):
            # NULL raw is how the archive withholds bytes, so erasing evidence looks the same
            # in the row: only the signed leaf tells them apart.
            self.find(
                "its bytes were erased: raw is NULL, but its signed leaf says the archive kept "
                'them (no "content":"withheld")',
                seq,
            )
            withheld = False  # as signed: the tree below is then checked on its own merits
        data, recomputed = record_leaf(
            seq=seq,
            topic=row["topic"],
            partition=row["partition"],
            offset=row["offset"],
            message_id=row["message_id"],
            sha256=digest,
            archived_at=row["archived_at"],
            withheld=withheld,
        )
        if stored != data:
            self.find(f"leaf_data disagrees with the record: {_leaf_difference(stored, data)}", seq)
        if leaf_hash(stored) != bytes(row["leaf_hash"]):
            self.find("leaf_hash is not the hash of its leaf_data", seq)
        return recomputed

    async def _missing(self, start: int, end: int) -> list[bytes]:
        """Deleted rows: report each, and carry on with the leaf the tree still holds, so the
        records after the gap are checked on their own merits."""
        stored = await fetch_nodes(self.conn, [(0, i) for i in range(start, end)])
        leaves = []
        for seq in range(start, end):
            if (0, seq) in stored:
                self.find("record is missing (deleted); its leaf is still in merkle_node", seq)
                leaves.append(stored[(0, seq)])
            else:
                self.find("record is missing (deleted), and its leaf node too", seq)
                leaves.append(bytes(32))
        return leaves

    async def _extend(self, leaves: list[bytes]) -> None:
        # Split at tree head sizes: each head is compared with the root at exactly its size.
        while leaves:
            size = self.edge.size
            sizes = sorted({h.size for h in self.heads} | self._statement_sizes())
            cut = next((n for n in sizes if size < n <= size + len(leaves)), None)
            take = len(leaves) if cut is None else cut - size
            self.edge, nodes = append_leaves(self.edge, size, leaves[:take])
            leaves = leaves[take:]
            await self._compare_nodes(nodes)
            if cut is not None:
                self._check_heads(cut)
                self._check_statements(cut)

    async def _compare_nodes(self, nodes: list[tuple[int, int, bytes]]) -> None:
        self.report.nodes += len(nodes)
        stored = await fetch_nodes(self.conn, [(lv, i) for lv, i, _ in nodes])
        for level, index, digest in nodes:
            if stored.get((level, index)) == digest:
                continue
            first, last = index << level, ((index + 1) << level) - 1
            if level > 0 and self._reported(first, last):
                continue  # its altered leaf was already named
            what = "missing from" if (level, index) not in stored else "altered in"
            if level == 0:
                self.find(f"its leaf node is {what} merkle_node", index)
            else:
                self.find(
                    f"merkle_node ({level}, {index}) over seq {first}..{last} is {what} the store"
                )

    def _reported(self, first: int, last: int) -> bool:
        i = bisect.bisect_left(self.bad_leaves, first)
        return i < len(self.bad_leaves) and self.bad_leaves[i] <= last

    def _check_heads(self, size: int) -> None:
        for head in (h for h in self.heads if h.size == size):
            self.report.heads += 1
            problem = self._head_problem(head)
            if problem:
                self.find(f"tree head of size {head.size}: {problem}")

    def _head_problem(self, head: _Head) -> str | None:
        try:
            signed = signed_tree_head_from_json(head.signed)
            verify_tree_head(signed, trust=self.trust, at=signed.head.timestamp)
        except (ValueError, VerificationError) as exc:
            return f"signature does not verify: {exc}"
        if (signed.head.size, signed.head.root) != (head.size, head.root):
            return "the row's size/root differ from what was signed"
        if self.edge.root() != head.root:
            first = self.bad_leaves[0] if self.bad_leaves else None
            hint = f" (first altered record: seq {first})" if first is not None else ""
            return f"signed root does not match the records{hint}"
        return None

    async def finish(self) -> None:
        count = self.edge.size
        self.sources = {}
        tail = await self.conn.fetch(
            "SELECT idx FROM merkle_node WHERE level = 0 AND idx >= $1 ORDER BY idx", count
        )
        for row in tail:
            self.find("record is missing (deleted); its leaf is still in merkle_node", row["idx"])
        extra = await self.conn.fetchval("SELECT count(*) FROM merkle_node") - self.report.nodes
        if extra > len(tail):
            self.find(f"merkle_node holds {extra} nodes that no record accounts for")
        for head in self.heads:
            if head.size > count:
                self.report.heads += 1
                self.find(f"tree head of size {head.size}, but only {count} records remain")
        await self._check_consistency()

    async def check_offsets(self) -> None:
        """Records removed from the tail (or all of them) leave the offsets that read them."""
        self.sources = {}
        for row in await self.conn.fetch(OFFSETS_WITHOUT_RECORDS):
            self.find(
                f"archive_offset says {row['topic']}/{row['partition']} was archived up to offset "
                f"{row['next_offset'] - 1}, but that record is missing (records were removed)"
            )
        for row in await self.conn.fetch(RECORDS_WITHOUT_OFFSETS):
            self.find(
                f"records of {row['topic']}/{row['partition']} (up to offset {row['last']}) lie "
                "beyond what archive_offset says was read (archive_offset was altered)",
                row["seq"],
            )

    async def check_kpi(self) -> None:
        """The KPI's summaries are what the archived rows give, row for row."""
        self.sources = {}
        for query, table, more in (
            (KPI_COPIES, "kpi_copy", "copies in kpi_copy"),
            (KPI_MONTHS, "kpi_month", "rows of kpi_month"),
        ):
            rows = await self.conn.fetch(query)
            for row in rows[:KPI_NAMED]:
                self._kpi_finding(row["what"], table, row["stored"], row["derived"])
            if len(rows) > KPI_NAMED:
                self.find(f"{len(rows) - KPI_NAMED} more {more} differ likewise")

    def _kpi_finding(self, what: str, table: str, stored: str | None, derived: str | None) -> None:
        if stored is None:
            self.find(f"{what}: not in {table}, the archive gives {_short_json(derived)} "
                      f"({table} was altered)")  # fmt: skip
        elif derived is None:
            self.find(f"{what}: in {table} as {_short_json(stored)}, the archive gives none "
                      f"({table} was altered)")  # fmt: skip
        else:
            a, b = json.loads(stored), json.loads(derived)
            diffs = "; ".join(
                f"{k} {_short_json(json.dumps(a.get(k)))} (stored), "
                f"{_short_json(json.dumps(b.get(k)))} (the archive gives)"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            )
            self.find(f"{what}: {diffs} ({table} was altered)")

    async def check_coverage(self, before: datetime) -> None:
        """Every record archived before `before` is in a signed tree head that remains."""
        covered = max((h.size for h in self.heads), default=0)
        if self.edge.size <= covered:
            return
        oldest = await self.conn.fetchval(
            "SELECT min(archived_at) FROM archive_record WHERE seq >= $1", covered
        )
        if oldest is not None and oldest < before:
            self.find(
                f"records seq {covered}..{self.edge.size - 1} are covered by no signed tree head "
                f"(the oldest archived {oldest.isoformat()}): signed heads were deleted, or the "
                "archiver stopped signing"
            )

    def _statement_sizes(self) -> set[int]:
        if self.witnessed is None:
            return set()
        return {size for size, _ in self.witnessed.statements}

    def _check_statements(self, size: int) -> None:
        """A checkpoint the log signed (cosigned or not) states the root at its size: the
        records must still give it."""
        if self.witnessed is None:
            return
        for statement in self.witnessed.statements.values():
            if statement.size == size and statement.root != self.edge.root():
                self.find(
                    f"history rewritten: {_vouched(statement)} root "
                    f"{statement.root.hex()} at size {size}, the records give "
                    f"{self.edge.root().hex()}; evidence:\n{statement.note}"
                )

    async def check_witnessed(self, required: int, given: int, before: datetime) -> None:
        assert self.witnessed is not None
        self.sources = {}
        for problem in self.witnessed.refused:
            self.find(f"a checkpoint or cosignature does not verify: {problem}")
        for a, b in self.witnessed.split_views():
            self.find(
                f"split view: the log signed two heads of size {a.size}: root {a.root.hex()} "
                f"and root {b.root.hex()}; evidence:\n{a.note}\n{b.note}"
            )
        for statement in self.witnessed.statements.values():
            if statement.size > self.edge.size:
                self.find(
                    f"{_vouched(statement)} a tree of {statement.size} records, the archive holds "
                    f"{self.edge.size}: records were removed; evidence:\n{statement.note}"
                )
        quorum = self.witnessed.quorum(required)
        if required and not quorum:
            self.find(f"no checkpoint of this log is cosigned by {required} of the {given} "
                      "witnesses given")  # fmt: skip
        covered = quorum[-1].size if quorum else 0
        if required and self.edge.size > covered:
            oldest = await self.conn.fetchval(
                "SELECT min(archived_at) FROM archive_record WHERE seq >= $1", covered
            )
            if oldest is not None and oldest < before:
                self.find(
                    f"records seq {covered}..{self.edge.size - 1} are covered by no checkpoint "
                    f"cosigned by {required} witnesses (the oldest archived {oldest.isoformat()})"
                )
        self.report.witnessed = covered if quorum else None

    async def _check_consistency(self) -> None:
        for old, new in zip(self.heads, self.heads[1:], strict=False):
            plan = plan_consistency(old.size, new.size)
            try:
                proof = plan.assemble(await fetch_nodes(self.conn, plan.keys))
                verify_consistency(old.size, new.size, old.root, new.root, proof)
            except (ProofError, MissingNodeError) as exc:
                self.find(f"tree heads {old.size} and {new.size} are not consistent: {exc}")


def _short_json(text: str | None, limit: int = 160) -> str:
    text = text or "null"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _vouched(statement: Statement) -> str:
    if statement.witnesses:
        return f"{len(statement.witnesses)} witness(es) cosigned"
    return "the log signed"


def _says_kept(leaf_data: bytes) -> bool:
    try:
        return not decode_leaf(leaf_data).withheld
    except LeafFormatError:
        return False  # reported as malformed by the leaf comparison


def _leaf_difference(stored: bytes, recomputed: bytes) -> str:
    try:
        was, now = decode_leaf(stored), decode_leaf(recomputed)
    except LeafFormatError as exc:
        return f"stored leaf is malformed ({exc})"
    fields = (
        "seq", "topic", "partition", "offset", "message_id", "sha256", "archived_at", "withheld",
    )  # fmt: skip
    diffs = [
        f"{f} {getattr(was, f)!r} -> {getattr(now, f)!r}"
        for f in fields
        if getattr(was, f) != getattr(now, f)
    ]
    if was.seq != now.seq:
        return f"the leaf belongs at seq {was.seq} (rows were reordered); " + "; ".join(diffs)
    return "; ".join(diffs) or "encoding differs"
