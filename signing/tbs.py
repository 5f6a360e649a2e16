"""The exact to-be-signed bytes: domain prefix + Avro binary of a small fixed record."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

from fastavro import parse_schema, schemaless_writer

from schemas.envelope import Envelope, Signature

ENVELOPE_PREFIX = b"LIENTHONG-SIGNED-ENVELOPE-V1\x00"
BLOB_PREFIX = b"LIENTHONG-SIGNED-BLOB-V1\x00"
VIETNAM = timezone(timedelta(hours=7), "ICT")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _load(name: str) -> Any:
    text = resources.files("signing").joinpath(name).read_text(encoding="utf-8")
    return parse_schema(json.loads(text))


_ENVELOPE_SCHEMA = _load("signed_data.avsc")
_BLOB_SCHEMA = _load("signed_blob.avsc")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def epoch_millis(moment: datetime) -> int:
    """Floored milliseconds, matching what Avro timestamp-millis keeps of created_at."""
    if moment.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_signing_time(at: datetime) -> str:
    """ISO 8601, whole seconds, Vietnam offset: 2026-11-27T10:15:30+07:00."""
    if at.tzinfo is None:
        raise ValueError("signing time must be timezone-aware")
    return at.astimezone(VIETNAM).replace(microsecond=0).isoformat()


def parse_signing_time(text: str) -> datetime:
    """Parse an ISO 8601 time that carries an explicit offset; ValueError otherwise."""
    if not isinstance(text, str) or len(text) > 40 or "T" not in text:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"signing time without offset: {text!r}")
    return moment


def _avro(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, record)
    return out.getvalue()


def envelope_tbs(
    envelope: Envelope,
    *,
    role: str,
    algorithm: str,
    signing_time: str,
    signer_certificate: bytes,
    preceding: tuple[Signature, ...],
) -> bytes:
    """The bytes one envelope signature covers (trace hops excluded: the platform adds them)."""
    record = {
        "message_id": envelope.message_id,
        "payload_type": str(envelope.payload_type),
        "payload_schema": envelope.payload_schema,
        "payload_sha256": sha256(envelope.payload),
        "document_id": envelope.document_id,
        "sender": envelope.sender,
        "recipients": list(envelope.recipients),
        "created_at_ms": epoch_millis(envelope.created_at),
        "role": role,
        "algorithm": algorithm,
        "signing_time": signing_time,
        "signer_certificate_sha256": sha256(signer_certificate),
        "preceding_signatures_sha256": [sha256(s.value) for s in preceding],
    }
    return ENVELOPE_PREFIX + _avro(_ENVELOPE_SCHEMA, record)


def blob_tbs(
    data: bytes, *, purpose: str, algorithm: str, signing_time: str, signer_certificate: bytes
) -> bytes:
    """The bytes a detached signature covers: the data's hash, bound to a purpose."""
    record = {
        "purpose": purpose,
        "data_sha256": sha256(data),
        "algorithm": algorithm,
        "signing_time": signing_time,
        "signer_certificate_sha256": sha256(signer_certificate),
    }
    return BLOB_PREFIX + _avro(_BLOB_SCHEMA, record)
