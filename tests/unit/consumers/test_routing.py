"""route_submission on pure data: every refusal reason, the state it keeps, and what it forwards."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.router.partitions import home_partition
from consumers.router.rejections import dead_letter, rejection_notice
from consumers.router.routing import Rejected, RejectReason, Routed, RoutingPolicy, route_submission
from consumers.router.state import PartitionState
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload, encode_envelope, encode_payload
from schemas.common import AgencyRef, Attachment, SecrecyMarking
from schemas.document import BusinessOperation, BusinessOperationType, OfficialDocument
from schemas.envelope import Envelope, SignerRole
from schemas.paper import paper_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing.envelope import sign_envelope
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential, load_credential, seal
from signing.trust import TrustStore
from tests.support import seed_document

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26, BA_DINH, HBT, LABOUR = "000.00.00.H26", "000.00.31.H26", "000.00.32.H26", "000.00.05.H26"
DONG_DA = "000.00.33.H26"
PLATFORM = "000.00.10.H26"
POLICY = RoutingPolicy(platform_agency=PLATFORM, max_bytes=2 * 1024 * 1024)
DIRECTORY = AgencyDirectory.default()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW - timedelta(days=10))
    for code in (H26, BA_DINH, HBT, DONG_DA):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=10))
    d.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=NOW - timedelta(days=10))
    return root


@pytest.fixture(scope="module")
def trust(pki: Path) -> TrustStore:
    return PkiDirectory(pki).trust_store()


def cred(pki: Path, code: str, role: SignerRole = SignerRole.AGENCY) -> list[Credential]:
    return [load_credential(pki, code, role)]


def route(
    raw: bytes | Envelope,
    trust: TrustStore,
    state: PartitionState | None = None,
    now: datetime = NOW,
) -> Routed | Rejected:
    data = encode_envelope(raw) if isinstance(raw, Envelope) else raw
    return route_submission(
        data,
        state=state if state is not None else PartitionState(),
        trust=trust,
        agencies=DIRECTORY,
        policy=POLICY,
        now=now,
    )


def routed_into(state: PartitionState, outcome: Routed | Rejected) -> Routed:
    assert isinstance(outcome, Routed), outcome
    for change in outcome.changes:
        state.apply(change)
    return outcome


def by_hand(
    payload: object,
    pki: Path,
    sender: str,
    recipients: Sequence[str],
    document_id: str,
    role: SignerRole = SignerRole.AGENCY,
) -> Envelope:
    """An envelope seal() would refuse to build (unvalidated payload, recipients as given)."""
    payload_type, identity, body = encode_payload(payload, validate=False)  # type: ignore[arg-type]
    bare = Envelope(
        str(uuid.uuid4()), payload_type, identity, body, document_id, sender, tuple(recipients), NOW
    )
    [c] = cred(pki, sender, role)
    return sign_envelope(bare, key=c.key, chain=c.chain, role=role, at=NOW)


def reason(outcome: Routed | Rejected) -> str:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


def test_a_document_is_routed_to_its_recipients_with_a_platform_hop(
    pki: Path, trust: TrustStore
) -> None:
    doc = seed_document(1, [BA_DINH, HBT])
    envelope = seal(doc, credentials=cred(pki, H26), at=NOW)
    state = PartitionState()
    outcome = routed_into(state, route(envelope, trust, state))
    assert outcome.recipients == (BA_DINH, HBT)
    assert [(h.agency, h.at) for h in outcome.envelope.trace] == [(PLATFORM, NOW)]
    assert outcome.envelope.payload == envelope.payload
    assert state.documents[doc.document_id].recipients == (BA_DINH, HBT)
    assert envelope.message_id in state.seen_messages


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda raw: raw[:-7], RejectReason.MALFORMED),
        (lambda raw: b"\xc3\x01" + b"\x00" * 8 + raw[10:], RejectReason.MALFORMED),
        (lambda raw: raw + b"\x00" * (3 * 1024 * 1024), RejectReason.TOO_LARGE),
    ],
)
def test_undecodable_or_oversized_bytes(pki: Path, trust: TrustStore, mutate, expected) -> None:  # type: ignore[no-untyped-def]
    raw = encode_envelope(seal(seed_document(2, [BA_DINH]), credentials=cred(pki, H26), at=NOW))
    outcome = route(mutate(raw), trust)
    assert reason(outcome) == expected
    assert isinstance(outcome, Rejected) and len(outcome.digest) == 64


def test_signature_failures_keep_the_verifier_reason(pki: Path, trust: TrustStore) -> None:
    document = seed_document(3, [BA_DINH])
    envelope = seal(document, credentials=cred(pki, H26), at=NOW)
    # One bit of the subject's text (a letter's case): the payload still decodes, the
    # signature no longer covers it.
    flipped = bytearray(envelope.payload)
    at = bytes(flipped).index(document.code.notation.encode())
    assert chr(flipped[at]).isalpha()
    flipped[at] ^= 0x20
    assert reason(route(dataclasses.replace(envelope, payload=bytes(flipped)), trust)) == (
        "BAD_SIGNATURE"
    )
    assert reason(route(dataclasses.replace(envelope, signatures=()), trust)) == (
        "MISSING_SIGNATURE"
    )
    wrong_key = seal(seed_document(4, [BA_DINH]), credentials=cred(pki, BA_DINH), at=NOW)
    assert reason(route(wrong_key, trust)) == "SENDER_MISMATCH"


def test_a_platform_signature_alone_is_not_a_submission(pki: Path, trust: TrustStore) -> None:
    notice = StatusNotice(
        document_id="000.00.00.H26,2019/08/28,1/QĐ-UBND",
        from_agency=AgencyRef(PLATFORM, "Sở KH&CN"),
        code=StatusCode.REJECTED,
        timestamp=NOW,
        description="x",
    )
    envelope = seal(
        notice, credentials=cred(pki, PLATFORM, SignerRole.PLATFORM), at=NOW, recipients=[H26]
    )
    assert reason(route(envelope, trust)) == RejectReason.NOT_FROM_AN_AGENCY


def test_secret_documents_are_refused_before_anything_else(pki: Path, trust: TrustStore) -> None:
    doc = dataclasses.replace(seed_document(5, [BA_DINH]), secrecy=SecrecyMarking.TOI_MAT)
    envelope = by_hand(doc, pki, H26, [BA_DINH], doc.document_id)
    broken = dataclasses.replace(envelope, signatures=())  # even unsigned: still "secret"
    for candidate in (envelope, broken):
        outcome = route(candidate, trust)
        assert isinstance(outcome, Rejected)
        assert (outcome.reason, outcome.secret) == (RejectReason.SECRET_DOCUMENT, True)
        assert doc.subject not in outcome.detail


def test_invalid_payload_and_misaddressed_envelopes(pki: Path, trust: TrustStore) -> None:
    doc = seed_document(6, [BA_DINH])
    too_long = dataclasses.replace(doc, subject="x" * 600)
    assert reason(route(by_hand(too_long, pki, H26, [BA_DINH], doc.document_id), trust)) == (
        RejectReason.INVALID_PAYLOAD
    )
    assert reason(route(by_hand(doc, pki, H26, [HBT], doc.document_id), trust)) == (
        RejectReason.MISADDRESSED
    )
    nobody = dataclasses.replace(doc, to=())
    assert reason(route(by_hand(nobody, pki, H26, [], doc.document_id), trust)) in (
        RejectReason.NO_RECIPIENTS,
        RejectReason.INVALID_PAYLOAD,
    )


def test_unknown_and_closed_recipients(pki: Path, trust: TrustStore) -> None:
    unknown = seal(seed_document(7, [BA_DINH, "000.00.98.H26"]), credentials=cred(pki, H26), at=NOW)
    assert reason(route(unknown, trust)) == RejectReason.UNKNOWN_RECIPIENT
    # The Department of Labour closed in March 2025; its successor is named.
    closed = route(seal(seed_document(8, [LABOUR]), credentials=cred(pki, H26), at=NOW), trust)
    assert reason(closed) == RejectReason.CLOSED_RECIPIENT
    assert isinstance(closed, Rejected) and "successor" in closed.detail


def test_replays_duplicates_stale_and_future(pki: Path, trust: TrustStore) -> None:
    state = PartitionState()
    envelope = seal(seed_document(9, [BA_DINH]), credentials=cred(pki, H26), at=NOW)
    routed_into(state, route(envelope, trust, state))
    # The same bytes again (a send retried after a timeout, or a copy replayed): not delivered
    # twice, and the sender is not told off for it.
    resent = route(envelope, trust, state)
    assert reason(resent) == RejectReason.RESUBMITTED
    assert isinstance(resent, Rejected) and not resent.notify_sender
    # The same message id over other bytes (signed again, a second later): a replay, answered.
    key = cred(pki, H26)[0]
    bare = dataclasses.replace(envelope, signatures=())
    other = sign_envelope(
        bare, key=key.key, chain=key.chain, role=SignerRole.AGENCY, at=NOW + timedelta(seconds=1)
    )
    replayed = route(other, trust, state)
    assert reason(replayed) == RejectReason.REPLAY
    assert isinstance(replayed, Rejected) and replayed.notify_sender
    again = seal(seed_document(9, [BA_DINH]), credentials=cred(pki, H26), at=NOW)
    assert reason(route(again, trust, state)) == RejectReason.DUPLICATE_DOCUMENT
    later = NOW + POLICY.replay_window + timedelta(minutes=1)
    fresh = seal(seed_document(10, [BA_DINH]), credentials=cred(pki, H26), at=NOW)
    assert reason(route(fresh, trust, now=later)) == RejectReason.STALE
    assert reason(route(fresh, trust, now=NOW - timedelta(minutes=10))) in (
        RejectReason.FROM_THE_FUTURE,
        "SIGNING_TIME_INVALID",
    )


def test_expired_message_ids_are_forgotten_with_tombstones(pki: Path, trust: TrustStore) -> None:
    state = PartitionState()
    routed_into(
        state,
        route(seal(seed_document(11, [BA_DINH]), credentials=cred(pki, H26), at=NOW), trust, state),
    )
    assert state.expired_messages(NOW, POLICY.replay_window) == []
    tombstones = state.expired_messages(NOW + timedelta(days=8), POLICY.replay_window)
    assert len(tombstones) == 1 and tombstones[0].value is None


def _status(pki: Path, doc: OfficialDocument, frm: str, code: str, to: Sequence[str]) -> Envelope:
    notice = StatusNotice(
        document_id=doc.document_id,
        from_agency=AgencyRef(frm, frm),
        code=StatusCode(code),
        timestamp=NOW,
    )
    return seal(notice, credentials=cred(pki, frm), at=NOW, recipients=list(to))


def test_status_rules_follow_the_document(pki: Path, trust: TrustStore) -> None:
    state = PartitionState()
    doc = seed_document(12, [BA_DINH])
    routed_into(state, route(seal(doc, credentials=cred(pki, H26), at=NOW), trust, state))

    arrived = routed_into(state, route(_status(pki, doc, BA_DINH, "01", [H26]), trust, state))
    assert arrived.recipients == (H26,)
    assert reason(route(_status(pki, doc, BA_DINH, "06", [H26]), trust, state)) == (
        RejectReason.ILLEGAL_TRANSITION
    )
    assert reason(route(_status(pki, doc, HBT, "01", [H26]), trust, state)) == (
        RejectReason.NOT_A_RECIPIENT
    )
    assert reason(route(_status(pki, doc, BA_DINH, "03", [HBT]), trust, state)) == (
        RejectReason.MISADDRESSED
    )
    other = seed_document(13, [BA_DINH])
    assert reason(route(_status(pki, other, BA_DINH, "01", [H26]), trust, state)) == (
        RejectReason.UNKNOWN_DOCUMENT
    )
    assert state.documents[doc.document_id].statuses == {BA_DINH: ["01"]}


def test_revocation_request_and_answers(pki: Path, trust: TrustStore) -> None:
    state = PartitionState()
    doc = seed_document(14, [BA_DINH, HBT])
    routed_into(state, route(seal(doc, credentials=cred(pki, H26), at=NOW), trust, state))
    assert reason(route(_status(pki, doc, BA_DINH, "13", [HBT]), trust, state)) == (
        RejectReason.NOT_THE_SENDER
    )
    request = routed_into(state, route(_status(pki, doc, H26, "13", [BA_DINH, HBT]), trust, state))
    assert request.recipients == (BA_DINH, HBT)
    routed_into(state, route(_status(pki, doc, BA_DINH, "15", [H26]), trust, state))
    routed_into(state, route(_status(pki, doc, HBT, "16", [H26]), trust, state))
    # Revoked for Ba Đình: nothing may follow; Hai Bà Trưng refused the revocation and goes on.
    assert reason(route(_status(pki, doc, BA_DINH, "01", [H26]), trust, state)) == (
        RejectReason.ILLEGAL_TRANSITION
    )
    routed_into(state, route(_status(pki, doc, HBT, "01", [H26]), trust, state))
    assert state.documents[doc.document_id].statuses == {
        BA_DINH: ["13", "15"],
        HBT: ["13", "16", "01"],
    }


def test_updates_must_target_the_senders_own_document(pki: Path, trust: TrustStore) -> None:
    state = PartitionState()
    original = seed_document(15, [BA_DINH])
    routed_into(state, route(seal(original, credentials=cred(pki, H26), at=NOW), trust, state))
    update = dataclasses.replace(
        seed_document(16, [BA_DINH]),
        business=BusinessOperation(BusinessOperationType.UPDATE, original.document_id, "sửa lỗi"),
    )
    routed_into(state, route(seal(update, credentials=cred(pki, H26), at=NOW), trust, state))
    # Another agency's document: refused whatever partition either lives on (the id says whose).
    stray = dataclasses.replace(
        seed_document(17, [BA_DINH]),
        business=BusinessOperation(
            BusinessOperationType.REVOKE, "000.00.31.H26,2019/08/28,999/QĐ-UBND", "thu hồi"
        ),
    )
    assert reason(route(seal(stray, credentials=cred(pki, H26), at=NOW), trust, state)) == (
        RejectReason.NOT_THE_SENDER
    )
    # The sender's own document, routed or not, on another partition or not: the same verdict
    # (the router's memory of a document is on that document's partition only).
    elsewhere = dataclasses.replace(
        seed_document(18, [BA_DINH]),
        business=BusinessOperation(
            BusinessOperationType.REPLACE, "000.00.00.H26,2019/08/28,999/QĐ-UBND", "thay thế"
        ),
    )
    routed_into(state, route(seal(elsewhere, credentials=cred(pki, H26), at=NOW), trust))


def test_paper_records_go_to_no_inbox(pki: Path, trust: TrustStore) -> None:
    record = paper_from_record(example_record("paper_exchange_record/v1/paper-incoming-vpcp.json"))
    envelope = seal(record, credentials=cred(pki, record.registering_agency), at=NOW)
    outcome = route(envelope, trust)
    assert isinstance(outcome, Routed) and outcome.recipients == ()


def test_a_large_attachment_within_the_limit_is_routed(pki: Path, trust: TrustStore) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB
    doc = dataclasses.replace(
        seed_document(18, [BA_DINH]),
        attachments=(Attachment.inline("phu-luc.pdf", "application/pdf", blob),),
    )
    outcome = route(seal(doc, credentials=cred(pki, H26), at=NOW), trust)
    assert isinstance(outcome, Routed)
    assert decode_envelope(encode_envelope(outcome.envelope)).payload == outcome.envelope.payload


# --- refusals that hold under attack (issue [2/7]) ----------------------------------------------


def platform_notice(outcome: Routed | Rejected, pki: Path) -> Envelope | None:
    assert isinstance(outcome, Rejected), outcome
    return rejection_notice(
        outcome,
        platform=AgencyRef(PLATFORM, "Nền tảng"),
        credential=cred(pki, PLATFORM, SignerRole.PLATFORM)[0],
        agencies=DIRECTORY,
        now=NOW,
    )


def test_a_forgers_rejection_is_answered_to_nobody(pki: Path, trust: TrustStore) -> None:
    """Ba Đình's key, H26 named as sender: the platform must not send H26 a signed 02 (about
    H26's real documents, perhaps) on the word of whoever could produce."""
    forged = seal(seed_document(21, [BA_DINH]), credentials=cred(pki, BA_DINH), at=NOW)
    forged = dataclasses.replace(forged, sender=H26)
    outcome = route(forged, trust)
    assert isinstance(outcome, Rejected) and outcome.sender == H26
    assert not outcome.sender_verified and not outcome.notify_sender
    assert platform_notice(outcome, pki) is None
    letter = dead_letter(encode_envelope(forged), b"k", outcome, "s/0/1", NOW)
    assert ("lt-sender-verified", b"false") in letter.headers
    unsigned = route(dataclasses.replace(forged, signatures=()), trust)
    assert isinstance(unsigned, Rejected) and platform_notice(unsigned, pki) is None


