"""Server-side console sessions: a random token in an HttpOnly cookie, its SHA-256 in PostgreSQL,
an idle and an absolute limit, revocable at any time; and the CSRF token bound to each session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from infra.console import sql
from infra.console.accounts import Account

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """A session ends after `idle` without a request, or `absolute` after login, whichever
    comes first; a revoked one (logout, account disabled, `console session revoke`) at once."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=8)

    def __post_init__(self) -> None:
        if self.idle <= timedelta(0) or self.absolute <= timedelta(0):
            raise ValueError("session limits must be positive")


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    token: str
    created_at: datetime
    expires_at: datetime

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(session_token: str) -> str:
    """Derived from the session's secret: a page can carry it, a third-party site cannot know it
    (it cannot read the HttpOnly cookie), and it dies with the session."""
    return hmac.new(session_token.encode(), b"lienthong console csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session_token), presented)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


async def open_session(
    conn: asyncpg.Connection,
    account: Account,
    *,
    client: str,
    now: datetime,
    policy: SessionPolicy,
) -> Session:
    token = new_token()
    expires = now + policy.absolute
    await conn.execute(sql.OPEN_SESSION, digest(token), account.username, now, expires, client)
    return Session(account, token, now, expires)


async def current_session(
    conn: asyncpg.Connection, token: str | None, *, now: datetime, policy: SessionPolicy
) -> Session | None:
    """The live session the token names, its last activity moved to now; None when there is no
    such session or it is revoked, past its absolute limit, idle too long, or its account is
    disabled."""
    if not token or len(token) > 128:
        return None
    row = await conn.fetchrow(sql.SESSION_BY_DIGEST, digest(token))
    if row is None or row["revoked_at"] is not None or row["disabled_at"] is not None:
        return None
    if now >= row["expires_at"] or now - row["last_seen_at"] >= policy.idle:
        await conn.execute(sql.REVOKE_SESSION, digest(token), now)  # ended for good
        return None
    await conn.execute(sql.TOUCH_SESSION, digest(token), now)
    account = Account(row["username"], row["full_name"], tuple(row["roles"]))
    return Session(account, token, row["created_at"], row["expires_at"])


async def close_session(conn: asyncpg.Connection, token: str, *, now: datetime) -> None:
    await conn.execute(sql.REVOKE_SESSION, digest(token), now)


@dataclass(frozen=True, slots=True)
class SessionRow:
    username: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    client: str


async def list_sessions(conn: asyncpg.Connection, username: str | None = None) -> list[SessionRow]:
    rows = await conn.fetch(sql.LIST_SESSIONS, username)
    return [
        SessionRow(
            r["username"],
            r["created_at"],
            r["last_seen_at"],
            r["expires_at"],
            r["revoked_at"],
            r["client"],
        )
        for r in rows
    ]
