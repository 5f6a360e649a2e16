"""`audit check`, second half: the columns derived from the bytes (document, delivery, status
and rejection rows, and the record's own metadata) parsed again and compared with what is
stored.

The leaf commits to the bytes only; everything `audit show`, search and the KPI read is derived
from them by parse_record. An edit of a derived column (a subject, a sender, a signature marked
valid, a status code, a delivery time, a refusal's reason or detail, the record a document row
points at) is found here by deriving it again from the signed bytes. A dead letter's bytes are
its dead-letter record, headers included (consumers.archive.deadletter); dead letters archived
before that format kept no headers, so their rejection rows are counted, not derived.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from consumers.archive.deadletter import (
    MAGIC,
    DeadLetterFormatError,
    derive_dead_letter,
    is_dead_letter_record,
)
from consumers.archive.parse import ParseContext, kind_of, parse_record
from consumers.archive.rows import Kind, Parsed, SourceRecord

# Small batches: these rows carry the bytes (envelopes of up to tens of MiB).
BATCH = 64

RECORDS_WITH_BYTES = """
SELECT seq, topic, partition, "offset", kind, message_id, document_id, payload_type, sender,
       parse_error, raw, archived_at
FROM archive_record WHERE raw IS NOT NULL ORDER BY seq
"""
DOCUMENTS_OF = """
SELECT document_id, payload_type, sender, recipients, copies, number, notation, doc_type,
       doc_type_name, subject, promulgation_date, due_date, priority, secrecy, signer::text,
       signatures::text, submission_seq, submitted_at, body, party_names,
       search_full IS NULL AND body IS NULL AND party_names IS NULL AS unindexed
FROM document WHERE submission_seq = ANY($1::bigint[])
"""
# Written before 0008 and not reindexed yet: no body or names to compare (`archive reindex`
# derives them from these same bytes).
UNINDEXED = ("body", "party_names")
DELIVERIES_OF = "SELECT document_id, recipient, seq, delivered_at FROM delivery WHERE seq = ANY($1)"
STATUSES_OF = """
SELECT seq, document_id, from_agency, to_agency, code, description, staff::text, at
FROM status_event WHERE seq = ANY($1::bigint[])
"""
REJECTIONS_OF = """
SELECT seq, reason, detail, sender, message_id, document_id, secret, source, at
FROM rejection WHERE seq = ANY($1::bigint[])
"""
# Every dead letter (by its topic, which its leaf states) has a rejection row, and only they.
REJECTIONS_MISSING = """
SELECT a.seq FROM archive_record a
WHERE a.topic = $1 AND NOT EXISTS (SELECT 1 FROM rejection j WHERE j.seq = a.seq) ORDER BY a.seq
"""
REJECTIONS_ASTRAY = """
SELECT j.seq, j.reason FROM rejection j LEFT JOIN archive_record a ON a.seq = j.seq
WHERE a.seq IS NULL OR a.topic <> $1 ORDER BY j.seq
"""
# Dead letters archived before their dead-letter record existed and whose bytes were withheld
# (raw NULL, as their signed leaf says): nothing to derive their rejection rows from.
LEGACY_WITHHELD_DEAD_LETTERS = """
SELECT count(*) FROM archive_record
WHERE topic = $1 AND raw IS NULL AND position('"content":"withheld"'::bytea IN leaf_data) > 0
"""
# Records not parsed again (bytes withheld, dead letters archived before their dead-letter
# record) still have the kind their topic, which their leaf states, gives them.
UNPARSED_KINDS = """
SELECT seq, kind, derived FROM (
    SELECT seq, kind, CASE topic WHEN $1 THEN 'submission' WHEN $2 THEN 'deadletter'
                                 ELSE 'delivery' END AS derived
    FROM archive_record
    WHERE raw IS NULL OR (topic = $2 AND substring(raw FROM 1 FOR $3) IS DISTINCT FROM $4)
) r WHERE kind IS DISTINCT FROM derived ORDER BY seq
"""
# Rows that point at no record of the right kind (or at none): nothing derived them.
ORPHANS = """
SELECT 'document ' || d.document_id AS what, d.submission_seq AS seq FROM document d
  LEFT JOIN archive_record a ON a.seq = d.submission_seq
  WHERE a.seq IS NULL OR a.kind <> 'submission'
