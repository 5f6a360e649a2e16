"""Routing decisions on pure data: one submission in, a delivery plan or a reasoned refusal out."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from consumers.router.state import DocumentState, PartitionView, StateChange
from schemas.addressing import Payload, addressing
from schemas.agency import AgencyDirectory
from schemas.codec import PAYLOADS, decode_envelope, decode_payload
from schemas.common import SecrecyMarking
from schemas.document import BusinessOperationType, OfficialDocument
from schemas.envelope import Envelope, PayloadType, TraceHop
from schemas.errors import SchemaError, ValidationError
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from schemas.status import StatusCode, StatusNotice, check_transition
from signing.envelope import verify_envelope
from signing.errors import VerificationError
from signing.trust import TrustStore


class RejectReason(enum.StrEnum):
    """Why the router refused a submission. Signature failures use signing.ReasonCode's values."""

    TOO_LARGE = "TOO_LARGE"
    MALFORMED = "MALFORMED"
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    SECRET_DOCUMENT = "SECRET_DOCUMENT"
    NOT_FROM_AN_AGENCY = "NOT_FROM_AN_AGENCY"
    STALE = "STALE"
    FROM_THE_FUTURE = "FROM_THE_FUTURE"
    REPLAY = "REPLAY"
    MISADDRESSED = "MISADDRESSED"
    NO_RECIPIENTS = "NO_RECIPIENTS"
    UNKNOWN_RECIPIENT = "UNKNOWN_RECIPIENT"
    CLOSED_RECIPIENT = "CLOSED_RECIPIENT"
    NO_INBOX = "NO_INBOX"
    DUPLICATE_DOCUMENT = "DUPLICATE_DOCUMENT"
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    NOT_A_RECIPIENT = "NOT_A_RECIPIENT"
    NOT_THE_SENDER = "NOT_THE_SENDER"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    platform_agency: str
    max_bytes: int = 26 * 1024 * 1024
    # Envelopes older than this are refused, so remembering message ids for this long is enough
    # to refuse every replay.
    replay_window: timedelta = timedelta(days=7)
    future_skew: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Routed:
    envelope: Envelope  # as received, plus the platform's trace hop
    recipients: tuple[str, ...]  # inboxes to deliver to (none for a paper record)
    changes: tuple[StateChange, ...]
    digest: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str
    digest: str  # SHA-256 hex of the original bytes
    secret: bool = False  # True: nothing of the content may be kept or forwarded
    message_id: str | None = None
    document_id: str | None = None
    sender: str | None = None  # as claimed by the envelope (unverified when the signature failed)
    payload_type: str | None = None


Outcome = Routed | Rejected


class _Refuse(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def route_submission(
    raw: bytes,
    *,
    state: PartitionView,
    trust: TrustStore,
    agencies: AgencyDirectory,
    policy: RoutingPolicy,
    now: datetime,
) -> Outcome:
    """Decide what happens to one submission. Checks run cheapest first, and the secrecy check
    runs before anything that could echo content (verification details, routing)."""
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) > policy.max_bytes:
        return Rejected(RejectReason.TOO_LARGE, f"{len(raw)} bytes > {policy.max_bytes}", digest)
    try:
        envelope = decode_envelope(raw)
    except SchemaError as exc:
        return Rejected(RejectReason.MALFORMED, f"envelope: {exc.reason}: {exc}"[:300], digest)
    try:
        payload = decode_payload(envelope, validate=False)
    except SchemaError as exc:
        return _rejected(envelope, RejectReason.MALFORMED, f"payload: {exc.reason}: {exc}", digest)
    if _is_secret(payload):
        return _rejected(
            envelope,
            RejectReason.SECRET_DOCUMENT,
            "documents marked secret must not travel on the exchange platform",
            digest,
            secret=True,
        )
    try:
        plan = _decide(envelope, payload, state, trust, agencies, policy, now)
    except _Refuse as exc:
        return _rejected(envelope, exc.reason, exc.detail, digest)
    recipients, changes = plan
    hop = TraceHop(agency=policy.platform_agency, at=now, note="routed")
    routed = replace(envelope, trace=(*envelope.trace, hop))
    return Routed(routed, recipients, changes, digest)


