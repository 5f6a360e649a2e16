"""The KPI's figures read from its summaries (migration 0012: kpi_copy, kpi_month; docs/kpi.md)
equal the queries the pages ran before, which grouped every delivery of the archive and then
kept one period: generated rows with the edge cases (a copy first delivered before the period
and again inside it, statuses dated before the delivery, times on the Vietnam midnight between
two months, secret documents, paper registered by sender and recipients, refused and pending
documents, recipients outside the tree), many periods and several `now`s, compared figure by
figure, with the months stale (counted by lt_kpi_month) and refreshed; and the summaries equal
their definitions whatever order the rows are archived in."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest

from consumers.kpi.indicators import Counts, Period, Timeliness, Tree
from consumers.kpi.sql import VN, monthly_counts, refresh, timeliness, timeliness_by_period
from schemas.agency import AgencyDirectory
from tests.support import fresh_database

TREE = Tree(AgencyDirectory.default())
CODES = [a.code for a in TREE]
OUTSIDE = "000.99.99.H26"  # a recipient the directory does not know: it rolls up into ALL only
FIRST, LAST = date(2026, 6, 1), date(2027, 2, 1)  # the generated rows' months

# The queries this module's subject replaced, verbatim: the reference the new ones must equal.
_OLD_DELIVERIES = """
WITH closure AS (
    SELECT * FROM unnest($3::text[], $4::text[]) AS c(ancestor, descendant)
), dl AS (
    SELECT dv.document_id, dv.recipient, min(dv.delivered_at) AS delivered_at
    FROM delivery dv JOIN document d USING (document_id)
    WHERE d.payload_type = 'OFFICIAL_DOCUMENT' AND d.secrecy = 'NONE'
    GROUP BY dv.document_id, dv.recipient
), t AS (
    SELECT dl.*, d.due_date,
           (SELECT min(s.at) FROM status_event s WHERE s.document_id = dl.document_id
              AND s.from_agency = dl.recipient AND s.code = '01') AS at01,
           (SELECT min(s.at) FROM status_event s WHERE s.document_id = dl.document_id
              AND s.from_agency = dl.recipient AND s.code = '06') AS at06
    FROM dl JOIN document d USING (document_id)
    WHERE {where}
), up AS (
    SELECT t.*, a.ancestor FROM t CROSS JOIN LATERAL (
        SELECT c.ancestor FROM closure c WHERE c.descendant = t.recipient
        UNION ALL SELECT '*'
    ) AS a
)
"""
OLD_TIMELINESS = (
    _OLD_DELIVERIES.format(
        where="dl.delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') "
        "AND dl.delivered_at < ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')"
    )
    + """
SELECT ancestor,
       count(*) AS delivered,
       count(*) FILTER (WHERE at01 < delivered_at) AS early_01,
       count(*) FILTER (WHERE at06 < delivered_at) AS early_06,
       count(*) FILTER (WHERE at01 >= delivered_at
                          AND (at01 AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                            = (delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
           AS arrived_same_day,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at01 - delivered_at))
           FILTER (WHERE at01 >= delivered_at) / 3600 AS median_01_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM at01 - delivered_at))
           FILTER (WHERE at01 >= delivered_at) / 3600 AS p90_01_h,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at06 - delivered_at))
           FILTER (WHERE at06 >= delivered_at) / 3600 AS median_06_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM at06 - delivered_at))
           FILTER (WHERE at06 >= delivered_at) / 3600 AS p90_06_h
FROM up GROUP BY ancestor
"""
)
OLD_OVERDUE = (
    _OLD_DELIVERIES.format(where="d.due_date >= $1::date AND d.due_date < $2::date")
    + """
