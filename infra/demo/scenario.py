"""`lienthong demo`: the seed scenario end to end on the real services, in its own time (2019).

Hà Nội People's Committee sends Plans 190 and 191 and Decision 4612 to its departments and
districts; every recipient's inbox subscriber writes the documents to disk and answers 01; the
districts report progress on the decision; the Department of Labour, Invalids and Social Affairs
submits its periodic report; a forged document and a secret one are refused. The router,
subscribers and senders are the production code, wired here as in their own commands. The clock
is the scenario's (certificates, agency validity and statuses are judged in 2019), which is why
they run in this process rather than as separate commands on today's clock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import shlex
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from infra import context
from infra.compose.router import build_router
from infra.compose.subscribe import run_subscribe
from infra.demo import archive as demo_archive
from infra.demo import console as demo_console
from infra.services import Endpoints
from infra.services.topic_setup import ensure_for_agencies
from infra.settings import Settings
from producers.refusals import SendRefused
from producers.sender import DocumentSender
from schemas.codec import decode_envelope, decode_payload, encode_envelope, encode_payload
from schemas.common import AgencyRef, SecrecyMarking
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope, SignerRole
from schemas.report import report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing.envelope import sign_envelope
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential, load_credential

log = structlog.get_logger()
VN = timezone(timedelta(hours=7))
H26 = "000.00.00.H26"
UNKNOWN_AGENCY = "000.00.99.H26"  # a well-formed code that is in no directory
LABOUR = "000.00.05.H26"  # Sở Lao động - Thương binh và Xã hội (closed in 2025, open in 2019)
CHAIRMAN = "Nguyễn Văn An"
DOCUMENTS = (
    "official_document/v1/plan-190-kh-ubnd.json",
    "official_document/v2/decision-4612-qd-ubnd.json",
    "official_document/v1/plan-191-kh-ubnd.json",
)
REPORT = "periodic_report/v1/labour-report-2019-q3.json"
# Progress on Decision 4612 reported by the districts, in the order they report it.
PROGRESS = (StatusCode.ACCEPTED, StatusCode.ASSIGNED, StatusCode.IN_PROCESS, StatusCode.COMPLETED)


class ScenarioClock:
    """The scenario's time: jumps to each step's date, then runs at the real pace."""

    def __init__(self, start: datetime) -> None:
        self._base = start
        self._t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._t0)

    def jump(self, to: datetime) -> None:
        self._base, self._t0 = to, time.monotonic()


async def run_demo(settings: Settings, endpoints: Endpoints, out: Console) -> None:
    run = f"demo{int(time.time())}"
    demo_home = settings.home / "demo" / run
    settings = dataclasses.replace(
        settings, topic_prefix=f"{run}.", pki_dir_override=demo_home / "pki"
    )
    bootstrap = endpoints.bootstrap
    clock = ScenarioClock(datetime(2019, 8, 26, 8, 0, tzinfo=VN))
    documents = [document_from_record(example_record(p)) for p in DOCUMENTS]
    report = report_from_record(example_record(REPORT))
    agencies = sorted({H26, LABOUR, *(c for d in documents for c in _recipients(d))})

    out.rule(f"[bold]lienthong demo[/] — the seed scenario ({run})")
    out.print(f"kafka {bootstrap}   postgres {endpoints.database_url}", soft_wrap=True)
    _issue_certificates(settings, agencies, clock())
    out.print(
        f"PKI: a development CA and {len(agencies)} agency certificates in {settings.pki_dir}"
    )
    await ensure_for_agencies(settings, bootstrap, [*agencies, settings.platform_agency])
    out.print(
        f"topics: {settings.topic_prefix}submissions, deadletter, router-state and "
        f"{len(agencies)} inboxes"
    )

    stop = asyncio.Event()
    router = build_router(settings, bootstrap, replay_window_days=30)
    router.clock = clock
    tasks: list[asyncio.Task[object]] = [asyncio.create_task(_as_object(router.run(stop)))]
    lines: list[str] = []
    for code in agencies:
        tasks.append(
            asyncio.create_task(
                _as_object(
                    run_subscribe(
                        settings=settings,
                        bootstrap=bootstrap,
                        agency=code,
                        out_dir=demo_home / "inboxes" / code,
                        group_id=f"{run}.subscriber.{code}",
                        from_beginning=False,
                        max_messages=None,
                        idle_timeout=None,
                        answer=True,
                        stop=stop,
                        clock=clock,
                        echo=lines.append,
                    )
                )
            )
        )
    await asyncio.wait_for(router.ready.wait(), timeout=60)
    sent: list[tuple[str, str, int, str]] = []
    try:
        await _send_documents(settings, bootstrap, clock, documents, sent)
        await _report_progress(settings, bootstrap, clock, documents[1], sent)
        await _submit_report(settings, bootstrap, clock, report, sent)
        refused = await _send_bad_documents(settings, bootstrap, clock, documents[1], sent)
        await wait_for_statuses(
            bootstrap,
            settings.inbox(H26),
            StatusCode.REJECTED,
            1,
            client_options=settings.kafka_options(),
        )
        await _read(
            bootstrap,
            settings.topic("deadletter"),
            lambda values: len(values) >= 3,
            client_options=settings.kafka_options(),
        )
        await wait_for_statuses(
            bootstrap,
            settings.inbox(LABOUR),
            StatusCode.ARRIVED,
            1,
            client_options=settings.kafka_options(),
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    await _print_summary(out, settings, bootstrap, sent, refused, agencies, demo_home)

    out.rule("[bold]Archive and audit[/]")
    demo_console.stop_console(settings)
    url = await demo_archive.demo_database(endpoints.database_url)
    out.print(f"archive database: {url}", soft_wrap=True)
    await demo_archive.archive_everything(settings, bootstrap, url, out)
    witnesses = await demo_archive.witness_the_archive(settings, bootstrap, url, demo_home, out)
    await demo_archive.audit(settings, url, documents[1].document_id, out, witnesses)
    out.rule("[bold]Paperless share, 2019[/]")
    report_file = await demo_archive.paperless_share(settings, url, demo_home, out)
    out.print(f"KPI report (one HTML file, opens offline): {report_file}")
    # Plain prints, one line each and shell-quoted: a wrapped command pastes as two.
    explore = (
        f"LIENTHONG_DATABASE_URL={shlex.quote(url)} "
        f"LIENTHONG_TOPIC_PREFIX={shlex.quote(settings.topic_prefix)} "
        f"LIENTHONG_PKI_DIR={shlex.quote(str(settings.pki_dir))} .venv/bin/lienthong"
    )
    print(f"Explore: {explore} audit search --text 'ke hoach 190'", flush=True)
    keys = " ".join(
        f"--witness {shlex.quote(str(k))}" for k in sorted((demo_home / "witnesses").glob("*.vkey"))
    )
    print(f"Check against the witnesses: {explore} audit check {keys}", flush=True)
    out.rule("[bold]Console[/]")
    console_at, password = await demo_console.start_console(settings, url)
    # Plain prints, one line each: a wrapped address or password cannot be copied.
    print(f"console: {console_at}", flush=True)
    print(f"demo account: {demo_console.DEMO_USER}  password: {password}", flush=True)
    print("the console stays up until `make down` (lienthong infra down)", flush=True)


def _recipients(doc: OfficialDocument) -> list[str]:
    return [a.code for a in doc.to] + [p.code for p in doc.to_places if p.code]


def _issue_certificates(settings: Settings, agencies: list[str], now: datetime) -> None:
    pki = PkiDirectory(settings.pki_dir)
    issued_at = now - timedelta(days=30)
    pki.init(now=issued_at)
    for code in agencies:
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=issued_at)
    pki.issue(agency_code=H26, role=CertRole.PERSON, person_name=CHAIRMAN, now=issued_at)
    pki.issue(agency_code=settings.platform_agency, role=CertRole.PLATFORM, now=issued_at)
    # The archive signs its tree heads today, not in 2019: its certificate is issued now.
    pki.issue(
        agency_code=settings.platform_agency,
        role=CertRole.ARCHIVE,
        now=datetime.now(VN) - timedelta(days=1),
    )


def _credentials(settings: Settings, code: str, person: str | None = None) -> list[Credential]:
    creds = [load_credential(settings.pki_dir, code, SignerRole.AGENCY)]
    if person:
        creds.append(load_credential(settings.pki_dir, code, SignerRole.PERSON, person_name=person))
    return creds


async def _send_documents(
    settings: Settings,
    bootstrap: str,
    clock: ScenarioClock,
    documents: list[OfficialDocument],
    sent: list[tuple[str, str, int, str]],
) -> None:
    async with DocumentSender(
        bootstrap,
        credentials=_credentials(settings, H26, CHAIRMAN),
        topic=settings.topic("submissions"),
        clock=clock,
        client_options=settings.kafka_options(),
    ) as sender:
        arrivals = 0
        for doc in documents:
            clock.jump(
                datetime.combine(doc.promulgation_date, datetime.min.time(), VN)
                + timedelta(hours=9)
            )
            receipt = await sender.send_document(doc)
            sent.append((doc.document_id, "document", len(_recipients(doc)), receipt.message_id))
            # Every recipient answers 01 the same day, before the next day's document.
            arrivals += len(_recipients(doc))
            await wait_for_statuses(
                bootstrap,
                settings.inbox(H26),
                StatusCode.ARRIVED,
                arrivals,
                client_options=settings.kafka_options(),
            )


async def _report_progress(
    settings: Settings,
    bootstrap: str,
    clock: ScenarioClock,
    decision: OfficialDocument,
    sent: list[tuple[str, str, int, str]],
) -> None:
    """Each district accepts Decision 4612 in the first week; the first ones go further, week
    by week, down to completion. Time only moves forward, as the router expects."""
    day = datetime(2019, 9, 3, 10, 0, tzinfo=VN)
    districts = list(decision.to)
    reach = {
        d.code: 1 + (len(districts) - i) * len(PROGRESS) // (len(districts) + 1)
        for i, d in enumerate(districts)
    }
    expected = 0
    async with contextlib.AsyncExitStack() as stack:
        senders = {
            d.code: await stack.enter_async_context(
                DocumentSender(
                    bootstrap,
                    credentials=_credentials(settings, d.code),
                    topic=settings.topic("submissions"),
                    clock=clock,
                    client_options=settings.kafka_options(),
                )
            )
            for d in districts
        }
        for week, code in enumerate(PROGRESS):
            for i, district in enumerate(districts):
                if week >= reach[district.code]:
                    continue
                clock.jump(day + timedelta(days=7 * week, hours=i))
                notice = StatusNotice(
                    document_id=decision.document_id,
                    from_agency=district,
                    code=code,
                    timestamp=clock(),
                )
                await senders[district.code].send_status(notice, to=H26)
                expected += 1
    sent.append((decision.document_id, "statuses 03-06", expected, "-"))
    await wait_for_statuses(
        bootstrap,
        settings.inbox(H26),
        StatusCode.ACCEPTED,
        len(districts),
        client_options=settings.kafka_options(),
    )


async def _submit_report(
    settings: Settings,
    bootstrap: str,
    clock: ScenarioClock,
    report: object,
    sent: list[tuple[str, str, int, str]],
) -> None:
    clock.jump(datetime(2019, 10, 10, 16, 0, tzinfo=VN))
    async with DocumentSender(
        bootstrap,
        credentials=_credentials(settings, LABOUR),
        topic=settings.topic("submissions"),
        clock=clock,
        client_options=settings.kafka_options(),
    ) as sender:
        receipt = await sender.send_report(report)  # type: ignore[arg-type]
    sent.append((receipt.document_id, "periodic report", 1, receipt.message_id))


async def _send_bad_documents(
    settings: Settings,
    bootstrap: str,
    clock: ScenarioClock,
    decision: OfficialDocument,
    sent: list[tuple[str, str, int, str]],
) -> list[tuple[str, str, str]]:
    """A document tampered with after signing, one marked secret (Mật), and one addressed to an
    agency the directory does not know. Only the last one's sender is proven by its signature,
    so only it hears back (a 02); the other two are recorded, and their claimed sender is not
    told on the word of whoever published them."""
    clock.jump(datetime(2019, 10, 15, 9, 0, tzinfo=VN))
    refused: list[tuple[str, str, str]] = []
    forged_doc = dataclasses.replace(
        decision,
        document_id=decision.document_id.replace("4612/", "4613/"),
        code=dataclasses.replace(decision.code, number="4613"),
    )
    secret_doc = dataclasses.replace(
        decision,
        document_id=decision.document_id.replace("4612/", "4614/"),
        code=dataclasses.replace(decision.code, number="4614"),
        secrecy=SecrecyMarking.MAT,
    )
    async with DocumentSender(
        bootstrap,
        credentials=_credentials(settings, H26, CHAIRMAN),
        topic=settings.topic("submissions"),
        clock=clock,
        client_options=settings.kafka_options(),
    ) as sender:
        sealed = sender.seal(forged_doc)
        misaddressed = sender.seal(
            dataclasses.replace(
                decision,
                document_id=decision.document_id.replace("4612/", "4615/"),
                code=dataclasses.replace(decision.code, number="4615"),
                to=(AgencyRef(UNKNOWN_AGENCY, "Ủy ban nhân dân (không có trong danh bạ)"),),
            )
        )
        try:
            await sender.send_document(secret_doc)
        except SendRefused as exc:
            refused.append((secret_doc.document_id, "SDK, before sending", exc.reason_code))
    # What an attacker or a broken system would publish, bypassing the SDK's checks.
    body = bytearray(sealed.payload)
    body[body.index(b"780.000.000")] ^= 0x01  # 780 million VND becomes 680 million
    forged = dataclasses.replace(sealed, payload=bytes(body))
    _payload_type, identity, raw_secret = encode_payload(secret_doc, validate=False)
    unsent_secret = dataclasses.replace(
        sealed,
        message_id=str(uuid.uuid4()),
        document_id=secret_doc.document_id,
        payload_schema=identity,
        payload=raw_secret,
        signatures=(),
    )
    [agency] = _credentials(settings, H26)
    secret = sign_envelope(
        unsent_secret, key=agency.key, chain=agency.chain, role=SignerRole.AGENCY, at=clock()
    )
    await _publish_raw(
        bootstrap,
        settings.topic("submissions"),
        [forged, secret, misaddressed],
        settings.kafka_options(),
    )
    sent.append((forged.document_id, "forged document", len(forged.recipients), forged.message_id))
    sent.append((secret.document_id, "secret document", len(secret.recipients), secret.message_id))
    sent.append((misaddressed.document_id, "to an unknown agency", 1, misaddressed.message_id))
    return refused


async def _publish_raw(
    bootstrap: str, topic: str, envelopes: list[Envelope], client_options: Mapping[str, Any]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **client_options
    )
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(topic, encode_envelope(env), key=env.document_id.encode())
    finally:
        await producer.stop()


async def _read(
    bootstrap: str,
    topic: str,
    until: Callable[[list[bytes]], bool],
    timeout_s: float = 60.0,
    client_options: Mapping[str, Any] | None = None,
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=40 * 1024 * 1024,
        **(client_options or {}),
    )
    await consumer.start()
    records: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records += [
                (r.value or b"", list(r.headers or ())) for rs in batch.values() for r in rs
            ]
            if not batch and until([v for v, _ in records]):
                break
    finally:
        await consumer.stop()
    return records


async def wait_for_statuses(
    bootstrap: str,
    inbox: str,
    code: StatusCode,
    count: int,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Until `count` status notices with `code` are in that inbox (also `lienthong generate`'s)."""

    def enough(values: list[bytes]) -> bool:
        return sum(_status_code(v) == code for v in values) >= count

    records = await _read(bootstrap, inbox, enough, client_options=client_options)
    if not enough([v for v, _ in records]):
        raise RuntimeError(f"timed out waiting for {count} status {code} in {inbox}")


