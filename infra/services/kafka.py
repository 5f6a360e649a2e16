"""Runs the project's own single-node KRaft Kafka broker from jars resolved with Maven."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from infra.errors import InfraError
from infra.services import procs
from infra.settings import KAFKA_VERSION, Settings

log = structlog.get_logger()

READY_TIMEOUT_S = 90.0
HEAP = "-Xmx512m"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    state: str  # running | stopped | crashed | unresponsive
    bootstrap: str | None
    pid: int | None
    log_file: Path
    detail: str = ""


def _asset(name: str) -> str:
    return (Path(__file__).parents[1] / "kafka" / name).read_text(encoding="utf-8")


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise InfraError("Java 17+ not found: install openjdk-17-jre-headless (or set JAVA_HOME)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < 17:
        raise InfraError(
            f"Java 17+ not found ({java} is Java {major or 'unknown'}): "
            "install openjdk-17-jre-headless (or set JAVA_HOME)"
        )
    return java


def ensure_jars(settings: Settings) -> Path:
    """Resolve the broker's classpath once into the cache; later runs reuse it offline."""
    libs = settings.kafka_libs
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError("Maven not found (needed once to fetch the Kafka jars): install maven")
    staging = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pom = staging / "pom.xml"
    pom.write_text(_asset("pom.xml"))
    log.info("kafka.jars.resolving", version=KAFKA_VERSION, into=str(libs))
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        last = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise InfraError(f"Maven could not resolve Kafka {KAFKA_VERSION}: {' | '.join(last)}")
    pom.unlink()
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(KAFKA_VERSION)
    return libs


def _state_file(settings: Settings) -> Path:
    return settings.kafka_dir / "state.json"


def _log_file(settings: Settings) -> Path:
    return settings.kafka_dir / "logs" / "server.log"


def _pick_ports(settings: Settings, previous: dict[str, object] | None) -> tuple[int, int]:
    def choose(configured: int | None, remembered: object) -> int:
        if configured is not None:
            if procs.port_in_use(configured):
                raise InfraError(f"port {configured} for Kafka is already taken on 127.0.0.1")
            return configured
        if isinstance(remembered, int) and not procs.port_in_use(remembered):
            return remembered
        return procs.free_port()

    prev = previous or {}
    broker = choose(settings.kafka_port, prev.get("broker_port"))
    controller = choose(settings.kafka_controller_port, prev.get("controller_port"))
    while controller == broker:
        controller = procs.free_port()
    return broker, controller