def _rejected(
    envelope: Envelope, reason: str, detail: str, digest: str, *, secret: bool = False
) -> Rejected:
    return Rejected(
        reason,
        detail[:500],
        digest,
        secret,
        envelope.message_id,
        envelope.document_id,
        envelope.sender,
        str(envelope.payload_type),
    )


def _is_secret(payload: Payload) -> bool:
    # A paper record may register a secret document (metadata only) for the denominator.
    if isinstance(payload, PaperExchangeRecord):
        return False
    return getattr(payload, "secrecy", SecrecyMarking.NONE) != SecrecyMarking.NONE


Plan = tuple[tuple[str, ...], tuple[StateChange, ...]]


def _decide(
    envelope: Envelope,
    payload: Payload,
    state: PartitionView,
    trust: TrustStore,
    agencies: AgencyDirectory,
    policy: RoutingPolicy,
    now: datetime,
) -> Plan:
    try:
        PAYLOADS[type(payload)].validate(payload)
    except ValidationError as exc:
        raise _Refuse(RejectReason.INVALID_PAYLOAD, f"{exc.reason}: {exc}") from None
    try:
        verified = verify_envelope(envelope, trust=trust, agencies=agencies, at=now)
    except VerificationError as exc:
        raise _Refuse(str(exc.reason), str(exc)) from None
    if verified.agency_code is None:
        raise _Refuse(RejectReason.NOT_FROM_AN_AGENCY, "no AGENCY signature")
    if envelope.created_at < now - policy.replay_window:
        raise _Refuse(
            RejectReason.STALE,
            f"created {envelope.created_at.isoformat()}, "
            f"older than the {policy.replay_window} replay window",
        )
    if envelope.created_at > now + policy.future_skew:
        raise _Refuse(RejectReason.FROM_THE_FUTURE, f"created {envelope.created_at.isoformat()}")
    if envelope.message_id in state.seen_messages:
        raise _Refuse(RejectReason.REPLAY, f"message {envelope.message_id} was already routed")
    where = addressing(payload, envelope.recipients if isinstance(payload, StatusNotice) else None)
    if (where.sender, where.recipients, where.document_id) != (
        envelope.sender,
        envelope.recipients,
        envelope.document_id,
    ):
        raise _Refuse(
            RejectReason.MISADDRESSED,
            "envelope sender, recipients or document id differ from the payload's",
        )
    for code in envelope.recipients:
        _check_recipient(code, agencies, envelope.created_at)
    recipients, changes = _BY_TYPE[envelope.payload_type](envelope, payload, state)
    created_ms = int(envelope.created_at.timestamp() * 1000)
    return recipients, (*changes, StateChange.message(envelope.message_id, created_ms))


def _check_recipient(code: str, agencies: AgencyDirectory, at: datetime) -> None:
    agency = agencies.lookup(code)
    if agency is None:
        raise _Refuse(RejectReason.UNKNOWN_RECIPIENT, f"recipient {code} is not in the directory")
    if not agency.is_open(at):
        successor = agencies.current_successor(code, at)
        hint = (
            f"; its successor is {successor.code}" if successor and successor.code != code else ""
        )
        raise _Refuse(RejectReason.CLOSED_RECIPIENT, f"recipient {code} is closed{hint}")


def _new_entry(envelope: Envelope, state: PartitionView) -> DocumentState:
    if envelope.document_id in state.documents:
        raise _Refuse(RejectReason.DUPLICATE_DOCUMENT, f"{envelope.document_id} was already routed")
    return DocumentState(
        envelope.sender,
        envelope.recipients,
        str(envelope.payload_type),
        int(envelope.created_at.timestamp() * 1000),
    )


