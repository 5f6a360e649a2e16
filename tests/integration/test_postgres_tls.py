"""PostgreSQL over TLS, as docs/security.md tells a deployment to connect: a private cluster
with ssl=on and a server certificate from our transport PKI, reached with sslmode=verify-full."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from infra.services import postgres
from infra.settings import load_settings
from signing.pkidir import PkiDirectory
from signing.profile import TransportKind
from signing.transportpki import TransportPki


@pytest.fixture(scope="module")
def tls_database() -> Iterator[tuple[int, Path, Path, Path]]:
    """(port, our CA bundle, a foreign CA bundle, the password file)."""
    home = Path(tempfile.mkdtemp(prefix="lienthong-pgtls-"))
    home.chmod(0o755)
    settings = load_settings({"LIENTHONG_HOME": str(home), "LIENTHONG_PG_UNSAFE_FAST": "1"})
    now = datetime.now(UTC) - timedelta(days=1)
    try:
        status = postgres.start(settings)
        assert status.url
        port = urlsplit(status.url).port
        assert port is not None
        pki = PkiDirectory(home / "pki")
        pki.init(now=now)
        tp = TransportPki(pki)
        entry = tp.issue(TransportKind.SERVER, "lienthong-postgres", now=now, hosts=("127.0.0.1",))
        data = settings.postgres_dir / "data"
        shutil.copy(tp.path(entry.chain), data / "server.crt")
        shutil.copy(tp.path(entry.key), data / "server.key")
        if os.geteuid() == 0:  # the server runs as postgres and wants to own its key
            pw = pwd.getpwnam("postgres")
            for name in ("server.crt", "server.key"):
                os.chown(data / name, pw.pw_uid, pw.pw_gid)
        (data / "server.key").chmod(0o600)
        other = TransportPki(PkiDirectory(home / "other"))
        other.pki.init(now=now)
        other.ensure_ca(now=now)

        async def enable() -> None:
            conn = await asyncpg.connect(status.url)
            try:
                await conn.execute("ALTER SYSTEM SET ssl = on")
                await conn.execute("SELECT pg_reload_conf()")  # SSL settings reload on SIGHUP
            finally:
                await conn.close()

        asyncio.run(enable())
        yield port, tp.ca_bundle, other.ca_bundle, postgres.passfile(settings)
    finally:
        postgres.stop(settings)
        shutil.rmtree(home, ignore_errors=True)


async def test_verify_full_connects_over_tls(tls_database: tuple[int, Path, Path, Path]) -> None:
    port, ca, _, pw = tls_database
    url = (
        f"postgresql://postgres@127.0.0.1:{port}/lienthong"
        f"?sslmode=verify-full&sslrootcert={ca}&passfile={pw}"
    )
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()


async def test_verify_full_refuses_a_server_its_ca_did_not_certify(
    tls_database: tuple[int, Path, Path, Path],
) -> None:
    port, _, foreign, pw = tls_database
    url = (
        f"postgresql://postgres@127.0.0.1:{port}/lienthong"
        f"?sslmode=verify-full&sslrootcert={foreign}&passfile={pw}"
    )
    with pytest.raises((asyncpg.PostgresError, OSError)) as caught:
        await asyncpg.connect(url)
    assert "certificate verify failed" in str(caught.value)
