"""The archive's SQL: repositories over one asyncpg connection, typed rows in, typed rows out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from consumers.archive.leaf import leaves
from consumers.archive.rows import DocumentRow, Kind, Parsed, dumps

# pg_advisory_lock key of the single archive writer ('lt-archive' folded into 63 bits).
WRITER_LOCK = 0x6C742D6172636876

NodeKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class LeafRow:
    """One archive_record row as the writer adds it: the parse, its place and its leaf."""

    seq: int
    parsed: Parsed
    leaf_data: bytes
    leaf_hash: bytes
    archived_at: datetime
    # The W3C trace id the record's traceparent header carried (migration 0011): beside the
    # row, outside its leaf, since the header is not signed. None: no valid traceparent.
    trace_id: str | None = None


def leaf_rows(
    first_seq: int,
    parsed: Sequence[Parsed],
    archived_at: datetime,
    trace_ids: Sequence[str | None] | None = None,
) -> list[LeafRow]:
    """The rows of a batch in order, from seq `first_seq`, each with its Merkle leaf (and the
    trace id its record carried, when `trace_ids` gives them in the same order)."""
    made = leaves(
        first_seq,
        [
            (p.record.topic, p.record.partition, p.record.offset, p.record.message_id,
             p.record.raw_sha256, p.record.raw is None)
            for p in parsed
        ],
        archived_at,
    )  # fmt: skip
    ids = trace_ids if trace_ids is not None else [None] * len(parsed)
    return [
        LeafRow(first_seq + i, p, data, digest, archived_at, trace_id)
        for i, (p, (data, digest), trace_id) in enumerate(zip(parsed, made, ids, strict=True))
    ]


@dataclass(frozen=True, slots=True)
class StoredHead:
    size: int
    root: bytes
    created_at: datetime


RECORD_COLUMNS = (
    "seq",
    "topic",
    "partition",
    "offset",
    "kind",
    "message_id",
    "document_id",
    "payload_type",
    "sender",
    "raw",
    "raw_sha256",
    "parse_error",
    "leaf_data",
    "leaf_hash",
    "archived_at",
    "trace_id",
)

# One statement per batch (not one per document): every column as an array, unnested in step.
# text[] columns travel as JSON text (unnest of a 2-D array would flatten it). ORDER BY seq, so
# of two submissions with one document id in a batch the first wins, as one by one.
# The routing outcome is settled as the row goes in: the first delivery with the submission's
# message id, else the first dead letter with it, among the rows already archived and this
# batch's (copied before this statement), exactly what SETTLE_ROUTING would set right after.
# Delivered wins: a dead letter with a delivered message's id (a copy resent or replayed onto
# the exchange, in whatever order the archiver meets the topics) never makes it 'rejected'.
# An UPDATE of every document row would write it twice (routing_outcome is in a partial
# index, so the update is not HOT and adds an entry to each of the document's ten indexes,
# four of them GIN). The search columns (subject_folded, search, search_full) are left to the
# database (0008's trigger), the one definition every writer shares.
REJECTION_COLUMNS = (
    "seq", "reason", "detail", "sender", "message_id", "document_id", "secret", "source", "at",
)  # fmt: skip
STATUS_COLUMNS = (
    "seq", "document_id", "from_agency", "to_agency", "code", "description", "staff", "at",
)  # fmt: skip
# The records whose kind settles a document's routing outcome (SETTLE_ROUTING's r.kind).
OUTCOME_KINDS = frozenset({Kind.DELIVERY, Kind.DEADLETTER})

INSERT_DOCUMENTS = """
INSERT INTO document (
    document_id, payload_type, sender, recipients, copies, number, notation, doc_type,
    doc_type_name, subject, promulgation_date, due_date, priority, secrecy,
    signer, signatures, submission_seq, submitted_at, body, party_names,
    routing_outcome, routing_reason, routing_seq
)
SELECT
    d.document_id, d.payload_type, d.sender,
    ARRAY(SELECT jsonb_array_elements_text(d.recipients::jsonb)),
    ARRAY(SELECT jsonb_array_elements_text(d.copies::jsonb)),
    d.number, d.notation, d.doc_type, d.doc_type_name, d.subject,
    d.promulgation_date, d.due_date, d.priority, d.secrecy, d.signer::jsonb,
    d.signatures::jsonb, d.submission_seq, d.submitted_at, d.body, d.party_names,
    CASE o.kind WHEN 'delivery' THEN 'routed' WHEN 'deadletter' THEN 'rejected'
                ELSE 'pending' END,
    o.reason, o.seq
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::date[], $12::date[], $13::smallint[], $14::text[],
    $15::text[], $16::text[], $17::bigint[], $18::timestamptz[], $19::text[], $20::text[]
) AS d(
    document_id, payload_type, sender, recipients, copies, number, notation, doc_type,
    doc_type_name, subject, promulgation_date, due_date, priority, secrecy, signer, signatures,
    submission_seq, submitted_at, body, party_names
)
JOIN archive_record s ON s.seq = d.submission_seq
LEFT JOIN LATERAL (
    SELECT r.seq, r.kind, j.reason
    FROM archive_record r LEFT JOIN rejection j ON j.seq = r.seq
    WHERE r.message_id = s.message_id AND r.kind IN ('delivery', 'deadletter')
    ORDER BY r.kind = 'delivery' DESC, r.seq
    LIMIT 1
) o ON true
ORDER BY d.submission_seq
ON CONFLICT (document_id) DO NOTHING
"""

# A routing outcome arrives on another topic than its submission, in either order: settle
# every document not yet 'routed' whose submission's message id this batch touched (a document
# settled 'rejected' by a dead letter becomes 'routed' when its delivery comes). The batch's own
# documents were settled as they went in, so only its deliveries' and dead letters' message ids
# can settle anything (an earlier pending document only changes with an outcome of its own).
SETTLE_ROUTING = """
WITH pending AS (
    SELECT d.document_id, s.message_id
    FROM document d JOIN archive_record s ON s.seq = d.submission_seq
    WHERE d.routing_outcome <> 'routed' AND s.message_id = ANY($1::text[])
), outcome AS (
    SELECT DISTINCT ON (p.document_id) p.document_id, r.seq, r.kind, j.reason
    FROM pending p
    JOIN archive_record r ON r.message_id = p.message_id AND r.kind IN ('delivery', 'deadletter')
    LEFT JOIN rejection j ON j.seq = r.seq
    ORDER BY p.document_id, r.kind = 'delivery' DESC, r.seq
)
UPDATE document d
SET routing_outcome = CASE WHEN o.kind = 'delivery' THEN 'routed' ELSE 'rejected' END,
    routing_reason = o.reason,
    routing_seq = o.seq
