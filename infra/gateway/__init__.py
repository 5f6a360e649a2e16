"""The edXML gateway: national-axis files in and out of the exchange.

Public names: Imported, import_edxml, read_delivery, export_delivery, export_payload, flag_codes,
national_legacy_codes, signature_checker (convert); import_files (the import command's work);
DropFolder, Journal, JournalEntry, Step, next_step, Outcome, write_durably (the drop folder's
file states); NationalIds (national document ids -> ours, for statuses).
"""

from infra.gateway.convert import (
    Imported,
    export_delivery,
    export_payload,
    flag_codes,
    import_edxml,
    national_legacy_codes,
    read_delivery,
    signature_checker,
)
from infra.gateway.dropfolder import (
    DropFolder,
    Journal,
    JournalEntry,
    Outcome,
    Step,
    next_step,
    write_durably,
)
from infra.gateway.importer import import_files
from infra.gateway.nationalids import NationalIds

__all__ = [
    "DropFolder",
    "Imported",
    "Journal",
    "JournalEntry",
    "NationalIds",
    "Outcome",
    "Step",
    "export_delivery",
    "export_payload",
    "flag_codes",
    "import_edxml",
    "import_files",
    "national_legacy_codes",
    "next_step",
    "read_delivery",
    "signature_checker",
    "write_durably",
]
