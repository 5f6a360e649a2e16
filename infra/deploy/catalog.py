"""The long-running services, once: what each runs, as whom, with what. The systemd units and
the Kubernetes workloads are both rendered from this table, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from signing.profile import (
    ARCHIVER_PRINCIPAL,
    CONSOLE_PRINCIPAL,
    ROUTER_PRINCIPAL,
    WITNESS_PRINCIPAL,
)

# Where things live on a host and in a container (the same paths in both).
STATE_DIR = "/var/lib/lienthong"  # LIENTHONG_HOME: router state, witness state, drop folders
CONFIG_DIR = "/etc/lienthong"  # lienthong.toml, the PKI, secrets (read-only)
CONFIG_FILE = f"{CONFIG_DIR}/lienthong.toml"
# In a pod every service listens on the same port; on a host each has its own.
POD_METRICS_PORT = 9100
CONSOLE_PORT = 8080


@dataclass(frozen=True, slots=True)
class Instance:
    """This copy's id: the host's name under systemd, the pod's name on Kubernetes (stable
    for a StatefulSet), so that a restarted router fences its own older transactions."""


@dataclass(frozen=True, slots=True)
class Agency:
    """The agency a per-agency service runs for (the template's instance under systemd)."""


@dataclass(frozen=True, slots=True)
class EnvRef:
    """A value the operator supplies in the environment (systemd ${NAME}, Kubernetes $(NAME))."""

    name: str


@dataclass(frozen=True, slots=True)
class MetricsPort:
    """--metrics-port: on a host the service's own port, in a pod POD_METRICS_PORT."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret file the service reads (systemd LoadCredential, a Kubernetes Secret volume)."""

    name: str


# Plain strings may hold {agency} (the agency code) and {listen} (the address to serve on).
Token = str | Instance | Agency | EnvRef | MetricsPort | Credential
Database = Literal["archiver", "auditor", "console"]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # route, archive, ...: the unit is lienthong-<name>, the workload too
    summary: str
    argv: tuple[Token, ...]  # after `lienthong`
    principal: str | None  # its Kafka identity; None: the agency's own
    per_agency: bool = False
    host_metrics_port: int = 0  # 0: none, or set per instance (templates)
    database: Database | None = None  # the PostgreSQL role it connects as
    signing_key: bool = False  # its keys are encrypted under LIENTHONG_KEY_PASSPHRASE(_FILE)
    credentials: tuple[str, ...] = ()  # secret files by name
    http_port: int = 0  # a web page besides the metrics (the console)


_WITNESS_ARGV: tuple[Token, ...] = (
    "witness", "run", "--key", Credential("witness.key"),
    "--log-key", EnvRef("WITNESS_LOG_KEY"),
    "--state", f"{STATE_DIR}/witness/state", "--metrics-port", MetricsPort(),
)  # fmt: skip
_GATEWAY_ARGV: tuple[Token, ...] = (
    "gateway", "edxml", "--agency", Agency(),
    "--in", f"{STATE_DIR}/gateway/{{agency}}/in",
    "--out", f"{STATE_DIR}/gateway/{{agency}}/out",
)  # fmt: skip

# Plain HTTP on the loopback or in the pod, TLS ends at the proxy or the Ingress in front of
# it: cookies are marked Secure all the same. A proxy on the same host reaches it from the
# loopback: its X-Forwarded-For names the browser (docs/console.md).
_CONSOLE_ARGV: tuple[Token, ...] = (
    *("console", "serve", "--host", "{listen}", "--port", str(CONSOLE_PORT)),
    *("--secure-cookies", "--trusted-proxy", "127.0.0.1"),
)

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "route",
        "router: submissions to the recipients' inboxes",
        ("route", "--instance", Instance(), "--metrics-port", MetricsPort()),
        ROUTER_PRINCIPAL,
        host_metrics_port=9101,
    ),
    ServiceSpec(
        "archive",
        "archiver: every record into PostgreSQL, signed tree heads",
        # --wait: a restarted archiver waits for the old one's lock instead of failing.
        ("archive", "--wait", "--metrics-port", MetricsPort()),
        ARCHIVER_PRINCIPAL,
        host_metrics_port=9102,
        database="archiver",
        signing_key=True,
    ),
    ServiceSpec(
        "witness",
        "witness: cosigns the archive's checkpoints after checking them",
        _WITNESS_ARGV,
        WITNESS_PRINCIPAL,
        host_metrics_port=9103,
        database="auditor",
        credentials=("witness.key",),
    ),
    ServiceSpec(
        "console",
        "console: the archive in the browser for auditors",
        _CONSOLE_ARGV,
        CONSOLE_PRINCIPAL,
        database="console",
        http_port=CONSOLE_PORT,
    ),
    ServiceSpec(
        "subscribe",
        "subscriber of an agency's inbox: deliveries to files, 01 / 02 answered",
        ("subscribe", "--agency", Agency(), "--out", f"{STATE_DIR}/inbox/{{agency}}"),
        None,
        per_agency=True,  # at the agency, on its own machine: systemd only
    ),
    ServiceSpec(
        "gateway",
        "edXML gateway of an agency's document system (drop folders)",
        _GATEWAY_ARGV,
        None,
        per_agency=True,
    ),
)
BY_NAME = {s.name: s for s in SERVICES}
