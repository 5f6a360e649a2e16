"""A PKI directory on disk: CA, issued certificates by agency and role, CRL, serial index."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing.algorithms import PrivateKey
from signing.crl import load_crl
from signing.errors import PkiError, SigningError
from signing.pki import (
    RevokedEntry,
    build_crl,
    certificate_pem,
    chain_der,
    create_intermediate_ca,
    create_root_ca,
    crl_pem,
    generate_key,
    issue_certificate,
    load_certificates,
    load_private_key,
    private_key_pem,
)
from signing.profile import CertRole, organization_of
from signing.trust import TrustStore

REVOCATION_REASONS = {flag.value: flag for flag in x509.ReasonFlags} | {
    flag.name: flag for flag in x509.ReasonFlags
}


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One issued certificate as recorded in index.json (paths relative to the PKI dir)."""

    serial: str  # lowercase hex
    role: str
    agency_code: str
    person_name: str | None
    subject: str
    algorithm: str
    not_before: str
    not_after: str
    certificate: str
    chain: str
    key: str
    status: str = "valid"  # valid | revoked
    revoked_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedPaths:
    serial: str
    certificate: Path
    chain: Path
    key: Path


def _slug(name: str) -> str:
    # ASCII file names from Vietnamese names: đ has no decomposition, so map it by hand.
    text = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "x"


