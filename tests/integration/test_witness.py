"""Witnesses on the real broker and database: the archiver publishes checkpoints, two
witnesses (each with its own key, state file and proofs read as the auditor role) cosign them,
the cosignatures reach the archive, and `audit check --witness` then holds the archive to them:
an insider with the database superuser and the archive's keys who removes records, rewrites the
tail or signs a second head of one size is found, with the signed statements as evidence."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumers.archive import WitnessPolicy, collect_cosignatures, load_log_key
from consumers.archive.check import run_check
from consumers.witness import load_state
from infra.compose.archive import archive_log_id, archive_parse_context
from infra.compose.audit import auditor_url
from infra.compose.witness import witness_main
from infra.settings import Settings
from signing.note import COSIGNATURE_V1, Checkpoint, NoteSigner, sign_note
from signing.pkidir import PkiDirectory
from signing.seal import seal
from tests.conftest import BA_DINH, H26
from tests.integration.test_archive import (
    archive_db,
    archive_pki,
    exchange,
    running_archiver,
    wait_for_records,
)
from tests.integration.test_archive_tamper import as_superuser, check_cli
from tests.integration.test_router import creds
from tests.support import kafka_options, publish, read_topic, seed_document, utcnow

__all__ = ["archive_db", "archive_pki", "exchange"]

DOCS = 12
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Witnessed:
    url: str
    settings: Settings
    witnesses: tuple[NoteSigner, NoteSigner]
    states: tuple[Path, Path]
    size: int

    def keys(self) -> list[str]:
        return [a for w in self.witnesses for a in ("--witness", w.verifier.encode())]

    def policy(self, required: int = 2, notes: tuple[bytes, ...] = ()) -> WitnessPolicy:
        return WitnessPolicy(tuple(w.verifier for w in self.witnesses), required, notes=notes)


async def _cosignature_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM cosignature"))
    finally:
        await conn.close()


@pytest.fixture
async def witnessed(
    exchange: Settings, bootstrap: str, archive_pki: Path, archive_db: str, tmp_path: Path
) -> AsyncIterator[Witnessed]:
    docs = [
        seal(seed_document(9300 + i, [BA_DINH]), credentials=creds(archive_pki, H26), at=utcnow())
        for i in range(DOCS)
    ]
    async with running_archiver(exchange, bootstrap, archive_db, max_batch=5):
        await publish(bootstrap, exchange.topic("submissions"), docs)
        assert await wait_for_records(archive_db, DOCS) == DOCS
    # Stopping signed a head over all 12 and published it as a checkpoint.
    log_key = load_log_key(exchange.pki_dir, archive_log_id(exchange)).verifier
    witnesses = (
        NoteSigner.generate("bo-noi-vu.gov.vn/witness", COSIGNATURE_V1),
        NoteSigner.generate("ha-noi.gov.vn/witness", COSIGNATURE_V1),
    )
    states = (tmp_path / "w1.json", tmp_path / "w2.json")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            witness_main(
                exchange, bootstrap, archive_db, signer=w, log_key=log_key, state_file=s, stop=stop
            )
        )
        for w, s in zip(witnesses, states, strict=True)
    ]
    tasks.append(
        asyncio.create_task(
            collect_cosignatures(
                bootstrap,
                exchange.topic("cosignatures"),
                archive_db,
                stop,
                client_options=kafka_options(),
            )
        )
    )
    try:
        for _ in range(150):
            if await _cosignature_rows(archive_db) >= 2:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert await _cosignature_rows(archive_db) == 2
    yield Witnessed(archive_db, exchange, witnesses, states, DOCS)


async def test_witnesses_cosign_the_archives_checkpoint_and_check_holds_it(
    witnessed: Witnessed, archive_pki: Path, bootstrap: str, service_env: dict[str, str]
) -> None:
    for state in witnessed.states:
        held = load_state(state)
        assert held is not None and held.size == DOCS  # kept before the cosignature left
    cosigned = await read_topic(
        bootstrap, witnessed.settings.topic("cosignatures"), expect=2, settle_s=0.2
    )
    assert {r.key for r in cosigned} == {f"{archive_log_id(witnessed.settings)}/{DOCS}".encode()}
    report = await run_check(
        witnessed.url,
        trust=PkiDirectory(archive_pki).trust_store(),
        at=utcnow(),
        derive=archive_parse_context(witnessed.settings),
        witnesses=witnessed.policy(),
        origin=archive_log_id(witnessed.settings),
    )
    assert report.findings == [] and report.witnessed == DOCS
    prefix = witnessed.settings.topic_prefix
    done = await asyncio.to_thread(
        check_cli, service_env, witnessed.url, *witnessed.keys(), "--witnesses", "2",
        prefix=prefix,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"witnessed up to {DOCS}" in done.stdout
    # A third witness that never cosigned cannot make up the quorum.
    stranger = NoteSigner.generate("x.example/w", COSIGNATURE_V1)
    done = await asyncio.to_thread(
        check_cli, service_env, witnessed.url, *witnessed.keys(), "--witness",
        stranger.verifier.encode(), "--witnesses", "3", prefix=prefix,
    )  # fmt: skip
    assert done.returncode == 1 and "cosigned by 3 of the 3 witnesses" in done.stdout


async def test_everything_removed_with_the_offsets_is_found_against_a_held_checkpoint(
    witnessed: Witnessed, service_env: dict[str, str], tmp_path: Path
) -> None:
    # What the auditor obtained from each witness: the checkpoint it cosigned.
    held = load_state(witnessed.states[0])
    assert held is not None
    conn = await asyncpg.connect(witnessed.url)
    notes = [r["note"] for r in await conn.fetch("SELECT note FROM cosignature ORDER BY witness")]
    await conn.close()
    kept = []
    for i, note in enumerate(notes):
        kept += ["--checkpoint", str(tmp_path / f"checkpoint-{i}.txt")]
        (tmp_path / f"checkpoint-{i}.txt").write_text(note)
    await as_superuser(
        witnessed.url,
        "TRUNCATE archive_record, merkle_node, tree_head, archive_offset, cosignature CASCADE",
    )
    prefix = witnessed.settings.topic_prefix
    # The database alone now agrees with itself: an empty archive.
    done = await asyncio.to_thread(check_cli, service_env, witnessed.url, prefix=prefix)
    assert done.returncode == 0 and "intact: 0 records" in done.stdout
    # Against the witnesses, it is not.
    done = await asyncio.to_thread(
        check_cli, service_env, witnessed.url, *witnessed.keys(), prefix=prefix
    )
    assert done.returncode == 1 and "no checkpoint of this log is cosigned by 2" in done.stdout
    done = await asyncio.to_thread(
        check_cli, service_env, witnessed.url, *witnessed.keys(), *kept, prefix=prefix
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no checkpoint of this log is cosigned" not in done.stdout  # the quorum is there
    assert f"2 witness(es) cosigned a tree of {DOCS} records, the archive holds 0" in done.stdout
    assert base64.b64encode(held.root).decode() in done.stdout  # the evidence is printed


async def test_a_rewritten_tail_and_a_second_head_of_one_size_are_found(
    witnessed: Witnessed, service_env: dict[str, str], archive_pki: Path
) -> None:
    # The insider has the log key too: they sign another head of the same size.
    log = load_log_key(witnessed.settings.pki_dir, archive_log_id(witnessed.settings))
    forged_root = bytes(32)
    forged = sign_note(Checkpoint(log.name, DOCS, forged_root).text(), log).encode().decode()
    cut = DOCS - 4
    await as_superuser(
        witnessed.url,
        f"DELETE FROM document WHERE submission_seq >= {cut}",
        f"DELETE FROM archive_record WHERE seq >= {cut}",
        f"DELETE FROM merkle_node WHERE ((idx + 1) << level) > {cut}",
        f"DELETE FROM tree_head WHERE size > {cut}",
        f"UPDATE archive_offset SET next_offset = {cut}",  # the offsets agree again
        f"INSERT INTO tree_head (size, root, signed, checkpoint) SELECT {DOCS}, "
        f"'\\x{forged_root.hex()}', '{{}}', '{forged}'",
    )
    report = await run_check(
        witnessed.url,
        trust=PkiDirectory(archive_pki).trust_store(),
        at=utcnow(),
        witnesses=witnessed.policy(),
        origin=archive_log_id(witnessed.settings),
    )
    problems = "\n".join(f.problem for f in report.findings)
    assert "split view: the log signed two heads of size 12" in problems
    assert forged in problems  # both signed statements are the evidence
    assert f"cosigned a tree of {DOCS} records, the archive holds {cut}" in problems
    assert json.dumps(report.witnessed) == str(DOCS)


def audit_cli(
    service_env: dict[str, str], w: Witnessed, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **service_env,
        "LIENTHONG_DATABASE_URL": w.url,
        "LIENTHONG_AUDIT_DATABASE_URL": auditor_url(w.url),
        "LIENTHONG_TOPIC_PREFIX": w.settings.topic_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "audit", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_verify_export_and_verify_bundle_with_witnesses(
    witnessed: Witnessed, service_env: dict[str, str], archive_pki: Path, tmp_path: Path
) -> None:
    doc = seed_document(9300, [BA_DINH]).document_id
    keys = witnessed.keys()
    done = await asyncio.to_thread(
        audit_cli, service_env, witnessed, "verify", doc, *keys, "--format", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = {c["check"]: c for c in json.loads(done.stdout)}
    assert found["witnessed"]["result"] == "PASS" and "cosigned by" in found["witnessed"]["detail"]
    bundle = tmp_path / "b.zip"
    done = await asyncio.to_thread(
        audit_cli, service_env, witnessed, "export", doc, "--out", str(bundle), *keys
    )
    assert done.returncode == 0, done.stdout + done.stderr
    anchor = str(PkiDirectory(archive_pki).root_cert)
    done = await asyncio.to_thread(
        audit_cli, service_env, witnessed, "verify-bundle", str(bundle), "--trust-anchor",
        anchor, *keys, "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert {c["check"]: c["result"] for c in json.loads(done.stdout)}["witnessed"] == "PASS"
    stranger = NoteSigner.generate("x.example/w", COSIGNATURE_V1).verifier.encode()
    done = await asyncio.to_thread(
        audit_cli, service_env, witnessed, "verify-bundle", str(bundle), "--trust-anchor",
        anchor, *keys, "--witness", stranger, "--witnesses", "3",
    )  # fmt: skip
    assert done.returncode == 1 and "FAIL" in done.stdout
    # Not our verifier: the archive's own checkpoint with both witnesses' lines, in Go.
    go = shutil.which("go")
    if go is None:
        return
    with zipfile.ZipFile(bundle) as zf:
        note = zf.read("checkpoint.note")
    log_key = load_log_key(witnessed.settings.pki_dir, archive_log_id(witnessed.settings))
    checked = await asyncio.to_thread(
        go_verify, go, tmp_path, note, log_key.verifier.encode(), "2", *keys[1::2]
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1].startswith(
        f"checkpoint {archive_log_id(witnessed.settings)} {DOCS} "
    )


def go_verify(go: str, tmp: Path, note: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/interop/c2spverify (golang.org/x/mod/sumdb/note, transparency-dev/formats)."""
    binary = tmp / "c2spverify"
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=ROOT / "tests/interop/c2spverify",
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return subprocess.run(
        [str(binary), *args], input=note.decode(), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


async def test_a_witness_refuses_a_second_head_of_one_size_published_on_the_topic(
    witnessed: Witnessed, bootstrap: str
) -> None:
    """The insider signs, with the log's key, another head of the size the witnesses cosigned
    and publishes it: each witness refuses it, keeps both notes, and cosigns nothing new."""
    settings = witnessed.settings
    log = load_log_key(settings.pki_dir, archive_log_id(settings))
    forged = sign_note(Checkpoint(log.name, DOCS, bytes(32)).text(), log).encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic("checkpoints"), b"{}", key=f"{log.name}/{DOCS}".encode(),
            headers=[("lt-checkpoint", forged)],
        )  # fmt: skip
    finally:
        await producer.stop()
    w, state = witnessed.witnesses[0], witnessed.states[0]
    stop, idle = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        witness_main(
            settings,
            bootstrap,
            witnessed.url,
            signer=w,
            log_key=log.verifier,
            state_file=state,
            stop=stop,
            idle=idle,
        )
    )
    try:
        await asyncio.wait_for(idle.wait(), 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    conflicts = list(state.parent.glob("conflict-split_view-*.txt"))
    assert len(conflicts) == 1 and forged.decode() in conflicts[0].read_text()
    held = load_state(state)
    assert held is not None and held.root != bytes(32)  # still the honest head
    # Only the first run's two cosignatures (and the restart's repeat of the honest head).
    cosigned = await read_topic(bootstrap, settings.topic("cosignatures"), expect=4, timeout_s=3)
    assert all(b"\n" + base64.b64encode(bytes(32)) not in r.value for r in cosigned)
