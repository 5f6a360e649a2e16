"""Session-scoped PKI for signing tests: keys are generated once (RSA 2048 is slow)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest

from schemas.envelope import Envelope, PayloadType
from signing.algorithms import PrivateKey
from signing.pki import (
    RevokedEntry,
    build_crl,
    chain_der,
    create_intermediate_ca,
    create_root_ca,
    generate_key,
    issue_certificate,
)
from signing.profile import CertRole
from signing.trust import TrustStore

VN = timezone(timedelta(hours=7))
ISSUED_AT = datetime(2026, 1, 1, 8, 0, tzinfo=VN)
CREATED_AT = datetime(2026, 3, 10, 8, 59, 30, 123456, tzinfo=VN)
SIGN_AT = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
VERIFY_AT = datetime(2026, 3, 10, 9, 1, tzinfo=VN)
HANOI = "000.00.00.H26"
GOV_OFFICE = "000.00.00.G22"
BA_DINH = "000.00.01.H26"
KEY_ALGORITHMS = ("rsa", "rsa-pss", "ecdsa-p256", "ed25519")


@dataclass
class FakeAgencies:
    """AgencyRegistry: code -> (opened, closed or None)."""

    records: dict[str, tuple[date, date | None]] = field(default_factory=dict)

    def lookup(self, code: str) -> object | None:
        return self.records.get(code)

    def is_open(self, code: str, at: datetime | date) -> bool:
        opened, closed = self.records[code]
        day = at.date() if isinstance(at, datetime) else at
        return opened <= day and (closed is None or day < closed)


@dataclass(frozen=True)
class Credential:
    key: PrivateKey
    chain: tuple[bytes, ...]
    rsa_pss: bool = False


class TestPki:
    """A root + issuing CA and a cache of keys per algorithm."""

    __test__ = False

    def __init__(self) -> None:
        self.root_key = generate_key("ecdsa-p256")
        self.root = create_root_ca(self.root_key, now=ISSUED_AT - timedelta(days=30))
        self.ca_key = generate_key("ed25519")
        self.ca = create_intermediate_ca(
            self.ca_key, issuer_key=self.root_key, issuer_cert=self.root, now=ISSUED_AT
        )
        self._keys: dict[str, PrivateKey] = {}
        self.revoked: list[RevokedEntry] = []

    def key(self, algorithm: str) -> PrivateKey:
        base = "rsa" if algorithm.startswith("rsa") else algorithm
        if base not in self._keys:
            self._keys[base] = generate_key(base)
        return self._keys[base]

    def issue(
        self,
        role: CertRole = CertRole.AGENCY,
        algorithm: str = "ecdsa-p256",
        *,
        code: str = HANOI,
        person: str | None = None,
        now: datetime = ISSUED_AT,
        days: int = 365,
        key: PrivateKey | None = None,
    ) -> Credential:
        key = key or self.key(algorithm)
        if role is CertRole.PERSON and person is None:
            person = "Nguyễn Văn A"
        cert = issue_certificate(
            key,
            role=role,
            agency_code=code,
            agency_name="Ủy ban nhân dân thành phố Hà Nội",
            person_name=person,
            issuer_key=self.ca_key,
            issuer_cert=self.ca,
            now=now,
            days=days,
        )
        return Credential(key, chain_der([cert, self.ca]), rsa_pss=algorithm == "rsa-pss")

    def trust(self, revoked: list[RevokedEntry] | None = None) -> TrustStore:
        crl = build_crl(
            issuer_key=self.ca_key, issuer_cert=self.ca, revoked=revoked or [], now=ISSUED_AT
        )
        return TrustStore((self.root,), (crl,))


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="session")
def trust(pki: TestPki) -> TrustStore:
    return pki.trust()


@pytest.fixture
def agencies() -> FakeAgencies:
    return FakeAgencies(
        {
            HANOI: (date(2008, 8, 1), None),
            GOV_OFFICE: (date(1945, 9, 2), None),
            BA_DINH: (date(2008, 8, 1), date(2026, 1, 1)),
        }
    )


def make_envelope(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "message_id": "8a2f5c1e-4b7d-4e0a-9c3b-2d1f6e8a9b70",
        "payload_type": PayloadType.OFFICIAL_DOCUMENT,
        "payload_schema": "vn.lienthong.v1.OfficialDocument@0123456789abcdef",
        "payload": "Quyết định 4612/QĐ-UBND: 780.000.000 đồng".encode(),
        "document_id": "000.00.00.H26,2019/08/28,4612/QĐ-UBND",
        "sender": HANOI,
        "recipients": ("000.00.01.H26", "000.00.02.H26"),
        "created_at": CREATED_AT,
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


@pytest.fixture
def envelope_factory() -> Callable[..., Envelope]:
    return make_envelope
