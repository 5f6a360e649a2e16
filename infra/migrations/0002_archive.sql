-- The archive: every message kept byte for byte, in one append-only order that is also the
-- order of the Merkle tree's leaves (docs/evidence.md), plus the parsed metadata auditors search.

-- Every archived Kafka record. seq is the leaf index: 0-based and gapless, assigned by the
-- single archive writer (it holds an advisory lock), so the tree can be recomputed from rows.
CREATE TABLE archive_record (
    seq          bigint PRIMARY KEY CHECK (seq >= 0),
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('submission', 'delivery', 'deadletter', 'notice')),
    message_id   text,            -- NULL when the bytes did not parse
    document_id  text,
    payload_type text,
    sender       text,            -- as the envelope claims it
    raw          bytea,           -- the original bytes; NULL only for a secret document
    raw_sha256   bytea NOT NULL CHECK (length(raw_sha256) = 32),
    parse_error  text,            -- why the archiver could not parse it (raw is still kept)
    leaf_data    bytea NOT NULL,  -- canonical JSON, see docs/evidence.md
    leaf_hash    bytea NOT NULL CHECK (length(leaf_hash) = 32),
    archived_at  timestamptz NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX archive_record_message_idx ON archive_record (message_id);
CREATE INDEX archive_record_document_idx ON archive_record (document_id, seq);

-- Exactly once into the database: the next offset to read is stored in the same transaction
-- as the rows it produced.
CREATE TABLE archive_offset (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- One row per document, report or paper record, from its submission; what auditors search.
CREATE TABLE document (
    document_id       text PRIMARY KEY,
    payload_type      text NOT NULL,
    sender            text NOT NULL,
    recipients        text[] NOT NULL DEFAULT '{}',
    copies            text[] NOT NULL DEFAULT '{}',   -- ToPlaces with agency codes
    number            text,
    notation          text,
    doc_type          text,           -- Decree 30 abbreviation ('' for Công văn)
    doc_type_name     text,
    subject           text,
    subject_folded    text,           -- lt_fold(subject): lower case, no diacritics
    promulgation_date date,
    due_date          date,
    priority          smallint,
    secrecy           text NOT NULL DEFAULT 'NONE',
    signer            jsonb,          -- competence, position, full name
    signatures        jsonb,          -- per signature: role, subject, fingerprint, validity, time
    submission_seq    bigint REFERENCES archive_record (seq),
    submitted_at      timestamptz NOT NULL,
    routing_outcome   text NOT NULL DEFAULT 'pending'
                      CHECK (routing_outcome IN ('pending', 'routed', 'rejected')),
    routing_reason    text,
    routing_seq       bigint REFERENCES archive_record (seq),
    search            tsvector
);
CREATE INDEX document_sender_time_idx ON document (sender, submitted_at DESC);
CREATE INDEX document_time_idx ON document (submitted_at DESC);
CREATE INDEX document_recipients_idx ON document USING gin (recipients);
CREATE INDEX document_type_time_idx ON document (doc_type, submitted_at DESC);
CREATE INDEX document_code_idx ON document (number, notation);
CREATE INDEX document_subject_trgm_idx ON document USING gin (subject_folded gin_trgm_ops);
CREATE INDEX document_search_idx ON document USING gin (search);

-- Each copy delivered to a recipient's inbox.
CREATE TABLE delivery (
    document_id  text NOT NULL,
    recipient    text NOT NULL,
    seq          bigint NOT NULL REFERENCES archive_record (seq),
    delivered_at timestamptz NOT NULL,
    PRIMARY KEY (document_id, recipient, seq)
);
CREATE INDEX delivery_recipient_idx ON delivery (recipient, delivered_at DESC);

-- The status timeline: every notice routed, per (document, answering agency).
CREATE TABLE status_event (
    seq          bigint PRIMARY KEY REFERENCES archive_record (seq),
    document_id  text NOT NULL,
    from_agency  text NOT NULL,
    to_agency    text NOT NULL,
    code         text NOT NULL,
    description  text,
    staff        jsonb,
    at           timestamptz NOT NULL
);
CREATE INDEX status_event_document_idx ON status_event (document_id, at);

-- Refusals, from the dead-letter topic: the reason, and never the content of a secret document.
CREATE TABLE rejection (
    seq          bigint PRIMARY KEY REFERENCES archive_record (seq),
    reason       text NOT NULL,
    detail       text,
    sender       text,
    message_id   text,
    document_id  text,
    secret       boolean NOT NULL DEFAULT false,
    source       text,
    at           timestamptz NOT NULL
);
CREATE INDEX rejection_reason_idx ON rejection (reason, at);

-- The Merkle tree's perfect subtrees: node (level, idx) covers leaves [idx*2^level, (idx+1)*2^level).
CREATE TABLE merkle_node (
    level smallint NOT NULL,
    idx   bigint NOT NULL,
    hash  bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed tree heads, as signed by the archive's key (signing/treehead.py JSON).
CREATE TABLE tree_head (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL CHECK (length(root) = 32),
    signed     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Who asked the archive what, and when. Auditors may add rows, never change them.
CREATE TABLE audit_access_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    db_role    text NOT NULL DEFAULT current_user,
    who        text NOT NULL,
    command    text NOT NULL,
    args       jsonb NOT NULL DEFAULT '{}'
);

-- Nothing is ever deleted or rewritten by the platform: the archive is append-only by rule,
-- and the Merkle tree makes any edit made around this rule (by a superuser) detectable.
CREATE FUNCTION lt_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % table is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER archive_record_append_only BEFORE UPDATE OR DELETE ON archive_record
    FOR EACH ROW EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER merkle_node_append_only BEFORE UPDATE OR DELETE ON merkle_node
    FOR EACH ROW EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER tree_head_append_only BEFORE UPDATE OR DELETE ON tree_head
    FOR EACH ROW EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER audit_access_log_append_only BEFORE UPDATE OR DELETE ON audit_access_log
    FOR EACH ROW EXECUTE FUNCTION lt_append_only();

-- Auditors read everything and write only their own access log entries.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lienthong_auditor') THEN
        CREATE ROLE lienthong_auditor LOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO lienthong_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO lienthong_auditor;
GRANT INSERT ON audit_access_log TO lienthong_auditor;
GRANT USAGE ON SEQUENCE audit_access_log_id_seq TO lienthong_auditor;
