"""edXML document (QCVN 102:2016) <-> OfficialDocument, lossless for every header element."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from lxml import etree

from schemas.common import (
    CONG_VAN,
    DOCUMENT_TYPES,
    LEGAL_NORMATIVE_TYPES,
    AgencyRef,
    Attachment,
    DocumentCategory,
    DocumentCode,
    DocumentType,
    make_document_id,
)
from schemas.document import (
    BusinessDocumentInfo,
    BusinessOperation,
    BusinessOperationType,
    BusinessReceiver,
    BusinessStaff,
    OfficialDocument,
    Place,
    Replacement,
    Sender,
    Signer,
)
from schemas.edxml.tree import (
    NS,
    children,
    ensure,
    find,
    find_all,
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
from schemas.edxml.values import DATE_FORMAT, Receipt, well_formed_id
from schemas.errors import SchemaError
from schemas.national import (
    EdxmlElement,
    NationalOrigin,
    NationalTraceHop,
    ResponseForRef,
    SignatureCheck,
)

OPERATIONS = {
    "0": BusinessOperationType.NEW,
    "1": BusinessOperationType.REVOKE,
    "2": BusinessOperationType.UPDATE,
    "3": BusinessOperationType.REPLACE,
}
OPERATION_CODES = {v: k for k, v in OPERATIONS.items()}
_ABBREVIATIONS = {name: abbr for abbr, name in DOCUMENT_TYPES.items()}
CONTACT = (
    ("OrganizationInCharge", "organization_in_charge"),
    ("OrganAdd", "address"),
    ("Email", "email"),
    ("Telephone", "telephone"),
    ("Fax", "fax"),
    ("Website", "website"),
)
# Header elements this module maps to a field of their own (anything else goes to `extra`).
_MAPPED_HEADER = {
    "From", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject",
    "Content", "SignerInfo", "DueDate", "OtherInfo", "SteeringType", "ToPlaces", "ResponseFor",
    "ReplyFors", "ResponseForTask", "ApplicationType",
}  # fmt: skip
_MAPPED_TRACE = {"TraceHeader", "Bussiness"}
# Flag: the target of an operation was not in Bussiness/DocumentId (export leaves it out).
TARGET_ELSEWHERE = "target_not_in_bussiness"
_PROMULGATION_DATE = "PromulgationInfo/PromulgationDate"
NEW_NAMES_TARGET = "new_names_target"


def import_document(
    data: bytes,
    *,
    legacy_codes: Mapping[str, str] | None = None,
    signature: SignatureCheck | None = None,
    keep_original: bool = True,
) -> OfficialDocument:
    """An edXML document as an OfficialDocument under the receipt profile: departures from
    lienthong's rules are flagged in ``national.flags`` and kept, never silently dropped."""
    junk, xml = split_junk(data)
    receipt = Receipt(legacy_codes=legacy_codes or {})
    if junk:
        receipt.flag("junk_before_xml", f"{len(junk)} bytes before the XML declaration")
    root = parse(xml)
    head = header(root)
    mh = find(head, "MessageHeader")
    assert mh is not None
    for el in children(mh):
        if local(el) not in _MAPPED_HEADER:
            _keep_extra(receipt, el, head)
    sender = _sender(receipt, find(mh, "From"))
    to = tuple(_agency(receipt, el, f"MessageHeader/{_seg(el, i)}") for i, el in _each(mh, "To"))
    code = find(mh, "Code")
    number, notation = text(code, "CodeNumber") or "", text(code, "CodeNotation") or ""
    prom = find(mh, "PromulgationInfo")
    day = receipt.day(
        text(prom, "PromulgationDate"), "MessageHeader/PromulgationInfo/PromulgationDate"
    )
    if day is None:
        raise SchemaError("invalid_record", "edXML: PromulgationInfo/PromulgationDate is required")
    national_id = text(mh, "DocumentId")
    document_id = _our_id(receipt, sender.code, day, number, notation, national_id)
    other = find(mh, "OtherInfo")
    for el in children(other) if other is not None else ():
        if local(el) not in _OTHER_INFO:
            _keep_extra(receipt, el, head)
    due = receipt.day(text(mh, "DueDate"), "MessageHeader/DueDate")
    if due is not None and due < day:
        receipt.flag("bad_due_date", f"due {due} before promulgation {day}", "due_date")
    refs = tuple(_response_for(receipt, el, head) for el in find_all(mh, "ResponseFor"))
    reply = find(mh, "ReplyFors")
    reply_fors = tuple(_response_for(receipt, el, head) for el in find_all(reply, "ReplyFor"))
    trace_list = find(head, "TraceHeaderList")
    for el in children(trace_list) if trace_list is not None else ():
        if local(el) not in _MAPPED_TRACE:
            _keep_extra(receipt, el, head)
    business = _business(receipt, find(trace_list, "Bussiness"), national_id, head)
    attachments = _attachments(receipt, root)
    doc = OfficialDocument(
        document_id=document_id,
        sender=sender,
        to=to,
        code=DocumentCode(number, notation),
        document_type=_document_type(receipt, find(mh, "DocumentType")),
        subject=text(mh, "Subject") or "",
        content=text(mh, "Content"),
        promulgation_place=text(prom, "Place") or "",
        promulgation_date=day,
        signer=_signer(find(mh, "SignerInfo")),
        to_places=tuple(Place(el.text or "") for el in find_all(find(mh, "ToPlaces"), "Place")),
        priority=_int(receipt, text(other, "Priority"), "MessageHeader/OtherInfo/Priority") or 0,
        steering_type=_int(receipt, text(mh, "SteeringType"), "MessageHeader/SteeringType") or 1,
        due_date=due,
        sphere_of_promulgation=text(other, "SphereOfPromulgation"),
        typist_notation=text(other, "TyperNotation"),
        number_of_copies=_int(
            receipt, text(other, "PromulgationAmount"), "MessageHeader/OtherInfo/PromulgationAmount"
        ),
        page_count=_int(receipt, text(other, "PageAmount"), "MessageHeader/OtherInfo/PageAmount"),
        appendixes=tuple(el.text or "" for el in find_all(find(other, "Appendixes"), "Appendix")),
        response_for=tuple(
            r.document_id
            for r in refs
            if r.document_id and (well_formed_id(r.document_id) or _shaped(receipt, r.document_id))
        ),
        business=business,
        attachments=attachments,
        direction=_bool(receipt, text(other, "Direction"), "MessageHeader/OtherInfo/Direction"),
        reference_codes=tuple(
            el.text or "" for el in find_all(find(other, "ReferenceCodes"), "ReferenceCode")
        ),
        response_for_refs=refs,
        reply_fors=reply_fors,
        task_codes=tuple(el.text or "" for el in find_all(find(mh, "ResponseForTask"), "TaskCode")),
        application_type=text(mh, "ApplicationType"),
    )
    origin = NationalOrigin(
        document_id=national_id,
        trace=tuple(
            NationalTraceHop(text(el, "OrganId"), text(el, "Timestamp"))
            for el in find_all(trace_list, "TraceHeader")
        ),
        flags=tuple(receipt.flags),
        as_received=tuple(receipt.as_received),
        extra=tuple(receipt.extra),
        original=data if keep_original else None,
        signature=signature,
    )
    return replace(doc, national=origin)


