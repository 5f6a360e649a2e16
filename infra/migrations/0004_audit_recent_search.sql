-- `audit search --text`: the newest documents with their words, in recency order, so a ranked
-- search finds its candidates (the newest matches) by an index-only walk from the newest
-- document instead of reading the table row of every match the GIN index returns
-- (consumers/audit_sql.py, RANKED_SEARCH). The key is the search's recency order and its
-- cursor's anchor; the tsvector rides along (INCLUDE) to be tested without a heap access.
CREATE INDEX document_recent_search_idx ON document (submitted_at DESC, document_id DESC)
    INCLUDE (search);
