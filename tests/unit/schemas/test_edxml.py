"""edXML <-> payloads: the national samples import, export and re-import with no header value
lost or changed; every element of the national model is carried; the receipt profile flags."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from lxml import etree

from schemas.codec import decode_payload, encode_payload
from schemas.document import BusinessOperationType, OfficialDocument, validate_document
from schemas.edxml import (
    MODEL_ELEMENTS,
    STATUS_MODEL_ELEMENTS,
    element_names,
    export_document,
    export_status,
    header_leaves,
    import_document,
    import_status,
    is_status,
    parse,
    split_junk,
)
from schemas.edxml.tree import NS, ensure, header, serialise
from schemas.envelope import Envelope, PayloadType
from schemas.errors import SchemaError, ValidationError
from schemas.status import StatusCode, validate_status

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edxml"
DOCUMENTS = ["edoc_new", "edoc_update", "edoc_replacement", "edoc_revocation"]
STATUSES = sorted(p.stem for p in FIXTURES.glob("status*.edxml"))
NATIONAL_ID = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
G22_ID = "000.00.00.G22,2018/09/28,7816/VPCP-TTĐT"


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.edxml").read_bytes()


def leaves(data: bytes) -> list[tuple[str, str]]:
    return header_leaves(parse(split_junk(data)[1]))


def attachments_sha(data: bytes) -> list[str]:
    root = parse(split_junk(data)[1])
    out = []
    for el in root.iter(f"{{{NS}}}ContentTransferEncoded", "ContentTransferEncoded"):
        import base64

        out.append(hashlib.sha256(base64.b64decode("".join((el.text or "").split()))).hexdigest())
    return sorted(out)


def through_avro(doc: OfficialDocument) -> OfficialDocument:
    payload_type, schema, body = encode_payload(doc)
    env = Envelope("m", payload_type, schema, body, doc.document_id, doc.sender.code, (), _NOW)
    result = decode_payload(env)
    assert isinstance(result, OfficialDocument)
    return result


from datetime import UTC, datetime  # noqa: E402

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_there_are_ten_status_samples_and_four_documents() -> None:
    assert len(STATUSES) == 10 and all((FIXTURES / f"{d}.edxml").exists() for d in DOCUMENTS)
    assert all(is_status(raw(s)) for s in STATUSES)
    assert not any(is_status(raw(d)) for d in DOCUMENTS)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_a_national_document_round_trips_with_no_header_value_lost(name: str) -> None:
    data = raw(name)
    doc = import_document(data)
    validate_document(doc)  # accepted under the receipt profile
    carried = through_avro(doc)  # the contract carries it, not just the dataclass
    assert carried == doc
    exported = export_document(carried)
    assert leaves(exported) == leaves(data)
    assert attachments_sha(exported) == attachments_sha(data)
    assert [a.sha256.hex() for a in doc.attachments] == attachments_sha(data)
    again = import_document(exported)
    assert leaves(export_document(again)) == leaves(data)
    ignore = {"national": None}
    assert dataclasses.replace(again, **ignore) == dataclasses.replace(doc, **ignore)
    assert doc.national is not None and doc.national.original == data  # byte for byte


@pytest.mark.parametrize("name", STATUSES)
def test_a_national_status_round_trips_with_no_header_value_lost(name: str) -> None:
    data = raw(name)
    imported = import_status(data, index={NATIONAL_ID: [(G22_ID, "000.00.00.G22")]})
    validate_status(imported.notice)
    payload_type, schema, body = encode_payload(imported.notice)
    env = Envelope("m", payload_type, schema, body, G22_ID, "x", (), _NOW)
    assert env.payload_type is PayloadType.STATUS_NOTICE
    carried = decode_payload(env)
    assert carried == imported.notice
    assert leaves(export_status(carried)) == leaves(data)  # type: ignore[arg-type]


def test_every_header_element_of_the_samples_is_in_the_model_and_carried() -> None:
    seen = set().union(*(element_names(parse(split_junk(raw(d))[1])) for d in DOCUMENTS))
    assert seen <= set(MODEL_ELEMENTS), sorted(seen - set(MODEL_ELEMENTS))
    # 59 distinct leaf elements of MessageHeader and TraceHeaderList across the four samples
    # (the XML-DSig Signature and the body's manifest and attachments are not header data).
    assert len(seen) == 59
    status_seen = set().union(*(element_names(parse(raw(s))) for s in STATUSES))
    assert status_seen == set(STATUS_MODEL_ELEMENTS) - {
        "MessageHeader/StaffInfo/DepartmentId",
        "MessageHeader/StaffInfo/StaffId",
    }
    assert len(status_seen) == 19  # and the model adds StaffInfo/DepartmentId, StaffId


_REFERENCED = "000.00.00.G22,2014/01/30,7806/VPCP-TTĐT"


def _with_every_model_element(data: bytes, elements: tuple[str, ...]) -> bytes:
    root = parse(split_junk(data)[1])
    head = header(root)
    for path in elements:
        if not head.xpath("/".join(f"*[local-name()='{s}']" for s in path.split("/"))):
            leaf = path.rsplit("/", 1)[-1]
            ensure(head, path).text = _REFERENCED if leaf == "DocumentId" else f"v-{leaf}"
    return serialise(root)


def test_every_element_of_the_national_model_lands_in_a_field_of_its_own() -> None:
    full = _with_every_model_element(raw("edoc_update"), MODEL_ELEMENTS)
    assert element_names(parse(full)) == set(MODEL_ELEMENTS)
    doc = import_document(full)
    assert doc.national is not None and doc.national.extra == ()  # nothing left unmapped
    assert doc.task_codes == ("v-TaskCode",) and doc.application_type == "v-ApplicationType"
    assert doc.reference_codes == ("v-ReferenceCode",)
    assert doc.business.staff is not None and doc.business.staff.staff_id == "v-StaffId"
    assert doc.reply_fors[0].document_id == _REFERENCED
    assert leaves(export_document(through_avro(doc))) == leaves(full)
    status = _with_every_model_element(raw("status_finish_06"), STATUS_MODEL_ELEMENTS)
    notice = import_status(status).notice
    assert notice.national is not None and notice.national.extra == ()
    assert notice.staff is not None and notice.staff.department_id == "v-DepartmentId"
    assert leaves(export_status(notice)) == leaves(status)


def test_an_element_outside_the_model_is_kept_not_dropped() -> None:
    root = parse(raw("edoc_update"))
    ensure(header(root), "MessageHeader/OtherInfo/Novelty/Inner").text = "kept"
    ensure(header(root), "TraceHeaderList/Bussiness/Whatever").text = "too"
    doc = through_avro(import_document(serialise(root)))
    assert doc.national is not None
    assert {(e.path, e.value) for e in doc.national.extra} == {
        ("MessageHeader/OtherInfo/Novelty/Inner", "kept"),
        ("TraceHeaderList/Bussiness/Whatever", "too"),
    }
    assert "unmapped_element" in {f.code for f in doc.national.flags}
    assert leaves(export_document(doc)) == leaves(serialise(root))


def flags(doc: OfficialDocument) -> set[str]:
    assert doc.national is not None
    return {f.code for f in doc.national.flags}


def test_the_receipt_profile_takes_and_flags_what_the_national_samples_do() -> None:
    new = import_document(raw("edoc_new"))
    assert {"junk_before_xml", "agency_code_normalised", "document_id_mismatch",
            "bad_due_date", "new_names_target"} <= flags(new)  # fmt: skip
    assert new.document_id == "002.00.20.H13,2019/01/16,74fass22/VPCP-TTĐT"  # ours, canonical
    assert new.national is not None and new.national.document_id == NATIONAL_ID  # kept beside
    assert [a.code for a in new.to] == ["000.28.22.H17"]  # 28.22.H17, three groups
    assert new.business.operation is BusinessOperationType.NEW
    assert new.business.target_document_id is None
    update = import_document(raw("edoc_update"))
    assert update.business.target_document_id == "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT"
    assert "impossible_date_in_id" in flags(update)
    replacement = import_document(raw("edoc_replacement"))
    assert replacement.business.operation is BusinessOperationType.REPLACE
    assert [r.organ_ids for r in replacement.business.replacements] == [
        ("000.00.00.H41", "000.00.00.H14"),
        ("000.00.00.H41", "000.00.00.H14"),
    ]
    revocation = import_document(raw("edoc_revocation"))
    assert revocation.business.target_document_id == NATIONAL_ID
    assert revocation.response_for == ("000.00.04.G14,2012/08/06,267/VPCP-TTĐT",)


def test_a_waiver_needs_its_flag_and_only_waivable_rules_are_waived() -> None:
    new = import_document(raw("edoc_new"))
    assert new.national is not None
    unflagged = dataclasses.replace(
        new,
        national=dataclasses.replace(
            new.national, flags=tuple(f for f in new.national.flags if f.code != "bad_due_date")
        ),
    )
    with pytest.raises(ValidationError) as err:
        validate_document(unflagged)
    assert err.value.reason == "bad_due_date"
    native = dataclasses.replace(new, national=None)  # the same document sent natively
    with pytest.raises(ValidationError):
        validate_document(native)
    update = import_document(raw("edoc_update"))
    assert update.national is not None
    forged = dataclasses.replace(  # a flag cannot waive a rule outside the receipt profile
        update,
        subject="",
        national=dataclasses.replace(
            update.national,
            flags=(
                *update.national.flags,
                dataclasses.replace(update.national.flags[0], code="missing_field"),
            ),
        ),
    )
    with pytest.raises(ValidationError):
        validate_document(forged)


def test_both_date_formats_and_legacy_codes() -> None:
    text = raw("edoc_update").decode()
    text = text.replace("<edXML:PromulgationDate>2018/09/28", "<edXML:PromulgationDate>28/09/2018")
    # The first To's code, as an old system wrote it.
    text = text.replace("<edXML:OrganId>000.00.00.H41<", "<edXML:OrganId>H41-OLD<", 1)
    data = text.encode()
    doc = import_document(data, legacy_codes={"H41-OLD": "000.00.00.H41"})
    assert doc.promulgation_date.isoformat() == "2018-09-28"
    assert doc.to[0].code == "000.00.00.H41"
    assert {"date_format", "agency_code_legacy"} <= flags(doc)
    assert leaves(export_document(doc)) == leaves(data)
    status = raw("status_finish_06").decode().replace("2015/09/20 11:08:36", "20/09/2015 11:08:36")
    notice = import_status(status.encode()).notice
    assert notice.timestamp.isoformat() == "2015-09-20T11:08:36+07:00"
    assert leaves(export_status(notice)) == leaves(status.encode())


def test_statuses_resolve_the_national_id_through_the_index() -> None:
    index = {NATIONAL_ID: [("002.00.20.H13,2019/01/16,74fass22/VPCP-TTĐT", "002.00.20.H13"),
                           (G22_ID, "000.00.00.G22")]}  # fmt: skip
    done = import_status(raw("status_finish_06"), index=index)
    assert done.notice.document_id == G22_ID and done.recipients == ("000.00.00.G22",)
    assert done.notice.code is StatusCode.COMPLETED
    ask = import_status(raw("status_cancellation_13"), index=index)  # from the doc's sender
    assert ask.notice.document_id == G22_ID and ask.recipients == ("000.00.00.H41",)
    alone = import_status(raw("status_finish_06"))  # no index: the national id itself
    assert alone.notice.document_id == NATIONAL_ID


def test_malformed_edxml_is_refused_with_a_reason() -> None:
    with pytest.raises(SchemaError) as err:
        import_document(raw("edoc"))  # the SDK's edoc.edxml uses an undeclared xlink prefix
    assert err.value.reason == "malformed" and "xlink" in str(err.value)
    with pytest.raises(SchemaError):
        import_document(b"no xml here")
    assert etree is not None
