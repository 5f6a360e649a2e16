"""`lienthong console serve|start|stop` and `console user|session ...`: the web console and its
accounts (docs/console.md)."""

from __future__ import annotations

import asyncio
import getpass
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import typer
from rich.table import Table

from infra import services
from infra.cli.audit import WITNESS, WITNESSES, witness_rule
from infra.cli.common import clean_errors, out
from infra.console import (
    ROLES,
    AccountError,
    LoginPolicy,
    SessionPolicy,
    add_account,
    console_config,
    console_url,
    create_app,
    disable_account,
    enable_account,
    list_accounts,
    list_sessions,
    revoke_sessions,
    set_password,
    set_roles,
)
from infra.console.config import CONSOLE_URL_ENV
from infra.errors import InfraError
from infra.services import console as console_service
from infra.settings import load_settings

console_app = typer.Typer(
    help="The auditors' and KPI viewers' web console, and its accounts.", no_args_is_help=True
)
user_app = typer.Typer(help="Console accounts (as the database owner).", no_args_is_help=True)
session_app = typer.Typer(help="Console sessions: list and revoke.", no_args_is_help=True)
T = TypeVar("T")

ADMIN_URL = typer.Option(
    None,
    "--database-url",
    help="The database as its owner (default: this home's PostgreSQL or LIENTHONG_DATABASE_URL).",
)


