"""The one error type the infrastructure raises: a one-line message a person can act on."""

from __future__ import annotations

import asyncpg


class InfraError(Exception):
    """A missing prerequisite, an unreachable service or a broken state directory."""


def unmigrated(exc: Exception) -> str:
    """The one line for a database without lienthong's schema (or without that database)."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{exc}: create it, then run `lienthong db migrate` (or fix LIENTHONG_DATABASE_URL)"
    return f"the database has no lienthong schema ({exc}): run `lienthong db migrate`"
