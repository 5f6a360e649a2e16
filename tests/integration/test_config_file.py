"""The configuration file reaches real services: `lienthong --config FILE` connects where the
file says, the environment wins over it, and a bad file stops the command before any service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg

from infra.services.procs import free_port


def lienthong(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "--log-json", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _toml(path: Path, database_url: str, bootstrap: str, home: Path) -> Path:
    path.write_text(
        f'home = "{home}"\n\n[kafka]\nbootstrap = "{bootstrap}"\n\n'
        f'[database]\nurl = "{database_url}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


async def test_the_file_points_the_commands_at_the_services(
    service_env: dict[str, str], migrated_database: str, bootstrap: str, tmp_path: Path
) -> None:
    config = _toml(tmp_path / "lienthong.toml", migrated_database, bootstrap, tmp_path / "home")
    # Nothing about the services in the environment: only the file says where they are.
    env = {k: v for k, v in service_env.items() if not k.startswith("LIENTHONG_")}
    env["LIENTHONG_CONFIG"] = str(config)
    migrated = lienthong(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "database is up to date" in migrated.stdout
    conn = await asyncpg.connect(migrated_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 7
    finally:
        await conn.close()
    # The environment wins: a database nobody listens on, named in the environment, is used
    # (and fails in one line), although the file names the right one.
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/lienthong"
    overridden = lienthong({**env, "LIENTHONG_DATABASE_URL": dead}, "db", "migrate")
    assert overridden.returncode != 0
    assert "Traceback" not in overridden.stderr
    shown = lienthong({**env, "LIENTHONG_DATABASE_URL": dead}, "config", "show")
    assert "LIENTHONG_DATABASE_URL             env      " + dead in shown.stdout


def test_a_bad_file_stops_before_any_service(service_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text('[database]\nurl = "postgresql://x@h/db\n', encoding="utf-8")
    env = {k: v for k, v in service_env.items() if not k.startswith("LIENTHONG_")}
    done = lienthong(env, "--config", str(config), "db", "migrate")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {config}: not valid TOML:")
    assert len(done.stderr.strip().splitlines()) == 1
