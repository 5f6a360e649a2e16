"""Full-text search over the seed scenario as the archiver writes it (0008, docs/search.md): the
seed's phrases find Plan 190 first, body and names are searched, a secret document's body never
is, bad words get one line, `archive reindex` fills rows archived before 0008, and `audit check`
sees an edited body."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from consumers.archive import check_archive, store
from consumers.archive.leaf import archive_time
from consumers.archive.parse import ArchiveTopics, ParseContext, SourceRecord, parse_record
from consumers.audit.search import Cursor, SearchFilters, search_documents
from infra.cli.main import build_app
from infra.compose.archive import archiver_url
from infra.compose.audit import auditor_url
from infra.demo.scenario import DOCUMENTS, H26, LABOUR, REPORT
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope, encode_payload
from schemas.common import SecrecyMarking
from schemas.document import document_from_record
from schemas.envelope import Envelope, SignerRole
from schemas.report import report_from_record
from schemas.samples import example_record
from signing.envelope import sign_envelope
from signing.merkle import RightEdge, append_leaves
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from tests.support import fresh_database

app = build_app()
NOW = datetime.now(UTC).replace(microsecond=0)
TOPICS = ArchiveTopics("lienthong.submissions", "lienthong.deadletter", "lienthong.inbox.")
PLAN_190, DECISION_4612, PLAN_191 = (document_from_record(example_record(p)) for p in DOCUMENTS)
TEXT_TRIGGER = "document_search_columns_update"  # 0008: recomputes the words on UPDATE
# Words of a secret document's body that no other document holds.
SECRET_WORDS = "phuong an bao ve muc tieu zzq trong yeu"
SECRET = dataclasses.replace(
    DECISION_4612,
    document_id=DECISION_4612.document_id.replace("4612/", "4614/"),
    code=dataclasses.replace(DECISION_4612.code, number="4614"),
    secrecy=SecrecyMarking.MAT,
    content="Phương án bảo vệ mục tiêu ZZQ trọng yếu (tài liệu mật).",
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    directory = PkiDirectory(root)
    directory.init(now=NOW - timedelta(days=1))
    for code in (H26, LABOUR):
        directory.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
    return root


@pytest.fixture(scope="module")
def ctx(pki: Path) -> ParseContext:
    return ParseContext(TOPICS, PkiDirectory(pki).trust_store(), AgencyDirectory.default())


def _submissions(pki: Path) -> list[bytes]:
    """The seed scenario's submissions, as the demo sends them, and a secret document that a
    broken client published anyway."""
    h26 = [load_credential(pki, H26, SignerRole.AGENCY)]
    labour = [load_credential(pki, LABOUR, SignerRole.AGENCY)]
    report = report_from_record(example_record(REPORT))
    sealed = [seal(d, credentials=h26, at=NOW) for d in (PLAN_190, DECISION_4612, PLAN_191)]
    sealed.append(seal(report, credentials=labour, at=NOW))
    # The SDK refuses to seal a secret document: signed by hand, as a broken client would.
    ptype, identity, payload = encode_payload(SECRET, validate=False)
    unsigned = Envelope(
        "m-secret", ptype, identity, payload, SECRET.document_id, H26, ("000.00.31.H26",), NOW
    )
    [cred] = h26
    sealed.append(
        sign_envelope(unsigned, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=NOW)
    )
    return [encode_envelope(e) for e in sealed]


@pytest.fixture(scope="module")
async def seed_db(database_url: str, pki: Path, ctx: ParseContext) -> AsyncIterator[str]:
    """The seed scenario archived by the archiver's own batch writer, as its own role."""
    async with fresh_database(database_url) as url:
        parsed = [
            parse_record(SourceRecord(TOPICS.submissions, 0, i, None, raw, (), NOW), ctx)
            for i, raw in enumerate(_submissions(pki))
        ]
        rows = store.leaf_rows(0, parsed, archive_time(NOW))
        _, nodes = append_leaves(RightEdge.empty(), 0, [r.leaf_hash for r in rows])
        conn = await asyncpg.connect(archiver_url(url))
        try:
            async with conn.transaction():
                await store.write_batch(conn, rows, nodes, {(TOPICS.submissions, 0): len(rows)})
        finally:
            await conn.close()
        yield url


