"""Process settings: where state lives and which Kafka and PostgreSQL to talk to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signing.transport import ClientSecurity, TransportConfigError, client_security_from_env

KAFKA_VERSION = "4.1.1"
DEFAULT_TOPIC_PREFIX = "lienthong."
# Hà Nội's exchange platform is operated by the Department of Science and Technology (which took
# over the Department of Information and Communications in 2025); its certificate signs the
# platform's own notices, such as a rejection (status 02).
DEFAULT_PLATFORM_AGENCY = "000.00.10.H26"


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    cache_dir: Path
    topic_prefix: str
    # Set when the environment points at existing services; then nothing is started.
    external_kafka: str | None
    external_database: str | None
    kafka_port: int | None
    kafka_controller_port: int | None
    postgres_port: int | None
    # Test clusters trade durability for speed; the demo and benchmarks never do.
    postgres_unsafe_fast: bool
    platform_agency: str = DEFAULT_PLATFORM_AGENCY
    trust_config_override: Path | None = None
    agencies_file: Path | None = None  # None: the directory shipped in schemas/data
    # The national agencies the exchange resolves beside the local directory (edXML senders and
    # recipients, docs/edxml.md): LIENTHONG_NATIONAL_AGENCIES unset is the list shipped in
    # schemas/data/national_agencies.yaml, a path another file of that shape, "none" none.
    national_agencies_file: Path | None = None
    national_agencies: bool = True
    pki_dir_override: Path | None = None
    # After a CRL's nextUpdate, how long it is still believed before the issuer's certificates
    # are refused (REVOCATION_UNKNOWN); and how long before a signing certificate expires its
    # warning starts (docs/signing.md).
    crl_grace_hours: float = 24.0
    cert_warn_days: float = 30.0
    # How every Kafka client of this process connects: TLS, client certificate, SCRAM
    # (LIENTHONG_KAFKA_SECURITY_PROTOCOL and friends, docs/security.md). PLAINTEXT by default.
    kafka_security: ClientSecurity = field(default_factory=ClientSecurity)

    def kafka_options(self) -> dict[str, Any]:
        """Keyword options for any aiokafka client of this process ({} for PLAINTEXT)."""
        return self.kafka_security.aiokafka_options()

    @property
    def pki_dir(self) -> Path:
        return self.pki_dir_override or self.home / "pki"

    @property
    def trust_config(self) -> Path:
        """trust.yaml: anchors and CRLs. A deployment points it at a real CA's files."""
        return self.trust_config_override or self.pki_dir / "trust.yaml"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def inbox(self, agency_code: str) -> str:
        return f"{self.topic_prefix}inbox.{agency_code}"

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def postgres_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"


def national_ids_file(settings: Settings) -> Path:
    """The edXML gateway's index of national document ids, shared by `edxml import` and the
    drop-folder gateways of this home (infra.gateway.nationalids)."""
    return settings.home / "gateway" / "national-ids.jsonl"


def _port(env: dict[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}={raw!r} is not a port number")
    return port


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    home = Path(env.get("LIENTHONG_HOME") or ".lienthong").absolute()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    cache = Path(env.get("LIENTHONG_CACHE") or Path(xdg) / "lienthong").absolute()
    return Settings(
        home=home,
        cache_dir=cache,
        topic_prefix=env.get("LIENTHONG_TOPIC_PREFIX", DEFAULT_TOPIC_PREFIX),
        external_kafka=env.get("LIENTHONG_KAFKA_BOOTSTRAP") or None,
        external_database=env.get("LIENTHONG_DATABASE_URL") or None,
        kafka_port=_port(env, "LIENTHONG_KAFKA_PORT"),
        kafka_controller_port=_port(env, "LIENTHONG_KAFKA_CONTROLLER_PORT"),
        postgres_port=_port(env, "LIENTHONG_POSTGRES_PORT"),
        postgres_unsafe_fast=env.get("LIENTHONG_PG_UNSAFE_FAST", "") in ("1", "true", "yes"),
        platform_agency=env.get("LIENTHONG_PLATFORM_AGENCY") or DEFAULT_PLATFORM_AGENCY,
        trust_config_override=_path(env.get("LIENTHONG_TRUST_CONFIG")),
        agencies_file=_path(env.get("LIENTHONG_AGENCIES")),
        national_agencies_file=_national(env.get("LIENTHONG_NATIONAL_AGENCIES")),
        national_agencies=(env.get("LIENTHONG_NATIONAL_AGENCIES") or "").lower() != "none",
        pki_dir_override=_path(env.get("LIENTHONG_PKI_DIR")),
        crl_grace_hours=_number(env, "LIENTHONG_CRL_GRACE_HOURS", 24.0),
        cert_warn_days=_number(env, "LIENTHONG_CERT_WARN_DAYS", 30.0),
        kafka_security=_security(env),
    )


def _number(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def _security(env: dict[str, str]) -> ClientSecurity:
    try:
        return client_security_from_env(env)
    except TransportConfigError as exc:
        raise ValueError(str(exc)) from None


def _national(raw: str | None) -> Path | None:
    return None if not raw or raw.lower() == "none" else Path(raw).absolute()


def _path(raw: str | None) -> Path | None:
    return Path(raw).absolute() if raw else None
