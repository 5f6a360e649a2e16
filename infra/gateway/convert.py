"""edXML files to payloads ready to seal, and deliveries on disk back to edXML bytes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from schemas.agency import load_legacy_codes
from schemas.codec import decode_envelope, decode_payload
from schemas.document import OfficialDocument
from schemas.edxml import (
    NationalIndex,
    export_document,
    export_status,
    import_document,
    import_status,
    is_status,
)
from schemas.national import NationalOrigin, SignatureCheck
from schemas.status import StatusNotice
from signing.edxml import verify_edxml

NATIONAL_AGENCIES = "data/national_agencies.yaml"
ENVELOPE_FILE = "envelope.avro"  # what `lienthong subscribe` writes beside document.json


@dataclass(frozen=True, slots=True)
class Imported:
    """One edXML file as a payload; ``recipients`` only for a status (its ResponseFor)."""

    payload: OfficialDocument | StatusNotice
    recipients: tuple[str, ...] = ()

    @property
    def document_id(self) -> str:
        return self.payload.document_id

    @property
    def national(self) -> NationalOrigin | None:
        return self.payload.national


def import_edxml(
    data: bytes,
    *,
    legacy_codes: Mapping[str, str] | None = None,
    signature: SignatureCheck | None = None,
    index: NationalIndex | None = None,
) -> Imported:
    """A document or a status, under the receipt profile; SchemaError when it is not edXML.
    A status finds the document it answers through ``index`` (infra.gateway.nationalids)."""
    if is_status(data):
        status = import_status(data, legacy_codes=legacy_codes, signature=signature, index=index)
        return Imported(status.notice, status.recipients)
    return Imported(import_document(data, legacy_codes=legacy_codes, signature=signature))


def flag_codes(national: NationalOrigin | None) -> list[str]:
    """The receipt profile's flags, each once, in the order raised."""
    if national is None:
        return []
    return list(dict.fromkeys(f.code for f in national.flags))


def export_payload(payload: object) -> bytes:
    """edXML bytes for a delivered document or status; ValueError for other payloads."""
    if isinstance(payload, OfficialDocument):
        return export_document(payload)
    if isinstance(payload, StatusNotice):
        return export_status(payload)
    raise ValueError(f"{type(payload).__name__} has no edXML form (documents and statuses only)")


def read_delivery(folder_or_json: Path) -> OfficialDocument | StatusNotice:
    """The payload of a delivery folder written by `lienthong subscribe`: it reads the signed
    envelope (envelope.avro) beside document.json, not the readable JSON, so no value is
    re-interpreted on the way out."""
    folder = folder_or_json if folder_or_json.is_dir() else folder_or_json.parent
    path = folder / ENVELOPE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {ENVELOPE_FILE} in {folder}: not a delivery folder")
    payload = decode_payload(decode_envelope(path.read_bytes()))
    if not isinstance(payload, OfficialDocument | StatusNotice):
        raise ValueError(f"{path}: a {type(payload).__name__} has no edXML form")
    return payload


def export_delivery(folder_or_json: Path) -> bytes:
    return export_payload(read_delivery(folder_or_json))


def national_legacy_codes(path: Path | None = None) -> dict[str, str]:
    """The legacy-code table of the national agency file (the receipt profile's): `path`
    (LIENTHONG_NATIONAL_AGENCIES), or schemas/data/national_agencies.yaml."""
    if path is not None:
        return load_legacy_codes(path.read_text("utf-8"))
    text = resources.files("schemas").joinpath(NATIONAL_AGENCIES).read_text("utf-8")
    return load_legacy_codes(text)


def signature_checker(
    anchors: Path | None, clock: Callable[[], datetime]
) -> Callable[[bytes], SignatureCheck]:
    """XML-DSig checked on import against the CA in ``anchors`` (the PKI root), at clock()."""
    return lambda data: verify_edxml(
        data, anchors=anchors if anchors and anchors.exists() else None, at=clock()
    )
