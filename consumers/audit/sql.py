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

NO_RANK = "NULL::real"

# filter name -> predicate; {n} is the parameter number of the filter's value. The words
# (--text) are not among them: they choose the ranked statement below.
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
}

# Keyset pagination: the cursor is the sort key of the last row shown.
AFTER_BY_TIME = "(d.submitted_at, d.document_id) < (${t}, ${i})"

ORDER_BY_TIME = "d.submitted_at DESC, d.document_id DESC"

SEARCH_TAIL = "\nWHERE {where}\nORDER BY {order}\nLIMIT ${limit} OFFSET ${offset}"

# --- ranked search (--text) -----------------------------------------------------------------
# The words as queries, folded like the stored columns (0003, 0008), parsed once per statement
# (the connection plans each search with its values, so these fold to constants): every word,
# the words in their order (a phrase), any of the words. The text form of plainto_tsquery
# joins quoted lexemes with " & "; a lexeme never holds a space, so swapping the joins is safe.
ALL_WORDS = "plainto_tsquery('simple', lt_fold(${n}))"
PHRASE = "phraseto_tsquery('simple', lt_fold(${n}))"
ANY_WORD = "replace(plainto_tsquery('simple', lt_fold(${n}))::text, ' & ', ' | ')::tsquery"

# How a ranked search is planned, whatever the connection's settings (in its own transaction):
# with its values (the folded queries become constants the planner can estimate and that are
# not folded again for every row), and without JIT compilation: the statement's estimated cost
# (the longest walks it allows) crosses jit_above_cost, and compiling its ~190 expressions took
# ~95 ms of a 110 ms search at 1M documents, for a plan that runs in ~17 ms.
RANKED_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off"

# The words as the planner sees them on the index path of a filtered search: a value it cannot
# estimate. Estimating common words as independent, it expects the GIN index to return a
# handful of rows and reads every match (12 000 for "lien thong phan mem quan ly van ban")
# to keep a sender's 177; with the default estimate it intersects the GIN index with the
# filter's own (a BitmapAnd) and reads the 177 rows: 79 ms instead of 313.
UNESTIMATED = "(SELECT {q})"

# A ranked search lists its matches in tiers, each tier whole before the next:
#   1 heading: every word in the heading (subject, number, notation, type: `search`);
#   2 document: every word in the whole document (heading, the parties' names, the body:
#     `search_full`, 0008), and not all of them in the heading;
#   3 partial: some of the words, not all.
# Within a tier the matches, newest first, are cut into windows of RANK_WINDOW (a number of
# matches, not a time span); the first window is listed by rank, then the second, and so on.
# The rank is ts_rank (normalised to 0..1; in the whole document the heading's words weigh
# most, the names' less, the body's least) plus 1 when the words stand as typed (a phrase).
# {v} is the alias of the row tested; {all}, {phrase}, {any} the queries above.
TIER_PREDICATE = {
    1: "{v}.search @@ {all}",
    2: "{v}.search_full @@ {all} AND NOT coalesce({v}.search @@ {all}, false)",
    3: "{v}.search_full @@ {any} AND NOT {v}.search_full @@ {all}",
}
# The vector each tier tests and ranks by.
TIER_VECTOR = {1: "search", 2: "search_full", 3: "search_full"}
# In the whole document the rank counts each word's occurrences weighted by where they stand
# (ts_rank of any of the words: linear in the document's words, where ts_rank of all of them
# weighs every pair of positions, ~4x the time on a body).
TIER_RANK = {
    1: "ts_rank({words}, {all}, 32) + ({words} @@ {phrase})::int",
    2: "ts_rank({words}, {any}, 32) + ({words} @@ {phrase})::int",
    3: "ts_rank({words}, {any}, 32)",
}
MATCH_NAMES = {1: "heading", 2: "document", 3: "partial"}

# The columns a tier's walk reads: for the heading only what document_recent_search_idx holds
# (0004), so its walk is an index-only scan; for the whole document its words are in the row
# (stored inline, 0008), never in a TOAST table.
TIER_WALK_COLUMNS = {
    1: "d.document_id, d.submitted_at, d.search",
    2: "d.document_id, d.submitted_at, d.search, d.search_full",
    3: "d.document_id, d.submitted_at, d.search_full",
}