_OTHER_INFO = {
    "Priority", "SphereOfPromulgation", "TyperNotation", "PromulgationAmount", "PageAmount",
    "Direction", "Appendixes", "ReferenceCodes",
}  # fmt: skip


def _each(parent: etree._Element, name: str) -> list[tuple[int, etree._Element]]:
    return list(enumerate(find_all(parent, name)))


def _seg(el: etree._Element, i: int) -> str:
    name = local(el)
    return name if i == 0 else f"{name}[{i}]"


def _keep_extra(receipt: Receipt, el: etree._Element, head: etree._Element) -> None:
    for leaf in el.iter():
        if isinstance(leaf.tag, str) and not list(children(leaf)):
            receipt.extra.append(_element(path_of(leaf, head), leaf.text or ""))
    receipt.flag("unmapped_element", f"{path_of(el, head)} kept as received", path_of(el, head))


def _element(path: str, value: str) -> EdxmlElement:
    return EdxmlElement(path, value)


def _sender(receipt: Receipt, el: etree._Element | None) -> Sender:
    code = receipt.agency(text(el, "OrganId"), "MessageHeader/From/OrganId")
    contact = {attr: text(el, tag) for tag, attr in CONTACT}
    return Sender(code=code, name=text(el, "OrganName") or "", **contact)


