"""KPI SQL and commands on hand-counted archive rows in a database of this module's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from consumers.kpi.indicators import Counts, Period, Tree
from consumers.kpi.sql import monthly_counts, timeliness
from infra.cli.main import build_app
from schemas.agency import AgencyDirectory
from tests.support import fresh_database

app = build_app()

H26, BA_DINH, DONG_DA, VPCP = "000.00.00.H26", "000.00.31.H26", "000.00.33.H26", "000.00.00.G22"
OCT = Period.parse("2026-10")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def at(day: int, hour: float, month: int = 10) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


# (id, payload type, sender, recipients, number, notation, doc type, document date, due date,
#  secrecy, submitted at, outcome)
DOCUMENTS = [
    ("e1", "OFFICIAL_DOCUMENT", H26, [BA_DINH, DONG_DA], "1", "UBND-VP", "", date(2026, 10, 3),
     date(2026, 10, 20), "NONE", at(3, 2), "routed"),
    ("e2", "OFFICIAL_DOCUMENT", H26, [BA_DINH], "2", "UBND-VP", "TB", date(2026, 10, 10),
     None, "NONE", at(10, 2), "routed"),
    ("e3", "OFFICIAL_DOCUMENT", BA_DINH, [H26], "7", "UBND", "", date(2026, 10, 12),
     date(2026, 11, 5), "NONE", at(12, 3), "routed"),
    ("e4", "OFFICIAL_DOCUMENT", DONG_DA, [H26], "9", "UBND", "", date(2026, 10, 13),
     None, "NONE", at(13, 3), "rejected"),
    # 17:30 UTC on 31 October is 00:30 on 1 November in Hà Nội: a November document.
    ("e5", "OFFICIAL_DOCUMENT", BA_DINH, [H26], "8", "UBND", "", date(2026, 11, 1),
     None, "NONE", at(31, 17.5), "routed"),
    ("e0", "OFFICIAL_DOCUMENT", H26, [BA_DINH], "99", "UBND-VP", "", date(2026, 9, 9),
     None, "NONE", at(9, 2, month=9), "routed"),
    ("r1", "PERIODIC_REPORT", DONG_DA, [H26], None, None, None, date(2026, 9, 30),
     None, "NONE", at(14, 2), "routed"),
    # One paper document registered twice: outgoing by Hà Nội, incoming by Đống Đa.
    ("p1-out", "PAPER_EXCHANGE_RECORD", H26, [DONG_DA], "12", "UBND-VP", "QĐ", date(2026, 10, 5),
     None, "NONE", at(5, 3), "routed"),
    ("p1-in", "PAPER_EXCHANGE_RECORD", H26, [DONG_DA], "12", "UBND-VP", "QĐ", date(2026, 10, 5),
     None, "NONE", at(7, 3), "routed"),
    # Registrations stay 'pending' in the archive; one the router refused does not count.
    ("p2-in", "PAPER_EXCHANGE_RECORD", VPCP, [BA_DINH], "40", "VPCP-TH", "", date(2026, 10, 20),
     None, "NONE", at(21, 3), "pending"),
    ("p5-bad", "PAPER_EXCHANGE_RECORD", VPCP, [BA_DINH], "41", "VPCP-TH", "", date(2026, 10, 20),
     None, "NONE", at(21, 4), "rejected"),
    ("p3-bc", "PAPER_EXCHANGE_RECORD", BA_DINH, [H26], "5", "BC-UBND", "BC", date(2026, 10, 25),
     None, "NONE", at(25, 3), "routed"),
    ("p4-secret", "PAPER_EXCHANGE_RECORD", H26, [BA_DINH], "3", "UBND-VP", "CV",
     date(2026, 10, 6), None, "MAT", at(6, 3), "routed"),
]  # fmt: skip

DELIVERIES = [("e0", BA_DINH, at(9, 2, 9)), ("e1", BA_DINH, at(3, 2)), ("e1", DONG_DA, at(3, 2))]
DELIVERIES += [("e2", BA_DINH, at(10, 2)), ("e3", H26, at(12, 3))]
STATUSES = [
    ("e1", BA_DINH, "01", at(3, 3)),  # 1 h, same day
    ("e1", BA_DINH, "06", at(5, 2)),  # 48 h
    ("e1", DONG_DA, "01", at(3, 18)),  # 16 h: 01:00 the next day in Hà Nội
    ("e2", BA_DINH, "01", at(10, 4)),  # 2 h
    ("e2", BA_DINH, "06", at(11, 2)),  # 24 h
    ("e3", H26, "01", at(12, 3.5)),  # 0.5 h
    # Dated 2 h before its delivery (a wrong clock): flagged, never a negative duration.
    ("e3", H26, "06", at(12, 1)),
]
REJECTIONS = [
    (BA_DINH, "SIGNATURE_INVALID", False),
    (BA_DINH, "SIGNATURE_INVALID", False),
    (DONG_DA, "UNKNOWN_RECIPIENT", False),
    (None, "UNPARSEABLE", False),
    (H26, "SECRET_DOCUMENT", True),
]


@pytest.fixture(scope="module")
async def kpi_db(database_url: str) -> AsyncIterator[str]:
    """A new migrated database on the session server: these rows meet no other test's rows."""
    async with fresh_database(database_url, seed=seed) as url:
        yield url


