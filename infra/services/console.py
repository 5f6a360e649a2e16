"""The console as a background service of this home: started by `make demo` (or by hand), listed
by `infra status`, stopped by `infra down` like the broker and the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from infra.errors import InfraError
from infra.services import procs
from infra.settings import Settings

log = structlog.get_logger()
READY_TIMEOUT_S = 60.0
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ConsoleStatus:
    state: str  # running | stopped | crashed
    url: str | None
    pid: int | None = None
    detail: str = ""


def _dir(settings: Settings) -> Path:
    return settings.home / "console"


def _state_file(settings: Settings) -> Path:
    return _dir(settings) / "state.json"


def log_file(settings: Settings) -> Path:
    return _dir(settings) / "console.log"


def _ours(pid: int, port: int) -> bool:
    line = procs.cmdline(pid)
    return "infra.cli console serve" in line and f"--port {port}" in line


def status(settings: Settings) -> ConsoleStatus:
    state = procs.read_state(_state_file(settings))
    if not state or not state.get("pid"):
        return ConsoleStatus("stopped", None)
    pid, port = int(state["pid"]), int(state["port"])
    url = f"http://{HOST}:{port}/"
    if not (procs.pid_alive(pid) and _ours(pid, port)):
        return ConsoleStatus(
            "crashed", url, pid, f"console pid {pid} exited; see {log_file(settings)}"
        )
    return ConsoleStatus("running", url, pid)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(
    settings: Settings,
    *,
    database_url: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> ConsoleStatus:
    """(Re)start the console on 127.0.0.1, serving `database_url` (lienthong_console's) with
    the process environment plus `env` (the demo's PKI directory and topic prefix)."""
    stop(settings)
    previous = procs.read_state(_state_file(settings)) or {}
    remembered = previous.get("port")
    if port is None:
        port = settings.console_port
    if port is not None and procs.port_in_use(port):
        raise InfraError(f"port {port} for the console is already taken on {HOST}")
    if port is None:
        port = (
            remembered
            if isinstance(remembered, int) and not procs.port_in_use(remembered)
            else procs.free_port()
        )
    _dir(settings).mkdir(parents=True, exist_ok=True)
    # The database URL travels in the environment, not on the command line: a password in it
    # would show in every `ps`.
    child_env = {
        **os.environ,
        **(env or {}),
        "LIENTHONG_HOME": str(settings.home),
        "LIENTHONG_CONSOLE_DATABASE_URL": database_url,
    }
    out = open(log_file(settings), "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.cli",
            "console",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        stdout=out,
        stderr=out,
        stdin=subprocess.DEVNULL,
        env=child_env,
        start_new_session=True,
    )
    out.close()
    procs.write_state(
        _state_file(settings), {"pid": proc.pid, "port": port, "started_at": time.time()}
    )
    procs.wait_until_answering(
        proc,
        lambda: _answers(port),
        what="the console",
        address=f"{HOST}:{port}",
        log=log_file(settings),
        output=log_file(settings),
        timeout_s=READY_TIMEOUT_S,
        poll_s=0.3,
    )
    log.info("console.started", url=f"http://{HOST}:{port}/", pid=proc.pid)
    return ConsoleStatus("running", f"http://{HOST}:{port}/", proc.pid)


def stop(settings: Settings) -> bool:
    state = procs.read_state(_state_file(settings))
    if not state or not state.get("pid"):
        return False
    pid, port = int(state["pid"]), int(state["port"])
    stopped = False
    if procs.pid_alive(pid) and _ours(pid, port):
        procs.terminate(pid, timeout=10)
        stopped = True
    procs.write_state(_state_file(settings), {**state, "pid": None})
    return stopped
