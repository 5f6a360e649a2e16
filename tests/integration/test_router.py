"""The router on the real broker: delivery to every recipient once, statuses back to the sender,
every refusal dead-lettered with a platform-signed status 02 for the sender."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from consumers.router.service import Router
from infra.compose.router import build_router
from infra.settings import Settings
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope, decode_payload, encode_envelope, encode_payload
from schemas.common import AgencyRef, SecrecyMarking
from schemas.document import OfficialDocument
from schemas.envelope import Envelope, SignerRole
from schemas.status import StatusCode, StatusNotice
from signing import verify_envelope
from signing.envelope import sign_envelope
from signing.pkidir import PkiDirectory
from signing.seal import Credential, load_credential, seal
from tests.conftest import BA_DINH, DONG_DA, H26, HAI_BA_TRUNG, PKI_AGENCIES
from tests.support import ensure_exchange_topics, header, publish, read_topic, seed_document, utcnow


@pytest.fixture
async def exchange(settings: Settings, bootstrap: str, pki_dir: Path, unique: str) -> Settings:
    """Topics of a private prefix, so that each test has its own router group and state."""
    private = dataclasses.replace(settings, topic_prefix=f"t{unique}.")
    await ensure_exchange_topics(private, bootstrap, [*PKI_AGENCIES, settings.platform_agency])
    return private


@asynccontextmanager
async def running_router(
    settings: Settings,
    bootstrap: str,
    *,
    instance: str = "0",
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[Router]:
    router = build_router(settings, bootstrap, instance=instance)
    router.clock = clock
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(stop))
    try:
        await asyncio.wait_for(router.ready.wait(), timeout=30)
        yield router
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def creds(pki_dir: Path, code: str) -> list[Credential]:
    return [load_credential(pki_dir, code, SignerRole.AGENCY)]


def trust(pki_dir: Path) -> object:
    return PkiDirectory(pki_dir).trust_store()


async def test_a_document_reaches_each_recipient_once_and_still_verifies(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    doc = seed_document(7001, [BA_DINH, HAI_BA_TRUNG])
    envelope = seal(doc, credentials=creds(pki_dir, H26), at=utcnow())
    async with running_router(exchange, bootstrap):
        await publish(bootstrap, exchange.topic("submissions"), [envelope])
        ba_dinh = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
        hai_ba_trung = await read_topic(bootstrap, exchange.inbox(HAI_BA_TRUNG), expect=1)
        dong_da = await read_topic(bootstrap, exchange.inbox(DONG_DA), expect=0, settle_s=0.5)
    assert len(ba_dinh) == 1 and len(hai_ba_trung) == 1 and dong_da == []
    delivered = decode_envelope(ba_dinh[0].value)
    assert ba_dinh[0].key == doc.document_id.encode()
    assert delivered.payload == envelope.payload  # the signed bytes travel untouched
    assert [hop.agency for hop in delivered.trace] == [exchange.platform_agency]
    verified = verify_envelope(
        delivered, trust=trust(pki_dir), agencies=AgencyDirectory.default(), at=utcnow()
    )
    assert verified.agency_code == H26
    assert decode_payload(delivered) == doc


async def test_statuses_go_back_to_the_sender_in_order_and_illegal_ones_are_refused(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    doc = seed_document(7002, [BA_DINH])
    ba_dinh = AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình")

    def status(code: str, minutes: int) -> Envelope:
        notice = StatusNotice(
            document_id=doc.document_id,
            from_agency=ba_dinh,
            code=StatusCode(code),
            timestamp=utcnow() + timedelta(seconds=minutes),
        )
        return seal(notice, credentials=creds(pki_dir, BA_DINH), at=utcnow(), recipients=[H26])

    async with running_router(exchange, bootstrap):
        await publish(
            bootstrap,
            exchange.topic("submissions"),
            [
                seal(doc, credentials=creds(pki_dir, H26), at=utcnow()),
                status("01", 1),
                status("03", 2),
                status("05", 3),
                status("03", 4),  # 03 after 05: illegal
            ],
        )
        to_h26 = await read_topic(bootstrap, exchange.inbox(H26), expect=3)
        to_ba_dinh = await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=2)
        dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=1)
    codes = [decode_payload(decode_envelope(r.value)).code for r in to_h26]  # type: ignore[union-attr]
    assert codes == ["01", "03", "05"]
    assert [header(r, "lt-reason") for r in dead] == ["ILLEGAL_TRANSITION"]
    # Ba Đình got the document, then the platform's 02 about its illegal status.
    notice = decode_payload(decode_envelope(to_ba_dinh[1].value))
    assert isinstance(notice, StatusNotice) and notice.code == StatusCode.REJECTED
    assert notice.from_agency.code == exchange.platform_agency
    assert (notice.description or "").startswith("ILLEGAL_TRANSITION")


def _tampered(envelope: Envelope) -> Envelope:
    body = bytearray(envelope.payload)
    # One bit of the notation's text (a letter's case): the payload still decodes.
    body[bytes(body).index(b"-UBND") + 1] ^= 0x20
    return dataclasses.replace(envelope, payload=bytes(body))


def _signed_by_hand(doc: OfficialDocument, pki_dir: Path, recipients: tuple[str, ...]) -> Envelope:
    """An envelope seal() would refuse to make: unvalidated payload, recipients as given."""
    payload_type, identity, body = encode_payload(doc, validate=False)
    bare = Envelope(
        message_id=str(uuid.uuid4()),
        payload_type=payload_type,
        payload_schema=identity,
        payload=body,
        document_id=doc.document_id,
        sender=doc.sender.code,
        recipients=recipients,
        created_at=utcnow(),
    )
    [c] = creds(pki_dir, doc.sender.code)
    return sign_envelope(bare, key=c.key, chain=c.chain, role=SignerRole.AGENCY, at=utcnow())


async def test_every_refusal_is_dead_lettered_and_the_sender_gets_a_signed_02(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    now = utcnow()
    good = seal(seed_document(7100, [BA_DINH]), credentials=creds(pki_dir, H26), at=now)
    unknown_recipient = seal(
        seed_document(7101, [BA_DINH, "000.00.99.H26"]), credentials=creds(pki_dir, H26), at=now
    )
    duplicate_document = seal(
        seed_document(7100, [BA_DINH]), credentials=creds(pki_dir, H26), at=now
    )
    wrong_signer = seal(
        seed_document(7102, [DONG_DA]), credentials=creds(pki_dir, BA_DINH), at=now
    )  # Ba Đình's key on a document whose sender is H26
    before_certificate = seal(
        seed_document(7103, [BA_DINH]), credentials=creds(pki_dir, H26), at=now - timedelta(days=8)
    )
    unknown_document_status = seal(
        StatusNotice(
            document_id="000.00.00.H26,2019/08/28,9999/QĐ-UBND",
            from_agency=AgencyRef(BA_DINH, "Ba Đình"),
            code=StatusCode.ARRIVED,
            timestamp=now,
        ),
        credentials=creds(pki_dir, BA_DINH),
        at=now,
        recipients=[H26],
    )
    misaddressed = _signed_by_hand(seed_document(7104, [BA_DINH]), pki_dir, (DONG_DA,))
    secret = _signed_by_hand(
        dataclasses.replace(seed_document(7106, [BA_DINH]), secrecy=SecrecyMarking.MAT),
        pki_dir,
        (BA_DINH,),
    )
    # (reason, what is sent, who is told with a platform 02). Only a proven sender hears back:
    # a broken or foreign signature proves nobody; a secret document's 02 would name it; the
    # same bytes resent are not delivered twice, and their sender keeps its first receipt.
    cases: list[tuple[str, Envelope | bytes, str | None]] = [
        (
            "BAD_SIGNATURE",
            _tampered(
                seal(seed_document(7105, [BA_DINH]), credentials=creds(pki_dir, H26), at=now)
            ),
            None,
        ),
        ("UNKNOWN_RECIPIENT", unknown_recipient, H26),
        ("RESUBMITTED", good, None),
        ("DUPLICATE_DOCUMENT", duplicate_document, H26),
        ("SENDER_MISMATCH", wrong_signer, None),
        ("CERT_NOT_YET_VALID", before_certificate, None),
        ("UNKNOWN_DOCUMENT", unknown_document_status, BA_DINH),
        ("MISADDRESSED", misaddressed, H26),
        ("SECRET_DOCUMENT", secret, None),
        ("MALFORMED", os.urandom(300), None),
    ]
    told_h26 = sum(c[2] == H26 for c in cases)
    told_ba_dinh = sum(c[2] == BA_DINH for c in cases)
    with capture_logs() as logs:
        async with running_router(exchange, bootstrap):
            await publish(bootstrap, exchange.topic("submissions"), [good])
            assert len(await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)) == 1
            for _, item, _ in cases:
                await publish(bootstrap, exchange.topic("submissions"), [item], key=b"x")
            dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=len(cases))
            to_h26 = await read_topic(bootstrap, exchange.inbox(H26), expect=told_h26)
            to_ba_dinh = await read_topic(
                bootstrap, exchange.inbox(BA_DINH), expect=1 + told_ba_dinh
            )
    # Not a word of the secret document in any log line: not its id, not its subject.
    secret_doc_id = secret.document_id
    assert any(e.get("reason") == "SECRET_DOCUMENT" for e in logs)
    assert not [e for e in logs if secret_doc_id in repr(e) or "7106/" in repr(e)]

    assert sorted(header(r, "lt-reason") or "" for r in dead) == sorted(c[0] for c in cases)
    notices = [
        decode_envelope(r.value)
        for r in [*to_h26, *to_ba_dinh]
        if header(r, "lt-payload-type") == "STATUS_NOTICE"
    ]
    trust_store = PkiDirectory(pki_dir).trust_store()
    told: dict[str, set[str]] = {}
    for envelope in notices:
        verified = verify_envelope(
            envelope, trust=trust_store, agencies=AgencyDirectory.default(), at=utcnow()
        )
        assert SignerRole.PLATFORM in verified.roles
        notice = decode_payload(envelope)
        assert isinstance(notice, StatusNotice) and notice.code == StatusCode.REJECTED
        told.setdefault(envelope.recipients[0], set()).add((notice.description or "").split(":")[0])
    expected: dict[str, set[str]] = {}
    for reason, _, sender in cases:
        if sender:
            expected.setdefault(sender, set()).add(reason)
    assert told == expected
    verified_flags = {header(r, "lt-reason"): header(r, "lt-sender-verified") for r in dead}
    assert verified_flags["BAD_SIGNATURE"] == verified_flags["SENDER_MISMATCH"] == "false"
    assert verified_flags["UNKNOWN_RECIPIENT"] == "true"

    secret = next(r for r in dead if header(r, "lt-reason") == "SECRET_DOCUMENT")
    assert secret.value == b"" and secret.key is None  # nothing of its content is kept
    assert header(secret, "lt-sha256") and header(secret, "lt-sender") == H26
    # Bytes that do not decode might be a secret document's: digest and size, not content.
    malformed = next(r for r in dead if header(r, "lt-reason") == "MALFORMED")
    assert malformed.value == b"" and malformed.key is None
    assert header(malformed, "lt-sha256") == hashlib.sha256(cases[-1][1]).hexdigest()  # type: ignore[arg-type]
    assert header(malformed, "lt-size") == "300"
    kept = next(r for r in dead if header(r, "lt-reason") == "UNKNOWN_RECIPIENT")
    assert kept.value == encode_envelope(unknown_recipient)  # decoded, not secret: kept


async def test_envelopes_older_than_the_replay_window_are_refused_as_stale(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    envelope = seal(seed_document(7150, [BA_DINH]), credentials=creds(pki_dir, H26), at=utcnow())
    async with running_router(exchange, bootstrap, clock=lambda: utcnow() + timedelta(days=8)):
        await publish(bootstrap, exchange.topic("submissions"), [envelope])
        dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=1)
        [notice] = await read_topic(bootstrap, exchange.inbox(H26), expect=1)
    assert [header(r, "lt-reason") for r in dead] == ["STALE"]
    assert (decode_payload(decode_envelope(notice.value)).description or "").startswith("STALE")  # type: ignore[union-attr]


async def test_a_burst_of_invalid_input_raises_the_alarm_without_stopping(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    async with running_router(exchange, bootstrap) as router:
        await publish(
            bootstrap,
            exchange.topic("submissions"),
            [os.urandom(64) for _ in range(40)],
            key=b"junk",
        )
        await read_topic(bootstrap, exchange.topic("deadletter"), expect=40)
        assert router.metrics.registry.get_sample_value("lienthong_router_reject_alarm") == 1
        doc = seed_document(7200, [DONG_DA])
        await publish(
            bootstrap,
            exchange.topic("submissions"),
            [seal(doc, credentials=creds(pki_dir, H26), at=utcnow())],
        )
        delivered = await read_topic(bootstrap, exchange.inbox(DONG_DA), expect=1)
    assert len(delivered) == 1


async def test_a_20_mb_document_goes_through(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    from schemas.common import Attachment

    blob = os.urandom(20 * 1024 * 1024)
    doc = dataclasses.replace(
        seed_document(7300, [HAI_BA_TRUNG]),
        attachments=(Attachment.inline("ban-do.pdf", "application/pdf", blob),),
    )
    envelope = seal(doc, credentials=creds(pki_dir, H26), at=utcnow())
    async with running_router(exchange, bootstrap):
        await publish(bootstrap, exchange.topic("submissions"), [envelope])
        [record] = await read_topic(bootstrap, exchange.inbox(HAI_BA_TRUNG), expect=1, timeout_s=60)
    received = decode_payload(decode_envelope(record.value))
    assert received.attachments[0].data == blob  # type: ignore[union-attr]


def _restored(logs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in logs if e["event"] == "router.restored")


async def test_a_restarted_router_remembers_from_its_store_and_the_changelog_tail(
    exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    """Restarted on the same home, the router reads the changelog only from its store's
    checkpoint, yet still refuses a resubmission and routes statuses of a document routed before.
    When the log no longer holds the checkpoint's last record (a recreated topic) or the store
    is gone, it restores everything from the changelog and does the same."""
    doc = seed_document(7400, [BA_DINH])
    envelope = seal(doc, credentials=creds(pki_dir, H26), at=utcnow())
    ba_dinh = AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình")
    store_dir = exchange.home / "router-state" / exchange.topic("router")

    async def restart_and_send(code: str, rounds: int) -> dict[str, Any]:
        notice = StatusNotice(
            document_id=doc.document_id,
            from_agency=ba_dinh,
            code=StatusCode(code),
            timestamp=utcnow(),
        )
        status = seal(notice, credentials=creds(pki_dir, BA_DINH), at=utcnow(), recipients=[H26])
        with capture_logs() as logs:
            async with running_router(exchange, bootstrap):
                await publish(bootstrap, exchange.topic("submissions"), [envelope, status])
                await read_topic(bootstrap, exchange.topic("deadletter"), expect=rounds)
                # One status per round so far (a resubmission earns its sender no 02).
                await read_topic(bootstrap, exchange.inbox(H26), expect=rounds)
        return _restored(logs)

    with capture_logs() as first_logs:
        async with running_router(exchange, bootstrap):
            await publish(bootstrap, exchange.topic("submissions"), [envelope])
            await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)
    [routed] = [e for e in first_logs if e["event"] == "router.routed"]
    partition = routed["partition"]
    assert (store_dir / "0" / "store.sqlite").exists()

    restored = await restart_and_send("01", 1)
    assert restored["records"] == 0  # all of it was in the store already
    assert restored["read_from"][partition] >= 2  # the document and its message id

    db = sqlite3.connect(store_dir / "0" / "store.sqlite")
    with db:
        db.execute("UPDATE checkpoints SET last_key = 'msg:elsewhere' WHERE part = ?", (partition,))
    db.close()
    restored = await restart_and_send("03", 2)
    assert restored["read_from"][partition] == 0
    assert restored["records"] >= 4  # the document twice, two message ids

    shutil.rmtree(store_dir)
    restored = await restart_and_send("05", 3)
    assert restored["read_from"][partition] == 0
    assert restored["records"] >= 6

    dead = await read_topic(bootstrap, exchange.topic("deadletter"), expect=3)
    # Each restart remembered the message id and the digest of its bytes: the same bytes again
    # are a resubmission (not delivered twice), not a new document.
    assert [header(r, "lt-reason") for r in dead] == ["RESUBMITTED"] * 3
    to_h26 = await read_topic(bootstrap, exchange.inbox(H26), expect=3)
    statuses = [decode_payload(decode_envelope(r.value)) for r in to_h26]
    # H26 got Ba Đình's statuses, and no 02 about its own bytes sent again.
    assert [(s.from_agency.code, s.code) for s in statuses] == [  # type: ignore[union-attr]
        (BA_DINH, "01"),
        (BA_DINH, "03"),
        (BA_DINH, "05"),
    ]
