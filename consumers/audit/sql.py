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
# Ranked after the candidates are cut (phase two), so only they pay for ts_rank.
CANDIDATE_RANK = "ts_rank(c.search, " + TEXT_QUERY + ")"
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

ORDER_BY_TIME = "d.submitted_at DESC, d.document_id DESC"

SEARCH_TAIL = "\nWHERE {where}\nORDER BY {order}\nLIMIT ${limit} OFFSET ${offset}"

# A ranked search (--text) ranks the matches window by window instead of all at once: the
# matches in recency order (newest first) are cut into windows of RANK_WINDOW (a number of
# matches, not a time span); the first window is listed by rank, then the second, and so on.
# Phase one finds the candidates, the {candidates} newest matches, and never reads every
# match's row: it walks the {walk} newest documents in document_recent_search_idx (0004: the
# recency order with the tsvector alongside, an index-only scan, no heap access) testing each
# for the words; only if that walk found too few does the GIN index (document_search_idx) find
# the older matches. Phase two ranks the candidates with ts_rank, numbers their windows, and
# only the page's rows are read from the table. A cursor names the newest row of its window
# (the anchor: rows archived later are newer and cannot shift an anchored window) and the last
# row shown in it, so the next page continues exactly there and paging reaches every match.
RANKED_SEARCH = (
    """
WITH recent AS MATERIALIZED (
    SELECT w.document_id, w.submitted_at, w.search
    FROM (SELECT d.document_id, d.submitted_at, d.search FROM document d
          WHERE {anchor}
          ORDER BY d.submitted_at DESC, d.document_id DESC LIMIT ${walk}) w
    WHERE w.search @@ """
    + TEXT_QUERY
    + """
    ORDER BY w.submitted_at DESC, w.document_id DESC LIMIT ${candidates}
), candidate AS (
    SELECT * FROM recent
    UNION ALL
    (SELECT d.document_id, d.submitted_at, d.search
     FROM document d
     WHERE (SELECT count(*) FROM recent) < ${candidates} AND {anchor} AND {where}
       AND (d.submitted_at, d.document_id) < (
           SELECT d.submitted_at, d.document_id FROM document d WHERE {anchor}
           ORDER BY d.submitted_at DESC, d.document_id DESC OFFSET ${walk} - 1 LIMIT 1)
     ORDER BY d.submitted_at DESC, d.document_id DESC
     LIMIT ${candidates})
), newest AS (
    SELECT c.* FROM candidate c
    ORDER BY c.submitted_at DESC, c.document_id DESC LIMIT ${candidates}
), windowed AS (
    SELECT c.document_id, c.submitted_at, """
    + CANDIDATE_RANK
    + """ AS rank,
           (row_number() OVER recency - 1) / ${window} AS win
    FROM newest c
    WINDOW recency AS (ORDER BY c.submitted_at DESC, c.document_id DESC)
), ranked AS (
    SELECT w.*, first_value(w.submitted_at) OVER anchor AS window_at,
           first_value(w.document_id) OVER anchor AS window_id
    FROM windowed w
    WINDOW anchor AS (PARTITION BY w.win ORDER BY w.submitted_at DESC, w.document_id DESC)
), page AS (
    SELECT r.* FROM ranked r
    WHERE {after}
    ORDER BY r.win, r.rank DESC, r.submitted_at DESC, r.document_id DESC
    LIMIT ${limit} OFFSET ${offset}
)
SELECT d.document_id, d.payload_type, d.sender, d.recipients, d.number, d.notation, d.doc_type,
       d.subject, d.promulgation_date, d.submitted_at, d.routing_outcome, p.rank,
       p.window_at, p.window_id
FROM page p JOIN document d ON d.document_id = p.document_id
ORDER BY p.win, p.rank DESC, p.submitted_at DESC, p.document_id DESC"""
)

# With other filters than the words, phase one is the GIN index alone (with the filters' own
# indexes): the walk cannot test a sender or a recipient without reading the table.
RANKED_FILTERED_CANDIDATES = """
WITH newest AS (
    SELECT d.document_id, d.submitted_at, d.search
    FROM document d
    WHERE {anchor} AND {where}
    ORDER BY d.submitted_at DESC, d.document_id DESC
    LIMIT ${candidates}
), windowed AS ("""
RANKED_FILTERED_SEARCH = RANKED_FILTERED_CANDIDATES + RANKED_SEARCH.split("), windowed AS (", 1)[1]

# The window a cursor's last row belongs to: start there (its newest row, inclusive). The first
# half lets the recency index start the walk at the anchor.
WINDOW_ANCHOR = "d.submitted_at <= ${t} AND (d.submitted_at, d.document_id) <= (${t}, ${i})"
NO_ANCHOR = "true"
# In that window (number 0 of the new statement), the rows ranked after the last one shown.
AFTER_IN_WINDOW = (
    "(r.win > 0 OR (r.rank, r.submitted_at, r.document_id) < (${r}::real, ${t}, ${i}))"
)

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
SELECT a.seq, a.kind, a.raw, a.raw_sha256, a.leaf_data, a.leaf_hash, a.archived_at,
       a.parse_error
FROM document d JOIN archive_record a ON a.seq = d.submission_seq
WHERE d.document_id = $1"""

ARCHIVE_RECORD_BY_SEQ = """
SELECT seq, kind, raw, raw_sha256, leaf_data, leaf_hash, archived_at
FROM archive_record WHERE seq = $1"""

LATEST_TREE_HEAD = "SELECT size, root, signed FROM tree_head ORDER BY size DESC LIMIT 1"

TREE_HEAD_BY_SIZE = "SELECT size, root, signed FROM tree_head WHERE size = $1"

# Heads that cover a record, newest first, with their checkpoint and the cosigned notes the
# witnesses published for exactly that size and root.
COVERING_CHECKPOINTS = """
SELECT t.size, t.root, t.signed, t.checkpoint,
       ARRAY(SELECT c.note FROM cosignature c WHERE c.size = t.size AND c.root = t.root)
           AS cosigned
FROM tree_head t WHERE t.size > $1 AND t.checkpoint IS NOT NULL ORDER BY t.size DESC"""

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