# Phase one finds each tier's candidates, its {candidates} newest matches, without reading
# every match's row. Two ways: walk the newest documents in recency order testing each one
# (cheap per row, and common words fill the candidates early), or ask the GIN index
# (document_search_idx, document_search_full_idx) for every match and keep the newest (one
# read per match: right for rare words). The newest {probe} documents tell how common the words
# are (rate r = hits / probe); a walk tests about {candidates} / r rows, the index reads about
# r * N (N: the table's size as last analysed), so the walk is taken when r * r * N is at least
# {ratio} * {candidates} ({ratio}: a walk row's cost against an index row's, lower for the
# heading, whose walk is index-only in document_recent_search_idx, 0004). The walk stops at
# its {candidates}th match, and at twice its expected length at most (and {cap} rows): a probe
# that saw the words a little more often than they are must not send the search to the
# index for a handful of older matches. Only if the walk found too few, and did not test every
# document there is (a sender's 4 500, say), does the index give the older matches (those
# older than the walk's oldest match: the walk kept every match in the rows it tested).
# With other filters ({where}: a sender, a recipient, dates...) the probe and the walk go
# through the documents those filters keep, newest first (the filter's own index serves that
# order: document_sender_time_idx, document_time_idx...), N is their number (FILTERED), and
# the index path intersects the GIN index with the filter's (UNESTIMATED). A later tier is only
# looked at when the earlier ones have fewer matches than the page needs ({guard}: a one-time
# filter, so a skipped tier costs nothing).
TIER_PROBE = """
{name}_probe AS MATERIALIZED (
    SELECT count(*) AS hits
    FROM (SELECT {columns} FROM document d
          WHERE {guard} AND {anchor} AND {where}
          ORDER BY d.submitted_at DESC, d.document_id DESC LIMIT ${probe}) w
    WHERE {predicate_w}
),"""
# How many newest documents the walk may test: 0 (the index alone) or twice its expected length.
# {population}: N, the table's size as last analysed, or for a filtered search the number of
# documents the filters keep (FILTERED, counted up to a cap: an index-only count for a sender
# or dates).
PROBE_WALK = (
    "(SELECT CASE WHEN p.hits * p.hits * {population}"
    " < ${ratio}::float8 * ${candidates} * ${probe} * ${probe} THEN 0"
    " ELSE least(${cap}, ${candidates} * ${probe} * 2 / p.hits) END"
    " FROM {name}_probe p, pg_class c WHERE c.oid = 'document'::regclass)"
)
TABLE_SIZE = "greatest(c.reltuples, 0)"
FILTERED = """
filtered AS MATERIALIZED (
    SELECT count(*) AS documents
    FROM (SELECT 1 FROM document d WHERE {where} LIMIT ${cap}) x
),"""
FILTERED_SIZE = "(SELECT f.documents FROM filtered f)"
TIER_WALK = """
{name}_walk AS MATERIALIZED (
    SELECT w.document_id, w.submitted_at
    FROM (SELECT {columns} FROM document d
          WHERE {guard} AND {anchor} AND {where}
          ORDER BY d.submitted_at DESC, d.document_id DESC LIMIT {walk}) w
    WHERE {predicate_w}
    ORDER BY w.submitted_at DESC, w.document_id DESC LIMIT ${candidates}
), {name} AS MATERIALIZED (
    SELECT u.* FROM (
        SELECT * FROM {name}_walk
        UNION ALL
        (SELECT d.document_id, d.submitted_at
         FROM document d
         WHERE (SELECT count(*) FROM {name}_walk) < ${candidates} AND {guard}
           AND ({walk} = 0 OR (SELECT count(*) FROM (
                   SELECT 1 FROM document d WHERE {anchor} AND {where} LIMIT {walk} + 1) x)
                > {walk})
           AND {anchor} AND {where} AND {predicate_d}
           AND ((SELECT count(*) FROM {name}_walk) = 0 OR (d.submitted_at, d.document_id) < (
               SELECT w.submitted_at, w.document_id FROM {name}_walk w
               ORDER BY w.submitted_at, w.document_id LIMIT 1))
         ORDER BY d.submitted_at DESC, d.document_id DESC
         LIMIT ${candidates})) u
    ORDER BY u.submitted_at DESC, u.document_id DESC LIMIT ${candidates}
)"""

# A tier is looked at only while the earlier ones' matches may not fill the page: fewer than
# {needed} (the rows up to the page's end; after a cursor, the page and the rows of the
# cursor's window that may precede it).
COUNT_OF = "(SELECT count(*) FROM {name})"
FEWER_THAN = "{counts} < ${needed}"

# Phase two: the candidates' words read again (by primary key) to rank them.
TIER_ROWS = (
    "SELECT {tier} AS tier, c.document_id, c.submitted_at, ({rank})::real AS rank"
    " FROM {name} c JOIN document x ON x.document_id = c.document_id"
)

# Phase two ranks the candidates, numbers their windows, and reads only the page's rows.
# A cursor names its tier, the newest row of its window (the anchor: rows archived later are
# newer and cannot shift an anchored window) and the last row shown in it, so the next page
# continues exactly there and paging reaches every match of every tier, each once.
RANKED_TAIL = """
, tiered AS (
{tiers}
), windowed AS (
    SELECT t.*, (row_number() OVER recency - 1) / ${window} AS win
    FROM tiered t
    WINDOW recency AS (PARTITION BY t.tier ORDER BY t.submitted_at DESC, t.document_id DESC)
), ranked AS (
    SELECT w.*, first_value(w.submitted_at) OVER anchor AS window_at,
           first_value(w.document_id) OVER anchor AS window_id
    FROM windowed w
    WINDOW anchor AS (PARTITION BY w.tier, w.win ORDER BY w.submitted_at DESC, w.document_id DESC)
), page AS (
    SELECT r.* FROM ranked r
    WHERE {after}
    ORDER BY r.tier, r.win, r.rank DESC, r.submitted_at DESC, r.document_id DESC
    LIMIT ${limit} OFFSET ${offset}
)
SELECT d.document_id, d.payload_type, d.sender, d.recipients, d.number, d.notation, d.doc_type,
       d.subject, d.promulgation_date, d.submitted_at, d.routing_outcome, p.rank, p.tier,
       p.window_at, p.window_id
FROM page p JOIN document d ON d.document_id = p.document_id
ORDER BY p.tier, p.win, p.rank DESC, p.submitted_at DESC, p.document_id DESC"""

# The window a cursor's last row belongs to: start there (its newest row, inclusive). The first
# half lets the recency index start the walk at the anchor.
WINDOW_ANCHOR = "d.submitted_at <= ${t} AND (d.submitted_at, d.document_id) <= (${t}, ${i})"
NO_ANCHOR = "true"
# In that window (number 0 of the cursor's tier in the new statement), the rows ranked after the
# last one shown; every later tier whole.
AFTER_IN_WINDOW = (
    "(r.tier > {tier} OR r.win > 0 "
    "OR (r.rank, r.submitted_at, r.document_id) < (${r}::real, ${t}, ${i}))"
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
