"""An agency's inbox wired to its files and its answers: the subscriber, InboxClerk and the
sender that says 01 / 02 back; `lienthong subscribe` and the demo run it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from consumers.inbox import (
    AttachmentMismatch,
    Delivery,
    InboxSubscriber,
    Refusal,
    mark_answered,
    refusal_of,
    was_answered,
    write_delivery,
    write_refusal,
)
from infra.compose.trust import run_with_trust, trust_feed, trust_metrics
from infra.context import exchange_directory, trust_store
from infra.settings import Settings
from producers.refusals import SendRefused
from producers.sender import DocumentSender
from schemas.common import AgencyRef
from schemas.document import OfficialDocument
from schemas.envelope import PayloadType, SignerRole
from schemas.report import PeriodicReport
from schemas.status import StatusCode, StatusNotice
from signing.seal import load_credential

log = structlog.get_logger()
F = TypeVar("F", bound=Callable[..., Any])
# Answer these automatically with 01 (arrived); statuses are never answered (no ping-pong).
ANSWERED_TYPES = (OfficialDocument, PeriodicReport)
TYPE_LABEL = {
    PayloadType.OFFICIAL_DOCUMENT.value: "document",
    PayloadType.STATUS_NOTICE.value: "status",
    PayloadType.PERIODIC_REPORT.value: "report",
    PayloadType.PAPER_EXCHANGE_RECORD.value: "paper",
}

Answer = Callable[[StatusNotice, str], Awaitable[Any]]


def _echo(line: str) -> None:
    print(line, flush=True)  # one line per record, visible at once under a pipe


def _now() -> datetime:
    # The command is the composition root: the only place that reads the clock.
    return datetime.now(UTC)


@dataclass
class InboxClerk:
    """The handlers the subscriber calls: files first, then the answer, then the printed line.

    ``answer`` is None with --no-answer. Files are written before answering so that 01 never
    announces a document that is not on disk; the answer is recorded (answered.json) so that
    a re-delivery after a crash does not answer twice.
    """

    out_dir: Path
    agency: AgencyRef
    answer: Answer | None
    clock: Callable[[], datetime]
    echo: Callable[[str], None]

    async def on_delivery(self, delivery: Delivery) -> str:
        env = delivery.envelope
        try:
            # Off the event loop: fsync of a 25 MB attachment must not starve heartbeats.
            where = await asyncio.to_thread(write_delivery, self.out_dir, delivery)
        except AttachmentMismatch as exc:
            return await self.on_refusal(refusal_of(delivery, exc.reason_code, exc.detail))
        outcome = "written"
        if isinstance(delivery.payload, ANSWERED_TYPES) and self.answer is not None:
            if was_answered(where, env.message_id):
                outcome = "written again (01 already sent)"
            else:
                outcome = await self._answer(
                    where, env.message_id, env.document_id, env.sender, [StatusCode.ARRIVED]
                )
        self.echo(_line(env.document_id, env.sender, env.payload_type.value, outcome))
        return outcome

    async def on_refusal(self, refusal: Refusal) -> str:
        await asyncio.to_thread(write_refusal, self.out_dir, refusal, at=self.clock())
        outcome = f"refused {refusal.reason_code}"
        if self._should_answer(refusal):
            assert refusal.message_id and refusal.document_id and refusal.sender
            if not was_answered(self.out_dir, refusal.message_id):
                # 02 may only follow 01 (schemas.status.check_transition), so say both: it
                # arrived, and it is rejected, with the reason.
                sent = await self._answer(
                    self.out_dir,
                    refusal.message_id,
                    refusal.document_id,
                    refusal.sender,
                    [StatusCode.ARRIVED, StatusCode.REJECTED],
                    f"{refusal.reason_code}: {refusal.detail}",
                )
                outcome = f"{outcome}, {sent}"
        self.echo(
            _line(refusal.document_id, refusal.sender, refusal.payload_type, outcome)
            + f" [{refusal.detail}]"
        )
        return outcome

    def _should_answer(self, refusal: Refusal) -> bool:
        return bool(
            self.answer is not None
            and refusal.message_id
            and refusal.document_id
            and refusal.sender
            # A forger could name any agency as sender: only a proven sender hears back.
            and refusal.sender_verified
            and refusal.sender != self.agency.code
            and refusal.payload_type != PayloadType.STATUS_NOTICE.value
        )

    async def _answer(
        self,
        ledger: Path,
        message_id: str,
        document_id: str,
        to: str,
        codes: list[StatusCode],
        description: str | None = None,
    ) -> str:
        assert self.answer is not None
        try:
            for code in codes:
                notice = StatusNotice(
                    document_id=document_id,
                    from_agency=self.agency,
                    code=code,
                    timestamp=self.clock(),
                    description=description if code is StatusCode.REJECTED else None,
                )
                await self.answer(notice, to)
        except SendRefused as exc:
            # Not retryable (e.g. a report id that is not a document id): say so, go on.
            log.warning("inbox.answer_refused", reason=exc.reason_code, detail=exc.message)
            return f"no answer ({exc.reason_code})"
        await asyncio.to_thread(
            mark_answered, ledger, message_id, {"codes": [str(c) for c in codes], "to": to}
        )
        return "answered " + "+".join(str(c) for c in codes)


def _line(
    document_id: str | None, sender: str | None, payload_type: str | None, outcome: str
) -> str:
    kind = TYPE_LABEL.get(payload_type or "", payload_type or "?")
    return f"{document_id or '-'}  from {sender or '-'}  {kind}  {outcome}"


async def run_subscribe(
    *,
    settings: Settings,
    bootstrap: str,
    agency: str,
    out_dir: Path,
    group_id: str,
    from_beginning: bool,
    max_messages: int | None,
    idle_timeout: float | None,
    answer: bool,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = _now,
    echo: Callable[[str], None] = _echo,
    live_trust: bool = False,
) -> int:
    """Wire subscriber, files and sender; returns how many items were handled.

    `live_trust` follows the crl topic beside the subscriber (what `lienthong subscribe` does);
    the demo, which runs in 2019 on a scenario clock, verifies with trust.yaml as it is."""
    agencies = exchange_directory(settings)
    known = agencies.lookup(agency)
    if known is None:
        raise ValueError(f"agency {agency} is not in the agency directory")
    subscriber_trust = trust_store(settings)
    subscriber = InboxSubscriber(
        bootstrap,
        agency,
        topic=settings.inbox(agency),
        group_id=group_id,
        trust=subscriber_trust,
        agencies=agencies,
        clock=clock,
        from_beginning=from_beginning,
        stop=stop,
        idle_timeout=idle_timeout,
        client_options=settings.kafka_options(),
    )
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    me = AgencyRef(agency, known.name)

    async def serve(clerk: InboxClerk) -> int:
        if not live_trust:
            return await subscriber.run(clerk.on_delivery, clerk.on_refusal, max_items=max_messages)

        async def read(stop: asyncio.Event) -> int:
            return await subscriber.run(clerk.on_delivery, clerk.on_refusal, max_items=max_messages)

        feed = trust_feed(
            settings,
            bootstrap,
            clock=clock,
            owners=[subscriber.update_trust],
            metrics=trust_metrics(),
            base=subscriber_trust,
        )
        return await run_with_trust(read, feed, stop, clock=clock)

    if not answer:
        return await serve(InboxClerk(out_dir, me, None, clock, echo))
    credential = load_credential(settings.pki_dir, agency, SignerRole.AGENCY)
    async with DocumentSender(
        bootstrap,
        credentials=[credential],
        topic=settings.topic("submissions"),
        clock=clock,
        client_options=settings.kafka_options(),
    ) as sender:
        return await serve(InboxClerk(out_dir, me, sender.send_status, clock, echo))
