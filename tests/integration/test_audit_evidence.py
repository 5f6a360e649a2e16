"""`lienthong audit verify|export|verify-bundle` over a real archive built in the fixture: signed
envelopes, leaves, Merkle nodes and a signed tree head, in a database of this module's own."""

from __future__ import annotations

import asyncio
import hashlib
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from consumers.audit.verify import PgNodeStore
from infra import services
from infra.cli.main import build_app
from infra.compose.audit import auditor_url
from infra.services import manager
from schemas.codec import encode_envelope
from schemas.envelope import SignerRole
from signing.evidence import build_bundle
from signing.merkle import DictNodeStore, RightEdge, append_leaves, leaf_hash, plan_inclusion
from signing.merkle_leaf import LeafRecord, format_archived_at
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from signing.treehead import (
    TreeHead,
    sign_tree_head,
    signed_tree_head_from_json,
    signed_tree_head_to_json,
)
from tests.conftest import BA_DINH, H26
from tests.support import fresh_database, seed_document

app = build_app()

NOW = datetime.now(UTC).replace(microsecond=0)
GOOD = seed_document(8801, [BA_DINH]).document_id
FORGED = seed_document(8802, [BA_DINH]).document_id  # stored bytes altered after archiving
LATE = seed_document(8803, [BA_DINH]).document_id  # archived after the last tree head
SUBMISSIONS = "lienthong.submissions"


def archive_credential(pki_dir: Path, platform: str) -> tuple[Any, tuple[bytes, ...]]:
    pki = PkiDirectory(pki_dir)
    entries = pki.find(agency_code=platform, role=CertRole.ARCHIVE)
    entry = entries[-1] if entries else pki.issue(
        agency_code=platform, role=CertRole.ARCHIVE, now=NOW - timedelta(hours=1)
    )  # fmt: skip
    key, chain = pki.credential(entry)
    return key, tuple(chain)


async def build_archive(conn: asyncpg.Connection, pki_dir: Path, platform: str) -> None:
    """Seven records (four notices around three submissions); the tree head covers six."""
    raws: list[tuple[bytes, str | None, str | None]] = [
        (b"notice-%d" % i, None, None) for i in (0, 1)
    ]
    for number, doc_id in ((8801, GOOD), (8802, FORGED)):
        env = seal(
            seed_document(number, [BA_DINH]),
            credentials=[load_credential(pki_dir, H26, SignerRole.AGENCY)],
            at=NOW - timedelta(minutes=10),
        )
        raws.append((encode_envelope(env), env.message_id, doc_id))
    raws += [(b"notice-4", None, None), (b"notice-5", None, None)]
    late = seal(
        seed_document(8803, [BA_DINH]),
        credentials=[load_credential(pki_dir, H26, SignerRole.AGENCY)],
        at=NOW - timedelta(minutes=5),
    )
    raws.append((encode_envelope(late), late.message_id, LATE))
    rows, hashes = [], []
    for seq, (raw, message_id, doc_id) in enumerate(raws):
        leaf = LeafRecord(
            seq, SUBMISSIONS, 0, seq, message_id, hashlib.sha256(raw).hexdigest(),
            format_archived_at(NOW),
        ).encode()  # fmt: skip
        hashes.append(leaf_hash(leaf))
        # The forged record: someone rewrote the stored bytes (one byte) around the rules.
        stored = raw[:-1] + bytes([raw[-1] ^ 1]) if doc_id == FORGED else raw
        rows.append(
            (seq, "submission" if doc_id else "notice", message_id, doc_id, stored,
             hashlib.sha256(raw).digest(), leaf, hashes[-1])
        )  # fmt: skip
    await conn.executemany(
        'INSERT INTO archive_record (seq, topic, partition, "offset", kind, message_id, '
        "document_id, raw, raw_sha256, leaf_data, leaf_hash, archived_at) "
        f"VALUES ($1, '{SUBMISSIONS}', 0, $1, $2, $3, $4, $5, $6, $7, $8, now())",
        rows,
    )
    _, nodes = append_leaves(RightEdge.empty(), 0, hashes)
    await conn.executemany("INSERT INTO merkle_node VALUES ($1, $2, $3)", nodes)
    covered, _ = append_leaves(RightEdge.empty(), 0, hashes[:6])
    key, chain = archive_credential(pki_dir, platform)
    head = TreeHead(size=6, root=covered.root(), timestamp=NOW, log_id="lienthong.archive/test")
    signed = sign_tree_head(head, key=key, chain=chain, at=NOW)
    await conn.execute(
        "INSERT INTO tree_head (size, root, signed) VALUES ($1, $2, $3::jsonb)",
        6,
        head.root,
        signed_tree_head_to_json(signed).decode(),
    )
    await conn.executemany(
        "INSERT INTO document (document_id, payload_type, sender, recipients, subject, "
        "submission_seq, submitted_at) VALUES ($1, 'official_document', $2, $3, $4, $5, $6)",
        [
            (doc_id, H26, [BA_DINH], "Quyết định hỗ trợ nhà ở", seq, NOW)
            for seq, (_, _, doc_id) in enumerate(raws)
            if doc_id
        ],
    )


