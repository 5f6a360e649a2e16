"""Small process and port helpers shared by the broker and database launchers."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.errors import InfraError

# Listening ports are drawn below the kernel's ephemeral range: a port the kernel hands out for
# port 0 is also one it hands out as the source port of an outgoing connection, and a client
# connecting between our choice and the server's bind took it ("Address already in use" when a
# 3-node cluster started while the test suite was busy).
LISTEN_PORTS = (20000, 32000)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, outside the ephemeral range when the system leaves room."""
    low, high = LISTEN_PORTS
    ephemeral = _ephemeral_range()
    if ephemeral[0] <= high and ephemeral[1] >= low:  # overlapping ranges: let the kernel pick
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(200):
        port = random.randint(low, high)
        if not port_in_use(port):
            return port
    raise OSError(f"no free port between {low} and {high} on 127.0.0.1")


def port_in_use(port: int) -> bool:
    """True when something listens on (or holds) 127.0.0.1:port.

    SO_REUSEADDR, as the broker and PostgreSQL set on their own listening sockets: without it a
    port whose old connections sit in TIME_WAIT (for a minute after a crash or a kill) looks
    taken, and `infra up` moved the services to new ports the clients did not know."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) is dead for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: the broker gets its chance to shut down cleanly."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until_answering(
    proc: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    *,
    what: str,
    address: str,
    log: Path,
    output: Path,
    timeout_s: float,
    poll_s: float,
) -> None:
    """Poll a just-started server until `answers()`; a one-line InfraError naming its log when it
    exits first (with the last lines of `output`) or stays silent for `timeout_s` (then it is
    stopped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(
                f"{what} exited with code {proc.returncode} while starting; "
                f"see {log}: {tail(output, 3)}"
            )
        if answers():
            return
        time.sleep(poll_s)
    terminate(proc.pid, timeout=10)
    raise InfraError(f"{what} did not answer on {address} within {timeout_s:.0f}s; see {log}")