def _admin(url: str | None, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on the owner's connection; accounts are written here, never by the console."""
    target = url or services.database_url(load_settings())

    async def go() -> T:
        try:
            conn = await asyncpg.connect(target, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise InfraError(f"cannot connect to the database: {exc}") from None
        try:
            return await work(conn)
        except AccountError as exc:
            raise ValueError(str(exc)) from None
        finally:
            await conn.close()

    return asyncio.run(go())


def _read_password(username: str, from_stdin: bool, generate: bool) -> tuple[str, bool]:
    """The new password, and whether it was generated (then it is printed once)."""
    if generate and from_stdin:
        raise ValueError("--generate or --password-stdin, not both")
    if generate:
        return secrets.token_urlsafe(12), True
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    first = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first, False


ROLE = typer.Option(..., "--role", help=f"A role: {', '.join(ROLES)}; repeat for several.")
PASSWORD_STDIN = typer.Option(False, "--password-stdin", help="Read the password from stdin.")
GENERATE = typer.Option(False, "--generate", help="Generate a password and print it once.")


@user_app.command("add")
@clean_errors
def user_add(
    username: str = typer.Argument(..., help="Lower-case login name, e.g. thanh.tra"),
    role: list[str] = ROLE,
    full_name: str = typer.Option("", "--name", help="The person's name, shown in the console."),
    password_stdin: bool = PASSWORD_STDIN,
    generate: bool = GENERATE,
    database_url: str | None = ADMIN_URL,
) -> None:
    """Create an account (argon2id hash of its password, stored in PostgreSQL)."""
    password, generated = _read_password(username, password_stdin, generate)
    account = _admin(
        database_url, lambda c: add_account(c, username, password, role, full_name=full_name)
    )
    out.print(f"account {account.username}: {', '.join(account.roles)}")
    if generated:
        print(f"password: {password}")


@user_app.command("list")
@clean_errors
def user_list(database_url: str | None = ADMIN_URL) -> None:
    """Every account, its roles, and whether it is disabled."""
    accounts = _admin(database_url, list_accounts)
    table = Table("username", "name", "roles", "created", "disabled")
    for a in accounts:
        table.add_row(
            a.username,
            a.full_name,
            ", ".join(a.roles),
            f"{a.created_at:%Y-%m-%d %H:%M}" if a.created_at else "",
            f"{a.disabled_at:%Y-%m-%d %H:%M}" if a.disabled_at else "",
        )
    out.print(table)


@user_app.command("disable")
@clean_errors
def user_disable(username: str = typer.Argument(...), database_url: str | None = ADMIN_URL) -> None:
    """Refuse the account's logins and end its open sessions now."""
    revoked = _admin(database_url, lambda c: disable_account(c, username))
    out.print(f"account {username} disabled; {revoked} open sessions revoked")


@user_app.command("enable")
@clean_errors
def user_enable(username: str = typer.Argument(...), database_url: str | None = ADMIN_URL) -> None:
    """Let a disabled account log in again."""
    _admin(database_url, lambda c: enable_account(c, username))
    out.print(f"account {username} enabled")


@user_app.command("passwd")
@clean_errors
def user_passwd(
    username: str = typer.Argument(...),
    password_stdin: bool = PASSWORD_STDIN,
    generate: bool = GENERATE,
    database_url: str | None = ADMIN_URL,
) -> None:
    """Set a new password; the account's open sessions are revoked."""
    password, generated = _read_password(username, password_stdin, generate)
    revoked = _admin(database_url, lambda c: set_password(c, username, password))
    out.print(f"password of {username} changed; {revoked} open sessions revoked")
    if generated:
        print(f"password: {password}")


@user_app.command("roles")
@clean_errors
def user_roles(
    username: str = typer.Argument(...),
    role: list[str] = ROLE,
    database_url: str | None = ADMIN_URL,
) -> None:
    """Replace the account's roles (effective at its next request)."""
    account = _admin(database_url, lambda c: set_roles(c, username, role))
    out.print(f"account {account.username}: {', '.join(account.roles)}")


@session_app.command("list")
@clean_errors
def session_list(
    username: str | None = typer.Argument(None), database_url: str | None = ADMIN_URL
) -> None:
    """The newest sessions (all accounts, or one)."""
    rows = _admin(database_url, lambda c: list_sessions(c, username))
    table = Table("username", "opened", "last seen", "expires", "revoked", "client")
    for r in rows:
        table.add_row(
            r.username,
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.last_seen_at:%Y-%m-%d %H:%M}",
            f"{r.expires_at:%Y-%m-%d %H:%M}",
            f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
            r.client,
        )
    out.print(table)


@session_app.command("revoke")
@clean_errors
def session_revoke(
    username: str = typer.Argument(...), database_url: str | None = ADMIN_URL
) -> None:
    """End every open session of an account now (its next request goes to the login page)."""
    revoked = _admin(database_url, lambda c: revoke_sessions(c, username))
    out.print(f"{revoked} open sessions of {username} revoked")


def _serve_url(database_url: str | None) -> str:
    """--database-url, else LIENTHONG_CONSOLE_DATABASE_URL, else this home's PostgreSQL as
    lienthong_console."""
    return (
        database_url
        or os.environ.get(CONSOLE_URL_ENV)
        or console_url(services.database_url(load_settings()))
    )


async def _check_database(url: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InfraError(f"cannot connect to the archive as the console: {first}") from None
    try:
        await conn.fetchval("SELECT count(*) FROM console_account WHERE false")
    except asyncpg.UndefinedTableError:
        raise InfraError(
            "the database has no console tables: run `lienthong db migrate` (migration 0009)"
        ) from None
    except asyncpg.InsufficientPrivilegeError as exc:
        raise InfraError(f"the console's database role lacks its grants (0009): {exc}") from None
    finally:
        await conn.close()


@console_app.command("serve")
@clean_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="The archive as lienthong_console (default: LIENTHONG_CONSOLE_DATABASE_URL, or "
        "this home's PostgreSQL with that role).",
    ),
    witness: list[str] = WITNESS,
    witnesses: int | None = WITNESSES,
    idle_minutes: float = typer.Option(30, "--idle-minutes", help="Idle session limit."),
    max_hours: float = typer.Option(8, "--max-hours", help="Absolute session limit."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve HTTPS: certificate."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Serve HTTPS: its key."),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Secure cookies over HTTP (behind a TLS proxy)."
    ),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="A host name the console answers to (repeat; default: any)."
    ),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="A reverse proxy's address whose X-Forwarded-For is believed (repeat).",
    ),
) -> None:
    """Serve the console in the foreground (`console start` runs it in the background)."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    settings = load_settings()
    url = _serve_url(database_url)
    asyncio.run(_check_database(url))
    config = console_config(
        settings,
        url,
        witnesses=witness_rule(witness, witnesses),
        sessions=SessionPolicy(
            idle=timedelta(minutes=idle_minutes), absolute=timedelta(hours=max_hours)
        ),
        login=LoginPolicy(),
        secure_cookies=secure_cookies,
        allowed_hosts=tuple(allowed_host),
        trusted_proxies=tuple(trusted_proxy),
    )
    options: dict[str, Any] = {}
    if tls_cert is not None and tls_key is not None:
        options = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)}
    scheme = "https" if options else "http"
    print(f"console: {scheme}://{host}:{port}/", flush=True)
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
        **options,
    )


@console_app.command("start")
@clean_errors
def start() -> None:
    """Run the console in the background for this home's archive (stopped by `infra down`)."""
    settings = load_settings()
    status = console_service.start(
        settings, database_url=console_url(services.database_url(settings))
    )
    out.print(f"console {status.url} (pid {status.pid})")


@console_app.command("stop")
@clean_errors
def stop() -> None:
    """Stop the background console."""
    stopped = console_service.stop(load_settings())
    out.print("console stopped" if stopped else "the console was not running")


def register(app: typer.Typer) -> None:
    console_app.add_typer(user_app, name="user")
    console_app.add_typer(session_app, name="session")
    app.add_typer(console_app, name="console")
