"""Session fixtures: the real Kafka broker and PostgreSQL, started once per test run."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from infra import services
from infra.services import Endpoints
from infra.services.migrate import migrate
from infra.settings import Settings, load_settings
from tests import support

# Which Kafka the session runs on: "secure" (default) is the 3-node TLS+ACL cluster, as in
# production; "single" the one plaintext broker, quicker to start when iterating on a test.
TEST_BUS = os.environ.get("LIENTHONG_TEST_BUS", "secure")


@pytest.fixture(scope="session")
def service_env() -> Iterator[dict[str, str]]:
    """Environment under which `lienthong` commands see the test services.

    With LIENTHONG_KAFKA_BOOTSTRAP and LIENTHONG_DATABASE_URL set, those are used and nothing is
    started; otherwise a private state directory gets its own broker and cluster, stopped at
    the end.
    """
    env = dict(os.environ)
    home = Path(tempfile.mkdtemp(prefix="lienthong-test-"))
    home.chmod(0o755)  # the postgres user must be able to reach its data directory
    env["LIENTHONG_HOME"] = str(home)
    env.setdefault("LIENTHONG_PG_UNSAFE_FAST", "1")
    settings = load_settings(env)
    if TEST_BUS == "secure" and not settings.external_kafka:
        # The 3-node KRaft cluster with TLS, client certificates, SCRAM and the authorizer on
        # (allow.everyone.if.no.acl.found=false); the suite's own clients and every `lienthong`
        # it runs use the administrator's certificate, the services under test their own where
        # a test says so (test_secure_bus.py).
        # The signing root first, back-dated a day like every test certificate (pki_dir): the
        # cluster makes its transport CA under the root it finds, and the evidence tests check
        # signatures made in the scenario's past against it.
        _signing_root(settings)
        services.up(settings, brokers=3, secure=True)
        env.update(services.kafka_client_env(settings))
        settings = load_settings(env)
    else:
        services.up(settings)
    support.use_kafka_security(settings.kafka_security)
    try:
        yield env
    finally:
        services.down(settings)
        shutil.rmtree(home, ignore_errors=True)


def _signing_root(settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from signing.pkidir import PkiDirectory

    pki = PkiDirectory(settings.pki_dir)
    if not pki.root_cert.exists():
        pki.init(now=datetime.now(UTC) - timedelta(days=1))


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Settings:
    return load_settings(service_env)


@pytest.fixture(scope="session")
def endpoints(settings: Settings) -> Endpoints:
    return services.endpoints(settings)


@pytest.fixture(scope="session")
def bootstrap(endpoints: Endpoints) -> str:
    return endpoints.bootstrap


@pytest.fixture(scope="session")
def database_url(endpoints: Endpoints) -> str:
    return endpoints.database_url


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return database_url


@pytest.fixture
async def db(migrated_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(migrated_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def unique() -> str:
    """A suffix that keeps topics and groups of one test apart from every other test's."""
    return uuid.uuid4().hex[:10]


# --- exchange fixtures: topics, a development PKI -------------------------------------------------

H26 = "000.00.00.H26"  # Hà Nội People's Committee
BA_DINH = "000.00.31.H26"
HAI_BA_TRUNG = "000.00.32.H26"
DONG_DA = "000.00.33.H26"
NOI_VU = "000.00.02.H26"  # Department of Home Affairs
VPCP = "000.00.00.G22"  # Government Office
PKI_AGENCIES = (H26, BA_DINH, HAI_BA_TRUNG, DONG_DA, NOI_VU, VPCP)
PKI_PERSON = ("Nguyễn Văn Sửu", H26)


@pytest.fixture(scope="session")
def exchange_topics(settings: Settings, bootstrap: str) -> Settings:
    """Every topic of the manifests (one inbox per open agency) exists on the test broker."""
    import asyncio

    from infra.services.topic_setup import ensure_all

    asyncio.run(ensure_all(settings, bootstrap))
    return settings


@pytest.fixture(scope="session")
def pki_dir(settings: Settings) -> Path:
    """A development PKI in the session's state directory: CA, an AGENCY certificate for each of
    PKI_AGENCIES, a PERSON certificate for PKI_PERSON, and the platform's certificate."""
    from datetime import UTC, datetime, timedelta

    from signing.pkidir import PkiDirectory
    from signing.profile import CertRole

    now = datetime.now(UTC) - timedelta(days=1)
    pki = PkiDirectory(settings.pki_dir)
    if not pki.root_cert.exists():  # made before the secure cluster started (_signing_root)
        pki.init(now=now)
    if not pki.entries():
        for code in PKI_AGENCIES:
            pki.issue(agency_code=code, role=CertRole.AGENCY, now=now)
        pki.issue(
            agency_code=PKI_PERSON[1], role=CertRole.PERSON, person_name=PKI_PERSON[0], now=now
        )
        pki.issue(agency_code=settings.platform_agency, role=CertRole.PLATFORM, now=now)
    return settings.pki_dir


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI timeout, `timeout`, a closed terminal) ends the run like Ctrl-C does, so the
    session fixtures still stop the broker and the database they started."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
