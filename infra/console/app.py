"""The console as an ASGI application: routes, the login and logout, and the database pool's life.

Starlette with server-rendered Jinja2 templates and no JavaScript: every page is a GET that a
link or a form names, every action a POST with a CSRF token (docs/console.md)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from infra.console import pages_audit, pages_kpi
from infra.console.accounts import LoginRefused, authenticate
from infra.console.config import ConsoleConfig
from infra.console.sessions import close_session, current_session, open_session
from infra.console.web import (
    HEADERS,
    HERE,
    LOGIN_CSRF_COOKIE,
    Console,
    SecurityHeaders,
    client_of,
    console_of,
    page,
    render,
    safe_next,
    same_origin,
    templates,
)

log = structlog.get_logger()

# A login form is a few hundred bytes; nothing the console accepts is larger.
MAX_BODY = 16 * 1024


async def home(request: Request) -> Response:
    console = console_of(request)
    assert console.pool is not None
    async with console.pool.acquire() as conn:
        session = await current_session(
            conn,
            request.cookies.get(console.session_cookie(request)),
            now=console.config.clock(),
            policy=console.config.sessions,
        )
    if session is None:
        return RedirectResponse("/login", 303)
    return RedirectResponse("/search" if session.account.has("auditor") else "/kpi", 303)


def _login_form(
    request: Request, *, message: str = "", username: str = "", status: int = 200
) -> Response:
    """The login page with a fresh pre-session CSRF token: a random value in a cookie and the
    same value in the form (a third-party page can make the browser send the cookie, but it
    cannot read it to put it in the form)."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "login_csrf": token,
            "message": message,
            "username": username,
            "next": safe_next(request.query_params.get("next")),
        },
        status=status,
    )
    console_of(request).set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


async def login_page(request: Request) -> Response:
    return _login_form(request)


async def login(request: Request) -> Response:
    console = console_of(request)
    assert console.pool is not None
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    presented = form.get("csrf")
    if (
        not same_origin(request)
        or not cookie
        or not isinstance(presented, str)
        or not secrets.compare_digest(cookie, presented)
    ):
        return _login_form(
            request,
            message="Phiên đăng nhập không hợp lệ hoặc đã hết hạn: hãy nhập lại.",
            username=username[:64],
            status=403,
        )
    config = console.config
    async with console.pool.acquire() as conn:
        now = config.clock()
        try:
            account = await authenticate(
                conn, username, password, client=client_of(request), now=now, policy=config.login
            )
        except LoginRefused as refused:
            return _login_form(
                request,
                message=refused.message,
                username=username[:64],
                status=429 if refused.throttled else 401,
            )
        previous = request.cookies.get(console.session_cookie(request))
        if previous:  # logging in again in this browser ends the session it had
            await close_session(conn, previous, now=now)
        session = await open_session(
            conn, account, client=client_of(request), now=now, policy=config.sessions
        )
    target = safe_next(str(form.get("next") or ""))
    response = RedirectResponse(target if target != "/" else "/", 303)
    console.set_cookie(request, response, console.session_cookie(request), session.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@page("console.logout", None)
async def logout(request: Request, ctx: Any) -> Response:
    await close_session(ctx.conn, ctx.session.token, now=ctx.now)
    response = RedirectResponse("/login", 303)
    console = console_of(request)
    response.delete_cookie(console.session_cookie(request), path="/")
    return response


async def healthz(request: Request) -> Response:
    """For the service manager: the process answers and its database role can log in."""
    console = console_of(request)
    assert console.pool is not None
    async with console.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return PlainTextResponse("ok")


async def not_found(request: Request, exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        {"status": 404, "message": "Không có trang này."},
        status=404,
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected failure: our error page, with the security headers (Starlette answers a
    500 outside the middleware that adds them) and no trace of the cause for the browser; the
    log has it."""
    log.error("console.error", path=request.url.path, error=repr(exc))
    response = render(
        request,
        "error.html",
        {"status": 500, "message": "Có lỗi khi tạo trang này; lỗi đã được ghi lại."},
        status=500,
    )
    for name, value in {**HEADERS, "cache-control": "no-store"}.items():
        response.headers.setdefault(name, value)
    return response


def create_app(config: ConsoleConfig) -> Starlette:
    console = Console(config, templates())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        console.pool = await asyncpg.create_pool(
            config.database_url,
            min_size=1,
            max_size=8,
            # Searches differ by filter values of very different selectivity: plan each with
            # its values (as `audit search` does).
            server_settings={"plan_cache_mode": "force_custom_plan"},
        )
        try:
            yield
        finally:
            await console.pool.close()

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        *pages_audit.routes(),
        *pages_kpi.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            # Another Host is refused (400) before any page: no link or redirect made with it.
            Middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts or ["*"])),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found, 500: server_error},
        max_body_size=MAX_BODY,
    )
    app.state.console = console
    return app
