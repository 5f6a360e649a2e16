"""End-to-end pipeline: signed OfficialDocuments through DocumentSender -> router -> inbox, and
the archiver, on the real broker and a private database; send->delivered and send->archived.

The router and the archiver run as `lienthong route` and `lienthong archive` subprocesses (as
deployed: one interpreter each). The sender and the inbox subscriber run in this process, as a
department system embedding the SDK would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.baseline import drive
from bench.common import (
    H26,
    RECIPIENTS,
    BenchRun,
    CpuMeter,
    ServiceProcess,
    latency_summary,
    peak_rss_mb,
)
from consumers.inbox import Delivery, InboxSubscriber
from infra import context
from producers.sender import DocumentSender
from schemas.codec import encode_envelope
from schemas.common import AgencyRef, Attachment, DocumentCode
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import SignerRole
from schemas.samples import example_record
from signing.seal import Credential, load_credential

WARMUP = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


_BASE = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))


def make_document(number: int, recipient: str, attachment: Attachment | None) -> OfficialDocument:
    """Decision 4612/QĐ-UBND renumbered, to one recipient, with an optional attachment."""
    notation = _BASE.code.notation
    return dataclasses.replace(
        _BASE,
        document_id=f"{H26},{_BASE.promulgation_date:%Y/%m/%d},{number}/{notation}",
        code=DocumentCode(str(number), notation),
        to=(AgencyRef(recipient, f"Cơ quan {recipient}"),),
        to_places=(),
        attachments=(attachment,) if attachment else (),
    )


def credentials(run: BenchRun) -> list[Credential]:
    return [load_credential(run.settings.pki_dir, H26, SignerRole.AGENCY)]


def sized_attachment(run: BenchRun, target_bytes: int) -> tuple[Attachment | None, int]:
    """An incompressible attachment making the signed envelope about `target_bytes`; returns
    it and the envelope's real size (what the baseline then sends)."""
    sender = DocumentSender(run.bootstrap, credentials=credentials(run), topic="unused")
    bare = len(encode_envelope(sender.seal(make_document(1, RECIPIENTS[0], None))))
    fill = max(0, target_bytes - bare - 64)  # 64: the attachment's own fields
    attachment = (
        Attachment.inline("phu-luc.pdf", "application/pdf", os.urandom(fill)) if fill else None
    )
    size = len(encode_envelope(sender.seal(make_document(1, RECIPIENTS[0], attachment))))
    return attachment, size