@pytest.fixture(scope="module")
async def evidence_db(database_url: str, pki_dir: Path, settings: Any) -> AsyncIterator[str]:
    async with fresh_database(database_url) as url:
        conn = await asyncpg.connect(url)
        try:
            await build_archive(conn, pki_dir, settings.platform_agency)
        finally:
            await conn.close()
        yield url


@pytest.fixture(scope="module")
def env(evidence_db: str, service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "LIENTHONG_AUDIT_DATABASE_URL": auditor_url(evidence_db)}


@pytest.fixture(scope="module")
def cli() -> Iterator[CliRunner]:
    yield CliRunner()


def checks(cli: CliRunner, env: dict[str, str], *args: str, code: int) -> dict[str, str]:
    result = cli.invoke(app, ["audit", *args, "--format", "json"], env=env)
    assert result.exit_code == code, result.output
    return {c["check"]: c["result"] for c in json.loads(result.stdout)}


def test_verify_passes_every_check(cli: CliRunner, env: dict[str, str]) -> None:
    assert checks(cli, env, "verify", GOOD, code=0) == {
        "stored-bytes": "PASS",
        "leaf": "PASS",
        "document": "PASS",
        "envelope-signatures": "PASS",
        "tree-head-signature": "PASS",
        "inclusion": "PASS",
    }
    table = cli.invoke(app, ["audit", "verify", GOOD], env=env)
    assert table.exit_code == 0 and "inclusion" in table.stdout


def test_verify_finds_rewritten_bytes(cli: CliRunner, env: dict[str, str]) -> None:
    found = checks(cli, env, "verify", FORGED, code=1)
    assert found["stored-bytes"] == found["leaf"] == "FAIL"
    # The tree itself was not touched: the leaf is still where the tree head says.
    assert found["inclusion"] == "PASS"


def test_verify_says_when_no_tree_head_covers_the_record(
    cli: CliRunner, env: dict[str, str]
) -> None:
    found = checks(cli, env, "verify", LATE, code=1)
    assert found == {"evidence": "FAIL"}


