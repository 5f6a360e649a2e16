"""A local KRaft cluster of several combined broker+controller nodes, plaintext or secured
(TLS on every listener, client certificates, SCRAM on a SASL_SSL listener, the StandardAuthorizer
with deny by default): what `lienthong infra up --brokers 3 [--secure]` starts.

Each node has its own directory under $LIENTHONG_HOME/kafka/node-<id>/ (properties, data, logs);
the cluster's ports, pids and mode live in $LIENTHONG_HOME/kafka/cluster.json. The single-node
broker of infra.services.kafka stays the default (make demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from infra.errors import InfraError
from infra.services import procs
from infra.services.kafka import (
    _asset,
    ensure_jars,
    find_java,
    format_storage,
    jvm_command,
    probe,
    random_cluster_id,
)
from infra.settings import KAFKA_VERSION, Settings
from signing.pkidir import PkiDirectory
from signing.profile import (
    ADMIN_PRINCIPAL,
    BROKER_PRINCIPAL,
    KAFKA_PRINCIPAL_RULES,
    TransportKind,
)
from signing.transport import ClientSecurity
from signing.transportpki import TransportPki

log = structlog.get_logger()

HEAP = "-Xmx384m"
READY_TIMEOUT_S = 120.0
SCRAM_USER = "lienthong-ops"  # the SCRAM user made at format time (docs/security.md)


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    port: int  # client listener: SSL (secure) or PLAINTEXT
    sasl_port: int  # SASL_SSL listener (secure only; 0 otherwise)
    controller_port: int
    pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    state: str  # running | degraded | stopped | crashed
    bootstrap: str | None
    secure: bool
    nodes: tuple[Node, ...]
    detail: str = ""

    @property
    def sasl_bootstrap(self) -> str | None:
        if not self.secure:
            return None
        return ",".join(f"127.0.0.1:{n.sasl_port}" for n in self.nodes)


def state_file(settings: Settings) -> Path:
    return settings.kafka_dir / "cluster.json"


def configured(settings: Settings) -> bool:
    """A cluster was started in this home (its state file exists)."""
    return state_file(settings).exists()


def node_dir(settings: Settings, node_id: int) -> Path:
    return settings.kafka_dir / f"node-{node_id}"


def transport(settings: Settings) -> TransportPki:
    return TransportPki(PkiDirectory(settings.pki_dir))


def admin_security(settings: Settings) -> ClientSecurity:
    """The cluster administrator's identity (a super user): topics, ACLs."""
    return transport(settings).client_security(ADMIN_PRINCIPAL)


def scram_password(settings: Settings) -> str:
    """The SCRAM user's password, made once and kept 0600 in the cluster's directory."""
    path = settings.kafka_dir / "scram-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _nodes(state: dict[str, Any]) -> tuple[Node, ...]:
    return tuple(Node(**n) for n in state.get("nodes", []))


