"""How a Kafka client proves itself to the bus: TLS, client certificates, SASL, in one value.

`ClientSecurity` is what a deployment configures (docs/security.md); every Kafka client of
lienthong is built from the options it produces, so a cluster that needs TLS or SCRAM is
reached the same way by the SDK, the router, the archiver, the tools and the tests. The
transport identity (a client certificate, a SCRAM user) is separate from the document-signing
keys: a signature never depends on a key that sits on every Kafka client.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SCRAM_MECHANISM = "SCRAM-SHA-512"


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"


class TransportConfigError(ValueError):
    """The transport settings contradict each other or name files that are not there."""


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """Who a Kafka client is and how it talks. PLAINTEXT (the default) adds no option at all,
    so a client built from it behaves exactly as one built without it."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    ca_file: Path | None = None  # PEM, the CA(s) that issued the brokers' certificates
    cert_file: Path | None = None  # PEM, the client certificate (and its chain) for mTLS
    key_file: Path | None = None  # PEM, the client key; may be encrypted
    key_password: str | None = None  # passphrase of an encrypted key
    sasl_username: str | None = None
    sasl_password: str | None = None
    # Checking the broker's name against its certificate; off only for a lab broker reached by
    # an address its certificate does not name.
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TransportConfigError("a client certificate needs its key, and a key its cert")
        if self.protocol is SecurityProtocol.PLAINTEXT:
            if self.ca_file or self.cert_file or self.sasl_username:
                raise TransportConfigError(
                    "TLS files or a SASL user are set but the protocol is PLAINTEXT: "
                    "set LIENTHONG_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL"
                )
        if self.protocol is SecurityProtocol.SASL_SSL:
            if not self.sasl_username or self.sasl_password is None:
                raise TransportConfigError("SASL_SSL needs a SCRAM username and password")
        elif self.sasl_username:
            raise TransportConfigError("a SASL user is set but the protocol is not SASL_SSL")

    @property
    def is_plaintext(self) -> bool:
        return self.protocol is SecurityProtocol.PLAINTEXT

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context: TLS 1.2+, the broker's certificate verified against ca_file (the
        system's CAs without one), the client certificate offered when configured."""
        if self.is_plaintext:
            return None
        for name, path in (
            ("CA file", self.ca_file),
            ("client certificate", self.cert_file),
            ("client key", self.key_file),
        ):
            if path is not None and not path.is_file():
                raise TransportConfigError(f"Kafka {name} {path} does not exist")
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file), password=self.key_password
                )
            except ssl.SSLError as exc:
                raise TransportConfigError(
                    f"cannot load the client key {self.key_file} "
                    f"(wrong or missing passphrase?): {exc.reason or exc}"
                ) from None
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / Consumer / AdminClient / Client."""
        if self.is_plaintext:
            return {}
        options: dict[str, Any] = {
            "security_protocol": self.protocol.value,
            "ssl_context": self.ssl_context(),
        }
        if self.protocol is SecurityProtocol.SASL_SSL:
            options |= {
                "sasl_mechanism": SCRAM_MECHANISM,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options

    def librdkafka_options(self) -> dict[str, str]:
        """Properties for confluent-kafka (librdkafka names), e.g. the ACL admin client."""
        if self.is_plaintext:
            return {}
        options = {"security.protocol": self.protocol.value}
        if self.ca_file:
            options["ssl.ca.location"] = str(self.ca_file)
        if self.cert_file and self.key_file:
            options["ssl.certificate.location"] = str(self.cert_file)
            options["ssl.key.location"] = str(self.key_file)
            if self.key_password is not None:
                options["ssl.key.password"] = self.key_password
        if not self.check_hostname:
            options["ssl.endpoint.identification.algorithm"] = "none"
        if self.protocol is SecurityProtocol.SASL_SSL:
            options |= {
                "sasl.mechanism": SCRAM_MECHANISM,
                "sasl.username": str(self.sasl_username),
                "sasl.password": str(self.sasl_password),
            }
        return options

    def describe(self) -> str:
        """One line for logs and `infra status`; never the passphrase or password."""
        if self.is_plaintext:
            return "PLAINTEXT"
        parts = [self.protocol.value]
        if self.cert_file:
            parts.append(f"cert={self.cert_file.name}")
        if self.sasl_username:
            parts.append(f"user={self.sasl_username}")
        return " ".join(parts)


def client_security_env(security: ClientSecurity) -> dict[str, str]:
    """The LIENTHONG_KAFKA_* variables a child process needs to connect as `security` does:
    the inverse of client_security_from_env. Passwords travel in variables of their own, named
    by the *_PASSWORD_ENV ones, as that function reads them."""
    env = {"LIENTHONG_KAFKA_SECURITY_PROTOCOL": security.protocol.value}
    files = {
        "LIENTHONG_KAFKA_CA_FILE": security.ca_file,
        "LIENTHONG_KAFKA_CERT_FILE": security.cert_file,
        "LIENTHONG_KAFKA_KEY_FILE": security.key_file,
    }
    env |= {name: str(path) for name, path in files.items() if path is not None}
    if security.key_password is not None:
        env["LIENTHONG_KAFKA_KEY_PASSWORD_ENV"] = "KAFKA_KEY_PASSWORD"
        env["KAFKA_KEY_PASSWORD"] = security.key_password
    if security.sasl_username is not None:
        env["LIENTHONG_KAFKA_SASL_USERNAME"] = security.sasl_username
    if security.sasl_password is not None:
        env["LIENTHONG_KAFKA_SASL_PASSWORD_ENV"] = "KAFKA_SASL_PASSWORD"
        env["KAFKA_SASL_PASSWORD"] = security.sasl_password
    if not security.check_hostname:
        env["LIENTHONG_KAFKA_CHECK_HOSTNAME"] = "0"
    return env


def client_security_from_env(env: Mapping[str, str]) -> ClientSecurity:
    """The LIENTHONG_KAFKA_* transport variables (docs/security.md). Secrets are never in those
    variables themselves: *_PASSWORD_ENV names the variable that holds them."""
    raw = (env.get("LIENTHONG_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").strip().upper()
    try:
        protocol = SecurityProtocol(raw)
    except ValueError:
        raise TransportConfigError(
            f"LIENTHONG_KAFKA_SECURITY_PROTOCOL={raw!r}: expected PLAINTEXT, SSL or SASL_SSL"
        ) from None

    def path(name: str) -> Path | None:
        value = env.get(name)
        return Path(value).absolute() if value else None

    def secret(name: str) -> str | None:
        holder = env.get(name)
        if not holder:
            return None
        if holder not in env:
            raise TransportConfigError(f"{name}={holder}: that variable is not set")
        return env[holder]

    return ClientSecurity(
        protocol=protocol,
        ca_file=path("LIENTHONG_KAFKA_CA_FILE"),
        cert_file=path("LIENTHONG_KAFKA_CERT_FILE"),
        key_file=path("LIENTHONG_KAFKA_KEY_FILE"),
        key_password=secret("LIENTHONG_KAFKA_KEY_PASSWORD_ENV"),
        sasl_username=env.get("LIENTHONG_KAFKA_SASL_USERNAME") or None,
        sasl_password=secret("LIENTHONG_KAFKA_SASL_PASSWORD_ENV"),
        check_hostname=env.get("LIENTHONG_KAFKA_CHECK_HOSTNAME", "1") not in ("0", "false", "no"),
    )
