-- What auditors' searches need beyond 0002: one definition of the search columns, indexes for
-- the filters 0002 does not cover, and an access log whose author and time cannot be forged.

-- The search contract lives in the database, so every writer (the archiver, a backfill, a
-- benchmark's COPY) produces the same columns: subject_folded = lt_fold(subject) for trigram
-- matching, search = 'simple' tsvector over the folded subject for ranked word matching (no
-- stemming: Vietnamese words are syllables, and 'simple' keeps them as typed, once folded).
-- A writer that fills the columns itself keeps its values.
CREATE FUNCTION lt_document_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.subject_folded IS NULL AND NEW.subject IS NOT NULL THEN
        NEW.subject_folded := lt_fold(NEW.subject);
    END IF;
    IF NEW.search IS NULL AND NEW.subject_folded IS NOT NULL THEN
        NEW.search := to_tsvector('simple', NEW.subject_folded);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER document_search_columns BEFORE INSERT ON document
    FOR EACH ROW EXECUTE FUNCTION lt_document_search_columns();

-- `audit search --status CODE`: documents that received a given status code.
CREATE INDEX status_event_code_idx ON status_event (code, document_id);

-- `audit search --outcome rejected|pending`: the rare outcomes, newest first. Partial, so the
-- common 'routed' rows (served by document_time_idx) cost nothing here.
CREATE INDEX document_outcome_time_idx ON document (routing_outcome, submitted_at DESC)
    WHERE routing_outcome <> 'routed';

-- `audit show`: rejections of one document.
CREATE INDEX rejection_document_idx ON rejection (document_id, at);

-- `audit show`: deliveries are read by document through the primary key (document_id, ...).

-- An auditor's entry states who and what; the database states when and as which role, so an
-- entry cannot be back-dated or attributed to another role.
CREATE FUNCTION lt_access_log_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := now();
    NEW.db_role := current_user;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_access_log_stamp BEFORE INSERT ON audit_access_log
    FOR EACH ROW EXECUTE FUNCTION lt_access_log_stamp();

-- TRUNCATE bypasses row triggers: nobody but the owner may truncate, and the owner is refused
-- too, so clearing the log needs a superuser acting deliberately around the rules.
REVOKE TRUNCATE ON audit_access_log FROM PUBLIC;
CREATE TRIGGER audit_access_log_no_truncate BEFORE TRUNCATE ON audit_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();

-- Tables created after 0002 (by 0003 and later) are readable by auditors too.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO lienthong_auditor;