@pytest.fixture(scope="module")
def auditor_env(seed_db: str) -> dict[str, str]:
    return {"LIENTHONG_AUDIT_DATABASE_URL": auditor_url(seed_db), "USER": "thanh.tra"}


def search(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, ["audit", "search", *args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def asearch(env: dict[str, str], *args: str) -> Any:
    """The CLI from an async test: it runs its own event loop, so in a thread."""
    return await asyncio.to_thread(search, env, *args)


def ids(answer: Any) -> list[str]:
    return [d["document_id"] for d in answer["documents"]]


@pytest.mark.parametrize(
    ("phrase", "match"),
    [
        ("phan dau duy tri 100 thu tuc hanh chinh", "document"),
        ("ke hoach 190", "heading"),
        ("cai cach hanh chinh", "document"),
        ("Phấn đấu duy trì 100% thủ tục hành chính", "document"),
        ("KẾ HOẠCH 190", "heading"),
        ("Cải cách hành chính", "document"),
        ("190/KH-UBND", "heading"),
    ],
)
def test_the_seed_phrases_find_plan_190_first(
    auditor_env: dict[str, str], phrase: str, match: str
) -> None:
    answer = search(auditor_env, "--text", phrase)
    first = answer["documents"][0]
    assert first["document_id"] == PLAN_190.document_id and first["match"] == match
    if match == "document":  # the words stand in Plan 190's body as typed: a phrase, ranked up
        assert first["rank"] >= 1.0
    assert all(d["match"] != "heading" for d in answer["documents"][1:] if match == "document")


def test_the_body_and_the_names_are_searched_the_heading_first(
    auditor_env: dict[str, str],
) -> None:
    # Plan 191's body: "tổ chức đối thoại trước 30/11/2019".
    assert ids(search(auditor_env, "--text", "to chuc doi thoai"))[0] == PLAN_191.document_id
    # A recipient's name from the directory: Ba Đình's committee receives both plans, and the
    # document written to Ba Đình in the directory's words.
    to_ba_dinh = search(auditor_env, "--text", "uy ban nhan dan quan ba dinh", "--all-words")
    assert set(ids(to_ba_dinh)) == {
        d.document_id for d in (PLAN_190, DECISION_4612, PLAN_191) if "000.00.31.H26" in
        [a.code for a in d.to]
    }  # fmt: skip
    assert {d["match"] for d in to_ba_dinh["documents"]} == {"document"}
    # "ke hoach" is in both plans' headings and in Decision 4612's body? The heading comes first.
    plans = search(auditor_env, "--text", "ke hoach", "--limit", "50")
    headed = [d["document_id"] for d in plans["documents"] if d["match"] == "heading"]
    assert set(headed) == {PLAN_190.document_id, PLAN_191.document_id}
    assert ids(plans)[:2] == headed
    # --heading-only: the subject-only search of before 0008 finds nothing in the body.
    assert ids(search(auditor_env, "--text", "cai cach hanh chinh", "--heading-only")) == []


async def test_a_secret_documents_body_words_find_nothing(
    seed_db: str, auditor_env: dict[str, str], ctx: ParseContext, pki: Path
) -> None:
    # Through the archiver: the secret submission left a digest, no row, no words.
    assert ids(await asearch(auditor_env, "--text", SECRET_WORDS, "--all-words")) == []
    assert ids(await asearch(auditor_env, "--text", "zzq")) == []
    partly = await asearch(auditor_env, "--text", SECRET_WORDS, "--limit", "100")
    assert SECRET.document_id not in ids(partly)  # only other documents' common words
    conn = await asyncpg.connect(seed_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM document WHERE body ILIKE '%ZZQ%'") == 0
        kept = await conn.fetchval(
            "SELECT count(*) FROM archive_record WHERE raw IS NULL AND parse_error LIKE 'SECRET%'"
        )
        assert kept == 1
        # A writer that sends a secret document's body anyway (a paper registration of a secret
        # document, say): the database keeps the heading and drops the body before the row is
        # written; none of its words is searchable.
        await conn.execute(
            "INSERT INTO document (document_id, payload_type, sender, subject, submitted_at,"
            " secrecy, body) VALUES ('secret-paper', 'paper_exchange_record', $1,"
            " 'Sổ đăng ký văn bản mật', now(), 'TOI_MAT', $2)",
            H26,
            SECRET.content,
        )
        row = await conn.fetchrow(
            "SELECT body, search_full @@ plainto_tsquery('simple', 'zzq') AS found"
            " FROM document WHERE document_id = 'secret-paper'"
        )
        assert row is not None and row["body"] is None and row["found"] is False
        # Bypassing the triggers (a superuser's replica session) meets the constraint.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            with pytest.raises(asyncpg.CheckViolationError, match="secret_has_no_body"):
                await conn.execute(
                    "UPDATE document SET body = 'lộ' WHERE document_id = 'secret-paper'"
                )
        assert ids(await asearch(auditor_env, "--text", SECRET_WORDS, "--all-words")) == []
        found = await asearch(auditor_env, "--text", "so dang ky van ban mat")  # its heading is
        assert ids(found)[0] == "secret-paper" and found["documents"][0]["match"] == "heading"
    finally:
        await conn.execute("DELETE FROM document WHERE document_id = 'secret-paper'")
        await conn.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%", "at least one word"),
        ("_", "at least one word"),
        ("%_%", "at least one word"),
        ("   ", "at least one word"),
        ("", "at least one word"),
        ("x" * 501, "at most 500"),
        ("\\' ; --", "at least one word"),
    ],
)
def test_bad_words_are_one_line(auditor_env: dict[str, str], text: str, message: str) -> None:
    result = CliRunner().invoke(app, ["audit", "search", "--text", text], env=auditor_env)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("'); drop table document;--", "drop table document"),
        ("ke hoach' OR '1'='1", "ke hoach or 1 1"),
        ("ke & hoach | !190 <-> *", "ke hoach 190"),
        ("100%", "100"),
        ("thu_tuc", "thu tuc"),
        ("a:*", "a"),
        ("$1 $$ \\x00", "1 x00"),
    ],
)
async def test_injection_like_text_is_only_words(
    seed_db: str, auditor_env: dict[str, str], typed: str, words: str
) -> None:
    """Quotes, operators, wildcards and parameter markers are separators between words: the
    typed text finds exactly what its words find, and the archive is untouched."""
    conn = await asyncpg.connect(seed_db)
    try:
        before = await conn.fetchval("SELECT count(*) FROM document")
        answer = await asearch(auditor_env, "--text", typed, "--limit", "100")
        assert await conn.fetchval("SELECT count(*) FROM document") == before
    finally:
        await conn.close()
    assert ids(answer) == ids(await asearch(auditor_env, "--text", words, "--limit", "100"))
    if typed == "100%":  # the word 100 of Plan 190's "100% thủ tục hành chính", not a pattern
        assert PLAN_190.document_id in ids(answer)


