"""Console accounts: argon2id password hashes in PostgreSQL, roles, login throttling.

Two sides. The administrator's (`lienthong console user ...`, as the database owner) creates,
disables and re-keys accounts. The console's (as lienthong_console, migration 0009) may only
read them and record login attempts: a compromised console cannot mint itself an account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
import asyncpg
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from infra.console import sql

log = structlog.get_logger()

ROLES = ("auditor", "kpi_viewer")
ROLE_LABEL = {
    "auditor": "Kiểm tra viên (tra cứu, xác minh, toàn vẹn)",
    "kpi_viewer": "Xem chỉ tiêu KPI",
}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is a denial of service

# argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: t=3, 64 MiB,
# p=4): about 50 ms a check on this class of machine, run off the event loop.
_HASHER = PasswordHasher()
# Checked against when the account does not exist, so that an unknown name costs the same time
# as a wrong password and the answer cannot tell names apart.
_DUMMY = _HASHER.hash("lienthong: no such account")


class AccountError(ValueError):
    """An administrator's request that cannot be done (one line, for the CLI)."""


class LoginRefused(Exception):
    """A login that failed; `message` is what the person is told (never which part was wrong)."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.throttled = throttled


WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."
LOCKED = "Đăng nhập sai quá nhiều lần: tạm khóa, hãy thử lại sau {minutes} phút."


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    full_name: str
    roles: tuple[str, ...]
    disabled_at: datetime | None = None
    created_at: datetime | None = None

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """At most `per_account` failures per account and `per_client` per client address within
    `window`; past either, logins are refused (even with the right password) until the oldest
    failure leaves the window. A success clears the account's count."""

    per_account: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise AccountError(
            f"username {username!r}: 2-63 characters, lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return username


def check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not roles:
        raise AccountError(f"an account needs at least one role: {', '.join(ROLES)}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AccountError(f"unknown role {unknown[0]!r}: roles are {', '.join(ROLES)}")
    return tuple(dict.fromkeys(roles))


def check_password(username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
    if username.lower() in password.lower():
        raise AccountError("the password must not contain the username")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """argon2id check; an unknown account is checked against a dummy hash (same cost)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- the administrator's side (database owner) -----------------------------------------------


def _account(row: asyncpg.Record) -> Account:
    return Account(
        row["username"],
        row["full_name"],
        tuple(row["roles"]),
        row["disabled_at"],
        row["created_at"],
    )


async def add_account(
    conn: asyncpg.Connection,
    username: str,
    password: str,
    roles: list[str] | tuple[str, ...],
    full_name: str = "",
) -> Account:
    check_username(username)
    role_set = check_roles(roles)
    check_password(username, password)
    digest = await anyio.to_thread.run_sync(hash_password, password)
    try:
        row = await conn.fetchrow(sql.ADD_ACCOUNT, username, full_name, digest, list(role_set))
    except asyncpg.UniqueViolationError:
        raise AccountError(f"account {username!r} exists already") from None
    assert row is not None
    return _account(row)


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> int:
    """New password; every open session of the account is revoked. Returns sessions revoked."""
    check_password(username, password)
    digest = await anyio.to_thread.run_sync(hash_password, password)
    async with conn.transaction():
        if await conn.fetchval(sql.SET_PASSWORD, username, digest) is None:
            raise AccountError(f"no account {username!r}")
        return await _revoke_all(conn, username)


async def set_roles(
    conn: asyncpg.Connection, username: str, roles: list[str] | tuple[str, ...]
) -> Account:
    row = await conn.fetchrow(sql.SET_ROLES, username, list(check_roles(roles)))
    if row is None:
        raise AccountError(f"no account {username!r}")
    return _account(row)


async def disable_account(conn: asyncpg.Connection, username: str) -> int:
    """The account can no longer log in and its open sessions end now. Returns sessions revoked."""
    async with conn.transaction():
        if await conn.fetchval(sql.DISABLE_ACCOUNT, username) is None:
            raise AccountError(f"no account {username!r}")
        return await _revoke_all(conn, username)


async def enable_account(conn: asyncpg.Connection, username: str) -> None:
    if await conn.fetchval(sql.ENABLE_ACCOUNT, username) is None:
        raise AccountError(f"no account {username!r}")


async def list_accounts(conn: asyncpg.Connection) -> list[Account]:
    return [_account(r) for r in await conn.fetch(sql.LIST_ACCOUNTS)]


async def revoke_sessions(conn: asyncpg.Connection, username: str) -> int:
    if await conn.fetchval(sql.ACCOUNT_EXISTS, username) is None:
        raise AccountError(f"no account {username!r}")
    return await _revoke_all(conn, username)


async def _revoke_all(conn: asyncpg.Connection, username: str) -> int:
    result = await conn.execute(sql.REVOKE_SESSIONS_OF, username)
    return int(result.split()[-1])


# --- the console's side (lienthong_console) -------------------------------------------------


async def authenticate(
    conn: asyncpg.Connection,
    username: str,
    password: str,
    *,
    client: str,
    now: datetime,
    policy: LoginPolicy,
) -> Account:
    """The account if the password is right, the account enabled and no throttle applies;
    every verified attempt, right or wrong, is recorded."""
    name = username.strip().lower()[:64]
    since = now - policy.window
    failures = await conn.fetchrow(sql.RECENT_FAILURES, name, client, since)
    assert failures is not None
    if failures["account"] >= policy.per_account or failures["client"] >= policy.per_client:
        log.warning("console.login_throttled", username=name, client=client)
        raise LoginRefused(
            LOCKED.format(minutes=int(policy.window.total_seconds() // 60)), throttled=True
        )
    row = await conn.fetchrow(sql.ACCOUNT_FOR_LOGIN, name)
    digest = row["password_hash"] if row is not None else None
    ok = await anyio.to_thread.run_sync(password_matches, digest, password)
    ok = ok and row is not None and row["disabled_at"] is None
    await conn.execute(sql.RECORD_ATTEMPT, now, name, client, ok)
    if not ok or row is None:
        log.info("console.login_failed", username=name, client=client)
        raise LoginRefused(WRONG)
    return Account(row["username"], row["full_name"], tuple(row["roles"]), row["disabled_at"])
