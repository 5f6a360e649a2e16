"""The gateway's index of national document ids: a status the national axis sends about a
document it knows under its own id reaches our document; the file survives a torn line and is
shared between processes of one home."""

from __future__ import annotations

from pathlib import Path

from infra.gateway import NationalIds, import_edxml
from schemas.document import OfficialDocument
from schemas.status import StatusNotice

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edxml"
G22, H41 = "000.00.00.G22", "000.00.00.H41"
NATIONAL_ID = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"  # what the axis calls the document
G22_ID = "000.00.00.G22,2018/09/28,7816/VPCP-TTĐT"  # the id it routes under here
H13, H13_ID = "002.00.20.H13", "002.00.20.H13,2019/01/16,74fass22/VPCP-TTĐT"


def _document(name: str) -> OfficialDocument:
    payload = import_edxml((FIXTURES / f"{name}.edxml").read_bytes()).payload
    assert isinstance(payload, OfficialDocument)
    return payload


def _status(name: str, ids: NationalIds | None) -> StatusNotice:
    data = (FIXTURES / f"{name}.edxml").read_bytes()
    payload = import_edxml(data, index=ids.index() if ids else None).payload
    assert isinstance(payload, StatusNotice)
    return payload


def test_a_status_finds_the_document_imported_under_its_national_id(tmp_path: Path) -> None:
    update = _document("edoc_update")
    assert update.national is not None
    assert (update.national.document_id, update.document_id) == (NATIONAL_ID, G22_ID)
    # Without the index the status names the national id, which no document here has.
    assert _status("status_acceptance_03", None).document_id == NATIONAL_ID
    ids = NationalIds(tmp_path / "national-ids.jsonl")
    ids.remember(update)
    notice = _status("status_acceptance_03", ids)
    assert notice.document_id == G22_ID
    assert notice.national is not None and notice.national.flagged("answered_id_resolved")


def test_another_process_sees_what_was_remembered_and_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "national-ids.jsonl"
    first = NationalIds(path)
    assert first.index() == {}
    writer = NationalIds(path)
    writer.remember(_document("edoc_update"))
    writer.remember(_document("edoc_update"))  # the same file imported again
    writer.remember(_document("edoc_new"))  # the samples' new document: same national id
    assert first.index()[NATIONAL_ID] == [(G22_ID, G22), (H13_ID, H13)]
    assert len(path.read_text("utf-8").splitlines()) == 2


def test_a_line_torn_by_a_crash_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "national-ids.jsonl"
    path.write_text('{"national": "000.00.00.G22,2015/09/30,78', encoding="utf-8")  # no newline
    ids = NationalIds(path)
    assert ids.index() == {}
    ids.remember(_document("edoc_update"))
    again = NationalIds(path)
    assert again.index() == {NATIONAL_ID: [(G22_ID, G22)]}
    assert _status("status_finish_06", again).document_id == G22_ID


def test_a_document_without_a_national_id_is_not_indexed(tmp_path: Path) -> None:
    import dataclasses

    ids = NationalIds(tmp_path / "national-ids.jsonl")
    ids.remember(dataclasses.replace(_document("edoc_update"), national=None))
    assert ids.index() == {} and not (tmp_path / "national-ids.jsonl").exists()
