"""The drop folder's file states with a fake producer: a crash at any point between reading a
file and moving it to done/ publishes the same sealed envelope, never a second one."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.gateway import DropFolder, JournalEntry, Step, next_step
from infra.gateway.dropfolder import STATE_DIR
from producers.sender import DocumentSender
from schemas.codec import decode_envelope, decode_payload, encode_envelope
from schemas.document import OfficialDocument
from schemas.envelope import Envelope, SignerRole
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edxml"
H13 = "002.00.20.H13"  # the sender of the national sample edoc_new
G22 = "000.00.00.G22"  # the Government Office, sender of the update, replacement, revocation


class Crash(Exception):
    """The process dies here."""


@dataclass
class Meta:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeProducer:
    sent: list[bytes] = field(default_factory=list)
    crash_before: bool = False  # dies before Kafka has the record
    crash_after: bool = False  # Kafka has it, the process dies before hearing so

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Meta:
        if self.crash_before:
            raise Crash("before the ack")
        self.sent.append(value)
        if self.crash_after:
            raise Crash("after the ack")
        return Meta(topic, 0, len(self.sent) - 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW)
    for code in (H13, G22):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW)
    return root


def sender(pki: Path, fake: FakeProducer, code: str = H13) -> DocumentSender:
    creds = [load_credential(pki, code, SignerRole.AGENCY)]
    return DocumentSender(
        "unused:9092", credentials=creds, topic="t.submissions", clock=lambda: NOW, producer=fake
    )


class CountingSeal:
    def __init__(self, sender: DocumentSender) -> None:
        self.sender = sender
        self.calls = 0

    def __call__(self, payload: Any, recipients: Sequence[str] | None) -> Envelope:
        self.calls += 1
        return self.sender.seal(payload, recipients)


async def run(pki: Path, in_dir: Path, fake: FakeProducer, **kw: Any) -> tuple[list[str], int]:
    """One gateway process life: a new sender, a new DropFolder over the same directory."""
    s = sender(pki, fake)
    seal = CountingSeal(s)
    async with s:
        folder = DropFolder(in_dir, seal=seal, publish=s.send_envelope, **kw)
        lines = [o.line() for o in await folder.run_once()]
    return lines, seal.calls


def drop(in_dir: Path, name: str = "cv-7816.edxml", sample: str = "edoc_new") -> bytes:
    in_dir.mkdir(parents=True, exist_ok=True)
    data = (FIXTURES / f"{sample}.edxml").read_bytes()
    (in_dir / name).write_bytes(data)
    return data


def test_next_step_follows_the_journal() -> None:
    entry = JournalEntry("ab", "f.edxml", "m", "d")
    assert next_step(None) is Step.SEAL
    assert next_step(entry) is Step.PUBLISH
    assert next_step(JournalEntry("ab", "f.edxml", "m", "d", acked=True, offset=3)) is Step.MOVE


async def test_a_dropped_file_is_sealed_sent_and_moved_to_done(pki: Path, tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    data = drop(in_dir)
    fake = FakeProducer()
    lines, seals = await run(pki, in_dir, fake)
    (line,) = lines
    assert line.startswith("cv-7816.edxml  sent  document_id=002.00.20.H13,")
    assert "flags=" in line and "agency_code_normalised" in line
    assert seals == 1 and len(fake.sent) == 1
    assert not (in_dir / "cv-7816.edxml").exists()
    assert (in_dir / "done" / "cv-7816.edxml").read_bytes() == data
    sent = decode_payload(decode_envelope(fake.sent[0]))
    assert isinstance(sent, OfficialDocument)
    assert sent.national is not None and sent.national.original == data
    sha = hashlib.sha256(data).hexdigest()
    assert (in_dir / STATE_DIR / f"{sha}.avro").read_bytes() == fake.sent[0]


async def test_a_crash_before_the_ack_republishes_the_same_envelope(
    pki: Path, tmp_path: Path
) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir)
    with pytest.raises(Crash):
        await run(pki, in_dir, FakeProducer(crash_before=True))
    assert (in_dir / "cv-7816.edxml").exists()  # not acknowledged: not moved
    journalled = (in_dir / STATE_DIR / "journal.jsonl").read_text("utf-8")
    fake = FakeProducer()
    lines, seals = await run(pki, in_dir, fake)
    assert seals == 0  # not sealed again: the journalled envelope is published
    (value,) = fake.sent
    envelope = decode_envelope(value)
    assert envelope.message_id in journalled
    assert (
        encode_envelope(envelope)
        == (
            in_dir / STATE_DIR / f"{hashlib.sha256(drop(tmp_path / 'x')).hexdigest()}.avro"
        ).read_bytes()
    )
    assert (in_dir / "done" / "cv-7816.edxml").exists()
    assert lines[0].split()[1] == "sent"


async def test_a_crash_after_the_ack_sends_the_identical_bytes_again(
    pki: Path, tmp_path: Path
) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir)
    first = FakeProducer(crash_after=True)
    with pytest.raises(Crash):
        await run(pki, in_dir, first)
    again = FakeProducer()
    await run(pki, in_dir, again)
    # Kafka may now hold two copies: byte for byte the same, which the router calls RESUBMITTED.
    assert first.sent == again.sent and len(again.sent) == 1
    assert (in_dir / "done" / "cv-7816.edxml").exists()


async def test_a_crash_after_the_journalled_ack_before_the_move_only_moves(
    pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir)
    fake = FakeProducer()

    def crash(self: DropFolder, path: Path, folder: Path) -> Path:
        raise Crash("before the move")

    with monkeypatch.context() as m:
        m.setattr(DropFolder, "move", crash)
        with pytest.raises(Crash):
            await run(pki, in_dir, fake)
    assert len(fake.sent) == 1 and (in_dir / "cv-7816.edxml").exists()
    lines, seals = await run(pki, in_dir, fake)
    assert (seals, len(fake.sent)) == (0, 1)  # nothing published twice
    assert lines[0].split()[1:3] == ["sent", "before"]
    assert (in_dir / "done" / "cv-7816.edxml").exists()


async def test_the_same_bytes_dropped_again_are_not_sent_again(pki: Path, tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir)
    fake = FakeProducer()
    await run(pki, in_dir, fake)
    drop(in_dir)  # the document system sends it once more, under the same name
    lines, _ = await run(pki, in_dir, fake)
    assert len(fake.sent) == 1
    assert "sent before" in lines[0]
    assert len(list((in_dir / "done").iterdir())) == 2  # both files kept, neither overwritten


async def test_a_bad_file_is_rejected_with_its_reason_beside_it(pki: Path, tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "broken.edxml").write_bytes(b"<edXML:edXML xmlns:edXML='x'><unclosed>")
    drop(in_dir, "edoc.edxml", "edoc")  # the SDK's example: an undeclared prefix
    (in_dir / "half.edxml.part").write_bytes(b"<")  # still being written: left alone
    fake = FakeProducer()
    lines, _ = await run(pki, in_dir, fake)
    assert fake.sent == []
    assert sorted(ln.split()[1] for ln in lines) == ["rejected", "rejected"]
    for name in ("broken.edxml", "edoc.edxml"):
        assert (in_dir / "rejected" / name).exists()
        assert (in_dir / "rejected" / f"{name}.reason.txt").read_text().strip()
    assert (in_dir / "half.edxml.part").exists()


async def test_a_document_of_another_agency_is_rejected_not_sent(pki: Path, tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir, "x.edxml", "edoc_new")
    other = (in_dir / "x.edxml").read_bytes().replace(b"002.00.20.H13", b"000.00.00.H26", 1)
    (in_dir / "x.edxml").write_bytes(other)
    fake = FakeProducer()
    lines, _ = await run(pki, in_dir, fake)
    assert fake.sent == [] and "rejected" in lines[0]
    reason = (in_dir / "rejected" / "x.edxml.reason.txt").read_text()
    assert "H26" in reason or "sender" in reason


async def test_a_torn_journal_line_is_a_state_change_that_did_not_happen(
    pki: Path, tmp_path: Path
) -> None:
    in_dir = tmp_path / "in"
    drop(in_dir)
    with pytest.raises(Crash):
        await run(pki, in_dir, FakeProducer(crash_before=True))
    journal = in_dir / STATE_DIR / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"sha256": "ab", "na')
    fake = FakeProducer()
    await run(pki, in_dir, fake)
    assert len(fake.sent) == 1 and (in_dir / "done" / "cv-7816.edxml").exists()
