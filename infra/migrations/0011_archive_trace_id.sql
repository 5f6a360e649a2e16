-- The W3C trace id each archived record carried in its traceparent header (docs/observability.md,
-- Traces): from a document's rows to its trace in the services' logs or a tracing backend.
-- Operational metadata, not evidence: outside the Merkle leaf (the header is not signed), never
-- re-derived by `audit check`, NULL when the record carried no valid traceparent.
-- Adding a nullable column without a default only changes the catalogue (no table rewrite), and
-- NOT VALID spares the scan of the existing rows (all NULL, which the check accepts anyway), so
-- this is instant on an archive of any size. No index: a lookup by trace id is an operator's
-- occasional question, not worth a write on every archived row.
ALTER TABLE archive_record ADD COLUMN trace_id text;
ALTER TABLE archive_record ADD CONSTRAINT archive_record_trace_id_hex
    CHECK (trace_id ~ '^[0-9a-f]{32}$') NOT VALID;