async def seed(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO document (document_id, payload_type, sender, recipients, number, notation, "
        "doc_type, promulgation_date, due_date, secrecy, submitted_at, routing_outcome) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        DOCUMENTS,
    )
    await conn.execute(
        'INSERT INTO archive_record (seq, topic, partition, "offset", kind, raw_sha256, '
        "leaf_data, leaf_hash, archived_at) SELECT g, 't', 0, g, "
        # seq 20..39 carry the agencies' own status notices; the rest, platform notices.
        "CASE WHEN g BETWEEN 20 AND 39 THEN 'delivery' ELSE 'notice' END, "
        "sha256(g::text::bytea), g::text::bytea, sha256(g::text::bytea), now() "
        "FROM generate_series(0, 99) g"
    )
    await conn.executemany(
        "INSERT INTO delivery (document_id, recipient, seq, delivered_at) VALUES ($1, $2, $3, $4)",
        [(d, r, n, t) for n, (d, r, t) in enumerate(DELIVERIES)],
    )
    await conn.executemany(
        "INSERT INTO status_event (seq, document_id, from_agency, to_agency, code, at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [(20 + n, d, f, H26, c, t) for n, (d, f, c, t) in enumerate(STATUSES)],
    )
    await conn.executemany(
        "INSERT INTO rejection (seq, reason, sender, secret, at) VALUES ($1, $2, $3, $4, $5)",
        [(40 + n, r, s, x, at(15, n)) for n, (s, r, x) in enumerate(REJECTIONS)],
    )


TREE = Tree(AgencyDirectory.default())


async def test_monthly_counts_dedupe_paper_and_exclude_secret_and_refused(kpi_db: str) -> None:
    conn = await asyncpg.connect(kpi_db)
    try:
        rows = await monthly_counts(conn, OCT.start, OCT.end)
        nov = await monthly_counts(conn, date(2026, 11, 1), date(2026, 12, 1))
    finally:
        await conn.close()
    # Connectedness counts: deliveries e1, e2 (Ba Đình; e0 is September), e1 (Đống Đa), e3 (H26);
    # notices: Ba Đình's four, Đống Đa's 01 (01:00 on 4 October in Hà Nội), H26's 01.
    assert rows == {
        (H26, "2026-10"): Counts(
            # H26 answered e3 with 01 and (wrongly dated) 06: two notices sent.
            docs_sent_e=2,
            docs_sent_p=1,
            docs_recv_e=1,
            notices_sent_e=2,
            deliveries_recv_e=1,
        ),
        (BA_DINH, "2026-10"): Counts(
            docs_sent_e=1,
            docs_recv_e=2,
            docs_recv_p=1,
            reports_sent_p=1,
            notices_sent_e=4,
            deliveries_recv_e=2,
        ),
        (DONG_DA, "2026-10"): Counts(
            docs_recv_e=1, docs_recv_p=1, reports_sent_e=1, notices_sent_e=1, deliveries_recv_e=1
        ),
        (VPCP, "2026-10"): Counts(docs_sent_p=1),
    }
    assert nov == {
        (BA_DINH, "2026-11"): Counts(docs_sent_e=1),
        (H26, "2026-11"): Counts(docs_recv_e=1),
    }


async def test_timeliness_rolls_up_percentiles(kpi_db: str) -> None:
    conn = await asyncpg.connect(kpi_db)
    try:
        t = await timeliness(conn, OCT, TREE, NOW)
    finally:
        await conn.close()
    city = t[H26]
    assert (city.delivered, city.arrived_same_day, city.overdue) == (4, 3, 1)
    assert (city.early_01, city.early_06) == (0, 1)  # e3's 06, dated before its delivery
    # 01 after [0.5, 1, 2, 16] h; 06 after [24, 48] h, not -2 (percentile_cont interpolates).
    assert (city.median_01_h, city.p90_01_h) == pytest.approx((1.5, 11.8))
    assert (city.median_06_h, city.p90_06_h) == pytest.approx((36.0, 45.6))
    assert (t[DONG_DA].delivered, t[DONG_DA].arrived_same_day, t[DONG_DA].overdue) == (1, 0, 1)
    assert t[DONG_DA].median_06_h is None
    assert t["*"] == city


@pytest.fixture(scope="module")
def cli() -> Iterator[CliRunner]:
    yield CliRunner()


def kpi_json(cli: CliRunner, url: str, *args: str) -> Any:
    result = cli.invoke(
        app, ["kpi", *args, "--format", "json"], env={"LIENTHONG_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def figures(answer: Any, agency: str) -> dict[str, dict[str, Any]]:
    a = next(a for a in answer["agencies"] if a["agency"] == agency)
    return {i["code"]: i for i in a["indicators"]}


def test_kpi_json_states_numerator_denominator_target_gap_trend(
    cli: CliRunner, kpi_db: str
) -> None:
    answer = kpi_json(cli, kpi_db, "--period", "2026-10", "--agency", H26)
    assert answer["period"] == "2026-10" and answer["previous_period"] == "2026-09"
    city = figures(answer, H26)
    sent = city["docs_sent"]
    assert (sent["numerator"], sent["denominator"], sent["value"]) == (3, 4, 75.0)
    assert (sent["target"], sent["gap"], sent["status"]) == (90.0, 15.0, "below target")
    assert (sent["previous"], sent["trend"]) == (100.0, "↓")
    assert (city["docs_received"]["numerator"], city["docs_received"]["denominator"]) == (4, 6)
    assert (city["reports_sent"]["value"], city["reports_sent"]["target"]) == (50.0, 100.0)
    assert city["connected"]["numerator"] == 3
    assert city["arrived_same_day"]["value"] == 75.0
    assert city["overdue"]["value"] == 1
    flagged = city["status_before_delivery"]
    assert (flagged["value"], flagged["status"], flagged["target"]) == (1.0, "info", None)
    assert sent["target_source"].startswith("Kế hoạch 190/KH-UBND ngày 27/8/2019")
    assert "2025" in city["reports_sent"]["target_source"]  # 100%: the national 2025 target
    dong_da = figures(answer, DONG_DA)
    assert dong_da["docs_sent"]["status"] == "no data" and dong_da["docs_sent"]["value"] is None
    assert dong_da["docs_received"]["value"] == 50.0
    assert next(a for a in answer["agencies"] if a["agency"] == H26)["rejections"] == {
        "SIGNATURE_INVALID": 2,
        "SECRET_DOCUMENT": 1,
        "UNKNOWN_RECIPIENT": 1,
    }


def test_kpi_table_and_csv(cli: CliRunner, kpi_db: str) -> None:
    env = {"LIENTHONG_DATABASE_URL": kpi_db, "COLUMNS": "160"}
    table = cli.invoke(app, ["kpi", "--period", "2026-10", "--agency", BA_DINH], env=env)
    assert table.exit_code == 0, table.output
    assert "Ủy ban nhân dân quận Ba Đình" in table.stdout and "75.0%" not in table.stdout
    assert "chưa có số liệu" in table.stdout and "100.0%" in table.stdout
    assert "no data" not in table.stdout  # people read Vietnamese
    csv_out = cli.invoke(app, ["kpi", "--period", "2026-10", "--format", "csv"], env=env)
    assert csv_out.exit_code == 0, csv_out.output
    # A UTF-8 BOM first, so that Excel opens the Vietnamese names as UTF-8.
    assert csv_out.stdout.startswith("\ufeffperiod,agency,name,indicator,value")
    lines = csv_out.stdout.removeprefix("\ufeff").splitlines()
    assert "Kế hoạch 190/KH-UBND" in csv_out.stdout  # each target names its source
    assert any(
        line.startswith(f"2026-10,{H26},") and ",docs_sent,75.0,3,4," in line for line in lines
    )
    bad = cli.invoke(app, ["kpi", "--period", "2026-13"], env=env)
    assert bad.exit_code == 2 and "period" in bad.output


class DataAttrs(HTMLParser):
    """Every element with data-* attributes, in document order, and the ids present."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag in {"script", "link", "img"} or ("src" in a) or a.get("href", "").startswith("http"):
            self.external.append(tag)
        if any(k.startswith("data-") for k in a):
            self.items.append((tag, a))


def write_report(cli: CliRunner, url: str, path: Path) -> None:
    result = cli.invoke(
        app,
        ["kpi", "report", "--from", "2026-09", "--to", "2026-11", "--out", str(path)],
        env={"LIENTHONG_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output


def check_report_dom(html: str, answer_by_month: dict[str, Any]) -> None:
    """The charts are there, self-contained, and every point equals the JSON figure."""
    p = DataAttrs()
    p.feed(html)
    series = ("docs_sent", "docs_received", "reports_sent")
    assert {"chart-share", "chart-ranking", "chart-rejections"} <= p.ids
    # One target line per series, month by month the target the JSON states.
    lines = {a["data-series"]: a for _, a in p.items if "target" in a.get("class", "").split()}
    assert set(lines) == set(series)
    for code in series:
        want = [figures(answer_by_month[m], "*")[code]["target"] for m in answer_by_month]
        assert [float(v) for v in lines[code]["data-targets"].split(",")] == want
    assert p.external == []
    points = [a for tag, a in p.items if tag == "circle" and a.get("data-series")]
    gaps = [a for _, a in p.items if "no-data" in a.get("class", "")]
    for month, answer in answer_by_month.items():
        city = figures(answer, "*")
        for code in ("docs_sent", "docs_received", "reports_sent"):
            want = city[code]
            drawn = [a for a in points if a["data-month"] == month and a["data-series"] == code]
            if want["value"] is None:
                assert drawn == [] and any(
                    g["data-month"] == month and g["data-series"] == code for g in gaps
                )
                continue
            assert len(drawn) == 1, (month, code)
            assert float(drawn[0]["data-value"]) == pytest.approx(want["value"])
            assert int(drawn[0]["data-numerator"]) == want["numerator"]
            assert int(drawn[0]["data-denominator"]) == want["denominator"]
    reasons = {a["data-reason"]: int(a["data-count"]) for _, a in p.items if "data-reason" in a}
    assert reasons == {
        "SIGNATURE_INVALID": 2,
        "SECRET_DOCUMENT": 1,
        "UNKNOWN_RECIPIENT": 1,
        "UNPARSEABLE": 1,
    }
    # Units ranked by how many targets they miss, then by how far.
    ranks = [a for _, a in p.items if "data-rank" in a]
    order = [(int(a["data-missed"]), float(a["data-gap-total"])) for a in ranks]
    assert ranks and order == sorted(order, reverse=True)
    assert any(int(a["data-missed"]) > 0 for a in ranks)


def report_and_json(cli: CliRunner, url: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    # Plain helpers, not fixtures: the commands call asyncio.run, which a fixture set up
    # beside the module's async fixture may not.
    path = tmp_path / "report.html"
    write_report(cli, url, path)
    months = ("2026-09", "2026-10", "2026-11")
    return path, {m: kpi_json(cli, url, "--period", m) for m in months}


def test_report_figures_equal_the_json(cli: CliRunner, kpi_db: str, tmp_path: Path) -> None:
    report, by_month = report_and_json(cli, kpi_db, tmp_path)
    html = report.read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in html
    assert "Tỷ lệ trao đổi văn bản điện tử" in html
    check_report_dom(html, by_month)


@pytest.fixture
async def own_kpi_db(database_url: str) -> AsyncIterator[str]:
    """The same rows in a database of this test's own: it adds one."""
    async with fresh_database(database_url, seed=seed) as url:
        yield url


def test_kpi_refresh_makes_every_month_fresh_and_the_figures_stay(
    cli: CliRunner, own_kpi_db: str
) -> None:
    """`lienthong kpi refresh` writes the stale months into kpi_month; the JSON is the same
    before (counted from lt_kpi_month on the fly) and after (read from kpi_month), and a row
    archived afterwards makes its month stale again, its figure counted at once."""
    kpi_db = own_kpi_db
    env = {"LIENTHONG_DATABASE_URL": kpi_db}
    before = kpi_json(cli, kpi_db, "--period", "2026-10", "--all")
    done = cli.invoke(app, ["kpi", "refresh"], env=env)
    assert done.exit_code == 0, done.output
    refreshed = int(done.stdout.split()[0])
    assert refreshed >= 2 and "0 still stale" in done.stdout, done.stdout
    assert kpi_json(cli, kpi_db, "--period", "2026-10", "--all") == before
    again = cli.invoke(app, ["kpi", "refresh"], env=env)
    assert again.stdout.startswith("0 months refreshed"), again.stdout

    async def late_paper() -> None:
        conn = await asyncpg.connect(kpi_db)
        try:
            await conn.execute(
                "INSERT INTO document (document_id, payload_type, sender, recipients, number, "
                "notation, promulgation_date, submitted_at) VALUES ('late', "
                "'PAPER_EXCHANGE_RECORD', $1, $2, '999', 'CV-UBND', '2026-10-20', now())",
                H26,
                [BA_DINH],
            )
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM kpi_month_stale WHERE month = '2026-10-01'"
                )
                == 1
            )
        finally:
            await conn.close()

    asyncio.run(late_paper())
    after = figures(kpi_json(cli, kpi_db, "--period", "2026-10", "--all"), H26)["docs_sent"]
    assert after["denominator"] == figures(before, H26)["docs_sent"]["denominator"] + 1
