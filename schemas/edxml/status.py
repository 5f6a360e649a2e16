"""edXML status (QCVN 102:2016 Status) <-> StatusNotice, lossless for every header element."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lxml import etree

from schemas.agency import VIETNAM_TZ
from schemas.common import DOCUMENT_ID, AgencyRef
from schemas.edxml.document import CONTACT, _write_org, _write_response_for
from schemas.edxml.tree import (
    NS,
    children,
    ensure,
    find,
    header,
    local,
    opt,
    parse,
    path_of,
    serialise,
    split_junk,
    sub,
    text,
)
from schemas.edxml.values import TIMESTAMP_FORMAT, Receipt, well_formed_id
from schemas.errors import SchemaError
from schemas.national import EdxmlElement, NationalOrigin, ResponseForRef, SignatureCheck
from schemas.status import SENT_BY_SENDER, Staff, StatusCode, StatusNotice

# national id -> what lienthong routed under it: (our document id, its sender). The gateway
# keeps this for documents it imported; a status answering a national id finds ours here.
NationalIndex = Mapping[str, Sequence[tuple[str, str]]]
_MAPPED = {"From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"}


@dataclass(frozen=True, slots=True)
class ImportedStatus:
    notice: StatusNotice
    recipients: tuple[str, ...]  # whom the status goes to (ResponseFor/OrganId)


def import_status(
    data: bytes,
    *,
    index: NationalIndex | None = None,
    legacy_codes: Mapping[str, str] | None = None,
    signature: SignatureCheck | None = None,
) -> ImportedStatus:
    junk, xml = split_junk(data)
    receipt = Receipt(legacy_codes=legacy_codes or {})
    if junk:
        receipt.flag("junk_before_xml", f"{len(junk)} bytes before the XML declaration")
    head = header(parse(xml))
    mh = find(head, "MessageHeader")
    assert mh is not None
    for el in children(mh):
        if local(el) not in _MAPPED:
            for leaf in el.iter():
                if isinstance(leaf.tag, str) and not list(children(leaf)):
                    receipt.extra.append(EdxmlElement(path_of(leaf, head), leaf.text or ""))
    frm = find(mh, "From")
    code = receipt.agency(text(frm, "OrganId"), "MessageHeader/From/OrganId")
    contact = {attr: text(frm, tag) for tag, attr in CONTACT}
    sender = AgencyRef(code, text(frm, "OrganName") or "", **contact)
    rf = find(mh, "ResponseFor")
    ref = ResponseForRef(
        text(rf, "OrganId"), text(rf, "Code"), text(rf, "PromulgationDate"), text(rf, "DocumentId")
    )
    raw_code = (text(mh, "StatusCode") or "").strip()
    try:
        status_code = StatusCode(raw_code)
    except ValueError:
        raise SchemaError("invalid_record", f"edXML: unknown StatusCode {raw_code!r}") from None
    addressee = receipt.agency(ref.organ_id, "MessageHeader/ResponseFor/OrganId")
    # 13 comes from the document's sender; every other code goes back to it.
    doc_sender = code if status_code in SENT_BY_SENDER else addressee
    document_id = _answered(receipt, ref, doc_sender, index or {})
    when = receipt.instant(text(mh, "Timestamp"), "MessageHeader/Timestamp")
    if when is None:
        raise SchemaError("invalid_record", "edXML: Timestamp is required")
    staff_el = find(mh, "StaffInfo")
    staff = None
    if staff_el is not None:
        staff = Staff(
            name=text(staff_el, "Staff") or "",
            department=text(staff_el, "Department"),
            email=text(staff_el, "Email"),
            department_id=text(staff_el, "DepartmentId"),
            staff_id=text(staff_el, "StaffId"),
            mobile=text(staff_el, "Mobile"),
        )
    notice = StatusNotice(
        document_id=document_id,
        from_agency=sender,
        code=status_code,
        timestamp=when,
        description=text(mh, "Description"),
        staff=staff,
        response_for=ref,
        national=NationalOrigin(
            document_id=ref.document_id,
            flags=tuple(receipt.flags),
            as_received=tuple(receipt.as_received),
            extra=tuple(receipt.extra),
            original=data,
            signature=signature,
        ),
    )
    return ImportedStatus(notice, (addressee,))


def _answered(receipt: Receipt, ref: ResponseForRef, doc_sender: str, index: NationalIndex) -> str:
    """Our id of the answered document: through the gateway's index of national ids (the
    document routed under that national id by the answered document's sender), else the
    national id itself when well formed, else the id ResponseFor's fields make."""
    national = ref.document_id or ""
    for ours, sender in index.get(national, ()):
        if sender == doc_sender:
            if ours != national:
                receipt.flag("answered_id_resolved", f"{national!r} is our {ours!r}", "document_id")
            return ours
    if well_formed_id(national):
        return national
    if ref.organ_id and ref.code and ref.promulgation_date and "/" in ref.code:
        number, _, notation = ref.code.partition("/")
        made = f"{doc_sender},{ref.promulgation_date},{number}/{notation}"
        if well_formed_id(made):
            receipt.flag("answered_id_made", f"{national!r}: answered id made as {made!r}")
            return made
    raise SchemaError("invalid_record", f"edXML: the answered document {national!r} is unknown")


def export_status(notice: StatusNotice, *, addressee: str | None = None) -> bytes:
    national = notice.national or NationalOrigin()
    root = etree.Element(f"{{{NS}}}edXML", nsmap={"edXML": NS})
    head = sub(sub(root, "edXMLEnvelope"), "edXMLHeader")
    mh = sub(head, "MessageHeader")
    _write_org(
        sub(mh, "From"), notice.from_agency.code, notice.from_agency.name, notice.from_agency
    )
    ref = notice.response_for or _ref_from_id(notice.document_id, addressee)
    if notice.national is not None and national.document_id is not None:
        ref = ResponseForRef(ref.organ_id, ref.code, ref.promulgation_date, national.document_id)
    _write_response_for(sub(mh, "ResponseFor"), ref)
    if notice.staff is not None:
        s = notice.staff
        el = sub(mh, "StaffInfo")
        opt(el, "Department", s.department)
        opt(el, "DepartmentId", s.department_id)
        opt(el, "Staff", s.name)
        opt(el, "StaffId", s.staff_id)
        opt(el, "Email", s.email)
        opt(el, "Mobile", s.mobile if s.mobile is not None else s.telephone)
    sub(mh, "StatusCode", str(notice.code))
    opt(mh, "Description", notice.description)
    sub(mh, "Timestamp", notice.timestamp.astimezone(VIETNAM_TZ).strftime(TIMESTAMP_FORMAT))
    for item in (*national.as_received, *national.extra):
        ensure(head, item.path).text = item.value
    return serialise(root)


def _ref_from_id(document_id: str, addressee: str | None) -> ResponseForRef:
    m = DOCUMENT_ID.fullmatch(document_id)
    if m is None:
        return ResponseForRef(addressee, None, None, document_id)
    return ResponseForRef(
        addressee or m["sender"], f"{m['number']}/{m['notation']}", m["date"], document_id
    )
