"""edXML (QCVN 102:2016/BTTTT, the national axis's format) <-> lienthong payloads, pure.

Public names: import_document, export_document, import_status, export_status, ImportedStatus,
NationalIndex, header_leaves, element_names, is_status, split_junk, parse, MODEL_ELEMENTS,
STATUS_MODEL_ELEMENTS.
"""

from schemas.edxml.document import export_document, import_document
from schemas.edxml.model import MODEL_ELEMENTS, STATUS_MODEL_ELEMENTS
from schemas.edxml.status import ImportedStatus, NationalIndex, export_status, import_status
from schemas.edxml.tree import element_names, find, header, header_leaves, parse, split_junk


def is_status(data: bytes) -> bool:
    """Whether edXML bytes are a status (MessageHeader has StatusCode) rather than a document."""
    mh = find(header(parse(split_junk(data)[1])), "MessageHeader")
    return find(mh, "StatusCode") is not None


__all__ = [
    "MODEL_ELEMENTS",
    "STATUS_MODEL_ELEMENTS",
    "ImportedStatus",
    "NationalIndex",
    "element_names",
    "export_document",
    "export_status",
    "header_leaves",
    "import_document",
    "import_status",
    "is_status",
    "parse",
    "split_junk",
]
