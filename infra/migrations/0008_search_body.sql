-- Full-text search over the whole document (docs/search.md): its heading (subject, number,
-- notation, type), the names of its sender and recipients, and its body, with or without
-- diacritics. The words of a secret document's body are never kept: the body is stored and
-- indexed only when the document is not secret; the database drops a secret document's body
-- before the row is written, and refuses a row that would still hold one.

-- body: the document's content (OfficialDocument `content`), as the archiver parsed it from the
-- signed bytes (capped, consumers/archive/document.py). party_names: the sender's and the
-- recipients' names, from the agency directory and as the document writes them.
-- search_full: heading (weight A) + names (B) + body (D); NULL means "written before 0008 and
-- not reindexed yet" (`lienthong archive reindex` fills it from the archived bytes).
ALTER TABLE document
    ADD COLUMN body        text,
    ADD COLUMN party_names text,
    ADD COLUMN search_full tsvector;

-- A search walks the newest documents testing their words (consumers/audit/sql.py): the words
-- stay in the row (compressed, moved out only if the row would not fit a page), so the walk
-- reads no TOAST table; the body, read only for the page shown, may move out.
ALTER TABLE document ALTER COLUMN search_full SET STORAGE MAIN;

-- The rule of docs/search.md, enforced where the rows live: whatever a writer sends, a secret
-- document's body is not stored in clear (DOMAIN.md, State secrets). The trigger below drops
-- such a body before the row is written (a refusal would print the row, body included, in the
-- error and the server's log); this constraint catches a write that bypasses triggers.
ALTER TABLE document ADD CONSTRAINT document_secret_has_no_body
    CHECK (secrecy = 'NONE' OR body IS NULL);

-- The heading's words. The number, the notation and "number/notation" are each words of their
-- own, so "ke hoach 190", "KH-UBND" and "190/KH-UBND" all find Plan 190/KH-UBND (the parser
-- keeps "190/kh-ubnd" as one token, and splits "kh-ubnd" into kh-ubnd, kh and ubnd).
CREATE FUNCTION lt_heading_words(subject text, number text, notation text, doc_type_name text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_tsvector('simple', lt_fold(concat_ws(' ', subject, number, notation,
                                                  number || '/' || notation, doc_type_name))) $$;

-- Every word of the document, weighted by where it stands. A secret document contributes its
-- heading and names only, whatever `body` holds (the CHECK above keeps it NULL anyway).
CREATE FUNCTION lt_full_words(heading tsvector, party_names text, body text, secrecy text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT setweight(coalesce(heading, ''::tsvector), 'A')
       || setweight(to_tsvector('simple', lt_fold(coalesce(party_names, ''))), 'B')
       || CASE WHEN secrecy = 'NONE'
               THEN setweight(to_tsvector('simple', lt_fold(coalesce(body, ''))), 'D')
               ELSE ''::tsvector END $$;

-- One definition of the search columns for every writer (the archiver, `archive reindex`, a
-- benchmark's COPY). On INSERT a writer that fills a column keeps its value (`audit check`
-- recomputes them all); an UPDATE of what they are made of recomputes them.
CREATE OR REPLACE FUNCTION lt_document_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.secrecy IS DISTINCT FROM 'NONE' THEN
        NEW.body := NULL;
    END IF;
    IF TG_OP = 'UPDATE' OR NEW.subject_folded IS NULL THEN
        NEW.subject_folded := lt_fold(NEW.subject);
    END IF;
    IF TG_OP = 'UPDATE' OR NEW.search IS NULL THEN
        NEW.search := lt_heading_words(NEW.subject, NEW.number, NEW.notation, NEW.doc_type_name);
    END IF;
    IF TG_OP = 'UPDATE' OR NEW.search_full IS NULL THEN
        NEW.search_full := lt_full_words(NEW.search, NEW.party_names, NEW.body, NEW.secrecy);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER document_search_columns_update
    BEFORE UPDATE OF subject, number, notation, doc_type_name, party_names, body, secrecy
    ON document FOR EACH ROW EXECUTE FUNCTION lt_document_search_columns();

-- The words of the whole document, for the searches that look past the heading (0004's
-- document_recent_search_idx keeps serving the heading: a body's words are too many to ride
-- along in a b-tree entry).
CREATE INDEX document_search_full_idx ON document USING gin (search_full);

-- The archiver (0007) inserts documents with table-wide INSERT, which covers the new columns;
-- it is not given UPDATE on them: `archive reindex` runs as the tables' owner.
-- Auditors read the new columns with their table-wide SELECT (0002, 0003).
