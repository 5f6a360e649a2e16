"""The per-process caches on the hot path (signer checks, verified signatures) make repeats
cheaper and never change an answer."""

from __future__ import annotations

import pytest

from signing import CertRole, ReasonCode, SigningError, VerificationError
from signing.algorithms import ECDSA_P256, ED25519, sign_raw, verify_raw
from signing.core import signer_cert
from signing.pki import generate_key
from tests.unit.signing.conftest import TestPki


def test_signer_check_is_remembered_only_for_the_same_key_chain_and_role(pki: TestPki) -> None:
    cred = pki.issue(CertRole.AGENCY)
    first = signer_cert(cred.key, cred.chain, CertRole.AGENCY)
    assert signer_cert(cred.key, list(cred.chain), CertRole.AGENCY) is first  # cache hit
    # The same chain with another key, or in a role the certificate lacks: still refused.
    with pytest.raises(SigningError, match="does not match"):
        signer_cert(generate_key("ecdsa-p256"), cred.chain, CertRole.AGENCY)
    with pytest.raises(SigningError, match="not a PERSON certificate"):
        signer_cert(cred.key, cred.chain, CertRole.PERSON)
    # And after a refusal the good combination still signs.
    assert signer_cert(cred.key, cred.chain, CertRole.AGENCY) is first


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_a_remembered_verification_does_not_pass_other_bytes_values_or_keys(
    algorithm: str,
) -> None:
    base = "ecdsa-p256" if algorithm == ECDSA_P256 else "ed25519"
    key, other = generate_key(base), generate_key(base)
    data = b"Quyet dinh 4612/QD-UBND"
    value = sign_raw(key, algorithm, data)
    public = key.public_key()
    verify_raw(public, algorithm, value, data)
    verify_raw(public, algorithm, value, data)  # remembered: passes again
    for args in (
        (public, algorithm, value, data + b"."),  # other bytes
        (public, algorithm, sign_raw(other, algorithm, data), data),  # another key's value
        (other.public_key(), algorithm, value, data),  # another key
    ):
        with pytest.raises(VerificationError) as err:
            verify_raw(*args)
        assert err.value.reason is ReasonCode.BAD_SIGNATURE


def test_a_failed_verification_is_never_remembered() -> None:
    key = generate_key("ecdsa-p256")
    public = key.public_key()
    data = b"Ke hoach 190/KH-UBND"
    forged = sign_raw(generate_key("ecdsa-p256"), ECDSA_P256, data)
    for _ in range(2):
        with pytest.raises(VerificationError):
            verify_raw(public, ECDSA_P256, forged, data)
