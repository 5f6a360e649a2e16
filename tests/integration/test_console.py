"""The console under attack, in process (Starlette's TestClient) on a real PostgreSQL: logins that
must fail, roles that must not reach, forged or missing CSRF tokens, sessions that must end,
injection in the search box, and the access log entry behind every view."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import asyncpg
import lxml.html
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from infra.console import (
    LoginPolicy,
    SessionPolicy,
    add_account,
    console_config,
    console_url,
    create_app,
    disable_account,
    set_password,
)
from infra.settings import Settings
from tests.support import fresh_database

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
DONG_DA = "000.00.33.H26"
T0 = datetime(2019, 8, 27, 2, 0, tzinfo=UTC)
PLAN = f"{H26},2019/08/27,190/KH-UBND"
EVIL = f"{H26},2019/08/28,666/TB-UBND"
EVIL_SUBJECT = 'Thông báo <img src=x onerror="alert(1)"> <script>alert(2)</script>'
PASSWORD = "mật khẩu rất dài 2019"
USERS = {
    "thanh.tra": ("auditor",),
    "kpi.viewer": ("kpi_viewer",),
    "ca.hai": ("auditor", "kpi_viewer"),
    "bi.khoa": ("auditor",),
    "doi.mk": ("auditor",),
}


async def seed(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO document (document_id, payload_type, sender, recipients, number, notation,"
        " doc_type, subject, promulgation_date, submitted_at, routing_outcome)"
        " VALUES ($1, 'OFFICIAL_DOCUMENT', $2, $3, $4, $5, $6, $7, $8, $9, 'routed')",
        [
            (PLAN, H26, [BA_DINH, DONG_DA], "190", "KH-UBND", "KH",
             "Kế hoạch ứng dụng công nghệ thông tin, cải cách hành chính", T0.date(), T0),
            (EVIL, H26, [BA_DINH], "666", "TB-UBND", "TB", EVIL_SUBJECT, T0.date(),
             T0 + timedelta(days=1)),
        ],
    )  # fmt: skip
    for username, roles in USERS.items():
        await add_account(conn, username, PASSWORD, roles, full_name=f"Cán bộ {username}")


@pytest.fixture(scope="module")
async def console_db(database_url: str) -> AsyncIterator[str]:
    async with fresh_database(database_url, seed=seed) as url:
        yield url


class Clock:
    """The console's time, moved by the test (sessions and throttling are judged by it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


_clients = count(1)


@pytest.fixture
def open_console(console_db: str, settings: Settings, pki_dir: Any) -> Iterator[Callable[..., Any]]:
    """A console client factory: each has its own clock and client address, so one test's
    failed logins never throttle another's."""

    @contextmanager
    def make(
        *,
        login: LoginPolicy | None = None,
        sessions: SessionPolicy | None = None,
        allowed_hosts: tuple[str, ...] = (),
        trusted_proxies: tuple[str, ...] = (),
        **kw: Any,
    ) -> Iterator[tuple[TestClient, Clock]]:
        n = next(_clients)
        clock = Clock(datetime.now(UTC) + timedelta(days=n))
        config = console_config(
            settings,
            console_url(console_db),
            clock=clock,
            login=login or LoginPolicy(per_client=1000),
            sessions=sessions,
            allowed_hosts=allowed_hosts,
            trusted_proxies=trusted_proxies,
        )
        kw.setdefault("client", (f"10.0.0.{n}", 50000))
        with TestClient(create_app(config), follow_redirects=False, **kw) as client:
            yield client, clock

    yield make


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: str) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    data = {"csrf": token.group(1), "username": username, "password": password, **extra}
    return client.post("/login", data=data)


def csrf_of(client: TestClient, path: str = "/integrity") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


