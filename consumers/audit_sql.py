"""The SQL of the auditors' queries: named statements, and the fragments a search is built from."""

from __future__ import annotations

# --- search ---------------------------------------------------------------------------------
# A search is one statement assembled from these fixed fragments (never from user text: values
# always travel as parameters). Each filter combination gets its own statement, so the planner
# sees exactly the predicates present and picks the index that serves them; one statement with
# "($1 IS NULL OR sender = $1)" for every filter would defeat every index.

SEARCH_COLUMNS = """
SELECT d.document_id, d.payload_type, d.sender, d.recipients, d.number, d.notation,
       d.doc_type, d.subject, d.promulgation_date, d.submitted_at, d.routing_outcome,
       {rank} AS rank
FROM document d"""

# Full-text query over the folded subject: the same folding as the stored column (0003).
TEXT_QUERY = "plainto_tsquery('simple', lt_fold(${n}))"
TEXT_RANK = "ts_rank(d.search, " + TEXT_QUERY + ")"
NO_RANK = "NULL::real"

# filter name -> predicate; {n} is the parameter number of the filter's value.
SEARCH_FILTERS: dict[str, str] = {
    "sender": "d.sender = ${n}",
    # @> is the operator document_recipients_idx (GIN) serves; = ANY(recipients) is not.
    "recipient": "d.recipients @> ARRAY[${n}::text]",
    "doc_type": "d.doc_type = ${n}",
    "number": "d.number = ${n}",
    "notation": "d.notation = ${n}",
    "submitted_from": "d.submitted_at >= ${n}",
    "submitted_before": "d.submitted_at < ${n}",
    "status": (
        "EXISTS (SELECT 1 FROM status_event s WHERE s.code = ${n} "
        "AND s.document_id = d.document_id)"
    ),
    "outcome": "d.routing_outcome = ${n}",
    "text": "d.search @@ " + TEXT_QUERY,
}

# Keyset pagination: the cursor is the sort key of the last row shown.
AFTER_BY_TIME = "(d.submitted_at, d.document_id) < (${t}, ${i})"
AFTER_BY_RANK = "(" + TEXT_RANK + ", d.submitted_at, d.document_id) < (${r}::real, ${t}, ${i})"

ORDER_BY_TIME = "d.submitted_at DESC, d.document_id DESC"
ORDER_BY_RANK = "rank DESC, d.submitted_at DESC, d.document_id DESC"

SEARCH_TAIL = "\nWHERE {where}\nORDER BY {order}\nLIMIT ${limit} OFFSET ${offset}"

# --- show -----------------------------------------------------------------------------------

DOCUMENT_BY_ID = """
SELECT document_id, payload_type, sender, recipients, copies, number, notation, doc_type,
       doc_type_name, subject, promulgation_date, due_date, priority, secrecy, signer,
       signatures, submission_seq, submitted_at, routing_outcome, routing_reason, routing_seq
FROM document WHERE document_id = $1"""

ARCHIVE_RECORDS_OF_DOCUMENT = """
SELECT seq, kind, topic, partition, "offset", message_id, payload_type, sender, archived_at,
       parse_error
FROM archive_record WHERE document_id = $1 ORDER BY seq"""

DELIVERIES_OF_DOCUMENT = """
SELECT recipient, seq, delivered_at
FROM delivery WHERE document_id = $1 ORDER BY recipient, delivered_at, seq"""

# Per answering agency, in the order things happened (seq breaks ties of equal timestamps).
STATUS_TIMELINE_OF_DOCUMENT = """
SELECT seq, from_agency, to_agency, code, description, staff, at
FROM status_event WHERE document_id = $1 ORDER BY from_agency, at, seq"""

REJECTIONS_OF_DOCUMENT = """
SELECT seq, reason, detail, sender, message_id, secret, source, at
FROM rejection WHERE document_id = $1 ORDER BY at, seq"""

# --- verify ---------------------------------------------------------------------------------

SUBMISSION_RECORD = """
SELECT a.seq, a.kind, a.raw, a.raw_sha256, a.leaf_data, a.leaf_hash, a.archived_at
FROM document d JOIN archive_record a ON a.seq = d.submission_seq
WHERE d.document_id = $1"""

ARCHIVE_RECORD_BY_SEQ = """
SELECT seq, kind, raw, raw_sha256, leaf_data, leaf_hash, archived_at
FROM archive_record WHERE seq = $1"""

LATEST_TREE_HEAD = "SELECT size, root, signed FROM tree_head ORDER BY size DESC LIMIT 1"

TREE_HEAD_BY_SIZE = "SELECT size, root, signed FROM tree_head WHERE size = $1"

# Every node a proof needs, in one round trip (the primary key serves each pair).
MERKLE_NODES = """
SELECT n.level, n.idx, n.hash
FROM unnest($1::smallint[], $2::bigint[]) AS want(level, idx)
JOIN merkle_node n ON n.level = want.level AND n.idx = want.idx"""

# --- access log -----------------------------------------------------------------------------

# `at` and `db_role` are stamped by the database (0003), whatever the client sends.
RECORD_ACCESS = """
INSERT INTO audit_access_log (who, command, args) VALUES ($1, $2, $3::jsonb)
RETURNING id, at, db_role"""
