"""The national SDK's sample messages through a running router on the real broker: the four
documents (one national id shared by a new document, its update, replacement and revocation)
and the ten statuses, imported as `lienthong edxml import` does (receipt profile, the gateway's
index of national ids), each sent under its own agency's key; every one routed to its
recipients' inboxes, none dead-lettered. The statuses are three legal histories of one
document, each run against a router of its own."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from infra.gateway import (
    NationalIds,
    import_edxml,
    import_files,
    national_legacy_codes,
    signature_checker,
)
from infra.settings import Settings
from producers.sender import DocumentSender
from schemas.codec import decode_envelope, decode_payload
from schemas.document import OfficialDocument
from schemas.national import SignatureStatus
from schemas.status import StatusNotice
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from tests.integration.test_router import creds, running_router
from tests.support import ensure_exchange_topics, kafka_options, read_topic, utcnow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edxml"
G22, H13, H41 = "000.00.00.G22", "002.00.20.H13", "000.00.00.H41"
NATIONAL = [H13, H41, "000.00.00.H14", "000.00.00.G17", "000.28.22.H17"]
DOCUMENTS = ["edoc_new", "edoc_update", "edoc_replacement", "edoc_revocation"]
HISTORIES = {
    "to-06-then-16": ["status", "status_acceptance_03", "status_assignment_04",
                      "status_processing_05", "status_finish_06", "status_cancellation_13",
                      "status_change-rejection_16"],
    "01-then-02": ["status_inbox_ 01", "status_rejection_02"],
    "13-then-15": ["status_cancellation_13", "status_change-acceptance_15"],
}  # fmt: skip


@pytest.fixture
async def national(settings: Settings, bootstrap: str, pki_dir: Path, unique: str) -> Settings:
    """A private prefix with inboxes for the national agencies of the samples, and their keys
    (national agencies that joined the exchange)."""
    private = dataclasses.replace(settings, topic_prefix=f"n{unique}.")
    await ensure_exchange_topics(private, bootstrap, [G22, *NATIONAL, settings.platform_agency])
    pki = PkiDirectory(pki_dir)
    issued = {(e.agency_code, e.role) for e in pki.entries()}
    for code in (G22, H13, H41):
        if (code, CertRole.AGENCY.value) not in issued:
            pki.issue(agency_code=code, role=CertRole.AGENCY, now=utcnow())
    return private


async def _import(
    path: Path, exchange: Settings, bootstrap: str, pki_dir: Path, ids: NationalIds
) -> tuple[str, list[str]]:
    """One file imported and sent under its own sender's key: (document id, recipients)."""
    data = await asyncio.to_thread(path.read_bytes)
    payload = import_edxml(data, index=ids.index()).payload
    if isinstance(payload, OfficialDocument):
        code = payload.sender.code
    else:
        assert isinstance(payload, StatusNotice)
        code = payload.from_agency.code
    async with DocumentSender(
        bootstrap,
        credentials=creds(pki_dir, code),
        topic=exchange.topic("submissions"),
        client_options=kafka_options(),
    ) as sender:
        (outcome,) = await import_files(
            [path],
            sender,
            legacy_codes=national_legacy_codes(),
            verify=signature_checker(PkiDirectory(pki_dir).root_cert, utcnow),
            national_ids=ids,
        )
    assert outcome.state == "sent", outcome.line()
    sent = import_edxml(data, index=ids.index())
    if isinstance(sent.payload, OfficialDocument):
        recipients = [a.code for a in sent.payload.to]
    else:
        recipients = list(sent.recipients)
    return outcome.document_id or "", recipients


@pytest.mark.parametrize("history", sorted(HISTORIES))
async def test_national_samples_are_accepted_and_routed(
    national: Settings, bootstrap: str, pki_dir: Path, tmp_path: Path, history: str
) -> None:
    ids = NationalIds(tmp_path / "national-ids.jsonl")
    expected: dict[str, list[str]] = {}
    async with running_router(national, bootstrap):
        for name in [*DOCUMENTS, *HISTORIES[history]]:
            _, recipients = await _import(
                FIXTURES / f"{name}.edxml", national, bootstrap, pki_dir, ids
            )
            for code in recipients:
                expected.setdefault(code, []).append(name)
        inboxes = {
            code: await read_topic(bootstrap, national.inbox(code), expect=len(names), settle_s=0.5)
            for code, names in expected.items()
        }
        dead = await read_topic(bootstrap, national.topic("deadletter"), expect=0, settle_s=2.0)
    assert dead == [], [r.headers for r in dead]
    for code, names in expected.items():
        got = [decode_payload(decode_envelope(r.value)) for r in inboxes[code]]
        assert len(got) == len(names), (code, names, got)
    statuses = [
        p
        for records in inboxes.values()
        for p in (decode_payload(decode_envelope(r.value)) for r in records)
        if isinstance(p, StatusNotice)
    ]
    assert len(statuses) == len(HISTORIES[history])
    # Every status answers the document it names: found through the national-id index.
    assert {s.document_id for s in statuses} <= {
        "000.00.00.G22,2018/09/28,7816/VPCP-TTĐT",
        "002.00.20.H13,2019/01/16,74fass22/VPCP-TTĐT",
    }
    documents = [
        p
        for records in inboxes.values()
        for p in (decode_payload(decode_envelope(r.value)) for r in records)
        if isinstance(p, OfficialDocument)
    ]
    assert len({d.business.operation for d in documents if d.business}) == 4  # new..revoke
    for d in documents:  # the samples' Signature is not XML-DSig: recorded, still routed
        assert d.national is not None and d.national.signature is not None
        assert d.national.signature.status is SignatureStatus.INVALID