UNION ALL
SELECT 'delivery of ' || v.document_id || ' to ' || v.recipient, v.seq FROM delivery v
  JOIN archive_record a ON a.seq = v.seq WHERE a.kind <> 'delivery' OR a.raw IS NULL
UNION ALL
SELECT 'status ' || s.code || ' of ' || s.document_id, s.seq FROM status_event s
  JOIN archive_record a ON a.seq = s.seq WHERE a.kind NOT IN ('delivery', 'notice')
    OR a.raw IS NULL
"""
# The search columns and the routing outcome, as the database (0008) and the archiver's
# statements (store.SETTLE_ROUTING) define them, recomputed from the stored rows. A row not
# reindexed since 0008 keeps the heading the archiver wrote before.
SEARCH_COLUMNS = """
SELECT document_id, submission_seq AS seq FROM document
WHERE subject_folded IS DISTINCT FROM lt_fold(subject)
   OR (search_full IS NOT NULL
       AND (search IS DISTINCT FROM lt_heading_words(subject, number, notation, doc_type_name)
            OR search_full IS DISTINCT FROM lt_full_words(search, party_names, body, secrecy)))
   OR (search_full IS NULL
       AND search IS DISTINCT FROM to_tsvector('simple', lt_fold(concat_ws(' ', subject,
           number || '/' || notation, doc_type_name))))
"""
ROUTING = """
SELECT d.document_id, d.submission_seq AS seq, d.routing_outcome, d.routing_seq,
       d.routing_reason,
       CASE o.kind WHEN 'delivery' THEN 'routed' WHEN 'deadletter' THEN 'rejected'
                   ELSE 'pending' END AS outcome, o.seq AS outcome_seq, o.reason AS outcome_reason
FROM document d JOIN archive_record s ON s.seq = d.submission_seq
LEFT JOIN LATERAL (
    SELECT r.seq, r.kind, j.reason FROM archive_record r LEFT JOIN rejection j ON j.seq = r.seq
    WHERE r.message_id = s.message_id AND r.kind IN ('delivery', 'deadletter')
    ORDER BY r.kind = 'delivery' DESC, r.seq LIMIT 1
) o ON true
WHERE d.routing_outcome IS DISTINCT FROM
        (CASE o.kind WHEN 'delivery' THEN 'routed' WHEN 'deadletter' THEN 'rejected'
                     ELSE 'pending' END)
   OR d.routing_seq IS DISTINCT FROM o.seq
   OR d.routing_reason IS DISTINCT FROM o.reason
