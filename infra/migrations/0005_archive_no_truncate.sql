-- TRUNCATE bypasses the row triggers of 0002, so `TRUNCATE archive_record, merkle_node,
-- tree_head CASCADE` emptied the evidence without a word. Nobody but the owner may truncate the
-- archive's tables, and the owner is refused too (as for the access log in 0003): emptying them
-- now takes a superuser disabling triggers on purpose, and `audit check` still finds it (the
-- offsets left in archive_offset, and the witnessed checkpoints, outlive the rows).
REVOKE TRUNCATE ON archive_record, merkle_node, tree_head, archive_offset, document, delivery,
    status_event, rejection FROM PUBLIC;
CREATE TRIGGER archive_record_no_truncate BEFORE TRUNCATE ON archive_record
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER merkle_node_no_truncate BEFORE TRUNCATE ON merkle_node
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER tree_head_no_truncate BEFORE TRUNCATE ON tree_head
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER archive_offset_no_truncate BEFORE TRUNCATE ON archive_offset
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER document_no_truncate BEFORE TRUNCATE ON document
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER delivery_no_truncate BEFORE TRUNCATE ON delivery
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER status_event_no_truncate BEFORE TRUNCATE ON status_event
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
CREATE TRIGGER rejection_no_truncate BEFORE TRUNCATE ON rejection
    FOR EACH STATEMENT EXECUTE FUNCTION lt_append_only();
