"""`lienthong audit search|show` on a database of its own: diacritics, filters, ranking, pages,
index use, the access log, and the auditor role's refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from consumers.audit.search import Cursor, SearchFilters, build_search, search_documents
from infra.cli.main import build_app
from infra.compose.audit import auditor_url
from tests.support import fresh_database

app = build_app()

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
HAI_BA_TRUNG = "000.00.32.H26"
DONG_DA = "000.00.33.H26"
NOI_VU = "000.00.02.H26"
T0 = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội

DOCUMENT_SQL = """
INSERT INTO document (document_id, payload_type, sender, recipients, number, notation, doc_type,
                      subject, promulgation_date, submitted_at, routing_outcome, routing_reason)
VALUES ($1, 'official_document', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""


def document_id(sender: str, at: datetime, number: int, notation: str) -> str:
    return f"{sender},{at:%Y/%m/%d},{number}/{notation}"


# (sender, recipients, number, notation, type, subject, submitted_at, outcome)
DOCUMENTS: list[tuple[str, list[str], int, str, str, str, datetime, str]] = [
    (H26, [BA_DINH, DONG_DA], 190, "KH-UBND", "KH",
     "Kế hoạch ứng dụng công nghệ thông tin, cải cách thủ tục hành chính năm 2019",
     T0, "routed"),
    (H26, [BA_DINH], 191, "KH-UBND", "KH",
     "Thủ tục hành chính: rà soát thủ tục hành chính, giải quyết khiếu nại kéo dài",
     T0 + timedelta(days=1), "routed"),
    (H26, [HAI_BA_TRUNG], 4612, "QĐ-UBND", "QĐ",
     "Quyết định hỗ trợ sửa chữa nhà ở cho cựu thanh niên xung phong",
     T0 + timedelta(days=2), "routed"),
    (NOI_VU, [H26], 12, "BC-SNV", "BC", "Báo cáo tình hình kinh tế xã hội quý I",
     T0 + timedelta(days=3), "rejected"),
    (NOI_VU, [DONG_DA], 13, "ĐA-SNV", "ĐA", "Đề án đào tạo cán bộ, công chức cấp xã",
     T0 + timedelta(days=4), "pending"),
]  # fmt: skip
PAGED = 25  # documents of Hai Bà Trưng, one a day, for pagination


@pytest.fixture(scope="module")
async def audit_db(database_url: str) -> AsyncIterator[str]:
    async with fresh_database(database_url, seed=seed) as url:
        yield url


async def seed(conn: asyncpg.Connection) -> None:
    rows: list[tuple[Any, ...]] = []
    for sender, to, number, notation, kind, subject, at, outcome in DOCUMENTS:
        reason = "SIGNATURE_INVALID" if outcome == "rejected" else None
        rows.append(
            (document_id(sender, at, number, notation), sender, to, str(number), notation, kind,
             subject, at.date(), at, outcome, reason)
        )  # fmt: skip
    for i in range(PAGED):
        at = T0 + timedelta(days=10 + i)
        rows.append(
            (document_id(HAI_BA_TRUNG, at, i + 1, "TB-UBND"), HAI_BA_TRUNG, [H26], str(i + 1),
             "TB-UBND", "TB", f"Thông báo lịch tiếp công dân tuần {i + 1}", at.date(), at,
             "routed", None)
        )  # fmt: skip
    await conn.executemany(DOCUMENT_SQL, rows)
    first = document_id(H26, T0, 190, "KH-UBND")
    await conn.execute(
        'INSERT INTO archive_record (seq, topic, partition, "offset", kind, document_id, '
        "raw_sha256, leaf_data, leaf_hash, archived_at) "
        "SELECT g, 'lienthong.submissions', 0, g, 'notice', $1, "
        "sha256(g::text::bytea), g::text::bytea, sha256(g::text::bytea), $2 "
        "FROM generate_series(0, 3) g",
        first,
        T0,
    )
    await conn.executemany(
        "INSERT INTO status_event (seq, document_id, from_agency, to_agency, code, description, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (2, first, DONG_DA, H26, "03", "Đã vào sổ", T0 + timedelta(hours=2)),
            (0, first, BA_DINH, H26, "01", "Đã nhận", T0 + timedelta(minutes=1)),
            (1, first, DONG_DA, H26, "01", "Đã nhận", T0 + timedelta(minutes=2)),
            (3, first, BA_DINH, H26, "03", "Đã vào sổ", T0 + timedelta(hours=1)),
        ],
    )
    await conn.executemany(
        "INSERT INTO delivery (document_id, recipient, seq, delivered_at) VALUES ($1, $2, $3, $4)",
        [(first, BA_DINH, 0, T0), (first, DONG_DA, 1, T0)],
    )