ORDER BY d.submission_seq
"""

Find = Callable[[str, int | None], None]


@dataclass(frozen=True, slots=True)
class DerivedCount:
    parsed: int  # records whose derived rows were parsed again from their bytes
    legacy_dead_letters: int  # dead letters archived with no headers: rows not derivable


async def check_derived(conn: asyncpg.Connection, ctx: ParseContext, find: Find) -> DerivedCount:
    """Compare every derived row with a fresh parse of its record's bytes. Call inside the
    check's repeatable-read transaction."""
    foreign = await conn.fetchval(
        "SELECT topic FROM archive_record WHERE topic !~ $1 LIMIT 1", ctx.topics.pattern.pattern
    )
    if foreign is not None:
        # Settings for another exchange (another topic prefix): every row would look altered.
        raise ValueError(
            f"the archive holds topic {foreign!r}, which these settings do not archive "
            f"(submissions topic {ctx.topics.submissions!r}): check with the archiver's "
            "LIENTHONG_TOPIC_PREFIX"
        )
    count = _Count()
    batch: list[asyncpg.Record] = []
    async for row in conn.cursor(RECORDS_WITH_BYTES, prefetch=BATCH):
        batch.append(row)
        if len(batch) >= BATCH:
            await _compare_batch(conn, ctx, batch, find, count)
            batch = []
    await _compare_batch(conn, ctx, batch, find, count)
    deadletter = ctx.topics.deadletter
    count.legacy += int(await conn.fetchval(LEGACY_WITHHELD_DEAD_LETTERS, deadletter))
    for row in await conn.fetch(ORPHANS):
        find(f"{row['what']} is derived from no record that could give it", row["seq"])
    for row in await conn.fetch(REJECTIONS_ASTRAY, deadletter):
        find(
            f"rejection {row['reason']} is derived from no record that could give it (its "
            "record is no dead letter)",
            row["seq"],
        )
    for row in await conn.fetch(REJECTIONS_MISSING, deadletter):
        find("the dead letter has no rejection row (it was deleted)", row["seq"])
    unparsed = (ctx.topics.submissions, deadletter, len(MAGIC), MAGIC)
    for row in await conn.fetch(UNPARSED_KINDS, *unparsed):
        find(
            f"archive_record differs from what its signed leaf says: kind {row['kind']!r} "
            f"(stored) vs {row['derived']!r} (from its topic)",
            row["seq"],
        )
    for row in await conn.fetch(SEARCH_COLUMNS):
        find(
            f"document {row['document_id']}: its search columns (subject_folded, search, "
            "search_full) are not those of its subject, number, names and body",
            row["seq"],
        )
    for row in await conn.fetch(ROUTING):
        stored = _reason(row["routing_reason"], row["outcome_reason"])
        derived = _reason(row["outcome_reason"], row["routing_reason"])
        find(
            f"document {row['document_id']}: routing says {row['routing_outcome']} "
            f"(seq {row['routing_seq']}{stored}), the archived records say {row['outcome']} "
            f"(seq {row['outcome_seq']}{derived})",
            row["seq"],
        )
    return DerivedCount(count.parsed, count.legacy)


def _reason(reason: str | None, other: str | None) -> str:
    return "" if reason is None and other is None else f", reason {reason!r}"


@dataclass(slots=True)
class _Count:
    parsed: int = 0
    legacy: int = 0


async def _compare_batch(
    conn: asyncpg.Connection,
    ctx: ParseContext,
    rows: Sequence[asyncpg.Record],
    find: Find,
    count: _Count,
) -> None:
    if not rows:
        return
    seqs = [r["seq"] for r in rows]
    documents = {r["submission_seq"]: r for r in await conn.fetch(DOCUMENTS_OF, seqs)}
    deliveries: dict[int, list[asyncpg.Record]] = {}
    for r in await conn.fetch(DELIVERIES_OF, seqs):
        deliveries.setdefault(r["seq"], []).append(r)
    statuses = {r["seq"]: r for r in await conn.fetch(STATUSES_OF, seqs)}
    rejections = {r["seq"]: r for r in await conn.fetch(REJECTIONS_OF, seqs)}
    for row in rows:
        seq = row["seq"]
        parsed = _parse(row, ctx, find, count)
        if parsed is None:
            continue
        count.parsed += 1
        _compare_record(row, parsed, find)
        _compare_document(seq, documents.get(seq), parsed, find)
        _compare_delivery(seq, deliveries.get(seq, []), parsed, find)
        _compare_status(seq, statuses.get(seq), parsed, find)
        _compare_rejection(seq, rejections.get(seq), parsed, find)


def _parse(row: asyncpg.Record, ctx: ParseContext, find: Find, count: _Count) -> Parsed | None:
    """The rows the record's bytes give; None for a dead letter they cannot give rows for."""
    if kind_of(row["topic"], ctx.topics) is not Kind.DEADLETTER:
        return parse_record(_source(row), ctx)
    raw = bytes(row["raw"])
    if not is_dead_letter_record(raw):
        count.legacy += 1  # archived before dead-letter records: the Kafka value alone
        return None
    try:
        return derive_dead_letter(row["topic"], row["partition"], row["offset"], raw)
    except DeadLetterFormatError as exc:
        find(f"its dead-letter record gives no rows: {exc}", row["seq"])
        return None