async def probe(
    bootstrap: str,
    timeout_s: float = 5.0,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """One metadata request; raises InfraError naming the addresses if no broker answers.

    Every bootstrap address is tried (a cluster whose first listed broker is down is still
    reachable); client_options carry TLS / SASL (signing.transport), so a secured cluster is
    probed as its clients will reach it."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    addresses = bootstrap_addresses(bootstrap)
    if not addresses:
        raise InfraError(f"Kafka bootstrap {bootstrap!r} names no host:port")
    # A plain TCP connect first: a refused port is answered at once, without the client's
    # retry loop and its error log lines.
    reasons = []
    reachable = []
    for host, port in addresses:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=timeout_s
            )
            writer.close()
            reachable.append(f"{host}:{port}")
        except (OSError, TimeoutError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timeout"
            reasons.append(f"{host}:{port} {reason}")
    if not reachable:
        raise InfraError(f"Kafka at {bootstrap} does not answer: {'; '.join(reasons)}")
    client = AIOKafkaClient(
        bootstrap_servers=reachable,
        request_timeout_ms=int(timeout_s * 1000),
        **(client_options or {}),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise InfraError(
            f"Kafka at {bootstrap} does not answer: {exc or type(exc).__name__}"
        ) from None
    finally:
        await client.close()


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """host:port pairs of a bootstrap list ("h1:9092,h2:9092", IPv6 as [::1]:9092)."""
    found = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        try:
            number = int(port)
        except ValueError:
            raise InfraError(f"Kafka bootstrap address {item!r} is not host:port") from None
        found.append((host.strip("[]") or "127.0.0.1", number))
    return found


def _answers(bootstrap: str) -> bool:
    try:
        asyncio.run(probe(bootstrap, timeout_s=3.0))
    except InfraError:
        return False
    return True


def _ours(pid: int, settings: Settings) -> bool:
    line = procs.cmdline(pid)
    return "kafka.Kafka" in line and str(settings.kafka_dir) in line


def status(settings: Settings) -> BrokerStatus:
    state = procs.read_state(_state_file(settings))
    logf = _log_file(settings)
    if not state or not state.get("pid"):
        return BrokerStatus("stopped", None, None, logf)
    pid = int(state["pid"])
    bootstrap = f"127.0.0.1:{state['broker_port']}"
    if not (procs.pid_alive(pid) and _ours(pid, settings)):
        return BrokerStatus("crashed", bootstrap, pid, logf, f"broker pid {pid} exited; see {logf}")
    if not _answers(bootstrap):
        return BrokerStatus("unresponsive", bootstrap, pid, logf, "process alive, no metadata")
    return BrokerStatus("running", bootstrap, pid, logf)


def start(settings: Settings) -> BrokerStatus:
    """Start the broker, or report the one already running. A crashed one is reported, then
    replaced: its data directory is kept, so topics and committed offsets survive."""
    current = status(settings)
    if current.state == "running":
        return current
    if current.state == "unresponsive" and current.pid:
        log.warning("kafka.unresponsive", pid=current.pid, action="restarting")
        procs.terminate(current.pid)
    if current.state == "crashed":
        log.warning(
            "kafka.crashed",
            pid=current.pid,
            log=str(current.log_file),
            action="starting a new broker on the same data",
        )
    java = find_java()
    libs = ensure_jars(settings)
    previous = procs.read_state(_state_file(settings))
    broker_port, controller_port = _pick_ports(settings, previous)
    kdir = settings.kafka_dir
    data_dir = kdir / "data"
    (kdir / "logs").mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    props.write_text(
        _asset("server.properties").format(
            broker_port=broker_port, controller_port=controller_port, data_dir=data_dir
        )
    )
    log4j = kdir / "log4j2.properties"
    log4j.write_text(_asset("log4j2.properties"))
    jvm = jvm_command(java, HEAP, kdir / "logs", log4j, libs)
    if not (data_dir / "meta.properties").exists():
        cluster_id = (previous or {}).get("cluster_id") or random_cluster_id()
        format_storage(jvm, cluster_id, props, what="Kafka storage")
    else:
        cluster_id = (previous or {}).get("cluster_id", "")
    out = open(kdir / "logs" / "broker.out", "ab")
    proc = subprocess.Popen(
        [*jvm, "kafka.Kafka", str(props)],
        stdout=out,
        stderr=out,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    procs.write_state(
        _state_file(settings),
        {
            "pid": proc.pid,
            "broker_port": broker_port,
            "controller_port": controller_port,
            "cluster_id": cluster_id,
            "version": KAFKA_VERSION,
            "started_at": time.time(),
        },
    )
    bootstrap = f"127.0.0.1:{broker_port}"
    procs.wait_until_answering(
        proc,
        lambda: _answers(bootstrap),
        what="Kafka broker",
        address=bootstrap,
        log=_log_file(settings),
        output=kdir / "logs" / "broker.out",
        timeout_s=READY_TIMEOUT_S,
        poll_s=0.5,
    )
    log.info("kafka.started", bootstrap=bootstrap, pid=proc.pid)
    return BrokerStatus("running", bootstrap, proc.pid, _log_file(settings))


def stop(settings: Settings) -> bool:
    state = procs.read_state(_state_file(settings))
    if not state or not state.get("pid"):
        return False
    pid = int(state["pid"])
    stopped = False
    if procs.pid_alive(pid) and _ours(pid, settings):
        procs.terminate(pid)
        stopped = True
    # Keep ports and cluster id: the next start reuses them with the retained data directory.
    procs.write_state(_state_file(settings), {**state, "pid": None})
    return stopped


def jvm_command(java: str, heap: str, logs_dir: Path, log4j: Path, libs: Path) -> list[str]:
    """The java command line every Kafka node (and its storage tool) runs with."""
    return [
        java,
        heap,
        heap.replace("mx", "ms"),
        "-server",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs_dir}",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
    ]


def format_storage(
    jvm: list[str], cluster_id: str, props: Path, extra: Sequence[str] = (), *, what: str
) -> None:
    """KRaft's storage format for one node (idempotent: --ignore-formatted)."""
    fmt = subprocess.run(
        [
            *jvm,
            "kafka.tools.StorageTool",
            "format",
            # One argument, "=": an id that starts with "-" is not taken for an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(props),
            "--ignore-formatted",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise InfraError(f"formatting {what} failed: {fmt.stderr.strip()[-300:]}")


def random_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """16 random bytes in URL-safe base64 without padding, like Kafka's Uuid; like
    Uuid.randomUuid, never one that starts with "-" (command lines would take it for an option)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