@pytest.fixture(scope="module")
def auditor_env(audit_db: str) -> dict[str, str]:
    return {"LIENTHONG_AUDIT_DATABASE_URL": auditor_url(audit_db), "USER": "thanh.tra"}


@pytest.fixture
async def auditor(audit_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(auditor_url(audit_db))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def cli() -> Iterator[CliRunner]:
    yield CliRunner()


def run(cli: CliRunner, env: dict[str, str], *args: str) -> Any:
    result = cli.invoke(app, ["audit", *args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ids(answer: Any) -> list[str]:
    return [d["document_id"] for d in answer["documents"]]


# --- search -----------------------------------------------------------------------------------


def test_text_without_diacritics_finds_vietnamese_subjects_ranked(
    cli: CliRunner, auditor_env: dict[str, str]
) -> None:
    answer = run(cli, auditor_env, "search", "--text", "thu tuc hanh chinh")
    # Both plans name the phrase; 191 names it twice, so it ranks first.
    assert ids(answer) == [
        document_id(H26, T0 + timedelta(days=1), 191, "KH-UBND"),
        document_id(H26, T0, 190, "KH-UBND"),
    ]
    ranks = [d["rank"] for d in answer["documents"]]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[1]


@pytest.mark.parametrize(
    "query", ["de an dao tao", "ĐỀ ÁN đào tạo", "DE AN DAO TAO", "Đề án đào tạo cán bộ"]
)
def test_text_is_insensitive_to_case_diacritics_and_d_bar(
    cli: CliRunner, auditor_env: dict[str, str], query: str
) -> None:
    answer = run(cli, auditor_env, "search", "--text", query)
    assert ids(answer) == [document_id(NOI_VU, T0 + timedelta(days=4), 13, "ĐA-SNV")]


def test_some_of_the_words_come_last_and_say_so(
    cli: CliRunner, auditor_env: dict[str, str]
) -> None:
    # No document has all four words: with --all-words nothing is found (the search before
    # 0008 found nothing either); without, the documents with some of them, marked partial.
    words = ["search", "--text", "thu tuc xung phong"]
    assert ids(run(cli, auditor_env, *words, "--all-words")) == []
    answer = run(cli, auditor_env, *words)
    assert {d["match"] for d in answer["documents"]} == {"partial"}
    # Plan 191 names "thủ tục" twice: it ranks first; 4612 (xung phong) and 190 (thủ tục) tie.
    assert ids(answer) == [
        document_id(H26, T0 + timedelta(days=1), 191, "KH-UBND"),
        document_id(H26, T0 + timedelta(days=2), 4612, "QĐ-UBND"),
        document_id(H26, T0, 190, "KH-UBND"),
    ]
    # Every word before some of the words: the two plans with the phrase, then the rest.
    mixed = run(cli, auditor_env, "search", "--text", "thu tuc hanh chinh xung phong")
    assert [d["match"] for d in mixed["documents"]] == ["partial"] * 3
    # The plans hold four of the five words, Decision 4612 two: more words rank higher.
    assert ids(mixed)[-1] == document_id(H26, T0 + timedelta(days=2), 4612, "QĐ-UBND")
    full = run(cli, auditor_env, "search", "--text", "thu tuc hanh chinh", "--limit", "50")
    assert [d["match"] for d in full["documents"]] == ["heading", "heading"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sender", NOI_VU], [13, 12]),
        (["--recipient", BA_DINH], [191, 190]),
        (["--type", "QĐ"], [4612]),
        (["--number", "4612", "--notation", "QĐ-UBND"], [4612]),
        (["--outcome", "rejected"], [12]),
        (["--outcome", "pending"], [13]),
        (["--status", "03"], [190]),
        (["--from", "2024-03-02", "--to", "2024-03-03", "--sender", H26], [4612, 191]),
        (["--sender", H26, "--text", "ke hoach"], [190]),
    ],
)
def test_filters(
    cli: CliRunner, auditor_env: dict[str, str], args: list[str], expected: list[int]
) -> None:
    answer = run(cli, auditor_env, "search", *args)
    assert [int(d["number"]) for d in answer["documents"]] == expected


def test_date_bounds_are_whole_days_in_vietnam_time(
    cli: CliRunner, auditor_env: dict[str, str]
) -> None:
    # T0 is 09:00 on 1 March in Hà Nội: a 1 March search finds it, a 29 February one does not.
    on_day = run(cli, auditor_env, "search", "--from", "2024-03-01", "--to", "2024-03-01")
    assert [d["number"] for d in on_day["documents"]] == ["190"]
    before = run(cli, auditor_env, "search", "--to", "2024-02-29")
    assert before["documents"] == []


def test_keyset_and_page_pagination_agree(cli: CliRunner, auditor_env: dict[str, str]) -> None:
    seen: list[str] = []
    after: list[str] = []
    while True:
        answer = run(cli, auditor_env, "search", "--sender", HAI_BA_TRUNG, "--limit", "10", *after)
        seen += ids(answer)
        if answer["next"] is None:
            break
        after = ["--after", answer["next"]]
    assert len(seen) == PAGED == len(set(seen))
    numbers = [int(i.rsplit(",", 1)[1].split("/")[0]) for i in seen]
    assert numbers == list(range(PAGED, 0, -1))  # newest first
    paged = [
        i
        for p in (1, 2, 3)
        for i in ids(run(cli, auditor_env, "search", "--sender", HAI_BA_TRUNG, "--limit", "10",
                         "--page", str(p)))
    ]  # fmt: skip
    assert paged == seen


async def test_ranked_keyset_pages_follow_the_rank(auditor: asyncpg.Connection) -> None:
    filters = SearchFilters(text="thu tuc hanh chinh")
    first = await search_documents(auditor, filters, limit=1)
    assert first.next_cursor is not None
    second = await search_documents(
        auditor, filters, limit=1, after=Cursor.decode(first.next_cursor)
    )
    assert [h.number for h in (*first.hits, *second.hits)] == ["191", "190"]
    assert second.next_cursor is None


def test_table_output_and_bad_input(cli: CliRunner, auditor_env: dict[str, str]) -> None:
    table = cli.invoke(app, ["audit", "search", "--text", "thu tuc hanh chinh"], env=auditor_env)
    assert table.exit_code == 0, table.output
    assert "2 document(s); last page" in table.stdout
    bad = cli.invoke(app, ["audit", "search", "--outcome", "lost"], env=auditor_env)
    assert bad.exit_code == 2 and "--outcome" in bad.output


# --- index use ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        # Words only: the newest documents first, index-only (0004), then the GIN index.
        (SearchFilters(text="thu tuc hanh chinh"), "document_recent_search_idx"),
        # Words and a filter: the GIN index or the filter's own, whichever is narrower.
        (
            SearchFilters(text="ke hoach", sender=H26),
            ("document_search_idx", "document_sender_time_idx"),
        ),
        (SearchFilters(sender=H26, date_from=T0.date()), "document_sender_time_idx"),
        (SearchFilters(recipient=BA_DINH), "document_recipients_idx"),
        (SearchFilters(doc_type="QĐ"), "document_type_time_idx"),
        (SearchFilters(number="4612", notation="QĐ-UBND"), "document_code_idx"),
        (SearchFilters(outcome="rejected"), "document_outcome_time_idx"),
        (SearchFilters(status="03"), "status_event_code_idx"),
        # The same recency order; 0004's index serves it as well as 0002's.
        (SearchFilters(), ("document_time_idx", "document_recent_search_idx")),
    ],
)
async def test_each_filter_can_use_its_index(
    auditor: asyncpg.Connection, filters: SearchFilters, index: str | tuple[str, ...]
) -> None:
    # The module's few rows make a sequential scan cheapest; forbidding it shows the query's
    # predicates match an index (the 1M-row plans are in bench/audit_search.py's output).
    query = build_search(filters, limit=20)
    async with auditor.transaction():
        await auditor.execute("SET LOCAL enable_seqscan = off")
        plan = await auditor.fetchval("EXPLAIN (FORMAT JSON) " + query.text, *query.args)
    assert any(i in plan for i in ((index,) if isinstance(index, str) else index))
    assert "Seq Scan" not in plan


