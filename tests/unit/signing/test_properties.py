"""Property tests: whatever bytes arrive, the verifier raises VerificationError and nothing else."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography import x509
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.envelope import Envelope, SignerRole
from signing import TrustStore, VerificationError, sign_envelope, verify_envelope
from signing.profile import CertRole
from tests.unit.signing.conftest import SIGN_AT, VERIFY_AT, FakeAgencies, TestPki, make_envelope

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def signed_pair(pki: TestPki) -> dict[str, Envelope]:
    """Person (RSA) + agency (ECDSA), and an Ed25519 agency-only envelope."""
    person, agency = pki.issue(CertRole.PERSON, "rsa"), pki.issue(CertRole.AGENCY, "ecdsa-p256")
    env = sign_envelope(
        make_envelope(), key=person.key, chain=person.chain, role=SignerRole.PERSON, at=SIGN_AT
    )
    env = sign_envelope(env, key=agency.key, chain=agency.chain, role=SignerRole.AGENCY, at=SIGN_AT)
    ed = pki.issue(CertRole.AGENCY, "ed25519")
    single = sign_envelope(
        make_envelope(), key=ed.key, chain=ed.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )
    return {"double": env, "single": single}


def _refused(env: Envelope, trust: TrustStore, agencies: FakeAgencies) -> None:
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert err.value.reason  # a ReasonCode, always


def _replace_sig(env: Envelope, index: int, **changes: object) -> Envelope:
    sigs = list(env.signatures)
    sigs[index % len(sigs)] = replace(sigs[index % len(sigs)], **changes)
    return replace(env, signatures=tuple(sigs))


def test_baseline_verifies(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies
) -> None:
    for env in signed_pair.values():
        assert verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT).agency_code


@SETTINGS
@given(
    which=st.sampled_from(["double", "single"]),
    index=st.integers(0, 1),
    value=st.binary(max_size=600),
)
def test_random_signature_value(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    which: str, index: int, value: bytes,
) -> None:  # fmt: skip
    env = signed_pair[which]
    assume(value != env.signatures[index % len(env.signatures)].value)
    _refused(_replace_sig(env, index, value=value), trust, agencies)


@SETTINGS
@given(
    which=st.sampled_from(["double", "single"]),
    index=st.integers(0, 1),
    chain=st.lists(st.binary(max_size=400), max_size=8),
)
def test_random_certificate_chain(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    which: str, index: int, chain: list[bytes],
) -> None:  # fmt: skip
    _refused(
        _replace_sig(signed_pair[which], index, certificate_chain=tuple(chain)), trust, agencies
    )


@SETTINGS
@given(
    which=st.sampled_from(["double", "single"]),
    cert_index=st.integers(0, 1),
    position=st.integers(0, 10_000),
    xor=st.integers(1, 255),
)
def test_mutated_certificate_byte(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    which: str, cert_index: int, position: int, xor: int,
) -> None:  # fmt: skip
    """One byte of a real certificate changed: parseable-looking DER, the nastiest input."""
    env = signed_pair[which]
    sig = env.signatures[-1]
    chain = list(sig.certificate_chain)
    der = chain[cert_index]
    pos = position % len(der)
    chain[cert_index] = der[:pos] + bytes([der[pos] ^ xor]) + der[pos + 1 :]
    tampered = _replace_sig(env, -1, certificate_chain=tuple(chain))
    if cert_index == 0:  # the signer certificate's exact DER is signed (its SHA-256 is in the TBS)
        _refused(tampered, trust, agencies)
        return
    # An intermediate is not covered by the signature; the only acceptable way for a changed
    # one to pass is an alternative encoding of the very same CA-signed content.
    try:
        verify_envelope(tampered, trust=trust, agencies=agencies, at=VERIFY_AT)
    except VerificationError:
        return
    original = x509.load_der_x509_certificate(der)
    mutated = x509.load_der_x509_certificate(chain[cert_index])
    assert mutated.tbs_certificate_bytes == original.tbs_certificate_bytes
    assert mutated.signature == original.signature


@SETTINGS
@given(which=st.sampled_from(["double", "single"]), payload=st.binary(max_size=2000))
def test_random_payload(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    which: str, payload: bytes,
) -> None:  # fmt: skip
    env = signed_pair[which]
    assume(payload != env.payload)
    _refused(replace(env, payload=payload), trust, agencies)


@SETTINGS
@given(
    index=st.integers(0, 1),
    algorithm=st.text(max_size=30),
    signing_time=st.text(max_size=40),
    role=st.text(max_size=10),
)
def test_random_signature_metadata(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    index: int, algorithm: str, signing_time: str, role: str,
) -> None:  # fmt: skip
    env = signed_pair["double"]
    original = env.signatures[index]
    assume(algorithm != original.algorithm or signing_time != original.signing_time)
    tampered = _replace_sig(env, index, algorithm=algorithm, signing_time=signing_time, role=role)
    _refused(tampered, trust, agencies)


@SETTINGS
@given(sender=st.text(max_size=20), recipients=st.lists(st.text(max_size=15), max_size=4))
def test_random_routing_fields(
    signed_pair: dict[str, Envelope], trust: TrustStore, agencies: FakeAgencies,
    sender: str, recipients: list[str],
) -> None:  # fmt: skip
    env = signed_pair["single"]
    assume(sender != env.sender or tuple(recipients) != env.recipients)
    _refused(replace(env, sender=sender, recipients=tuple(recipients)), trust, agencies)