async def measure_repeats(
    run: BenchRun,
    database_url: str,
    *,
    recipient: str,
    target_bytes: int,
    count: int,
    repeats: int,
    concurrency: int,
    rate: float | None,
    services: dict[str, ServiceProcess],
    number_base: int,
) -> dict[str, Any]:
    """Warm up once, then `repeats` measured batches of `count` documents through the running
    router and archiver; returns the per-repeat figures."""
    attachment, size = sized_attachment(run, target_bytes)
    settings = run.settings
    trust = context.trust_store(settings)
    agencies = context.agency_directory(settings)
    subscriber = InboxSubscriber(
        run.bootstrap,
        recipient,
        topic=settings.inbox(recipient),
        group_id=f"{settings.topic_prefix}bench.inbox.{recipient}",
        trust=trust,
        agencies=agencies,
        clock=utcnow,
        client_options=run.kafka_options,
    )
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    acked: dict[str, float] = {}  # the sender's Receipt (acks=all)
    routed_wall: dict[str, float] = {}  # the router's trace hop: when it decided
    delivered: dict[str, float] = {}
    refused: list[str] = []
    want = {"n": WARMUP}
    arrived = asyncio.Event()

    async def consume() -> None:
        async for item in subscriber:
            now = time.perf_counter()
            if isinstance(item, Delivery):
                delivered[item.envelope.document_id] = now
                if item.envelope.trace:
                    routed_wall[item.envelope.document_id] = item.envelope.trace[-1].at.timestamp()
            else:
                refused.append(f"{item.reason_code}: {item.detail}")
            if len(delivered) >= want["n"]:
                arrived.set()

    number = number_base
    repeats_out: list[dict[str, Any]] = []
    async with DocumentSender(
        run.bootstrap,
        credentials=credentials(run),
        topic=settings.topic("submissions"),
        client_options=run.kafka_options,
    ) as sender:
        await subscriber.start()
        consumer_task = asyncio.create_task(consume())
        try:

            async def send(docs: list[OfficialDocument], i: int) -> None:
                doc = docs[i]
                sent_at[doc.document_id] = time.perf_counter()
                sent_wall[doc.document_id] = time.time()
                await sender.send_document(doc)
                acked[doc.document_id] = time.perf_counter()

            warm = [make_document(number + i, recipient, attachment) for i in range(WARMUP)]
            number += WARMUP
            for i in range(WARMUP):
                await send(warm, i)
            await asyncio.wait_for(arrived.wait(), timeout=90)
            await wait_archived(database_url, [d.document_id for d in warm], timeout_s=90)
            for _ in range(repeats):
                for svc in services.values():
                    svc.check_alive()
                delivered.clear()
                arrived.clear()
                want["n"] = count
                docs = [make_document(number + i, recipient, attachment) for i in range(count)]
                number += count

                async def send_one(i: int, docs: list[OfficialDocument] = docs) -> None:
                    await send(docs, i)

                pids: dict[str, int | str] = {n: p.pid for n, p in services.items()}
                meter = CpuMeter({"bench": "self", **pids})
                first = await drive(send_one, count, concurrency, rate)
                await asyncio.wait_for(arrived.wait(), timeout=max(120.0, count / 10))
                last = time.perf_counter()
                ids = [d.document_id for d in docs]
                archived = await wait_archived(database_url, ids, timeout_s=max(120.0, count / 10))
                first_wall = min(sent_wall[i] for i in ids)
                elapsed = last - first
                archive_elapsed = max(archived.values()) - first_wall
                repeats_out.append(
                    {
                        "documents": count,
                        "bytes": size,
                        "seconds": round(elapsed, 3),
                        "docs_per_s": round(count / elapsed, 1),
                        **latency_summary([(delivered[i] - sent_at[i]) * 1000 for i in ids]),
                        **stages(ids, sent_at, sent_wall, acked, routed_wall, delivered),
                        **{
                            f"archived_{k}": v
                            for k, v in latency_summary(
                                [(archived[i] - sent_wall[i]) * 1000 for i in ids]
                            ).items()
                        },
                        "archived_docs_per_s": round(count / archive_elapsed, 1),
                        # Until the last delivery is archived: the archiver's work is included.
                        **meter.figures(count),
                        "bench_peak_rss_mb": peak_rss_mb() or 0.0,
                    }
                )
        finally:
            consumer_task.cancel()
            await asyncio.gather(consumer_task, return_exceptions=True)
            await subscriber.stop()
    if refused:
        raise RuntimeError(f"the inbox refused {len(refused)} documents, e.g. {refused[0]}")
    return {"bytes": size, "repeats": repeats_out}


def stages(
    ids: list[str],
    sent_at: dict[str, float],
    sent_wall: dict[str, float],
    acked: dict[str, float],
    routed_wall: dict[str, float],
    delivered: dict[str, float],
) -> dict[str, float]:
    """Where send->delivered goes: sealing and the broker's ack (send->acked), waiting for and
    inside the router up to its decision (send->routed, wall clocks of one machine), and the
    router's transaction, the inbox fetch and the subscriber's checks (routed->delivered)."""
    out: dict[str, float] = {}
    parts = {
        "acked": [(acked[i] - sent_at[i]) * 1000 for i in ids],
        "routed": [(routed_wall[i] - sent_wall[i]) * 1000 for i in ids if i in routed_wall],
        "routed_to_delivered": [
            (delivered[i] - sent_at[i]) * 1000 - (routed_wall[i] - sent_wall[i]) * 1000
            for i in ids
            if i in routed_wall
        ],
    }
    for name, samples in parts.items():
        if samples:
            summary = latency_summary(samples)
            out[f"{name}_p50_ms"] = summary["p50_ms"]
            out[f"{name}_p99_ms"] = summary["p99_ms"]
    return out


async def wait_archived(database_url: str, ids: list[str], timeout_s: float) -> dict[str, float]:
    """When each document's delivery row was archived (the archiver's batch timestamp, taken
    just before its transaction: a few ms earlier than the commit), as epoch seconds."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await conn.fetch(
                "SELECT document_id, min(archived_at) AS at FROM archive_record "
                "WHERE kind = 'delivery' AND document_id = ANY($1) GROUP BY document_id",
                ids,
            )
            if len(rows) >= len(ids):
                return {r["document_id"]: r["at"].timestamp() for r in rows}
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(rows)} of {len(ids)} deliveries archived")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