# --- show ---------------------------------------------------------------------------------------


def test_show_tells_the_documents_story(cli: CliRunner, auditor_env: dict[str, str]) -> None:
    story = run(cli, auditor_env, "show", document_id(H26, T0, 190, "KH-UBND"))
    assert story["document"]["subject"].startswith("Kế hoạch ứng dụng")
    assert story["document"]["routing_outcome"] == "routed"
    assert [d["recipient"] for d in story["deliveries"]] == [BA_DINH, DONG_DA]
    timeline = {a: [e["code"] for e in es] for a, es in story["status_by_agency"].items()}
    assert timeline == {BA_DINH: ["01", "03"], DONG_DA: ["01", "03"]}
    assert [r["seq"] for r in story["records"]] == [0, 1, 2, 3]
    table = cli.invoke(
        app, ["audit", "show", document_id(H26, T0, 190, "KH-UBND")], env=auditor_env
    )
    assert table.exit_code == 0 and "status timeline" in table.stdout


def test_show_unknown_document_is_one_line(cli: CliRunner, auditor_env: dict[str, str]) -> None:
    result = cli.invoke(app, ["audit", "show", "nope"], env=auditor_env)
    assert result.exit_code == 2 and "no document 'nope'" in result.output


# --- access log and the auditor role ----------------------------------------------------------


