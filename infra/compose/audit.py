"""The auditors' connection: the read-only auditor role, and every question logged before it
is answered."""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from consumers.audit import (
    record_access,
)
from infra import services
from infra.errors import InfraError, unmigrated
from infra.settings import load_settings

AUDITOR_ROLE = "lienthong_auditor"
AUDIT_URL_ENV = "LIENTHONG_AUDIT_DATABASE_URL"
T = TypeVar("T")


def auditor_url(database_url: str, override: str | None = None) -> str:
    """Auditors never use the platform's own role: the same server and database, as the
    read-only auditor role (its credentials come from the server's auth rules or ~/.pgpass),
    unless LIENTHONG_AUDIT_DATABASE_URL names a connection of its own."""
    if override:
        return override
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{AUDITOR_ROLE}@{host}"))


def _audit_url() -> str:
    override = os.environ.get(AUDIT_URL_ENV)
    # With an explicit URL, nothing about the platform's services needs to be known.
    return override if override else auditor_url(services.database_url(load_settings()))


async def _connect(url: str) -> asyncpg.Connection:
    try:
        # Searches differ by filter values of very different selectivity (one commune vs. the
        # city): plan each with its values rather than reusing a generic plan.
        return await asyncpg.connect(
            url, timeout=10, server_settings={"plan_cache_mode": "force_custom_plan"}
        )
    except Exception as exc:  # asyncpg raises many types for one cause: say it in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InfraError(f"cannot connect to the archive as an auditor: {first}") from None


def run_audited(
    who: str | None, command: str, args: dict[str, Any], work: Callable[[Any], Awaitable[T]]
) -> T:
    """Log who asked what, then answer; the log entry is committed before any answer exists."""

    # Resolved before the event loop runs: finding the database may probe it (asyncio.run).
    url = _audit_url()

    async def go() -> T:
        conn = await _connect(url)
        try:
            await record_access(conn, who=who or _default_who(), command=command, args=args)
            return await work(conn)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
            raise InfraError(unmigrated(exc)) from None
        except asyncpg.PostgresError as exc:
            raise InfraError(f"archive refused: {exc}") from None
        finally:
            await conn.close()

    return asyncio.run(go())


def _default_who() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:
        return ""
