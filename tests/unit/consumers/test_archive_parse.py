"""Pure parts of the archiver: record -> rows, the secret rule, leaf data, right-edge rebuild."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.archive.deadletter import decode_dead_letter
from consumers.archive.document import MAX_BODY_CHARS, searchable_body
from consumers.archive.leaf import record_leaf
from consumers.archive.parse import (
    ArchiveTopics,
    Kind,
    ParseContext,
    RecordRow,
    SourceRecord,
    parse_record,
)
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope, encode_payload
from schemas.common import AgencyRef, SecrecyMarking
from schemas.envelope import Envelope, SignerRole
from schemas.status import StatusCode, StatusNotice
from signing.envelope import sign_envelope
from signing.merkle import RightEdge, append_leaves, leaf_hash, range_keys, root_of
from signing.pkidir import PkiDirectory
from signing.seal import load_credential, seal
from tests.support import seed_document
from tests.unit.consumers.conftest import ARCHIVE_NOW

NOW = ARCHIVE_NOW
H26, BA_DINH, PLATFORM = "000.00.00.H26", "000.00.31.H26", "000.00.10.H26"
TOPICS = ArchiveTopics("p.submissions", "p.deadletter", "p.inbox.")


@pytest.fixture(scope="module")
def ctx(pki_root: Path) -> ParseContext:
    return ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())


def record(topic: str, value: bytes, headers: dict[str, str] | None = None) -> SourceRecord:
    return SourceRecord(
        topic=topic,
        partition=0,
        offset=7,
        key=b"k",
        value=value,
        headers=tuple((k, v.encode()) for k, v in (headers or {}).items()),
        timestamp=NOW,
    )


def sealed(pki_root: Path, payload: object, code: str = H26, **kw: object) -> bytes:
    cred = load_credential(pki_root, code, SignerRole.AGENCY)
    return encode_envelope(seal(payload, credentials=[cred], at=NOW, **kw))  # type: ignore[arg-type]


def test_a_document_submission_yields_its_searchable_metadata_and_verified_signatures(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc = seed_document(1, [BA_DINH])
    parsed = parse_record(record(TOPICS.submissions, sealed(pki_root, doc)), ctx)
    assert parsed.record.kind is Kind.SUBMISSION and parsed.record.parse_error is None
    assert parsed.document is not None
    assert parsed.document.subject == doc.subject and parsed.document.recipients == (BA_DINH,)
    assert [s["valid"] for s in parsed.document.signatures] == [True]


def test_the_body_and_the_parties_names_are_kept_for_search(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc = dataclasses.replace(
        seed_document(3, [BA_DINH], names={BA_DINH: "UBND quận Ba Đình"}),
        content="Phấn đấu duy trì 100% thủ tục hành chính\x00 được giải quyết đúng hạn.",
    )
    parsed = parse_record(record(TOPICS.submissions, sealed(pki_root, doc)), ctx)
    assert parsed.document is not None
    # NUL cannot be stored in PostgreSQL text; the bytes keep it.
    assert parsed.document.body == (
        "Phấn đấu duy trì 100% thủ tục hành chính được giải quyết đúng hạn."
    )
    # The directory's name of each code and the name the document writes, each once.
    assert parsed.document.party_names == "\n".join(
        [
            "Ủy ban nhân dân thành phố Hà Nội",
            "Ủy ban nhân dân quận Ba Đình",
            "UBND quận Ba Đình",
        ]
    )


def test_a_long_body_is_cut_and_an_empty_one_is_none() -> None:
    assert searchable_body("x" * (MAX_BODY_CHARS + 10), SecrecyMarking.NONE) == "x" * MAX_BODY_CHARS
    assert searchable_body("", SecrecyMarking.NONE) is None
    assert searchable_body(None, SecrecyMarking.NONE) is None


@pytest.mark.parametrize("marking", [m for m in SecrecyMarking if m is not SecrecyMarking.NONE])
def test_a_secret_documents_body_is_never_searchable(marking: SecrecyMarking) -> None:
    assert searchable_body("bí mật nhà nước", marking) is None
    assert searchable_body("bí mật nhà nước", str(marking)) is None


def test_a_forged_signature_is_recorded_as_data_not_dropped(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc = seed_document(2, [BA_DINH])
    cred = load_credential(pki_root, BA_DINH, SignerRole.AGENCY)  # not the sender's key
    env = seal(doc, credentials=[cred], at=NOW)
    parsed = parse_record(record(TOPICS.submissions, encode_envelope(env)), ctx)
    assert parsed.document is not None
    [sig] = parsed.document.signatures
    assert sig["valid"] is False and sig["reason"]


def test_unparsable_bytes_keep_digest_size_and_reason_not_content(ctx: ParseContext) -> None:
    """Bytes that do not decode might be a secret document's: their digest proves what they
    were, and neither they nor their key (a document id names number and notation) are kept."""
    src = record(TOPICS.submissions, b"\x00garbage")
    parsed = parse_record(replace(src, key=b"000.00.00.H26,2019/08/27,190/KH-UBND"), ctx)
    assert parsed.record.raw is None and parsed.record.document_id is None
    assert parsed.record.parse_error == "envelope: bad_magic: content not archived (8 bytes)"
    assert parsed.record.raw_sha256 == hashlib.sha256(b"\x00garbage").digest()
    assert parsed.document is None


def test_a_secret_document_with_a_trailing_byte_is_not_kept_anywhere(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc = dataclasses.replace(seed_document(13, [BA_DINH]), secrecy=SecrecyMarking.TOI_MAT)
    cred = load_credential(pki_root, H26, SignerRole.AGENCY)
    ptype, identity, body = encode_payload(doc, validate=False)
    env = Envelope("m-13", ptype, identity, body, doc.document_id, H26, (BA_DINH,), NOW)
    signed = sign_envelope(env, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=NOW)
    raw = encode_envelope(signed) + b"\x00"
    for topic in (TOPICS.submissions, TOPICS.deadletter):
        parsed = parse_record(record(topic, raw, {"lt-reason": "MALFORMED"}), ctx)
        kept, digest = _kept(parsed.record)
        assert kept is None and parsed.record.document_id is None
        assert doc.code.notation not in repr(parsed) and doc.document_id not in repr(parsed)
        assert digest == hashlib.sha256(raw).digest()


def test_an_unproven_dead_letter_joins_no_documents_story(
    ctx: ParseContext, pki_root: Path
) -> None:
    """Anyone can produce bytes naming a real document: refused before the claimed sender's
    signature verified, they are archived but linked to no document (no message or id)."""
    doc = seed_document(14, [BA_DINH])
    cred = load_credential(pki_root, BA_DINH, SignerRole.AGENCY)  # not H26's key
    raw = encode_envelope(seal(doc, credentials=[cred], at=NOW))
    headers = {"lt-reason": "SENDER_MISMATCH", "lt-sender": H26, "lt-sender-verified": "false"}
    letter = replace(record(TOPICS.deadletter, raw, headers), key=doc.document_id.encode())
    parsed = parse_record(letter, ctx)
    assert parsed.rejection is not None and parsed.rejection.document_id is None
    assert parsed.rejection.message_id is None and parsed.rejection.reason == "SENDER_MISMATCH"
    assert parsed.record.message_id is None and parsed.record.document_id is None
    assert _kept(parsed.record)[0] == raw  # kept: it decoded and is not secret
    proven = {**headers, "lt-sender-verified": "true", "lt-message-id": "m-14"}
    again = parse_record(replace(letter, headers=tuple(_h(proven))), ctx)
    assert again.rejection is not None and again.rejection.document_id == doc.document_id


def test_a_secret_document_keeps_digest_and_sender_only_wherever_it_is_read(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc = dataclasses.replace(seed_document(3, [BA_DINH]), secrecy=SecrecyMarking.MAT)
    cred = load_credential(pki_root, H26, SignerRole.AGENCY)
    ptype, identity, body = encode_payload(doc, validate=False)
    env = Envelope("m-3", ptype, identity, body, doc.document_id, H26, (BA_DINH,), NOW)
    # Signed by hand: seal() refuses to build a secret document.
    signed = sign_envelope(env, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=NOW)
    raw = encode_envelope(signed)
    for topic in (TOPICS.submissions, "p.inbox." + BA_DINH):
        parsed = parse_record(record(topic, raw), ctx)
        assert parsed.record.raw is None and parsed.record.document_id is None
        assert parsed.record.raw_sha256 == hashlib.sha256(raw).digest()
        assert parsed.record.sender == H26
        assert (parsed.record.parse_error or "").startswith("SECRET_DOCUMENT")
        assert parsed.document is None and parsed.delivery is None
    digest = hashlib.sha256(raw).hexdigest()
    letter = record(
        TOPICS.deadletter,
        b"",
        {"lt-reason": "SECRET_DOCUMENT", "lt-sha256": digest, "lt-sender": H26, "lt-detail": "x"},
    )
    parsed = parse_record(letter, ctx)
    kept, withheld = _kept(parsed.record)
    assert kept is None and withheld.hex() == digest
    assert parsed.rejection is not None and parsed.rejection.secret
    assert parsed.rejection.detail is None and parsed.rejection.document_id is None
    assert decode_dead_letter(parsed.record.raw or b"").header("lt-detail") is None


def test_a_platform_02_in_an_inbox_is_a_notice_and_an_agency_status_a_delivery(
    ctx: ParseContext, pki_root: Path
) -> None:
    doc_id = seed_document(4, [BA_DINH]).document_id
    notice = StatusNotice(
        doc_id, AgencyRef(PLATFORM, "Nền tảng"), StatusCode.REJECTED, NOW, "NO_INBOX: x"
    )
    cred = load_credential(pki_root, PLATFORM, SignerRole.PLATFORM)
    raw = encode_envelope(seal(notice, credentials=[cred], at=NOW, recipients=[H26]))
    parsed = parse_record(record("p.inbox." + H26, raw), ctx)
    assert parsed.record.kind is Kind.NOTICE and parsed.delivery is None
    assert parsed.status is not None and (parsed.status.code, parsed.status.to_agency) == (
        "02",
        H26,
    )
    arrived = StatusNotice(doc_id, AgencyRef(BA_DINH, "Ba Đình"), StatusCode.ARRIVED, NOW)
    parsed = parse_record(
        record("p.inbox." + H26, sealed(pki_root, arrived, BA_DINH, recipients=[H26])), ctx
    )
    assert parsed.record.kind is Kind.DELIVERY and parsed.delivery is not None
    assert parsed.status is not None and parsed.status.from_agency == BA_DINH


def test_topics_pattern_takes_every_inbox_and_nothing_else() -> None:
    pattern = TOPICS.pattern
    assert pattern.match("p.submissions") and pattern.match("p.inbox.000.00.31.H26")
    assert pattern.match("p.deadletter")
    assert not pattern.match("p.router-state") and not pattern.match("q.submissions")
    assert not pattern.match("p.checkpoints")


def test_leaf_data_is_canonical_json_of_the_record_identity() -> None:
    at = datetime(2026, 11, 27, 3, 4, 5, 678901, tzinfo=UTC)
    data, digest = record_leaf(
        seq=5,
        topic="p.inbox.000.00.31.H26",
        partition=2,
        offset=9,
        message_id=None,
        sha256=bytes(32),
        archived_at=at,
    )
    assert data == (
        b'{"archived_at":"2026-11-27T03:04:05.678Z","message_id":null,"offset":9,'
        b'"partition":2,"seq":5,"sha256":"' + b"0" * 64 + b'","topic":"p.inbox.000.00.31.H26"}'
    )
    assert json.loads(data)["seq"] == 5 and digest == leaf_hash(data)


@pytest.mark.parametrize("batches", [[1], [3, 4], [7, 1, 8], [16, 5, 2, 9]])
def test_the_right_edge_rebuilt_from_stored_nodes_continues_the_same_tree(
    batches: list[int],
) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(sum(batches))]
    store: dict[tuple[int, int], bytes] = {}
    edge, done = RightEdge.empty(), 0
    for n in batches:
        edge, nodes = append_leaves(edge, done, leaves[done : done + n])
        store.update({(lv, i): h for lv, i, h in nodes})
        done += n
        # What the archiver does on start: log2(size) stored nodes, nothing recomputed.
        rebuilt = RightEdge(done, tuple(store[k] for k in range_keys(0, done)))
        assert rebuilt == edge and rebuilt.root() == root_of(leaves[:done])


def _kept(row: RecordRow) -> tuple[bytes | None, bytes]:
    """(the record's bytes the archive keeps, their digest): a dead letter's are inside its
    dead-letter record (consumers.archive.deadletter), whose own digest is the row's."""
    if row.kind is not Kind.DEADLETTER:
        return row.raw, row.raw_sha256
    assert row.raw is not None and row.raw_sha256 == hashlib.sha256(row.raw).digest()
    letter = decode_dead_letter(row.raw)
    if letter.value is None:
        assert letter.withheld_sha256 is not None
        return None, letter.withheld_sha256
    return letter.value, hashlib.sha256(letter.value).digest()


def _h(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items()]
