"""write_delivery / write_refusal: safe names, exact bytes, idempotence, no content in refusals."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.inbox.files import (
    REFUSED,
    STATUSES,
    AttachmentMismatch,
    mark_answered,
    read_jsonl,
    refusal_of,
    safe_name,
    was_answered,
    write_delivery,
    write_refusal,
)
from consumers.inbox.subscriber import Delivery, Refusal, examine
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope
from schemas.common import AgencyRef, Attachment
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import SignerRole
from schemas.report import report_from_record
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from signing.trust import TrustStore

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
NOI_VU = "000.00.02.H26"  # took over the Labour department (2025)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW - timedelta(days=1))
    for code in (H26, BA_DINH, NOI_VU):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
    return root


@pytest.fixture(scope="module")
def trust(pki: Path) -> TrustStore:
    return PkiDirectory(pki).trust_store()


def decision(*attachments: Attachment) -> OfficialDocument:
    doc = document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))
    return dataclasses.replace(doc, attachments=attachments)


def deliver(
    pki: Path, trust: TrustStore, payload: object, to: str = BA_DINH, **kw: object
) -> Delivery:
    sender = getattr(getattr(payload, "from_agency", None), "code", None)
    sender = sender or getattr(getattr(payload, "reporting_agency", None), "code", None) or H26
    cred = load_credential(pki, sender, SignerRole.AGENCY)
    env = seal(payload, credentials=[cred], at=NOW, **kw)  # type: ignore[arg-type]
    item = examine(
        encode_envelope(env),
        agency_code=to,
        trust=trust,
        agencies=AgencyDirectory.default(),
        at=NOW,
        topic="lienthong.inbox.x",
        offset=3,
    )
    assert isinstance(item, Delivery), item
    return item


# --- safe names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["..", ".", "../../etc/passwd", "/etc/passwd", "a/../../b", "..\\..\\x", "", " ", ".bashrc",
     "x\x00y", "a\nb", "%2E%2E"],
)  # fmt: skip
def test_safe_name_never_escapes_its_directory(tmp_path: Path, hostile: str) -> None:
    name = safe_name(hostile)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..") and not name.startswith(".")
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_safe_name_keeps_vietnamese_and_is_injective() -> None:
    assert safe_name("Quyết định 4612.pdf") == "Quyết định 4612.pdf"
    doc_id = "000.00.00.H26,2019/08/28,4612/QĐ-UBND"
    assert safe_name(doc_id) == "000.00.00.H26,2019%2F08%2F28,4612%2FQĐ-UBND"
    # '/' and its encoding stay apart: two ids never share a folder.
    assert safe_name("a/b") != safe_name("a%2Fb") != safe_name("a_b")


def test_safe_name_shortens_long_names_keeping_them_apart() -> None:
    a, b = "Phụ lục " * 60 + "A.pdf", "Phụ lục " * 60 + "B.pdf"
    na, nb = safe_name(a), safe_name(b)
    assert na != nb and na.endswith(".pdf")
    assert len(na.encode()) <= 200 and len(nb.encode()) <= 200


# --- documents --------------------------------------------------------------------------------


def test_a_document_is_written_with_exact_bytes_and_evidence(
    tmp_path: Path, pki: Path, trust: TrustStore
) -> None:
    att = Attachment.inline("Quyết định 4612.pdf", "application/pdf", PDF)
    d = deliver(pki, trust, decision(att))
    folder = write_delivery(tmp_path, d)

    assert folder.parent == tmp_path
    assert (folder / "attachments" / "Quyết định 4612.pdf").read_bytes() == PDF
    assert (folder / "envelope.avro").read_bytes() == d.raw
    readable = json.loads((folder / "document.json").read_text("utf-8"))
    assert readable["document_id"] == decision().document_id
    assert readable["subject"] == decision().subject
    saved = readable["attachments"][0]["content"]["InlineContent"]
    assert saved == {"saved_as": "attachments/Quyết định 4612.pdf"}
    assert base64.b64encode(PDF).decode()[:40] not in (folder / "document.json").read_text()
    proof = json.loads((folder / "verification.json").read_text("utf-8"))
    assert proof["agency_code"] == H26
    assert proof["signatures"][0]["role"] == "AGENCY"
    assert len(proof["signatures"][0]["certificate_sha256"]) == 64
    assert proof["verified_at"] == NOW.isoformat()
    assert proof["envelope_sha256"] == hashlib.sha256(d.raw).hexdigest()


def test_writing_twice_overwrites_instead_of_duplicating(
    tmp_path: Path, pki: Path, trust: TrustStore
) -> None:
    d = deliver(pki, trust, decision(Attachment.inline("a.pdf", "application/pdf", PDF)))
    first = write_delivery(tmp_path, d)
    snapshot = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert write_delivery(tmp_path, d) == first
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == snapshot
    assert len(list(tmp_path.iterdir())) == 1


def test_hostile_attachment_names_stay_inside_the_folder(
    tmp_path: Path, pki: Path, trust: TrustStore
) -> None:
    atts = (
        Attachment.inline("../../../evil.sh", "text/plain", b"echo owned"),
        Attachment.inline("..", "text/plain", b"dots"),
        Attachment.inline("same.txt", "text/plain", b"one"),
        Attachment.inline("same.txt", "text/plain", b"two"),
    )
    folder = write_delivery(tmp_path / "out", deliver(pki, trust, decision(*atts)))
    files = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert all(p.resolve().is_relative_to(folder.resolve()) for p in files)
    stored = sorted(p.read_bytes() for p in (folder / "attachments").iterdir())
    assert stored == sorted([b"echo owned", b"dots", b"one", b"two"])
    assert not (tmp_path / "evil.sh").exists()


def test_an_attachment_not_matching_its_digest_writes_nothing(
    tmp_path: Path, pki: Path, trust: TrustStore
) -> None:
    d = deliver(pki, trust, decision(Attachment.inline("a.pdf", "application/pdf", PDF)))
    good = d.payload
    assert isinstance(good, OfficialDocument)
    bad = dataclasses.replace(good.attachments[0], data=PDF[:-1] + b"!")
    tampered = dataclasses.replace(d, payload=dataclasses.replace(good, attachments=(bad,)))
    with pytest.raises(AttachmentMismatch) as err:
        write_delivery(tmp_path, tampered)
    assert not list(tmp_path.iterdir())
    refusal = refusal_of(tampered, err.value.reason_code, err.value.detail)
    assert refusal.reason_code == "sha256_mismatch" and refusal.offset == 3


def test_a_report_goes_under_reports(tmp_path: Path, pki: Path, trust: TrustStore) -> None:
    report = report_from_record(example_record("periodic_report/v1/labour-report-2019-q3.json"))
    report = dataclasses.replace(
        report,
        reporting_agency=AgencyRef(NOI_VU, "Sở Nội vụ thành phố Hà Nội"),
        report_id=f"{NOI_VU}/BC/2019-Q3/01",  # a report id starts with its reporter's code
    )
    folder = write_delivery(tmp_path, deliver(pki, trust, report, to=H26))
    assert folder.parent == tmp_path / "reports"
    assert folder.name == safe_name(report.report_id) and "/" not in folder.name
    assert json.loads((folder / "report.json").read_text())["report_id"] == report.report_id


# --- statuses and refusals --------------------------------------------------------------------


def test_statuses_are_appended_once_per_message(
    tmp_path: Path, pki: Path, trust: TrustStore
) -> None:
    notice = StatusNotice(
        document_id=decision().document_id,
        from_agency=AgencyRef(BA_DINH, "Ủy ban nhân dân quận Ba Đình"),
        code=StatusCode.ARRIVED,
        timestamp=NOW,
    )
    d = deliver(pki, trust, notice, to=H26, recipients=[H26])
    assert write_delivery(tmp_path, d) == tmp_path / STATUSES
    write_delivery(tmp_path, d)
    other = deliver(pki, trust, dataclasses.replace(notice, code=StatusCode.ACCEPTED), to=H26,
                    recipients=[H26])  # fmt: skip
    write_delivery(tmp_path, other)
    rows = read_jsonl(tmp_path / STATUSES)
    assert [(r["code"], r["from_agency"]) for r in rows] == [("01", BA_DINH), ("03", BA_DINH)]
    assert rows[0]["document_id"] == decision().document_id


def test_a_line_cut_by_a_crash_does_not_corrupt_the_next(tmp_path: Path) -> None:
    (tmp_path / REFUSED).write_text('{"reason": "trunc')
    write_refusal(tmp_path, Refusal("bad_magic", "x", b"abc", 0, 1, topic="t"))
    rows = read_jsonl(tmp_path / REFUSED)
    assert [r["reason"] for r in rows] == ["bad_magic"]


def test_refusals_never_carry_the_content(tmp_path: Path, pki: Path, trust: TrustStore) -> None:
    secret_words = "Danh sách 29 cựu thanh niên xung phong"
    d = deliver(pki, trust, dataclasses.replace(decision(), subject=secret_words))
    refusal = refusal_of(d, "BAD_SIGNATURE", "signature #0: signature does not verify")
    path = write_refusal(tmp_path, refusal, at=NOW)
    write_refusal(tmp_path, refusal, at=NOW)  # the same record again: one line
    text = path.read_text("utf-8")
    assert secret_words not in text
    assert base64.b64encode(d.raw).decode()[:40] not in text and d.raw.hex()[:40] not in text
    (row,) = read_jsonl(path)
    assert row["reason"] == "BAD_SIGNATURE" and row["message_id"] == d.envelope.message_id
    assert row["sha256"] == hashlib.sha256(d.raw).hexdigest()
    assert (row["topic"], row["partition"], row["offset"]) == ("lienthong.inbox.x", 0, 3)
    assert set(row) == {
        "reason", "detail", "message_id", "document_id", "sender", "payload_type", "topic",
        "partition", "offset", "sha256", "size", "refused_at",
    }  # fmt: skip


def test_answer_markers_survive_rewrites(tmp_path: Path) -> None:
    assert not was_answered(tmp_path, "m1")
    mark_answered(tmp_path, "m1", {"code": "01"})
    mark_answered(tmp_path, "m1", {"code": "01"})
    assert was_answered(tmp_path, "m1") and not was_answered(tmp_path, "m2")
