"""Deliveries and refusals as files an agency's clerk (or its document system) can pick up."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from consumers.inbox.subscriber import Delivery, Refusal, one_line
from schemas.codec import PAYLOADS, Payload
from schemas.common import Attachment
from schemas.document import OfficialDocument
from schemas.jsonform import to_json
from schemas.paper import PaperExchangeRecord
from schemas.registry import default_registry
from schemas.report import PeriodicReport
from schemas.status import StatusNotice

STATUSES = "statuses.jsonl"
REFUSED = "refused.jsonl"
ANSWERED = "answered.json"
MAX_NAME_BYTES = 200  # ext4 allows 255; leave room for a temporary-file prefix and suffix
SHA256_MISMATCH = "sha256_mismatch"

# Kept as typed: letters (with diacritics), digits, _ and a few harmless marks. Everything
# else, '/' '\' '%' and control characters included, is percent-encoded, so two different ids
# never share a folder and no name can climb out of its directory.
_KEEP = re.compile(r"[\w.,+\-@() ]", re.UNICODE)


class AttachmentMismatch(Exception):
    """An inline attachment's bytes do not match its declared size or SHA-256."""

    reason_code = SHA256_MISMATCH

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def safe_name(text: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A single path component for ``text``: injective, readable, never '.', '..' or hidden."""
    out = []
    for i, ch in enumerate(text):
        edge = (i == 0 and ch in ". ") or (i == len(text) - 1 and ch == " ")
        if _KEEP.fullmatch(ch) and not edge and ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
    name = "".join(out) or "%00"
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    # Too long for the file system: keep the start and the extension, add a digest of the
    # whole so the shortened name stays unique.
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem, dot, ext = name.rpartition(".")
    suffix = f"~{digest}" + (f".{ext}" if dot and stem and len(ext) <= 16 else "")
    budget = max_bytes - len(suffix.encode("utf-8"))
    head = ""
    for part in re.findall(r"%[0-9A-F]{2}|.", name, re.DOTALL):
        if len((head + part).encode("utf-8")) > budget:
            break
        head += part
    return head + suffix


def write_delivery(out_dir: Path, delivery: Delivery) -> Path:
    """Write one delivery under ``out_dir``; the same delivery again overwrites the same files.

    Documents: ``<out>/<id>/``; reports: ``<out>/reports/<id>/``; paper records:
    ``<out>/paper/<id>/``; status notices: a line in ``<out>/statuses.jsonl`` (once per message
    id). Returns the folder (or the statuses file). Raises AttachmentMismatch before writing
    anything when an inline attachment does not match its digest.
    """
    writer = _WRITERS[type(delivery.payload)]
    return writer(out_dir, delivery)


def write_refusal(out_dir: Path, refusal: Refusal, *, at: datetime | None = None) -> Path:
    """Append the refusal to ``<out>/refused.jsonl`` once per record position; no content."""
    path = out_dir / REFUSED
    record = refusal_record(refusal, at=at)
    key = (refusal.topic, refusal.partition, refusal.offset)
    seen = {(r.get("topic"), r.get("partition"), r.get("offset")) for r in read_jsonl(path)}
    if key not in seen:
        _append_line(path, record)
    return path


def refusal_record(refusal: Refusal, *, at: datetime | None = None) -> dict[str, Any]:
    """Identifiers, position, reason and a digest of the bytes: enough to find the record on
    the topic, never its content (a refused record may be forged, or secret)."""
    return {
        "reason": refusal.reason_code,
        "detail": one_line(refusal.detail),
        "message_id": refusal.message_id,
        "document_id": refusal.document_id,
        "sender": refusal.sender,
        "payload_type": refusal.payload_type,
        "topic": refusal.topic,
        "partition": refusal.partition,
        "offset": refusal.offset,
        "sha256": refusal.sha256,
        "size": len(refusal.raw),
        "refused_at": at.isoformat() if at else None,
    }


def refusal_of(delivery: Delivery, reason_code: str, detail: str) -> Refusal:
    """A delivery turned down after the subscriber accepted it (e.g. a bad attachment)."""
    env = delivery.envelope
    return Refusal(
        reason_code,
        one_line(detail),
        delivery.raw,
        delivery.partition,
        delivery.offset,
        message_id=env.message_id,
        document_id=env.document_id,
        sender=env.sender,
        topic=delivery.topic,
        payload_type=env.payload_type.value,
    )


def delivery_folder(out_dir: Path, delivery: Delivery) -> Path | None:
    """Where write_delivery puts this delivery's files (None for a status notice)."""
    payload = delivery.payload
    if isinstance(payload, OfficialDocument):
        return _inside(out_dir, safe_name(payload.document_id))
    if isinstance(payload, PeriodicReport):
        return _inside(out_dir, "reports", safe_name(payload.report_id))
    if isinstance(payload, PaperExchangeRecord):
        return _inside(out_dir, "paper", safe_name(payload.record_id))
    return None


def was_answered(folder: Path, message_id: str) -> bool:
    """Whether the automatic answer for this message was already sent (crash recovery)."""
    return any(a.get("message_id") == message_id for a in _answers(folder))


def mark_answered(folder: Path, message_id: str, answer: dict[str, Any]) -> None:
    answers = [a for a in _answers(folder) if a.get("message_id") != message_id]
    answers.append({"message_id": message_id, **answer})
    _write_atomic(folder / ANSWERED, _json_bytes(answers))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a line cut short by a crash is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


# --- per payload type -------------------------------------------------------------------------


def _write_document(out_dir: Path, delivery: Delivery) -> Path:
    folder = delivery_folder(out_dir, delivery)
    assert folder is not None
    payload = delivery.payload
    assert isinstance(payload, OfficialDocument)
    return _write_folder(folder, delivery, "document.json", payload.attachments)


def _write_report(out_dir: Path, delivery: Delivery) -> Path:
    folder = delivery_folder(out_dir, delivery)
    assert folder is not None
    payload = delivery.payload
    assert isinstance(payload, PeriodicReport)
    return _write_folder(folder, delivery, "report.json", payload.attachments)


def _write_paper(out_dir: Path, delivery: Delivery) -> Path:
    folder = delivery_folder(out_dir, delivery)
    assert folder is not None
    return _write_folder(folder, delivery, "record.json", ())


def _append_status(out_dir: Path, delivery: Delivery) -> Path:
    notice = delivery.payload
    assert isinstance(notice, StatusNotice)
    path = out_dir / STATUSES
    message_id = delivery.envelope.message_id
    if all(r.get("message_id") != message_id for r in read_jsonl(path)):
        _append_line(
            path,
            {
                "message_id": message_id,
                "document_id": notice.document_id,
                "from_agency": notice.from_agency.code,
                "from_agency_name": notice.from_agency.name,
                "code": str(notice.code),
                "description": notice.description,
                "timestamp": notice.timestamp.isoformat(),
                "staff": notice.staff.name if notice.staff else None,
                "signed_by": delivery.verified.agency_code,
            },
        )
    return path


_WRITERS: dict[type, Callable[[Path, Delivery], Path]] = {
    OfficialDocument: _write_document,
    PeriodicReport: _write_report,
    PaperExchangeRecord: _write_paper,
    StatusNotice: _append_status,
}


# --- the folder of one document or report -----------------------------------------------------


def _write_folder(
    folder: Path, delivery: Delivery, json_name: str, attachments: Iterable[Attachment]
) -> Path:
    attachments = tuple(attachments)
    _check_attachments(attachments)  # before any file exists: a mismatch writes nothing
    names = attachment_names(attachments)
    folder.mkdir(parents=True, exist_ok=True)
    for attachment, name in zip(attachments, names, strict=True):
        if attachment.data is not None:
            (folder / "attachments").mkdir(exist_ok=True)
            _write_atomic(folder / "attachments" / name, attachment.data)
    readable = payload_json(delivery.payload, names)
    _write_atomic(folder / json_name, _json_bytes(readable))
    _write_atomic(folder / "envelope.avro", delivery.raw)
    _write_atomic(folder / "verification.json", _json_bytes(verification_record(delivery)))
    return folder


def _check_attachments(attachments: tuple[Attachment, ...]) -> None:
    for a in attachments:
        if a.data is None:
            continue  # a claim check: the bytes live elsewhere, the digest travels with them
        if len(a.data) != a.size or hashlib.sha256(a.data).digest() != a.sha256:
            raise AttachmentMismatch(
                f"attachment {a.name!r}: {len(a.data)} bytes with SHA-256 "
                f"{hashlib.sha256(a.data).hexdigest()}, declared {a.size} bytes with "
                f"{a.sha256.hex() if isinstance(a.sha256, bytes) else a.sha256!r}"
            )


def attachment_names(attachments: Iterable[Attachment]) -> list[str]:
    """Safe, distinct file names, in order (a repeated name gets a '<n>-' prefix)."""
    names: list[str] = []
    for i, a in enumerate(attachments):
        name = safe_name(a.name)
        if name in names:
            name = safe_name(f"{i + 1}-{a.name}")
        names.append(name)
    return names


def payload_json(payload: Payload, names: list[str] | None = None) -> Any:
    """The readable JSON form of a payload, with inline bytes replaced by the saved file name."""
    binding = PAYLOADS[type(payload)]
    schema = default_registry().latest(binding.schema).raw
    readable = to_json(schema, binding.to_record(payload))
    for i, item in enumerate(readable.get("attachments") or ()):
        content = item.get("content") or {}
        if "InlineContent" in content:
            saved = f"attachments/{names[i]}" if names else None
            item["content"] = {"InlineContent": {"saved_as": saved}}
    return readable


def verification_record(delivery: Delivery) -> dict[str, Any]:
    """Who signed, in which roles, with which certificates, and when we checked."""
    env, v = delivery.envelope, delivery.verified
    return {
        "message_id": env.message_id,
        "document_id": env.document_id,
        "payload_type": env.payload_type.value,
        "sender": env.sender,
        "recipients": list(env.recipients),
        "created_at": env.created_at.isoformat(),
        "trace": [{"agency": h.agency, "at": h.at.isoformat(), "note": h.note} for h in env.trace],
        "agency_code": v.agency_code,
        "agency_name": v.agency_name,
        "person_name": v.person_name,
        "signatures": [
            {
                "role": str(s.role.value),
                "algorithm": s.algorithm,
                "subject": s.subject,
                "agency_code": s.agency_code,
                "person_name": s.person_name,
                "certificate_sha256": s.certificate_sha256,
                "signing_time": s.signing_time.isoformat(),
            }
            for s in v.signatures
        ],
        "verified_at": delivery.verified_at.isoformat() if delivery.verified_at else None,
        "source": {
            "topic": delivery.topic,
            "partition": delivery.partition,
            "offset": delivery.offset,
        },
        "envelope_sha256": hashlib.sha256(delivery.raw).hexdigest(),
    }


# --- small file helpers -----------------------------------------------------------------------


def _inside(out_dir: Path, *parts: str) -> Path:
    path = out_dir.joinpath(*parts)
    # safe_name already rules traversal out; this guards against a future caller that doesn't.
    if not path.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"{path} is outside {out_dir}")
    return path


def _answers(folder: Path) -> list[dict[str, Any]]:
    path = folder / ANSWERED
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError:
        return []
    return [a for a in data if isinstance(a, dict)] if isinstance(data, list) else []


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash mid-write must not leave a short file that looks complete: write aside, then
    # rename over. fsync first, because the offset is committed right after we return.
    tmp = path.with_name(f".{path.name[:200]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_line(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "ab+") as f:
        # A line cut short by a crash would glue onto ours; start a fresh line instead.
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
