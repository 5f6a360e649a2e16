"""Bytes <-> records: Avro single-object encoding; every failure is one SchemaError."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.validation import validate

from schemas.document import (
    OfficialDocument,
    document_from_record,
    document_to_record,
    validate_document,
)
from schemas.envelope import (
    ENVELOPE_SCHEMA,
    Envelope,
    PayloadType,
    envelope_from_record,
    envelope_to_record,
)
from schemas.errors import SchemaError, ValidationError
from schemas.paper import PaperExchangeRecord, paper_from_record, paper_to_record, validate_paper
from schemas.registry import SchemaRegistry, SchemaVersion, default_registry
from schemas.report import PeriodicReport, report_from_record, report_to_record, validate_report
from schemas.status import StatusNotice, status_from_record, status_to_record, validate_status

MAGIC = b"\xc3\x01"  # Avro single-object encoding marker, spec 1.8+
HEADER_SIZE = len(MAGIC) + 8  # magic + CRC-64-AVRO fingerprint

_NEGATIVE_LENGTH = re.compile(r"Expected -\d")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded record: its short record name, the record (resolved to the newest reader
    schema of that name), and the identity of the schema that wrote it."""

    name: str
    record: dict[str, Any]
    writer: SchemaVersion

    @property
    def writer_fingerprint(self) -> bytes:
        return self.writer.fingerprint


def _schema(name: str, version: int | None, registry: SchemaRegistry) -> SchemaVersion:
    if name in PayloadType.__members__:  # a PayloadType names its record too
        name = _BY_PAYLOAD_TYPE[PayloadType(name)].schema
    try:
        return registry.latest(name) if version is None else registry.get(name, version)
    except KeyError:
        raise SchemaError("unknown_schema", f"no schema named {name!r}") from None


def schema_identity(
    name: str, version: int | None = None, *, registry: SchemaRegistry | None = None
) -> str:
    """'<fullname>@<16 hex>' of a schema version (newest by default), as the Envelope carries."""
    return _schema(name, version, registry or default_registry()).identity


def encode(
    name: str,
    record: dict[str, Any],
    *,
    version: int | None = None,
    registry: SchemaRegistry | None = None,
) -> bytes:
    """Single-object encode ``record`` with the named schema (newest version unless given).

    ``name`` may be the directory ("official_document"), short ("OfficialDocument") or full
    name, or a PayloadType ("OFFICIAL_DOCUMENT"). Raises SchemaError("invalid_record") if
    the record does not fit the schema.
    """
    sv = _schema(name, version, registry or default_registry())
    return encode_with(sv, record)


def encode_with(sv: SchemaVersion, record: dict[str, Any]) -> bytes:
    try:
        # fastavro's writer coerces some wrong values silently; validate first so a bad
        # record fails here, at the producer, rather than at every reader. The boolean pass
        # is ~3x cheaper (no error objects for every union branch that does not match); only
        # a record that fails it is validated again for the message.
        if not validate(record, sv.parsed, raise_errors=False):
            validate(record, sv.parsed, raise_errors=True)
            raise SchemaError("invalid_record", f"{sv.identity}: the record does not fit")
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(sv.fingerprint)
        fastavro.schemaless_writer(buf, sv.parsed, record)
    except SchemaError:
        raise
    except Exception as exc:  # fastavro raises ValidationError, TypeError, ValueError, ...
        raise SchemaError("invalid_record", f"{sv.identity}: {exc}") from exc
    return buf.getvalue()


