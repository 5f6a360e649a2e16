"""The TrustStore chain cache: repeated chains get cheaper, never more trusted."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.envelope import Envelope, SignerRole
from signing import (
    CertRole,
    ReasonCode,
    TrustStore,
    VerificationError,
    sign_blob,
    sign_envelope,
    verify_blob,
    verify_envelope,
)
from signing.pki import RevokedEntry
from signing.trust import CHAIN_CACHE_SIZE
from tests.unit.signing.conftest import (
    GOV_OFFICE,
    HANOI,
    ISSUED_AT,
    SIGN_AT,
    VERIFY_AT,
    Credential,
    FakeAgencies,
    TestPki,
    make_envelope,
)

# pki.issue(days=69) from ISSUED_AT ends 2026-03-11 08:00: just after SIGN_AT.
SHORT_LIVED_DAYS = 69


def _signed(cred: Credential, at: datetime = SIGN_AT, **changes: object) -> Envelope:
    if at != SIGN_AT:
        changes = {"created_at": at} | changes  # keep signing_time >= created_at
    env = make_envelope(**changes)
    return sign_envelope(
        env, key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=at, rsa_pss=cred.rsa_pss
    )


def _verify(env: Envelope, trust: TrustStore, agencies: FakeAgencies, at: datetime) -> str:
    """The agency code on success, else the reason code: one comparable outcome."""
    try:
        sender = verify_envelope(env, trust=trust, agencies=agencies, at=at)
    except VerificationError as err:
        return str(err.reason)
    return f"OK {sender.agency_code} {sender.subjects} {sender.certificate_fingerprints}"


def _reason(env: Envelope, trust: TrustStore, agencies: FakeAgencies, at: datetime) -> ReasonCode:
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=trust, agencies=agencies, at=at)
    return err.value.reason


def _serial(cred: Credential) -> int:
    return x509.load_der_x509_certificate(cred.chain[0]).serial_number


@pytest.mark.parametrize("algorithm", ["rsa", "rsa-pss", "ecdsa-p256", "ed25519"])
def test_same_chain_twice_gives_the_same_identity(
    algorithm: str, pki: TestPki, agencies: FakeAgencies
) -> None:
    trust = pki.trust()
    person = pki.issue(CertRole.PERSON, algorithm)
    agency = pki.issue(CertRole.AGENCY, algorithm)
    env = sign_envelope(
        make_envelope(), key=person.key, chain=person.chain, role=SignerRole.PERSON, at=SIGN_AT
    )
    env = sign_envelope(
        env,
        key=agency.key,
        chain=agency.chain,
        role=SignerRole.AGENCY,
        at=SIGN_AT,
        rsa_pss=agency.rsa_pss,
    )
    cold = verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert trust.cached_chain(person.chain) is not None
    assert trust.cached_chain(agency.chain) is not None
    warm = verify_envelope(env, trust=trust, agencies=agencies, at=VERIFY_AT)
    assert warm == cold
    # And the same as a store that never saw the chains.
    assert verify_envelope(env, trust=pki.trust(), agencies=agencies, at=VERIFY_AT) == cold
    assert warm.person_name == "Nguyễn Văn A"
    assert warm.agency_code == HANOI


def test_failed_chains_stay_failing_and_are_not_cached(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    trust = pki.trust()
    missing_intermediate = pki.issue()
    env = _signed(Credential(missing_intermediate.key, missing_intermediate.chain[:1]))
    for _ in range(3):
        assert _reason(env, trust, agencies, VERIFY_AT) is ReasonCode.UNTRUSTED_CHAIN
    assert trust.cached_chain_count() == 0

    expired = pki.issue(days=30)
    for _ in range(3):
        assert _reason(_signed(expired), trust, agencies, VERIFY_AT) is ReasonCode.CERT_EXPIRED
    assert trust.cached_chain(expired.chain) is None


def test_bad_signature_on_a_cached_chain(pki: TestPki, agencies: FakeAgencies) -> None:
    trust = pki.trust()
    env = _signed(pki.issue(CertRole.AGENCY, "ed25519"))
    assert _verify(env, trust, agencies, VERIFY_AT).startswith("OK")
    tampered = replace(env, payload=env.payload + b".")
    assert _reason(tampered, trust, agencies, VERIFY_AT) is ReasonCode.BAD_SIGNATURE
    other_sender = _signed(pki.issue(CertRole.AGENCY, "ed25519"), sender=GOV_OFFICE)
    assert _reason(other_sender, trust, agencies, VERIFY_AT) is ReasonCode.SENDER_MISMATCH


def test_chain_cached_for_one_role_is_refused_for_another(pki: TestPki) -> None:
    trust = pki.trust()
    agency = pki.issue(CertRole.AGENCY, "ed25519")
    sig = sign_blob(b"head", key=agency.key, chain=agency.chain, at=SIGN_AT, role=CertRole.AGENCY)
    assert verify_blob(b"head", sig, trust=trust, at=VERIFY_AT, role=CertRole.AGENCY).agency_code
    assert trust.cached_chain(agency.chain) is not None
    for _ in range(2):
        with pytest.raises(VerificationError) as err:
            verify_blob(b"head", sig, trust=trust, at=VERIFY_AT)  # expects ARCHIVE
        assert err.value.reason is ReasonCode.WRONG_KEY_USAGE


def test_revoked_after_a_first_success_is_refused(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    env = _signed(cred)
    before = pki.trust()
    assert _verify(env, before, agencies, VERIFY_AT).startswith("OK")
    assert _verify(env, before, agencies, VERIFY_AT).startswith("OK")
    # A new CRL means a new TrustStore: nothing validated under the old one carries over.
    after = pki.trust([RevokedEntry(_serial(cred), SIGN_AT - timedelta(days=1))])
    for _ in range(2):
        assert _reason(env, after, agencies, VERIFY_AT) is ReasonCode.REVOKED
    assert after.cached_chain(cred.chain) is None


def test_revocation_is_checked_on_every_call_against_the_signing_time(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    cred = pki.issue()
    revoked_at = SIGN_AT + timedelta(days=1)
    trust = pki.trust([RevokedEntry(_serial(cred), revoked_at, x509.ReasonFlags.superseded)])
    assert _verify(_signed(cred), trust, agencies, VERIFY_AT).startswith("OK")
    assert trust.cached_chain(cred.chain) is not None  # cached while valid ...
    later = SIGN_AT + timedelta(days=2)
    # ... and still refused for a signature made after the revocation.
    assert _reason(_signed(cred, at=later), trust, agencies, later) is ReasonCode.REVOKED
    assert _verify(_signed(cred), trust, agencies, VERIFY_AT).startswith("OK")


def test_key_compromise_is_never_cached_into_success(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    entry = RevokedEntry(
        _serial(cred), SIGN_AT + timedelta(days=1), x509.ReasonFlags.key_compromise
    )
    trust = pki.trust([entry])
    for _ in range(3):
        assert _reason(_signed(cred), trust, agencies, VERIFY_AT) is ReasonCode.REVOKED


def test_expired_at_signing_time_after_an_earlier_success(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    trust = pki.trust()
    cred = pki.issue(days=SHORT_LIVED_DAYS)
    assert _verify(_signed(cred), trust, agencies, VERIFY_AT).startswith("OK")
    entry = trust.cached_chain(cred.chain)
    assert entry is not None
    assert entry.not_after == min(c.not_valid_after_utc for c in entry.path)
    assert entry.not_before == max(c.not_valid_before_utc for c in entry.path)
    later = SIGN_AT + timedelta(days=2)
    assert _reason(_signed(cred, at=later), trust, agencies, later) is ReasonCode.CERT_EXPIRED
    earlier = ISSUED_AT - timedelta(days=1)
    assert _reason(_signed(cred, at=earlier), trust, agencies, earlier) is (
        ReasonCode.CERT_NOT_YET_VALID
    )
    # A certificate that expired after signing still does not void the signature.
    assert _verify(_signed(cred), trust, agencies, later).startswith("OK")


def test_trust_stores_with_different_anchors_share_nothing(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    ours = pki.trust()
    external = TestPki()
    theirs = TrustStore((external.root,))
    cred = pki.issue()
    env = _signed(cred)
    assert _verify(env, ours, agencies, VERIFY_AT).startswith("OK")
    assert ours.cached_chain(cred.chain) is not None
    for _ in range(2):
        assert _reason(env, theirs, agencies, VERIFY_AT) is ReasonCode.UNTRUSTED_CHAIN
    assert theirs.cached_chain_count() == 0
    # Equal configuration is still a separate cache.
    assert TrustStore(ours.anchors, ours.crls).cached_chain(cred.chain) is None


def test_the_cache_is_a_bounded_lru(pki: TestPki, agencies: FakeAgencies) -> None:
    assert pki.trust().chain_cache_size == CHAIN_CACHE_SIZE == 4096
    base = pki.trust()
    trust = TrustStore(base.anchors, base.crls, chain_cache_size=2)
    creds = [pki.issue() for _ in range(3)]
    envs = [_signed(c) for c in creds]
    _verify(envs[0], trust, agencies, VERIFY_AT)
    _verify(envs[1], trust, agencies, VERIFY_AT)
    assert trust.cached_chain(creds[0].chain) is not None  # touch: chain 1 becomes the oldest
    _verify(envs[2], trust, agencies, VERIFY_AT)
    assert trust.cached_chain_count() == 2
    assert trust.cached_chain(creds[1].chain) is None
    assert trust.cached_chain(creds[0].chain) is not None
    assert trust.cached_chain(creds[2].chain) is not None
    # An evicted chain is simply validated again.
    assert _verify(envs[1], trust, agencies, VERIFY_AT).startswith("OK")
    assert trust.cached_chain_count() == 2


def test_chains_that_are_not_plain_bytes_bypass_the_cache(pki: TestPki) -> None:
    trust = pki.trust()

    class Sneaky(bytes):
        pass

    cred = pki.issue()
    assert trust.cached_chain([Sneaky(c) for c in cred.chain]) is None
    assert trust.cached_chain("junk") is None  # type: ignore[arg-type]
    assert trust.cached_chain([b"x", 3]) is None  # type: ignore[list-item]


@pytest.fixture(scope="module")
def timeline(pki: TestPki) -> tuple[Credential, TrustStore]:
    """A short-lived certificate revoked (superseded) the day after SIGN_AT, warmed once."""
    cred = pki.issue(CertRole.AGENCY, "ed25519", days=SHORT_LIVED_DAYS)
    entry = RevokedEntry(_serial(cred), SIGN_AT + timedelta(hours=12), x509.ReasonFlags.superseded)
    return cred, pki.trust([entry])


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset_minutes=st.integers(-20 * 24 * 60, 80 * 24 * 60), lag=st.integers(-10, 600))
def test_warm_and_cold_stores_always_agree(
    timeline: tuple[Credential, TrustStore],
    agencies: FakeAgencies,
    offset_minutes: int,
    lag: int,
) -> None:
    """At any signing and verifying time, a warm store answers what a fresh one answers."""
    cred, warm = timeline
    assert _verify(_signed(cred), warm, agencies, VERIFY_AT).startswith("OK")  # warm it
    at = ISSUED_AT + timedelta(minutes=offset_minutes)
    env = _signed(cred, at=at)
    verify_at = at + timedelta(minutes=lag)
    cold = TrustStore(warm.anchors, warm.crls)
    assert _verify(env, warm, agencies, verify_at) == _verify(env, cold, agencies, verify_at)