def test_every_command_is_logged_as_the_auditor(
    cli: CliRunner, auditor_env: dict[str, str], audit_db: str
) -> None:
    run(cli, auditor_env, "search", "--text", "đề án", "--who", "Trần Thị Kiểm")
    cli.invoke(app, ["audit", "show", "nope-404"], env=auditor_env)  # logged even when absent

    async def last_two() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(audit_db)
        try:
            return await conn.fetch("SELECT * FROM audit_access_log ORDER BY id DESC LIMIT 2")
        finally:
            await conn.close()

    # A sync test: the command runs its own event loop, as it does from a shell.
    rows = asyncio.run(last_two())
    show, search = rows
    assert (search["who"], search["command"], search["db_role"]) == (
        "Trần Thị Kiểm",
        "search",
        "lienthong_auditor",
    )
    assert json.loads(search["args"])["text"] == "đề án"
    assert (show["who"], show["command"]) == ("thanh.tra", "show")
    assert json.loads(show["args"]) == {"document_id": "nope-404"}
    assert abs(show["at"] - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO document (document_id, payload_type, sender, submitted_at) "
        "VALUES ('x', 'official_document', 'x', now())",
        "UPDATE document SET routing_outcome = 'routed'",
        "DELETE FROM document",
        "DELETE FROM archive_record",
        "UPDATE archive_record SET raw = NULL",
        "INSERT INTO merkle_node VALUES (0, 999, sha256('x'))",
        "INSERT INTO tree_head (size, root, signed) VALUES (1, sha256('x'), '{}')",
        "UPDATE status_event SET code = '06'",
        "INSERT INTO delivery VALUES ('x', 'y', 0, now())",
        "UPDATE audit_access_log SET who = 'someone else'",
        "DELETE FROM audit_access_log",
        "TRUNCATE audit_access_log",
        "CREATE TABLE mine (x int)",
    ],
)
async def test_auditor_role_cannot_write_the_archive_or_rewrite_the_log(
    auditor: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await auditor.execute(statement)


async def test_auditor_cannot_backdate_or_impersonate_in_the_log(
    auditor: asyncpg.Connection,
) -> None:
    row = await auditor.fetchrow(
        "INSERT INTO audit_access_log (who, command, at, db_role) "
        "VALUES ('x', 'search', '2000-01-01', 'postgres') RETURNING at, db_role"
    )
    assert row is not None
    assert row["db_role"] == "lienthong_auditor"
    assert row["at"] > datetime(2020, 1, 1, tzinfo=UTC)


async def test_even_the_owner_cannot_rewrite_the_log(audit_db: str) -> None:
    conn = await asyncpg.connect(audit_db)
    try:
        for statement in ("DELETE FROM audit_access_log", "TRUNCATE audit_access_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
