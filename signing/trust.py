"""TrustStore: anchors + CRLs from configuration, and certificate path validation at a time."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from signing.errors import PkiError, ReasonCode, VerificationError
from signing.profile import CertRole, roles_of

MAX_CHAIN_DEPTH = 6
_ISSUED_CACHE_SIZE = 10_000
_INVALID = (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm)
# cryptography's x509 exceptions that do not derive from ValueError.
X509_PARSE_ERRORS = (ValueError, x509.InvalidVersion, x509.DuplicateExtension)


def parse_chain(chain: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """DER certificates, signer first; MALFORMED when empty, oversized or not DER."""
    if not isinstance(chain, tuple | list) or not chain:
        raise VerificationError(ReasonCode.MALFORMED, "empty certificate chain")
    if len(chain) > MAX_CHAIN_DEPTH:
        raise VerificationError(ReasonCode.MALFORMED, f"chain longer than {MAX_CHAIN_DEPTH}")
    certs = []
    for i, der in enumerate(chain):
        if not isinstance(der, bytes):
            raise VerificationError(ReasonCode.MALFORMED, f"chain[{i}] is not bytes")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except X509_PARSE_ERRORS as exc:
            raise VerificationError(ReasonCode.MALFORMED, f"chain[{i}] is not DER: {exc}") from exc
    return tuple(certs)


def _issued(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except _INVALID:
        return False
    return True


def _check_validity(cert: x509.Certificate, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise VerificationError(
            ReasonCode.CERT_NOT_YET_VALID,
            f"{cert.subject.rfc4514_string()} valid from {cert.not_valid_before_utc}",
        )
    if at > cert.not_valid_after_utc:
        raise VerificationError(
            ReasonCode.CERT_EXPIRED,
            f"{cert.subject.rfc4514_string()} expired {cert.not_valid_after_utc}",
        )


def _check_critical_extensions(cert: x509.Certificate) -> None:
    # RFC 5280 4.2: a certificate with a critical extension we do not understand is refused.
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise VerificationError(
                ReasonCode.UNTRUSTED_CHAIN, f"unknown critical extension {ext.oid.dotted_string}"
            )


def _check_issuer_is_ca(issuer: x509.Certificate, intermediates_below: int) -> None:
    name = issuer.subject  # rendered only in messages
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} is not a CA") from None
    if not bc.ca:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} is not a CA")
    if bc.path_length is not None and intermediates_below > bc.path_length:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} path length exceeded")
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.key_cert_sign:
        raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, f"{name} may not sign certificates")


def check_end_entity(cert: x509.Certificate, role: CertRole) -> None:
    """The signer certificate may sign in this role: key usage, not a CA, role marker."""
    name = cert.subject  # rendered only in messages
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} has no key usage") from None
    # Documents are commitments (Decree 30): person and agency keys need nonRepudiation too.
    needs_commitment = role in (CertRole.PERSON, CertRole.AGENCY)
    if not ku.digital_signature or (needs_commitment and not ku.content_commitment):
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} key usage forbids signing")
    if role not in roles_of(cert):
        raise VerificationError(ReasonCode.WRONG_KEY_USAGE, f"{name} is not a {role} certificate")


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors and CRLs; built from configured files so a real external CA can be trusted."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    _anchor_ders: frozenset[bytes] = field(init=False, repr=False)
    # (child DER, issuer DER) pairs whose certificate signature already verified: the same
    # few thousand agency certificates arrive over and over, and the check is a pure function.
    _issued_ok: dict[tuple[bytes, bytes], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            raise PkiError("a trust store needs at least one anchor certificate")
        object.__setattr__(self, "_anchor_ders", frozenset(_der(a) for a in self.anchors))
        object.__setattr__(self, "_issued_ok", {})
        for crl in self.crls:
            issuers = [a for a in self.anchors if a.subject == crl.issuer]
            # A CRL from an anchor is checked now (config error); one from an intermediate is
            # checked when a chain brings that intermediate.
            if issuers and not any(crl.is_signature_valid(a.public_key()) for a in issuers):  # type: ignore[arg-type]
                raise PkiError(f"CRL of {crl.issuer.rfc4514_string()} has a bad signature")

    @classmethod
    def from_files(
        cls, anchor_paths: Iterable[str | Path], crl_paths: Iterable[str | Path] = ()
    ) -> TrustStore:
        """Anchors from PEM (or DER) certificate files, CRLs from PEM (or DER) CRL files."""
        anchors: list[x509.Certificate] = []
        crls: list[x509.CertificateRevocationList] = []
        try:
            for path in anchor_paths:
                data = Path(path).read_bytes()
                if b"-----BEGIN" in data:
                    anchors.extend(x509.load_pem_x509_certificates(data))
                else:
                    anchors.append(x509.load_der_x509_certificate(data))
            for path in crl_paths:
                data = Path(path).read_bytes()
                if b"-----BEGIN" in data:
                    crls.append(x509.load_pem_x509_crl(data))
                else:
                    crls.append(x509.load_der_x509_crl(data))
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot load trust store: {exc}") from exc
        return cls(tuple(anchors), tuple(crls))

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | Path) -> TrustStore:
        """From {'anchors': [paths], 'crls': [paths]} or a YAML file of that shape.

        Relative paths in a YAML file are relative to the file's directory.
        """
        base = Path(".")
        if isinstance(config, str | Path):
            base = Path(config).parent
            try:
                loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise PkiError(f"cannot read trust configuration {config}: {exc}") from exc
            config = loaded if isinstance(loaded, Mapping) else {}
        anchors = config.get("anchors") or []
        crls = config.get("crls") or []
        if not isinstance(anchors, list) or not isinstance(crls, list):
            raise PkiError("trust configuration: 'anchors' and 'crls' must be lists of paths")
        return cls.from_files([base / p for p in anchors], [base / p for p in crls])

    def _is_anchor(self, cert: x509.Certificate) -> bool:
        return _der(cert) in self._anchor_ders

    def _issued(self, child: x509.Certificate, issuer: x509.Certificate) -> bool:
        if child.issuer != issuer.subject:
            return False
        pair = (_der(child), _der(issuer))
        if pair not in self._issued_ok:
            if len(self._issued_ok) >= _ISSUED_CACHE_SIZE:
                self._issued_ok.clear()
            self._issued_ok[pair] = _issued(child, issuer)
        return self._issued_ok[pair]

    def build_path(self, chain: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
        """Signer -> carried intermediates -> anchor, by names and signatures, or raise."""
        path = [chain[0]]
        pool = list(chain[1:])
        current = chain[0]
        while not self._is_anchor(current):
            if len(path) > MAX_CHAIN_DEPTH:
                raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, "no anchor within depth")
            issuer = next(
                (a for a in self.anchors if self._issued(current, a)),
                None,
            )
            if issuer is None:
                issuer = next((c for c in pool if self._issued(current, c)), None)
                if issuer is None:
                    raise VerificationError(
                        ReasonCode.UNTRUSTED_CHAIN,
                        f"no trusted issuer for {current.subject.rfc4514_string()}",
                    )
                pool.remove(issuer)
            path.append(issuer)
            current = issuer
        return tuple(path)

    def validate(
        self, chain: Sequence[x509.Certificate], at: datetime
    ) -> tuple[x509.Certificate, ...]:
        """Build and check the path at time `at` (the signing time); returns signer..anchor."""
        path = self.build_path(chain)
        for cert in path:
            _check_critical_extensions(cert)
        for i, issuer in enumerate(path[1:], start=1):
            _check_issuer_is_ca(issuer, intermediates_below=i - 1)
        for cert in path:
            _check_validity(cert, at)
        for cert, issuer in itertools.pairwise(path):
            self._check_revocation(cert, issuer, at)
        return path

    def _check_revocation(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> None:
        crls = [c for c in self.crls if c.issuer == issuer.subject]
        valid = [c for c in crls if c.is_signature_valid(issuer.public_key())]  # type: ignore[arg-type]
        if crls and not valid:
            raise VerificationError(
                ReasonCode.UNTRUSTED_CHAIN, f"CRL of {issuer.subject.rfc4514_string()} is invalid"
            )
        for crl in valid:
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is None:
                continue
            revoked_at = entry.revocation_date_utc
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = x509.ReasonFlags.unspecified
            # A compromised key could have produced any back-dated signature, so its signing
            # time cannot save it; other reasons only void signatures made after revocation.
            if revoked_at <= at or reason is x509.ReasonFlags.key_compromise:
                raise VerificationError(
                    ReasonCode.REVOKED,
                    f"serial {cert.serial_number:x} revoked {revoked_at.isoformat()}"
                    f" ({reason.value})",
                )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
