"""StatusNotice and the legal order of status codes (01 arrived ... 16 revocation refused)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.common import AgencyRef, check_answerable_id, check_aware, check_text, require
from schemas.errors import ValidationError
from schemas.national import NationalOrigin, ResponseForRef

MAX_DESCRIPTION = 2000  # not fixed by Decree 30; generous, bounded so rows stay small


class StatusCode(enum.StrEnum):
    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    IN_PROCESS = "05"
    COMPLETED = "06"
    REVOCATION_REQUESTED = "13"
    REVOCATION_AGREED = "15"
    REVOCATION_REFUSED = "16"


S = StatusCode

# The receiving agency's progress, per (document, recipient). Key None = nothing yet.
# Forward skips among 04/05/06 are allowed: a small agency may complete without assigning.
PROGRESS_NEXT: Mapping[StatusCode | None, frozenset[StatusCode]] = {
    None: frozenset({S.ARRIVED}),
    S.ARRIVED: frozenset({S.REJECTED, S.ACCEPTED}),
    S.REJECTED: frozenset(),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.IN_PROCESS, S.COMPLETED}),
    S.ASSIGNED: frozenset({S.IN_PROCESS, S.COMPLETED}),
    S.IN_PROCESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
}
PROGRESS_CODES = frozenset(k for k in PROGRESS_NEXT if k is not None)
# 13 is sent by the document's sender; 15/16 answer the pending 13; everything else is
# sent by the recipient.
SENT_BY_SENDER = frozenset({S.REVOCATION_REQUESTED})
REVOCATION_ANSWERS = frozenset({S.REVOCATION_AGREED, S.REVOCATION_REFUSED})
DESCRIPTION_REQUIRED = frozenset({S.REJECTED})


class IllegalTransition(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__("illegal_transition", message, "code")


def check_transition(
    previous_codes: Iterable[StatusCode | str],
    new_code: StatusCode | str,
    *,
    by_sender: bool | None = None,
) -> None:
    """Raise IllegalTransition unless ``new_code`` may follow ``previous_codes``.

    ``previous_codes`` is the history for one (document, recipient) pair, oldest first.
    Rules: 01 first; then 02 or 03; after 03 forward to 04, 05, 06. 13 (by the sender)
    may come at any time unless one is pending or the document was revoked; 15/16 answer a
    pending 13. After 15 the document is revoked and nothing may follow. When
    ``by_sender`` is given, the code must belong to that side.
    """
    progress: StatusCode | None = None
    pending = revoked = False
    history = [_code(c) for c in previous_codes]
    for i, code in enumerate([*history, _code(new_code)]):
        where = "new code" if i == len(history) else f"history[{i}]"
        if revoked:
            raise IllegalTransition(f"{where} {code}: the document was revoked (15)")
        if code is S.REVOCATION_REQUESTED:
            if pending:
                raise IllegalTransition(f"{where} 13: a revocation request is already pending")
            pending = True
        elif code in REVOCATION_ANSWERS:
            if not pending:
                raise IllegalTransition(f"{where} {code}: no pending revocation request (13)")
            pending, revoked = False, code is S.REVOCATION_AGREED
        elif code not in PROGRESS_NEXT[progress]:
            after = f"after {progress}" if progress else "as the first status"
            allowed = ", ".join(sorted(PROGRESS_NEXT[progress])) or "nothing"
            raise IllegalTransition(f"{where} {code} not allowed {after} (allowed: {allowed})")
        else:
            progress = code
    new = _code(new_code)
    if by_sender is not None and by_sender != (new in SENT_BY_SENDER):
        side = "the sender" if by_sender else "the recipient"
        raise IllegalTransition(f"{new} cannot be sent by {side}")


def _code(value: StatusCode | str) -> StatusCode:
    try:
        return StatusCode(value)
    except ValueError:
        raise ValidationError("unknown_status_code", repr(value), "code") from None


@dataclass(frozen=True, slots=True)
class Staff:
    name: str
    department: str | None = None
    email: str | None = None
    telephone: str | None = None
    # Added in StatusNotice v2 (edXML StaffInfo).
    department_id: str | None = None
    staff_id: str | None = None
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class StatusNotice:
    document_id: str
    from_agency: AgencyRef
    code: StatusCode
    timestamp: datetime
    description: str | None = None
    staff: Staff | None = None
    # Added in StatusNotice v2: edXML ResponseFor as received, and the national origin.
    response_for: ResponseForRef | None = None
    national: NationalOrigin | None = None


def validate_status(notice: StatusNotice) -> None:
    check_answerable_id(notice.document_id, "document_id")
    notice.from_agency.validate("from_agency")
    _code(notice.code)
    if notice.code in DESCRIPTION_REQUIRED:
        require(
            bool(notice.description and notice.description.strip()),
            "missing_reason",
            f"status {notice.code} needs a description giving the reason",
            "description",
        )
    check_text(notice.description, MAX_DESCRIPTION, "description", required=False)
    check_aware(notice.timestamp, "timestamp")
    if notice.staff is not None:
        check_text(notice.staff.name, 200, "staff.name")


def status_to_record(notice: StatusNotice) -> dict[str, Any]:
    staff = notice.staff
    return {
        "document_id": notice.document_id,
        "from_agency": notice.from_agency.to_record(),
        "code": str(notice.code),
        "description": notice.description,
        "staff": None
        if staff is None
        else {
            "department": staff.department,
            "name": staff.name,
            "email": staff.email,
            "telephone": staff.telephone,
            "department_id": staff.department_id,
            "staff_id": staff.staff_id,
            "mobile": staff.mobile,
        },
        "timestamp": notice.timestamp,
        "response_for": None if notice.response_for is None else notice.response_for.to_record(),
        "national": None if notice.national is None else notice.national.to_record(),
    }


def status_from_record(rec: dict[str, Any]) -> StatusNotice:
    staff = rec["staff"]
    return StatusNotice(
        document_id=rec["document_id"],
        from_agency=AgencyRef.from_record(rec["from_agency"]),
        code=_code(rec["code"]),
        timestamp=rec["timestamp"],
        description=rec["description"],
        staff=None
        if staff is None
        else Staff(
            name=staff["name"],
            department=staff["department"],
            email=staff["email"],
            telephone=staff["telephone"],
            department_id=staff.get("department_id"),
            staff_id=staff.get("staff_id"),
            mobile=staff.get("mobile"),
        ),
        response_for=None
        if rec.get("response_for") is None
        else ResponseForRef.from_record(rec["response_for"]),
        national=NationalOrigin.from_record(rec.get("national")),
    )