async def test_node_store_reads_a_proof_in_one_query(evidence_db: str) -> None:
    conn = await asyncpg.connect(evidence_db)
    try:
        rows = await conn.fetch("SELECT level, idx, hash FROM merkle_node")
        store = PgNodeStore(conn)
        plan = plan_inclusion(2, 6)
        nodes = await store.get_many(plan.keys)
    finally:
        await conn.close()
    reference = DictNodeStore({(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
    assert store.calls == 1
    assert plan.assemble(nodes) == plan.run(reference)


@pytest.fixture(scope="module")
def bundle(cli: CliRunner, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evidence") / "bundle.zip"
    result = cli.invoke(app, ["audit", "export", GOOD, "--out", str(path)], env=env)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify-bundle runs where there is no archive: any use of the services is a failure."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify-bundle must not touch the services")

    for name in ("database_url", "kafka_bootstrap", "endpoints", "up", "check_database"):
        monkeypatch.setattr(manager, name, refuse)
        if name in services.__all__:
            monkeypatch.setattr(services, name, refuse)
    monkeypatch.setattr(asyncpg, "connect", refuse)


def test_export_then_verify_bundle_offline(
    cli: CliRunner, env: dict[str, str], bundle: Path, pki_dir: Path, offline: None
) -> None:
    offline_env = {**env, "LIENTHONG_AUDIT_DATABASE_URL": "postgresql://nowhere.invalid/x"}
    anchor = str(PkiDirectory(pki_dir).root_cert)
    found = checks(cli, offline_env, "verify-bundle", str(bundle), "--trust-anchor", anchor, code=0)
    assert found["inclusion"] == found["envelope-signatures"] == "PASS"
    assert found["anchor-pinned"] == "PASS"


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_one_changed_byte_fails_the_bundle(
    cli: CliRunner, env: dict[str, str], bundle: Path, tmp_path: Path, offline: None, where: float
) -> None:
    data = bytearray(bundle.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    changed = tmp_path / "changed.zip"
    changed.write_bytes(bytes(data))
    result = cli.invoke(app, ["audit", "verify-bundle", str(changed)], env=env)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout


async def test_verify_and_export_are_in_the_access_log(
    evidence_db: str, bundle: Path, cli: CliRunner, env: dict[str, str]
) -> None:
    conn = await asyncpg.connect(evidence_db)
    try:
        rows = await conn.fetch("SELECT command, args FROM audit_access_log ORDER BY id")
    finally:
        await conn.close()
    logged = [(r["command"], json.loads(r["args"])["document_id"]) for r in rows]
    assert ("verify", GOOD) in logged and ("export", GOOD) in logged
    assert ("verify", LATE) in logged  # asked, even though there was nothing to prove


@pytest.fixture
async def own_archive(
    database_url: str, pki_dir: Path, settings: Any, service_env: dict[str, str]
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The same archive in a database of the test's own, to be tampered with."""
    async with fresh_database(database_url) as url:
        conn = await asyncpg.connect(url)
        try:
            await build_archive(conn, pki_dir, settings.platform_agency)
        finally:
            await conn.close()
        yield url, {**service_env, "LIENTHONG_AUDIT_DATABASE_URL": auditor_url(url)}


async def as_superuser(url: str, *statements: str) -> None:
    """An insider with the database's superuser: every trigger off for the session."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


def test_a_document_row_pointed_at_another_documents_record_fails_verify_and_export(
    cli: CliRunner, own_archive: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = own_archive
    # FORGED's row now points at GOOD's record (seq 2): intact bytes, leaf and proof, but
    # another document's.
    asyncio.run(
        as_superuser(url, f"UPDATE document SET submission_seq = 2 WHERE document_id = '{FORGED}'")
    )
    result = cli.invoke(app, ["audit", "verify", FORGED, "--format", "json"], env=env)
    assert result.exit_code == 1, result.output
    found = {c["check"]: c for c in json.loads(result.stdout)}
    assert found["document"]["result"] == "FAIL"
    assert f"is document '{GOOD}', not '{FORGED}'" in found["document"]["detail"]
    assert found["stored-bytes"]["result"] == found["inclusion"]["result"] == "PASS"
    out = tmp_path / "b.zip"
    result = cli.invoke(app, ["audit", "export", FORGED, "--out", str(out)], env=env)
    assert result.exit_code != 0 and not out.exists()
    assert f"is document '{GOOD}', not '{FORGED}'" in result.output


def test_erased_bytes_are_a_finding_not_a_secret_document(
    cli: CliRunner, own_archive: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = own_archive
    asyncio.run(as_superuser(url, "UPDATE archive_record SET raw = NULL WHERE seq = 2"))
    result = cli.invoke(app, ["audit", "verify", GOOD, "--format", "json"], env=env)
    assert result.exit_code == 1, result.output
    found = {c["check"]: c for c in json.loads(result.stdout)}
    assert found["stored-bytes"]["result"] == "FAIL"
    assert "erased" in found["stored-bytes"]["detail"]
    assert "secret" not in result.stdout
    out = tmp_path / "b.zip"
    result = cli.invoke(app, ["audit", "export", GOOD, "--out", str(out)], env=env)
    assert result.exit_code != 0 and "erased" in result.output and not out.exists()


def test_verify_bundle_without_a_pinned_anchor_does_not_pass(
    cli: CliRunner, env: dict[str, str], bundle: Path, offline: None
) -> None:
    result = cli.invoke(app, ["audit", "verify-bundle", str(bundle), "--format", "json"], env=env)
    assert result.exit_code == 1, result.output
    found = {c["check"]: c["result"] for c in json.loads(result.stdout)}
    assert found["anchor-pinned"] == "SKIP" and "FAIL" not in found.values()
    assert "--trust-anchor" in result.stderr


def test_a_bundle_labelled_with_another_document_fails_verify_bundle(
    cli: CliRunner, env: dict[str, str], bundle: Path, pki_dir: Path, tmp_path: Path, offline: None
) -> None:
    with zipfile.ZipFile(bundle) as zf:
        m = {n: zf.read(n) for n in zf.namelist()}
    proof = json.loads(m["proof.json"])
    relabelled = build_bundle(
        envelope_bytes=m["envelope.avro"],
        leaf_data=m["leaf.bin"],
        leaf_index=proof["leaf_index"],
        inclusion_proof=[bytes.fromhex(h) for h in proof["inclusion_path"]],
        signed_tree_head=signed_tree_head_from_json(m["tree-head.json"]),
        trust_anchors_pem=m["trust/anchors.pem"],
        crls_pem=m["trust/crls.pem"],
        metadata={**json.loads(m["metadata.json"]), "document_id": FORGED},
    )
    path = tmp_path / "relabelled.zip"
    path.write_bytes(relabelled)
    anchor = str(PkiDirectory(pki_dir).root_cert)
    found = checks(cli, env, "verify-bundle", str(path), "--trust-anchor", anchor, code=1)
    assert found["document"] == "FAIL" and found["envelope-signatures"] == "PASS"
    found = checks(
        cli, env, "verify-bundle", str(bundle), "--trust-anchor", anchor, "--document", FORGED,
        code=1,
    )  # fmt: skip
    assert found["document"] == "FAIL"
