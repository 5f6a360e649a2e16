"""The secure bus on a real 3-node KRaft cluster: TLS everywhere, client certificates, SCRAM,
ACLs from the agency directory; each process under its own principal; a broker killed under
load. The cluster is started once for this module (about 25 s) in its own state directory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from consumers.inbox import Delivery, InboxSubscriber
from infra import context
from infra.acl import AclAdmin
from infra.compose.acl import wanted_acls
from infra.compose.archive import build_archiver, run_archiver
from infra.compose.router import build_router, run_router
from infra.compose.subscribe import run_subscribe
from infra.services import cluster, postgres, procs
from infra.services.topic_setup import ensure_for_agencies
from infra.settings import Settings, load_settings
from producers.sender import DocumentSender
from schemas.agency import AgencyDirectory
from schemas.status import StatusCode, StatusNotice
from signing.pkidir import PkiDirectory
from signing.profile import (
    ADMIN_PRINCIPAL,
    ARCHIVER_PRINCIPAL,
    ROUTER_PRINCIPAL,
    WITNESS_PRINCIPAL,
    CertRole,
    TransportKind,
)
from signing.seal import SignerRole, load_credential
from signing.transport import ClientSecurity, SecurityProtocol
from signing.transportpki import TransportPki
from tests.support import fresh_database, seed_document

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
HAI_BA_TRUNG = "000.00.32.H26"
DONG_DA = "000.00.33.H26"  # its transport identity is revoked by a test
FETCH = 40 * 1024 * 1024


@dataclass(frozen=True)
class SecureCluster:
    settings: Settings  # as the administrator
    bootstrap: str  # SSL listeners
    sasl_bootstrap: str  # SASL_SSL listeners
    transport: TransportPki
    nodes: tuple[cluster.Node, ...]
    database_url: str  # a PostgreSQL server for the archiver's test

    def options(self, principal: str) -> dict[str, Any]:
        return self.transport.client_security(principal).aiokafka_options()

    def as_principal(self, principal: str) -> Settings:
        return dataclasses.replace(
            self.settings, kafka_security=self.transport.client_security(principal)
        )

    def acls(self) -> AclAdmin:
        return AclAdmin(self.bootstrap, self.settings.kafka_security.librdkafka_options())

    def cli(
        self, *args: str, principal: str = ADMIN_PRINCIPAL, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`lienthong ...` as an operator runs it: this home, one principal's TLS identity."""
        security = self.transport.client_security(principal)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")},
            "LIENTHONG_HOME": str(self.settings.home),
            "LIENTHONG_KAFKA_SECURITY_PROTOCOL": "SSL",
            "LIENTHONG_KAFKA_CA_FILE": str(security.ca_file),
            "LIENTHONG_KAFKA_CERT_FILE": str(security.cert_file),
            "LIENTHONG_KAFKA_KEY_FILE": str(security.key_file),
        }
        return subprocess.run(
            [sys.executable, "-m", "infra.cli", "--log-json", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def sync(self) -> Any:
        """What `lienthong acl sync` does: the exchange directory's ACLs (local and national
        agencies), none for a revoked transport identity."""
        wanted = wanted_acls(self.settings)
        return self.acls().sync(wanted)


def _identities(base: Settings, tp: TransportPki) -> None:
    """The transport and signing identities this module's principals use, issued once."""
    now = datetime.now(UTC) - timedelta(days=1)
    for code in (H26, BA_DINH, HAI_BA_TRUNG, DONG_DA):
        if tp.current(code) is None:
            tp.issue(TransportKind.AGENCY, code, now=now)
    for service in (ROUTER_PRINCIPAL, ARCHIVER_PRINCIPAL, WITNESS_PRINCIPAL):
        if tp.current(service) is None:
            tp.issue(TransportKind.SERVICE, service, now=now)
    pki = PkiDirectory(base.pki_dir)
    if not pki.root_cert.exists():
        pki.init(now=now)
    issued = {(e.agency_code, e.role) for e in pki.entries()}
    for code in (H26, BA_DINH, HAI_BA_TRUNG):
        if (code, CertRole.AGENCY.value) not in issued:
            pki.issue(agency_code=code, role=CertRole.AGENCY, now=now)
    for role in (CertRole.PLATFORM, CertRole.ARCHIVE):
        if (base.platform_agency, role.value) not in issued:
            pki.issue(agency_code=base.platform_agency, role=role, now=now)


def _prepared(base: Settings, bootstrap: str, sasl: str, database_url: str) -> SecureCluster:
    tp = cluster.transport(base)
    _identities(base, tp)
    admin = dataclasses.replace(
        base, kafka_security=tp.client_security(ADMIN_PRINCIPAL), external_kafka=bootstrap
    )
    asyncio.run(
        ensure_for_agencies(
            admin, bootstrap, [H26, BA_DINH, HAI_BA_TRUNG, DONG_DA, base.platform_agency]
        )
    )
    nodes = cluster.status(base, check=False).nodes
    made = SecureCluster(admin, bootstrap, sasl, tp, nodes, database_url)
    made.sync()
    return made


@pytest.fixture(scope="module")
def secure(settings: Settings, database_url: str) -> Iterator[SecureCluster]:
    """The session's own cluster when the suite runs on the secure one (the default; shared, so
    started once), else a cluster of this module's own."""
    if cluster.configured(settings) and cluster.status(settings, check=False).secure:
        status = cluster.status(settings)
        assert status.bootstrap and status.sasl_bootstrap
        yield _prepared(settings, status.bootstrap, status.sasl_bootstrap, database_url)
        cluster.start(settings, brokers=3, secure=True)  # a node a test killed comes back
        return
    home = Path(tempfile.mkdtemp(prefix="lienthong-secure-"))
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env["LIENTHONG_HOME"] = str(home)
    base = load_settings(env)
    try:
        status = cluster.start(base, brokers=3, secure=True)
        database = postgres.start(dataclasses.replace(base, postgres_unsafe_fast=True))
        assert database.url and status.bootstrap and status.sasl_bootstrap
        yield _prepared(base, status.bootstrap, status.sasl_bootstrap, database.url)
    finally:
        cluster.stop(base)
        postgres.stop(base)
        shutil.rmtree(home, ignore_errors=True)


async def _refused(coro: Any, *errors: type[BaseException]) -> BaseException:
    with pytest.raises(errors) as caught:
        await asyncio.wait_for(coro, timeout=30)
    return caught.value


async def _eventually(make: Any, timeout_s: float = 15.0) -> None:
    """An allowed operation, retried while a new ACL reaches every broker (the metadata log
    carries it; each broker applies it a few milliseconds apart)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await make()
            return
        except KafkaError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _refused_eventually(
    make: Any, error: type[BaseException], timeout_s: float = 15.0
) -> None:
    """A removed ACL stops working within seconds on every broker."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await asyncio.wait_for(make(), timeout=30)
        except error:
            return
        assert asyncio.get_running_loop().time() < deadline, "still allowed"
        await asyncio.sleep(0.5)


async def _produce(bootstrap: str, options: dict[str, Any], topic: str, **kw: Any) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10_000, **options, **kw
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", key=b"k")
    finally:
        await producer.stop()


async def _fetch_one_partition(bootstrap: str, options: dict[str, Any], topic: str) -> None:
    """Read a topic without a group (every partition, from the start): an unauthorized topic
    fails the consumer's start with TopicAuthorizationFailedError."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        **options,
    )
    try:
        await consumer.start()
        for _ in range(5):
            await consumer.getmany(timeout_ms=300)
    finally:
        await consumer.stop()


# --- the cluster's shape ---------------------------------------------------------------------


async def test_topics_have_three_replicas_two_in_sync_and_no_unclean_election(
    secure: SecureCluster,
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=secure.bootstrap, **secure.settings.kafka_options()
    )
    await admin.start()
    try:
        name = secure.settings.topic("submissions")
        (described,) = await admin.describe_topics([name])
        assert len(described["partitions"]) == 12
        assert {len(p["replicas"]) for p in described["partitions"]} == {3}
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {c[0]: c[1] for c in response.resources[0][4]}
        assert configs["min.insync.replicas"] == "2"
        assert configs["unclean.leader.election.enable"] == "false"
        assert len((await admin.describe_cluster())["brokers"]) == 3
    finally:
        await admin.close()
    status = secure.cli("infra", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "running" in status.stdout
    env = secure.cli("infra", "env")
    assert env.returncode == 0, env.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exports["LIENTHONG_KAFKA_BOOTSTRAP"] == secure.bootstrap
    assert exports["LIENTHONG_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert "lienthong-admin" in exports["LIENTHONG_KAFKA_CERT_FILE"]


# --- who cannot connect ----------------------------------------------------------------------


async def test_a_client_without_a_certificate_cannot_connect(secure: SecureCluster) -> None:
    anonymous = ClientSecurity(SecurityProtocol.SSL, ca_file=secure.transport.ca_bundle)
    await _refused(
        _produce(secure.bootstrap, anonymous.aiokafka_options(), "lienthong.submissions"),
        KafkaConnectionError,
        KafkaError,
    )


async def test_a_certificate_from_another_ca_cannot_connect(
    secure: SecureCluster, tmp_path: Path
) -> None:
    """Same subject as a real agency (CN=000.00.31.H26,OU=agency,O=lienthong), other CA."""
    other = PkiDirectory(tmp_path / "other")
    other.init(now=datetime.now(UTC) - timedelta(days=1))
    forged = TransportPki(other)
    forged.issue(TransportKind.AGENCY, BA_DINH, now=datetime.now(UTC) - timedelta(days=1))
    security = dataclasses.replace(
        forged.client_security(BA_DINH), ca_file=secure.transport.ca_bundle
    )
    await _refused(
        _produce(secure.bootstrap, security.aiokafka_options(), "lienthong.submissions"),
        KafkaConnectionError,
        KafkaError,
    )


# --- what an agency may not do ---------------------------------------------------------------


async def test_an_agency_writes_submissions_but_no_inbox_and_no_dead_letter(
    secure: SecureCluster,
) -> None:
    me = secure.options(BA_DINH)
    s = secure.settings
    await _eventually(lambda: _produce(secure.bootstrap, me, s.topic("submissions")))  # control
    for topic in (s.inbox(BA_DINH), s.inbox(HAI_BA_TRUNG), s.topic("deadletter")):
        await _refused(_produce(secure.bootstrap, me, topic), TopicAuthorizationFailedError)


async def test_an_agency_cannot_read_another_inbox_or_the_dead_letters(
    secure: SecureCluster,
) -> None:
    me = secure.options(BA_DINH)
    s = secure.settings
    await _eventually(lambda: _fetch_one_partition(secure.bootstrap, me, s.inbox(BA_DINH)))
    for topic in (s.inbox(HAI_BA_TRUNG), s.topic("deadletter"), s.topic("router-state")):
        await _refused(
            _fetch_one_partition(secure.bootstrap, me, topic), TopicAuthorizationFailedError
        )


async def test_an_agency_cannot_use_the_routers_transactional_id(secure: SecureCluster) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secure.bootstrap,
        transactional_id=f"{secure.settings.topic('router')}.0",
        **secure.options(BA_DINH),
    )
    try:
        await _refused(producer.start(), TransactionalIdAuthorizationFailed)
    finally:
        await producer.stop()


async def test_an_agency_cannot_join_another_agencys_group(secure: SecureCluster) -> None:
    s = secure.settings

    async def join(group: str) -> None:
        consumer = AIOKafkaConsumer(
            s.inbox(BA_DINH),
            bootstrap_servers=secure.bootstrap,
            group_id=group,
            **secure.options(BA_DINH),
        )
        await consumer.start()
        try:
            for _ in range(30):
                await consumer.getmany(timeout_ms=300)
                if consumer.assignment():
                    return
        finally:
            await consumer.stop()

    await _eventually(lambda: join(s.topic(f"subscriber.{BA_DINH}")))  # its own prefix
    await _refused(join(s.topic(f"subscriber.{HAI_BA_TRUNG}")), GroupAuthorizationFailedError)
    await _refused(join(s.topic("router")), GroupAuthorizationFailedError)


# --- SCRAM -----------------------------------------------------------------------------------


async def test_a_scram_user_works_on_the_sasl_ssl_listener(secure: SecureCluster) -> None:
    """A department without certificates: `lienthong acl scram set` gives a SCRAM user named by
    its agency code that agency's ACLs (same principal), over TLS; a deleted one cannot log in."""
    cli = secure.cli
    short = cli("acl", "scram", "set", HAI_BA_TRUNG, "--password-stdin", stdin="ngan\n")
    assert short.returncode != 0 and "at least 16 characters" in short.stderr
    stranger = cli("acl", "scram", "set", "mallory", "--password-stdin", stdin="x" * 20 + "\n")
    assert stranger.returncode != 0 and "neither an agency code" in stranger.stderr
    made = cli(
        "acl", "scram", "set", HAI_BA_TRUNG, "--password-stdin", stdin="mat-khau-dai-24-ky-tu\n"
    )
    assert made.returncode == 0, made.stderr
    listed = cli("acl", "scram", "list")
    assert f"User:{HAI_BA_TRUNG} SCRAM-SHA-512 iterations=8192" in listed.stdout

    def scram(password: str) -> dict[str, Any]:
        return ClientSecurity(
            SecurityProtocol.SASL_SSL,
            ca_file=secure.transport.ca_bundle,
            sasl_username=HAI_BA_TRUNG,
            sasl_password=password,
        ).aiokafka_options()

    s = secure.settings
    good = scram("mat-khau-dai-24-ky-tu")
    await _eventually(lambda: _produce(secure.sasl_bootstrap, good, s.topic("submissions")))
    await _fetch_one_partition(secure.sasl_bootstrap, good, s.inbox(HAI_BA_TRUNG))
    await _refused(
        _fetch_one_partition(secure.sasl_bootstrap, good, s.inbox(BA_DINH)),
        TopicAuthorizationFailedError,
    )
    await _refused(
        _produce(secure.sasl_bootstrap, scram("sai"), s.topic("submissions")), KafkaError
    )
    deleted = cli("acl", "scram", "delete", HAI_BA_TRUNG)
    assert deleted.returncode == 0, deleted.stderr
    assert f"User:{HAI_BA_TRUNG} " not in cli("acl", "scram", "list").stdout
    await _refused_eventually(
        lambda: _produce(secure.sasl_bootstrap, good, s.topic("submissions")), KafkaError
    )


# --- the seed flow, each process under its own principal ---------------------------------------


@contextlib.asynccontextmanager
async def _router(secure: SecureCluster, instance: str = "0") -> AsyncIterator[Any]:
    """`lienthong route` as deployed: the router and its trust feed (the crl topic), both
    under User:lienthong-router."""
    as_router = secure.as_principal(ROUTER_PRINCIPAL)
    router = build_router(as_router, secure.bootstrap, instance=instance)
    stop = asyncio.Event()
    task = asyncio.create_task(run_router(as_router, secure.bootstrap, router, stop))
    try:
        await asyncio.wait_for(router.ready.wait(), timeout=60)
        yield router
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


def _sender(secure: SecureCluster, *, clock: Any = None) -> DocumentSender:
    s = secure.settings
    return DocumentSender(
        secure.bootstrap,
        credentials=[load_credential(s.pki_dir, H26, SignerRole.AGENCY)],
        topic=s.topic("submissions"),
        client_options=secure.options(H26),
        **({"clock": clock} if clock else {}),
    )


async def test_send_route_subscribe_each_under_its_own_principal(
    secure: SecureCluster, tmp_path: Path
) -> None:
    """H26 sends as User:000.00.00.H26; the router routes as User:lienthong-router; Ba Đình's
    `lienthong subscribe` (its trust feed, its own group, its 01 through submissions) runs as
    User:000.00.31.H26; the 01 reaches H26's inbox, read as H26."""
    s = secure.settings
    document = seed_document(8101, [BA_DINH])
    async with _router(secure):
        async with _sender(secure) as sender:
            receipt = await sender.send_document(document)
        handled = await asyncio.wait_for(
            run_subscribe(
                settings=secure.as_principal(BA_DINH),
                bootstrap=secure.bootstrap,
                agency=BA_DINH,
                out_dir=tmp_path / "inbox",
                group_id=s.topic(f"subscriber.{BA_DINH}"),
                from_beginning=False,
                max_messages=1,
                idle_timeout=30,
                answer=True,
                stop=asyncio.Event(),
                echo=lambda line: None,
                live_trust=True,
            ),
            timeout=90,
        )
        assert handled == 1
        delivered = list((tmp_path / "inbox").rglob("*"))
        assert delivered, "nothing written for the delivered document"
        subscriber = InboxSubscriber(
            secure.bootstrap,
            H26,
            topic=s.inbox(H26),
            group_id=s.topic(f"subscriber.{H26}.seed"),
            trust=context.trust_store(s),
            agencies=AgencyDirectory.default(),
            clock=lambda: datetime.now(UTC),
            idle_timeout=30,
            client_options=secure.options(H26),
        )
        answers = []
        async with subscriber:
            async for item in subscriber:
                payload = getattr(item, "payload", None)
                if isinstance(item, Delivery) and isinstance(payload, StatusNotice):
                    if payload.document_id == document.document_id:
                        answers.append(payload)
                        break
    assert receipt.message_id
    assert [a.code for a in answers] == [StatusCode.ARRIVED]
    assert answers[0].from_agency.code == BA_DINH


async def test_the_archiver_and_the_witness_under_their_own_principals(
    secure: SecureCluster,
) -> None:
    """`lienthong archive` as User:lienthong-archiver (reads submissions, the dead letters, every
    inbox and the crl topic; writes its tree heads to checkpoints), and the witness reading
    those tree heads as User:lienthong-witness."""
    as_archiver = secure.as_principal(ARCHIVER_PRINCIPAL)
    async with fresh_database(secure.database_url) as url:
        archiver = build_archiver(as_archiver, secure.bootstrap, url, checkpoint_seconds=1)
        archiver.config = dataclasses.replace(archiver.config, refresh_seconds=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(run_archiver(as_archiver, secure.bootstrap, archiver, stop))
        conn = await asyncpg.connect(url)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            kinds: dict[str, int] = {}
            while loop.time() < deadline and not {"submission", "delivery"} <= set(kinds):
                assert not task.done(), task.exception()
                rows = await conn.fetch("SELECT kind, count(*) FROM archive_record GROUP BY kind")
                kinds = {r[0]: r[1] for r in rows}
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
            stop.set()
            await asyncio.wait_for(task, timeout=60)  # a last tree head at stop
    assert {"submission", "delivery"} <= set(kinds), kinds
    witness = AIOKafkaConsumer(
        secure.settings.topic("checkpoints"),
        bootstrap_servers=secure.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **secure.options(WITNESS_PRINCIPAL),
    )
    await witness.start()
    try:
        heads = []
        for _ in range(40):
            batch = await witness.getmany(timeout_ms=300)
            heads += [r for records in batch.values() for r in records]
            if heads:
                break
    finally:
        await witness.stop()
    assert heads, "no signed tree head on the checkpoints topic"


def test_decode_reads_an_inbox_as_its_agency_and_not_anothers(secure: SecureCluster) -> None:
    mine = secure.cli("decode", "--topic", f"inbox.{BA_DINH}", "--max", "1", principal=BA_DINH)
    assert mine.returncode == 0, mine.stderr
    assert f"1 record(s) from lienthong.inbox.{BA_DINH}" in mine.stderr  # the seed document
    assert len(mine.stdout.splitlines()) == 1
    theirs = secure.cli("decode", "--topic", f"inbox.{HAI_BA_TRUNG}", principal=BA_DINH)
    assert theirs.returncode == 2  # the topic is not even visible to Ba Đình
    assert f"no topic lienthong.inbox.{HAI_BA_TRUNG}" in theirs.stderr


# --- revocation ------------------------------------------------------------------------------


async def test_acl_sync_removes_a_revoked_agencys_acls_and_is_idempotent(
    secure: SecureCluster,
) -> None:
    s = secure.settings
    me = secure.options(DONG_DA)  # the TLS identity as it was before the revocation
    await _eventually(lambda: _produce(secure.bootstrap, me, s.topic("submissions")))
    again = secure.sync()
    assert (again.added, again.removed) == ([], [])
    cli = secure.cli
    listed = cli("acl", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"lienthong.inbox.{DONG_DA}" in listed.stdout
    synced = cli("acl", "sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip().splitlines()[-1].startswith("added 0, removed 0, kept ")
    # The operator revokes the transport identity; the command removes its ACLs right away.
    revoked = cli("pki", "transport", "revoke", DONG_DA)
    assert revoked.returncode == 0, revoked.stderr
    assert sum(line.startswith(f"- User:{DONG_DA}") for line in revoked.stdout.splitlines()) == 8
    assert revoked.stdout.strip().splitlines()[-1] == "removed 8 ACLs, added 0"
    result = secure.sync()
    assert (result.added, result.removed) == ([], [])
    assert not [r for r in secure.acls().list() if r.principal == f"User:{DONG_DA}"]
    # Kafka reads no CRL: the certificate still connects, and may do nothing at all.
    await _refused(
        _produce(secure.bootstrap, me, s.topic("submissions")), TopicAuthorizationFailedError
    )
    await _refused(
        _fetch_one_partition(secure.bootstrap, me, s.inbox(DONG_DA)), TopicAuthorizationFailedError
    )


# --- a broker killed under load ----------------------------------------------------------------


async def _leaders(secure: SecureCluster, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=secure.bootstrap, **secure.settings.kafka_options()
    )
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in described["partitions"]}
    finally:
        await admin.close()


async def test_killing_the_broker_leading_most_submissions_loses_and_repeats_nothing(
    secure: SecureCluster,
) -> None:
    s = secure.settings
    total, kill_at = 240, 80
    leaders = await _leaders(secure, s.topic("submissions"))
    counts: dict[int, int] = {}
    for leader in leaders.values():
        counts[leader] = counts.get(leader, 0) + 1
    victim_id = max(counts, key=lambda n: counts[n])
    victim = next(n for n in secure.nodes if n.node_id == victim_id)
    assert victim.pid is not None
    sent: list[str] = []
    async with _router(secure, instance="failover"):
        async with _sender(secure) as sender:
            for i in range(total):
                if i == kill_at:
                    os.kill(victim.pid, signal.SIGKILL)
                document = seed_document(9000 + i, [HAI_BA_TRUNG])
                receipt = await asyncio.wait_for(sender.send_document(document), timeout=60)
                sent.append(receipt.message_id)
        assert not procs.pid_alive(victim.pid)  # the rest went through a 2-node cluster
        # Every document reaches the inbox once, read committed, while one node is dead.
        consumer = AIOKafkaConsumer(
            s.inbox(HAI_BA_TRUNG),
            bootstrap_servers=secure.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=FETCH,
            **secure.options(ARCHIVER_PRINCIPAL),
        )
        await consumer.start()
        seen: list[str] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            wanted = set(sent)
            while loop.time() < deadline and not wanted <= set(seen):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        headers = dict(r.headers or ())
                        mid = bytes(headers.get("lt-message-id", b"")).decode()
                        if mid in wanted:
                            seen.append(mid)
            settle = loop.time() + 3
            while loop.time() < settle:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    seen += [
                        bytes(dict(r.headers or ()).get("lt-message-id", b"")).decode()
                        for r in records
                        if bytes(dict(r.headers or ()).get("lt-message-id", b"")).decode() in wanted
                    ]
        finally:
            await consumer.stop()
    lost = set(sent) - set(seen)
    duplicated = len(seen) - len(set(seen))
    print(
        f"failover: sent {len(sent)}, delivered {len(set(seen))}, lost {len(lost)}, "
        f"duplicated {duplicated}, killed node {victim_id} leading {counts[victim_id]}/12"
    )
    assert not lost
    assert duplicated == 0
