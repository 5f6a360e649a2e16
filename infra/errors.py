"""The one error type the infrastructure raises: a one-line message a person can act on."""

from __future__ import annotations

import asyncpg


class InfraError(Exception):
    """A missing prerequisite, an unreachable service or a broken state directory."""


def unmigrated(exc: Exception) -> str:
    """The one line for a database without lienthong's schema (or without that database, or
    a server without lienthong's roles, which the migrations create)."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{exc}: create it, then run `lienthong db migrate` (or fix LIENTHONG_DATABASE_URL)"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        if "does not exist" in str(exc):
            return (
                f"{exc}: run `lienthong db migrate`, which creates lienthong's roles "
                "(or set LIENTHONG_ARCHIVE_DATABASE_URL / LIENTHONG_AUDIT_DATABASE_URL)"
            )
        return f"{exc}: check the user and password (LIENTHONG_DATABASE_URL, ~/.pgpass)"
    if isinstance(exc, asyncpg.UndefinedColumnError):
        # A schema from before this version's migrations (e.g. 0011's archive_record.trace_id).
        return (
            f"the database's schema is older than this lienthong ({exc}): "
            "run `lienthong db migrate`"
        )
    return f"the database has no lienthong schema ({exc}): run `lienthong db migrate`"
