"""`lienthong subscribe` on the real broker: files, refusals, answers, commits, graceful stop."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner

from consumers.inbox.files import REFUSED, read_jsonl, safe_name
from infra.cli.subscribe import register
from infra.context import agency_directory, trust_store
from infra.settings import Settings
from schemas.codec import decode_envelope, decode_payload, encode_envelope, encode_payload
from schemas.common import AgencyRef, Attachment
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope, PayloadType, SignerRole
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing.envelope import verify_envelope
from signing.seal import load_credential, seal
from tests.support import kafka_options

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
PDF = b"%PDF-1.7\n" + hashlib.sha256(b"4612").digest() * 3000


def make_document(number: str, *attachments: Attachment) -> OfficialDocument:
    base = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    code = dataclasses.replace(base.code, number=number)
    return dataclasses.replace(
        base,
        code=code,
        document_id=f"{H26},{base.promulgation_date:%Y/%m/%d},{code}",
        to=(AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),),
        to_places=(),
        attachments=attachments,
    )


def seal_document(pki: Path, doc: OfficialDocument) -> Envelope:
    creds = [
        load_credential(pki, H26, SignerRole.PERSON, person_name="Nguyễn Văn Sửu"),
        load_credential(pki, H26, SignerRole.AGENCY),
    ]
    return seal(doc, credentials=creds, at=datetime.now(UTC))


def put(bootstrap: str, topic: str, envelopes: list[Envelope]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_options(), acks="all")
        await producer.start()
        try:
            for env in envelopes:
                key = env.document_id.encode()
                await producer.send_and_wait(topic, encode_envelope(env), key=key)
        finally:
            await producer.stop()

    asyncio.run(run())


def cli(service_env: dict[str, str], *args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.callback()(lambda: None)  # keep `subscribe` a subcommand, as under `lienthong`
    register(app)
    result = CliRunner().invoke(app, ["subscribe", *args], env=service_env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def statuses_in_submissions(
    settings: Settings, bootstrap: str, document_ids: set[str], expect: int
) -> list[tuple[Envelope, StatusNotice]]:
    """The status notices for these documents that reached submissions (read from the start)."""

    async def run() -> list[tuple[Envelope, StatusNotice]]:
        consumer = AIOKafkaConsumer(
            settings.topic("submissions"),
            bootstrap_servers=bootstrap,
            **kafka_options(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        found: list[tuple[Envelope, StatusNotice]] = []
        try:
            deadline = time.monotonic() + 20
            while len(found) < expect and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        if r.key is None or r.key.decode() not in document_ids:
                            continue
                        env = decode_envelope(r.value)
                        if env.payload_type is PayloadType.STATUS_NOTICE:
                            notice = decode_payload(env)
                            assert isinstance(notice, StatusNotice)
                            found.append((env, notice))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


def test_subscribe_writes_deliveries_refuses_forgeries_and_answers(
    service_env: dict[str, str],
    exchange_topics: Settings,
    bootstrap: str,
    pki_dir: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    settings = exchange_topics
    doc = make_document(
        f"7{unique[:6]}", Attachment.inline("Quyết định.pdf", "application/pdf", PDF)
    )
    good = seal_document(pki_dir, doc)
    forged_doc = make_document(f"8{unique[:6]}")
    forged = seal_document(pki_dir, forged_doc)
    _, _, other = encode_payload(dataclasses.replace(forged_doc, subject="Nội dung bị sửa"))
    forged = dataclasses.replace(forged, payload=other)
    put(bootstrap, settings.inbox(BA_DINH), [good, forged])

    out = tmp_path / "ba-dinh"
    args = ["--agency", BA_DINH, "--out", str(out), "--group", f"test.cli.{unique}"]
    code, output = cli(service_env, *args, "--idle-timeout", "3")
    assert code == 0, output

    folder = out / safe_name(doc.document_id)
    assert (folder / "attachments" / "Quyết định.pdf").read_bytes() == PDF
    assert (folder / "envelope.avro").read_bytes() == encode_envelope(good)
    assert json.loads((folder / "document.json").read_text())["document_id"] == doc.document_id
    proof = json.loads((folder / "verification.json").read_text())
    assert [s["role"] for s in proof["signatures"]] == ["PERSON", "AGENCY"]
    assert f"{doc.document_id}  from {H26}  document  answered 01" in output

    refused = [r for r in read_jsonl(out / REFUSED) if r["message_id"] == forged.message_id]
    assert [r["reason"] for r in refused] == ["BAD_SIGNATURE"]
    assert "Nội dung bị sửa" not in (out / REFUSED).read_text()
    assert not (out / safe_name(forged_doc.document_id)).exists()

    # The answer went out through submissions, sealed by Ba Đình, addressed to H26. The forgery
    # gets none: its sender is unproven, and answering would let a forger aim 02s at anyone.
    answers = statuses_in_submissions(
        settings, bootstrap, {doc.document_id, forged_doc.document_id}, expect=2
    )
    got = sorted((n.document_id, str(n.code)) for _, n in answers)
    assert got == [(doc.document_id, "01")]
    for env, notice in answers:
        assert env.recipients == (H26,) and notice.from_agency.code == BA_DINH
        verified = verify_envelope(
            env,
            trust=trust_store(settings),
            agencies=agency_directory(settings),
            at=datetime.now(UTC),
        )
        assert verified.agency_code == BA_DINH
        if notice.code is StatusCode.REJECTED:
            assert notice.description and notice.description.startswith("BAD_SIGNATURE")

    # Run again from the beginning: the same files, no second answer.
    code, output = cli(service_env, *args, "--idle-timeout", "2", "--from-beginning")
    assert code == 0, output
    assert f"{doc.document_id}  from {H26}  document  written again (01 already sent)" in output
    assert len([r for r in read_jsonl(out / REFUSED) if r["message_id"] == forged.message_id]) == 1


def test_a_group_resumes_where_it_committed(
    service_env: dict[str, str],
    exchange_topics: Settings,
    bootstrap: str,
    pki_dir: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    settings = exchange_topics
    out = tmp_path / "out"
    group = ["--group", f"test.cli.{unique}"]
    base = ["--agency", BA_DINH, "--out", str(out), "--no-answer", *group]
    cli(service_env, *base, "--idle-timeout", "2")  # catch the group up with the inbox
    docs = [make_document(f"9{unique[:5]}{n}") for n in (1, 2, 3)]
    put(bootstrap, settings.inbox(BA_DINH), [seal_document(pki_dir, d) for d in docs])

    code, output = cli(service_env, *base, "--max-messages", "1")
    assert code == 0 and docs[0].document_id in output and docs[1].document_id not in output
    assert "1 record(s) handled" in output

    code, output = cli(service_env, *base, "--idle-timeout", "2")
    assert docs[0].document_id not in output
    assert docs[1].document_id in output and docs[2].document_id in output

    code, output = cli(service_env, *base, "--idle-timeout", "2")
    assert not any(d.document_id in output for d in docs)

    code, output = cli(service_env, *base, "--idle-timeout", "2", "--from-beginning")
    assert all(d.document_id in output for d in docs)
    assert {p.name for p in out.iterdir()} >= {safe_name(d.document_id) for d in docs}


def test_bad_agency_code_is_one_line(service_env: dict[str, str], tmp_path: Path) -> None:
    code, output = cli(service_env, "--agency", "31.H26", "--out", str(tmp_path))
    assert code == 2 and "is not an agency code" in output
    assert "Traceback" not in output


@pytest.mark.timeout(60)
def test_sigterm_stops_after_the_record_in_hand(
    service_env: dict[str, str],
    exchange_topics: Settings,
    bootstrap: str,
    pki_dir: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    settings = exchange_topics
    doc = make_document(f"6{unique[:6]}")
    put(bootstrap, settings.inbox(BA_DINH), [seal_document(pki_dir, doc)])
    script = (
        "import typer; from infra.cli.subscribe import register; app = typer.Typer(); "
        "app.callback()(lambda: None); register(app); app()"
    )
    args = ["subscribe", "--agency", BA_DINH, "--out", str(tmp_path), "--no-answer"]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args, "--group", f"test.cli.{unique}"],
        env={**service_env, "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if doc.document_id in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        assert proc.wait(timeout=20) == 0
        assert "record(s) handled" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
