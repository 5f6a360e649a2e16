"""TrustStore: anchors + CRLs from configuration, and certificate path validation at a time."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from signing.algorithms import PublicKey
from signing.certcheck import (
    MAX_CHAIN_DEPTH,
    allowed_roles,
    check_critical_extensions,
    check_end_entity,
    check_issuer_is_ca,
    check_validity,
    issued_by,
    refuse_if_revoked,
)
from signing.errors import PkiError, ReasonCode, VerificationError
from signing.profile import CertRole, agency_code_of, common_name_of, organization_of

# Validated chains kept per trust store. Agencies number in the thousands and each signs with
# one or two certificates, so 4,096 chains hold the working set; beyond it the least recently
# used chain is simply validated again.
CHAIN_CACHE_SIZE = 4096
_ISSUED_CACHE_SIZE = 10_000
_CRL_CHECK_CACHE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class Revocable:
    """A non-anchor certificate of a path: its serial and its issuer's CRLs that verified."""

    serial: int
    # serial -> entry, one dict per CRL of the issuer whose signature verified, in CRL order.
    crls: tuple[Mapping[int, x509.RevokedCertificate], ...]


@dataclass(frozen=True, slots=True)
class ValidatedChain:
    """Everything about a chain that does not depend on the signing time, once it validated.

    Held by one TrustStore only: it is true for that store's anchors and CRLs, no other.
    """

    certs: tuple[x509.Certificate, ...]  # as carried, signer first
    path: tuple[x509.Certificate, ...]  # signer .. anchor
    leaf_key: PublicKey
    # The intersection of every path certificate's validity: one comparison per call instead
    # of one per certificate (a failure is re-explained certificate by certificate).
    not_before: datetime
    not_after: datetime
    revocable: tuple[Revocable, ...]
    roles: frozenset[CertRole]  # roles check_end_entity accepts for the signer certificate
    subject: str
    agency_code: str | None
    agency_name: str | None
    common_name: str | None
    certificate_sha256: str  # hex SHA-256 of the signer certificate's DER


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors and CRLs; built from configured files so a real external CA can be trusted.

    A store also remembers the chains it validated (`cached_chain`): the same few thousand
    agency certificates arrive over and over, and everything about a chain except the signing
    time is a pure function of the chain bytes and of this store's anchors and CRLs, which are
    fixed at construction. A new CRL therefore means a new TrustStore, with an empty cache.
    """

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    # Issuers whose revocation status cannot be known (their CRL is stale beyond the grace,
    # signing.crl.trust_at): every certificate they issued is refused, REVOCATION_UNKNOWN.
    revocation_unknown: frozenset[x509.Name] = field(default=frozenset(), kw_only=True)
    chain_cache_size: int = field(default=CHAIN_CACHE_SIZE, kw_only=True, compare=False)
    _anchor_ders: tuple[bytes, ...] = field(init=False, repr=False)
    _anchor_set: frozenset[bytes] = field(init=False, repr=False)
    _crls_by_issuer: dict[x509.Name, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    # (child DER, issuer DER) pairs whose certificate signature already verified: a new leaf
    # under a known intermediate then costs one signature check, not two.
    _issued_ok: dict[tuple[bytes, bytes], bool] = field(init=False, repr=False, compare=False)
    # (CRL index, issuer DER) -> whether that CRL's signature verifies with that issuer.
    _crl_ok: dict[tuple[int, bytes], bool] = field(init=False, repr=False, compare=False)
    # CRL index -> serial -> entry; built the first time a chain needs that CRL.
    _crl_serials: dict[int, dict[int, x509.RevokedCertificate]] = field(
        init=False, repr=False, compare=False
    )
    # Chain DER bytes -> ValidatedChain, least recently used first. Only successes go in, so
    # a cached entry can never turn a failure into a success; failures are recomputed.
    _chains: OrderedDict[tuple[bytes, ...], ValidatedChain] = field(
        init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            raise PkiError("a trust store needs at least one anchor certificate")
        if self.chain_cache_size < 1:
            raise PkiError("chain_cache_size must be at least 1")
        ders = tuple(_der(a) for a in self.anchors)
        by_issuer: dict[x509.Name, list[int]] = {}
        for i, crl in enumerate(self.crls):
            by_issuer.setdefault(crl.issuer, []).append(i)
        object.__setattr__(self, "_anchor_ders", ders)
        object.__setattr__(self, "_anchor_set", frozenset(ders))
        object.__setattr__(self, "_crls_by_issuer", {k: tuple(v) for k, v in by_issuer.items()})
        object.__setattr__(self, "_issued_ok", {})
        object.__setattr__(self, "_crl_ok", {})
        object.__setattr__(self, "_crl_serials", {})
        object.__setattr__(self, "_chains", OrderedDict())
        object.__setattr__(self, "_lock", threading.Lock())
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

    # --- the chain cache --------------------------------------------------------------------

    def cached_chain(self, chain: Sequence[bytes]) -> ValidatedChain | None:
        """The chain as validated earlier by this store, or None (then validate it in full)."""
        # Exactly bytes (not a subclass that could redefine equality) or no cache at all.
        if type(chain) not in (tuple, list) or not all(type(c) is bytes for c in chain):
            return None
        key = tuple(chain)
        with self._lock:
            entry = self._chains.get(key)
            if entry is not None:
                self._chains.move_to_end(key)
            return entry

    def cached_chain_count(self) -> int:
        with self._lock:
            return len(self._chains)

    def _remember(self, chain: Sequence[bytes], entry: ValidatedChain) -> None:
        if type(chain) not in (tuple, list) or not all(type(c) is bytes for c in chain):
            return
        with self._lock:
            self._chains[tuple(chain)] = entry
            self._chains.move_to_end(tuple(chain))
            while len(self._chains) > self.chain_cache_size:
                self._chains.popitem(last=False)

    # --- path building ----------------------------------------------------------------------

    def _is_anchor(self, der: bytes) -> bool:
        return der in self._anchor_set

    def _issued(
        self, child: x509.Certificate, child_der: bytes, issuer: x509.Certificate, issuer_der: bytes
    ) -> bool:
        if child.issuer != issuer.subject:
            return False
        pair = (child_der, issuer_der)
        ok = self._issued_ok.get(pair)
        if ok is None:
            ok = issued_by(child, issuer)
            if len(self._issued_ok) >= _ISSUED_CACHE_SIZE:
                self._issued_ok.clear()
            self._issued_ok[pair] = ok
        return ok

    def _build_path(
        self, chain: Sequence[x509.Certificate], ders: Sequence[bytes]
    ) -> list[tuple[x509.Certificate, bytes]]:
        path = [(chain[0], ders[0])]
        pool = list(zip(chain[1:], ders[1:], strict=True))
        current, current_der = path[0]
        anchors = list(zip(self.anchors, self._anchor_ders, strict=True))
        while not self._is_anchor(current_der):
            if len(path) > MAX_CHAIN_DEPTH:
                raise VerificationError(ReasonCode.UNTRUSTED_CHAIN, "no anchor within depth")
            issuer = next(
                (a for a in anchors if self._issued(current, current_der, a[0], a[1])), None
            )
            if issuer is None:
                issuer = next(
                    (c for c in pool if self._issued(current, current_der, c[0], c[1])), None
                )
                if issuer is None:
                    raise VerificationError(
                        ReasonCode.UNTRUSTED_CHAIN,
                        f"no trusted issuer for {current.subject.rfc4514_string()}",
                    )
                pool.remove(issuer)
            path.append(issuer)
            current, current_der = issuer
        return path

    def build_path(self, chain: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
        """Signer -> carried intermediates -> anchor, by names and signatures, or raise."""
        return tuple(c for c, _ in self._build_path(chain, [_der(c) for c in chain]))

    # --- validation -------------------------------------------------------------------------

    def validate(
        self, chain: Sequence[x509.Certificate], at: datetime
    ) -> tuple[x509.Certificate, ...]:
        """Build and check the path at time `at` (the signing time); returns signer..anchor."""
        path, _ = self._validate_path(chain, [_der(c) for c in chain], at)
        return path

    def _validate_path(
        self, chain: Sequence[x509.Certificate], ders: Sequence[bytes], at: datetime
    ) -> tuple[tuple[x509.Certificate, ...], tuple[Revocable, ...]]:
        # The order of the checks is the order of the reason codes in docs/signing.md.
        pairs = self._build_path(chain, ders)
        path = tuple(c for c, _ in pairs)
        for cert in path:
            check_critical_extensions(cert)
        for i, issuer in enumerate(path[1:], start=1):
            check_issuer_is_ca(issuer, intermediates_below=i - 1)
        for cert in path:
            check_validity(cert, at)
        revocable = []
        for (cert, _), (issuer, issuer_der) in itertools.pairwise(pairs):
            # One certificate at a time, CRL validity then serial: the first failure wins.
            item = self._revocable(cert, issuer, issuer_der)
            self.check_revocation((item,), at)
            revocable.append(item)
        return path, tuple(revocable)

    def validate_chain(
        self,
        chain: Sequence[bytes],
        certs: Sequence[x509.Certificate],
        leaf_key: PublicKey,
        role: CertRole,
        at: datetime,
    ) -> ValidatedChain:
        """Full validation of a chain not yet cached (or not for this role); remembered on success.

        `certs` are `chain` parsed; `leaf_key` is the signer key already accepted by the caller.
        """
        path, revocable = self._validate_path(certs, chain, at)
        leaf = certs[0]
        check_end_entity(leaf, role)
        entry = ValidatedChain(
            certs=tuple(certs),
            path=path,
            leaf_key=leaf_key,
            not_before=max(c.not_valid_before_utc for c in path),
            not_after=min(c.not_valid_after_utc for c in path),
            revocable=revocable,
            roles=allowed_roles(leaf),
            subject=leaf.subject.rfc4514_string(),
            agency_code=agency_code_of(leaf),
            agency_name=organization_of(leaf),
            common_name=common_name_of(leaf),
            certificate_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        )
        self._remember(chain, entry)
        return entry

    def check_at(self, entry: ValidatedChain, at: datetime) -> None:
        """What a cached chain still needs per signature: validity and revocation at `at`."""
        if not entry.not_before <= at <= entry.not_after:
            # Name the first offending certificate, exactly as a full validation would.
            for cert in entry.path:
                check_validity(cert, at)
            raise AssertionError("validity window disagrees with the certificates")  # unreachable
        self.check_revocation(entry.revocable, at)

    # --- revocation -------------------------------------------------------------------------

    def _crl_verifies(self, index: int, issuer: x509.Certificate, issuer_der: bytes) -> bool:
        key = (index, issuer_der)
        ok = self._crl_ok.get(key)
        if ok is None:
            ok = self.crls[index].is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            if len(self._crl_ok) >= _CRL_CHECK_CACHE_SIZE:
                self._crl_ok.clear()
            self._crl_ok[key] = ok
        return ok

    def _serials(self, index: int) -> dict[int, x509.RevokedCertificate]:
        serials = self._crl_serials.get(index)
        if serials is None:
            serials = {}
            for entry in self.crls[index]:
                # The first entry for a serial wins, as get_revoked_certificate_by_serial_number.
                serials.setdefault(entry.serial_number, entry)
            self._crl_serials[index] = serials
        return serials

    def _revocable(
        self, cert: x509.Certificate, issuer: x509.Certificate, issuer_der: bytes
    ) -> Revocable:
        if issuer.subject in self.revocation_unknown:
            # Checked before any use of the store's CRLs and never cached (only successes are):
            # a store built while the CRL is stale refuses until a fresh one makes a new store.
            raise VerificationError(
                ReasonCode.REVOCATION_UNKNOWN,
                f"CRL of {issuer.subject.rfc4514_string()} is stale: revocation status unknown",
            )
        indexes = self._crls_by_issuer.get(issuer.subject, ())
        valid = [i for i in indexes if self._crl_verifies(i, issuer, issuer_der)]
        if indexes and not valid:
            raise VerificationError(
                ReasonCode.UNTRUSTED_CHAIN, f"CRL of {issuer.subject.rfc4514_string()} is invalid"
            )
        return Revocable(cert.serial_number, tuple(self._serials(i) for i in valid))

    @staticmethod
    def check_revocation(revocable: Sequence[Revocable], at: datetime) -> None:
        """REVOKED when a path certificate was revoked at or before `at`, or its key compromised."""
        for item in revocable:
            for serials in item.crls:
                entry = serials.get(item.serial)
                if entry is not None:
                    refuse_if_revoked(item.serial, entry, at)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
