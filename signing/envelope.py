"""sign_envelope / verify_envelope: Decree 30 person + agency signatures over an Envelope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Protocol

from schemas.envelope import Envelope, Signature, SignerRole
from signing.algorithms import PrivateKey, algorithm_for_key, sign_raw
from signing.core import PARSE_ERRORS, VerifiedSignature, check_signature, signer_cert
from signing.errors import ReasonCode, SigningError, VerificationError
from signing.profile import CertRole
from signing.tbs import envelope_tbs, format_signing_time
from signing.trust import TrustStore


class AgencyRegistry(Protocol):
    """What verification needs from the agency directory (schemas.agency.AgencyDirectory)."""

    def lookup(self, code: str) -> object | None: ...

    def is_open(self, code: str, at: datetime | date) -> bool: ...


@dataclass(frozen=True, slots=True)
class VerifiedSender:
    """Who sent an envelope, as proven by its signatures (in envelope order)."""

    agency_code: str | None  # from the AGENCY certificate; None for a platform-only envelope
    agency_name: str | None
    person_name: str | None
    roles: tuple[SignerRole, ...]
    subjects: tuple[str, ...]
    certificate_fingerprints: tuple[str, ...]  # SHA-256 hex of each signer certificate
    signing_times: tuple[datetime, ...]
    signatures: tuple[VerifiedSignature, ...]


def sign_envelope(
    envelope: Envelope,
    *,
    key: PrivateKey,
    chain: Sequence[bytes],
    role: SignerRole,
    at: datetime,
    rsa_pss: bool = False,
) -> Envelope:
    """Append one signature; it also covers every signature already on the envelope."""
    cert = signer_cert(key, chain, CertRole(role))
    algorithm = algorithm_for_key(key, rsa_pss=rsa_pss)
    try:
        signing_time = format_signing_time(at)
        tbs = envelope_tbs(
            envelope,
            role=str(role),
            algorithm=algorithm,
            signing_time=signing_time,
            signer_certificate=cert.der,
            preceding=envelope.signatures,
        )
    except PARSE_ERRORS as exc:
        raise SigningError(f"cannot encode the envelope for signing: {exc}") from exc
    signature = Signature(
        role=role,
        algorithm=algorithm,
        certificate_chain=tuple(chain),
        signing_time=signing_time,
        value=sign_raw(key, algorithm, tbs),
    )
    return replace(envelope, signatures=(*envelope.signatures, signature))


def _verify_at(
    envelope: Envelope, index: int, trust: TrustStore, at: datetime
) -> VerifiedSignature:
    sig = envelope.signatures[index]
    try:
        role = CertRole(SignerRole(sig.role))
    except ValueError as exc:
        raise VerificationError(ReasonCode.MALFORMED, f"unknown role {sig.role!r}") from exc
    preceding = envelope.signatures[:index]

    def tbs(signer_der: bytes) -> bytes:
        return envelope_tbs(
            envelope,
            role=str(role),
            algorithm=str(sig.algorithm),
            signing_time=str(sig.signing_time),
            signer_certificate=signer_der,
            preceding=preceding,
        )

    earliest = envelope.created_at if isinstance(envelope.created_at, datetime) else None
    return check_signature(
        role=role,
        algorithm=sig.algorithm,
        chain=sig.certificate_chain,
        signing_time=sig.signing_time,
        value=sig.value,
        tbs=tbs,
        trust=trust,
        at=at,
        earliest=earliest,
    )


def _roles(envelope: Envelope) -> list[SignerRole]:
    if not isinstance(envelope.signatures, tuple | list) or not envelope.signatures:
        raise VerificationError(ReasonCode.MISSING_SIGNATURE, "the envelope is not signed")
    roles = []
    for i, sig in enumerate(envelope.signatures):
        try:
            roles.append(SignerRole(sig.role))
        except (ValueError, AttributeError) as exc:
            raise VerificationError(
                ReasonCode.MALFORMED, "unknown signer role", signature_index=i
            ) from exc
    return roles


def _check_structure(roles: list[SignerRole]) -> None:
    if roles.count(SignerRole.AGENCY) > 1:
        raise VerificationError(ReasonCode.MALFORMED, "more than one AGENCY signature")
    if SignerRole.AGENCY not in roles and SignerRole.PLATFORM not in roles:
        raise VerificationError(ReasonCode.MISSING_SIGNATURE, "no AGENCY signature")
    if SignerRole.AGENCY in roles and SignerRole.PERSON in roles:
        last_person = max(i for i, r in enumerate(roles) if r is SignerRole.PERSON)
        if last_person > roles.index(SignerRole.AGENCY):
            # The agency signature covers only what precedes it; a later person signature
            # would be unendorsed by the agency.
            raise VerificationError(ReasonCode.MALFORMED, "PERSON signature after the AGENCY one")


def verify_envelope(
    envelope: Envelope, *, trust: TrustStore, agencies: AgencyRegistry, at: datetime
) -> VerifiedSender:
    """Verify every signature and the sender; return the proven identity or raise."""
    roles = _roles(envelope)
    _check_structure(roles)
    verified: list[VerifiedSignature] = []
    for index in range(len(roles)):
        try:
            verified.append(_verify_at(envelope, index, trust, at))
        except VerificationError as exc:
            exc.signature_index = index
            raise
    agency = next((v for v in verified if v.role is CertRole.AGENCY), None)
    if agency is not None:
        _check_agency(envelope, agency, verified, agencies)
    person = next((v for v in verified if v.role is CertRole.PERSON), None)
    return VerifiedSender(
        agency_code=agency.agency_code if agency else None,
        agency_name=agency.agency_name if agency else None,
        person_name=person.person_name if person else None,
        roles=tuple(roles),
        subjects=tuple(v.subject for v in verified),
        certificate_fingerprints=tuple(v.certificate_sha256 for v in verified),
        signing_times=tuple(v.signing_time for v in verified),
        signatures=tuple(verified),
    )


def _check_agency(
    envelope: Envelope,
    agency: VerifiedSignature,
    verified: list[VerifiedSignature],
    agencies: AgencyRegistry,
) -> None:
    code = agency.agency_code
    if code is None:
        raise VerificationError(ReasonCode.SENDER_MISMATCH, "AGENCY certificate has no agency code")
    if code != envelope.sender:
        raise VerificationError(
            ReasonCode.SENDER_MISMATCH, f"sender {envelope.sender!r} signed by agency {code}"
        )
    for v in verified:
        if v.role is CertRole.PERSON and v.agency_code != code:
            raise VerificationError(
                ReasonCode.SENDER_MISMATCH, f"person of {v.agency_code} signing for {code}"
            )
    if agencies.lookup(code) is None:
        raise VerificationError(ReasonCode.UNKNOWN_AGENCY, f"agency {code} is not in the directory")
    # Open at the agency's signing time: a document signed before a merger stays valid in transit.
    if not agencies.is_open(code, agency.signing_time):
        raise VerificationError(ReasonCode.CLOSED_AGENCY, f"agency {code} was closed at signing")
