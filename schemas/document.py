"""OfficialDocument: the edXML-equivalent document header and attachments, with its rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from schemas.agency import MAX_AGENCY_NAME
from schemas.common import (
    DOCUMENT_ID,
    MAX_PAGE_COUNT,
    MAX_SUBJECT,
    AgencyRef,
    Attachment,
    DocumentCode,
    DocumentType,
    SecrecyMarking,
    check_agency_code,
    check_aware,
    check_document_id,
    check_not_secret,
    check_text,
    make_document_id,
    require,
)
from schemas.errors import ValidationError
from schemas.national import NationalOrigin, ResponseForRef


class Priority(enum.IntEnum):
    NORMAL = 0
    KHAN = 1  # Khẩn
    THUONG_KHAN = 2  # Thượng khẩn
    HOA_TOC = 3  # Hỏa tốc
    HOA_TOC_HEN_GIO = 4  # Hỏa tốc with a set time


class SteeringType(enum.IntEnum):
    NOT_STEERING = 1
    STEERING = 2
    STEERING_REPORT = 3


class BusinessOperationType(enum.StrEnum):
    NEW = "NEW"
    REVOKE = "REVOKE"
    UPDATE = "UPDATE"
    REPLACE = "REPLACE"


@dataclass(frozen=True, slots=True)
class Sender:
    code: str
    name: str
    organization_in_charge: str | None = None
    address: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """A 'Nơi nhận' line; internal places such as 'Lưu: VT' have no agency code."""

    name: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Signer:
    position: str
    full_name: str
    competence: str | None = None  # e.g. "TM. ỦY BAN NHÂN DÂN", "TL. CHỦ TỊCH"


@dataclass(frozen=True, slots=True)
class BusinessStaff:
    """edXML Bussiness/StaffInfo: the clerk who sent the document."""

    department: str | None = None
    department_id: str | None = None
    staff: str | None = None
    staff_id: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class BusinessReceiver:
    organ_id: str | None = None
    receiver_type: str | None = None


@dataclass(frozen=True, slots=True)
class BusinessDocumentInfo:
    """edXML BussinessDocumentInfo: what an update changes, and for which receivers."""

    document_info: str | None = None
    document_receiver: str | None = None
    receivers: tuple[BusinessReceiver, ...] = ()


@dataclass(frozen=True, slots=True)
class Replacement:
    """edXML ReplacementInfo: a replaced document and the agencies it had gone to."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BusinessOperation:
    operation: BusinessOperationType = BusinessOperationType.NEW
    target_document_id: str | None = None
    reason: str | None = None
    # Added in OfficialDocument v3 (edXML Bussiness).
    paper: str | None = None
    staff: BusinessStaff | None = None
    document_info: BusinessDocumentInfo | None = None
    replacements: tuple[Replacement, ...] = ()


@dataclass(frozen=True, slots=True)
class OfficialDocument:
    """One document. Construction does not validate (legacy data must be representable);
    call ``validate_document`` before sending."""

    document_id: str
    sender: Sender
    to: tuple[AgencyRef, ...]
    code: DocumentCode
    document_type: DocumentType
    subject: str
    promulgation_place: str
    promulgation_date: date
    signer: Signer
    content: str | None = None
    to_places: tuple[Place, ...] = ()
    priority: int = Priority.NORMAL
    priority_deadline: datetime | None = None
    steering_type: int = SteeringType.NOT_STEERING
    due_date: date | None = None
    sphere_of_promulgation: str | None = None
    typist_notation: str | None = None
    number_of_copies: int | None = None
    page_count: int | None = None
    appendixes: tuple[str, ...] = ()
    response_for: tuple[str, ...] = ()
    business: BusinessOperation = field(default_factory=BusinessOperation)
    secrecy: SecrecyMarking = SecrecyMarking.NONE
    attachments: tuple[Attachment, ...] = ()
    # Added in OfficialDocument v2; v1 data reads as the defaults.
    keywords: tuple[str, ...] = ()
    procedure_code: str | None = None
    # Added in OfficialDocument v3: the rest of the national model, and the national origin.
    direction: bool | None = None
    reference_codes: tuple[str, ...] = ()
    response_for_refs: tuple[ResponseForRef, ...] = ()
    reply_fors: tuple[ResponseForRef, ...] = ()
    task_codes: tuple[str, ...] = ()
    application_type: str | None = None
    national: NationalOrigin | None = None

    @property
    def recipient_codes(self) -> tuple[str, ...]:
        """Agency codes of To and of coded copies, in order, without duplicates."""
        codes = [a.code for a in self.to] + [p.code for p in self.to_places if p.code]
        return tuple(dict.fromkeys(codes))