async def access_log(url: str, who: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(
            "SELECT command, args::text AS args, db_role FROM audit_access_log WHERE who = $1 "
            "ORDER BY id",
            who,
        )
    finally:
        await conn.close()


# --- unauthenticated --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/search?q=ke+hoach", "/kpi", f"/document?id={PLAN}", "/document/verify?id=x",
     "/document/evidence?id=x", "/integrity", "/kpi.csv"],
)  # fmt: skip
def test_unauthenticated_views_go_to_the_login_page(
    open_console: Callable[..., Any], path: str
) -> None:
    with open_console() as (client, _):
        reply = client.get(path)
        assert reply.status_code == 303
        assert reply.headers["location"].startswith("/login?next=%2F")
        assert reply.text == ""  # nothing of the page leaks into the redirect


def test_unauthenticated_post_goes_to_the_login_page(open_console: Callable[..., Any]) -> None:
    with open_console() as (client, _):
        reply = client.post("/integrity/check", data={"csrf": "x"})
        assert reply.status_code == 303 and reply.headers["location"].startswith("/login")


def test_a_forged_session_cookie_is_no_session(open_console: Callable[..., Any]) -> None:
    with open_console() as (client, _):
        client.cookies.set("lt_session", "A" * 43)
        assert client.get("/search").status_code == 303


# --- logging in -------------------------------------------------------------------------------


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    open_console: Callable[..., Any], console_db: str
) -> None:
    with open_console() as (client, _):
        wrong = login(client, "thanh.tra", "not the password at all")
        unknown = login(client, "khong.co.ai", "not the password at all")
        for reply in (wrong, unknown):
            assert reply.status_code == 401
            assert "Tên đăng nhập hoặc mật khẩu không đúng." in reply.text
            assert "lt_session" not in reply.headers.get("set-cookie", "")
        assert client.get("/search").status_code == 303
        right = login(client, "thanh.tra")
        assert right.status_code == 303 and "lt_session=" in right.headers["set-cookie"]
        assert client.get("/search").status_code == 200


def test_login_is_throttled_per_account_then_released(open_console: Callable[..., Any]) -> None:
    policy = LoginPolicy(per_account=5, per_client=1000, window=timedelta(minutes=15))
    with open_console(login=policy) as (client, clock):
        for _ in range(5):
            assert login(client, "bi.khoa", "wrong password!!").status_code == 401
            clock.advance(seconds=10)
        locked = login(client, "bi.khoa")  # the right password, refused while locked
        assert locked.status_code == 429 and "tạm khóa" in locked.text
        assert client.get("/search").status_code == 303
        # another account from the same address is not locked by it
        assert login(client, "thanh.tra").status_code == 303
        clock.advance(minutes=15)
        assert login(client, "bi.khoa").status_code == 303


def test_login_is_throttled_per_client_address(open_console: Callable[..., Any]) -> None:
    with open_console(login=LoginPolicy(per_account=100, per_client=3)) as (client, _):
        for name in ("a.one", "b.two", "c.three"):
            assert login(client, name, "guessing passwords").status_code == 401
        assert login(client, "ca.hai").status_code == 429