def _agency(receipt: Receipt, el: etree._Element, path: str) -> AgencyRef:
    code = receipt.agency(text(el, "OrganId"), f"{path}/OrganId")
    contact = {attr: text(el, tag) for tag, attr in CONTACT}
    return AgencyRef(code=code, name=text(el, "OrganName") or "", **contact)


def _our_id(
    receipt: Receipt, sender: str, day: date, number: str, notation: str, national: str | None
) -> str:
    """lienthong's canonical id from the header; the national id is kept beside it."""
    ours = make_document_id(sender, day, number, notation)
    if not well_formed_id(ours):
        if national is not None and well_formed_id(national):
            receipt.flag("header_not_an_id", f"header gives {ours!r}; the national id is used")
            return national
        raise SchemaError("invalid_record", f"edXML: no document id can be made ({ours!r})")
    if national is None:
        receipt.flag("no_national_id", "DocumentId absent", "document_id")
    elif national != ours:
        receipt.reference(national, "MessageHeader/DocumentId")
        kind = "document_id_mismatch" if well_formed_id(national) else "national_id_not_canonical"
        receipt.flag(kind, f"national id {national!r}, header gives {ours!r}", "document_id")
    return ours


def _document_type(receipt: Receipt, el: etree._Element | None) -> DocumentType:
    type_code, detail, name = text(el, "Type"), text(el, "TypeDetail"), text(el, "TypeName")
    category = (
        DocumentCategory.LEGAL_NORMATIVE if type_code == "1" else DocumentCategory.ADMINISTRATIVE
    )
    name = name or ""
    if category is DocumentCategory.LEGAL_NORMATIVE and name in LEGAL_NORMATIVE_TYPES:
        abbr: str | None = LEGAL_NORMATIVE_TYPES[name]
    elif name == CONG_VAN:
        abbr = None
    elif name in _ABBREVIATIONS:
        abbr = _ABBREVIATIONS[name]
    elif name in LEGAL_NORMATIVE_TYPES:
        abbr = LEGAL_NORMATIVE_TYPES[name]
        category = DocumentCategory.LEGAL_NORMATIVE
    else:
        abbr = None
        receipt.flag("unknown_document_type", f"{name!r} is in no type list", "document_type")
    return DocumentType(abbr, name, category, type_code, detail)


def _signer(el: etree._Element | None) -> Signer:
    return Signer(
        position=text(el, "Position") or "",
        full_name=text(el, "FullName") or "",
        competence=text(el, "Competence"),
    )


def _int(receipt: Receipt, raw: str | None, path: str) -> int | None:
    if raw is None or raw.strip() == "":
        if raw is not None:
            receipt.extra.append(_element(path, raw))
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        receipt.flag("bad_number", f"{raw!r} is not a number", path)
        receipt.extra.append(_element(path, raw))
        return None
    receipt.keep(path, raw, str(value))
    return value


def _bool(receipt: Receipt, raw: str | None, path: str) -> bool | None:
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        receipt.extra.append(_element(path, raw))
        return None
    result = value in ("true", "1")
    receipt.keep(path, raw, "true" if result else "false")
    return result


def _shaped(receipt: Receipt, value: str | None) -> bool:
    """A referenced id with the right shape but an impossible date: taken, and flagged."""
    before = len(receipt.flags)
    receipt.reference(value, "response_for")
    return len(receipt.flags) > before


