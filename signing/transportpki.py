"""Transport certificates on disk: a transport sub-CA under the root, one TLS identity per
Kafka principal (agency, platform service, broker), kept apart from the signing certificates.

Layout, inside the PKI directory (docs/security.md):

    transport/ca.crt.pem, ca.key.pem     the transport CA (pathlen 0), issued by the root
    transport/ca-bundle.pem              transport CA + root: what a client's CA file holds
    transport/issued/<name>-<serial16>.{crt,chain,key,keystore}.pem
                                         keystore = key + chain in one file (Kafka's PEM keystore)
    transport/index.json                 serial -> kind, name, validity, status
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from signing.errors import PkiError, SigningError
from signing.pki import (
    certificate_pem,
    create_intermediate_ca,
    generate_key,
    issue_transport_certificate,
    load_certificates,
    load_private_key,
    private_key_pem,
)
from signing.pkidir import PkiDirectory, write_file
from signing.profile import TransportKind
from signing.transport import ClientSecurity, SecurityProtocol

TRANSPORT_CA_NAME = "lienthong Transport CA (dev)"


@dataclass(frozen=True, slots=True)
class TransportEntry:
    serial: str
    kind: str
    name: str  # the Kafka principal: User:<name>
    subject: str
    not_before: str
    not_after: str
    certificate: str  # paths relative to the PKI directory
    chain: str
    key: str
    keystore: str
    status: str = "valid"  # valid | revoked
    revoked_at: str | None = None

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


class TransportPki:
    def __init__(self, pki: PkiDirectory) -> None:
        self.pki = pki
        self.root = pki.root / "transport"
        self.ca_cert = self.root / "ca.crt.pem"
        self.ca_key = self.root / "ca.key.pem"
        self.ca_bundle = self.root / "ca-bundle.pem"
        self.index = self.root / "index.json"

    # --- CA -------------------------------------------------------------------------------

    def ensure_ca(self, *, now: datetime, ca_passphrase: bytes | None = None) -> Path:
        """The transport CA, created under the root on first use (its key encrypted like the
        root's). Brokers trust only this CA for clients: a signing certificate of the root or
        of the issuing CA cannot open a Kafka connection."""
        if self.ca_cert.exists():
            return self.ca_cert
        if not self.pki.root_cert.exists():
            raise PkiError(f"no CA in {self.pki.root}; run 'pki init' first")
        try:
            root_key = load_private_key(self.pki.root_key.read_bytes(), ca_passphrase)
        except SigningError as exc:
            raise PkiError(f"cannot open the CA key {self.pki.root_key}: {exc}") from exc
        root = load_certificates(self.pki.root_cert.read_bytes())[0]
        key = generate_key("ecdsa-p256")
        ca = create_intermediate_ca(
            key, issuer_key=root_key, issuer_cert=root, now=now, name=TRANSPORT_CA_NAME
        )
        write_file(self.ca_key, private_key_pem(key, ca_passphrase), secret=True)
        write_file(self.ca_cert, certificate_pem(ca))
        write_file(self.ca_bundle, certificate_pem(ca) + certificate_pem(root))
        self._save({})
        return self.ca_cert

    def _issuer(self, ca_passphrase: bytes | None) -> tuple[Any, x509.Certificate]:
        try:
            key = load_private_key(self.ca_key.read_bytes(), ca_passphrase)
        except SigningError as exc:
            raise PkiError(f"cannot open the transport CA key {self.ca_key}: {exc}") from exc
        return key, load_certificates(self.ca_cert.read_bytes())[0]

    # --- index ----------------------------------------------------------------------------

    def _load(self) -> dict[str, TransportEntry]:
        if not self.index.exists():
            return {}
        try:
            data = json.loads(self.index.read_text(encoding="utf-8"))
            return {s: TransportEntry(**e) for s, e in data["certificates"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"corrupt index {self.index}: {exc}") from exc

    def _save(self, entries: dict[str, TransportEntry]) -> None:
        body = {"version": 1, "certificates": {s: asdict(e) for s, e in entries.items()}}
        write_file(self.index, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())

    def entries(self) -> list[TransportEntry]:
        return sorted(self._load().values(), key=lambda e: (e.kind, e.name, e.not_before))

    def current(self, name: str) -> TransportEntry | None:
        """The newest valid certificate of a principal."""
        valid = [e for e in self.entries() if e.name == name and e.status == "valid"]
        return max(valid, key=lambda e: e.not_before) if valid else None

    def revoked_names(self) -> set[str]:
        """Principals with a revoked certificate and no valid one left."""
        entries = self.entries()
        valid = {e.name for e in entries if e.status == "valid"}
        return {e.name for e in entries if e.status == "revoked"} - valid

    # --- issue / revoke -------------------------------------------------------------------

    def issue(
        self,
        kind: TransportKind,
        name: str,
        *,
        now: datetime,
        hosts: tuple[str, ...] = (),
        days: int = 397,
        passphrase: bytes | None = None,
        ca_passphrase: bytes | None = None,
    ) -> TransportEntry:
        """A fresh key and certificate for one principal. `passphrase` encrypts the key file
        (a broker's keystore must stay unencrypted: Kafka's PEM keystore then needs no
        ssl.key.password)."""
        if kind in (TransportKind.BROKER, TransportKind.SERVER) and passphrase:
            raise PkiError("a server's key stays unencrypted (the server reads it at start)")
        self.ensure_ca(now=now, ca_passphrase=ca_passphrase)
        issuer_key, issuer_cert = self._issuer(ca_passphrase)
        key = generate_key("ecdsa-p256")
        try:
            cert = issue_transport_certificate(
                key,
                kind=kind,
                name=name,
                issuer_key=issuer_key,
                issuer_cert=issuer_cert,
                now=now,
                days=days,
                hosts=hosts,
            )
        except SigningError as exc:
            raise PkiError(str(exc)) from exc
        serial = f"{cert.serial_number:x}"
        folder = self.root / "issued"
        stem = folder / f"{name}-{serial[:16]}"
        chain = certificate_pem(cert) + certificate_pem(issuer_cert)
        key_pem = private_key_pem(key, passphrase)
        paths = {
            "certificate": stem.with_name(stem.name + ".crt.pem"),
            "chain": stem.with_name(stem.name + ".chain.pem"),
            "key": stem.with_name(stem.name + ".key.pem"),
            "keystore": stem.with_name(stem.name + ".keystore.pem"),
        }
        write_file(paths["certificate"], certificate_pem(cert))
        write_file(paths["chain"], chain)
        write_file(paths["key"], key_pem, secret=True)
        write_file(paths["keystore"], key_pem + chain, secret=True)
        entry = TransportEntry(
            serial=serial,
            kind=kind.value,
            name=name,
            subject=cert.subject.rfc4514_string(),
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            **{k: str(p.relative_to(self.pki.root)) for k, p in paths.items()},
        )
        entries = self._load()
        entries[serial] = entry
        self._save(entries)
        return entry

    def revoke(self, name: str, *, now: datetime) -> list[TransportEntry]:
        """Every valid certificate of a principal marked revoked. Kafka does not read CRLs:
        what shuts the door is `lienthong acl sync`, which removes a revoked principal's ACLs
        (and the certificate's expiry)."""
        entries = self._load()
        hit = [s for s, e in entries.items() if e.name == name and e.status == "valid"]
        if not hit:
            raise PkiError(f"no valid transport certificate for {name}")
        for s in hit:
            entries[s] = replace(entries[s], status="revoked", revoked_at=now.isoformat())
        self._save(entries)
        return [entries[s] for s in hit]

    # --- use ------------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return self.pki.root / relative

    def client_security(
        self,
        name: str,
        *,
        key_password: str | None = None,
        protocol: SecurityProtocol = SecurityProtocol.SSL,
    ) -> ClientSecurity:
        """Mutual TLS as `name` (its newest valid certificate), trusting the transport CA."""
        entry = self.current(name)
        if entry is None:
            raise PkiError(f"no valid transport certificate for {name}: run `pki transport issue`")
        return ClientSecurity(
            protocol,
            ca_file=self.ca_bundle,
            cert_file=self.path(entry.chain),
            key_file=self.path(entry.key),
            key_password=key_password,
        )
