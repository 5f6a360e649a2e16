"""examine(): an inbox record becomes a verified Delivery or a Refusal with a reason."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.inbox.subscriber import (
    ADDRESSING_MISMATCH,
    EMPTY_RECORD,
    WRONG_RECIPIENT,
    Delivery,
    Refusal,
    examine,
    one_line,
)
from schemas.agency import AgencyDirectory
from schemas.codec import encode_envelope, encode_payload
from schemas.common import AgencyRef
from schemas.document import OfficialDocument, document_from_record
from schemas.envelope import Envelope, SignerRole
from schemas.samples import example_record
from schemas.status import StatusCode, StatusNotice
from signing.envelope import sign_envelope
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import load_credential, seal
from signing.trust import TrustStore

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
HAI_BA_TRUNG = "000.00.32.H26"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW - timedelta(days=1))
    for code in (H26, BA_DINH):
        d.issue(agency_code=code, role=CertRole.AGENCY, now=NOW - timedelta(days=1))
    return root


@pytest.fixture(scope="module")
def trust(pki: Path) -> TrustStore:
    return PkiDirectory(pki).trust_store()


def decision() -> OfficialDocument:
    return document_from_record(example_record("official_document/v2/decision-4612-qd-ubnd.json"))


def sealed(pki: Path, payload: object, code: str = H26, **kw: object) -> Envelope:
    cred = load_credential(pki, code, SignerRole.AGENCY)
    return seal(payload, credentials=[cred], at=NOW, **kw)  # type: ignore[arg-type]


def run(trust: TrustStore, raw: bytes | None, agency: str = BA_DINH) -> Delivery | Refusal:
    return examine(
        raw,
        agency_code=agency,
        trust=trust,
        agencies=AgencyDirectory.default(),
        at=NOW + timedelta(minutes=1),
        topic="lienthong.inbox.x",
        partition=0,
        offset=7,
    )


def test_a_signed_document_for_us_is_delivered(pki: Path, trust: TrustStore) -> None:
    env = sealed(pki, decision())
    item = run(trust, encode_envelope(env))
    assert isinstance(item, Delivery)
    assert item.payload == decision()
    assert item.verified.agency_code == H26
    assert (item.topic, item.partition, item.offset) == ("lienthong.inbox.x", 0, 7)
    assert item.verified_at == NOW + timedelta(minutes=1)


def test_not_addressed_to_us_is_refused(pki: Path, trust: TrustStore) -> None:
    item = run(trust, encode_envelope(sealed(pki, decision())), agency="000.00.00.G22")
    assert isinstance(item, Refusal) and item.reason_code == WRONG_RECIPIENT
    assert item.document_id == decision().document_id and item.sender == H26


def test_a_changed_payload_is_a_bad_signature(pki: Path, trust: TrustStore) -> None:
    env = sealed(pki, decision())
    _, _, forged = encode_payload(dataclasses.replace(decision(), subject="Khác"))
    item = run(trust, encode_envelope(dataclasses.replace(env, payload=forged)))
    assert isinstance(item, Refusal) and item.reason_code == "BAD_SIGNATURE"
    assert item.message_id == env.message_id


def test_an_unsigned_envelope_is_refused(pki: Path, trust: TrustStore) -> None:
    env = dataclasses.replace(sealed(pki, decision()), signatures=())
    item = run(trust, encode_envelope(env))
    assert isinstance(item, Refusal) and item.reason_code == "MISSING_SIGNATURE"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, EMPTY_RECORD),
        (b"", "truncated"),
        (b"\xc3\x01\x00", "truncated"),
        (b"xyz", "bad_magic"),
    ],
)
def test_garbage_is_refused_with_the_codec_reason(
    trust: TrustStore, raw: bytes | None, reason: str
) -> None:
    item = run(trust, raw)
    assert isinstance(item, Refusal) and item.reason_code == reason
    assert item.message_id is None and item.sender is None


def test_a_status_from_another_agency_inside_our_envelope_is_refused(
    pki: Path, trust: TrustStore
) -> None:
    # Ba Đình signs an envelope whose status claims to come from Hai Bà Trưng.
    notice = StatusNotice(
        document_id=decision().document_id,
        from_agency=AgencyRef(HAI_BA_TRUNG, "Ủy ban nhân dân quận Hai Bà Trưng"),
        code=StatusCode.ARRIVED,
        timestamp=NOW,
    )
    unsigned = dataclasses.replace(
        sealed(pki, notice, code=BA_DINH, recipients=[H26]), sender=BA_DINH, signatures=()
    )
    cred = load_credential(pki, BA_DINH, SignerRole.AGENCY)
    env = sign_envelope(unsigned, key=cred.key, chain=cred.chain, role=cred.role, at=NOW)
    item = run(trust, encode_envelope(env), agency=H26)
    assert isinstance(item, Refusal) and item.reason_code == ADDRESSING_MISMATCH


def test_one_line_bounds_details() -> None:
    assert one_line("a\nb\t c") == "a b c"
    assert len(one_line("x" * 1000)) == 300
