"""Remembered ports survive a crash: a port whose old connections sit in TIME_WAIT is free for the
services (they bind with SO_REUSEADDR), one somebody listens on is taken."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.errors import InfraError
from infra.services import kafka, postgres, procs
from infra.settings import load_settings


def _listener() -> socket.socket:
    # As the broker (Java's server sockets) and PostgreSQL open theirs.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    return srv


def _states(port: int) -> list[str]:
    out = subprocess.run(
        ["ss", "-tanH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture
def time_wait_port() -> Iterator[int]:
    """A port whose listener is gone and whose connection the server side closed first (as a
    killed broker's kernel does): that side stays in TIME_WAIT for a minute."""
    srv = _listener()
    port = int(srv.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = srv.accept()
    accepted.close()  # the server closes first: TIME_WAIT is on its side, on `port`
    client.recv(1)
    client.close()
    srv.close()
    states = _states(port)
    if "TIME-WAIT" not in states:
        pytest.skip(f"no TIME_WAIT socket observable on this machine ({states})")
    yield port


def test_a_port_in_time_wait_is_free(time_wait_port: int) -> None:
    assert procs.port_in_use(time_wait_port) is False
    # ... and truly so: a service's listener binds it.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", time_wait_port))
    srv.close()


def test_a_listening_port_is_taken() -> None:
    with _listener() as srv:
        assert procs.port_in_use(srv.getsockname()[1]) is True


def test_a_port_bound_without_listening_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        assert procs.port_in_use(held.getsockname()[1]) is True


def test_remembered_ports_in_time_wait_are_reused_after_a_crash(
    time_wait_port: int, tmp_path: Path
) -> None:
    settings = load_settings({"LIENTHONG_HOME": str(tmp_path)})
    other = procs.free_port()
    previous = {"broker_port": time_wait_port, "controller_port": other}
    assert kafka._pick_ports(settings, previous) == (time_wait_port, other)
    assert postgres._choose_port(settings, time_wait_port) == time_wait_port


def test_remembered_ports_someone_listens_on_are_replaced(tmp_path: Path) -> None:
    settings = load_settings({"LIENTHONG_HOME": str(tmp_path)})
    with _listener() as srv, _listener() as srv2:
        taken, taken2 = srv.getsockname()[1], srv2.getsockname()[1]
        broker, controller = kafka._pick_ports(
            settings, {"broker_port": taken, "controller_port": taken2}
        )
        assert taken not in (broker, controller) and taken2 not in (broker, controller)
        assert broker != controller
        assert postgres._choose_port(settings, taken) != taken
        fixed = load_settings({"LIENTHONG_HOME": str(tmp_path), "LIENTHONG_KAFKA_PORT": str(taken)})
        with pytest.raises(InfraError, match=f"port {taken} for Kafka is already taken"):
            kafka._pick_ports(fixed, None)


def test_a_configured_port_in_time_wait_is_accepted(time_wait_port: int, tmp_path: Path) -> None:
    env = {"LIENTHONG_HOME": str(tmp_path), "LIENTHONG_POSTGRES_PORT": str(time_wait_port)}
    assert postgres._choose_port(load_settings(env), None) == time_wait_port


def test_free_ports_stay_out_of_the_ephemeral_range() -> None:
    """Outgoing connections take their source ports from the ephemeral range: a listening port
    chosen there may be gone before the server binds it."""
    low, _high = procs._ephemeral_range()
    ports = {procs.free_port() for _ in range(50)}
    if low > procs.LISTEN_PORTS[1]:
        assert all(procs.LISTEN_PORTS[0] <= p <= procs.LISTEN_PORTS[1] for p in ports)
    assert not any(procs.port_in_use(p) for p in ports)
    assert len(ports) > 40  # drawn at random, not one port over and over
