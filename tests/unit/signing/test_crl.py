"""CRLs that travel (signing.crl): who may sign one, which one is newer, when one is stale, and
the trust store they make at a given time. Known times, no clock read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from schemas.envelope import Envelope, SignerRole
from signing import ReasonCode, VerificationError, sign_envelope, verify_envelope
from signing.crl import (
    CrlRefused,
    CrlSet,
    Freshness,
    TrustMaterial,
    VerifiedCrl,
    freshness,
    load_issuer_chain,
    seconds_until_next_update,
    supersedes,
    verify_crl,
)
from signing.pki import (
    RevokedEntry,
    build_crl,
    certificate_pem,
    create_intermediate_ca,
    create_root_ca,
    generate_key,
)
from signing.trust import TrustStore
from tests.unit.signing.conftest import (
    ISSUED_AT,
    SIGN_AT,
    VERIFY_AT,
    Credential,
    FakeAgencies,
    TestPki,
    make_envelope,
)

GRACE = timedelta(hours=24)


def _crl(pki: TestPki, *, number: int | None, at=ISSUED_AT, revoked=(), days: int = 7) -> bytes:  # type: ignore[no-untyped-def]
    crl = build_crl(
        issuer_key=pki.ca_key,
        issuer_cert=pki.ca,
        revoked=list(revoked),
        now=at,
        next_update_days=days,
        number=number,
    )
    return crl.public_bytes(Encoding.DER)


def _verified(pki: TestPki, data: bytes, at=VERIFY_AT) -> VerifiedCrl:  # type: ignore[no-untyped-def]
    return verify_crl(data, TrustStore((pki.root,)), at=at, issuer_chain=(pki.ca,))


def _signed(cred: Credential) -> Envelope:
    return sign_envelope(
        make_envelope(), key=cred.key, chain=cred.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )


def _serial(cred: Credential) -> int:
    return x509.load_der_x509_certificate(cred.chain[0]).serial_number


# --- who may sign a CRL ----------------------------------------------------------------------


def test_a_crl_of_the_issuing_ca_verifies_with_its_chain_to_the_anchor(pki: TestPki) -> None:
    crl = _verified(pki, _crl(pki, number=3))
    assert crl.number == 3 and crl.issuer == pki.ca.subject
    assert crl.next_update == crl.this_update + timedelta(days=7)
    # Without the issuer's certificate nothing says who signed it: refused.
    with pytest.raises(CrlRefused, match="not signed by a configured CA"):
        verify_crl(_crl(pki, number=3), TrustStore((pki.root,)), at=VERIFY_AT)


def test_a_crl_of_an_anchor_verifies_without_a_chain(pki: TestPki) -> None:
    crl = build_crl(issuer_key=pki.root_key, issuer_cert=pki.root, revoked=[], now=ISSUED_AT)
    got = verify_crl(crl.public_bytes(Encoding.PEM), TrustStore((pki.root,)), at=VERIFY_AT)
    assert got.issuer == pki.root.subject and got.number is None


def test_a_crl_from_a_foreign_ca_of_the_same_name_is_refused(pki: TestPki) -> None:
    """A forger names our issuing CA and signs with its own key: refused with or without a
    chain, whether the chain is the real one or its own."""
    foreign_root_key = generate_key("ecdsa-p256")
    foreign_root = create_root_ca(foreign_root_key, now=ISSUED_AT - timedelta(days=30))
    forged_key = generate_key("ecdsa-p256")
    forged_ca = create_intermediate_ca(
        forged_key, issuer_key=foreign_root_key, issuer_cert=foreign_root, now=ISSUED_AT
    )
    assert forged_ca.subject == pki.ca.subject  # same name, other key
    forged = build_crl(
        issuer_key=forged_key, issuer_cert=forged_ca, revoked=[], now=ISSUED_AT, number=99
    ).public_bytes(Encoding.DER)
    trust = TrustStore((pki.root,))
    with pytest.raises(CrlRefused):
        verify_crl(forged, trust, at=VERIFY_AT)
    with pytest.raises(CrlRefused, match="not trusted"):
        verify_crl(forged, trust, at=VERIFY_AT, issuer_chain=(forged_ca,))
    with pytest.raises(CrlRefused, match="not signed by a configured CA"):
        verify_crl(forged, trust, at=VERIFY_AT, issuer_chain=(pki.ca,))


@pytest.mark.parametrize("data", [b"", b"not a CRL", b"-----BEGIN X509 CRL-----\nAAAA\n"])
def test_garbage_is_refused(pki: TestPki, data: bytes) -> None:
    with pytest.raises(CrlRefused):
        verify_crl(data, TrustStore((pki.root,)), at=VERIFY_AT, issuer_chain=(pki.ca,))


def test_issuer_chain_header_parses_pem(pki: TestPki) -> None:
    assert load_issuer_chain(certificate_pem(pki.ca)) == (pki.ca,)
    assert load_issuer_chain(b"") == ()
    with pytest.raises(CrlRefused):
        load_issuer_chain(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- ordering --------------------------------------------------------------------------------


def test_a_higher_number_supersedes_a_lower_one_never_the_reverse(pki: TestPki) -> None:
    old = _verified(pki, _crl(pki, number=4))
    new = _verified(pki, _crl(pki, number=5, at=ISSUED_AT + timedelta(hours=1)))
    assert supersedes(new, old) and not supersedes(old, new)
    assert not supersedes(old, old)  # the same CRL again changes nothing
    assert supersedes(old, None)


def test_the_number_decides_within_one_second(pki: TestPki) -> None:
    first = _verified(pki, _crl(pki, number=6))
    second = _verified(pki, _crl(pki, number=7))  # same thisUpdate: two revocations at once
    assert supersedes(second, first) and not supersedes(first, second)


def test_a_higher_number_dated_earlier_is_kept_out(pki: TestPki) -> None:
    current = _verified(pki, _crl(pki, number=5, at=ISSUED_AT + timedelta(days=1)))
    odd = _verified(pki, _crl(pki, number=9, at=ISSUED_AT))
    assert not supersedes(odd, current)


def test_without_numbers_this_update_decides(pki: TestPki) -> None:
    old = _verified(pki, _crl(pki, number=None))
    new = _verified(pki, _crl(pki, number=None, at=ISSUED_AT + timedelta(minutes=1)))
    assert supersedes(new, old) and not supersedes(old, new) and not supersedes(old, old)
    # A numbered CRL against an unnumbered one (a PKI from before numbering): by date too.
    numbered = _verified(pki, _crl(pki, number=1, at=ISSUED_AT + timedelta(minutes=2)))
    assert supersedes(numbered, new) and not supersedes(new, numbered)


def test_crls_of_different_issuers_are_not_ordered(pki: TestPki) -> None:
    root_crl = VerifiedCrl.configured(
        build_crl(issuer_key=pki.root_key, issuer_cert=pki.root, revoked=[], now=ISSUED_AT)
    )
    with pytest.raises(ValueError):
        supersedes(root_crl, _verified(pki, _crl(pki, number=1)))


def test_a_crl_set_keeps_the_newest_per_issuer(pki: TestPki) -> None:
    base = pki.trust()  # an unnumbered CRL of the issuing CA from ISSUED_AT
    crls = CrlSet.of(base)
    newer = _verified(pki, _crl(pki, number=2, at=ISSUED_AT + timedelta(hours=1)))
    crls, applied = crls.offer(newer)
    assert applied and crls.current(pki.ca.subject) is newer
    older = _verified(pki, _crl(pki, number=1, at=ISSUED_AT + timedelta(minutes=30)))
    same, applied = crls.offer(older)
    assert not applied and same is crls and crls.current(pki.ca.subject) is newer


# --- staleness -------------------------------------------------------------------------------


def test_freshness_follows_the_given_clock(pki: TestPki) -> None:
    crl = _verified(pki, _crl(pki, number=1, days=7))
    assert crl.next_update is not None
    at_next = crl.next_update
    assert freshness(crl, at_next - timedelta(seconds=1), GRACE) is Freshness.FRESH
    assert freshness(crl, at_next, GRACE) is Freshness.FRESH
    assert freshness(crl, at_next + timedelta(seconds=1), GRACE) is Freshness.STALE
    assert freshness(crl, at_next + GRACE, GRACE) is Freshness.STALE
    assert freshness(crl, at_next + GRACE + timedelta(seconds=1), GRACE) is Freshness.EXPIRED
    assert freshness(crl, at_next + timedelta(seconds=1), timedelta(0)) is Freshness.EXPIRED
    assert seconds_until_next_update(crl, at_next - timedelta(hours=1)) == 3600
    assert seconds_until_next_update(crl, at_next + timedelta(hours=1)) == -3600


def test_a_stale_crl_fails_closed_only_after_the_grace(
    pki: TestPki, agencies: FakeAgencies
) -> None:
    """Verification is judged at VERIFY_AT; the store is built at the feed's time."""
    cred = pki.issue()
    env = _signed(cred)
    crls = CrlSet.of(TrustStore((pki.root,)))
    crls, _ = crls.offer(_verified(pki, _crl(pki, number=1, days=7)))
    next_update = ISSUED_AT + timedelta(days=7)

    within = crls.trust_at(next_update + GRACE - timedelta(minutes=1), GRACE)
    assert verify_envelope(env, trust=within, agencies=agencies, at=VERIFY_AT).agency_code

    beyond = crls.trust_at(next_update + GRACE + timedelta(minutes=1), GRACE)
    assert beyond.revocation_unknown == {pki.ca.subject}
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=beyond, agencies=agencies, at=VERIFY_AT)
    assert err.value.reason is ReasonCode.REVOCATION_UNKNOWN

    # A fresh CRL brings the issuer back.
    fresh = _verified(pki, _crl(pki, number=2, at=next_update + GRACE))
    crls, applied = crls.offer(fresh)
    assert applied
    again = crls.trust_at(next_update + GRACE + timedelta(minutes=1), GRACE)
    assert verify_envelope(env, trust=again, agencies=agencies, at=VERIFY_AT).agency_code


