"""Where Kafka and PostgreSQL are: the project's own services, or those the environment names."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from infra.errors import InfraError
from infra.services import cluster as cluster_service
from infra.services import console as console_service
from infra.services import kafka as kafka_service
from infra.services import postgres as postgres_service
from infra.settings import Settings


@dataclass(frozen=True, slots=True)
class Endpoints:
    bootstrap: str
    database_url: str
    external: bool


@dataclass(frozen=True, slots=True)
class ServiceReport:
    name: str
    state: str
    address: str | None
    detail: str = ""


def up(settings: Settings, *, brokers: int | None = None, secure: bool | None = None) -> Endpoints:
    """Start what is not running (or check what the environment points at).

    Without brokers/secure: the single broker, or the cluster this home already has. With them,
    a cluster of that many nodes (secure: TLS, client certificates, SCRAM, ACLs; infra.services
    .cluster)."""
    if settings.external_kafka:
        check_kafka(settings.external_kafka, "LIENTHONG_KAFKA_BOOTSTRAP", settings)
        bootstrap = settings.external_kafka
    elif brokers is not None or secure is not None or cluster_service.configured(settings):
        shape = cluster_service.status(settings, check=False)
        bootstrap = (
            cluster_service.start(
                settings,
                brokers=brokers or len(shape.nodes) or 3,
                secure=shape.secure if secure is None and shape.nodes else bool(secure),
            ).bootstrap
            or ""
        )
    else:
        bootstrap = kafka_service.start(settings).bootstrap or ""
    if settings.external_database:
        check_database(settings.external_database, "LIENTHONG_DATABASE_URL")
        database_url = settings.external_database
    else:
        database_url = postgres_service.start(settings).url or ""
    return Endpoints(bootstrap, database_url, bool(settings.external_kafka))


def down(settings: Settings) -> list[str]:
    stopped = []
    # The console first: it holds connections to the database stopped below.
    if console_service.stop(settings):
        stopped.append("console")
    if not settings.external_kafka and cluster_service.stop(settings):
        stopped.append("kafka cluster")
    if not settings.external_kafka and kafka_service.stop(settings):
        stopped.append("kafka")
    if not settings.external_database and postgres_service.stop(settings):
        stopped.append("postgres")
    return stopped


def status(settings: Settings) -> list[ServiceReport]:
    reports = []
    if settings.external_kafka:
        try:
            check_kafka(settings.external_kafka, "LIENTHONG_KAFKA_BOOTSTRAP", settings)
            reports.append(ServiceReport("kafka", "external", settings.external_kafka))
        except InfraError as exc:
            reports.append(ServiceReport("kafka", "unreachable", settings.external_kafka, str(exc)))
    elif cluster_service.configured(settings):
        c = cluster_service.status(settings)
        shape = f"{len(c.nodes)} nodes" + (", TLS+SCRAM+ACLs" if c.secure else "")
        detail = "; ".join(d for d in (shape, c.detail) if d)
        reports.append(ServiceReport("kafka", c.state, c.bootstrap, detail))
    else:
        k = kafka_service.status(settings)
        reports.append(ServiceReport("kafka", k.state, k.bootstrap, k.detail))
    if settings.external_database:
        try:
            check_database(settings.external_database, "LIENTHONG_DATABASE_URL")
            reports.append(ServiceReport("postgres", "external", settings.external_database))
        except InfraError as exc:
            reports.append(
                ServiceReport("postgres", "unreachable", settings.external_database, str(exc))
            )
    else:
        p = postgres_service.status(settings)
        reports.append(ServiceReport("postgres", p.state, p.url, p.detail))
    web = console_service.status(settings)
    if web.state != "stopped":  # listed once it was started (`make demo`, `console start`)
        reports.append(ServiceReport("console", web.state, web.url, web.detail))
    return reports


def kafka_bootstrap(settings: Settings, *, check: bool = True) -> str:
    """Where Kafka is, for commands that need nothing else (a department that only sends)."""
    if settings.external_kafka:
        if check:
            check_kafka(settings.external_kafka, "LIENTHONG_KAFKA_BOOTSTRAP", settings)
        return settings.external_kafka
    if cluster_service.configured(settings):
        c = cluster_service.status(settings, check=False)
        if c.state in ("running", "degraded") and c.bootstrap:
            return c.bootstrap
        raise InfraError(
            f"the Kafka cluster is {c.state} in {settings.home}: run `lienthong infra up`"
        )
    k = kafka_service.status(settings)
    if k.state != "running" or not k.bootstrap:
        raise InfraError(
            f"Kafka is {k.state} in {settings.home}: run `lienthong infra up` "
            "or set LIENTHONG_KAFKA_BOOTSTRAP"
        )
    return k.bootstrap


def kafka_client_env(settings: Settings, principal: str | None = None) -> dict[str, str]:
    """The LIENTHONG_KAFKA_* variables a process needs to reach this home's secure cluster as
    `principal` (default: the administrator); empty for a plaintext broker or an external one."""
    if settings.external_kafka or not cluster_service.configured(settings):
        return {}
    c = cluster_service.status(settings, check=False)
    if not c.secure:
        return {}
    tp = cluster_service.transport(settings)
    security = tp.client_security(principal or cluster_service.ADMIN_PRINCIPAL)
    return {
        "LIENTHONG_KAFKA_SECURITY_PROTOCOL": security.protocol.value,
        "LIENTHONG_KAFKA_CA_FILE": str(security.ca_file),
        "LIENTHONG_KAFKA_CERT_FILE": str(security.cert_file),
        "LIENTHONG_KAFKA_KEY_FILE": str(security.key_file),
    }


def database_url(settings: Settings, *, check: bool = True) -> str:
    """Where PostgreSQL is, for commands that need nothing else."""
    if settings.external_database:
        if check:
            check_database(settings.external_database, "LIENTHONG_DATABASE_URL")
        return settings.external_database
    p = postgres_service.status(settings)
    if p.state != "running" or not p.url:
        raise InfraError(
            f"PostgreSQL is {p.state} in {settings.home}: run `lienthong infra up` "
            "or set LIENTHONG_DATABASE_URL"
        )
    return p.url


def endpoints(settings: Settings, *, check: bool = True) -> Endpoints:
    """Both addresses. Fails with a hint when a service is not running and, with check, with a
    one-line error naming the setting when an external service is unreachable."""
    return Endpoints(
        kafka_bootstrap(settings, check=check),
        database_url(settings, check=check),
        bool(settings.external_kafka),
    )


def check_kafka(bootstrap: str, setting: str, settings: Settings | None = None) -> None:
    """Every address of the bootstrap list is tried, with the process's TLS / SASL options."""
    options = settings.kafka_options() if settings is not None else {}
    try:
        asyncio.run(kafka_service.probe(bootstrap, timeout_s=5.0, client_options=options))
    except InfraError as exc:
        raise InfraError(f"{setting}: {exc}") from None


def check_database(url: str, setting: str) -> None:
    asyncio.run(probe_database(url, setting))


async def probe_database(url: str, setting: str = "database", timeout_s: float = 5.0) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=timeout_s)
    except Exception as exc:  # asyncpg raises many types for one cause: say it in one line
        raise InfraError(
            f"{setting}: cannot connect to {_redact(url)}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    await conn.close()


def _redact(url: str) -> str:
    # Never print a password that came in a URL.
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
