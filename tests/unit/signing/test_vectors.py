"""Known-answer vectors, and a verifier with no lienthong code (hand-rolled Avro + raw hazmat)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from schemas.envelope import Envelope, PayloadType, Signature, SignerRole
from signing import TrustStore, load_certificates, load_private_key, sign_envelope, verify_envelope
from signing.tbs import envelope_tbs
from tests.unit.signing.conftest import FakeAgencies

DATA: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "envelope_vectors.json").read_text(encoding="utf-8")
)
VECTORS = {v["algorithm"]: v for v in DATA["vectors"]}
DETERMINISTIC = ("rsa-pkcs1v15-sha256", "ed25519")
VERIFY_AT = datetime.fromisoformat(DATA["verify_at"])


def _envelope() -> Envelope:
    e = DATA["envelope"]
    return Envelope(
        message_id=e["message_id"],
        payload_type=PayloadType(e["payload_type"]),
        payload_schema=e["payload_schema"],
        payload=bytes.fromhex(e["payload_hex"]),
        document_id=e["document_id"],
        sender=e["sender"],
        recipients=tuple(e["recipients"]),
        created_at=datetime.fromisoformat(e["created_at"]),
    )


def _chain(v: dict[str, Any]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(c) for c in v["certificate_chain_der_hex"])


def test_all_four_algorithms_have_a_vector() -> None:
    assert sorted(VECTORS) == sorted(
        ["rsa-pkcs1v15-sha256", "rsa-pss-sha256", "ecdsa-p256-sha256", "ed25519"]
    )


@pytest.mark.parametrize("algorithm", sorted(VECTORS))
def test_tbs_bytes_are_stable(algorithm: str) -> None:
    v = VECTORS[algorithm]
    tbs = envelope_tbs(
        _envelope(),
        role="AGENCY",
        algorithm=algorithm,
        signing_time=v["signing_time"],
        signer_certificate=_chain(v)[0],
        preceding=(),
    )
    assert tbs.hex() == v["tbs_hex"]


@pytest.mark.parametrize("algorithm", DETERMINISTIC)
def test_deterministic_signature_known_answer(algorithm: str) -> None:
    v = VECTORS[algorithm]
    signed = sign_envelope(
        _envelope(),
        key=load_private_key(v["private_key_pem"].encode()),
        chain=_chain(v),
        role=SignerRole.AGENCY,
        at=datetime.fromisoformat(v["signing_time"]),
    )
    assert signed.signatures[0].algorithm == algorithm
    assert signed.signatures[0].value.hex() == v["signature_hex"]


@pytest.mark.parametrize("algorithm", sorted(VECTORS))
def test_committed_signature_verifies(algorithm: str) -> None:
    v = VECTORS[algorithm]
    sig = Signature(
        role=SignerRole.AGENCY,
        algorithm=algorithm,
        certificate_chain=_chain(v),
        signing_time=v["signing_time"],
        value=bytes.fromhex(v["signature_hex"]),
    )
    env = replace(_envelope(), signatures=(sig,))
    trust = TrustStore(tuple(load_certificates(DATA["root_ca_pem"].encode())))
    agencies = FakeAgencies({"000.00.00.H26": (date(2008, 8, 1), None)})
    sender = verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert sender.agency_code == "000.00.00.H26"
    assert sender.signatures[0].algorithm == algorithm


# --- an outside verifier: the Avro binary encoding written out by hand from docs/signing.md ---


def _long(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _long(len(raw)) + raw


def _outside_tbs(env: dict[str, Any], v: dict[str, Any]) -> bytes:
    created = datetime.fromisoformat(env["created_at"])
    created_ms = _millis(created)
    recipients = env["recipients"]
    leaf = bytes.fromhex(v["certificate_chain_der_hex"][0])
    return (
        b"LIENTHONG-SIGNED-ENVELOPE-V1\x00"
        + _string(env["message_id"])
        + _string(env["payload_type"])
        + _string(env["payload_schema"])
        + hashlib.sha256(bytes.fromhex(env["payload_hex"])).digest()
        + _string(env["document_id"])
        + _string(env["sender"])
        + (_long(len(recipients)) + b"".join(_string(r) for r in recipients) if recipients else b"")
        + b"\x00"
        + _long(created_ms)
        + _string("AGENCY")
        + _string(v["algorithm"])
        + _string(v["signing_time"])
        + hashlib.sha256(leaf).digest()
        + b"\x00"  # no preceding signatures: empty array
    )


def _millis(moment: datetime) -> int:
    # Floored milliseconds since the Unix epoch, in integers (no float rounding).
    delta = moment - datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@pytest.mark.parametrize("algorithm", sorted(VECTORS))
def test_outside_verifier(algorithm: str) -> None:
    v = VECTORS[algorithm]
    tbs = _outside_tbs(DATA["envelope"], v)
    assert tbs.hex() == v["tbs_hex"]
    key = x509.load_der_x509_certificate(
        bytes.fromhex(v["certificate_chain_der_hex"][0])
    ).public_key()
    value = bytes.fromhex(v["signature_hex"])
    if algorithm == "rsa-pkcs1v15-sha256":
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(value, tbs, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm == "rsa-pss-sha256":
        assert isinstance(key, rsa.RSAPublicKey)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.verify(value, tbs, pss, hashes.SHA256())
    elif algorithm == "ecdsa-p256-sha256":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(value, tbs, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(value, tbs)