def test_a_newer_crl_revokes_in_the_store_it_makes(pki: TestPki, agencies: FakeAgencies) -> None:
    cred = pki.issue()
    env = _signed(cred)
    crls = CrlSet.of(pki.trust())
    revoked = [RevokedEntry(_serial(cred), SIGN_AT - timedelta(hours=1))]
    crls, applied = crls.offer(_verified(pki, _crl(pki, number=8, at=SIGN_AT, revoked=revoked)))
    assert applied
    with pytest.raises(VerificationError) as err:
        verify_envelope(env, trust=crls.trust_at(VERIFY_AT, GRACE), agencies=agencies, at=VERIFY_AT)
    assert err.value.reason is ReasonCode.REVOKED


def test_trust_material_round_trips_with_its_unknown_issuers(pki: TestPki) -> None:
    crls = CrlSet.of(TrustStore((pki.root,)))
    crls, _ = crls.offer(_verified(pki, _crl(pki, number=1, days=1)))
    store = crls.trust_at(ISSUED_AT + timedelta(days=3), GRACE)
    again = TrustMaterial.of(store).store()
    assert again.revocation_unknown == store.revocation_unknown == {pki.ca.subject}
    assert [c.public_bytes(Encoding.DER) for c in again.crls] == [
        c.public_bytes(Encoding.DER) for c in store.crls
    ]
    assert again.anchors == store.anchors