def validate_document(doc: OfficialDocument, *, allow_secret: bool = False) -> None:
    """Raise ValidationError on the first broken rule (QCVN 102:2016, Decree 30)."""
    check_document_id(doc.document_id, "document_id")
    check_agency_code(doc.sender.code, "sender.code")
    check_text(doc.sender.name, MAX_AGENCY_NAME, "sender.name")
    expected = make_document_id(
        doc.sender.code, doc.promulgation_date, doc.code.number, doc.code.notation
    )
    require(
        doc.document_id == expected,
        "document_id_mismatch",
        f"id {doc.document_id!r} does not match its header fields ({expected!r})",
        "document_id",
    )
    require(len(doc.to) > 0, "no_recipients", "To must name at least one agency", "to")
    for i, ref in enumerate(doc.to):
        ref.validate(f"to[{i}]")
    for i, place in enumerate(doc.to_places):
        check_text(place.name, MAX_AGENCY_NAME, f"to_places[{i}].name")
        if place.code is not None:
            check_agency_code(place.code, f"to_places[{i}].code")
    doc.code.validate("code")
    if not _waives(doc, "unknown_document_type"):
        doc.document_type.validate("document_type")
    check_text(doc.subject, MAX_SUBJECT, "subject")
    check_text(doc.promulgation_place, 200, "promulgation_place")
    check_text(doc.signer.full_name, 200, "signer.full_name")
    check_text(doc.signer.position, 200, "signer.position")
    require(doc.priority in set(Priority), "bad_priority", f"{doc.priority} not 0..4", "priority")
    if doc.priority == Priority.HOA_TOC_HEN_GIO:
        require(
            doc.priority_deadline is not None,
            "missing_field",
            "priority 4 (Hỏa tốc hẹn giờ) needs its set time",
            "priority_deadline",
        )
    if doc.priority_deadline is not None:
        check_aware(doc.priority_deadline, "priority_deadline")
    require(
        doc.steering_type in set(SteeringType),
        "bad_steering_type",
        f"{doc.steering_type} not 1..3",
        "steering_type",
    )
    if doc.page_count is not None:
        require(1 <= doc.page_count <= MAX_PAGE_COUNT, "bad_page_count", "1..999", "page_count")
    if doc.number_of_copies is not None:
        require(doc.number_of_copies >= 1, "bad_copies", ">= 1", "number_of_copies")
    if doc.due_date is not None and not _waives(doc, "bad_due_date"):
        require(
            doc.due_date >= doc.promulgation_date,
            "bad_due_date",
            "due date precedes promulgation",
            "due_date",
        )
    for i, answered in enumerate(doc.response_for):
        _check_reference(doc, answered, f"response_for[{i}]")
    _validate_business(doc, doc.business)
    for i, att in enumerate(doc.attachments):
        att.validate(f"attachments[{i}]")
    if not allow_secret:
        check_not_secret(doc.secrecy)


def _waives(doc: OfficialDocument, reason: str) -> bool:
    """The receipt profile: an imported document may carry a flagged, recorded departure."""
    return doc.national is not None and doc.national.waives(reason)


def _check_reference(doc: OfficialDocument, value: str | None, field: str) -> None:
    """A referenced document id; an impossible date inside it is taken when flagged on
    receipt (the national axis names documents by such ids), a wrong shape never."""
    try:
        check_document_id(value, field)
    except ValidationError:
        if not (_waives(doc, "impossible_date_in_id") and DOCUMENT_ID.fullmatch(value or "")):
            raise


def _validate_business(doc: OfficialDocument, op: BusinessOperation) -> None:
    if op.operation is BusinessOperationType.NEW:
        require(
            op.target_document_id is None,
            "bad_business_operation",
            "a new document has no target",
            "business.target_document_id",
        )
        return
    if op.target_document_id is None:
        raise ValidationError(
            "bad_business_operation",
            f"{op.operation.value} needs the target document id",
            "business.target_document_id",
        )
    _check_reference(doc, op.target_document_id, "business.target_document_id")
    check_text(op.reason, MAX_SUBJECT, "business.reason")
    for i, rep in enumerate(op.replacements):
        _check_reference(doc, rep.document_id, f"business.replacements[{i}].document_id")


def document_to_record(doc: OfficialDocument) -> dict[str, Any]:
    """The Avro record (newest OfficialDocument schema) for a document."""
    s = doc.sender
    return {
        "document_id": doc.document_id,
        "sender": {
            "code": s.code,
            "name": s.name,
            "organization_in_charge": s.organization_in_charge,
            "address": s.address,
            "email": s.email,
            "telephone": s.telephone,
            "fax": s.fax,
            "website": s.website,
        },
        "to": [a.to_record() for a in doc.to],
        "to_places": [{"code": p.code, "name": p.name} for p in doc.to_places],
        "code": {"number": doc.code.number, "notation": doc.code.notation},
        "document_type": doc.document_type.to_record(),
        "subject": doc.subject,
        "content": doc.content,
        "promulgation": {"place": doc.promulgation_place, "date": doc.promulgation_date},
        "signer": {
            "competence": doc.signer.competence,
            "position": doc.signer.position,
            "full_name": doc.signer.full_name,
        },
        "priority": int(doc.priority),
        "priority_deadline": doc.priority_deadline,
        "steering_type": int(doc.steering_type),
        "due_date": doc.due_date,
        "sphere_of_promulgation": doc.sphere_of_promulgation,
        "typist_notation": doc.typist_notation,
        "number_of_copies": doc.number_of_copies,
        "page_count": doc.page_count,
        "appendixes": list(doc.appendixes),
        "response_for": list(doc.response_for),
        "business": _business_to_record(doc.business),
        "secrecy": doc.secrecy.value,
        "attachments": [a.to_record() for a in doc.attachments],
        "keywords": list(doc.keywords),
        "procedure_code": doc.procedure_code,
        "direction": doc.direction,
        "reference_codes": list(doc.reference_codes),
        "response_for_refs": [r.to_record() for r in doc.response_for_refs],
        "reply_fors": [r.to_record() for r in doc.reply_fors],
        "task_codes": list(doc.task_codes),
        "application_type": doc.application_type,
        "national": None if doc.national is None else doc.national.to_record(),
    }


