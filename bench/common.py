"""Shared by the end-to-end benchmarks: statistics, memory, a private run (topics, PKI, database)
and the router and archiver as real subprocesses."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.services.migrate import migrate
from infra.services.topic_setup import ensure_for_agencies
from infra.settings import Settings
from signing.transport import client_security_env

H26 = "000.00.00.H26"  # Hà Nội People's Committee: the sender
BA_DINH = "000.00.31.H26"  # Ba Đình district: the one recipient, so one document = one delivery
FETCH_BYTES = 40 * 1024 * 1024
# One recipient per scenario, each with its own inbox: a new subscriber group never has to
# read (and verify) what an earlier scenario delivered.
RECIPIENTS = ("000.00.31.H26", "000.00.32.H26", "000.00.33.H26", "000.00.02.H26", "000.00.00.G22")


# --- statistics ---------------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank on the sorted samples (the same rule as bench.audit_search)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples_ms, 50), 2),
        "p95_ms": round(percentile(samples_ms, 95), 2),
        "p99_ms": round(percentile(samples_ms, 99), 2),
        "max_ms": round(max(samples_ms), 2) if samples_ms else float("nan"),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median of the repeats, with min and max: one figure and how much to trust it."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def combine(repeats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per numeric key of the repeats' flat dicts: median, min and max."""
    keys = [k for k, v in repeats[0].items() if isinstance(v, int | float)]
    return {k: spread([float(r[k]) for r in repeats]) for k in keys}


# --- memory ---------------------------------------------------------------------------------------


def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """VmHWM: the resident set's high-water mark, in MiB."""
    kb = _status_kb(pid, "VmHWM")
    return round(kb / 1024, 1) if kb is not None else None


def rss_mb(pid: int | str = "self") -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return round(kb / 1024, 1) if kb is not None else None


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far: broker and database included."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU spent per document by each process over one measured batch, and how busy the machine
    was meanwhile: on a shared 2-core box, what the pipeline costs is what bounds it."""

    def __init__(self, pids: dict[str, int | str]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.machine = machine_jiffies()

    def figures(self, documents: int) -> dict[str, float]:
        busy0, total0 = self.machine
        busy1, total1 = machine_jiffies()
        out = {
            f"cpu_ms_per_doc_{name}": round(
                (cpu_seconds(pid) - self.start[name]) * 1000 / documents, 3
            )
            for name, pid in self.pids.items()
        }
        out["machine_busy_share"] = round((busy1 - busy0) / max(1, total1 - total0), 3)
        return out


def reset_peak_rss() -> None:
    """Start this process's VmHWM again from its current RSS (Linux >= 4.0: clear_refs 5), so
    each scenario reports its own peak rather than the largest one so far."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# --- a private run: prefix, PKI, database ------------------------------------------------------