def test_a_proven_senders_refusal_gets_one_02_without_the_reason_twice(
    pki: Path, trust: TrustStore
) -> None:
    late = NOW + POLICY.replay_window + timedelta(hours=1)
    envelope = seal(seed_document(22, [BA_DINH]), credentials=cred(pki, H26), at=NOW)
    outcome = route(envelope, trust, now=late)
    assert isinstance(outcome, Rejected) and outcome.reason == RejectReason.STALE
    assert "older than the 7 days replay window" in outcome.detail
    assert "0:00:00" not in outcome.detail
    assert outcome.sender_verified and outcome.notify_sender
    notice = platform_notice(outcome, pki)
    assert notice is not None and notice.recipients == (H26,)
    description = decode_payload(notice).description  # type: ignore[union-attr]
    assert description is not None and description.count("STALE") == 1
    flipped = bytearray(envelope.payload)
    flipped[bytes(flipped).index("QĐ-UBND".encode())] ^= 0x20  # one bit of text: still decodes
    bad = route(dataclasses.replace(envelope, payload=bytes(flipped)), trust)
    assert isinstance(bad, Rejected) and bad.reason == "BAD_SIGNATURE"
    assert not bad.detail.startswith("BAD_SIGNATURE")
    assert not bad.notify_sender  # a broken signature proves nobody


