"""CRLs as they travel between processes: verified against the trust anchors, ordered, judged
fresh or stale at a given time, and turned into the TrustStore a verifier uses. Pure code: the
time is always a parameter (docs/signing.md, "Revocation that reaches running processes")."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing.certcheck import X509_PARSE_ERRORS
from signing.errors import PkiError, VerificationError
from signing.trust import CHAIN_CACHE_SIZE, TrustStore

# After a CRL's nextUpdate, how long it is still believed (a stale CRL, with an alarm) before
# certificates of its issuer are refused as REVOCATION_UNKNOWN. A parameter of every caller;
# this is only the default of the settings (LIENTHONG_CRL_GRACE_HOURS).
DEFAULT_CRL_GRACE = timedelta(hours=24)


class CrlRefused(PkiError):
    """A CRL that must not be applied: not a CRL, or not signed by a CA this verifier trusts."""


class Freshness(enum.StrEnum):
    FRESH = "fresh"  # before nextUpdate (or no nextUpdate at all)
    STALE = "stale"  # past nextUpdate, within the grace: still used, alarm raised
    EXPIRED = "expired"  # past nextUpdate + grace: the issuer's certificates are refused


@dataclass(frozen=True, slots=True)
class VerifiedCrl:
    """A CRL whose signature verified with a trusted issuer (or that came from configuration)."""

    crl: x509.CertificateRevocationList
    der: bytes = field(repr=False)
    number: int | None  # the CRLNumber extension, if any
    this_update: datetime
    next_update: datetime | None

    @property
    def issuer(self) -> x509.Name:
        return self.crl.issuer

    @property
    def issuer_label(self) -> str:
        return self.crl.issuer.rfc4514_string()

    @classmethod
    def configured(cls, crl: x509.CertificateRevocationList) -> VerifiedCrl:
        """A CRL from the trust configuration: trusted as the configuration is (a CRL of an
        anchor was checked when the TrustStore was built, one of an intermediate is checked
        when a chain brings that intermediate)."""
        return cls(
            crl=crl,
            der=crl.public_bytes(Encoding.DER),
            number=crl_number(crl),
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
        )


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """One CRL, PEM or DER; CrlRefused when it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except X509_PARSE_ERRORS as exc:
        raise CrlRefused(f"not a CRL: {exc}") from exc


def _can_sign_crls(cert: x509.Certificate) -> bool:
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
    except x509.ExtensionNotFound:
        return True  # RFC 5280: no key usage extension means no restriction


def verify_crl(
    data: bytes,
    trust: TrustStore,
    *,
    at: datetime,
    issuer_chain: Sequence[x509.Certificate] = (),
) -> VerifiedCrl:
    """The CRL, if an anchor of `trust` signed it, or a CA whose certificate (`issuer_chain`,
    issuer first, then its intermediates) validates to an anchor at `at`; else CrlRefused.

    The chain is only a hint for finding the issuer: an issuer that is not an anchor must still
    build a path to one, with every CA check and revocation check of a signer's path.
    """
    crl = load_crl(data)
    try:
        anchors = [a for a in trust.anchors if a.subject == crl.issuer]
        signer = next((a for a in anchors if _signed(crl, a)), None)
        if signer is None and issuer_chain:
            head = issuer_chain[0]
            if head.subject != crl.issuer:
                raise CrlRefused(
                    f"the chain given is {head.subject.rfc4514_string()}, "
                    f"not the CRL's issuer {crl.issuer.rfc4514_string()}"
                )
            try:
                trust.validate(issuer_chain, at)
            except VerificationError as exc:
                raise CrlRefused(f"the CRL issuer's chain is not trusted: {exc}") from exc
            if not _can_sign_crls(head):
                raise CrlRefused(f"{head.subject.rfc4514_string()} may not sign CRLs")
            if _signed(crl, head):
                signer = head
        if signer is None:
            raise CrlRefused(
                f"CRL of {crl.issuer.rfc4514_string()} is not signed by a configured CA"
            )
        return VerifiedCrl.configured(crl)
    except X509_PARSE_ERRORS as exc:
        raise CrlRefused(f"bad CRL: {exc}") from exc


