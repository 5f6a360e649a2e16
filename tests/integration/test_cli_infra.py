"""`lienthong infra | db | topics` as a person runs them: idempotent, and clear when things fail."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from infra.services import procs


def lienthong(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "--log-json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _endpoint_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("kafka", "postgres"))]


def test_infra_up_twice_is_harmless(service_env: dict[str, str]) -> None:
    first = lienthong(service_env, "infra", "up")
    second = lienthong(service_env, "infra", "up")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert _endpoint_lines(first.stdout) == _endpoint_lines(second.stdout)
    assert len(_endpoint_lines(first.stdout)) == 2
    status = lienthong(service_env, "infra", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "crashed" not in status.stdout


def test_db_migrate_twice(service_env: dict[str, str]) -> None:
    first = lienthong(service_env, "db", "migrate")
    second = lienthong(service_env, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_topics_ensure_twice(service_env: dict[str, str]) -> None:
    first = lienthong(service_env, "topics", "ensure")
    assert first.returncode == 0, first.stderr
    second = lienthong(service_env, "topics", "ensure")
    assert second.returncode == 0, second.stderr
    assert " 0 created" in second.stdout
    assert "submissions" in first.stdout


@pytest.fixture
def private_home(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A second state directory with its own broker; PostgreSQL is the session's (external)."""
    home = Path(tempfile.mkdtemp(prefix="lienthong-private-"))
    home.chmod(0o755)
    # Its own plaintext broker: none of the session's Kafka settings (the secure cluster's).
    env = {k: v for k, v in service_env.items() if not k.startswith("LIENTHONG_KAFKA_")}
    env["LIENTHONG_HOME"] = str(home)
    if "LIENTHONG_DATABASE_URL" not in env:
        ep = lienthong(service_env, "infra", "env")
        assert ep.returncode == 0, ep.stderr
        # As a shell reads the exports (values are quoted).
        url = next(
            shlex.split(line)[1].split("=", 1)[1]
            for line in ep.stdout.splitlines()
            if "LIENTHONG_DATABASE_URL" in line
        )
        env["LIENTHONG_DATABASE_URL"] = url
    try:
        yield env
    finally:
        lienthong(env, "infra", "down")
        shutil.rmtree(home, ignore_errors=True)


def test_status_reports_a_killed_broker_and_up_replaces_it(private_home: dict[str, str]) -> None:
    up = lienthong(private_home, "infra", "up")
    assert up.returncode == 0, up.stderr
    state = json.loads((Path(private_home["LIENTHONG_HOME"]) / "kafka" / "state.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.pid_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)

    status = lienthong(private_home, "infra", "status")
    assert status.returncode == 1
    assert "crashed" in status.stdout
    assert f"pid {state['pid']}" in status.stdout

    again = lienthong(private_home, "infra", "up")
    assert again.returncode == 0, again.stderr
    assert "kafka.crashed" in again.stderr  # reported, not silently reused
    restarted = json.loads(
        (Path(private_home["LIENTHONG_HOME"]) / "kafka" / "state.json").read_text()
    )
    assert restarted["pid"] != state["pid"]
    assert procs.pid_alive(restarted["pid"])


def _closed_port() -> int:
    return procs.free_port()


def test_wrong_database_url_is_one_line_naming_the_setting(service_env: dict[str, str]) -> None:
    env = dict(service_env)
    env["LIENTHONG_DATABASE_URL"] = f"postgresql://postgres:secret@127.0.0.1:{_closed_port()}/x"
    started = time.monotonic()
    result = lienthong(env, "db", "migrate", timeout=30)
    assert time.monotonic() - started < 15
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: LIENTHONG_DATABASE_URL")
    assert "127.0.0.1:" in lines[0]
    assert "secret" not in lines[0]


def test_unreachable_bootstrap_is_one_line_naming_the_setting(service_env: dict[str, str]) -> None:
    env = dict(service_env)
    address = f"127.0.0.1:{_closed_port()}"
    env["LIENTHONG_KAFKA_BOOTSTRAP"] = address
    started = time.monotonic()
    result = lienthong(env, "topics", "ensure", timeout=30)
    assert time.monotonic() - started < 15
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "LIENTHONG_KAFKA_BOOTSTRAP" in lines[0]
    assert address in lines[0]


def test_a_taken_port_is_reported(service_env: dict[str, str]) -> None:
    home = Path(tempfile.mkdtemp(prefix="lienthong-port-"))
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        # Its own plaintext broker: none of the session's Kafka settings (the secure cluster's).
        env = {k: v for k, v in service_env.items() if not k.startswith("LIENTHONG_KAFKA_")}
        env["LIENTHONG_HOME"] = str(home)
        env["LIENTHONG_KAFKA_PORT"] = str(holder.getsockname()[1])
        result = lienthong(env, "infra", "up", timeout=60)
        assert result.returncode == 2
        assert f"port {holder.getsockname()[1]} for Kafka is already taken" in result.stderr
    finally:
        holder.close()
        shutil.rmtree(home, ignore_errors=True)


def test_the_version_prints_and_exits(service_env: dict[str, str]) -> None:
    done = lienthong(service_env, "--version")
    assert done.returncode == 0 and done.stdout.startswith("lienthong ")


async def test_an_unmigrated_database_names_the_fix_in_one_line(
    service_env: dict[str, str], database_url: str
) -> None:
    import asyncpg

    name = f"empty_{os.getpid()}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    empty = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    env = {**service_env, "LIENTHONG_DATABASE_URL": empty, "LIENTHONG_AUDIT_DATABASE_URL": empty}
    for args in (("kpi", "--period", "2026-10"), ("audit", "search", "--text", "ke hoach")):
        done = lienthong(env, *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "run `lienthong db migrate`" in lines[0], done.stderr


def test_a_bootstrap_list_whose_first_broker_is_down_is_reachable(
    service_env: dict[str, str], bootstrap: str
) -> None:
    """The probe tries every address: a cluster with one broker down is still up."""
    env = dict(service_env)
    dead = f"127.0.0.1:{_closed_port()}"
    env["LIENTHONG_KAFKA_BOOTSTRAP"] = f"{dead},{bootstrap}"
    result = lienthong(env, "infra", "status", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "external" in result.stdout
    env["LIENTHONG_KAFKA_BOOTSTRAP"] = f"{dead},127.0.0.1:{_closed_port()}"
    result = lienthong(env, "topics", "ensure", timeout=30)
    assert result.returncode == 2
    assert dead in result.stderr  # every address and why it failed
