-- Witnessed checkpoints (docs/evidence.md, "Witnesses"): each signed tree head also as a C2SP
-- checkpoint (a signed note, the archive's Ed25519 log key), and the cosignatures witnesses
-- outside the platform published for them. Append-only like the rest of the evidence.
ALTER TABLE tree_head ADD COLUMN checkpoint text;  -- the signed note; NULL for older heads

CREATE TABLE cosignature (
    origin     text NOT NULL,               -- the checkpoint's origin (the log id)
    size       bigint NOT NULL,
    root       bytea NOT NULL CHECK (length(root) = 32),
    witness    text NOT NULL,               -- the key name on the cosignature line
    key_id     bigint NOT NULL,             -- its 4-byte key ID
    line       text NOT NULL,               -- the signature line, as published
    note       text NOT NULL,               -- the whole cosigned note, as published
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, size, witness, key_id, line)
);
CREATE INDEX cosignature_size_idx ON cosignature (size DESC);
CREATE TRIGGER cosignature_append_only BEFORE UPDATE OR DELETE ON cosignature
    FOR EACH ROW EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER cosignature_no_truncate BEFORE TRUNCATE ON cosignature
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
REVOKE TRUNCATE ON cosignature FROM PUBLIC;
GRANT SELECT ON cosignature TO lienthong_auditor;