def _business_to_record(op: BusinessOperation) -> dict[str, Any]:
    staff, info = op.staff, op.document_info
    return {
        "operation": op.operation.value,
        "target_document_id": op.target_document_id,
        "reason": op.reason,
        "paper": op.paper,
        "staff": None
        if staff is None
        else {
            "department": staff.department,
            "department_id": staff.department_id,
            "staff": staff.staff,
            "staff_id": staff.staff_id,
            "email": staff.email,
            "mobile": staff.mobile,
        },
        "document_info": None
        if info is None
        else {
            "document_info": info.document_info,
            "document_receiver": info.document_receiver,
            "receivers": [
                {"organ_id": r.organ_id, "receiver_type": r.receiver_type} for r in info.receivers
            ],
        },
        "replacements": [
            {"document_id": r.document_id, "organ_ids": list(r.organ_ids)} for r in op.replacements
        ],
    }


def _business_from_record(bus: dict[str, Any]) -> BusinessOperation:
    staff, info = bus.get("staff"), bus.get("document_info")
    return BusinessOperation(
        operation=BusinessOperationType(bus["operation"]),
        target_document_id=bus["target_document_id"],
        reason=bus["reason"],
        paper=bus.get("paper"),
        staff=None if staff is None else BusinessStaff(**staff),
        document_info=None
        if info is None
        else BusinessDocumentInfo(
            info["document_info"],
            info["document_receiver"],
            tuple(BusinessReceiver(r["organ_id"], r["receiver_type"]) for r in info["receivers"]),
        ),
        replacements=tuple(
            Replacement(r["document_id"], tuple(r["organ_ids"]))
            for r in bus.get("replacements", ())
        ),
    )


def document_from_record(rec: dict[str, Any]) -> OfficialDocument:
    """Inverse of document_to_record; older records get the newer fields' defaults."""
    s = rec["sender"]
    sig = rec["signer"]
    bus = rec["business"]
    return OfficialDocument(
        document_id=rec["document_id"],
        sender=Sender(
            code=s["code"],
            name=s["name"],
            organization_in_charge=s.get("organization_in_charge"),
            address=s.get("address"),
            email=s.get("email"),
            telephone=s.get("telephone"),
            fax=s.get("fax"),
            website=s.get("website"),
        ),
        to=tuple(AgencyRef.from_record(a) for a in rec["to"]),
        to_places=tuple(Place(name=p["name"], code=p["code"]) for p in rec["to_places"]),
        code=DocumentCode(rec["code"]["number"], rec["code"]["notation"]),
        document_type=DocumentType.from_record(rec["document_type"]),
        subject=rec["subject"],
        content=rec["content"],
        promulgation_place=rec["promulgation"]["place"],
        promulgation_date=rec["promulgation"]["date"],
        signer=Signer(
            position=sig["position"], full_name=sig["full_name"], competence=sig["competence"]
        ),
        priority=rec["priority"],
        priority_deadline=rec["priority_deadline"],
        steering_type=rec["steering_type"],
        due_date=rec["due_date"],
        sphere_of_promulgation=rec["sphere_of_promulgation"],
        typist_notation=rec["typist_notation"],
        number_of_copies=rec["number_of_copies"],
        page_count=rec["page_count"],
        appendixes=tuple(rec["appendixes"]),
        response_for=tuple(rec["response_for"]),
        business=_business_from_record(bus),
        secrecy=SecrecyMarking(rec["secrecy"]),
        attachments=tuple(Attachment.from_record(a) for a in rec["attachments"]),
        keywords=tuple(rec.get("keywords", ())),
        procedure_code=rec.get("procedure_code"),
        direction=rec.get("direction"),
        reference_codes=tuple(rec.get("reference_codes", ())),
        response_for_refs=tuple(
            ResponseForRef.from_record(r) for r in rec.get("response_for_refs", ())
        ),
        reply_fors=tuple(ResponseForRef.from_record(r) for r in rec.get("reply_fors", ())),
        task_codes=tuple(rec.get("task_codes", ())),
        application_type=rec.get("application_type"),
        national=NationalOrigin.from_record(rec.get("national")),
    )