def _status_code(value: bytes) -> str | None:
    try:
        payload = decode_payload(decode_envelope(value), validate=False)
    except Exception:  # not a status notice we can read: not what we wait for
        return None
    return str(payload.code) if isinstance(payload, StatusNotice) else None


async def _print_summary(
    out: Console,
    settings: Settings,
    bootstrap: str,
    sent: list[tuple[str, str, int, str]],
    refused: list[tuple[str, str, str]],
    agencies: list[str],
    demo_home: Path,
) -> None:
    directory = context.agency_directory(settings)
    table = Table("document", "what", "to", "message id", title="Sent")
    for doc_id, what, n, msg in sent:
        table.add_row(doc_id, what, str(n), msg[:8])
    out.print(table)

    delivered = Table(
        "agency",
        "documents",
        "reports",
        "statuses",
        "rejections (02)",
        title="Delivered to inboxes",
    )
    for code in agencies:
        counts: collections.Counter[str] = collections.Counter()
        for value, _ in await _read(
            bootstrap, settings.inbox(code), lambda v: True, 3, settings.kafka_options()
        ):
            env = decode_envelope(value)
            payload = decode_payload(env, validate=False)
            if isinstance(payload, StatusNotice) and payload.code == StatusCode.REJECTED:
                counts["rejected"] += 1
            else:
                counts[str(env.payload_type)] += 1
        agency = directory.lookup(code)
        delivered.add_row(
            f"{code} {agency.name if agency else ''}"[:60],
            str(counts["OFFICIAL_DOCUMENT"]),
            str(counts["PERIODIC_REPORT"]),
            str(counts["STATUS_NOTICE"]),
            str(counts["rejected"]),
        )
    out.print(delivered)

    answered = Table(
        "document",
        "01 arrived",
        "03 accepted",
        "04 assigned",
        "05 in process",
        "06 completed",
        title="Answers received by the senders",
    )
    by_doc: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for inbox in (settings.inbox(H26), settings.inbox(LABOUR)):
        for value, _ in await _read(bootstrap, inbox, lambda v: True, 3, settings.kafka_options()):
            payload = decode_payload(decode_envelope(value), validate=False)
            if isinstance(payload, StatusNotice):
                by_doc[payload.document_id][str(payload.code)] += 1
    for doc_id, c in sorted(by_doc.items()):
        if set(c) - {"02"}:
            answered.add_row(doc_id, *(str(c[k]) for k in ("01", "03", "04", "05", "06")))
    out.print(answered)

    rejected = Table("document / digest", "refused by", "reason", "kept", title="Refused")
    for doc_id, where, reason in refused:
        rejected.add_row(doc_id, where, reason, "nothing left the machine")
    for value, headers in await _read(
        bootstrap, settings.topic("deadletter"), lambda v: True, 3, settings.kafka_options()
    ):
        h = {k: bytes(v).decode() for k, v in headers}
        ident = (
            f"sha256 {h.get('lt-sha256', '')[:16]}…"
            if h.get("lt-reason") == "SECRET_DOCUMENT"
            else _document_id(value)
        )
        kept = f"original bytes ({len(value):,} B)" if value else "digest, size, reason only"
        proven = h.get("lt-sender-verified") == "true"
        told = "router, 02 to the sender" if proven else "router; sender unproven, no 02"
        if h.get("lt-reason") == "SECRET_DOCUMENT":
            told = "router; no 02 (it would name the document)"
        rejected.add_row(ident, told, h.get("lt-reason", "?"), kept)
    out.print(rejected)
    out.print(f"Inboxes written by the subscribers: {demo_home / 'inboxes'}")


def _document_id(value: bytes) -> str:
    try:
        return decode_envelope(value).document_id
    except Exception:  # a dead letter need not decode at all
        return "(undecodable)"


async def _as_object(awaitable: Awaitable[object]) -> object:
    return await awaitable