def _route_document(envelope: Envelope, payload: Payload, state: PartitionView) -> Plan:
    assert isinstance(payload, OfficialDocument)
    if not envelope.recipients:
        raise _Refuse(RejectReason.NO_RECIPIENTS, "a document needs at least one recipient")
    op = payload.business.operation
    if op is not BusinessOperationType.NEW:
        target = state.documents.get(payload.business.target_document_id or "")
        if target is None or target.sender != envelope.sender:
            raise _Refuse(
                RejectReason.UNKNOWN_DOCUMENT,
                f"{op} of {payload.business.target_document_id}, which this sender "
                "has not sent (or not on this partition's key)",
            )
    entry = _new_entry(envelope, state)
    return envelope.recipients, (StateChange.document(envelope.document_id, entry),)


def _route_report(envelope: Envelope, payload: Payload, state: PartitionView) -> Plan:
    assert isinstance(payload, PeriodicReport)
    entry = _new_entry(envelope, state)
    return envelope.recipients, (StateChange.document(envelope.document_id, entry),)


def _route_paper(envelope: Envelope, payload: Payload, state: PartitionView) -> Plan:
    # A registration of paper exchange goes to no inbox: the archive and the KPI read it.
    entry = _new_entry(envelope, state)
    return (), (StateChange.document(envelope.document_id, entry),)


def _route_status(envelope: Envelope, payload: Payload, state: PartitionView) -> Plan:
    assert isinstance(payload, StatusNotice)
    doc = state.documents.get(payload.document_id)
    if doc is None:
        raise _Refuse(
            RejectReason.UNKNOWN_DOCUMENT,
            f"status {payload.code} for {payload.document_id}, which was never routed",
        )
    statuses = {k: list(v) for k, v in doc.statuses.items()}
    if payload.code is StatusCode.REVOCATION_REQUESTED:
        if envelope.sender != doc.sender:
            raise _Refuse(
                RejectReason.NOT_THE_SENDER, "only the document's sender may ask to revoke it (13)"
            )
        stray = set(envelope.recipients) - set(doc.recipients)
        if not envelope.recipients or stray:
            raise _Refuse(
                RejectReason.MISADDRESSED,
                "a revocation request goes to the "
                f"document's recipients; not recipients: {sorted(stray)}",
            )
        for recipient in envelope.recipients:
            _transition(statuses.get(recipient, []), payload.code, by_sender=True)
            statuses.setdefault(recipient, []).append(str(payload.code))
    else:
        if envelope.sender not in doc.recipients:
            raise _Refuse(
                RejectReason.NOT_A_RECIPIENT,
                f"{envelope.sender} is not a recipient of {payload.document_id}",
            )
        if envelope.recipients != (doc.sender,):
            raise _Refuse(
                RejectReason.MISADDRESSED,
                f"a status goes back to the document's sender {doc.sender}",
            )
        history = statuses.get(envelope.sender, [])
        _transition(history, payload.code, by_sender=False)
        statuses[envelope.sender] = [*history, str(payload.code)]
    updated = DocumentState(doc.sender, doc.recipients, doc.kind, doc.routed_at_ms, statuses)
    return envelope.recipients, (StateChange.document(payload.document_id, updated),)


def _transition(history: list[str], code: StatusCode, *, by_sender: bool) -> None:
    try:
        check_transition(history, code, by_sender=by_sender)
    except ValidationError as exc:
        raise _Refuse(RejectReason.ILLEGAL_TRANSITION, str(exc)) from None


_BY_TYPE: dict[PayloadType, Callable[[Envelope, Payload, PartitionView], Plan]] = {
    PayloadType.OFFICIAL_DOCUMENT: _route_document,
    PayloadType.PERIODIC_REPORT: _route_report,
    PayloadType.PAPER_EXCHANGE_RECORD: _route_paper,
    PayloadType.STATUS_NOTICE: _route_status,
}
