"""Payloads from files in the readable JSON form of schemas/examples (or TOML), plus attachments."""

from __future__ import annotations

import copy
import json
import mimetypes
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

from producers.refusals import MAX_ATTACHMENT_BYTES, check_attachment_size
from schemas.codec import PAYLOADS
from schemas.common import Attachment
from schemas.document import OfficialDocument, validate_document
from schemas.errors import SchemaError, ValidationError
from schemas.jsonform import PRIMITIVES, from_json
from schemas.paper import PaperExchangeRecord, validate_paper
from schemas.registry import default_registry
from schemas.report import PeriodicReport, validate_report
from schemas.status import StatusNotice, validate_status

P = TypeVar("P", OfficialDocument, PeriodicReport, PaperExchangeRecord, StatusNotice)
WithAttachments = TypeVar("WithAttachments", OfficialDocument, PeriodicReport)

# Secret documents load (so the sender can refuse them with its own reason), nothing else
# that breaks a rule does.
_VALIDATE: dict[type, Callable[[Any], None]] = {
    OfficialDocument: lambda d: validate_document(d, allow_secret=True),
    PeriodicReport: lambda r: validate_report(r, allow_secret=True),
    PaperExchangeRecord: validate_paper,
    StatusNotice: validate_status,
}


class PayloadFileError(ValueError):
    """A payload or attachment file cannot be used; the message names the file and field."""


def load_payload(path: Path, kind: type[P]) -> P:
    """Read ``kind`` from a .json or .toml file in the readable form of schemas/examples.

    Fields with a schema default may be left out (TOML has no null). The payload is checked
    against its domain rules, except the secrecy marking, which the sender refuses.
    """
    raw = _read(path)
    binding = PAYLOADS[kind]
    schema = default_registry().latest(binding.schema).raw
    try:
        record = from_json(schema, _fill_defaults(schema, _plain(raw), _named(schema)))
        payload = binding.from_record(record)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PayloadFileError(f"{path}: not a {kind.__name__}: {_explain(exc)}") from exc
    if not isinstance(payload, kind):  # pragma: no cover - the binding table is typed by kind
        raise PayloadFileError(f"{path}: not a {kind.__name__}")
    try:
        _VALIDATE[kind](payload)
    except ValidationError as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise PayloadFileError(f"{path}: {where}{exc.reason}: {exc.message}") from exc
    except SchemaError as exc:
        raise PayloadFileError(f"{path}: {exc}") from exc
    return payload


def load_document(path: Path) -> OfficialDocument:
    return load_payload(path, OfficialDocument)


def load_report(path: Path) -> PeriodicReport:
    return load_payload(path, PeriodicReport)


def load_paper(path: Path) -> PaperExchangeRecord:
    return load_payload(path, PaperExchangeRecord)


def load_status(path: Path) -> StatusNotice:
    return load_payload(path, StatusNotice)


def read_attachment(path: Path) -> Attachment:
    """One file as an inline attachment: its name, guessed media type, size and SHA-256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PayloadFileError(f"{path}: cannot read attachment: {exc.strerror or exc}") from exc
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment.inline(path.name, media_type, data)


def attach_files(
    payload: WithAttachments, paths: Sequence[Path], *, limit: int = MAX_ATTACHMENT_BYTES
) -> WithAttachments:
    """The payload with these files appended to its attachments (documents and reports)."""
    if not paths:
        return payload
    sizes = []
    for p in paths:
        try:
            sizes.append(p.stat().st_size)
        except OSError as exc:
            raise PayloadFileError(f"{p}: cannot read attachment: {exc.strerror or exc}") from exc
    # Refuse before reading: a mistaken 2 GB file must not be loaded into memory first.
    check_attachment_size(sum(a.size for a in payload.attachments) + sum(sizes), limit)
    added: tuple[Attachment, ...] = tuple(read_attachment(p) for p in paths)
    names = [a.name for a in (*payload.attachments, *added)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PayloadFileError(f"two attachments named {', '.join(duplicates)}")
    return replace(payload, attachments=(*payload.attachments, *added))


# --- reading and normalising ----------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PayloadFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PayloadFileError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadFileError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PayloadFileError(f"{path}: invalid TOML: {exc}") from exc
    raise PayloadFileError(f"{path}: expected a .json or .toml file")


def _plain(value: Any) -> Any:
    """TOML's native dates and times become the ISO strings of the readable JSON form."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _explain(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def _fullname(name: str, ns: str | None) -> str:
    return name if "." in name or not ns else f"{ns}.{name}"


def _named(schema: Any, ns: str | None = None, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type of a schema by full name, wherever it is first defined."""
    out = {} if out is None else out
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, ns, out)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            full = _fullname(schema["name"], schema.get("namespace", ns))
            ns = full.rsplit(".", 1)[0] if "." in full else ns
            out[full] = schema
        for f in schema.get("fields", ()):
            _named(f["type"], ns, out)
        for key in ("items", "values"):
            if key in schema:
                _named(schema[key], ns, out)
        if isinstance(kind, dict | list):
            _named(kind, ns, out)
    return out


def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return named.get(schema) or next(
            (s for full, s in named.items() if full.rsplit(".", 1)[-1] == schema), schema
        )
    return schema


def _fill_defaults(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    """Add the schema's default for every record field the file leaves out."""
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        live = [b for b in schema if b != "null"]
        if value is None or not live:
            return value
        if len(live) == 1:
            return _fill_defaults(live[0], value, named)
        if isinstance(value, dict) and len(value) == 1:  # a tagged union branch
            ((tag, inner),) = value.items()
            for b in live:
                r = _resolve(b, named)
                if isinstance(r, dict) and r.get("name", "").rsplit(".", 1)[-1] == tag:
                    return {tag: _fill_defaults(r, inner, named)}
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema["type"]
    if isinstance(kind, dict | list):
        return _fill_defaults(kind, value, named)
    if kind == "record" and isinstance(value, dict):
        out = dict(value)
        for f in schema["fields"]:
            if f["name"] in value:
                out[f["name"]] = _fill_defaults(f["type"], value[f["name"]], named)
            elif "default" in f:
                out[f["name"]] = _fill_defaults(f["type"], copy.deepcopy(f["default"]), named)
        return out
    if kind == "array" and isinstance(value, list):
        return [_fill_defaults(schema["items"], v, named) for v in value]
    return value