def _response_for(receipt: Receipt, el: etree._Element, head: etree._Element) -> ResponseForRef:
    return ResponseForRef(
        organ_id=text(el, "OrganId"),
        code=text(el, "Code"),
        promulgation_date=text(el, "PromulgationDate"),
        document_id=text(el, "DocumentId"),
    )


def _business(
    receipt: Receipt, el: etree._Element | None, national_id: str | None, head: etree._Element
) -> BusinessOperation:
    if el is None:
        return BusinessOperation()
    known = {"DocumentId", "BussinessDocType", "BussinessDocReason", "Paper", "StaffInfo",
             "BussinessDocumentInfo", "ReplacementInfoList"}  # fmt: skip
    for child in children(el):
        if local(child) not in known:
            _keep_extra(receipt, child, head)
    raw_op = text(el, "BussinessDocType") or "0"
    op = OPERATIONS.get(raw_op.strip())
    if op is None:
        receipt.flag("bad_business_operation", f"BussinessDocType {raw_op!r}", "business")
        receipt.extra.append(_element("TraceHeaderList/Bussiness/BussinessDocType", raw_op))
        op = BusinessOperationType.NEW
    named = text(el, "DocumentId")
    replacements = tuple(
        Replacement(
            text(info, "DocumentId") or "",
            tuple(o.text or "" for o in find_all(find(info, "OrganIdList"), "OrganId")),
        )
        for info in find_all(find(el, "ReplacementInfoList"), "ReplacementInfo")
    )
    for i, rep in enumerate(replacements):
        receipt.reference(rep.document_id, f"business.replacements[{i}].document_id")
    target: str | None = None
    if op is BusinessOperationType.NEW:
        if named:
            receipt.flag(NEW_NAMES_TARGET, f"a new document names {named!r}; kept, not a target")
            receipt.extra.append(_element("TraceHeaderList/Bussiness/DocumentId", named))
    elif named:
        target = named
    else:
        target = replacements[0].document_id if replacements else national_id
        where = "ReplacementInfoList" if replacements else "the message's DocumentId"
        receipt.flag(TARGET_ELSEWHERE, f"{op} target {target!r} taken from {where}")
    if target is not None:
        receipt.reference(target, "business.target_document_id")
    staff = find(el, "StaffInfo")
    info = find(el, "BussinessDocumentInfo")
    return BusinessOperation(
        operation=op,
        target_document_id=target,
        reason=text(el, "BussinessDocReason"),
        paper=text(el, "Paper"),
        staff=None
        if staff is None
        else BusinessStaff(
            department=text(staff, "Department"),
            department_id=text(staff, "DepartmentId"),
            staff=text(staff, "Staff"),
            staff_id=text(staff, "StaffId"),
            email=text(staff, "Email"),
            mobile=text(staff, "Mobile"),
        ),
        document_info=None
        if info is None
        else BusinessDocumentInfo(
            document_info=text(info, "DocumentInfo"),
            document_receiver=text(info, "DocumentReceiver"),
            receivers=tuple(
                BusinessReceiver(text(r, "OrganId"), text(r, "ReceiverType"))
                for r in find_all(find(info, "ReceiverList"), "Receiver")
            ),
        ),
        replacements=replacements,
    )


def _attachments(receipt: Receipt, root: etree._Element) -> tuple[Attachment, ...]:
    env = find(root, "edXMLEnvelope")
    manifest = find(find(env, "edXMLBody"), "edXMLManifest")
    refs = {text(r, "ContentId"): r for r in find_all(manifest, "Reference")}
    out = []
    for i, el in enumerate(find_all(find(root, "AttachmentEncoded"), "Attachment")):
        cid = text(el, "ContentId")
        raw = (text(el, "ContentTransferEncoded") or "").strip()
        try:
            data = base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            receipt.flag(
                "attachment_not_base64", f"attachment {i} kept as its text", f"attachments[{i}]"
            )
            data = raw.encode("utf-8")
        ref = refs.get(cid)
        media = text(el, "ContentType") or text(ref, "ContentType") or "application/octet-stream"
        name = text(el, "AttachmentName") or text(ref, "AttachmentName") or f"attachment-{i}"
        att = Attachment.inline(name, media, data)
        out.append(replace(att, description=text(el, "Description"), content_id=cid))
    return tuple(out)