def _source(row: asyncpg.Record) -> SourceRecord:
    # Key, headers and the Kafka timestamp are not kept; parse_record uses the timestamp only
    # for a delivery without a trace hop, and those are compared on the rest.
    return SourceRecord(
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        key=None,
        value=bytes(row["raw"]),
        headers=(),
        timestamp=row["archived_at"],
    )


def _differences(stored: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    return [
        f"{name} {_short(stored.get(name))} (stored) vs {_short(value)} (from the bytes)"
        for name, value in derived.items()
        if _norm(stored.get(name)) != _norm(value)
    ]


def _short(value: Any) -> str:
    text = repr(_norm(value))
    return text if len(text) <= 120 else text[:117] + "..."


def _norm(value: Any) -> Any:
    """One comparable form for a column as asyncpg reads it and as parse_record gives it."""
    if isinstance(value, tuple | list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat() if not isinstance(value, datetime) else value.timestamp()
    return value


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _report(find: Find, seq: int, what: str, diffs: Iterable[str]) -> None:
    listed = list(diffs)
    if listed:
        find(f"{what} differs from what its signed bytes say: {'; '.join(listed)}", seq)


def _compare_record(row: asyncpg.Record, parsed: Parsed, find: Find) -> None:
    rec = parsed.record
    derived = {
        "kind": str(rec.kind),
        "document_id": rec.document_id,
        "payload_type": rec.payload_type,
        "sender": rec.sender,
        "parse_error": rec.parse_error,
    }
    stored = {k: row[k] for k in derived}
    _report(find, row["seq"], "archive_record", _differences(stored, derived))
    if rec.raw is None:
        find("its bytes are kept, but they are of a kind the archive withholds", row["seq"])


def _compare_document(seq: int, stored: asyncpg.Record | None, parsed: Parsed, find: Find) -> None:
    doc = parsed.document if parsed.record.kind is Kind.SUBMISSION else None
    if stored is None:
        return  # a resubmitted document id keeps its first submission's row (ON CONFLICT)
    if doc is None:
        find(f"document {stored['document_id']} points at a record that is no document", seq)
        return
    derived = asdict(doc)
    values = dict(stored)
    if values.pop("unindexed"):
        for name in UNINDEXED:
            derived.pop(name)
    values["signer"], values["signatures"] = _json(values["signer"]), _json(values["signatures"])
    diffs = _differences(values, derived)
    _report(find, seq, f"document row {stored['document_id']!r}", diffs)


def _compare_delivery(seq: int, stored: list[asyncpg.Record], parsed: Parsed, find: Find) -> None:
    d = parsed.delivery
    if d is None:
        return  # ORPHANS reports delivery rows on records that are no delivery
    if not stored:
        find(f"the delivery of {d.document_id} to {d.recipient} has no delivery row", seq)
        return
    for row in stored:
        _report(find, seq, "delivery row", _differences(dict(row), asdict(d)))


def _compare_status(seq: int, stored: asyncpg.Record | None, parsed: Parsed, find: Find) -> None:
    s = parsed.status
    if s is None:
        if stored is not None:
            find("a status_event row stands on a record that carries no status notice", seq)
        return
    if stored is None:
        find(f"status {s.code} of {s.document_id} has no status_event row", seq)
        return
    values = dict(stored)
    values["staff"] = _json(values["staff"])
    _report(find, seq, "status_event row", _differences(values, asdict(s)))


def _compare_rejection(seq: int, stored: asyncpg.Record | None, parsed: Parsed, find: Find) -> None:
    # A missing row is REJECTIONS_MISSING's finding, a row on another record REJECTIONS_ASTRAY's.
    if parsed.rejection is None or stored is None:
        return
    _report(find, seq, "rejection row", _differences(dict(stored), asdict(parsed.rejection)))
