-- The archiver writes as a role of its own, not as the superuser or the tables' owner: it may
-- add rows and settle a document's routing, and nothing else. It cannot UPDATE or DELETE the
-- evidence (no privilege, besides the append-only triggers), cannot TRUNCATE, and, not owning
-- the tables, cannot ALTER TABLE ... DISABLE TRIGGER. What it writes is checked by the Merkle
-- tree and by the witnesses anyway (docs/evidence.md, "What an insider can still do").
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lienthong_archiver') THEN
        CREATE ROLE lienthong_archiver LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO lienthong_archiver;
GRANT SELECT, INSERT ON archive_record, merkle_node, tree_head, rejection, delivery,
    status_event, cosignature, document, archive_offset TO lienthong_archiver;
-- SETTLE_ROUTING: a document's outcome is settled when its delivery or dead letter arrives.
GRANT UPDATE (routing_outcome, routing_reason, routing_seq) ON document TO lienthong_archiver;
-- UPSERT_OFFSET: the next offset of a partition moves forward with each batch.
GRANT UPDATE (next_offset) ON archive_offset TO lienthong_archiver;