# ---------------------------------------------------------------------------------- export


def export_document(doc: OfficialDocument) -> bytes:
    """The edXML for a document; values normalised on receipt are written back as received,
    unmapped elements where they were. Unsigned: signing.edxml signs it."""
    national = doc.national or NationalOrigin()
    root = etree.Element(f"{{{NS}}}edXML", nsmap={"edXML": NS})
    env = sub(root, "edXMLEnvelope")
    head = sub(env, "edXMLHeader")
    mh = sub(head, "MessageHeader")
    _write_org(sub(mh, "From"), doc.sender.code, doc.sender.name, doc.sender)
    for ref in doc.to:
        _write_org(sub(mh, "To"), ref.code, ref.name, ref)
    sub(mh, "DocumentId", national.document_id if doc.national else doc.document_id)
    code = sub(mh, "Code")
    sub(code, "CodeNumber", doc.code.number)
    sub(code, "CodeNotation", doc.code.notation)
    prom = sub(mh, "PromulgationInfo")
    sub(prom, "Place", doc.promulgation_place)
    sub(prom, "PromulgationDate", doc.promulgation_date.strftime(DATE_FORMAT))
    dt = doc.document_type
    kind = sub(mh, "DocumentType")
    legal = dt.category is DocumentCategory.LEGAL_NORMATIVE
    sub(kind, "Type", dt.type_code if dt.type_code is not None else ("1" if legal else "2"))
    opt(kind, "TypeDetail", dt.type_detail)
    sub(kind, "TypeName", dt.name)
    sub(mh, "Subject", doc.subject)
    opt(mh, "Content", doc.content)
    signer = sub(mh, "SignerInfo")
    opt(signer, "Competence", doc.signer.competence)
    sub(signer, "Position", doc.signer.position)
    sub(signer, "FullName", doc.signer.full_name)
    if doc.due_date is not None:
        sub(mh, "DueDate", doc.due_date.strftime(DATE_FORMAT))
    other = sub(mh, "OtherInfo")
    sub(other, "Priority", str(int(doc.priority)))
    opt(other, "SphereOfPromulgation", doc.sphere_of_promulgation)
    opt(other, "TyperNotation", doc.typist_notation)
    opt(other, "PromulgationAmount", _str(doc.number_of_copies))
    opt(other, "PageAmount", _str(doc.page_count))
    if doc.direction is not None:
        sub(other, "Direction", "true" if doc.direction else "false")
    if doc.appendixes:
        apps = sub(other, "Appendixes")
        for a in doc.appendixes:
            sub(apps, "Appendix", a)
    if doc.reference_codes:
        codes = sub(other, "ReferenceCodes")
        for c in doc.reference_codes:
            sub(codes, "ReferenceCode", c)
    sub(mh, "SteeringType", str(int(doc.steering_type)))
    if doc.to_places:
        places = sub(mh, "ToPlaces")
        for p in doc.to_places:
            sub(places, "Place", p.name)
    refs = doc.response_for_refs or tuple(ResponseForRef(document_id=i) for i in doc.response_for)
    for r in refs:
        _write_response_for(sub(mh, "ResponseFor"), r)
    if doc.reply_fors:
        reply = sub(mh, "ReplyFors")
        for r in doc.reply_fors:
            _write_response_for(sub(reply, "ReplyFor"), r)
    if doc.task_codes:
        task = sub(mh, "ResponseForTask")
        for c in doc.task_codes:
            sub(task, "TaskCode", c)
    opt(mh, "ApplicationType", doc.application_type)
    trace = sub(head, "TraceHeaderList")
    for hop in national.trace:
        el = sub(trace, "TraceHeader")
        opt(el, "OrganId", hop.organ_id)
        opt(el, "Timestamp", hop.timestamp)
    _write_business(sub(trace, "Bussiness"), doc.business, national)
    _restore(head, national)
    _write_attachments(root, env, doc.attachments)
    return serialise(root)


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _write_org(el: etree._Element, code: str, name: str, contact: object) -> None:
    sub(el, "OrganId", code)
    opt(el, "OrganizationInCharge", getattr(contact, "organization_in_charge", None))
    sub(el, "OrganName", name)
    for tag, attr in CONTACT[1:]:
        opt(el, tag, getattr(contact, attr, None))


