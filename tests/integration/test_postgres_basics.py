"""The database the project starts: UTF-8 round trips, the migrations and the diacritics fold."""

from __future__ import annotations

import asyncpg

from infra.services.migrate import load_migrations, migrate


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
