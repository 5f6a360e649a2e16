"""Which credential signs at a given time: never one whose certificate is outside its validity
then, and a certificate renewed in the PKI directory is taken up without a restart."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, cast, runtime_checkable

from cryptography import x509

from schemas.envelope import SignerRole
from signing.errors import PkiError, SigningError
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """A credential and the window in which every certificate it carries is valid."""

    credential: Credential
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, credential: Credential) -> HeldCredential:
        certs = [x509.load_der_x509_certificate(der) for der in credential.chain]
        return cls(
            credential,
            max(c.not_valid_before_utc for c in certs),
            min(c.not_valid_after_utc for c in certs),
        )

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at <= self.not_after


@runtime_checkable
class CredentialSource(Protocol):
    """Gives the credential to sign with at a time, or None when no certificate is valid then."""

    def credential_at(self, at: datetime) -> Credential | None: ...

    def held_at(self, at: datetime) -> HeldCredential | None: ...


def choose(held: Iterable[HeldCredential], at: datetime) -> HeldCredential | None:
    """Of the credentials valid at `at`, the most recently issued (the renewal wins)."""
    valid = [h for h in held if h.valid_at(at)]
    return max(valid, key=lambda h: (h.not_before, h.not_after)) if valid else None


class FixedCredentials:
    """A fixed set of credentials (one loaded at start, or tests): still never an expired one."""

    def __init__(self, credentials: Iterable[Credential]) -> None:
        self.held = tuple(HeldCredential.of(c) for c in credentials)

    def held_at(self, at: datetime) -> HeldCredential | None:
        return choose(self.held, at)

    def credential_at(self, at: datetime) -> Credential | None:
        held = self.held_at(at)
        return held.credential if held else None


class PkiCredentials:
    """An identity's certificates in a PKI directory, read again whenever index.json changes
    (`lienthong pki renew` / `issue` / `revoke` rewrite it), so a renewed certificate signs from
    the next call on and a revoked one no more. A stat per call; keys are loaded once each."""

    def __init__(
        self,
        pki_dir: Path,
        agency_code: str,
        role: SignerRole | CertRole,
        *,
        person_name: str | None = None,
        passphrase: bytes | None = None,
    ) -> None:
        self.pki = PkiDirectory(pki_dir)
        self.agency_code = agency_code
        self.role = role
        self.person_name = person_name
        self.passphrase = passphrase
        self.held: tuple[HeldCredential, ...] = ()
        self.last_error: str | None = None  # the last reload that failed (the old set is kept)
        self._loaded: dict[str, HeldCredential] = {}  # serial -> credential
        self._stamp: tuple[int, int, int] | None = None
        self.refresh()
        if not self.held:
            who = f"{person_name} of {agency_code}" if person_name else agency_code
            raise PkiError(
                f"no {role} certificate for {who} in {pki_dir} (or it is revoked): "
                f"run `lienthong pki issue --agency {agency_code}` with the role's option"
            )

    def refresh(self) -> bool:
        """Reload the identity's certificates if index.json changed; whether it did."""
        try:
            st = os.stat(self.pki.index)
        except OSError as exc:
            self.last_error = str(exc)
            return False
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # index.json is replaced, not edited
        if stamp == self._stamp:
            return False
        try:
            entries = self.pki.find(
                agency_code=self.agency_code, role=CertRole(self.role), person_name=self.person_name
            )
            loaded = {}
            for entry in entries:
                held = self._loaded.get(entry.serial)
                if held is None:
                    key, chain = self.pki.credential(entry, self.passphrase)
                    # An ARCHIVE credential signs tree heads (sign_blob), never an envelope:
                    # seal() is the only reader of Credential.role.
                    role = cast(SignerRole, self.role)
                    held = HeldCredential.of(Credential(key, tuple(chain), role))
                loaded[entry.serial] = held
        except (PkiError, SigningError, OSError, ValueError) as exc:
            self.last_error = str(exc)
            return False
        self._loaded = loaded
        self.held = tuple(loaded.values())
        self._stamp = stamp
        self.last_error = None
        return True

    def held_at(self, at: datetime) -> HeldCredential | None:
        self.refresh()
        return choose(self.held, at)

    def credential_at(self, at: datetime) -> Credential | None:
        held = self.held_at(at)
        return held.credential if held else None


def as_source(credential: Credential | CredentialSource) -> CredentialSource:
    if isinstance(credential, Credential):
        return FixedCredentials([credential])
    return credential
