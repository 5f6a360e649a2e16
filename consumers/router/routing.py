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
from schemas.common import DOCUMENT_ID, REPORT_ID, SecrecyMarking
from schemas.document import BusinessOperationType, OfficialDocument
from schemas.envelope import Envelope, PayloadType, TraceHop
from schemas.errors import SchemaError, ValidationError
from schemas.limits import MAX_ENVELOPE_BYTES
from schemas.paper import PaperExchangeRecord
from schemas.report import PeriodicReport
from schemas.status import StatusCode, StatusNotice, check_transition
from signing.envelope import verify_envelope
from signing.errors import VerificationError
from signing.trust import TrustStore


class RejectReason(enum.StrEnum):
    """Why the router refused a submission. Signature failures use signing.ReasonCode's values.
    docs/contract.md says what each means and whether the sender hears of it."""

    TOO_LARGE = "TOO_LARGE"
    MALFORMED = "MALFORMED"
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    SECRET_DOCUMENT = "SECRET_DOCUMENT"
    NOT_FROM_AN_AGENCY = "NOT_FROM_AN_AGENCY"
    STALE = "STALE"
    FROM_THE_FUTURE = "FROM_THE_FUTURE"
    REPLAY = "REPLAY"
    RESUBMITTED = "RESUBMITTED"
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
    # One limit for the whole exchange: the SDK refuses to send a larger envelope, the router
    # refuses one that comes anyway (schemas.limits, docs/large-documents.md).
    max_bytes: int = MAX_ENVELOPE_BYTES
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
    secret: bool = False  # True: a secret document (nothing of its content is kept)
    message_id: str | None = None
    document_id: str | None = None
    sender: str | None = None  # as claimed by the envelope
    payload_type: str | None = None
    # The claimed sender's AGENCY signature verified: only then does the platform answer (02).
    sender_verified: bool = False
    # The original bytes may be kept (dead letter, archive): they decoded, and were not secret.
    keep_content: bool = False
    size: int = 0  # of the original bytes

    @property
    def notify_sender(self) -> bool:
        """Whether the claimed sender gets a platform 02: only a proven sender, never about a
        secret document (its only id names its number and notation), and not for a resent
        copy of what was already routed (the sender keeps its first receipt)."""
        return (
            self.sender_verified
            and not self.secret
            and self.reason != RejectReason.RESUBMITTED
            and bool(self.sender and self.document_id)
        )


Outcome = Routed | Rejected