def _properties(
    settings: Settings, node: Node, nodes: tuple[Node, ...], secure: bool, tls: dict[str, Path]
) -> str:
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    replicas = min(3, len(nodes))
    props: dict[str, Any] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "log.dirs": node_dir(settings, node.node_id) / "data",
        "num.partitions": 3,
        "default.replication.factor": replicas,
        "min.insync.replicas": max(1, replicas - 1),
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 12,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": max(1, replicas - 1),
        "transaction.state.log.num.partitions": 12,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": max(1, replicas - 1),
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
        "message.max.bytes": 26214400,
        "replica.fetch.max.bytes": 26214400,
        "socket.request.max.bytes": 104857600,
        "log.retention.hours": -1,
    }
    if secure:
        props |= {
            "listeners": f"SSL://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{node.sasl_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"SSL://127.0.0.1:{node.port},"
            f"SASL_SSL://127.0.0.1:{node.sasl_port}",
            "inter.broker.listener.name": "SSL",
            # The controller listener is TLS too: over PLAINTEXT a broker would register as
            # User:ANONYMOUS and be refused CLUSTER_ACTION by the authorizer.
            "listener.security.protocol.map": "SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": tls["keystore"],
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": tls["truststore"],
            "ssl.client.auth": "required",
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "ssl.principal.mapping.rules": KAFKA_PRINCIPAL_RULES,
            # SCRAM clients authenticate with their password, not a certificate.
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{BROKER_PRINCIPAL};User:{ADMIN_PRINCIPAL}",
        }
    else:
        props |= {
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _ensure_tls(settings: Settings, now: datetime) -> dict[str, Path]:
    """The broker's keystore (one certificate for every node: 127.0.0.1 and localhost), the
    transport CA as truststore, and an admin certificate; made once in the PKI directory."""
    pki = PkiDirectory(settings.pki_dir)
    if not pki.root_cert.exists():
        pki.init(now=now)
    tp = TransportPki(pki)
    broker = tp.current(BROKER_PRINCIPAL) or tp.issue(
        TransportKind.BROKER, BROKER_PRINCIPAL, now=now, hosts=("127.0.0.1", "localhost")
    )
    if tp.current(ADMIN_PRINCIPAL) is None:
        tp.issue(TransportKind.SERVICE, ADMIN_PRINCIPAL, now=now)
    return {"keystore": tp.path(broker.keystore), "truststore": tp.ca_cert}


def _pick(previous: tuple[Node, ...], brokers: int, secure: bool) -> tuple[Node, ...]:
    taken: set[int] = set()

    def port(remembered: int) -> int:
        chosen = remembered
        if not chosen or chosen in taken or procs.port_in_use(chosen):
            chosen = procs.free_port()
            while chosen in taken:
                chosen = procs.free_port()
        taken.add(chosen)
        return chosen

    old = {n.node_id: n for n in previous}
    nodes = []
    for node_id in range(1, brokers + 1):
        p = old.get(node_id)
        nodes.append(
            Node(
                node_id,
                port(p.port if p else 0),
                port(p.sasl_port if p else 0) if secure else 0,
                port(p.controller_port if p else 0),
            )
        )
    return tuple(nodes)


def _jvm(settings: Settings, java: str, libs: Path, node_id: int) -> list[str]:
    logs = node_dir(settings, node_id) / "logs"
    return jvm_command(java, HEAP, logs, settings.kafka_dir / "log4j2.properties", libs)


def _alive(settings: Settings, node: Node) -> bool:
    if not node.pid or not procs.pid_alive(node.pid):
        return False
    line = procs.cmdline(node.pid)
    return "kafka.Kafka" in line and str(node_dir(settings, node.node_id)) in line


def status(settings: Settings, *, check: bool = True) -> ClusterStatus:
    state = procs.read_state(state_file(settings)) or {}
    nodes = _nodes(state)
    secure = bool(state.get("secure"))
    if not nodes or not any(n.pid for n in nodes):
        return ClusterStatus("stopped", None, secure, nodes)
    live = [n for n in nodes if _alive(settings, n)]
    bootstrap = ",".join(n.address for n in nodes)
    if not live:
        return ClusterStatus("crashed", bootstrap, secure, nodes, "no node is running")
    if check:
        options = admin_security(settings).aiokafka_options() if secure else {}
        try:
            asyncio.run(probe(bootstrap, timeout_s=5.0, client_options=options))
        except InfraError as exc:
            return ClusterStatus("unresponsive", bootstrap, secure, nodes, str(exc))
    if len(live) < len(nodes):
        down = sorted({n.node_id for n in nodes} - {n.node_id for n in live})
        return ClusterStatus("degraded", bootstrap, secure, nodes, f"node(s) {down} down")
    return ClusterStatus("running", bootstrap, secure, nodes)


def start(settings: Settings, *, brokers: int = 3, secure: bool = True) -> ClusterStatus:
    """Start the nodes that are not running; format new ones (with the SCRAM user)."""
    if brokers < 1:
        raise InfraError("a cluster needs at least one broker")
    current = status(settings, check=False)
    state = procs.read_state(state_file(settings)) or {}
    if current.nodes and (len(current.nodes) != brokers or current.secure != secure):
        raise InfraError(
            f"a {len(current.nodes)}-node {'secure ' if current.secure else ''}cluster exists in "
            f"{settings.kafka_dir}: `lienthong infra down` and remove it to change its shape"
        )
    java = find_java()
    libs = ensure_jars(settings)
    now = datetime.now(UTC)
    tls = _ensure_tls(settings, now) if secure else {}
    running = {n.node_id: n for n in current.nodes if _alive(settings, n)}
    nodes = _pick(tuple(current.nodes), brokers, secure)
    if running:  # never move the ports of a node that is up
        nodes = tuple(running.get(n.node_id, n) for n in nodes)
    cluster_id = state.get("cluster_id") or random_cluster_id()
    settings.kafka_dir.mkdir(parents=True, exist_ok=True)
    (settings.kafka_dir / "log4j2.properties").write_text(_asset("log4j2.properties"))
    started: list[Node] = []
    jvms = {n.node_id: _jvm(settings, java, libs, n.node_id) for n in nodes}
    for node in nodes:
        if node.node_id in running:
            started.append(running[node.node_id])
            continue
        ndir = node_dir(settings, node.node_id)
        (ndir / "logs").mkdir(parents=True, exist_ok=True)
        props = ndir / "server.properties"
        props.write_text(_properties(settings, node, nodes, secure, tls))
        jvm = jvms[node.node_id]
        if not (ndir / "data" / "meta.properties").exists():
            extra = (
                [
                    "--add-scram",
                    f"SCRAM-SHA-512=[name={SCRAM_USER},password={scram_password(settings)}]",
                ]
                if secure
                else []
            )
            format_storage(jvm, cluster_id, props, extra, what=f"Kafka node {node.node_id}")
        started.append(_launch(settings, jvm, node))
    state = {"secure": secure, "cluster_id": cluster_id, "version": KAFKA_VERSION}
    _save(settings, state, started)
    return _wait_ready(settings, started, state, jvms)


def _launch(settings: Settings, jvm: list[str], node: Node) -> Node:
    ndir = node_dir(settings, node.node_id)
    with open(ndir / "logs" / "broker.out", "ab") as out:
        proc = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(ndir / "server.properties")],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Node(node.node_id, node.port, node.sasl_port, node.controller_port, proc.pid)