def write_file(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Atomic write; a secret (a private key) is 0600 from its first byte."""
    _write(path, data, secret=secret)


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Private keys are created 0600 from the first byte, not chmod-ed afterwards.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class PkiDirectory:
    """The layout documented in docs/signing.md; every method takes the time it acts at."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_cert = root / "ca" / "root.crt.pem"
        self.root_key = root / "ca" / "root.key.pem"
        self.issuing_cert = root / "ca" / "issuing.crt.pem"
        self.issuing_key = root / "ca" / "issuing.key.pem"
        self.crl = root / "crl.pem"
        self.index = root / "index.json"
        self.trust_config = root / "trust.yaml"

    # --- CA -------------------------------------------------------------------------------

    def init(
        self,
        *,
        now: datetime,
        algorithm: str = "ecdsa-p256",
        passphrase: bytes | None = None,
        intermediate: bool = False,
        force: bool = False,
        days: int = 3650,
    ) -> list[Path]:
        """Create the root CA (and optionally an issuing CA), an empty CRL and trust.yaml."""
        if self.root_cert.exists() and not force:
            raise PkiError(f"a CA already exists in {self.root} (use --force to replace it)")
        if force:
            # A new root orphans every issued certificate: they go with it.
            for sub in ("ca", "issued"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
            for f in (self.crl, self.index, self.trust_config):
                f.unlink(missing_ok=True)
        root_key = generate_key(algorithm)
        root = create_root_ca(root_key, now=now, days=days)
        _write(self.root_key, private_key_pem(root_key, passphrase), secret=True)
        _write(self.root_cert, certificate_pem(root))
        written = [self.root_cert, self.root_key]
        if intermediate:
            ca_key = generate_key(algorithm)
            ca = create_intermediate_ca(
                ca_key, issuer_key=root_key, issuer_cert=root, now=now, days=days // 2
            )
            _write(self.issuing_key, private_key_pem(ca_key, passphrase), secret=True)
            _write(self.issuing_cert, certificate_pem(ca))
            written += [self.issuing_cert, self.issuing_key]
        self._save_index({})
        written.append(self.index)
        written.append(self._publish_crl({}, now=now, ca_passphrase=passphrase))
        _write(self.trust_config, b"anchors: [ca/root.crt.pem]\ncrls: [crl.pem]\n")
        written.append(self.trust_config)
        return written

    def _issuer(self, passphrase: bytes | None) -> tuple[PrivateKey, x509.Certificate]:
        cert_path, key_path = (
            (self.issuing_cert, self.issuing_key)
            if self.issuing_cert.exists()
            else (self.root_cert, self.root_key)
        )
        if not cert_path.exists():
            raise PkiError(f"no CA in {self.root}; run 'pki init' first")
        try:
            key = load_private_key(key_path.read_bytes(), passphrase)
        except SigningError as exc:
            raise PkiError(f"cannot open the CA key {key_path}: {exc}") from exc
        return key, load_certificates(cert_path.read_bytes())[0]

    def ca_chain(self) -> list[x509.Certificate]:
        """The certificates an issued chain carries after the signer (the issuing CA, if any)."""
        return (
            load_certificates(self.issuing_cert.read_bytes()) if self.issuing_cert.exists() else []
        )

    # --- index ----------------------------------------------------------------------------

    def _load_index(self) -> dict[str, IndexEntry]:
        if not self.index.exists():
            raise PkiError(f"no index in {self.root}; run 'pki init' first")
        try:
            data: dict[str, Any] = json.loads(self.index.read_text(encoding="utf-8"))
            return {s: IndexEntry(**e) for s, e in data["certificates"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"corrupt index {self.index}: {exc}") from exc

    def _crl_number(self) -> int:
        """The number of the last CRL published (0: none numbered yet), kept in index.json."""
        if not self.index.exists():
            return 0
        try:
            return int(json.loads(self.index.read_text(encoding="utf-8")).get("crl_number", 0))
        except (ValueError, TypeError, AttributeError) as exc:
            raise PkiError(f"corrupt index {self.index}: {exc}") from exc

    def _save_index(self, entries: dict[str, IndexEntry], *, crl_number: int | None = None) -> None:
        body = {
            "version": 1,
            "certificates": {s: asdict(e) for s, e in entries.items()},
            "crl_number": self._crl_number() if crl_number is None else crl_number,
        }
        text = json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        _write(self.index, text.encode("utf-8"))

    def entries(self) -> list[IndexEntry]:
        return sorted(
            self._load_index().values(), key=lambda e: (e.agency_code, e.role, e.not_before)
        )

    def find(
        self, *, agency_code: str, role: CertRole, person_name: str | None = None
    ) -> list[IndexEntry]:
        """Valid certificates of an agency in a role (and, for PERSON, of that person)."""
        return [
            e
            for e in self.entries()
            if e.agency_code == agency_code
            and e.role == role
            and e.status == "valid"
            and (person_name is None or e.person_name == person_name)
        ]

    # --- issue / revoke -------------------------------------------------------------------

    def issue(
        self,
        *,
        agency_code: str,
        role: CertRole,
        now: datetime,
        person_name: str | None = None,
        agency_name: str | None = None,
        algorithm: str = "ecdsa-p256",
        passphrase: bytes | None = None,
        ca_passphrase: bytes | None = None,
        days: int = 730,
    ) -> IssuedPaths:
        """Generate a key, issue its certificate, write key/cert/chain and record it."""
        issuer_key, issuer_cert = self._issuer(ca_passphrase)
        entries = self._load_index()
        key = generate_key(algorithm)
        try:
            cert = issue_certificate(
                key,
                role=role,
                agency_code=agency_code,
                agency_name=agency_name or agency_code,
                person_name=person_name,
                issuer_key=issuer_key,
                issuer_cert=issuer_cert,
                now=now,
                days=days,
            )
        except SigningError as exc:
            raise PkiError(str(exc)) from exc
        serial = f"{cert.serial_number:x}"
        stem = role.lower() + (f"-{_slug(person_name)}" if person_name else "") + f"-{serial[:16]}"
        folder = self.root / "issued" / agency_code
        paths = IssuedPaths(
            serial,
            folder / f"{stem}.crt.pem",
            folder / f"{stem}.chain.pem",
            folder / f"{stem}.key.pem",
        )
        _write(paths.key, private_key_pem(key, passphrase), secret=True)
        _write(paths.certificate, certificate_pem(cert))
        _write(paths.chain, b"".join(certificate_pem(c) for c in [cert, *self.ca_chain()]))
        entries[serial] = IndexEntry(
            serial=serial,
            role=str(role),
            agency_code=agency_code,
            person_name=person_name,
            subject=cert.subject.rfc4514_string(),
            algorithm=algorithm,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            certificate=str(paths.certificate.relative_to(self.root)),
            chain=str(paths.chain.relative_to(self.root)),
            key=str(paths.key.relative_to(self.root)),
        )
        self._save_index(entries)
        return paths

    def revoke(
        self, serial: str, *, reason: str, now: datetime, ca_passphrase: bytes | None = None
    ) -> IndexEntry:
        """Mark a certificate revoked at `now` and republish the CRL."""
        if reason not in REVOCATION_REASONS:
            choices = ", ".join(sorted(f.value for f in x509.ReasonFlags))
            raise PkiError(f"unknown revocation reason {reason!r}; one of: {choices}")
        entries = self._load_index()
        key = self._resolve_serial(entries, serial)
        if entries[key].status == "revoked":
            raise PkiError(f"certificate {serial} is already revoked")
        flag = REVOCATION_REASONS[reason]
        entries[key] = replace(
            entries[key], status="revoked", revoked_at=now.isoformat(), reason=flag.value
        )
        self._publish_crl(entries, now=now, ca_passphrase=ca_passphrase)
        self._save_index(entries)
        return entries[key]

    def renew(
        self,
        serial: str,
        *,
        now: datetime,
        days: int = 730,
        algorithm: str | None = None,
        passphrase: bytes | None = None,
        ca_passphrase: bytes | None = None,
    ) -> IssuedPaths:
        """A fresh key and certificate for the same identity (agency, role, person, agency
        name). The old certificate is left valid until it expires: signers take the newest
        valid one (signing.credentials), so running services switch without a restart."""
        entries = self._load_index()
        old = entries[self._resolve_serial(entries, serial)]
        if old.status != "valid":
            raise PkiError(f"certificate {old.serial} is {old.status}: issue a new one instead")
        cert = load_certificates((self.root / old.certificate).read_bytes())[0]
        return self.issue(
            agency_code=old.agency_code,
            role=CertRole(old.role),
            now=now,
            person_name=old.person_name,
            agency_name=organization_of(cert),
            algorithm=algorithm or old.algorithm,
            passphrase=passphrase,
            ca_passphrase=ca_passphrase,
            days=days,
        )

    def _resolve_serial(self, entries: dict[str, IndexEntry], serial: str) -> str:
        # `pki list` shows 16 hex digits; a unique prefix of at least 8 is accepted.
        wanted = serial.strip().lower().removeprefix("0x")
        if wanted in entries:
            return wanted
        matches = [s for s in entries if len(wanted) >= 8 and s.startswith(wanted)]
        if len(matches) != 1:
            raise PkiError(f"no unique certificate with serial {serial} in {self.index}")
        return matches[0]

    def _publish_crl(
        self,
        entries: dict[str, IndexEntry],
        *,
        now: datetime,
        ca_passphrase: bytes | None,
        next_update_days: int = 7,
    ) -> Path:
        issuer_key, issuer_cert = self._issuer(ca_passphrase)
        revoked = [
            RevokedEntry(
                int(e.serial, 16),
                datetime.fromisoformat(e.revoked_at),
                REVOCATION_REASONS[e.reason or "unspecified"],
            )
            for e in entries.values()
            if e.status == "revoked" and e.revoked_at
        ]
        # Numbered, so that a follower never lets an older CRL replace a newer one.
        number = self._crl_number() + 1
        crl = build_crl(
            issuer_key=issuer_key,
            issuer_cert=issuer_cert,
            revoked=revoked,
            now=now,
            next_update_days=next_update_days,
            number=number,
        )
        _write(self.crl, crl_pem(crl))
        self._save_index(entries, crl_number=number)
        return self.crl

    def publish_crl(
        self, *, now: datetime, ca_passphrase: bytes | None = None, next_update_days: int = 7
    ) -> Path:
        """Sign the CRL again (same revocations, thisUpdate `now`, the next number): what an
        operator runs before nextUpdate so that followers never hold a stale CRL."""
        return self._publish_crl(
            self._load_index(),
            now=now,
            ca_passphrase=ca_passphrase,
            next_update_days=next_update_days,
        )

    def crl_der(self) -> bytes:
        """The current CRL as DER (what `<prefix>crl` carries)."""
        try:
            return load_crl(self.crl.read_bytes()).public_bytes(Encoding.DER)
        except OSError as exc:
            raise PkiError(f"no CRL in {self.root}: {exc}") from exc

    def crl_issuer(self) -> x509.Certificate:
        """The CA that signs crl.pem: the issuing CA if there is one, else the root."""
        path = self.issuing_cert if self.issuing_cert.exists() else self.root_cert
        try:
            return load_certificates(path.read_bytes())[0]
        except OSError as exc:
            raise PkiError(f"no CA in {self.root}; run 'pki init' first") from exc

    def crl_issuer_chain(self) -> bytes:
        """PEM of the CRL's issuer when it is not the root (the issuing CA), else empty."""
        return b"".join(certificate_pem(c) for c in self.ca_chain())

    # --- use ------------------------------------------------------------------------------

    def trust_store(self) -> TrustStore:
        return TrustStore.from_config(self.trust_config)

    def credential(
        self, entry: IndexEntry, passphrase: bytes | None = None
    ) -> tuple[PrivateKey, tuple[bytes, ...]]:
        """The key and DER chain to pass to sign_envelope / sign_blob."""
        key = load_private_key((self.root / entry.key).read_bytes(), passphrase)
        chain = load_certificates((self.root / entry.chain).read_bytes())
        return key, chain_der(chain)
