"""The edXML gateway: national-axis files in and out of the exchange.

Public names: Imported, import_edxml, read_delivery, export_delivery, flag_codes (convert);
DropFolder, Journal, JournalEntry, Step, next_step, Outcome (the drop folder's file states).
"""

from infra.gateway.convert import (
    Imported,
    export_delivery,
    export_payload,
    flag_codes,
    import_edxml,
    read_delivery,
)
from infra.gateway.dropfolder import DropFolder, Journal, JournalEntry, Outcome, Step, next_step

__all__ = [
    "DropFolder",
    "Imported",
    "Journal",
    "JournalEntry",
    "Outcome",
    "Step",
    "export_delivery",
    "export_payload",
    "flag_codes",
    "import_edxml",
    "next_step",
    "read_delivery",
]
