"""DocumentSender's refusal rules and record shape, with a fake producer in place of Kafka."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import producers.sender as sender_module
from producers.refusals import MAX_ATTACHMENT_BYTES, SendRefused
from producers.sender import DocumentSender
from schemas import trace
from schemas.codec import decode_envelope, decode_payload, encode_payload
from schemas.common import AgencyRef, Attachment, SecrecyMarking
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import SignerRole
from schemas.report import report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from schemas.trace import parse_traceparent
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential, load_credential, seal

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
LDTBXH = "000.00.05.H26"
PERSON = "Nguyễn Văn Sửu"


@dataclass
class Meta:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    running: bool = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Meta:
        assert self.running
        self.sent.append((topic, value, key, headers))
        return Meta(topic, 0, len(self.sent) - 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW)
    for code in (H26, BA_DINH, LDTBXH):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW)
    d.issue(agency_code=H26, role=CertRole.PERSON, person_name=PERSON, now=NOW)
    return root


def creds(pki: Path, code: str) -> list[Credential]:
    return [load_credential(pki, code, SignerRole.AGENCY)]


def decision() -> OfficialDocument:
    return document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))


def make_sender(pki: Path, code: str, **kwargs: Any) -> tuple[DocumentSender, FakeProducer]:
    fake = FakeProducer()
    sender = DocumentSender(
        "unused:9092",
        credentials=creds(pki, code),
        topic="t.submissions",
        clock=lambda: NOW,
        producer=fake,
        **kwargs,
    )
    return sender, fake


async def test_a_document_is_keyed_by_its_id_with_the_exchange_headers(pki: Path) -> None:
    sender, fake = make_sender(pki, H26)
    doc = decision()
    async with sender:
        receipt = await sender.send_document(doc)
    assert not fake.running  # stopped on exit
    ((topic, value, key, headers),) = fake.sent
    envelope = decode_envelope(value)
    assert (topic, key) == ("t.submissions", doc.document_id.encode())
    fields = dict(headers)
    # A new W3C trace per send (schemas.trace), named in the receipt.
    context = parse_traceparent(fields.pop("traceparent"))
    assert context is not None and context.sampled
    assert context.trace_id == receipt.trace_id
    assert fields == {
        "lt-message-id": envelope.message_id.encode(),
        "lt-payload-type": b"OFFICIAL_DOCUMENT",
        "lt-sender": H26.encode(),
    }
    assert receipt.message_id == envelope.message_id
    assert (receipt.partition, receipt.offset, receipt.size) == (0, 0, len(value))
    assert envelope.created_at == NOW  # the clock parameter, not the wall clock
    assert decode_payload(envelope) == doc


async def test_a_send_made_inside_a_traced_piece_of_work_continues_its_trace(pki: Path) -> None:
    # The subscriber sets the delivery's context while its handler answers 01.
    sender, fake = make_sender(pki, H26)
    parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    async with sender:
        token = trace.current.set(parent)
        try:
            inside = await sender.send_document(decision())
        finally:
            trace.current.reset(token)
        outside = await sender.send_document(decision())
    assert parent is not None and inside.trace_id == parent.trace_id
    sent = parse_traceparent(dict(fake.sent[0][3])["traceparent"])
    assert sent is not None and sent.span_id != parent.span_id  # a child, not a copy
    assert outside.trace_id not in ("", parent.trace_id)


@pytest.mark.parametrize("marking", [m for m in SecrecyMarking if m is not SecrecyMarking.NONE])
async def test_a_secret_document_is_never_sealed_produced_or_logged(
    pki: Path, marking: SecrecyMarking, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_seal(*args: object, **kwargs: object) -> None:
        raise AssertionError("a secret document was sealed")

    monkeypatch.setattr(sender_module, "seal_payload", must_not_seal)
    sender, fake = make_sender(pki, H26)
    doc = replace(decision(), secrecy=marking, subject="Kế hoạch tác chiến")
    with capture_logs() as logs:
        async with sender:
            with pytest.raises(SendRefused) as refused:
                await sender.send_document(doc)
    assert refused.value.reason_code == "secret_document"
    assert fake.sent == []
    assert "Kế hoạch tác chiến" not in repr(logs)
    assert [e["document_id"] for e in logs if e["event"] == "send_refused"] == [doc.document_id]


async def test_a_secret_report_is_refused(pki: Path) -> None:
    report = report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    sender, fake = make_sender(pki, LDTBXH)
    async with sender:
        with pytest.raises(SendRefused, match="secret_document"):
            await sender.send_report(replace(report, secrecy=SecrecyMarking.MAT))
        await sender.send_report(report)
    assert len(fake.sent) == 1


async def test_a_validation_failure_carries_the_rule_and_the_field(pki: Path) -> None:
    sender, fake = make_sender(pki, H26)
    async with sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_document(replace(decision(), subject="x" * 501))
    assert (refused.value.reason_code, refused.value.field) == ("field_too_long", "subject")
    assert fake.sent == []


async def test_a_document_of_another_agency_is_refused(pki: Path) -> None:
    sender, fake = make_sender(pki, BA_DINH)
    async with sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_document(decision())
    assert refused.value.reason_code == "sender_mismatch"
    assert fake.sent == []


def test_credentials_must_include_the_agency_and_be_of_one_agency(pki: Path) -> None:
    person = load_credential(pki, H26, SignerRole.PERSON, person_name=PERSON)
    with pytest.raises(SendRefused, match="missing_agency_credential"):
        DocumentSender("x", credentials=[person], topic="t")
    with pytest.raises(SendRefused, match="sender_mismatch"):
        DocumentSender("x", credentials=[person, *creds(pki, BA_DINH)], topic="t")


async def test_attachments_over_25_mib_are_too_large_before_encoding(pki: Path) -> None:
    # A declared size is enough: the check runs before the bytes are looked at.
    big = Attachment("scan.pdf", "application/pdf", MAX_ATTACHMENT_BYTES + 1, b"\0" * 32, uri="x:")
    sender, fake = make_sender(pki, H26)
    async with sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_document(replace(decision(), attachments=(big,)))
    assert (refused.value.reason_code, refused.value.field) == ("too_large", "attachments")
    assert fake.sent == []


async def test_an_envelope_over_the_envelope_limit_is_too_large(pki: Path) -> None:
    att = Attachment.inline("a.bin", "application/octet-stream", b"\x01" * 200_000)
    sender, fake = make_sender(pki, H26, max_envelope_bytes=200_000)
    async with sender:
        with pytest.raises(SendRefused, match="too_large"):
            await sender.send_document(replace(decision(), attachments=(att,)))
    assert fake.sent == []


def notice(code: str, frm: str = BA_DINH) -> StatusNotice:
    return StatusNotice(
        decision().document_id, AgencyRef(frm, "Ủy ban nhân dân"), StatusCode(code), NOW
    )


async def test_an_answer_goes_back_to_the_document_sender(pki: Path) -> None:
    sender, fake = make_sender(pki, BA_DINH)
    async with sender:
        await sender.send_status(notice("01"))
        await sender.send_status(notice("03"), to=H26)
        with pytest.raises(SendRefused, match="wrong_recipient"):
            await sender.send_status(notice("04"), to="000.00.32.H26")
    assert [decode_envelope(v).recipients for _, v, _, _ in fake.sent] == [(H26,), (H26,)]
    assert {k for _, _, k, _ in fake.sent} == {decision().document_id.encode()}


async def test_a_revocation_request_comes_from_the_sender_to_named_recipients(pki: Path) -> None:
    h26, fake = make_sender(pki, H26)
    async with h26:
        with pytest.raises(SendRefused, match="missing_recipient"):
            await h26.send_status(notice("13", H26))
        await h26.send_status(notice("13", H26), to=[BA_DINH, "000.00.32.H26"])
    assert decode_envelope(fake.sent[0][1]).recipients == (BA_DINH, "000.00.32.H26")
    ba_dinh, _ = make_sender(pki, BA_DINH)
    async with ba_dinh:
        with pytest.raises(SendRefused, match="not_document_sender"):
            await ba_dinh.send_status(notice("13"), to=[H26])


async def test_a_rejection_needs_a_reason(pki: Path) -> None:
    sender, _ = make_sender(pki, BA_DINH)
    async with sender:
        with pytest.raises(SendRefused) as refused:
            await sender.send_status(notice("02"))
    assert refused.value.reason_code == "missing_reason"


async def test_send_envelope_publishes_a_sealed_envelope_and_refuses_an_unsigned_one(
    pki: Path,
) -> None:
    envelope = seal(decision(), credentials=creds(pki, H26), at=NOW)
    sender, fake = make_sender(pki, BA_DINH)  # whoever holds the sender may forward it
    async with sender:
        receipt = await sender.send_envelope(envelope)
        with pytest.raises(SendRefused, match="not_signed"):
            await sender.send_envelope(replace(envelope, signatures=()))
        with pytest.raises(SendRefused, match="sender_mismatch"):
            await sender.send_envelope(replace(envelope, sender=BA_DINH))
        # Sealed elsewhere around a secret payload: still never published.
        _, _, secret = encode_payload(
            replace(decision(), secrecy=SecrecyMarking.MAT), validate=False
        )
        with pytest.raises(SendRefused, match="secret_document"):
            await sender.send_envelope(replace(envelope, payload=secret))
    assert receipt.message_id == envelope.message_id
    assert len(fake.sent) == 1


async def test_sending_outside_the_context_manager_is_a_programming_error(pki: Path) -> None:
    sender, _ = make_sender(pki, H26)
    with pytest.raises(RuntimeError, match="async with"):
        await sender.send_document(decision())


@pytest.mark.parametrize(
    ("attachment_bytes", "in_a_thread"),
    [(1_000, False), (sender_module.INLINE_SEAL_BYTES + 1, True)],
)
async def test_small_documents_are_sealed_on_the_loop_and_large_ones_in_a_thread(
    pki: Path, monkeypatch: pytest.MonkeyPatch, attachment_bytes: int, in_a_thread: bool
) -> None:
    loop_thread = threading.get_ident()
    sealed_in: list[int] = []
    original = DocumentSender.seal

    def spy(self: DocumentSender, *args: Any) -> Any:
        sealed_in.append(threading.get_ident())
        return original(self, *args)

    monkeypatch.setattr(DocumentSender, "seal", spy)
    att = Attachment.inline("a.bin", "application/octet-stream", b"\x01" * attachment_bytes)
    sender, fake = make_sender(pki, H26)
    async with sender:
        await sender.send_document(replace(decision(), attachments=(att,)))
    assert len(sealed_in) == 1 and len(fake.sent) == 1
    assert (sealed_in[0] != loop_thread) is in_a_thread


async def test_publishing_an_envelope_again_returns_its_first_receipt(pki: Path) -> None:
    """A caller retrying a send whose first attempt did go through gets the first receipt, and
    the exchange gets no second copy (a copy that still arrives is the router's RESUBMITTED)."""
    sender, fake = make_sender(pki, H26)
    async with sender:
        envelope = sender.seal(decision())
        first = await sender.send_envelope(envelope)
        again = await sender.send_envelope(envelope)
        other = await sender.send_document(decision())
    assert again == first and len(fake.sent) == 2
    assert other.message_id != first.message_id


async def test_the_sdk_refuses_what_the_router_would_refuse_for_size(pki: Path) -> None:
    """One limit: the SDK's default is the router's (schemas.limits.MAX_ENVELOPE_BYTES)."""
    from consumers.router.routing import RoutingPolicy
    from schemas.limits import MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES

    assert RoutingPolicy(platform_agency="x").max_bytes == MAX_ENVELOPE_BYTES
    assert MAX_ENVELOPE_BYTES < MAX_MESSAGE_BYTES
    sender, _ = make_sender(pki, H26)
    assert sender._max_envelope_bytes == MAX_ENVELOPE_BYTES
