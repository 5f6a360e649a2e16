-- What the KPI queries (consumers/kpi/sql.py) need to read the periods asked for instead of the
-- whole archive: the console's KPI page (a period and a 12-month trend) runs them on every view.

-- Electronic documents and reports by submission time, with what the monthly counts read
-- (type, sender, recipients): a year of them is read from this index alone, never from the
-- wide document rows. Partial: only what counts (routed, not secret).
CREATE INDEX document_exchanged_idx ON document (submitted_at)
    INCLUDE (payload_type, sender, recipients)
    WHERE routing_outcome = 'routed' AND secrecy = 'NONE'
      AND payload_type IN ('OFFICIAL_DOCUMENT', 'PERIODIC_REPORT');

-- Paper records by document date: the paper side of every share. Partial, so it holds only the
-- paper registrations (a minority, and ever fewer).
CREATE INDEX document_paper_date_idx ON document (promulgation_date)
    WHERE payload_type = 'PAPER_EXCHANGE_RECORD';

-- Overdue: documents whose due date falls in the period. Most documents carry none.
CREATE INDEX document_due_date_idx ON document (due_date) WHERE due_date IS NOT NULL;

-- Copies by delivery time: timeliness reads the copies delivered in the period, connectedness
-- counts deliveries per month. The archive appends deliveries in time order, so the rows of a
-- period sit together and the index need not carry them.
CREATE INDEX delivery_time_idx ON delivery (delivered_at);

-- Timeliness: a recipient's first 01 and first 06 on a copy, read from the index alone (one
-- probe per copy delivered in the period).
CREATE INDEX status_event_answer_idx ON status_event (document_id, from_agency, code, at);

-- Connectedness: the status notices sent in the period.
CREATE INDEX status_event_time_idx ON status_event (at);
