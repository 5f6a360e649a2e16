"""Micro-benchmark: sign/verify through lienthong's API next to the raw cryptography call.

Verification is measured twice: "cold" verifies a chain the TrustStore has never seen (a new
store per call, so path building, signature checks on the chain and the profile checks all
run), "warm" verifies a chain the store already validated (the steady state: the same agency
certificates arrive over and over). Each rate is the median of RUNS runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from schemas.envelope import Envelope, PayloadType, SignerRole
from signing.algorithms import PrivateKey
from signing.envelope import sign_envelope, verify_envelope
from signing.pki import chain_der, create_root_ca, generate_key, issue_certificate
from signing.profile import CertRole
from signing.tbs import envelope_tbs
from signing.trust import TrustStore

VN = timezone(timedelta(hours=7))
RUNS = 3
AT = datetime(2026, 3, 10, 9, 0, tzinfo=VN)


class _OpenAgencies:
    def lookup(self, code: str) -> object | None:
        return code

    def is_open(self, code: str, at: datetime | date) -> bool:
        return True


def _rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def _median_rate(fn: Callable[[], object], seconds: float, runs: int = RUNS) -> float:
    # A shared 2-core box is noisy: the median of a few runs is steadier than one.
    return statistics.median(_rate(fn, seconds) for _ in range(runs))


ALGORITHM_CASES = (
    ("rsa-pkcs1v15-sha256", "rsa", False),
    ("rsa-pss-sha256", "rsa", True),
    ("ecdsa-p256-sha256", "ecdsa-p256", False),
    ("ed25519", "ed25519", False),
)


def measure(seconds: float = 0.5) -> list[tuple[str, str, float, float]]:
    """(algorithm, operation, ours per second, raw per second) for every algorithm."""
    ca_key = generate_key("ed25519")
    ca = create_root_ca(ca_key, now=AT - timedelta(days=1))
    trust = TrustStore((ca,))
    envelope = Envelope(
        message_id="bench",
        payload_type=PayloadType.OFFICIAL_DOCUMENT,
        payload_schema="vn.lienthong.v1.OfficialDocument@0123456789abcdef",
        payload=b"x" * 4096,
        document_id="000.00.00.H26,2019/08/28,4612/QD-UBND",
        sender="000.00.00.H26",
        recipients=tuple(f"000.00.{i:02d}.H26" for i in range(1, 16)),
        created_at=AT,
    )
    return [
        (name, op, ours, raw)
        for name, key_alg, pss in ALGORITHM_CASES
        for op, ours, raw in _bench_one(name, key_alg, pss, envelope, (ca_key, ca), trust, seconds)
    ]


def main(seconds: float = 0.5) -> None:
    header = f"{'algorithm':<22}{'op':<14}{'ours/s':>10}{'raw/s':>10}{'ours/raw':>10}"
    print(f"{header}   (median of {RUNS} runs of {seconds}s)")
    for name, op, ours_rate, raw_rate in measure(seconds):
        ratio = ours_rate / raw_rate
        print(f"{name:<22}{op:<14}{ours_rate:>10.0f}{raw_rate:>10.0f}{ratio:>10.2f}")


def _raw_calls(
    key: PrivateKey, name: str, tbs: bytes, value: bytes
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The bare cryptography sign and verify calls on the same bytes."""
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    if isinstance(key, rsa.RSAPrivateKey):
        pad = pss if name == "rsa-pss-sha256" else padding.PKCS1v15()
        rsa_pub = key.public_key()
        return (
            lambda: key.sign(tbs, pad, hashes.SHA256()),
            lambda: rsa_pub.verify(value, tbs, pad, hashes.SHA256()),
        )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_pub = key.public_key()
        return (
            lambda: key.sign(tbs, ec.ECDSA(hashes.SHA256())),
            lambda: ec_pub.verify(value, tbs, ec.ECDSA(hashes.SHA256())),
        )
    ed_pub = key.public_key()
    return (lambda: key.sign(tbs), lambda: ed_pub.verify(value, tbs))


def _bench_one(
    name: str,
    key_alg: str,
    pss: bool,
    envelope: Envelope,
    issuer: tuple[PrivateKey, x509.Certificate],
    trust: TrustStore,
    seconds: float,
) -> list[tuple[str, float, float]]:
    ca_key, ca = issuer
    key = generate_key(key_alg)
    cert = issue_certificate(
        key,
        role=CertRole.AGENCY,
        agency_code="000.00.00.H26",
        agency_name="UBND thành phố Hà Nội",
        issuer_key=ca_key,
        issuer_cert=ca,
        now=AT - timedelta(days=1),
    )
    chain = chain_der([cert])
    signed = sign_envelope(
        envelope, key=key, chain=chain, role=SignerRole.AGENCY, at=AT, rsa_pss=pss
    )
    sig = signed.signatures[0]
    tbs = envelope_tbs(
        envelope,
        role="AGENCY",
        algorithm=name,
        signing_time=sig.signing_time,
        signer_certificate=chain[0],
        preceding=(),
    )
    raw_sign, raw_verify = _raw_calls(key, name, tbs, sig.value)
    agencies = _OpenAgencies()

    def ours_sign() -> object:
        return sign_envelope(
            envelope, key=key, chain=chain, role=SignerRole.AGENCY, at=AT, rsa_pss=pss
        )

    def ours_verify_warm() -> object:
        return verify_envelope(signed, trust=trust, agencies=agencies, at=AT)

    def ours_verify_cold() -> object:
        # A fresh store has an empty cache: the chain is "first seen" on every call.
        fresh = TrustStore(trust.anchors, trust.crls)
        return verify_envelope(signed, trust=fresh, agencies=agencies, at=AT)

    raw_verify_rate = _median_rate(raw_verify, seconds)
    return [
        ("sign", _median_rate(ours_sign, seconds), _median_rate(raw_sign, seconds)),
        ("verify cold", _median_rate(ours_verify_cold, seconds), raw_verify_rate),
        ("verify warm", _median_rate(ours_verify_warm, seconds), raw_verify_rate),
    ]


if __name__ == "__main__":
    main()
