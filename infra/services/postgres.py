"""Runs the project's own throwaway PostgreSQL cluster from the machine's server binaries."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import structlog

from infra.errors import InfraError
from infra.services import procs
from infra.settings import Settings

log = structlog.get_logger()

DATABASE = "lienthong"
MIN_VERSION = 15
INSTALL_HINT = "install postgresql (apt-get install -y postgresql), or set LIENTHONG_PG_BIN"


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    state: str  # running | stopped | crashed
    url: str | None
    detail: str = ""


def find_bindir() -> Path:
    """The newest PostgreSQL >= 15 server binaries on the machine."""
    explicit = os.environ.get("LIENTHONG_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _major(p.parent.name),
        reverse=True,
    )
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)
    for bindir in candidates:
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            out = subprocess.run(
                [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
            ).stdout
            match = re.search(r"(\d+)", out)
            if match and int(match.group(1)) >= MIN_VERSION:
                return bindir
    raise InfraError(f"PostgreSQL {MIN_VERSION}+ server binaries not found: {INSTALL_HINT}")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def _as_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user instead.
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise InfraError(
            "running as root but no 'postgres' user exists: "
            "install postgresql (it creates the user) or run as a normal user"
        ) from None
    return ["runuser", "-u", "postgres", "--", *cmd]


def _prepare_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
        if not _postgres_can_write(path):
            _let_postgres_through(path)
        if not _postgres_can_write(path):
            raise InfraError(
                f"the postgres user cannot reach {path}: make its parent directories "
                "traversable (chmod o+x) or set LIENTHONG_HOME elsewhere"
            )


def _postgres_can_write(path: Path) -> bool:
    return subprocess.run(_as_owner(["test", "-w", str(path)]), check=False).returncode == 0


def _let_postgres_through(path: Path) -> None:
    """A checkout made with `mktemp -d` (mode 0700) keeps the postgres user out of its own
    state directory: grant search (not read) on the directories between it and the working
    directory, ours to change. Directories above the working directory are left as they are."""
    cwd = Path.cwd().resolve()
    for parent in path.resolve().parents:
        if not parent.is_relative_to(cwd):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
            log.info("postgres.dir_made_traversable", path=str(parent))


def _state_file(settings: Settings) -> Path:
    return settings.postgres_dir / "state.json"


# Who logs in to the project's own server, each with a password of its own (scram-sha-256,
# never trust): the superuser the tools and migrations use, the archiver and the auditors
# (migrations 0002 and 0007 give them their rights). The passwords are generated once and kept
# in a libpq password file beside the data directory (0600); the URLs name that file
# (`?passfile=`), so no password appears in a URL, a process list or a log.
LOGIN_ROLES = ("postgres", "lienthong_archiver", "lienthong_auditor")
HBA = """# Written by lienthong (infra/services/postgres.py): passwords (SCRAM) over TCP only.
local   all  all                 scram-sha-256
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
"""


def passfile(settings: Settings) -> Path:
    return settings.postgres_dir / "pgpass"


def url_for(port: int, password_file: Path) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}?passfile={quote(str(password_file))}"


def role_passwords(settings: Settings) -> dict[str, str]:
    """Every login role's password, generated the first time and kept in the password file."""
    path = passfile(settings)
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            fields = line.split(":")
            if len(fields) == 5 and fields[:3] == ["*", "*", "*"]:
                known[fields[3]] = fields[4]
    missing = [role for role in LOGIN_ROLES if role not in known]
    if missing:
        known |= {role: secrets.token_urlsafe(24) for role in missing}
        text = "".join(f"*:*:*:{role}:{pw}\n" for role, pw in known.items())
        tmp = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return known