FROM outcome o
WHERE d.document_id = o.document_id
"""

UPSERT_OFFSET = """
INSERT INTO archive_offset (topic, partition, next_offset) VALUES ($1, $2, $3)
ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
"""

INSERT_TREE_HEAD = """
INSERT INTO tree_head (size, root, signed, created_at, checkpoint)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (size) DO NOTHING
"""


async def try_writer_lock(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", WRITER_LOCK))


async def load_offsets(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await conn.fetch("SELECT topic, partition, next_offset FROM archive_offset")
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def record_count(conn: asyncpg.Connection) -> int:
    # seq is gapless from 0, so the next seq is max + 1 (an index lookup, unlike count(*)).
    return int(await conn.fetchval("SELECT coalesce(max(seq) + 1, 0) FROM archive_record"))


async def fetch_nodes(conn: asyncpg.Connection, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT n.level, n.idx, n.hash FROM merkle_node n"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx)"
        " ON n.level = k.level AND n.idx = k.idx",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


async def last_tree_head(conn: asyncpg.Connection) -> StoredHead | None:
    row = await conn.fetchrow(
        "SELECT size, root, created_at FROM tree_head ORDER BY size DESC LIMIT 1"
    )
    return StoredHead(row["size"], bytes(row["root"]), row["created_at"]) if row else None


async def insert_tree_head(
    conn: asyncpg.Connection,
    size: int,
    root: bytes,
    signed_json: str,
    at: datetime,
    checkpoint: str | None = None,
) -> None:
    await conn.execute(INSERT_TREE_HEAD, size, root, signed_json, at, checkpoint)


async def refresh_kpi(conn: asyncpg.Connection, most: int) -> tuple[int, int]:
    """Bring up to `most` stale months of the KPI's kpi_month up to date (migration 0012's
    lt_kpi_refresh, which the archiver may execute): (months refreshed, months still stale)."""
    done = int(await conn.fetchval("SELECT lt_kpi_refresh($1)", most))
    left = await conn.fetchval("SELECT count(DISTINCT month) FROM kpi_month_stale")
    return done, int(left)


async def write_batch(
    conn: asyncpg.Connection,
    rows: Sequence[LeafRow],
    nodes: Sequence[tuple[int, int, bytes]],
    offsets: Mapping[tuple[str, int], int],
) -> None:
    """Everything one batch produces; the caller wraps it in one transaction. Records first,
    rejections before documents (a document's outcome may be one of them)."""
    await conn.copy_records_to_table(
        "archive_record", records=[_record_tuple(r) for r in rows], columns=RECORD_COLUMNS
    )
    rejections = [
        (r.seq, j.reason, j.detail, j.sender, j.message_id, j.document_id, j.secret, j.source, j.at)
        for r in rows
        if (j := r.parsed.rejection) is not None
    ]
    if rejections:
        await conn.copy_records_to_table("rejection", records=rejections, columns=REJECTION_COLUMNS)
    documents = [(r.seq, r.parsed.document) for r in rows if r.parsed.document]
    if documents:
        args = [_document_args(s, d) for s, d in documents]
        await conn.execute(INSERT_DOCUMENTS, *(list(column) for column in zip(*args, strict=True)))
    deliveries = [
        (d.document_id, d.recipient, r.seq, d.delivered_at)
        for r in rows
        if (d := r.parsed.delivery) is not None
    ]
    if deliveries:
        await conn.copy_records_to_table(
            "delivery",
            records=deliveries,
            columns=("document_id", "recipient", "seq", "delivered_at"),
        )
    statuses = [
        (
            r.seq,
            s.document_id,
            s.from_agency,
            s.to_agency,
            s.code,
            s.description,
            dumps(s.staff),
            s.at,
        )
        for r in rows
        if (s := r.parsed.status) is not None
    ]
    if statuses:
        await conn.copy_records_to_table("status_event", records=statuses, columns=STATUS_COLUMNS)
    outcomes = sorted(
        {
            m
            for r in rows
            if (m := r.parsed.record.message_id) and r.parsed.record.kind in OUTCOME_KINDS
        }
    )
    if outcomes:
        await conn.execute(SETTLE_ROUTING, outcomes)
    await conn.copy_records_to_table(
        "merkle_node", records=list(nodes), columns=("level", "idx", "hash")
    )
    await conn.executemany(UPSERT_OFFSET, [(t, p, o) for (t, p), o in offsets.items()])


def _record_tuple(r: LeafRow) -> tuple[object, ...]:
    rec = r.parsed.record
    return (
        r.seq,
        rec.topic,
        rec.partition,
        rec.offset,
        str(rec.kind),
        rec.message_id,
        rec.document_id,
        rec.payload_type,
        rec.sender,
        rec.raw,
        rec.raw_sha256,
        rec.parse_error,
        r.leaf_data,
        r.leaf_hash,
        r.archived_at,
        r.trace_id,
    )


def _document_args(seq: int, d: DocumentRow) -> tuple[object, ...]:
    return (
        d.document_id,
        d.payload_type,
        d.sender,
        json.dumps(list(d.recipients), ensure_ascii=False),
        json.dumps(list(d.copies), ensure_ascii=False),
        d.number,
        d.notation,
        d.doc_type,
        d.doc_type_name,
        d.subject,
        d.promulgation_date,
        d.due_date,
        d.priority,
        d.secrecy,
        dumps(d.signer),
        dumps(d.signatures),
        seq,
        d.submitted_at,
        d.body,
        d.party_names,
    )