def test_too_large_from_a_proven_sender_is_answered_and_not_kept(
    pki: Path, trust: TrustStore
) -> None:
    blob = Attachment.inline("scan.pdf", "application/pdf", b"\x25" * (3 * 1024 * 1024))
    doc = dataclasses.replace(seed_document(23, [BA_DINH]), attachments=(blob,))
    envelope = seal(doc, credentials=cred(pki, H26), at=NOW)
    outcome = route(envelope, trust)  # POLICY.max_bytes is 2 MiB here
    assert isinstance(outcome, Rejected) and outcome.reason == RejectReason.TOO_LARGE
    assert outcome.sender_verified and not outcome.keep_content
    assert outcome.size == len(encode_envelope(envelope))
    notice = platform_notice(outcome, pki)
    assert notice is not None and notice.document_id == doc.document_id
    letter = dead_letter(encode_envelope(envelope), b"k", outcome, "s/0/1", NOW)
    assert letter.value == b"" and letter.key is None
    assert ("lt-size", str(outcome.size).encode()) in letter.headers


def test_a_secret_document_keeps_nothing_whatever_else_is_wrong(
    pki: Path, trust: TrustStore
) -> None:
    doc = dataclasses.replace(seed_document(24, [BA_DINH]), secrecy=SecrecyMarking.MAT)
    raw = encode_envelope(by_hand(doc, pki, H26, [BA_DINH], doc.document_id))
    for candidate in (raw, raw + b"\x00", raw[:-1], raw + b"\x00" * (3 * 1024 * 1024)):
        outcome = route(candidate, trust)
        assert isinstance(outcome, Rejected) and not outcome.keep_content, outcome.reason
        assert not outcome.notify_sender  # a 02 names the document: number and notation
        letter = dead_letter(candidate, doc.document_id.encode(), outcome, "s/0/1", NOW)
        assert letter.value == b"" and letter.key is None
        names = {k for k, _ in letter.headers}
        assert "lt-message-id" not in names and "lt-payload-type" not in names
        assert doc.code.notation.encode() not in b"".join(v for _, v in letter.headers)


