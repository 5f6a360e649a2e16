-- What the KPI queries (consumers/kpi/sql.py) need to read one period instead of the archive:
-- the console's KPI page (a period and a 12-month trend) runs them on every view.

-- Paper records by document date: the paper side of every share. Partial, so it holds only the
-- paper registrations (a minority, and ever fewer) and costs the electronic rows nothing.
CREATE INDEX document_paper_date_idx ON document (promulgation_date)
    WHERE payload_type = 'PAPER_EXCHANGE_RECORD';

-- Copies by delivery time: timeliness reads the copies delivered in the period (then checks
-- that none was delivered earlier), and connectedness counts deliveries per month. The
-- recipient and document ride along so both are read from the index alone.
CREATE INDEX delivery_time_idx ON delivery (delivered_at) INCLUDE (recipient, document_id);

-- Overdue: documents whose due date falls in the period. Most documents carry none.
CREATE INDEX document_due_date_idx ON document (due_date) WHERE due_date IS NOT NULL;

-- Connectedness: the status notices sent in the period.
CREATE INDEX status_event_time_idx ON status_event (at);

-- Timeliness: a recipient's first 01 and first 06 on a copy, read from the index alone.
CREATE INDEX status_event_answer_idx ON status_event (document_id, from_agency, code, at);
