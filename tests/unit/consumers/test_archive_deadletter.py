"""What the archive keeps of a dead letter: one canonical byte string with the router's headers
(docs/evidence.md, "Dead letters"), and rows that `audit check` derives again from it alone."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.archive.deadletter import (
    MAGIC,
    DeadLetterFormatError,
    DeadLetterRecord,
    decode_dead_letter,
    derive_dead_letter,
    is_dead_letter_record,
)
from consumers.archive.parse import ArchiveTopics, Kind, ParseContext, SourceRecord, parse_record
from consumers.router.rejections import dead_letter
from consumers.router.routing import Rejected
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope, encode_payload
from schemas.common import SecrecyMarking
from schemas.envelope import Envelope, SignerRole
from signing.envelope import sign_envelope
from signing.pkidir import PkiDirectory
from signing.seal import load_credential, seal
from tests.support import seed_document
from tests.unit.consumers.conftest import ARCHIVE_NOW

NOW = ARCHIVE_NOW
REFUSED_AT = NOW - timedelta(seconds=3)
H26, BA_DINH = "000.00.00.H26", "000.00.31.H26"
TOPICS = ArchiveTopics("p.submissions", "p.deadletter", "p.inbox.")


@pytest.fixture(scope="module")
def ctx(pki_root: Path) -> ParseContext:
    return ParseContext(TOPICS, PkiDirectory(pki_root).trust_store(), AgencyDirectory.default())


def test_the_encoding_is_the_documented_one() -> None:
    """A known answer written out by hand from docs/evidence.md, not by the encoder."""
    record = DeadLetterRecord(
        1773108002123, b"k", (("lt-reason", b"MALFORMED"),), value=b"\xc3\x01"
    )
    expected = (
        b"LIENTHONG-DEAD-LETTER-V1\x00"
        + bytes.fromhex("0000019cd578fd4b")  # 2026-03-10T02:00:02.123Z in ms
        + b"\x01" + b"\x00\x00\x00\x01" + b"k"
        + b"\x00\x00\x00\x01"
        + b"\x00\x00\x00\x09" + b"lt-reason" + b"\x00\x00\x00\x09" + b"MALFORMED"
        + b"\x00" + b"\x00\x00\x00\x02" + b"\xc3\x01"
    )  # fmt: skip
    assert record.encode() == expected
    assert decode_dead_letter(expected) == record
    withheld = DeadLetterRecord(0, None, (), None, bytes(range(32)), "bad_magic")
    assert withheld.encode() == (
        MAGIC + bytes(8) + b"\x00" + bytes(4) + b"\x01" + bytes(range(32))
        + b"\x00\x00\x00\x09" + b"bad_magic"
    )  # fmt: skip


@pytest.mark.parametrize(
    "record",
    [
        DeadLetterRecord(-1, None, (), b""),
        DeadLetterRecord(5, b"", (("a", b""), ("a", b"2"), ("lt-detail", "Hà Nội".encode())), b"x"),
        DeadLetterRecord(2**40, b"\x00\xff", (("tên", b"\xff\xfe"),), None, bytes(32), "ghi chú"),
    ],
)
def test_every_record_decodes_to_itself_and_nothing_else_does(record: DeadLetterRecord) -> None:
    data = record.encode()
    assert decode_dead_letter(data) == record and is_dead_letter_record(data)
    # Every shorter prefix and every longer string is refused: one record, one encoding.
    for cut in range(len(data)):
        with pytest.raises(DeadLetterFormatError):
            decode_dead_letter(data[:cut])
    with pytest.raises(DeadLetterFormatError, match="follow"):
        decode_dead_letter(data + b"\x00")


def test_malformed_records_are_refused_with_a_reason() -> None:
    good = DeadLetterRecord(1, None, (("lt-reason", b"X"),), b"v").encode()
    flag_at = len(MAGIC) + 8
    with pytest.raises(DeadLetterFormatError, match="key flag is 2"):
        decode_dead_letter(good[:flag_at] + b"\x02" + good[flag_at + 1 :])
    value_flag = len(good) - 6
    with pytest.raises(DeadLetterFormatError, match="value flag is 7"):
        decode_dead_letter(good[:value_flag] + b"\x07" + good[value_flag + 1 :])
    name_at = flag_at + 1 + 4 + 4
    with pytest.raises(DeadLetterFormatError, match="not UTF-8"):
        decode_dead_letter(good[:name_at] + b"\xff" + good[name_at + 1 :])
    with pytest.raises(DeadLetterFormatError, match="no LIENTHONG-DEAD-LETTER-V1"):
        decode_dead_letter(good.replace(b"V1", b"V2", 1))
    # A length that runs past the end.
    with pytest.raises(DeadLetterFormatError, match="ends inside"):
        decode_dead_letter(good[: flag_at + 1] + b"\xff\xff\xff\xff" + good[flag_at + 5 :])
    # Envelopes (dead letters archived before this format) are not records of it.
    assert not is_dead_letter_record(b"\xc3\x01" + bytes(40)) and not is_dead_letter_record(None)


def test_a_record_keeps_its_value_or_its_digest_never_both() -> None:
    with pytest.raises(ValueError):
        DeadLetterRecord(0, None, (), b"v", bytes(32), "note")
    with pytest.raises(ValueError):
        DeadLetterRecord(0, None, (), None)
    with pytest.raises(ValueError):
        DeadLetterRecord(0, None, (), None, bytes(31), "short digest")
    with pytest.raises(ValueError):
        DeadLetterRecord(0, None, (), b"v", None, "a note on kept bytes")


def _sealed(pki_root: Path, number: int, *, signer: str = H26) -> bytes:
    cred = load_credential(pki_root, signer, SignerRole.AGENCY)
    doc = seed_document(number, [BA_DINH])
    return encode_envelope(seal(doc, credentials=[cred], at=NOW))


@functools.cache
def _secret(pki_root: Path, number: int) -> tuple[bytes, str, str]:
    """A secret document's envelope (signed by hand: seal refuses one), its id and notation;
    once per number (a signature may differ each time)."""
    doc = dataclasses.replace(seed_document(number, [BA_DINH]), secrecy=SecrecyMarking.MAT)
    cred = load_credential(pki_root, H26, SignerRole.AGENCY)
    ptype, identity, body = encode_payload(doc, validate=False)
    env = Envelope(f"m-{number}", ptype, identity, body, doc.document_id, H26, (BA_DINH,), NOW)
    signed = sign_envelope(env, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=NOW)
    return encode_envelope(signed), doc.document_id, doc.code.notation


def _letter(raw: bytes, rejected: Rejected, offset: int = 3) -> SourceRecord:
    """What the router publishes (consumers.router.rejections), as the archiver reads it."""
    key = rejected.document_id.encode() if rejected.document_id else None
    letter = dead_letter(raw, key, rejected, f"p.submissions/1/{offset}", REFUSED_AT)
    headers = (*letter.headers, ("traceparent", b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-01"))
    return SourceRecord(TOPICS.deadletter, 0, offset, letter.key, letter.value, headers, NOW)


def _rejected(raw: bytes, reason: str, **kw: object) -> Rejected:
    fields: dict[str, object] = {
        "detail": f"why {reason}",
        "digest": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "sender": H26,
    }
    fields.update(kw)
    return Rejected(reason, **fields)  # type: ignore[arg-type]


def _cases(pki_root: Path) -> dict[str, SourceRecord]:
    doc = _sealed(pki_root, 21)
    forged = _sealed(pki_root, 22, signer=BA_DINH)
    secret, _, _ = _secret(pki_root, 23)
    meta = {"message_id": "m-21", "document_id": "doc-21", "payload_type": "OFFICIAL_DOCUMENT"}
    return {
        "kept, proven": _letter(
            doc,
            _rejected(doc, "UNKNOWN_RECIPIENT", sender_verified=True, keep_content=True, **meta),
        ),
        "kept, unproven": _letter(
            forged, _rejected(forged, "SIGNATURE_INVALID", keep_content=True, **meta)
        ),
        "secret (router)": _letter(secret, _rejected(secret, "SECRET_DOCUMENT", secret=True)),
        "malformed (router)": _letter(b"\x00junk", _rejected(b"\x00junk", "MALFORMED")),
        "undecodable (archive)": SourceRecord(
            TOPICS.deadletter, 0, 9, b"key", b"\x00junk", (("lt-reason", b"MALFORMED"),), NOW
        ),
        # The router kept bytes the archive finds secret (another version's rules).
        "secret (archive)": _letter(
            secret, _rejected(secret, "UNKNOWN_RECIPIENT", keep_content=True, **meta)
        ),
    }


def test_check_derives_from_the_archived_bytes_exactly_the_rows_the_archiver_wrote(
    ctx: ParseContext, pki_root: Path
) -> None:
    for name, src in _cases(pki_root).items():
        written = parse_record(src, ctx)
        assert written.record.kind is Kind.DEADLETTER and written.rejection is not None, name
        raw = written.record.raw
        assert raw is not None and is_dead_letter_record(raw), name
        assert written.record.raw_sha256 == hashlib.sha256(raw).digest(), name
        again = derive_dead_letter(src.topic, src.partition, src.offset, raw)
        assert again == written, name


def test_what_the_rows_say_comes_from_the_headers_and_key_the_record_keeps(
    ctx: ParseContext, pki_root: Path
) -> None:
    cases = _cases(pki_root)
    proven = parse_record(cases["kept, proven"], ctx)
    assert proven.rejection is not None and proven.record.raw is not None
    assert (proven.rejection.reason, proven.rejection.detail) == (
        "UNKNOWN_RECIPIENT",
        "why UNKNOWN_RECIPIENT",
    )
    assert proven.rejection.document_id == "doc-21" and proven.rejection.message_id == "m-21"
    assert proven.rejection.source == "p.submissions/1/3" and proven.rejection.at == REFUSED_AT
    letter = decode_dead_letter(proven.record.raw)
    assert letter.key == b"doc-21" and letter.timestamp_ms == int(NOW.timestamp() * 1000)
    assert letter.header("traceparent") is not None  # every header, as received
    assert letter.value == cases["kept, proven"].value  # the envelope, byte for byte
    # Another reason in the headers is another byte string, so another leaf.
    edited = dataclasses.replace(
        letter,
        headers=tuple((k, b"DUPLICATE" if k == "lt-reason" else v) for k, v in letter.headers),
    ).encode()
    assert hashlib.sha256(edited).digest() != proven.record.raw_sha256
    assert derive_dead_letter(TOPICS.deadletter, 0, 3, edited).rejection.reason == "DUPLICATE"  # type: ignore[union-attr]
    unproven = parse_record(cases["kept, unproven"], ctx)
    assert unproven.rejection is not None and unproven.rejection.document_id is None
    assert unproven.rejection.message_id is None and unproven.record.message_id is None
    # Without lt-at, the refusal is dated by the record's timestamp (kept to the millisecond).
    no_at = dataclasses.replace(
        cases["kept, proven"],
        headers=tuple(h for h in cases["kept, proven"].headers if h[0] != "lt-at"),
        timestamp=datetime(2026, 11, 27, 3, 0, 0, 123456, tzinfo=UTC),
    )
    dated = parse_record(no_at, ctx).rejection
    assert dated is not None and dated.at == datetime(2026, 11, 27, 3, 0, 0, 123000, tzinfo=UTC)


def test_a_secret_dead_letter_keeps_no_content_id_or_detail(
    ctx: ParseContext, pki_root: Path
) -> None:
    secret, document_id, notation = _secret(pki_root, 23)
    for name in ("secret (router)", "secret (archive)"):
        src = _cases(pki_root)[name]
        parsed = parse_record(src, ctx)
        raw = parsed.record.raw
        assert raw is not None and parsed.rejection is not None, name
        letter = decode_dead_letter(raw)
        assert letter.value is None and letter.key is None, name
        assert letter.withheld_sha256 == hashlib.sha256(secret).digest(), name
        assert {k for k, _ in letter.headers} <= {
            "lt-reason", "lt-sender", "lt-sender-verified", "lt-at", "lt-sha256", "lt-size",
        }, name  # fmt: skip
        for needle in (document_id.encode(), notation.encode(), b"why ", b"m-21", secret[:64]):
            assert needle not in raw, (name, needle)
        assert document_id not in repr(parsed) and notation not in repr(parsed), name
        assert parsed.rejection.secret and parsed.rejection.detail is None, name
        assert parsed.rejection.document_id is None and parsed.record.document_id is None, name
        assert (parsed.record.parse_error or "").startswith("SECRET_DOCUMENT: content not archived")


def test_undecodable_bytes_keep_their_digest_and_reason_not_their_key(
    ctx: ParseContext, pki_root: Path
) -> None:
    parsed = parse_record(_cases(pki_root)["undecodable (archive)"], ctx)
    letter = decode_dead_letter(parsed.record.raw or b"")
    assert letter.value is None and letter.key is None
    assert letter.withheld_sha256 == hashlib.sha256(b"\x00junk").digest()
    assert parsed.record.parse_error == letter.note == "bad_magic: content not archived (5 bytes)"
    assert parsed.rejection is not None and not parsed.rejection.secret


def test_archived_bytes_that_keep_what_the_archive_withholds_give_no_rows(
    pki_root: Path,
) -> None:
    secret, _, _ = _secret(pki_root, 24)
    for value, problem in ((b"\x00junk", "does not decode"), (secret, "secret document")):
        forged = DeadLetterRecord(0, None, (("lt-reason", b"X"),), value).encode()
        with pytest.raises(DeadLetterFormatError, match=problem):
            derive_dead_letter(TOPICS.deadletter, 0, 0, forged)
    with pytest.raises(DeadLetterFormatError):
        derive_dead_letter(TOPICS.deadletter, 0, 0, _sealed(pki_root, 25))  # an old-style row


def test_a_header_with_a_null_value_does_not_stop_the_archiver() -> None:
    """Kafka allows a header without a value (aiokafka gives None): kept as empty bytes."""
    from aiokafka import ConsumerRecord

    from consumers.archive.archiver import _source

    record = ConsumerRecord(
        topic="lienthong.deadletter", partition=0, offset=7, timestamp=1_700_000_000_000,
        timestamp_type=0, key=None, value=b"x", checksum=None, serialized_key_size=-1,
        serialized_value_size=1, headers=(("lt-reason", None), ("lt-detail", b"d")),
    )  # fmt: skip
    source = _source(record)
    assert source.headers == (("lt-reason", b""), ("lt-detail", b"d"))
