-- The copies the timeliness indicators judge, kept ready as they are archived (consumers/kpi/sql.py).
-- A copy is (non-secret official document, recipient), once delivered: its first delivery, the
-- Vietnam month that delivery falls in, the document's due date, and that recipient's first 01
-- and first 06 on it (whenever they are dated: a status dated before the delivery is flagged
-- by the KPI, not dropped here). A delivery is the document's own: a status notice about it,
-- delivered back to its sender, carries the document's id too and is no copy (the KPI counted
-- it as one before this migration); a delivery row with no record behind it (a test's, a
-- benchmark's) is taken for the document's. Before this table, each KPI page looked each copy
-- up again in delivery and status_event (two index probes per copy, ~20 µs each: ~14 s a page
-- at a city's million documents); now a period is a range of narrow rows.
--
-- Nothing here is evidence. Every row is a function of the delivery, status_event and document
-- rows (themselves re-derived from the signed bytes by `audit check --derive`), and `audit check`
-- compares the table with that function (consumers/archive/check.py): a row edited, added or
-- removed by hand is a finding.
CREATE TABLE kpi_copy (
    document_id  text NOT NULL,
    recipient    text NOT NULL,
    delivered_at timestamptz NOT NULL,  -- the first delivery of the copy
    month        date NOT NULL,         -- its Vietnam month (the first day)
    due_date     date,                  -- the document's
    at01         timestamptz,           -- the recipient's first 01 on the document
    at06         timestamptz,           -- and its first 06
    PRIMARY KEY (document_id, recipient)
) WITH (fillfactor = 80);  -- room on the page for the updates a 01 and a 06 make (HOT)

-- Timeliness reads the copies of whole months; overdue the copies due in the period.
CREATE INDEX kpi_copy_month_idx ON kpi_copy (month);
CREATE INDEX kpi_copy_due_idx ON kpi_copy (due_date) WHERE due_date IS NOT NULL;

CREATE FUNCTION lt_vn_month(at timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT date_trunc('month', at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date $$;

-- A recipient's first 01 and first 06 on a document (status_event_answer_idx): one
-- definition for the view and the triggers below. A plain SQL function, so that the planner
-- inlines it as the index probe it is.
CREATE FUNCTION lt_kpi_answers(document text, recipient text)
RETURNS TABLE (at01 timestamptz, at06 timestamptz) LANGUAGE sql STABLE AS
$$ SELECT min(s.at) FILTER (WHERE s.code = '01'), min(s.at) FILTER (WHERE s.code = '06')
   FROM status_event s
   WHERE s.document_id = document AND s.from_agency = recipient AND s.code IN ('01', '06') $$;

-- What the table must hold, from the rows it summarises: the one definition the triggers below
-- apply to new rows and `audit check` compares the whole table with.
CREATE VIEW kpi_copy_derived AS
SELECT dv.document_id, dv.recipient, dv.delivered_at, lt_vn_month(dv.delivered_at) AS month,
       d.due_date, st.at01, st.at06
FROM (SELECT dv.document_id, dv.recipient, min(dv.delivered_at) AS delivered_at
      FROM delivery dv LEFT JOIN archive_record a ON a.seq = dv.seq
      WHERE coalesce(a.payload_type, 'OFFICIAL_DOCUMENT') = 'OFFICIAL_DOCUMENT'
      GROUP BY dv.document_id, dv.recipient) AS dv
JOIN document d USING (document_id)
CROSS JOIN LATERAL lt_kpi_answers(dv.document_id, dv.recipient) AS st
WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE';

-- Kept by the database for every writer (the archiver, a test's INSERT, a benchmark's COPY), one
-- statement per batch: the archiver writes a batch's deliveries and statuses with one COPY each.
-- The archive meets its topics in no fixed order, so a copy may be delivered before its document
-- is archived (the document's trigger adds it then), and a status may come before the delivery
-- (the delivery's trigger looks the statuses up). SECURITY DEFINER: the archiver (0007) adds
-- rows to the evidence tables and cannot write this one directly.
CREATE FUNCTION lt_kpi_copy_delivered() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_copy AS k (document_id, recipient, delivered_at, month, due_date, at01, at06)
    SELECT n.document_id, n.recipient, n.delivered_at, lt_vn_month(n.delivered_at),
           d.due_date, st.at01, st.at06
    FROM (SELECT n.document_id, n.recipient, min(n.delivered_at) AS delivered_at
          FROM new_deliveries n LEFT JOIN archive_record a ON a.seq = n.seq
          WHERE coalesce(a.payload_type, 'OFFICIAL_DOCUMENT') = 'OFFICIAL_DOCUMENT'
          GROUP BY n.document_id, n.recipient) AS n
    JOIN document d USING (document_id)
    CROSS JOIN LATERAL lt_kpi_answers(n.document_id, n.recipient) AS st
    WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE'
    ON CONFLICT (document_id, recipient) DO UPDATE
        SET delivered_at = excluded.delivered_at, month = excluded.month
        WHERE excluded.delivered_at < k.delivered_at;
    RETURN NULL;
END $$;
CREATE TRIGGER delivery_kpi_copy AFTER INSERT ON delivery
    REFERENCING NEW TABLE AS new_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_copy_delivered();

CREATE FUNCTION lt_kpi_copy_answered() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE kpi_copy k SET at01 = least(k.at01, s.at01), at06 = least(k.at06, s.at06)
    FROM (SELECT document_id, from_agency,
                 min(at) FILTER (WHERE code = '01') AS at01,
                 min(at) FILTER (WHERE code = '06') AS at06
          FROM new_statuses WHERE code IN ('01', '06')
          GROUP BY document_id, from_agency) AS s
    WHERE k.document_id = s.document_id AND k.recipient = s.from_agency
      AND (s.at01 < k.at01 OR (k.at01 IS NULL AND s.at01 IS NOT NULL)
           OR s.at06 < k.at06 OR (k.at06 IS NULL AND s.at06 IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER status_event_kpi_copy AFTER INSERT ON status_event
    REFERENCING NEW TABLE AS new_statuses
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_copy_answered();

CREATE FUNCTION lt_kpi_copy_documented() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    -- Per document, by key (not through kpi_copy_derived: a join cannot reach into its
    -- grouping, and the whole delivery table would be grouped for every batch).
    INSERT INTO kpi_copy (document_id, recipient, delivered_at, month, due_date, at01, at06)
    SELECT n.document_id, dv.recipient, dv.delivered_at, lt_vn_month(dv.delivered_at),
           n.due_date, st.at01, st.at06
    FROM new_documents n
    CROSS JOIN LATERAL (
        SELECT d.recipient, min(d.delivered_at) AS delivered_at
        FROM delivery d LEFT JOIN archive_record a ON a.seq = d.seq
        WHERE d.document_id = n.document_id
          AND coalesce(a.payload_type, 'OFFICIAL_DOCUMENT') = 'OFFICIAL_DOCUMENT'
        GROUP BY d.recipient
    ) AS dv
    CROSS JOIN LATERAL lt_kpi_answers(n.document_id, dv.recipient) AS st
    WHERE n.payload_type = 'OFFICIAL_DOCUMENT' AND n.secrecy = 'NONE'
    ON CONFLICT (document_id, recipient) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER document_kpi_copy AFTER INSERT ON document
    REFERENCING NEW TABLE AS new_documents
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_copy_documented();

-- Each month's figures per agency, kept ready: what the KPI pages add up. A page's year of
-- counts was a year of documents, deliveries and notices read and grouped (~1 s a page at a
-- city's million documents, however the indexes were laid out); here it is a few thousand rows.
-- One row per (Vietnam month, agency) that has any figure, the columns of consumers/kpi's
-- Counts and the copies of Timeliness (counted in the month of their first delivery), and
-- the copies' answer times, sorted: percentiles do not add up, so a period's are taken over
-- the times of its months and agencies together (consumers/kpi/months.py).
-- lt_kpi_month(m) is the one definition of a month's rows. A month is refreshed from it
-- once anything it counts has changed (kpi_month_stale, marked by triggers as rows are
-- archived); readers take a stale month from lt_kpi_month itself, so figures are never
-- behind the archive, and `audit check` compares every fresh month with it.
CREATE TABLE kpi_month (
    month             date NOT NULL,
    agency            text NOT NULL,
    docs_sent_e       bigint NOT NULL,
    docs_sent_p       bigint NOT NULL,
    docs_recv_e       bigint NOT NULL,
    docs_recv_p       bigint NOT NULL,
    reports_sent_e    bigint NOT NULL,
    reports_sent_p    bigint NOT NULL,
    notices_sent_e    bigint NOT NULL,
    deliveries_recv_e bigint NOT NULL,
    delivered         bigint NOT NULL,
    early_01          bigint NOT NULL,
    early_06          bigint NOT NULL,
    arrived_same_day  bigint NOT NULL,
    -- copies due this month with no 06 from their recipient by the month's end: the month's
    -- own overdue figure once it is over (a longer period is judged at its own end)
    overdue           bigint NOT NULL,
    -- Times, each a float8 in network byte order (float8send), 8 bytes, ascending: bytes, not
    -- float8[], because a year page reads ~16 MB of them and array_send alone took 90 ms.
    answered_01       bytea NOT NULL,  -- seconds from delivery to 01
    answered_06       bytea NOT NULL,  -- the same for 06
    -- the copies due this month: when their recipient's first 06 came (epoch seconds,
    -- 'Infinity' for none yet); a longer period's overdue count is how many of its months'
    -- copies had none by the period's end (docs/kpi.md)
    due_06            bytea NOT NULL,
    PRIMARY KEY (month, agency)
);

-- The months whose rows in kpi_month no longer say what the archive says. A row per change
-- (never updated, so the archiver never waits on a refresh); a refresh deletes the rows it
-- has seen, and one added meanwhile keeps the month stale.
CREATE TABLE kpi_month_stale (
    id    bigserial PRIMARY KEY,
    month date NOT NULL
);
CREATE INDEX kpi_month_stale_month_idx ON kpi_month_stale (month);

CREATE FUNCTION lt_kpi_month(m date) RETURNS SETOF kpi_month LANGUAGE sql STABLE AS $$
WITH span AS (
    SELECT m::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' AS lo,
           (m + interval '1 month')::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' AS hi
), e AS (
    -- Electronic: routed, not secret, in the month it was submitted (consumers/kpi/sql.py).
    SELECT d.payload_type, d.sender, d.recipients
    FROM document d, span
    WHERE d.payload_type IN ('OFFICIAL_DOCUMENT', 'PERIODIC_REPORT')
      AND d.routing_outcome = 'routed' AND d.secrecy = 'NONE'
      AND d.submitted_at >= span.lo AND d.submitted_at < span.hi
), p AS (
    -- Paper: one sheet is (sender, number, notation, document date), however many clerks
    -- registered it; counted unless the router refused it, in the month of its date.
    SELECT DISTINCT d.sender, coalesce(d.number, '') AS number,
           coalesce(d.notation, '') AS notation, d.promulgation_date AS day,
           coalesce(d.doc_type, '') = 'BC' AS is_report, r.recipient
    FROM document d CROSS JOIN LATERAL unnest(d.recipients) AS r(recipient)
    WHERE d.payload_type = 'PAPER_EXCHANGE_RECORD'
      AND d.routing_outcome <> 'rejected' AND d.secrecy = 'NONE'
      AND d.promulgation_date >= m AND d.promulgation_date < (m + interval '1 month')::date
), counted AS (
    SELECT sender AS agency,
           CASE payload_type WHEN 'PERIODIC_REPORT' THEN 'reports_sent_e' ELSE 'docs_sent_e' END
               AS metric,
           count(*) AS n
    FROM e GROUP BY 1, 2
    UNION ALL
    SELECT r.recipient, 'docs_recv_e', count(*)
    FROM e CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(e.recipients) AS x) AS r(recipient)
    WHERE e.payload_type = 'OFFICIAL_DOCUMENT'
    GROUP BY 1
    UNION ALL
    SELECT sender, CASE WHEN is_report THEN 'reports_sent_p' ELSE 'docs_sent_p' END,
           count(DISTINCT (number, notation, day))
    FROM p GROUP BY 1, 2
    UNION ALL
    SELECT recipient, 'docs_recv_p', count(*) FROM p WHERE NOT is_report GROUP BY 1
    UNION ALL
    -- Connectedness: notices an agency sent (kind 'delivery': not the platform's own 02s) ...
    SELECT s.from_agency, 'notices_sent_e', count(*)
    FROM status_event s JOIN archive_record a USING (seq), span
    WHERE a.kind = 'delivery' AND s.at >= span.lo AND s.at < span.hi
    GROUP BY 1
    UNION ALL
    -- ... and anything delivered to its inbox.
    SELECT dv.recipient, 'deliveries_recv_e', count(*)
    FROM delivery dv, span
    WHERE dv.delivered_at >= span.lo AND dv.delivered_at < span.hi
    GROUP BY 1
), counts AS (
    SELECT agency,
           sum(n) FILTER (WHERE metric = 'docs_sent_e') AS docs_sent_e,
           sum(n) FILTER (WHERE metric = 'docs_sent_p') AS docs_sent_p,
           sum(n) FILTER (WHERE metric = 'docs_recv_e') AS docs_recv_e,
           sum(n) FILTER (WHERE metric = 'docs_recv_p') AS docs_recv_p,
           sum(n) FILTER (WHERE metric = 'reports_sent_e') AS reports_sent_e,
           sum(n) FILTER (WHERE metric = 'reports_sent_p') AS reports_sent_p,
           sum(n) FILTER (WHERE metric = 'notices_sent_e') AS notices_sent_e,
           sum(n) FILTER (WHERE metric = 'deliveries_recv_e') AS deliveries_recv_e
    FROM counted GROUP BY agency
), copies AS (
    -- The copies first delivered this month, per recipient. A status dated before the
    -- delivery it answers is counted (early) and left out of every other figure.
    SELECT recipient AS agency,
           count(*) AS delivered,
           count(*) FILTER (WHERE at01 < delivered_at) AS early_01,
           count(*) FILTER (WHERE at06 < delivered_at) AS early_06,
           count(*) FILTER (WHERE at01 >= delivered_at
                              AND (at01 AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                                = (delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
               AS arrived_same_day,
           string_agg(float8send(extract(epoch FROM at01 - delivered_at)::double precision),
                      ''::bytea ORDER BY extract(epoch FROM at01 - delivered_at))
               FILTER (WHERE at01 >= delivered_at) AS answered_01,
           string_agg(float8send(extract(epoch FROM at06 - delivered_at)::double precision),
                      ''::bytea ORDER BY extract(epoch FROM at06 - delivered_at))
               FILTER (WHERE at06 >= delivered_at) AS answered_06
    FROM kpi_copy WHERE month = m
    GROUP BY recipient
), due AS (
    SELECT k.recipient AS agency,
           count(*) FILTER (WHERE k.at06 IS NULL OR k.at06 >= span.hi) AS overdue,
           string_agg(float8send(coalesce(extract(epoch FROM k.at06)::double precision,
                                          'Infinity')),
                      ''::bytea ORDER BY k.at06 NULLS LAST) AS due_06
    FROM kpi_copy k, span
    WHERE k.due_date >= m AND k.due_date < (m + interval '1 month')::date
    GROUP BY k.recipient
)
SELECT m, agency,
       coalesce(c.docs_sent_e, 0)::bigint, coalesce(c.docs_sent_p, 0)::bigint,
       coalesce(c.docs_recv_e, 0)::bigint, coalesce(c.docs_recv_p, 0)::bigint,
       coalesce(c.reports_sent_e, 0)::bigint, coalesce(c.reports_sent_p, 0)::bigint,
       coalesce(c.notices_sent_e, 0)::bigint, coalesce(c.deliveries_recv_e, 0)::bigint,
       coalesce(k.delivered, 0), coalesce(k.early_01, 0), coalesce(k.early_06, 0),
       coalesce(k.arrived_same_day, 0), coalesce(o.overdue, 0),
       coalesce(k.answered_01, ''::bytea), coalesce(k.answered_06, ''::bytea),
       coalesce(o.due_06, ''::bytea)
FROM counts c FULL JOIN copies k USING (agency) FULL JOIN due o USING (agency)
$$;

-- What makes a month stale: a document submitted or dated in it (or its routing settled), a
-- delivery or a notice in it, a copy delivered or due in it that is delivered or answered. Statement triggers, as for
-- kpi_copy: one mark per month a batch touched.
CREATE FUNCTION lt_kpi_mark_documents() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_month_stale (month)
    SELECT DISTINCT x.month FROM new_documents n
    CROSS JOIN LATERAL (VALUES (lt_vn_month(n.submitted_at)),
                               (date_trunc('month', n.promulgation_date)::date)) AS x(month)
    WHERE x.month IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER document_kpi_month AFTER INSERT ON document
    REFERENCING NEW TABLE AS new_documents
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_documents();
CREATE TRIGGER document_kpi_month_settled AFTER UPDATE ON document
    REFERENCING NEW TABLE AS new_documents
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_documents();

CREATE FUNCTION lt_kpi_mark_deliveries() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_month_stale (month)
    SELECT DISTINCT lt_vn_month(delivered_at) FROM new_deliveries;
    RETURN NULL;
END $$;
CREATE TRIGGER delivery_kpi_month AFTER INSERT ON delivery
    REFERENCING NEW TABLE AS new_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_deliveries();

CREATE FUNCTION lt_kpi_mark_statuses() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_month_stale (month) SELECT DISTINCT lt_vn_month(at) FROM new_statuses;
    RETURN NULL;
END $$;
CREATE TRIGGER status_event_kpi_month AFTER INSERT ON status_event
    REFERENCING NEW TABLE AS new_statuses
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_statuses();

CREATE FUNCTION lt_kpi_mark_copies() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_month_stale (month)
    SELECT month FROM new_copies
    UNION SELECT date_trunc('month', due_date)::date FROM new_copies WHERE due_date IS NOT NULL;
    IF TG_OP = 'UPDATE' THEN  -- an earlier delivery moves a copy to another month
        INSERT INTO kpi_month_stale (month) SELECT DISTINCT month FROM old_copies;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER kpi_copy_inserted AFTER INSERT ON kpi_copy
    REFERENCING NEW TABLE AS new_copies
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_copies();
CREATE TRIGGER kpi_copy_updated AFTER UPDATE ON kpi_copy
    REFERENCING OLD TABLE AS old_copies NEW TABLE AS new_copies
    FOR EACH STATEMENT EXECUTE FUNCTION lt_kpi_mark_copies();

-- Bring stale months up to date (at most `most` of them, the oldest first; all when NULL);
-- returns how many. The archiver calls it with each checkpoint, `lienthong kpi refresh` on
-- demand. One refresh at a time (an advisory lock); the marks seen are deleted, not the ones
-- a concurrent batch adds.
CREATE FUNCTION lt_kpi_refresh(most integer DEFAULT NULL) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date;
    seen bigint[];
    done integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('lienthong.kpi_refresh')) THEN
        RETURN 0;  -- another refresh is at it
    END IF;
    FOR m, seen IN
        SELECT s.month, array_agg(s.id) FROM kpi_month_stale s
        GROUP BY s.month ORDER BY s.month LIMIT most
    LOOP
        DELETE FROM kpi_month WHERE month = m;
        INSERT INTO kpi_month SELECT * FROM lt_kpi_month(m);
        DELETE FROM kpi_month_stale WHERE id = ANY(seen);
        done := done + 1;
    END LOOP;
    RETURN done;
END $$;

-- The archive as it stands: every copy, and every month with something in it marked stale
-- (the archiver's first checkpoint, or `lienthong kpi refresh`, fills kpi_month).
INSERT INTO kpi_copy SELECT * FROM kpi_copy_derived;
INSERT INTO kpi_month_stale (month)
SELECT lt_vn_month(submitted_at) FROM document
UNION SELECT date_trunc('month', promulgation_date)::date FROM document
          WHERE promulgation_date IS NOT NULL
UNION SELECT lt_vn_month(delivered_at) FROM delivery
UNION SELECT lt_vn_month(at) FROM status_event
UNION SELECT date_trunc('month', due_date)::date FROM kpi_copy WHERE due_date IS NOT NULL;

-- Nobody writes these but the triggers and the refresh; auditors and the console (a member of
-- lienthong_auditor) read them, and the definitions `audit check` compares them with.
REVOKE ALL ON kpi_copy, kpi_month, kpi_month_stale FROM PUBLIC;
REVOKE ALL ON FUNCTION lt_kpi_refresh(integer) FROM PUBLIC;
GRANT SELECT ON kpi_copy, kpi_copy_derived, kpi_month, kpi_month_stale TO lienthong_auditor;
GRANT EXECUTE ON FUNCTION lt_kpi_refresh(integer) TO lienthong_archiver;
-- The archiver reports how many months are left stale (lienthong_archive_kpi_stale_months).
GRANT SELECT ON kpi_month_stale TO lienthong_archiver;