class _Refuse(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Submission:
    """One submission's bytes, decoded as far as they go (the router decodes once: to find the
    document's home partition, then to decide)."""

    raw: bytes
    digest: str
    envelope: Envelope | None = None
    payload: Payload | None = None
    error: str | None = None  # why the envelope or its payload did not decode

    @property
    def document_id(self) -> str | None:
        return self.envelope.document_id if self.envelope is not None else None


def parse_submission(raw: bytes) -> Submission:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        envelope = decode_envelope(raw)
    except SchemaError as exc:
        # Only the reason code: a message might quote content, and undecoded bytes may be secret.
        return Submission(raw, digest, error=f"envelope: {exc.reason}")
    try:
        payload = decode_payload(envelope, validate=False)
    except SchemaError as exc:
        return Submission(raw, digest, envelope, error=f"payload: {exc.reason}")
    return Submission(raw, digest, envelope, payload)


def route_submission(
    raw: bytes,
    *,
    state: PartitionView,
    trust: TrustStore,
    agencies: AgencyDirectory,
    policy: RoutingPolicy,
    now: datetime,
) -> Outcome:
    """Decide what happens to one submission's bytes (parse_submission, then decide)."""
    return decide(
        parse_submission(raw), state=state, trust=trust, agencies=agencies, policy=policy, now=now
    )


def decide(
    sub: Submission,
    *,
    state: PartitionView,
    trust: TrustStore,
    agencies: AgencyDirectory,
    policy: RoutingPolicy,
    now: datetime,
) -> Outcome:
    """Decide what happens to one parsed submission. The secrecy check runs before anything that
    could echo content (verification details, routing); content is kept only when the bytes
    decoded and are not secret; a rejection names its sender as proven only when the sender's
    own AGENCY signature verified."""
    size = len(sub.raw)
    envelope, payload = sub.envelope, sub.payload
    if envelope is None:
        reason = RejectReason.TOO_LARGE if size > policy.max_bytes else RejectReason.MALFORMED
        detail = _too_large(size, policy) if reason == RejectReason.TOO_LARGE else sub.error
        return Rejected(reason, detail or "", sub.digest, size=size)
    seen = state.message_digest(envelope.message_id)
    if seen == sub.digest:
        return _rejected(
            sub,
            RejectReason.RESUBMITTED,
            f"message {envelope.message_id} was already routed with these exact bytes",
            keep=payload is not None and not _is_secret(payload),
            # These very bytes verified when they were routed: the sender is proven (its copy
            # joins the document's story in the archive), though not told (notify_sender).
            verified=True,
        )
    proven = lambda: _proven_sender(envelope, trust, agencies, now)  # noqa: E731
    if payload is None:
        reason = RejectReason.TOO_LARGE if size > policy.max_bytes else RejectReason.MALFORMED
        detail = _too_large(size, policy) if reason == RejectReason.TOO_LARGE else sub.error
        return _rejected(sub, reason, detail or "", verified=proven())
    if _is_secret(payload):
        return _rejected(
            sub,
            RejectReason.SECRET_DOCUMENT,
            "documents marked secret must not travel on the exchange platform",
            secret=True,
            verified=proven(),
        )
    if size > policy.max_bytes:
        # Too large to forward or keep, but the sender may be proven: it is told why.
        return _rejected(sub, RejectReason.TOO_LARGE, _too_large(size, policy), verified=proven())
    try:
        plan = _decide(envelope, payload, sub.digest, seen, state, trust, agencies, policy, now)
    except _Unproven as exc:
        return _rejected(sub, exc.reason, exc.detail, keep=True)
    except _Refuse as exc:
        return _rejected(sub, exc.reason, exc.detail, keep=True, verified=True)
    recipients, changes = plan
    hop = TraceHop(agency=policy.platform_agency, at=now, note="routed")
    routed = replace(envelope, trace=(*envelope.trace, hop))
    return Routed(routed, recipients, changes, sub.digest)


def _too_large(size: int, policy: RoutingPolicy) -> str:
    return f"{size:,} bytes; envelopes are limited to {policy.max_bytes:,}"


class _Unproven(_Refuse):
    """A refusal before the sender's signature verified: the sender is only claimed."""


def _proven_sender(
    envelope: Envelope, trust: TrustStore, agencies: AgencyDirectory, now: datetime
) -> bool:
    try:
        verified = verify_envelope(envelope, trust=trust, agencies=agencies, at=now)
    except VerificationError:
        return False
    return verified.agency_code == envelope.sender


def _rejected(
    sub: Submission,
    reason: str,
    detail: str,
    *,
    secret: bool = False,
    keep: bool = False,
    verified: bool = False,
) -> Rejected:
    envelope = sub.envelope
    assert envelope is not None
    return Rejected(
        reason,
        detail[:500],
        sub.digest,
        secret,
        envelope.message_id,
        envelope.document_id,
        envelope.sender,
        str(envelope.payload_type),
        sender_verified=verified,
        keep_content=keep and not secret,
        size=len(sub.raw),
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
    digest: str,
    seen: str | None,
    state: PartitionView,
    trust: TrustStore,
    agencies: AgencyDirectory,
    policy: RoutingPolicy,
    now: datetime,
) -> Plan:
    try:
        verified = verify_envelope(envelope, trust=trust, agencies=agencies, at=now)
    except VerificationError as exc:
        where = f" (signature #{exc.signature_index})" if exc.signature_index is not None else ""
        raise _Unproven(str(exc.reason), f"{exc.detail}{where}") from None
    if verified.agency_code is None:
        raise _Unproven(RejectReason.NOT_FROM_AN_AGENCY, "no AGENCY signature")
    # From here on the sender is proven: each refusal below is answered with a 02.
    try:
        PAYLOADS[type(payload)].validate(payload)
    except ValidationError as exc:
        raise _Refuse(RejectReason.INVALID_PAYLOAD, f"{exc.reason}: {exc.message}") from None
    if envelope.created_at < now - policy.replay_window:
        raise _Refuse(
            RejectReason.STALE,
            f"created {envelope.created_at.isoformat()}, older than the "
            f"{_duration(policy.replay_window)} replay window",
        )
    if envelope.created_at > now + policy.future_skew:
        raise _Refuse(
            RejectReason.FROM_THE_FUTURE,
            f"created {envelope.created_at.isoformat()}, more than "
            f"{_duration(policy.future_skew)} ahead of the platform's clock",
        )
    if seen is not None:
        raise _Refuse(
            RejectReason.REPLAY,
            f"message id {envelope.message_id} was already routed, with other bytes",
        )
    try:
        addressed = addressing(
            payload, envelope.recipients if isinstance(payload, StatusNotice) else None
        )
    except ValidationError as exc:  # e.g. a status addressed to nobody
        raise _Refuse(RejectReason.MISADDRESSED, f"{exc.reason}: {exc.message}") from None
    if (addressed.sender, addressed.recipients, addressed.document_id) != (
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
    return recipients, (*changes, StateChange.message(envelope.message_id, created_ms, digest))


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
        # An update, replacement or revocation carries its own id, so it lives on its own
        # partition, not its target's: whether the target was routed is not known here. Its
        # id names its sender, though, and only that sender may change it. The id's shape is
        # enough to name it: validation already refused an impossible date, unless the
        # receipt profile took one from the national axis (flagged in the payload).
        target_id = payload.business.target_document_id or ""
        match = DOCUMENT_ID.fullmatch(target_id) or REPORT_ID.fullmatch(target_id)
        if match is None:
            raise _Refuse(RejectReason.UNKNOWN_DOCUMENT, f"{op} of {target_id!r}: not an id")
        owner = match["sender"]
        if owner != envelope.sender:
            raise _Refuse(
                RejectReason.NOT_THE_SENDER,
                f"{op} of {target_id}, a document of {owner}: only its sender may change it",
            )
        if envelope.document_id in state.documents:
            return _next_version(envelope, op, state)
    entry = _new_entry(envelope, state)
    return envelope.recipients, (StateChange.document(envelope.document_id, entry),)


def _next_version(envelope: Envelope, op: BusinessOperationType, state: PartitionView) -> Plan:
    """An update, replacement or revocation whose id was already routed (the national axis
    sends all of a document's operations under one id) is the next version of that document,
    from the same sender: kept under (id, operation, version), never DUPLICATE_DOCUMENT. The
    document's own entry (its recipients and statuses) stays as it is. A comma cannot occur
    in a notation, so the key can never be another document's id."""
    first = state.documents.get(envelope.document_id)
    assert first is not None
    if first.sender != envelope.sender:
        raise _Refuse(
            RejectReason.NOT_THE_SENDER,
            f"{op} under {envelope.document_id}, a document of {first.sender}: "
            "only its sender may change it",
        )
    version = 1
    while version_key(envelope.document_id, op, version) in state.documents:
        version += 1
    entry = DocumentState(
        envelope.sender,
        envelope.recipients,
        str(envelope.payload_type),
        int(envelope.created_at.timestamp() * 1000),
    )
    key = version_key(envelope.document_id, op, version)
    return envelope.recipients, (StateChange.document(key, entry),)


def version_key(document_id: str, op: BusinessOperationType, version: int) -> str:
    """The router's key of the n-th UPDATE/REPLACE/REVOKE routed under an existing id."""
    return f"{document_id},{op.value},{version}"


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


def _duration(span: timedelta) -> str:
    """7 days, 5 minutes, 36 hours: how people say a window (timedelta says "7 days, 0:00:00")."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds} seconds"
