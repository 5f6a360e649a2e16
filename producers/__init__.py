"""The sending side: DocumentSender (SDK), payloads from files, and the refusal rules."""

from producers.files import (
    PayloadFileError,
    attach_files,
    load_document,
    load_paper,
    load_payload,
    load_report,
    load_status,
    read_attachment,
)
from producers.refusals import MAX_ATTACHMENT_BYTES, SendRefused
from producers.sender import DocumentSender, Receipt

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "DocumentSender",
    "PayloadFileError",
    "Receipt",
    "SendRefused",
    "attach_files",
    "load_document",
    "load_paper",
    "load_payload",
    "load_report",
    "load_status",
    "read_attachment",
]