def test_home_partition_is_kafkas_default_partitioner() -> None:
    """Java's Utils.murmur2 known answers (Kafka's UtilsTest), made positive, modulo n."""
    java = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536}
    for key, signed in java.items():
        assert home_partition(key, 12) == (signed & 0x7FFFFFFF) % 12
    doc_id = seed_document(25, [BA_DINH]).document_id
    all_partitions = list(range(12))
    expected = DefaultPartitioner()(doc_id.encode(), all_partitions, all_partitions)
    assert home_partition(doc_id, 12) == expected
    with pytest.raises(ValueError):
        home_partition(doc_id, 0)


def test_a_status_addressed_to_nobody_is_refused_not_a_crash(pki: Path, trust: TrustStore) -> None:
    """Found by the conformance kit: addressing() raised out of route_submission, which would
    stop the router on that record at every restart."""
    state = PartitionState()
    doc = seed_document(26, [BA_DINH])
    routed_into(state, route(seal(doc, credentials=cred(pki, H26), at=NOW), trust, state))
    notice = StatusNotice(doc.document_id, AgencyRef(BA_DINH, "x"), StatusCode.ARRIVED, NOW)
    ptype, identity, body = encode_payload(notice, validate=False)
    bare = Envelope("m-26", ptype, identity, body, doc.document_id, BA_DINH, (), NOW)
    [c] = cred(pki, BA_DINH)
    signed = sign_envelope(bare, key=c.key, chain=c.chain, role=SignerRole.AGENCY, at=NOW)
    outcome = route(signed, trust, state)
    assert reason(outcome) == RejectReason.MISADDRESSED


@pytest.fixture(scope="module")
def one_envelope(pki: Path) -> bytes:
    return encode_envelope(seal(seed_document(27, [BA_DINH]), credentials=cred(pki, H26), at=NOW))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_no_bytes_make_the_decision_raise(
    one_envelope: bytes, trust: TrustStore, data: st.DataObject
) -> None:
    """Truncated, extended or bit-flipped envelopes: always a verdict, never an exception."""
    raw = bytearray(one_envelope)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "add"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[i:]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        if not raw:
            raw = bytearray(b"\x00")
    outcome = route(bytes(raw), trust)
    assert isinstance(outcome, Routed | Rejected)
