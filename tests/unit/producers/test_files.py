"""Payloads from JSON/TOML files and attachments from disk, with errors that name file and field."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from producers.files import (
    PayloadFileError,
    attach_files,
    load_document,
    load_paper,
    load_payload,
    load_report,
    load_status,
    read_attachment,
)
from producers.refusals import SendRefused
from schemas.common import SecrecyMarking
from schemas.document import OfficialDocument, document_from_record
from schemas.paper import paper_from_record
from schemas.report import report_from_record
from schemas.samples import example_record
from schemas.status import StatusNotice, status_from_record

EXAMPLES = resources.files("schemas").joinpath("examples")


def example_path(rel: str) -> Path:
    return Path(str(EXAMPLES.joinpath(rel)))


@pytest.mark.parametrize(
    ("rel", "loader", "from_record"),
    [
        ("official_document/v1/plan-190-kh-ubnd.json", load_document, document_from_record),
        ("official_document/v2/decision-4612-qd-ubnd.json", load_document, document_from_record),
        ("periodic_report/v1/labour-report-2019-q3.json", load_report, report_from_record),
        ("paper_exchange_record/v1/paper-incoming-vpcp.json", load_paper, paper_from_record),
        ("status_notice/v1/rejected-02.json", load_status, status_from_record),
    ],
)
def test_every_shipped_example_loads_as_its_payload(
    rel: str, loader: Any, from_record: Any
) -> None:
    assert loader(example_path(rel)) == from_record(example_record(rel))


TOML_DOCUMENT = """
document_id = "000.00.00.H26,2019/08/27,190/KH-UBND"
subject = "Kế hoạch ứng dụng công nghệ thông tin, phát triển Chính quyền điện tử"
promulgation = { place = "Hà Nội", date = 2019-08-27 }
priority_deadline = 2019-08-28T17:00:00+07:00
priority = 4
code = { number = "190", notation = "KH-UBND" }
document_type = { abbreviation = "KH", name = "Kế hoạch", category = "ADMINISTRATIVE" }
signer = { position = "Phó Chủ tịch", full_name = "Nguyễn Văn Sửu", competence = "KT. CHỦ TỊCH" }

[sender]
code = "000.00.00.H26"
name = "Ủy ban nhân dân thành phố Hà Nội"

[[to]]
code = "000.00.02.H26"
name = "Sở Nội vụ thành phố Hà Nội"
"""


def test_a_toml_document_may_leave_out_every_field_with_a_default(tmp_path: Path) -> None:
    path = tmp_path / "kh-190.toml"
    path.write_text(TOML_DOCUMENT, "utf-8")
    doc = load_document(path)
    assert doc.promulgation_date.isoformat() == "2019-08-27"
    assert doc.priority_deadline is not None and doc.priority_deadline.utcoffset() is not None
    assert (doc.content, doc.attachments, doc.secrecy) == (None, (), SecrecyMarking.NONE)
    assert doc.sender.email is None
    assert doc.business.operation == "NEW"


def test_a_toml_timestamp_without_offset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "naive.toml"
    path.write_text(TOML_DOCUMENT.replace("+07:00", ""), "utf-8")
    with pytest.raises(PayloadFileError, match=r"naive\.toml: .*without offset"):
        load_document(path)


def _write(tmp_path: Path, rel: str, **changes: Any) -> Path:
    data = json.loads(example_path(rel).read_text("utf-8"))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for p in parents:
            target = target[p]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return path


DECISION = "official_document/v2/decision-4612-qd-ubnd.json"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"subject": ...}, r"doc\.json: .*subject"),
        ({"sender__code": "H26"}, r"doc\.json: sender\.code: bad_agency_code"),
        ({"subject": "x" * 501}, r"doc\.json: subject: field_too_long"),
        ({"secrecy": "SECRETISH"}, r"doc\.json: .*SECRETISH"),
        ({"promulgation__date": "28/08/2019"}, r"doc\.json: .*28/08/2019"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(PayloadFileError, match=expected):
        load_document(_write(tmp_path, DECISION, **changes))


def test_a_secret_document_loads_so_the_sender_refuses_it_with_its_reason(tmp_path: Path) -> None:
    doc = load_document(_write(tmp_path, DECISION, secrecy="MAT"))
    assert doc.secrecy is SecrecyMarking.MAT


def test_unreadable_files_say_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(PayloadFileError, match=r"nowhere\.json: cannot read"):
        load_document(tmp_path / "nowhere.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"document_id": ', "utf-8")
    with pytest.raises(PayloadFileError, match=r"bad\.json: line 1: invalid JSON"):
        load_document(bad)
    other = tmp_path / "doc.xml"
    other.write_text("<edXML/>", "utf-8")
    with pytest.raises(PayloadFileError, match=r"doc\.xml: expected a \.json or \.toml"):
        load_document(other)
    with pytest.raises(PayloadFileError, match="not a StatusNotice"):
        load_payload(example_path(DECISION), StatusNotice)


def test_an_attachment_gets_its_media_type_size_and_digest(tmp_path: Path) -> None:
    pdf = tmp_path / "quyet-dinh.pdf"
    pdf.write_bytes(b"%PDF-1.4 quyet dinh")
    odd = tmp_path / "bang-ke.zzz"
    odd.write_bytes(b"\x00\x01")
    doc = attach_files(load_document(example_path(DECISION)), [pdf, odd])
    first, second = doc.attachments[-2:]
    assert (first.name, first.media_type, first.size) == ("quyet-dinh.pdf", "application/pdf", 19)
    assert first.sha256 == hashlib.sha256(pdf.read_bytes()).digest()
    assert first.data == pdf.read_bytes()
    assert second.media_type == "application/octet-stream"
    assert read_attachment(pdf) == first


def test_attachments_over_the_limit_are_refused_before_they_are_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as f:
        f.truncate(26 * 1024 * 1024)  # sparse: no disk used, nothing read
    doc: OfficialDocument = load_document(example_path(DECISION))
    with pytest.raises(SendRefused) as refused:
        attach_files(doc, [huge])
    assert refused.value.reason_code == "too_large"


def test_attachment_names_are_unique_and_missing_files_are_named(tmp_path: Path) -> None:
    a = tmp_path / "a.pdf"
    a.write_bytes(b"1")
    doc = load_document(example_path(DECISION))
    with pytest.raises(PayloadFileError, match=r"two attachments named a\.pdf"):
        attach_files(doc, [a, a])
    with pytest.raises(PayloadFileError, match=r"missing\.pdf: cannot read attachment"):
        attach_files(doc, [tmp_path / "missing.pdf"])