def _signed(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def load_issuer_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    """PEM certificates (the CRL issuer first); CrlRefused when they do not parse."""
    if not data:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except X509_PARSE_ERRORS as exc:
        raise CrlRefused(f"bad issuer chain: {exc}") from exc


def supersedes(candidate: VerifiedCrl, current: VerifiedCrl | None) -> bool:
    """Whether `candidate` may replace `current` (same issuer): never an older CRL.

    Newer means a higher CRL number when both carry one, else a later thisUpdate; and in any
    case not an earlier thisUpdate (a CRL numbered higher but dated earlier is inconsistent and
    kept out). The same CRL again is not newer.
    """
    if current is None:
        return True
    if candidate.issuer != current.issuer:
        raise ValueError("CRLs of different issuers are not ordered")
    if candidate.this_update < current.this_update:
        return False
    if candidate.number is not None and current.number is not None:
        return candidate.number > current.number
    return candidate.this_update > current.this_update


def freshness(crl: VerifiedCrl, at: datetime, grace: timedelta) -> Freshness:
    if crl.next_update is None or at <= crl.next_update:
        return Freshness.FRESH
    return Freshness.STALE if at <= crl.next_update + grace else Freshness.EXPIRED


def seconds_until_next_update(crl: VerifiedCrl, at: datetime) -> float | None:
    """Negative once the CRL is stale; None when it names no nextUpdate."""
    return None if crl.next_update is None else (crl.next_update - at).total_seconds()


@dataclass(frozen=True, slots=True)
class CrlSet:
    """The newest CRL of each issuer a process knows, and the trust store they make."""

    anchors: tuple[x509.Certificate, ...]
    by_issuer: Mapping[x509.Name, VerifiedCrl]

    @classmethod
    def of(cls, store: TrustStore) -> CrlSet:
        """Seeded from a configured store (trust.yaml); for two CRLs of one issuer, the newer."""
        found = cls(store.anchors, {})
        for crl in store.crls:
            found, _ = found.offer(VerifiedCrl.configured(crl))
        return found

    def offer(self, crl: VerifiedCrl) -> tuple[CrlSet, bool]:
        """This set with `crl` in it if it supersedes its issuer's current CRL; and whether."""
        if not supersedes(crl, self.by_issuer.get(crl.issuer)):
            return self, False
        return CrlSet(self.anchors, {**self.by_issuer, crl.issuer: crl}), True

    def current(self, issuer: x509.Name) -> VerifiedCrl | None:
        return self.by_issuer.get(issuer)

    def unknown_at(self, at: datetime, grace: timedelta) -> frozenset[x509.Name]:
        """Issuers whose CRL is past nextUpdate + grace at `at`."""
        return frozenset(
            issuer
            for issuer, crl in self.by_issuer.items()
            if freshness(crl, at, grace) is Freshness.EXPIRED
        )

    def trust_at(
        self, at: datetime, grace: timedelta, *, chain_cache_size: int = CHAIN_CACHE_SIZE
    ) -> TrustStore:
        """The store to verify with at `at`: every issuer's newest CRL, and fail closed for the
        issuers whose CRL is stale beyond the grace."""
        return TrustStore(
            self.anchors,
            tuple(c.crl for c in self.by_issuer.values()),
            revocation_unknown=self.unknown_at(at, grace),
            chain_cache_size=chain_cache_size,
        )


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    """A TrustStore as bytes, for a worker process (x509 objects and locks do not pickle)."""

    anchors: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    unknown: tuple[int, ...] = ()  # indexes into crls whose issuer is REVOCATION_UNKNOWN

    @classmethod
    def of(cls, store: TrustStore) -> TrustMaterial:
        return cls(
            tuple(a.public_bytes(Encoding.DER) for a in store.anchors),
            tuple(c.public_bytes(Encoding.DER) for c in store.crls),
            tuple(i for i, c in enumerate(store.crls) if c.issuer in store.revocation_unknown),
        )

    def store(self) -> TrustStore:
        anchors = tuple(x509.load_der_x509_certificate(a) for a in self.anchors)
        crls = tuple(x509.load_der_x509_crl(c) for c in self.crls)
        unknown = frozenset(crls[i].issuer for i in self.unknown)
        return TrustStore(anchors, crls, revocation_unknown=unknown)


__all__ = [
    "DEFAULT_CRL_GRACE",
    "CrlRefused",
    "CrlSet",
    "Freshness",
    "TrustMaterial",
    "VerifiedCrl",
    "crl_number",
    "freshness",
    "load_crl",
    "load_issuer_chain",
    "seconds_until_next_update",
    "supersedes",
    "verify_crl",
]
