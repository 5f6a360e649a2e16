"""The edXML drop-folder gateway wired: in/ watched and sent through DocumentSender, the
agency's inbox read like `lienthong subscribe` and every document or status written to out/
as edXML; `lienthong gateway edxml` runs it (docs/edxml.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from aiokafka.errors import KafkaError

from consumers.inbox import Delivery, InboxSubscriber, safe_name
from infra.compose.subscribe import InboxClerk
from infra.context import exchange_directory, trust_store
from infra.gateway import (
    DropFolder,
    NationalIds,
    export_payload,
    national_legacy_codes,
    signature_checker,
    write_durably,
)
from infra.settings import Settings, national_ids_file
from producers.sender import DocumentSender
from schemas.common import AgencyRef
from schemas.document import OfficialDocument
from schemas.envelope import SignerRole
from schemas.status import StatusNotice
from signing.edxml import sign_edxml
from signing.pkidir import PkiDirectory
from signing.seal import Credential, load_credential

log = structlog.get_logger()
# Inside out/, hidden from the document system: the subscriber's own files (envelope.avro,
# verification.json, answered.json, refused.jsonl), the evidence behind each edXML file.
RECORDS = ".lienthong"


def _echo(line: str) -> None:
    print(line, flush=True)


def _now() -> datetime:
    return datetime.now(UTC)


def edxml_name(payload: object, message_id: str) -> str | None:
    """out/'s file name for a delivered payload (None: no edXML form, kept in records only)."""
    if isinstance(payload, OfficialDocument):
        return safe_name(payload.document_id) + ".edxml"
    if isinstance(payload, StatusNotice):
        return safe_name(f"status-{message_id}") + ".edxml"
    return None


@dataclass
class EdxmlOut:
    """Each delivery handled by InboxClerk (files, 01), then written to out/ as edXML; the
    subscriber commits only after both, so a crash between them writes it again."""

    out_dir: Path
    clerk: InboxClerk
    # The gateway's agency signs what it hands to its document system (XML-DSig), so the
    # system can tell a file of its gateway from one dropped into out/ by anybody else; the
    # sender's own signature stays in the delivery's envelope.avro.
    signer: Credential | None = None

    async def on_delivery(self, delivery: Delivery) -> str:
        outcome = await self.clerk.on_delivery(delivery)
        name = edxml_name(delivery.payload, delivery.envelope.message_id)
        if name is None or outcome.startswith("refused"):
            return outcome
        data = export_payload(delivery.payload)
        if self.signer is not None:
            data = await asyncio.to_thread(sign_edxml, data, self.signer)
        await asyncio.to_thread(write_durably, self.out_dir / name, data)
        return outcome


async def watch(
    folder: DropFolder, stop: asyncio.Event, poll_seconds: float, echo: Callable[[str], None]
) -> None:
    """Scan in/ until stop; a transient broker error leaves the file for the next scan."""
    while not stop.is_set():
        try:
            for outcome in await folder.run_once():
                echo(outcome.line())
        except KafkaError as exc:
            if not exc.retriable:
                raise
            log.warning("gateway.kafka_retry", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_seconds)


async def run_gateway(
    *,
    settings: Settings,
    bootstrap: str,
    agency: str,
    in_dir: Path,
    out_dir: Path,
    stop: asyncio.Event,
    group_id: str | None = None,
    from_beginning: bool = False,
    answer: bool = True,
    poll_seconds: float = 2.0,
    clock: Callable[[], datetime] = _now,
    echo: Callable[[str], None] = _echo,
) -> None:
    """Run both directions until ``stop``; the first one to fail stops the other."""
    agencies = exchange_directory(settings)
    known = agencies.lookup(agency)
    if known is None:
        raise ValueError(f"agency {agency} is not in the agency directory")
    credential = load_credential(settings.pki_dir, agency, SignerRole.AGENCY)
    await asyncio.to_thread((out_dir / RECORDS).mkdir, parents=True, exist_ok=True)
    subscriber = InboxSubscriber(
        bootstrap,
        agency,
        topic=settings.inbox(agency),
        group_id=group_id or settings.topic(f"gateway.{agency}"),
        trust=trust_store(settings),
        agencies=agencies,
        clock=clock,
        from_beginning=from_beginning,
        stop=stop,
        client_options=settings.kafka_options(),
    )
    async with DocumentSender(
        bootstrap,
        credentials=[credential],
        topic=settings.topic("submissions"),
        clock=clock,
        client_id="lienthong-gateway",
        client_options=settings.kafka_options(),
    ) as sender:
        folder = DropFolder(
            in_dir,
            seal=sender.seal,
            publish=sender.send_envelope,
            legacy_codes=national_legacy_codes(settings.national_agencies_file),
            verify=signature_checker(PkiDirectory(settings.pki_dir).root_cert, clock),
            national_ids=NationalIds(national_ids_file(settings)),
        )
        me = AgencyRef(agency, known.name)
        answer_with = sender.send_status if answer else None
        clerk = InboxClerk(out_dir / RECORDS, me, answer_with, clock, echo)
        out = EdxmlOut(out_dir, clerk, signer=credential)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(watch(folder, stop, poll_seconds, echo))
                tasks.create_task(subscriber.run(out.on_delivery, clerk.on_refusal))
        finally:
            stop.set()