def _save(settings: Settings, state: dict[str, Any], nodes: list[Node]) -> None:
    procs.write_state(
        state_file(settings),
        {
            **state,
            "nodes": [dataclasses.asdict(n) for n in nodes],
            "started_at": time.time(),
        },
    )


def _wait_ready(
    settings: Settings, nodes: list[Node], state: dict[str, Any], jvms: dict[int, list[str]]
) -> ClusterStatus:
    secure = bool(state["secure"])
    bootstrap = ",".join(n.address for n in nodes)
    options = admin_security(settings).aiokafka_options() if secure else {}
    deadline = time.monotonic() + READY_TIMEOUT_S
    relaunched: set[int] = set()
    while time.monotonic() < deadline:
        for i, n in enumerate(nodes):
            if not _alive(settings, n) and n.node_id not in relaunched:
                # Seen once on a loaded machine: a node quit during its first start while its
                # peers' controllers were still coming up. Its storage is formatted; one more
                # start is what an operator would do.
                log.warning("kafka.node_restarted", node=n.node_id, during="cluster start")
                relaunched.add(n.node_id)
                nodes[i] = _launch(settings, jvms[n.node_id], n)
                _save(settings, state, nodes)
                continue
            if not _alive(settings, n):
                logs = node_dir(settings, n.node_id) / "logs"
                errors = [
                    line
                    for line in procs.tail(logs / "server.log", 200).splitlines()
                    if "ERROR" in line or "Exception" in line
                ]
                raise InfraError(
                    f"Kafka node {n.node_id} exited while starting; see {logs}: "
                    + " | ".join([procs.tail(logs / "broker.out", 3), *errors[-3:]]).strip(" |")
                )
        if asyncio.run(_all_registered(bootstrap, len(nodes), options)):
            log.info("kafka.cluster_started", bootstrap=bootstrap, nodes=len(nodes), secure=secure)
            return ClusterStatus("running", bootstrap, secure, tuple(nodes))
        time.sleep(1.0)
    raise InfraError(
        f"the Kafka cluster did not come up on {bootstrap} within {READY_TIMEOUT_S:.0f}s; "
        f"see {settings.kafka_dir}/node-*/logs/"
    )


async def _all_registered(bootstrap: str, count: int, options: dict[str, Any]) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    try:
        await probe(bootstrap, timeout_s=3.0, client_options=options)
    except InfraError:
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    try:
        await asyncio.wait_for(admin.start(), 5.0)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5.0)
        return len(cluster.get("brokers", [])) >= count
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


def stop(settings: Settings) -> bool:
    state = procs.read_state(state_file(settings))
    if not state:
        return False
    stopped = False
    nodes = _nodes(state)
    alive = [n.pid for n in nodes if n.pid and _alive(settings, n)]
    for pid in alive:  # all at once: a node's controlled shutdown waits for its peers
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in alive:
        procs.terminate(pid, timeout=15)  # then KILL
        stopped = True
    state["nodes"] = [dataclasses.asdict(dataclasses.replace(n, pid=None)) for n in nodes]
    procs.write_state(state_file(settings), state)
    return stopped