def read_header(data: object, registry: SchemaRegistry | None = None) -> SchemaVersion:
    """Check the 10-byte header and return the writer schema it names."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SchemaError("wrong_type", f"expected bytes, got {type(data).__name__}")
    head = bytes(data[:HEADER_SIZE])
    if head[:2] != MAGIC[: len(head[:2])]:
        raise SchemaError("bad_magic", f"expected C3 01, got {head[:2].hex(' ').upper()}")
    if len(head) < HEADER_SIZE:
        raise SchemaError("truncated", f"{len(head)} bytes is shorter than the 10-byte header")
    sv = (registry or default_registry()).by_fingerprint(head[2:])
    if sv is None:
        raise SchemaError("unknown_schema", f"unknown writer fingerprint {head[2:].hex()}")
    return sv


def decode(
    data: bytes,
    expected_name: str | None = None,
    *,
    registry: SchemaRegistry | None = None,
) -> Decoded:
    """Decode single-object bytes, resolving to the newest reader schema of the record name.

    ``expected_name`` (any of the accepted name forms) makes a record of another type fail
    with reason "wrong_type". Trailing bytes are "malformed", missing ones "truncated".
    """
    reg = registry or default_registry()
    writer = read_header(data, reg)
    reader = reg.latest(writer.fullname)
    if expected_name is not None:
        try:
            wanted = reg.latest(expected_name).fullname
        except KeyError:
            raise SchemaError("unknown_schema", f"no schema named {expected_name!r}") from None
        if wanted != writer.fullname:
            raise SchemaError("wrong_type", f"expected {wanted}, got {writer.fullname}")
    buf = io.BytesIO(bytes(data))
    buf.seek(HEADER_SIZE)
    try:
        # Same schema: skip resolution, the common and fast path.
        reader_parsed = None if reader is writer else reader.parsed
        record = fastavro.schemaless_reader(buf, writer.parsed, reader_parsed)
    except EOFError as exc:
        reason = "malformed" if _NEGATIVE_LENGTH.search(str(exc)) else "truncated"
        raise SchemaError(reason, f"{writer.identity}: {exc or 'unexpected end of data'}") from exc
    except IndexError as exc:
        # fastavro's varint reader indexes past the end of a cut buffer ("string index");
        # a bad union or enum index is "list index" and is malformed wherever it sits.
        cut = buf.tell() >= len(data) and "list index" not in str(exc)
        reason = "truncated" if cut else "malformed"
        raise SchemaError(reason, f"{writer.identity}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # bad UTF-8, resolution failure, ...
        raise SchemaError("malformed", f"{writer.identity}: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(data):
        extra = len(data) - buf.tell()
        raise SchemaError("malformed", f"{writer.identity}: {extra} trailing bytes")
    if not isinstance(record, dict):
        raise SchemaError("malformed", f"{writer.identity}: not a record")
    if reader is not writer:
        # Canonical form is a property of the writer's encoding: check it on the record as
        # the writer wrote it (already read once above, so any error there is reported).
        written = fastavro.schemaless_reader(io.BytesIO(bytes(data[HEADER_SIZE:])), writer.parsed)
    else:
        written = record
    _require_canonical(writer, bytes(data), written)
    return Decoded(name=reader.name, record=record, writer=writer)


def _require_canonical(writer: SchemaVersion, data: bytes, record: object) -> None:
    """Refuse bytes that are not the writer's own encoding of what they decode to.

    Avro's binary decoding is many-to-one: an over-long varint (an enum index, a union branch,
    a length or a long written as 0x80 0x00 for 0), or a block count split differently, reads
    back as the same value. Two byte strings would then verify as one signed envelope (the
    signature covers values, the archive's digest covers bytes), so only the one encoding that
    re-encoding gives is accepted.
    """
    buf = io.BytesIO()
    buf.write(data[:HEADER_SIZE])
    try:
        fastavro.schemaless_writer(buf, writer.parsed, record)
    except Exception as exc:  # a value the reader produced but the writer refuses
        raise SchemaError(
            "non_canonical", f"{writer.identity}: does not re-encode: {type(exc).__name__}: {exc}"
        ) from exc
    again = buf.getvalue()
    if again != data:
        at = next((i for i, (a, b) in enumerate(zip(again, data, strict=False)) if a != b), None)
        where = f"first difference at byte {at}" if at is not None else "lengths differ"
        raise SchemaError(
            "non_canonical",
            f"{writer.identity}: not the canonical Avro encoding of its values ({where}; "
            f"{len(data)} bytes, canonical {len(again)})",
        )


@dataclass(frozen=True, slots=True)
class PayloadBinding:
    """How one domain type maps to its payload type, schema and record conversions."""

    payload_type: PayloadType
    schema: str
    to_record: Callable[[Any], dict[str, Any]]
    from_record: Callable[[dict[str, Any]], Any]
    validate: Callable[[Any], None]


# Routing is data: one row per payload type.
PAYLOADS: dict[type, PayloadBinding] = {
    OfficialDocument: PayloadBinding(
        PayloadType.OFFICIAL_DOCUMENT,
        "official_document",
        document_to_record,
        document_from_record,
        validate_document,
    ),
    StatusNotice: PayloadBinding(
        PayloadType.STATUS_NOTICE, "status_notice", status_to_record, status_from_record,
        validate_status,
    ),
    PeriodicReport: PayloadBinding(
        PayloadType.PERIODIC_REPORT, "periodic_report", report_to_record, report_from_record,
        validate_report,
    ),
    PaperExchangeRecord: PayloadBinding(
        PayloadType.PAPER_EXCHANGE_RECORD, "paper_exchange_record", paper_to_record,
        paper_from_record, validate_paper,
    ),
}  # fmt: skip
_BY_PAYLOAD_TYPE = {b.payload_type: b for b in PAYLOADS.values()}

Payload = OfficialDocument | StatusNotice | PeriodicReport | PaperExchangeRecord


def _binding(obj: object) -> PayloadBinding:
    binding = PAYLOADS.get(type(obj))
    if binding is None:
        raise SchemaError("wrong_type", f"not a payload type: {type(obj).__name__}")
    return binding


def encode_payload(obj: Payload, *, validate: bool = True) -> tuple[PayloadType, str, bytes]:
    """Validate and encode a domain payload: (payload_type, schema identity, bytes) for an
    Envelope's payload_type, payload_schema and payload fields."""
    binding = _binding(obj)
    if validate:
        try:
            binding.validate(obj)
        except ValidationError as exc:
            raise SchemaError("invalid_record", str(exc), detail=exc.reason) from exc
    sv = default_registry().latest(binding.schema)
    try:
        record = binding.to_record(obj)
    except ValidationError as exc:
        raise SchemaError("invalid_record", str(exc), detail=exc.reason) from exc
    return binding.payload_type, sv.identity, encode_with(sv, record)


def decode_payload(envelope: Envelope, *, validate: bool = True) -> Payload:
    """Decode an Envelope's payload into its domain object.

    The payload's own header must agree with the envelope's payload_type and
    payload_schema ("wrong_type" otherwise); domain rules failing give "invalid_record"
    with the ValidationError reason in ``detail``. ``validate=False`` is for legacy receipt.
    """
    binding = _BY_PAYLOAD_TYPE.get(envelope.payload_type)
    if binding is None:
        raise SchemaError("wrong_type", f"no binding for {envelope.payload_type}")
    decoded = decode(envelope.payload, expected_name=binding.schema)
    if decoded.writer.identity != envelope.payload_schema:
        raise SchemaError(
            "wrong_type",
            f"envelope says {envelope.payload_schema}, payload is {decoded.writer.identity}",
        )
    try:
        obj: Payload = binding.from_record(decoded.record)
        if validate:
            binding.validate(obj)
    except ValidationError as exc:
        raise SchemaError("invalid_record", str(exc), detail=exc.reason) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError("invalid_record", f"{type(exc).__name__}: {exc}") from exc
    return obj


def encode_envelope(env: Envelope) -> bytes:
    """Single-object encode an Envelope with the newest envelope schema."""
    try:
        record = envelope_to_record(env)
    except (ValueError, AttributeError) as exc:
        raise SchemaError("invalid_record", f"Envelope: {exc}") from exc
    return encode(ENVELOPE_SCHEMA, record)


def decode_envelope(data: bytes) -> Envelope:
    """Decode Envelope bytes; anything else (or garbage) raises SchemaError."""
    decoded = decode(data, expected_name=ENVELOPE_SCHEMA)
    try:
        return envelope_from_record(decoded.record)
    except (ValueError, KeyError) as exc:
        raise SchemaError("invalid_record", f"Envelope: {exc}") from exc