@dataclass
class BenchRun:
    """Everything one `python -m bench.run` owns, so nothing leaks into the project's own data."""

    settings: Settings  # with this run's topic prefix and PKI directory
    bootstrap: str
    admin_url: str  # the project's database server (any database on it)
    run_id: str
    work: Path  # temp dir: PKI, subprocess logs, profiles
    databases: list[str] = field(default_factory=list)
    replication: int = 1  # of the baseline's plain topics (3 on a 3-node cluster)
    # More processes whose CPU per document the baseline reports (e.g. the brokers).
    meter_pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, bootstrap: str, admin_url: str, work: Path) -> BenchRun:
        run_id = f"b{int(time.time())}{uuid.uuid4().hex[:4]}"
        private = dataclasses.replace(
            settings, topic_prefix=f"bench.{run_id}.", pki_dir_override=work / "pki"
        )
        return cls(private, bootstrap, admin_url, run_id, work)

    @property
    def kafka_options(self) -> dict[str, Any]:
        """TLS / SASL of this process's Kafka clients (LIENTHONG_KAFKA_SECURITY_*)."""
        return self.settings.kafka_options()

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))

    async def create_database(self, suffix: str = "") -> str:
        """A fresh, migrated `lienthong_bench_<run><suffix>`; dropped by drop_databases()."""
        name = f"lienthong_bench_{self.run_id}{suffix}"
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        self.databases.append(name)
        conn = await asyncpg.connect(self.database_url(name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return self.database_url(name)

    async def drop_databases(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            for name in self.databases:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
        self.databases.clear()

    async def delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.kafka_options)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(f"bench.{self.run_id}")]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    def issue_pki(self) -> None:
        """A development CA with the sender's, the recipient's and the platform's certificates
        (as tests/conftest.py pki_dir does), valid from yesterday on the real clock."""
        from signing.pkidir import PkiDirectory
        from signing.profile import CertRole

        now = datetime.now(UTC) - timedelta(days=1)
        pki = PkiDirectory(self.settings.pki_dir)
        pki.init(now=now)
        for code in (H26, BA_DINH):
            pki.issue(agency_code=code, role=CertRole.AGENCY, now=now)
        platform = self.settings.platform_agency
        pki.issue(agency_code=platform, role=CertRole.PLATFORM, now=now)
        pki.issue(agency_code=platform, role=CertRole.ARCHIVE, now=now)

    async def ensure_exchange_topics(self) -> None:
        agencies = {H26, *RECIPIENTS, self.settings.platform_agency}
        await ensure_for_agencies(self.settings, self.bootstrap, agencies)

    async def make_topics(self, names: dict[str, int]) -> None:
        """Plain topics {name: partitions} for the raw baseline."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.kafka_options)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        n,
                        p,
                        self.replication,
                        topic_configs={
                            "max.message.bytes": str(32 << 20),
                            **({"min.insync.replicas": "2"} if self.replication >= 3 else {}),
                        },
                    )
                    for n, p in names.items()
                ]
            )
        finally:
            await admin.close()

    def kafka_env(self) -> dict[str, str]:
        """This environment, with the run's Kafka identity (TLS, SASL) for a child process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_KAFKA_")}
        return env | client_security_env(self.settings.kafka_security)

    def service_env(self, database_url: str) -> dict[str, str]:
        """The environment under which `lienthong route` / `archive` see this run only."""
        env = self.kafka_env()
        env.update(
            LIENTHONG_KAFKA_BOOTSTRAP=self.bootstrap,
            LIENTHONG_DATABASE_URL=database_url,
            LIENTHONG_TOPIC_PREFIX=self.settings.topic_prefix,
            LIENTHONG_PKI_DIR=str(self.settings.pki_dir),
            # The router's state store (and anything else a service keeps under its home)
            # lives in the run's work directory and goes with it.
            LIENTHONG_HOME=str(self.work / "home"),
            LIENTHONG_LOG_LEVEL=env.get("LIENTHONG_LOG_LEVEL", "INFO"),
        )
        return env


# --- the router and the archiver as the processes they are in production ------------------------


class ServiceProcess:
    """`python -m <module> ...` (e.g. `lienthong route`) in its own process: its own interpreter
    and GIL (as deployed), its own RSS to report. Logs go to a file in the work directory."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        work: Path,
        profile: bool = False,
    ) -> None:
        self.name = name
        self.log_path = work / f"{name}.log"
        self.profile_path = work / f"{name}.prof" if profile else None
        prefix = [sys.executable]
        if self.profile_path is not None:
            prefix += ["-m", "cProfile", "-o", str(self.profile_path)]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*prefix, *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started_rss_mb: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n" + "\n".join(tail)
            )

    def memory(self) -> dict[str, float | None]:
        return {"rss_mb": rss_mb(self.pid), "peak_rss_mb": peak_rss_mb(self.pid)}

    async def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (graceful: finish the batch, commit, stop the clients), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # a child's exit is no asyncio event: poll it
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start_router(run: BenchRun, database_url: str, profile: bool = False) -> ServiceProcess:
    return ServiceProcess(
        "router", ["-m", "infra.cli", "route"], run.service_env(database_url), run.work, profile
    )


def start_archiver(
    run: BenchRun, database_url: str, name: str = "archiver", profile: bool = False
) -> ServiceProcess:
    # Frequent tree heads so the inclusion-proof timing has a signed head covering the rows.
    args = ["-m", "infra.cli", "archive", "--checkpoint-seconds", "5"]
    return ServiceProcess(name, args, run.service_env(database_url), run.work, profile)


def profile_top(path: Path | None, limit: int = 25) -> list[str]:
    """The functions with the most cumulative time in a cProfile dump, as lines."""
    if path is None or not path.exists():
        return []
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(limit)
    return [line for line in out.getvalue().splitlines() if line.strip()][: limit + 12]
