"""The sending commands as a clerk runs them: files in, a message id out, refusals in one line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.settings import Settings
from schemas.codec import decode_envelope, decode_payload
from schemas.document import OfficialDocument, document_from_record, document_to_record
from schemas.jsonform import to_json
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.registry import default_registry
from schemas.samples import example_record
from schemas.status import StatusNotice
from tests.support import kafka_options

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
ROOT = Path(__file__).resolve().parents[2]
# Until the lead mounts the commands on `lienthong`, an app of our own runs them.
APP = (
    "import typer; from infra.cli.send import register; from infra.logs import configure_logging;"
    "configure_logging('INFO', json=True); app = typer.Typer(); register(app); app()"
)


def lienthong(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", APP, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fields(stdout: str) -> dict[str, str]:
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("message_id=")]
    return dict(part.split("=", 1) for part in line.split())


def write_document(path: Path, unique: str, **changes: object) -> OfficialDocument:
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    number = str(int(unique[:6], 16) % 10**9)
    doc = replace(
        doc,
        code=replace(doc.code, number=number),
        document_id=f"{H26},2019/08/28,{number}/{doc.code.notation}",
        **changes,  # type: ignore[arg-type]
    )
    schema = default_registry().latest("official_document").raw
    record = to_json(schema, document_to_record(doc))
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    return doc


async def read_one(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for _ in range(40):
            for msg in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if msg.offset == offset and msg.value is not None:
                    return msg.value
    finally:
        await consumer.stop()
    raise AssertionError(f"nothing at {topic}/{partition}/{offset}")


def _env(service_env: dict[str, str], pki_dir: Path) -> dict[str, str]:
    return {**service_env, "LIENTHONG_PKI_DIR": str(pki_dir)}


async def test_send_a_json_document_with_an_attachment_prints_its_message_id(
    service_env: dict[str, str],
    exchange_topics: Settings,
    bootstrap: str,
    pki_dir: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    doc = write_document(tmp_path / "quyet-dinh.json", unique)
    scan = tmp_path / "quyet-dinh-4612.pdf"
    scan.write_bytes(b"%PDF-1.4\n" + os.urandom(100_000))
    done = await asyncio.to_thread(
        lienthong,
        _env(service_env, pki_dir),
        "send",
        str(tmp_path / "quyet-dinh.json"),
        "--attach",
        str(scan),
        "--agency",
        H26,
        "--person",
        "Nguyễn Văn Sửu",
    )
    assert done.returncode == 0, done.stderr
    out = fields(done.stdout)
    assert out["document_id"] == doc.document_id
    value = await read_one(bootstrap, out["topic"], int(out["partition"]), int(out["offset"]))
    envelope = decode_envelope(value)
    assert envelope.message_id == out["message_id"]
    sent = decode_payload(envelope)
    assert isinstance(sent, OfficialDocument)
    (attachment,) = sent.attachments
    assert (attachment.name, attachment.media_type) == (scan.name, "application/pdf")
    assert attachment.data == scan.read_bytes()

    answered = await asyncio.to_thread(
        lienthong,
        _env(service_env, pki_dir),
        "status", "send", "--agency", BA_DINH, "--document", doc.document_id, "--code", "01",
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    status = fields(answered.stdout)
    assert status["partition"] == out["partition"]  # the document's key, its partition
    notice = decode_payload(
        decode_envelope(
            await read_one(
                bootstrap, status["topic"], int(status["partition"]), int(status["offset"])
            )
        )
    )
    assert isinstance(notice, StatusNotice)
    assert (notice.from_agency.code, notice.code) == (BA_DINH, "01")


async def test_a_secret_document_exits_2_in_one_line_and_nothing_is_produced(
    service_env: dict[str, str],
    exchange_topics: Settings,
    bootstrap: str,
    pki_dir: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    from schemas.common import SecrecyMarking

    path = tmp_path / "mat.json"
    write_document(path, unique, secrecy=SecrecyMarking.TOI_MAT, subject="Nội dung mật")
    topic = exchange_topics.topic("submissions")
    before = await _end_offsets(bootstrap, topic)
    done = await asyncio.to_thread(
        lienthong, _env(service_env, pki_dir), "send", str(path), "--agency", H26
    )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert "secret_document" in line
    assert "Nội dung mật" not in done.stderr  # the content is never logged
    assert await _end_offsets(bootstrap, topic) == before


async def test_a_rejection_without_reason_and_a_missing_file_fail_cleanly(
    service_env: dict[str, str], pki_dir: Path, tmp_path: Path
) -> None:
    env = _env(service_env, pki_dir)
    rejected = await asyncio.to_thread(
        lienthong, env,
        "status", "send", "--agency", BA_DINH, "--code", "02",
        "--document", "000.00.00.H26,2019/08/28,4612/QĐ-UBND",
    )  # fmt: skip
    assert rejected.returncode == 2
    assert "missing_reason" in rejected.stderr
    missing = await asyncio.to_thread(
        lienthong, env, "send", str(tmp_path / "nowhere.json"), "--agency", H26
    )
    assert missing.returncode == 2
    assert "nowhere.json" in missing.stderr
    assert "Traceback" not in missing.stderr + rejected.stderr


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kafka_options())
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: off for tp, off in ends.items()}


async def test_paper_register_from_the_example_file(
    service_env: dict[str, str], exchange_topics: Settings, bootstrap: str, pki_dir: Path
) -> None:
    example = ROOT / "schemas/examples/paper_exchange_record/v1/paper-incoming-vpcp.json"
    done = await asyncio.to_thread(
        lienthong,
        _env(service_env, pki_dir),
        "paper", "register", str(example), "--agency", "000.00.33.H26",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = fields(done.stdout)
    envelope = decode_envelope(
        await read_one(bootstrap, out["topic"], int(out["partition"]), int(out["offset"]))
    )
    assert (envelope.payload_type, envelope.sender) == ("PAPER_EXCHANGE_RECORD", "000.00.33.H26")