def login_from(client: TestClient, forwarded: str, password: str = PASSWORD) -> int:
    """A login through a proxy that says the browser's address in X-Forwarded-For."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    data = {"csrf": token.group(1), "username": "thanh.tra", "password": password}
    reply = client.post("/login", data=data, headers={"x-forwarded-for": forwarded})
    return reply.status_code


def test_behind_a_trusted_proxy_each_browser_is_throttled_on_its_own_address(
    open_console: Callable[..., Any],
) -> None:
    """Behind a reverse proxy every request comes from the proxy: without --trusted-proxy one
    guesser would lock every user out. Through a trusted proxy the forwarded address counts,
    and what a browser writes into X-Forwarded-For itself (left of what the proxy appended)
    does not."""
    proxy = "192.0.2.10"
    policy = LoginPolicy(per_account=100, per_client=3)
    with open_console(login=policy, trusted_proxies=(proxy,), client=(proxy, 443)) as (client, _):
        for _ in range(3):
            assert login_from(client, "203.0.113.5", "guessing passwords") == 401
        assert login_from(client, "203.0.113.5") == 429
        # the guesser claims another address; the proxy appended the real one
        assert login_from(client, "203.0.113.77, 203.0.113.5") == 429
        assert login_from(client, "203.0.113.6") == 303  # another browser is not locked out
    # From a peer that is not a trusted proxy the header is nobody's word: the peer counts.
    with open_console(login=policy) as (client, _):
        for n in range(3):
            assert login_from(client, f"203.0.113.{n}", "guessing passwords") == 401
        assert login_from(client, "203.0.113.99") == 429


def test_a_host_name_not_allowed_is_refused_with_the_headers(
    open_console: Callable[..., Any],
) -> None:
    name = "congthongtin.hanoi.gov.vn"
    with open_console(allowed_hosts=(name,), base_url=f"http://{name}") as (client, _):
        assert client.get("/login").status_code == 200
        refused = client.get("/login", headers={"host": "evil.example"})
    assert refused.status_code == 400
    assert refused.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("case", ["no token", "forged token", "other origin"])
def test_login_without_its_csrf_token_is_refused(
    open_console: Callable[..., Any], case: str
) -> None:
    with open_console() as (client, _):
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        data = {"username": "thanh.tra", "password": PASSWORD, "csrf": token.group(1)}
        headers = {}
        if case == "no token":
            del data["csrf"]
        elif case == "forged token":
            # one character changed (to another: a token may begin with "x" already)
            data["csrf"] = ("y" if token.group(1).startswith("x") else "x") + token.group(1)[1:]
        else:
            headers["origin"] = "https://evil.example"
        reply = client.post("/login", data=data, headers=headers)
        assert reply.status_code == 403
        assert client.get("/search").status_code == 303


def test_login_never_redirects_off_site(open_console: Callable[..., Any]) -> None:
    with open_console() as (client, _):
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            reply = login(client, "thanh.tra", next=target)
            assert reply.status_code == 303 and reply.headers["location"] == "/"
        assert login(client, "thanh.tra", next="/kpi?period=2019").headers["location"] == (
            "/kpi?period=2019"
        )


# --- roles ------------------------------------------------------------------------------------


async def test_a_kpi_viewer_cannot_reach_the_auditors_pages(
    open_console: Callable[..., Any], console_db: str
) -> None:
    with open_console() as (client, _):
        login(client, "kpi.viewer")
        for path in ("/search", f"/document?id={PLAN}", "/integrity", "/document/evidence?id=x"):
            reply = client.get(path)
            assert reply.status_code == 403, path
            assert "Kiểm tra toàn bộ" not in reply.text and "Kế hoạch ứng dụng" not in reply.text
        assert (
            client.post("/integrity/check", data={"csrf": csrf_of(client, "/kpi")}).status_code
            == 403
        )
        assert client.get("/kpi").status_code == 200
    denied = [
        r for r in await access_log(console_db, "kpi.viewer") if r["command"] == "console.denied"
    ]
    assert len(denied) == 5 and all('"needs": "auditor"' in r["args"] for r in denied)


async def test_an_auditor_without_the_kpi_role_cannot_reach_the_kpi(
    open_console: Callable[..., Any], console_db: str
) -> None:
    with open_console() as (client, _):
        login(client, "thanh.tra")
        for path in ("/kpi", "/kpi?period=2019", "/kpi.csv?period=2019"):
            reply = client.get(path)
            assert reply.status_code == 403, path
            assert "data-code" not in reply.text
        assert "Chỉ tiêu KPI" not in client.get("/search").text  # nor is it offered
    commands = [r["command"] for r in await access_log(console_db, "thanh.tra")]
    assert commands.count("console.denied") >= 3 and "console.kpi" not in commands


# --- CSRF on every POST -----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "forged", "another session's", "other origin"])
def test_a_post_without_this_sessions_csrf_token_is_refused(
    open_console: Callable[..., Any], case: str
) -> None:
    with open_console() as (other, _):
        login(other, "ca.hai")
        foreign = csrf_of(other)
    with open_console() as (client, _):
        login(client, "thanh.tra")
        token = csrf_of(client)
        data: dict[str, str] = {"csrf": token}
        headers: dict[str, str] = {}
        if case == "missing":
            data = {}
        elif case == "forged":
            data["csrf"] = token[:-2] + ("00" if token[-2:] != "00" else "11")
        elif case == "another session's":
            data["csrf"] = foreign
        else:
            headers["origin"] = "https://evil.example"
        refused = client.post("/integrity/check", data=data, headers=headers)
        assert refused.status_code == 403 and "chống giả mạo" in refused.text
        assert "check-summary" not in refused.text
        logout = client.post("/logout", data=data, headers=headers)
        assert logout.status_code == 403
        assert client.get("/search").status_code == 200  # still logged in: logout was refused
        ok = client.post("/integrity/check", data={"csrf": token})
        assert ok.status_code == 200 and 'id="check-summary"' in ok.text


# --- sessions end ------------------------------------------------------------------------------


def test_an_idle_session_expires(open_console: Callable[..., Any]) -> None:
    policy = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    with open_console(sessions=policy) as (client, clock):
        login(client, "thanh.tra")
        clock.advance(minutes=29)
        assert client.get("/search").status_code == 200  # activity moves the idle limit
        clock.advance(minutes=29)
        assert client.get("/search").status_code == 200
        clock.advance(minutes=30)
        reply = client.get("/search")
        assert reply.status_code == 303 and reply.headers["location"].startswith("/login")
        clock.advance(minutes=-60)  # an expired session was ended: turning the clock back
        assert client.get("/search").status_code == 303  # does not revive it


def test_a_busy_session_still_ends_at_its_absolute_limit(open_console: Callable[..., Any]) -> None:
    policy = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    with open_console(sessions=policy) as (client, clock):
        login(client, "thanh.tra")
        for _ in range(5):
            clock.advance(minutes=20)
            assert client.get("/search").status_code == 200
        clock.advance(minutes=20)  # 2 h after login
        assert client.get("/search").status_code == 303


async def test_logout_disable_and_new_password_end_sessions_on_the_server(
    open_console: Callable[..., Any], console_db: str
) -> None:
    with open_console() as (client, _):
        login(client, "doi.mk")
        stolen = client.cookies.get("lt_session")
        assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 303
        client.cookies.clear()
        client.cookies.set("lt_session", stolen or "")  # the cookie replayed after logout
        assert client.get("/search").status_code == 303
    with open_console() as (client, _):
        login(client, "doi.mk")
        first = client.cookies.get("lt_session")
        login(client, "doi.mk")  # again, in the same browser: the first session ends
        assert client.cookies.get("lt_session") != first
        assert client.get("/search").status_code == 200
        client.cookies.clear()
        client.cookies.set("lt_session", first or "")
        assert client.get("/search").status_code == 303
    owner = await asyncpg.connect(console_db)
    try:
        with open_console() as (client, _):
            login(client, "doi.mk")
            assert client.get("/search").status_code == 200
            open_sessions = await owner.fetchval(
                "SELECT count(*) FROM console_session WHERE username = 'doi.mk' "
                "AND revoked_at IS NULL"
            )
            assert open_sessions >= 1
            assert await set_password(owner, "doi.mk", PASSWORD + "!") == open_sessions
            assert client.get("/search").status_code == 303
            assert login(client, "doi.mk").status_code == 401  # the old password is gone
            assert login(client, "doi.mk", PASSWORD + "!").status_code == 303
            await set_password(owner, "doi.mk", PASSWORD)
        with open_console() as (client, _):
            login(client, "ca.hai")
            assert client.get("/kpi").status_code == 200
            open_sessions = await owner.fetchval(
                "SELECT count(*) FROM console_session WHERE username = 'ca.hai' "
                "AND revoked_at IS NULL"
            )
            assert open_sessions >= 1
            assert await disable_account(owner, "ca.hai") == open_sessions
            assert client.get("/kpi").status_code == 303
            assert login(client, "ca.hai").status_code == 401
    finally:
        await owner.execute("UPDATE console_account SET disabled_at = NULL")
        await owner.close()


# --- what the pages show ----------------------------------------------------------------------


async def test_injection_in_the_search_box_is_a_search_and_is_escaped(
    open_console: Callable[..., Any], console_db: str
) -> None:
    attacks = [
        "'; DROP TABLE document; --",
        '<script>alert("x")</script>',
        '"><img src=x onerror=alert(1)>',
        "%' OR '1'='1",
        "\\x00 ) ; SELECT pg_sleep(5) --",
    ]
    with open_console() as (client, _):
        login(client, "thanh.tra")
        for attack in attacks:
            reply = client.get("/search", params={"q": attack})
            assert reply.status_code == 200, attack
            assert "<script>alert" not in reply.text and "<img src=x" not in reply.text
            tree = lxml.html.fromstring(reply.text)
            assert tree.xpath("//input[@name='q']/@value") == [attack[:300]]
            assert not tree.xpath("//script") and not tree.xpath("//img")
        # the stored subject with markup in it is shown as text, never as markup
        listed = client.get("/search", params={"sender": H26})
        tree = lxml.html.fromstring(listed.text)
        assert EVIL_SUBJECT in tree.text_content()
        assert not tree.xpath("//script") and not tree.xpath("//img")
        page = client.get("/document", params={"id": EVIL})
        assert page.status_code == 200 and not lxml.html.fromstring(page.text).xpath("//img")
        # a bad date is a message on the page, not an error
        bad = client.get("/search", params={"from": "2019-13-45"})
        assert bad.status_code == 200 and "ngày không hợp lệ" in bad.text
    conn = await asyncpg.connect(console_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM document") == 2
    finally:
        await conn.close()


async def test_every_view_and_search_is_in_the_access_log_before_it_is_answered(
    open_console: Callable[..., Any], console_db: str
) -> None:
    before = len(await access_log(console_db, "ca.hai"))
    with open_console() as (client, _):
        login(client, "ca.hai")
        views = [
            ("/search", {"q": "cai cach hanh chinh", "type": "KH"}, "console.search"),
            ("/document", {"id": PLAN}, "console.show"),
            ("/document/verify", {"id": PLAN}, "console.verify"),
            ("/integrity", {}, "console.integrity"),
            ("/kpi", {"period": "2019-08", "agency": H26}, "console.kpi"),
        ]
        for path, params, _ in views:
            assert client.get(path, params=params).status_code == 200, path
    entries = (await access_log(console_db, "ca.hai"))[before:]
    assert [e["command"] for e in entries] == [c for _, _, c in views]
    assert all(e["db_role"] == "lienthong_console" for e in entries)
    assert '"q": "cai cach hanh chinh"' in entries[0]["args"]
    assert PLAN in entries[1]["args"] and '"period": "2019-08"' in entries[4]["args"]
    assert all('"client": "10.0.0.' in e["args"] for e in entries)


def test_the_plan_is_found_without_diacritics_and_its_page_shows_its_timeline(
    open_console: Callable[..., Any],
) -> None:
    with open_console() as (client, _):
        login(client, "thanh.tra")
        found = lxml.html.fromstring(client.get("/search", params={"q": "ke hoach cong nghe"}).text)
        assert found.xpath("//tr[@class='hit']/@data-document-id")[:1] == [PLAN]
        page = lxml.html.fromstring(client.get("/document", params={"id": PLAN}).text)
        assert page.xpath("//code[@id='document-id']/text()") == [PLAN]
        assert page.xpath("//li[@data-kind='submitted']")
        missing = client.get("/document", params={"id": "000.00.00.H26,2019/01/01,1/X"})
        assert missing.status_code == 404


def test_security_headers_and_cookie_flags(open_console: Callable[..., Any]) -> None:
    with open_console() as (client, _):
        page = client.get("/login")
        csp = page.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in page.headers
        assert " style=" not in page.text and "<script" not in page.text
        cookie = login(client, "thanh.tra").headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    with open_console(base_url="https://console.test") as (client, _):
        reply = login(client, "thanh.tra")
        cookie = reply.headers["set-cookie"]
        assert cookie.startswith("__Host-lt_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert client.get("/search").headers["strict-transport-security"].startswith("max-age=")


def test_an_unexpected_failure_is_our_page_with_the_headers_and_no_trace(
    open_console: Callable[..., Any],
) -> None:
    """Starlette answers a 500 outside the middleware that adds the security headers: the
    console's own handler must, and must not show the browser what failed."""

    async def boom(request: Any) -> Any:
        raise RuntimeError("secret detail: password=hunter2 at /srv/lienthong")

    with open_console(raise_server_exceptions=False) as (client, _):
        client.app.router.routes.append(Route("/boom", boom))
        reply = client.get("/boom")
    assert reply.status_code == 500
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["cache-control"] == "no-store"
    assert "lỗi đã được ghi lại" in reply.text
    assert "hunter2" not in reply.text and "Traceback" not in reply.text


