"""`lienthong edxml import`'s work: each file imported, sealed and sent; a bad file is one
refused line, not the end of the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from infra.gateway.convert import flag_codes, import_edxml
from infra.gateway.dropfolder import Outcome
from infra.gateway.nationalids import NationalIds
from producers.refusals import SendRefused
from producers.sender import DocumentSender
from schemas.document import OfficialDocument
from schemas.errors import SchemaError, ValidationError
from schemas.national import SignatureCheck


async def import_files(
    paths: Sequence[Path],
    sender: DocumentSender,
    *,
    legacy_codes: Mapping[str, str],
    verify: Callable[[bytes], SignatureCheck] | None = None,
    national_ids: NationalIds | None = None,
) -> list[Outcome]:
    """Send every file with ``sender`` (entered already); ``verify`` checks its XML-DSig into
    ``national.signature``; a document's national id is remembered in ``national_ids``, where
    a later status finds it; broker errors propagate."""
    outcomes = []
    for path in paths:
        try:
            data = await asyncio.to_thread(path.read_bytes)
            signature = verify(data) if verify is not None else None
            index = national_ids.index() if national_ids is not None else None
            imported = import_edxml(
                data, legacy_codes=legacy_codes, signature=signature, index=index
            )
            receipt = await sender.send(imported.payload, list(imported.recipients) or None)
            if national_ids is not None and isinstance(imported.payload, OfficialDocument):
                await asyncio.to_thread(national_ids.remember, imported.payload)
        except (OSError, SchemaError, ValidationError, SendRefused, ValueError) as exc:
            outcomes.append(Outcome(str(path), "refused", reason=str(exc)))
            continue
        flags = tuple(flag_codes(imported.national))
        outcomes.append(Outcome(str(path), "sent", receipt.document_id, receipt.message_id, flags))
    return outcomes
