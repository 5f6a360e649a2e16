"""Sender -> router -> Ba Đình's subscriber -> 01 routed back -> H26's statuses.jsonl."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from consumers.inbox.files import STATUSES, read_jsonl, safe_name
from infra.compose.router import build_router
from infra.compose.subscribe import run_subscribe
from infra.settings import Settings
from producers.sender import DocumentSender
from schemas.common import AgencyRef, Attachment
from schemas.document import document_from_record
from schemas.envelope import SignerRole
from schemas.samples import example_record
from signing.seal import load_credential
from tests.support import kafka_options

H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_routed_document_is_written_and_its_01_reaches_the_sender(
    exchange_topics: Settings, bootstrap: str, pki_dir: Path, unique: str, tmp_path: Path
) -> None:
    settings = exchange_topics
    base = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    code = dataclasses.replace(base.code, number=f"5{unique[:6]}")
    pdf = b"%PDF-1.4\n" + unique.encode() * 1000
    doc = dataclasses.replace(
        base,
        code=code,
        document_id=f"{H26},{base.promulgation_date:%Y/%m/%d},{code}",
        to=(AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),),
        to_places=(),
        attachments=(Attachment.inline("4612.pdf", "application/pdf", pdf),),
    )
    router = build_router(settings, bootstrap, instance=f"subscribe-e2e-{unique}")
    router_stop = asyncio.Event()
    routing = asyncio.create_task(router.run(router_stop))
    try:
        await asyncio.wait_for(router.ready.wait(), timeout=30)
        creds = [load_credential(pki_dir, H26, SignerRole.AGENCY)]
        async with DocumentSender(
            bootstrap,
            credentials=creds,
            topic=settings.topic("submissions"),
            clock=now,
            client_options=kafka_options(),
        ) as sender:
            await sender.send_document(doc)

        lines: list[str] = []

        async def subscribe(agency: str, out: Path) -> int:
            return await run_subscribe(
                settings=settings,
                bootstrap=bootstrap,
                agency=agency,
                out_dir=out,
                group_id=f"test.e2e.{agency}.{unique}",
                from_beginning=False,
                max_messages=None,
                idle_timeout=4.0,
                answer=agency == BA_DINH,
                stop=asyncio.Event(),
                echo=lines.append,
            )

        ba_dinh = tmp_path / "ba-dinh"
        await subscribe(BA_DINH, ba_dinh)
        folder = ba_dinh / safe_name(doc.document_id)
        assert (folder / "attachments" / "4612.pdf").read_bytes() == pdf
        assert f"{doc.document_id}  from {H26}  document  answered 01" in lines

        # The router checked the 01 and delivered it to H26's inbox.
        h26 = tmp_path / "h26"
        for _ in range(5):
            await subscribe(H26, h26)
            rows = [r for r in read_jsonl(h26 / STATUSES) if r["document_id"] == doc.document_id]
            if rows:
                break
        assert [(r["code"], r["from_agency"], r["signed_by"]) for r in rows] == [
            ("01", BA_DINH, BA_DINH)
        ]
    finally:
        router_stop.set()
        await asyncio.wait_for(routing, timeout=30)