async def test_paging_walks_every_tier_once(seed_db: str) -> None:
    conn = await asyncpg.connect(auditor_url(seed_db))
    try:
        filters = SearchFilters(text="ke hoach thanh pho ha noi")
        everything = await search_documents(conn, filters, limit=50)
        assert everything.next_cursor is None
        tiers = [h.match for h in everything.hits]
        assert tiers == sorted(tiers, key=["heading", "document", "partial"].index)
        assert len(set(tiers)) >= 2  # the search spans tiers
        by_cursor, after = [], None
        while True:
            page = await search_documents(conn, filters, limit=1, after=after)
            by_cursor += [h.document_id for h in page.hits]
            if page.next_cursor is None:
                break
            after = Cursor.decode(page.next_cursor)
        by_page = [
            h.document_id
            for n in range(1, len(everything.hits) + 1)
            for h in (await search_documents(conn, filters, limit=1, page=n)).hits
        ]
    finally:
        await conn.close()
    assert by_cursor == by_page == [h.document_id for h in everything.hits]


async def test_reindex_fills_rows_archived_before_0008_and_check_sees_an_edited_body(
    seed_db: str, ctx: ParseContext, auditor_env: dict[str, str], pki: Path
) -> None:
    conn = await asyncpg.connect(seed_db)
    try:
        # Rows as 0007's archiver left them: no body, no names, no search_full, and its heading
        # (number/notation one word, store.INSERT_DOCUMENTS before 0008).
        async with conn.transaction():
            await conn.execute(
                "ALTER TABLE document DISABLE TRIGGER document_search_columns_update"
            )
            await conn.execute(
                "UPDATE document SET body = NULL, party_names = NULL, search_full = NULL,"
                " search = to_tsvector('simple', lt_fold(concat_ws(' ', subject,"
                " number || '/' || notation, doc_type_name)))"
            )
            await conn.execute(f"ALTER TABLE document ENABLE TRIGGER {TEXT_TRIGGER}")
        assert ids(await asearch(auditor_env, "--text", "cai cach hanh chinh")) == []
        report = await check_archive(conn, trust=ctx.trust, at=NOW, derive=ctx)
        assert report.findings == []  # not indexed yet is not tampering
        # The archiver's role may add rows, not rewrite them: reindexing is the owner's.
        archiver = await asyncpg.connect(archiver_url(seed_db))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await archiver.execute("UPDATE document SET body = 'x'")
        finally:
            await archiver.close()
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["archive", "reindex", "--batch", "2"],
            env={
                "LIENTHONG_DATABASE_URL": seed_db,
                "LIENTHONG_PKI_DIR": str(pki),
                "LIENTHONG_TOPIC_PREFIX": "other.",  # reindexing does not depend on the prefix
            },
        )
        assert result.exit_code == 0, result.output
        assert "indexed 4 document(s)" in result.stdout
        assert await conn.fetchval("SELECT count(*) FROM document WHERE search_full IS NULL") == 0
        assert (
            ids(await asearch(auditor_env, "--text", "cai cach hanh chinh"))[0]
            == PLAN_190.document_id
        )
        assert (await check_archive(conn, trust=ctx.trust, at=NOW, derive=ctx)).findings == []
        # A body edited behind the archive's back: its words change with it, check says so.
        await conn.execute(
            "UPDATE document SET body = 'Nội dung đã bị sửa' WHERE document_id = $1",
            PLAN_190.document_id,
        )
        report = await check_archive(conn, trust=ctx.trust, at=NOW, derive=ctx)
        [finding] = report.findings
        assert finding.seq == 0 and PLAN_190.document_id in finding.problem
        assert "body 'Nội dung đã bị sửa' (stored)" in finding.problem
    finally:
        await conn.close()


async def test_a_ranked_search_inside_the_callers_transaction(seed_db: str) -> None:
    """A caller that reads in a transaction of its own (a read-only snapshot, say) may search
    in it: the search's settings (no JIT, custom plans) last until the caller's end."""
    conn = await asyncpg.connect(auditor_url(seed_db), server_settings={"jit": "on"})
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            page = await search_documents(conn, SearchFilters(text="cai cach hanh chinh"), limit=3)
            assert page.hits[0].document_id == PLAN_190.document_id
            assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SHOW jit") == "on"  # SET LOCAL: the session's own again
        await conn.execute("BEGIN")  # a transaction asyncpg does not manage
        try:
            page = await search_documents(conn, SearchFilters(text="ke hoach 190"), limit=1)
            assert page.hits[0].document_id == PLAN_190.document_id
        finally:
            await conn.execute("ROLLBACK")
        outside = await search_documents(conn, SearchFilters(text="ke hoach 190"), limit=1)
        assert outside.hits[0].document_id == PLAN_190.document_id
    finally:
        await conn.close()