def _server_running(bindir: Path, data: Path) -> bool:
    if not (data / "PG_VERSION").exists():
        return False
    out = subprocess.run(
        _as_owner([str(bindir / "pg_ctl"), "status", "-D", str(data)]),
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0


def status(settings: Settings) -> DatabaseStatus:
    state = procs.read_state(_state_file(settings))
    if not state or not state.get("running"):
        return DatabaseStatus("stopped", None)
    url = url_for(int(state["port"]), passfile(settings))
    data = settings.postgres_dir / "data"
    try:
        bindir = find_bindir()
    except InfraError as exc:
        return DatabaseStatus("crashed", url, str(exc))
    if not _server_running(bindir, data):
        return DatabaseStatus(
            "crashed", url, f"postgres is not running; see {settings.postgres_dir / 'postgres.log'}"
        )
    return DatabaseStatus("running", url)


def start(settings: Settings) -> DatabaseStatus:
    current = status(settings)
    if current.state == "running":
        return current
    if current.state == "crashed":
        log.warning("postgres.crashed", detail=current.detail, action="starting again")
    bindir = find_bindir()
    pdir = settings.postgres_dir
    data = pdir / "data"
    _prepare_dir(pdir)
    passwords = role_passwords(settings)
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        pwfile = pdir / ".initdb-password"
        _write_for_owner(pwfile, passwords["postgres"] + "\n")
        try:
            init = subprocess.run(
                _as_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                        "--no-sync",
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if init.returncode != 0:
            raise InfraError(f"initdb failed: {init.stderr.strip()[-300:]}")
    previous = procs.read_state(_state_file(settings)) or {}
    port = _choose_port(settings, previous.get("port"))
    options = [
        "-c listen_addresses=127.0.0.1",
        f"-p {port}",
        # TCP only: a Unix socket path under a deep state directory can exceed 107 bytes.
        "-c unix_socket_directories=''",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
    ]
    if settings.postgres_unsafe_fast:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    logfile = pdir / "postgres.log"
    started = subprocess.run(
        _as_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(logfile),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(options),
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        raise InfraError(
            f"PostgreSQL did not start on port {port}: "
            f"{procs.tail(logfile, 3) or started.stderr.strip()}"
        )
    procs.write_state(
        _state_file(settings), {"running": True, "port": port, "started_at": time.time()}
    )
    url = url_for(port, passfile(settings))
    asyncio.run(_ensure_access(settings, port, passwords))
    log.info("postgres.started", url=url)
    return DatabaseStatus("running", url)


def _choose_port(settings: Settings, remembered: object) -> int:
    if settings.postgres_port is not None:
        if procs.port_in_use(settings.postgres_port):
            raise InfraError(f"port {settings.postgres_port} for PostgreSQL is already taken")
        return settings.postgres_port
    if isinstance(remembered, int) and not procs.port_in_use(remembered):
        return remembered
    return procs.free_port()


async def _ensure_access(settings: Settings, port: int, passwords: dict[str, str]) -> None:
    """The database, and every login role with its password. A server made before passwords
    (its pg_hba.conf said trust) is moved to SCRAM here: passwords first, then the rules."""
    import asyncpg

    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=port,
        user="postgres",
        database="postgres",
        passfile=str(passfile(settings)),
        timeout=10,
    )
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f"CREATE DATABASE \"{DATABASE}\" ENCODING 'UTF8' TEMPLATE template0")
        for role, password in passwords.items():
            if role not in LOGIN_ROLES:
                continue
            ident = await conn.fetchval("SELECT quote_ident($1)", role)
            literal = await conn.fetchval("SELECT quote_literal($1)", password)
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"CREATE ROLE {ident} LOGIN")
            await conn.execute(f"ALTER ROLE {ident} PASSWORD {literal}")
        hba = settings.postgres_dir / "data" / "pg_hba.conf"
        if hba.read_text("utf-8") != HBA:
            _write_for_owner(hba, HBA)
            await conn.execute("SELECT pg_reload_conf()")
            log.info("postgres.auth", method="scram-sha-256", was="trust")
    finally:
        await conn.close()


def _write_for_owner(path: Path, text: str) -> None:
    """A 0600 file the postgres user (who runs the server) owns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def stop(settings: Settings) -> bool:
    state = procs.read_state(_state_file(settings))
    if not state or not state.get("running"):
        return False
    data = settings.postgres_dir / "data"
    bindir = find_bindir()
    was_running = _server_running(bindir, data)
    if was_running:
        subprocess.run(
            _as_owner(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"]
            ),
            capture_output=True,
            check=False,
        )
    procs.write_state(_state_file(settings), {**state, "running": False})
    return was_running