# --- the database role ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO document (document_id, payload_type, sender, submitted_at) "
        "VALUES ('x', 'OFFICIAL_DOCUMENT', 'y', now())",
        "UPDATE document SET subject = 'sửa' WHERE true",
        "DELETE FROM status_event",
        "UPDATE audit_access_log SET who = 'ai' WHERE true",
        "UPDATE console_account SET roles = '{auditor,kpi_viewer}' WHERE true",
        "INSERT INTO console_account (username, password_hash, roles) "
        "VALUES ('ke.gian', '$argon2id$x', '{auditor}')",
        "UPDATE console_session SET username = 'ca.hai' WHERE true",
        "TRUNCATE console_login_attempt",
    ],
)
async def test_the_consoles_role_cannot_write_the_archive_or_the_accounts(
    console_db: str, statement: str
) -> None:
    conn = await asyncpg.connect(console_url(console_db))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_auditors_cannot_read_password_hashes_and_a_revoked_session_stays_revoked(
    console_db: str,
) -> None:
    from infra.compose.audit import auditor_url

    auditor = await asyncpg.connect(auditor_url(console_db))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await auditor.fetch("SELECT password_hash FROM console_account")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await auditor.fetch("SELECT token_sha256 FROM console_session")
    finally:
        await auditor.close()
    console = await asyncpg.connect(console_url(console_db))
    try:
        await console.execute(
            "INSERT INTO console_session (token_sha256, username, created_at, last_seen_at, "
            "expires_at, revoked_at) VALUES (sha256('t'::bytea), 'thanh.tra', now(), now(), "
            "now() + interval '1 hour', now())"
        )
        await console.execute(
            "UPDATE console_session SET revoked_at = NULL WHERE token_sha256 = sha256('t'::bytea)"
        )
        assert await console.fetchval(
            "SELECT revoked_at IS NOT NULL FROM console_session "
            "WHERE token_sha256 = sha256('t'::bytea)"
        )
    finally:
        await console.close()


def test_an_oversized_post_is_refused_before_it_is_read(open_console: Callable[..., Any]) -> None:
    with open_console() as (client, _):
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        data = {"csrf": token.group(1), "username": "thanh.tra", "password": "x" * 100_000}
        assert client.post("/login", data=data).status_code == 413
        assert client.get("/search").status_code == 303