def _write_response_for(el: etree._Element, ref: ResponseForRef) -> None:
    opt(el, "OrganId", ref.organ_id)
    opt(el, "Code", ref.code)
    opt(el, "PromulgationDate", ref.promulgation_date)
    opt(el, "DocumentId", ref.document_id)


def _write_business(el: etree._Element, op: BusinessOperation, national: NationalOrigin) -> None:
    if op.target_document_id is not None and not national.flagged(TARGET_ELSEWHERE):
        sub(el, "DocumentId", op.target_document_id)
    sub(el, "BussinessDocType", OPERATION_CODES[op.operation])
    opt(el, "BussinessDocReason", op.reason)
    opt(el, "Paper", op.paper)
    if op.document_info is not None:
        info = sub(el, "BussinessDocumentInfo")
        opt(info, "DocumentInfo", op.document_info.document_info)
        opt(info, "DocumentReceiver", op.document_info.document_receiver)
        if op.document_info.receivers:
            lst = sub(info, "ReceiverList")
            for r in op.document_info.receivers:
                rec = sub(lst, "Receiver")
                opt(rec, "OrganId", r.organ_id)
                opt(rec, "ReceiverType", r.receiver_type)
    if op.replacements:
        lst = sub(el, "ReplacementInfoList")
        for rep in op.replacements:
            info = sub(lst, "ReplacementInfo")
            sub(info, "DocumentId", rep.document_id)
            ids = sub(info, "OrganIdList")
            for o in rep.organ_ids:
                sub(ids, "OrganId", o)
    if op.staff is not None:
        staff = sub(el, "StaffInfo")
        opt(staff, "Department", op.staff.department)
        opt(staff, "DepartmentId", op.staff.department_id)
        opt(staff, "Staff", op.staff.staff)
        opt(staff, "StaffId", op.staff.staff_id)
        opt(staff, "Email", op.staff.email)
        opt(staff, "Mobile", op.staff.mobile)


def _restore(head: etree._Element, national: NationalOrigin) -> None:
    """Values as received over their normalised form; unmapped elements where they were."""
    for item in national.as_received:
        ensure(head, item.path).text = item.value
    for item in national.extra:
        ensure(head, item.path).text = item.value


def _write_attachments(
    root: etree._Element, env: etree._Element, attachments: tuple[Attachment, ...]
) -> None:
    manifest = sub(sub(env, "edXMLBody"), "edXMLManifest")
    manifest.set("version", "1.0")
    encoded = sub(root, "AttachmentEncoded")
    for i, att in enumerate(attachments):
        if att.data is None:
            raise SchemaError("invalid_record", f"attachment {att.name}: only inline data exports")
        cid = att.content_id or f"cid:{hashlib.sha256(att.data).hexdigest()[:16]}-{i}"
        ref = sub(manifest, "Reference")
        sub(ref, "ContentId", cid)
        sub(ref, "ContentType", att.media_type)
        opt(ref, "Description", att.description)
        sub(ref, "AttachmentName", att.name)
        el = sub(encoded, "Attachment")
        sub(el, "ContentId", cid)
        sub(el, "AttachmentName", att.name)
        opt(el, "Description", att.description)
        sub(el, "ContentType", att.media_type)
        sub(el, "ContentTransferEncoded", base64.b64encode(att.data).decode("ascii"))
