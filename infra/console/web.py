"""The console's web plumbing: security headers, cookies, the page guard (session, role, CSRF,
access log before anything is read), and rendering with Vietnamese dates in Vietnam time."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consumers.audit import record_access
from infra.console.accounts import ROLE_LABEL
from infra.console.config import ConsoleConfig
from infra.console.sessions import Session, csrf_matches, current_session

log = structlog.get_logger()
VN = ZoneInfo("Asia/Ho_Chi_Minh")
HERE = Path(__file__).parent

# No script at all: every page is plain HTML and forms. Styles only from our own stylesheet (no
# style attribute, no <style>), nothing from another origin, no framing, forms post home only.
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Document ids and search words are in our URLs: never send them to another site. (Not
    # no-referrer: under it a browser posts our own forms with "Origin: null".)
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
LOGIN_CSRF_COOKIE = "lt_login"


class SecurityHeaders:
    """Adds the headers above to every response; pages behind a login are never cached, and
    over HTTPS the browser is told to stay on HTTPS (HSTS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                present = {k.lower() for k, _ in headers}
                extra = dict(HEADERS)
                extra["cache-control"] = "public, max-age=3600" if static else "no-store"
                if https:
                    extra["strict-transport-security"] = "max-age=31536000"
                for name, value in extra.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(slots=True)
class Console:
    """What every request reaches: configuration, the database pool, the templates."""

    config: ConsoleConfig
    templates: Jinja2Templates
    pool: asyncpg.Pool | None = None

    def secure(self, request: Request) -> bool:
        return self.config.secure_cookies or request.url.scheme == "https"

    def session_cookie(self, request: Request) -> str:
        # __Host-: only ever set by this host over HTTPS, path /, no Domain: a sibling
        # subdomain cannot plant or overwrite it.
        return "__Host-lt_session" if self.secure(request) else "lt_session"

    def set_cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
            path="/",
        )


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def client_of(request: Request) -> str:
    """The browser's address: the TCP peer's, or, when the peer is a trusted proxy, the last
    address of X-Forwarded-For that no trusted proxy added (each proxy appends the address it
    was reached from, so what a browser wrote itself sits to the left and is not believed)."""
    peer = request.client.host if request.client else "unknown"
    trusted = console_of(request).config.trusted_proxies
    if peer not in trusted:
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in trusted:
            return hop
    return peer


def vn_time(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M:%S") -> str:
    if value is None:
        return ""
    return value.astimezone(VN).strftime(fmt)


def vn_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(VN).date()
    return value.strftime("%d/%m/%Y")


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters["vn_time"] = vn_time
    t.env.filters["vn_date"] = vn_date
    t.env.filters["q"] = lambda v: quote(str(v), safe="")
    t.env.globals["role_label"] = ROLE_LABEL
    return t


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    status: int = 200,
) -> Response:
    ctx = {"session": session, "csrf": session.csrf if session else None, **(context or {})}
    return console_of(request).templates.TemplateResponse(request, name, ctx, status_code=status)


def error_page(request: Request, status: int, message: str, session: Session | None) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "message": message},
        session=session,
        status=status,
    )


def safe_next(target: str | None) -> str:
    """Only a path of this site: never //evil.example or a scheme (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def same_origin(request: Request) -> bool:
    """A browser's POST names its origin; one from another site is refused outright (the CSRF
    token would refuse it too: this is the second lock)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.url.netloc}"


@dataclass(frozen=True, slots=True)
class PageContext:
    conn: asyncpg.Connection
    session: Session
    now: datetime
    form: FormData | None


Handler = Callable[[Request, PageContext], Awaitable[Response]]
LOGGED_FORM_FIELDS_SKIP = {"csrf", "password"}


def _access_args(request: Request, form: FormData | None) -> dict[str, Any]:
    args: dict[str, Any] = {"path": request.url.path, "client": client_of(request)}
    params = {k: v for k, v in request.query_params.items() if v}
    if params:
        args["params"] = params
    if form is not None:
        fields = {
            k: v for k, v in form.items() if k not in LOGGED_FORM_FIELDS_SKIP and isinstance(v, str)
        }
        if fields:
            args["form"] = fields
    return args


def page(command: str, role: str | None) -> Callable[[Handler], Callable[[Request], Any]]:
    """Guard a page: a live session (else to the login page), the role (else 403, logged as
    denied), a valid CSRF token on POST (else 403); then the access log entry is written, and
    only then is the page built. A page whose access cannot be logged is not shown."""

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            console = console_of(request)
            assert console.pool is not None
            async with console.pool.acquire() as conn:
                now = console.config.clock()
                token = request.cookies.get(console.session_cookie(request))
                session = await current_session(
                    conn, token, now=now, policy=console.config.sessions
                )
                if session is None:
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    if request.method != "GET":
                        target = "/"
                    return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
                form = None
                if request.method == "POST":
                    form = await request.form()
                    presented = form.get("csrf")
                    if not same_origin(request) or not csrf_matches(
                        session.token, presented if isinstance(presented, str) else None
                    ):
                        log.warning(
                            "console.csrf_refused",
                            username=session.account.username,
                            path=request.url.path,
                        )
                        return error_page(
                            request,
                            403,
                            "Yêu cầu không hợp lệ (thiếu hoặc sai mã chống giả mạo). "
                            "Hãy tải lại trang rồi thử lại.",
                            session,
                        )
                args = _access_args(request, form)
                if role is not None and not session.account.has(role):
                    await record_access(
                        conn,
                        who=session.account.username,
                        command="console.denied",
                        args={**args, "needs": role},
                    )
                    return error_page(
                        request, 403, "Tài khoản của bạn không có quyền xem trang này.", session
                    )
                await record_access(conn, who=session.account.username, command=command, args=args)
                return await handler(request, PageContext(conn, session, now, form))

        return endpoint

    return wrap
