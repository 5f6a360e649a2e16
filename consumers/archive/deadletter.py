"""Dead letters in the archive: one canonical byte string per dead letter, carrying its Kafka
timestamp, key, headers and value (or only the value's digest), and the rows derived from it
alone. The leaf's SHA-256 is of this string, so the reason and detail the router wrote in
headers are covered by the Merkle log, and `audit check` derives the rows again
(docs/evidence.md, "Dead letters"). The string:

    "LIENTHONG-DEAD-LETTER-V1" 0x00
    int64be   Kafka timestamp, milliseconds since 1970-01-01T00:00:00Z
    uint8     0: no key | 1: uint32be length, key bytes
    uint32be  header count; per header, in the record's order:
              uint32be length, name (UTF-8), uint32be length, value bytes
    uint8     0: value kept     -> uint32be length, the value byte for byte (an Envelope)
              1: value withheld -> 32 bytes SHA-256 of the value, uint32be length, note (UTF-8)

Nothing follows. One record has one encoding: decode refuses anything else (a length past the
end, trailing bytes, a flag other than 0 or 1, a name that is not UTF-8).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consumers.archive.rows import (
    SECRET_REASON,
    Kind,
    Parsed,
    RecordRow,
    RejectionRow,
    SourceRecord,
    clean,
    header,
    is_secret,
)
from schemas.codec import decode_envelope, decode_payload
from schemas.envelope import Envelope
from schemas.errors import SchemaError

MAGIC = b"LIENTHONG-DEAD-LETTER-V1\x00"

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


class DeadLetterFormatError(ValueError):
    """Bytes that are not a canonical dead-letter record."""


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """What the archive keeps of one dead letter. Exactly one of `value` and `withheld_sha256`
    is set: a withheld value leaves its digest and a note saying why (the row's parse_error)."""

    timestamp_ms: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None
    withheld_sha256: bytes | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.withheld_sha256 is None):
            raise ValueError("a dead-letter record keeps either its value or its digest")
        if self.withheld_sha256 is not None and len(self.withheld_sha256) != 32:
            raise ValueError("a withheld value's digest is 32 bytes")
        if (self.value is None) != (self.note is not None):
            raise ValueError("a withheld value, and only a withheld value, carries a note")

    def header(self, name: str) -> bytes | None:
        """The first header of that name, as the router's readers take it."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def encode(self) -> bytes:
        parts = [MAGIC, _I64.pack(self.timestamp_ms)]
        if self.key is None:
            parts.append(b"\x00")
        else:
            parts += [b"\x01", _U32.pack(len(self.key)), self.key]
        parts.append(_U32.pack(len(self.headers)))
        for name, value in self.headers:
            encoded = name.encode("utf-8")
            parts += [_U32.pack(len(encoded)), encoded, _U32.pack(len(value)), value]
        if self.value is not None:
            parts += [b"\x00", _U32.pack(len(self.value)), self.value]
        else:
            assert self.withheld_sha256 is not None
            assert self.note is not None
            note = self.note.encode("utf-8")
            parts += [b"\x01", self.withheld_sha256, _U32.pack(len(note)), note]
        return b"".join(parts)


def header_name(name: str) -> str:
    """A header name as the record keeps it: what UTF-8 can carry (a lone surrogate becomes
    U+FFFD), so that decode(encode(r)) == r for every record built with it."""
    return name if name.isascii() else name.encode("utf-8", errors="replace").decode("utf-8")


def is_dead_letter_record(raw: bytes | memoryview | None) -> bool:
    """Whether archived bytes are in this format (dead letters archived before it hold the
    Kafka value itself, an Envelope starting C3 01, or nothing)."""
    return raw is not None and bytes(raw[: len(MAGIC)]) == MAGIC


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.at:
            raise DeadLetterFormatError(f"dead-letter record ends inside its {what}")
        out = bytes(self.data[self.at : self.at + n])
        self.at += n
        return out

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def flag(self, what: str) -> bool:
        byte = self.take(1, what)[0]
        if byte > 1:
            raise DeadLetterFormatError(f"dead-letter record's {what} flag is {byte}, not 0 or 1")
        return byte == 1

    def text(self, what: str) -> str:
        raw = self.take(self.u32(what), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DeadLetterFormatError(f"dead-letter record's {what} is not UTF-8") from exc


def decode_dead_letter(data: bytes) -> DeadLetterRecord:
    """Parse a dead-letter record, refusing anything that is not exactly its encoding."""
    if not data.startswith(MAGIC):
        raise DeadLetterFormatError("not a dead-letter record (no LIENTHONG-DEAD-LETTER-V1)")
    r = _Reader(data)
    r.take(len(MAGIC), "magic")
    timestamp_ms = int(_I64.unpack(r.take(8, "timestamp"))[0])
    key = r.take(r.u32("key"), "key") if r.flag("key") else None
    count = r.u32("header count")
    headers = []
    for _ in range(count):
        name = r.text("header name")
        headers.append((name, r.take(r.u32("header value"), "header value")))
    if r.flag("value"):
        digest = r.take(32, "withheld digest")
        record = DeadLetterRecord(timestamp_ms, key, tuple(headers), None, digest, r.text("note"))
    else:
        record = DeadLetterRecord(
            timestamp_ms, key, tuple(headers), r.take(r.u32("value"), "value")
        )
    if r.at != len(data):
        raise DeadLetterFormatError(f"{len(data) - r.at} bytes follow the dead-letter record")
    return record


# What a withheld dead letter keeps of the router's headers: who was refused, why, when, and
# the digest and size of the bytes; never the key (a document id names number and notation) or
# the message id. A refusal whose bytes the router withheld itself (a secret document, bytes too
# large or undecodable) keeps no detail and no source either; bytes only the archive could not
# decode keep them (the router writes reason codes there, never content).
_WITHHELD_HEADERS = frozenset(
    {"lt-reason", "lt-sender", "lt-sender-verified", "lt-at", "lt-sha256", "lt-size"}
)
_UNDECODED_HEADERS = _WITHHELD_HEADERS | {"lt-detail", "lt-source"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The note of a dead letter the archive found secret though the router did not say so.
SECRET_NOTE = f"{SECRET_REASON}: content not archived"


def parse_dead_letter(src: SourceRecord, raw: bytes) -> Parsed:
    """What the archive keeps of a dead letter is one byte string (consumers.archive.deadletter)
    carrying the router's headers with the bytes, or only their digest; its rows are derived
    from that string alone, as `audit check` derives them again (derive_dead_letter)."""
    reason = header(src, "lt-reason") or "UNKNOWN"
    stamp = round(src.timestamp.timestamp() * 1000)
    if reason == SECRET_REASON or (not raw and header(src, "lt-sha256")):
        digest = _header_digest(src) or hashlib.sha256(raw).digest()
        kept = _only(src.headers, _WITHHELD_HEADERS)
        letter = DeadLetterRecord(
            stamp, None, kept, None, digest, f"{reason}: content not archived"
        )
        return _deadletter_rows(src, letter, None)
    try:
        envelope = decode_envelope(raw)
        payload = decode_payload(envelope, validate=False)
    except SchemaError as exc:
        note = clean(f"{exc.reason}: content not archived ({len(raw)} bytes)") or ""
        digest = hashlib.sha256(raw).digest()
        letter = DeadLetterRecord(
            stamp, None, _only(src.headers, _UNDECODED_HEADERS), None, digest, note
        )
        return _deadletter_rows(src, letter, None)
    if is_secret(payload):
        # The router did not see it as secret, the archive does: kept as the router keeps one.
        digest = hashlib.sha256(raw).digest()
        kept = _only(src.headers, _WITHHELD_HEADERS)
        letter = DeadLetterRecord(stamp, None, kept, None, digest, SECRET_NOTE)
        return _deadletter_rows(src, letter, None)
    headers = tuple((header_name(k), bytes(v)) for k, v in src.headers)
    return _deadletter_rows(src, DeadLetterRecord(stamp, src.key, headers, raw), envelope)


def derive_dead_letter(topic: str, partition: int, offset: int, archived: bytes) -> Parsed:
    """The rows of an archived dead letter, from the bytes the archive kept of it (what `audit
    check` compares with the stored rows). Raises DeadLetterFormatError for bytes that are not
    a dead-letter record, or that keep a value the archive withholds."""
    letter = decode_dead_letter(archived)
    envelope = None
    if letter.value is not None:
        try:
            envelope = decode_envelope(letter.value)
            payload = decode_payload(envelope, validate=False)
        except SchemaError as exc:
            raise DeadLetterFormatError(
                f"it keeps a value that does not decode ({exc.reason}), which the archive withholds"
            ) from exc
        if is_secret(payload):
            raise DeadLetterFormatError("it keeps a secret document's bytes")
    src = SourceRecord(topic, partition, offset, None, None, (), _EPOCH)
    return _deadletter_rows(src, letter, envelope, archived)


def _deadletter_rows(
    src: SourceRecord,
    letter: DeadLetterRecord,
    envelope: Envelope | None,
    archived: bytes | None = None,
) -> Parsed:
    """Everything from `letter` (and its value decoded, when kept): the record's place only
    from `src`. The rules are docs/evidence.md's, "Dead letters"."""
    raw = archived if archived is not None else letter.encode()
    digest = hashlib.sha256(raw).digest()
    first = dict(reversed(letter.headers))  # of repeated names, the first counts
    reason = _text(first.get("lt-reason")) or "UNKNOWN"
    sender = _text(first.get("lt-sender"))
    detail, source = _text(first.get("lt-detail")), _text(first.get("lt-source"))
    at = _refused_at(
        _text(first.get("lt-at")), _EPOCH + timedelta(milliseconds=letter.timestamp_ms)
    )
    place = (src.topic, src.partition, src.offset, Kind.DEADLETTER)
    if envelope is None:
        note = letter.note or ""
        secret = reason == SECRET_REASON or note == SECRET_NOTE
        row = RecordRow(*place, None, None, None, sender, raw, digest, note)
        rejection = RejectionRow(reason, detail, sender, None, None, secret, source, at)
        return Parsed(row, rejection=rejection)
    # A refusal before the claimed sender's signature verified says nothing about the document
    # it names: anyone can produce those bytes. It is archived, but linked to no document's
    # story (no message or document id), so no real document's timeline changes.
    proven = _text(first.get("lt-sender-verified")) != "false"
    row = RecordRow(
        *place,
        clean(envelope.message_id) if proven else None,
        clean(envelope.document_id) if proven else None,
        str(envelope.payload_type),
        clean(envelope.sender),
        raw,
        digest,
        None,
    )
    rejection = RejectionRow(
        reason,
        detail,
        sender,
        _text(first.get("lt-message-id")) if proven else None,
        _text(letter.key) if proven and letter.key else None,
        reason == SECRET_REASON,
        source,
        at,
    )
    return Parsed(row, rejection=rejection)


def _only(
    headers: tuple[tuple[str, bytes], ...], names: frozenset[str]
) -> tuple[tuple[str, bytes], ...]:
    """The headers of those names (ASCII: kept as they are), in the record's order."""
    return tuple((k, bytes(v)) for k, v in headers if k in names)


def _text(value: bytes | None) -> str | None:
    """A header value (or key) as the archive's columns read it."""
    return None if value is None else clean(value.decode("utf-8", errors="replace"))


def _refused_at(stamped: str | None, appended: datetime) -> datetime:
    """The router's own time of refusal (header lt-at), else the record's timestamp."""
    if stamped:
        try:
            at = datetime.fromisoformat(stamped)
        except ValueError:
            return appended
        if at.tzinfo is not None:
            return at
    return appended


def _header_digest(src: SourceRecord) -> bytes | None:
    text = header(src, "lt-sha256") or ""
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        return None
    return digest if len(digest) == 32 else None
