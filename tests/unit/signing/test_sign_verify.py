"""Round trips: every algorithm, person + agency, platform, trace hops, Avro transport."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import fastavro
import pytest

from schemas.envelope import Envelope, PayloadType, Signature, SignerRole, TraceHop
from signing import (
    ReasonCode,
    SigningError,
    TrustStore,
    VerificationError,
    sign_envelope,
    verify_envelope,
)
from signing.profile import CertRole
from tests.unit.signing.conftest import (
    HANOI,
    KEY_ALGORITHMS,
    SIGN_AT,
    VERIFY_AT,
    FakeAgencies,
    TestPki,
    make_envelope,
)

EXPECTED_ALGORITHM = {
    "rsa": "rsa-pkcs1v15-sha256",
    "rsa-pss": "rsa-pss-sha256",
    "ecdsa-p256": "ecdsa-p256-sha256",
    "ed25519": "ed25519",
}


def _sign(env: Envelope, cred: object, role: SignerRole, at: object = SIGN_AT) -> Envelope:
    return sign_envelope(
        env,
        key=cred.key,  # type: ignore[attr-defined]
        chain=cred.chain,  # type: ignore[attr-defined]
        role=role,
        at=at,  # type: ignore[arg-type]
        rsa_pss=cred.rsa_pss,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("algorithm", KEY_ALGORITHMS)
def test_agency_signature_round_trip(
    algorithm: str, pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    signed = _sign(make_envelope(), pki.issue(CertRole.AGENCY, algorithm), SignerRole.AGENCY)
    sig = signed.signatures[0]
    assert sig.algorithm == EXPECTED_ALGORITHM[algorithm]
    assert sig.signing_time == "2026-03-10T09:00:00+07:00"
    sender = verify_envelope(signed, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert sender.agency_code == HANOI
    assert sender.agency_name == "Ủy ban nhân dân thành phố Hà Nội"
    assert sender.roles == (SignerRole.AGENCY,)
    assert sender.person_name is None
    assert len(sender.certificate_fingerprints[0]) == 64


def test_person_then_agency(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    person = pki.issue(CertRole.PERSON, "rsa", person="Nguyễn Văn A")
    agency = pki.issue(CertRole.AGENCY, "ecdsa-p256")
    env = _sign(make_envelope(), person, SignerRole.PERSON)
    env = _sign(env, agency, SignerRole.AGENCY)
    sender = verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert sender.roles == (SignerRole.PERSON, SignerRole.AGENCY)
    assert sender.person_name == "Nguyễn Văn A"
    assert sender.agency_code == HANOI
    assert "Nguyễn Văn A" in sender.subjects[0]


def test_agency_signature_covers_the_person_signature(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    person = pki.issue(CertRole.PERSON, "ed25519")
    agency = pki.issue(CertRole.AGENCY, "ecdsa-p256")
    env = _sign(_sign(make_envelope(), person, SignerRole.PERSON), agency, SignerRole.AGENCY)
    # A different, itself valid, person signature swapped in: the agency never endorsed it.
    other = _sign(make_envelope(), person, SignerRole.PERSON, at=SIGN_AT.replace(second=5))
    swapped = replace(env, signatures=(other.signatures[0], env.signatures[1]))
    with pytest.raises(VerificationError) as err:
        verify_envelope(swapped, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert err.value.reason is ReasonCode.BAD_SIGNATURE
    assert err.value.signature_index == 1
    # Dropping the person signature also breaks the agency's.
    with pytest.raises(VerificationError) as err:
        verify_envelope(
            replace(env, signatures=env.signatures[1:]),
            trust=trust,
            agencies=agencies,
            at=VERIFY_AT,
        )
    assert err.value.reason is ReasonCode.BAD_SIGNATURE


def test_person_signature_after_agency_is_refused(
    pki: TestPki, trust: TrustStore, agencies: FakeAgencies
) -> None:
    env = _sign(make_envelope(), pki.issue(CertRole.AGENCY), SignerRole.AGENCY)
    env = _sign(env, pki.issue(CertRole.PERSON), SignerRole.PERSON)
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert err.value.reason is ReasonCode.MALFORMED


def test_platform_signed_notice(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    notice = make_envelope(payload_type=PayloadType.STATUS_NOTICE, sender="000.00.00.G22")
    env = _sign(notice, pki.issue(CertRole.PLATFORM, "ed25519"), SignerRole.PLATFORM)
    sender = verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert sender.roles == (SignerRole.PLATFORM,)
    assert sender.agency_code is None


def test_trace_hops_are_not_signed(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    env = _sign(make_envelope(), pki.issue(), SignerRole.AGENCY)
    hopped = replace(env, trace=(TraceHop(HANOI, VERIFY_AT, "received"),))
    assert (
        verify_envelope(hopped, trust=trust, agencies=agencies, at=VERIFY_AT).agency_code == HANOI
    )


def test_survives_avro_transport(pki: TestPki, trust: TrustStore, agencies: FakeAgencies) -> None:
    """created_at loses its microseconds on the wire; the signature was over the millis."""
    env = _sign(make_envelope(), pki.issue(CertRole.AGENCY, "rsa"), SignerRole.AGENCY)
    schema_path = Path(__file__).parents[3] / "schemas/avro/envelope/v1.avsc"
    schema = fastavro.parse_schema(json.loads(schema_path.read_text(encoding="utf-8")))
    record = {
        "message_id": env.message_id,
        "payload_type": env.payload_type.value,
        "payload_schema": env.payload_schema,
        "payload": env.payload,
        "document_id": env.document_id,
        "sender": env.sender,
        "recipients": list(env.recipients),
        "created_at": env.created_at,
        "trace": [],
        "signatures": [
            {
                "role": s.role.value,
                "algorithm": s.algorithm,
                "certificate_chain": list(s.certificate_chain),
                "signing_time": s.signing_time,
                "value": s.value,
            }
            for s in env.signatures
        ],
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    buf.seek(0)
    back = fastavro.schemaless_reader(buf, schema, schema)
    assert isinstance(back, dict)
    decoded = Envelope(
        message_id=back["message_id"],
        payload_type=PayloadType(back["payload_type"]),
        payload_schema=back["payload_schema"],
        payload=back["payload"],
        document_id=back["document_id"],
        sender=back["sender"],
        recipients=tuple(back["recipients"]),
        created_at=back["created_at"],
        signatures=tuple(
            Signature(
                role=SignerRole(s["role"]),
                algorithm=s["algorithm"],
                certificate_chain=tuple(s["certificate_chain"]),
                signing_time=s["signing_time"],
                value=s["value"],
            )
            for s in back["signatures"]
        ),
    )
    assert decoded.created_at != env.created_at  # microseconds dropped
    assert (
        verify_envelope(decoded, trust=trust, agencies=agencies, at=VERIFY_AT).agency_code == HANOI
    )


def test_signing_refuses_mismatched_key_and_role(pki: TestPki) -> None:
    agency = pki.issue(CertRole.AGENCY, "ecdsa-p256")
    other_key = pki.key("ed25519")
    with pytest.raises(SigningError, match="does not match"):
        sign_envelope(
            make_envelope(), key=other_key, chain=agency.chain, role=SignerRole.AGENCY, at=SIGN_AT
        )
    with pytest.raises(SigningError, match="not a PERSON certificate"):
        sign_envelope(
            make_envelope(), key=agency.key, chain=agency.chain, role=SignerRole.PERSON, at=SIGN_AT
        )
    with pytest.raises(SigningError, match="non-empty"):
        sign_envelope(make_envelope(), key=agency.key, chain=(), role=SignerRole.AGENCY, at=SIGN_AT)
    with pytest.raises(SigningError, match="timezone-aware"):
        sign_envelope(
            make_envelope(),
            key=agency.key,
            chain=agency.chain,
            role=SignerRole.AGENCY,
            at=SIGN_AT.replace(tzinfo=None),
        )
