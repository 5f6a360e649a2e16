"""Sealing: a payload becomes an Envelope signed in Decree 30 order (person, then agency)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from schemas.addressing import Payload, addressing
from schemas.codec import encode_payload
from schemas.envelope import Envelope, SignerRole
from signing.algorithms import PrivateKey
from signing.envelope import sign_envelope
from signing.errors import PkiError
from signing.pkidir import PkiDirectory
from signing.profile import CertRole

_ORDER = {SignerRole.PERSON: 0, SignerRole.AGENCY: 1, SignerRole.PLATFORM: 2}


@dataclass(frozen=True, slots=True)
class Credential:
    """A private key with its certificate chain (DER, signer first) and the role it signs in."""

    key: PrivateKey
    chain: tuple[bytes, ...]
    role: SignerRole


def seal(
    payload: Payload,
    *,
    credentials: Sequence[Credential],
    at: datetime,
    recipients: Sequence[str] | None = None,
    message_id: str | None = None,
) -> Envelope:
    """Encode (validating) the payload, address the envelope from it, and sign it."""
    payload_type, identity, body = encode_payload(payload)
    where = addressing(payload, recipients)
    envelope = Envelope(
        message_id=message_id or str(uuid.uuid4()),
        payload_type=payload_type,
        payload_schema=identity,
        payload=body,
        document_id=where.document_id,
        sender=where.sender,
        recipients=where.recipients,
        created_at=at.astimezone(UTC),
    )
    # The agency signature covers the person's, so the person always signs first.
    for credential in sorted(credentials, key=lambda c: _ORDER[c.role]):
        envelope = sign_envelope(
            envelope, key=credential.key, chain=credential.chain, role=credential.role, at=at
        )
    return envelope


def load_credential(
    pki_dir: Path,
    agency_code: str,
    role: SignerRole,
    *,
    person_name: str | None = None,
    passphrase: bytes | None = None,
) -> Credential:
    """The newest valid certificate of that agency (and person) in that role, from a PKI dir."""
    pki = PkiDirectory(pki_dir)
    entries = pki.find(agency_code=agency_code, role=CertRole(role), person_name=person_name)
    if not entries:
        who = f"{person_name} of {agency_code}" if person_name else agency_code
        raise PkiError(
            f"no valid {role} certificate for {who} in {pki_dir}: "
            f"run `lienthong pki issue --agency {agency_code}"
            f"{' --person ' + repr(person_name) if person_name else ''}`"
        )
    key, chain = pki.credential(entries[-1], passphrase)
    return Credential(key, chain, role)
