"""The database the project starts: UTF-8 round trips, the migrations and the diacritics fold."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.services import postgres
from infra.services.migrate import load_migrations, migrate
from infra.settings import Settings


async def test_asyncpg_round_trip_keeps_vietnamese_text(db: asyncpg.Connection) -> None:
    await db.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, subject text, body bytea)")
    subject = "Kế hoạch ứng dụng công nghệ thông tin, phát triển Chính quyền điện tử"
    body = bytes(range(256))
    await db.execute("INSERT INTO t VALUES ($1, $2, $3)", 190, subject, body)
    row = await db.fetchrow("SELECT subject, body FROM t WHERE id = $1", 190)
    assert row is not None
    assert row["subject"] == subject
    assert row["body"] == body


async def test_migrate_twice_applies_nothing_the_second_time(db: asyncpg.Connection) -> None:
    # The session fixture migrated once already; a second run finds everything applied.
    assert await migrate(db) == []
    applied = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in applied] == [m.version for m in load_migrations()]


async def test_fold_removes_vietnamese_diacritics_and_case(db: asyncpg.Connection) -> None:
    folded = await db.fetchval("SELECT lt_fold($1)", "Thủ tục HÀNH CHÍNH Đống Đa")
    assert folded == "thu tuc hanh chinh dong da"


async def test_the_server_wants_a_password_from_every_role(
    settings: Settings, migrated_database: str
) -> None:
    """SCRAM, not trust: without the password file, or with a wrong password, no role gets in,
    the superuser included; with it, each login role does."""
    if settings.external_database:
        pytest.skip("the environment's own PostgreSQL decides its authentication")
    parts = urlsplit(migrated_database)
    assert parts.port is not None and "passfile=" in parts.query

    def as_role(role: str, query: str) -> str:
        return urlunsplit(parts._replace(netloc=f"{role}@127.0.0.1:{parts.port}", query=query))

    passwords = postgres.role_passwords(settings)
    for role in postgres.LOGIN_ROLES:
        for query in ("", "passfile=/nonexistent"):
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(as_role(role, query), timeout=10)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(as_role(role, ""), password=passwords[role] + "x", timeout=10)
        conn = await asyncpg.connect(as_role(role, parts.query), timeout=10)
        try:
            assert await conn.fetchval("SELECT current_user") == role
            method = (
                await conn.fetchval(
                    "SELECT auth_method FROM pg_hba_file_rules WHERE address = '127.0.0.1'"
                )
                if role == "postgres"
                else "scram-sha-256"
            )
            assert method == "scram-sha-256"
        finally:
            await conn.close()
    assert oct(postgres.passfile(settings).stat().st_mode & 0o777) == "0o600"