SELECT ancestor, count(*) AS overdue
FROM up
WHERE due_date < ($5::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
  AND (at06 IS NULL OR at06 >= $5::timestamptz)
GROUP BY ancestor
"""
)


# The monthly counts as the KPI read them before migration 0012 (consumers/kpi/sql.py), verbatim.
# Paper: one paper document is (sender, number, notation, document date), however many clerks
# registered it (the sender's OUTGOING and each recipient's INCOMING registration describe the
# same sheet of paper); its addressees are the union of the registrations' recipients. Paper
# documents are placed in the month of their document date, which every registration shares,
# so both sides land in the same month. Paper records of type BC (Báo cáo) are the paper side of
# periodic reports and count there, not among documents.
OLD_MONTHLY_COUNTS = """
WITH e AS (
    SELECT d.payload_type, d.sender, d.recipients,
           to_char(d.submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM') AS month
    FROM document d
    WHERE d.payload_type IN ('OFFICIAL_DOCUMENT', 'PERIODIC_REPORT')
      AND d.routing_outcome = 'routed' AND d.secrecy = 'NONE'
      AND d.submitted_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
      AND d.submitted_at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
), p AS (
    SELECT DISTINCT d.sender, coalesce(d.number, '') AS number,
           coalesce(d.notation, '') AS notation, d.promulgation_date AS day,
           coalesce(d.doc_type, '') = 'BC' AS is_report, r.recipient
    FROM document d CROSS JOIN LATERAL unnest(d.recipients) AS r(recipient)
    WHERE d.payload_type = 'PAPER_EXCHANGE_RECORD'
      AND d.routing_outcome <> 'rejected' AND d.secrecy = 'NONE'
      AND d.promulgation_date >= $1::date AND d.promulgation_date < $2::date
)
SELECT sender AS agency, month,
       CASE payload_type WHEN 'PERIODIC_REPORT' THEN 'reports_sent_e' ELSE 'docs_sent_e' END
           AS metric,
       count(*) AS n
FROM e GROUP BY 1, 2, 3
UNION ALL
SELECT r.recipient, e.month, 'docs_recv_e', count(*)
FROM e CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(e.recipients) AS x) AS r(recipient)
WHERE e.payload_type = 'OFFICIAL_DOCUMENT'
GROUP BY 1, 2
UNION ALL
SELECT sender, to_char(day, 'YYYY-MM'),
       CASE WHEN is_report THEN 'reports_sent_p' ELSE 'docs_sent_p' END,
       count(DISTINCT (number, notation, day))
FROM p GROUP BY 1, 2, 3
UNION ALL
SELECT recipient, to_char(day, 'YYYY-MM'), 'docs_recv_p', count(*)
FROM p WHERE NOT is_report GROUP BY 1, 2
UNION ALL
-- Connectedness: notices an agency sent (kind 'delivery': not the platform's own 02s) ...
SELECT s.from_agency, to_char(s.at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM'),
       'notices_sent_e', count(*)
FROM status_event s JOIN archive_record a USING (seq)
WHERE a.kind = 'delivery'
  AND s.at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND s.at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2
UNION ALL
-- ... and anything delivered to its inbox.
SELECT recipient, to_char(delivered_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM'),
       'deliveries_recv_e', count(*)
FROM delivery
WHERE delivered_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND delivered_at <  ($2::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
GROUP BY 1, 2
"""

# Both timeliness queries judge several periods at once, so a page's period and the previous
# one, or a trend's months and their whole range, cost one read of the copies, not one each.
# $1..$2 (Vietnam dates) spans every period; each period n is given as its months, with the
# time it is judged at ($5 n, $6 first day of a month, $7 as-of time): periods are whole
# months, so "in period n" is an equality on the month, a hash join, not a range test per pair.
# The counts add up: each recipient's are counted once per period, then summed up the tree
# ($3, $4: the closure). The percentiles do not: they are taken over the copies of each


async def old_monthly_counts(
    conn: asyncpg.Connection, start: date, end: date
) -> dict[tuple[str, str], Counts]:
    acc: dict[tuple[str, str], dict[str, int]] = {}
    for r in await conn.fetch(OLD_MONTHLY_COUNTS, start, end):
        acc.setdefault((r["agency"], r["month"]), {})[r["metric"]] = int(r["n"])
    return {k: Counts(**v) for k, v in acc.items()}


async def old_timeliness(
    conn: asyncpg.Connection, period: Period, tree: Tree, now: datetime
) -> dict[str, Timeliness]:
    pairs = tree.pairs()
    args: list[Any] = [period.start, period.end, [a for a, _ in pairs], [d for _, d in pairs]]
    base: dict[str, dict[str, Any]] = {}
    for r in await conn.fetch(OLD_TIMELINESS, *args):
        base[r["ancestor"]] = {k: r[k] for k in r.keys() if k != "ancestor"}
    as_of = min(now, datetime.combine(period.end, time(), VN))
    for r in await conn.fetch(OLD_OVERDUE, *args, as_of):
        base.setdefault(r["ancestor"], {})["overdue"] = int(r["overdue"])
    return {k: Timeliness(**v) for k, v in base.items()}


def midnight(d: date) -> datetime:
    """00:00 in Hà Nội on day d: where one Vietnam month ends and the next begins."""
    return datetime.combine(d, time(), VN).astimezone(UTC)


def month_starts() -> list[date]:
    return [p.start for p in Period(FIRST, LAST, "range").months()] + [LAST]


def generate(seed: int = 30) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[Any]]:
    """Documents, deliveries and statuses; many land on the edges the queries must not blur."""
    rng = random.Random(seed)
    edges = [midnight(d) for d in month_starts()]
    span = (midnight(LAST) - midnight(FIRST)).total_seconds()

    def some_time() -> datetime:
        if rng.random() < 0.25:  # on a month's first instant, or just before it
            return rng.choice(edges) - rng.choice([timedelta(0), timedelta(microseconds=1)])
        return midnight(FIRST) + timedelta(seconds=rng.uniform(0, span))

    docs, deliveries, statuses = [], [], []
    for i in range(400):
        kind = rng.choices(["plain", "secret", "report", "notice"], [75, 10, 10, 5])[0]
        payload = {"report": "PERIODIC_REPORT", "notice": "STATUS_NOTICE"}.get(
            kind, "OFFICIAL_DOCUMENT"
        )
        sent = some_time()
        due = None
        if rng.random() < 0.6:
            due = rng.choice(month_starts()) - timedelta(days=rng.choice([0, 1, 0, 9, 17]))
        recipients = rng.sample(CODES, rng.randint(1, 4))
        if rng.random() < 0.1:
            recipients.append(OUTSIDE)
        doc_id = f"g{i}"
        docs.append(
            (doc_id, payload, rng.choice(CODES), recipients, due, sent,
             "MAT" if kind == "secret" else "NONE")
        )  # fmt: skip
        for r in recipients:
            if rng.random() < 0.1:
                continue  # never delivered: due or not, it is nobody's copy
            first = sent + timedelta(minutes=rng.choice([0, 1, 30, 600]))
            times = [first]
            if rng.random() < 0.3:  # delivered again later, often in a later month
                times.append(first + timedelta(days=rng.choice([1, 20, 35, 70])))
            if rng.random() < 0.1:  # or a copy delivered again at the very same instant
                times.append(first)
            deliveries += [(doc_id, r, t) for t in times]
            for code, p, late in (("01", 0.8, [0.2, 1, 9, 30]), ("06", 0.6, [20, 48, 400, 2000])):
                for _ in range(rng.choice([1, 1, 1, 2])):
                    if rng.random() > p:
                        continue
                    if rng.random() < 0.1:  # dated before the delivery: a wrong clock
                        at = first - timedelta(hours=rng.choice([0.5, 30]))
                    elif rng.random() < 0.1:  # exactly on a month's end, an as-of instant
                        at = rng.choice(edges)
                    else:
                        at = first + timedelta(hours=rng.choice(late) * rng.uniform(0.5, 1.5))
                    statuses.append((doc_id, r, code, at))
            if rng.random() < 0.2:  # notices the timeliness figures must ignore
                statuses.append((doc_id, r, "03", first + timedelta(hours=1)))
                statuses.append((doc_id, rng.choice(CODES), "01", first - timedelta(hours=1)))
    return docs, deliveries, statuses


def paper(seed: int = 31) -> list[tuple[Any, ...]]:
    """Paper registrations: the sender's (OUTGOING) and often each recipient's (INCOMING) of
    one sheet, some refused or secret, some reports (BC), dated on months' first and last days."""
    rng = random.Random(seed)
    days = [d + timedelta(days=k) for d in month_starts()[:-1] for k in (0, 9, 27)]
    days += [d - timedelta(days=1) for d in month_starts()[1:]]
    rows = []
    for i in range(150):
        sender, day = rng.choice(CODES), rng.choice(days)
        recipients = rng.sample(CODES, rng.randint(1, 3))
        number, notation = str(rng.randint(1, 40)), rng.choice(["KH-UBND", "BC-SNV", ""])
        doc_type = "BC" if notation.startswith("BC") else rng.choice(["KH", "CV", ""])
        outcome = rng.choices(["pending", "rejected"], [9, 1])[0]
        secrecy = rng.choices(["NONE", "MAT"], [19, 1])[0]
        sent = midnight(day) + timedelta(hours=9)
        registrations = [(sender, recipients)]
        if rng.random() < 0.6:  # each recipient registered the same sheet on arrival
            registrations += [(sender, [r]) for r in recipients]
        for k, (s, rs) in enumerate(registrations):
            rows.append((f"p{i}.{k}", "PAPER_EXCHANGE_RECORD", s, rs, number, notation,
                         doc_type, day, sent, secrecy, outcome))  # fmt: skip
    return rows


async def seed(conn: asyncpg.Connection) -> None:
    docs, deliveries, statuses = generate()
    await conn.executemany(
        "INSERT INTO document (document_id, payload_type, sender, recipients, due_date, "
        "submitted_at, secrecy) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        docs,
    )
    n = len(deliveries) + len(statuses)
    await conn.execute(
        'INSERT INTO archive_record (seq, topic, partition, "offset", kind, raw_sha256, '
        "leaf_data, leaf_hash, archived_at) SELECT g, 't', 0, g, 'delivery', "
        "sha256(g::text::bytea), g::text::bytea, sha256(g::text::bytea), now() "
        "FROM generate_series(0, $1) g",
        n,
    )
    await conn.executemany(
        "INSERT INTO delivery (document_id, recipient, seq, delivered_at) VALUES ($1, $2, $3, $4)",
        [(d, r, k, t) for k, (d, r, t) in enumerate(deliveries)],
    )
    await conn.executemany(
        "INSERT INTO status_event (seq, document_id, from_agency, to_agency, code, at) "
        "VALUES ($1, $2, $3, '000.00.00.H26', $4, $5)",
        [(len(deliveries) + k, d, f, c, t) for k, (d, f, c, t) in enumerate(statuses)],
    )
    # The router's outcome, settled later as the archive meets it (an UPDATE, as the archiver's).
    await conn.execute(
        "UPDATE document SET routing_outcome = CASE abs(hashtext(document_id)) % 10 "
        "WHEN 0 THEN 'rejected' WHEN 1 THEN 'pending' ELSE 'routed' END"
    )
    await conn.executemany(
        "INSERT INTO document (document_id, payload_type, sender, recipients, number, notation, "
        "doc_type, promulgation_date, submitted_at, secrecy, routing_outcome) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        paper(),
    )
    await conn.execute("ANALYZE")


@pytest.fixture(scope="module")
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with fresh_database(database_url, seed=seed) as url:
        c = await asyncpg.connect(url)
        try:
            yield c
        finally:
            await c.close()


MONTHS = Period(FIRST, LAST, "range").months()
PERIODS = [
    *MONTHS,
    Period.parse("2026-Q3"),
    Period.parse("2026-Q4"),
    Period.parse("2026"),
    Period(FIRST, LAST, "range"),
    Period.parse("2026-05"),  # before every row
]
NOWS = [
    datetime(2027, 6, 1, tzinfo=UTC),  # every period is over
    datetime(2026, 11, 15, 5, 0, tzinfo=UTC),  # November is running
    midnight(date(2026, 10, 1)),  # the very first instant of October
]


async def test_the_rows_hold_the_edge_cases(conn: asyncpg.Connection) -> None:
    """Without these the comparisons below could pass on rows that test nothing."""
    oct_start = midnight(date(2026, 10, 1))
    checks = {
        # a copy first delivered before October and delivered again within it
        "redelivered across a month": """
            SELECT count(*) FROM (SELECT document_id, recipient FROM delivery
                GROUP BY 1, 2 HAVING min(delivered_at) < $1
                   AND bool_or(delivered_at >= $1 AND delivered_at < $1 + interval '31 days')) x""",
        "status before its delivery": """
            SELECT count(*) FROM status_event s JOIN delivery d
                ON d.document_id = s.document_id AND d.recipient = s.from_agency
            WHERE s.code IN ('01', '06') AND s.at < d.delivered_at
              AND $1::timestamptz IS NOT NULL""",
        "delivery on a month's first instant": """
            SELECT count(*) FROM delivery WHERE delivered_at = $1""",
        "06 on a month's end": "SELECT count(*) FROM status_event WHERE code = '06' AND at = $1",
    }
    found = {name: await conn.fetchval(sql, oct_start) for name, sql in checks.items()}
    found["06 on any month's end"] = await conn.fetchval(
        "SELECT count(*) FROM status_event WHERE code = '06' AND at = ANY($1::timestamptz[])",
        [midnight(d) for d in month_starts()],
    )
    assert all(n > 0 for n in found.values()), found


@pytest.mark.parametrize("now", NOWS, ids=["after", "november", "october-midnight"])
async def test_each_period_alone_equals_the_old_queries(
    conn: asyncpg.Connection, now: datetime
) -> None:
    for period in PERIODS:
        old = await old_timeliness(conn, period, TREE, now)
        new = await timeliness(conn, period, TREE, now)
        assert new == old, period


@pytest.mark.parametrize("now", NOWS, ids=["after", "november", "october-midnight"])
async def test_periods_together_equal_each_alone(conn: asyncpg.Connection, now: datetime) -> None:
    # A view's period and its previous one; a trend's whole range and its months; periods with
    # a gap between them; the same period twice; and none at all.
    batches = [
        [Period.parse("2026-10"), Period.parse("2026-09")],
        [Period(MONTHS[0].start, MONTHS[-1].end, "range"), *MONTHS],
        [Period.parse("2026-06"), Period.parse("2027-01"), Period.parse("2026-Q4")],
        [Period.parse("2026-11"), Period.parse("2026-11")],
    ]
    for batch in batches:
        together = await timeliness_by_period(conn, batch, TREE, now)
        assert together == [await old_timeliness(conn, p, TREE, now) for p in batch], batch
    assert await timeliness_by_period(conn, [], TREE, now) == []


async def test_the_figures_are_not_empty(conn: asyncpg.Connection) -> None:
    """The compared figures carry every kind of value, not only zeros and None."""
    now = NOWS[0]
    all_of = [t["*"] for t in await timeliness_by_period(conn, MONTHS, TREE, now) if "*" in t]
    assert len(all_of) == len(MONTHS)
    assert sum(t.delivered for t in all_of) > 300
    assert all(sum(getattr(t, f) for t in all_of) > 0 for f in ("early_01", "early_06", "overdue"))
    assert all(t.median_01_h is not None and t.p90_06_h is not None for t in all_of)
    # a recipient outside the directory counts for the platform only
    whole = await timeliness(conn, Period(FIRST, LAST, "range"), TREE, now)
    roots = sum(whole[r].delivered for r in TREE.roots() if r in whole)
    assert whole["*"].delivered > roots


async def test_a_period_of_part_months_is_refused(conn: asyncpg.Connection) -> None:
    """The queries place a copy by its month: a period cut inside a month would be miscounted,
    so it is refused rather than rounded."""
    for odd in (Period(date(2026, 10, 15), date(2026, 12, 1), "range"),
                Period(date(2026, 10, 1), date(2026, 11, 20), "range")):  # fmt: skip
        with pytest.raises(ValueError, match="whole months"):
            await timeliness_by_period(conn, [Period.parse("2026-09"), odd], TREE, NOWS[0])


async def test_percentiles_are_taken_only_for_the_ancestors_asked(
    conn: asyncpg.Connection,
) -> None:
    """A ranking needs counts, not percentiles: asking for fewer leaves every count as it was
    and every other percentile empty, and the ones asked for unchanged."""
    now, batch = NOWS[0], [Period(FIRST, LAST, "range"), *MONTHS]
    every = await timeliness_by_period(conn, batch, TREE, now)
    asked = {"*", TREE.roots()[0]}
    some = await timeliness_by_period(conn, batch, TREE, now, asked)
    pct = ("median_01_h", "p90_01_h", "median_06_h", "p90_06_h")
    assert [set(t) for t in some] == [set(t) for t in every]
    for full, part in zip(every, some, strict=True):
        for code, t in part.items():
            if code in asked:
                assert t == full[code], code
            else:
                assert all(getattr(t, f) is None for f in pct), code
                assert dataclasses.replace(t, **dict.fromkeys(pct)) == dataclasses.replace(
                    full[code], **dict.fromkeys(pct)
                ), code
    assert any(t["*"].median_01_h is not None for t in some if "*" in t)


async def seed_out_of_order(conn: asyncpg.Connection) -> None:
    """The same rows as `seed`, archived the other way round, as the archive may meet its
    topics: every status first, then the deliveries (latest first, a COPY per batch of 50),
    the documents last; then a second batch of notices after all."""
    docs, deliveries, statuses = generate()
    n = len(deliveries) + len(statuses)
    await conn.execute(
        'INSERT INTO archive_record (seq, topic, partition, "offset", kind, raw_sha256, '
        "leaf_data, leaf_hash, archived_at) SELECT g, 't', 0, g, 'delivery', "
        "sha256(g::text::bytea), g::text::bytea, sha256(g::text::bytea), now() "
        "FROM generate_series(0, $1) g",
        n,
    )
    half = len(statuses) // 2
    rows = [(k, d, f, "000.00.00.H26", c, t) for k, (d, f, c, t) in enumerate(statuses)]
    await conn.copy_records_to_table(
        "status_event",
        records=rows[:half],
        columns=("seq", "document_id", "from_agency", "to_agency", "code", "at"),
    )
    latest_first = sorted(enumerate(deliveries), key=lambda kd: kd[1][2], reverse=True)
    for i in range(0, len(latest_first), 50):
        await conn.copy_records_to_table(
            "delivery",
            records=[(d, r, len(statuses) + k, t) for k, (d, r, t) in latest_first[i : i + 50]],
            columns=("document_id", "recipient", "seq", "delivered_at"),
        )
    await conn.copy_records_to_table(
        "document",
        records=docs,
        columns=(
            "document_id", "payload_type", "sender", "recipients", "due_date", "submitted_at",
            "secrecy",
        ),
    )  # fmt: skip
    await conn.copy_records_to_table(
        "status_event",
        records=rows[half:],
        columns=("seq", "document_id", "from_agency", "to_agency", "code", "at"),
    )


async def test_kpi_copy_is_what_the_rows_give_in_whatever_order_they_come(
    conn: asyncpg.Connection, database_url: str
) -> None:
    """kpi_copy, kept by triggers, equals kpi_copy_derived (its definition over the rows it
    summarises) whichever of a copy's document, deliveries and notices is archived first, and
    the figures read from it equal the old queries' on those rows."""
    differ = """SELECT count(*) FROM (
        (SELECT * FROM kpi_copy EXCEPT ALL SELECT * FROM kpi_copy_derived)
        UNION ALL (SELECT * FROM kpi_copy_derived EXCEPT ALL SELECT * FROM kpi_copy)) x"""
    in_order = await conn.fetchval("SELECT count(*) FROM kpi_copy")
    assert in_order > 300 and await conn.fetchval(differ) == 0
    async with fresh_database(database_url, seed=seed_out_of_order) as url:
        other = await asyncpg.connect(url)
        try:
            assert await other.fetchval("SELECT count(*) FROM kpi_copy") == in_order
            assert await other.fetchval(differ) == 0
            assert (
                await other.fetchval(
                    "SELECT count(*) FROM kpi_copy WHERE at01 IS NOT NULL AND at06 IS NOT NULL"
                )
                > 100
            )
            for period in (Period.parse("2026-10"), Period(FIRST, LAST, "range")):
                assert await timeliness(other, period, TREE, NOWS[1]) == await old_timeliness(
                    other, period, TREE, NOWS[1]
                ), period
        finally:
            await other.close()


SPANS = [(p.start, p.end) for p in MONTHS] + [(FIRST, LAST), (date(2026, 5, 1), date(2026, 6, 1))]


async def stale_months(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(DISTINCT month) FROM kpi_month_stale"))


async def test_monthly_counts_equal_the_old_query_before_and_after_a_refresh(
    conn: asyncpg.Connection,
) -> None:
    """Stale months are read from lt_kpi_month, fresh ones from kpi_month: both give what
    the old query gave, paper de-duplicated, refused and secret left out."""
    old = {span: await old_monthly_counts(conn, *span) for span in SPANS}
    assert sum(c.docs_sent_p + c.docs_recv_p for c in old[(FIRST, LAST)].values()) > 50
    assert sum(c.docs_sent_e + c.notices_sent_e for c in old[(FIRST, LAST)].values()) > 50
    if await stale_months(conn) == 0:  # another test refreshed first: make them stale again
        await conn.execute(
            "INSERT INTO kpi_month_stale (month) SELECT DISTINCT month FROM kpi_month"
        )
    assert await stale_months(conn) >= len(MONTHS)
    for span in SPANS:
        assert await monthly_counts(conn, *span) == old[span], span
    assert await refresh(conn) >= len(MONTHS)
    assert await stale_months(conn) == 0
    for span in SPANS:
        assert await monthly_counts(conn, *span) == old[span], span


async def test_fresh_months_equal_their_definition_and_give_the_same_timeliness(
    conn: asyncpg.Connection,
) -> None:
    """What a refresh stores is lt_kpi_month's rows exactly (as `audit check` compares), and
    every timeliness figure read from it equals the old queries."""
    await refresh(conn)
    differ = await conn.fetchval(
        """SELECT count(*) FROM (SELECT DISTINCT month FROM kpi_month) m,
           LATERAL ((SELECT * FROM kpi_month WHERE month = m.month
                     EXCEPT ALL SELECT * FROM lt_kpi_month(m.month))
                    UNION ALL (SELECT * FROM lt_kpi_month(m.month)
                               EXCEPT ALL SELECT * FROM kpi_month WHERE month = m.month)) x"""
    )
    assert differ == 0
    assert await conn.fetchval("SELECT count(*) FROM kpi_month WHERE overdue > 0") > 5
    for now in NOWS:
        for period in PERIODS:
            assert await timeliness(conn, period, TREE, now) == await old_timeliness(
                conn, period, TREE, now
            ), (period, now)
