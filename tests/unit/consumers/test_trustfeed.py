"""The trust feed's decisions without a broker (TrustFeed.offer / tick at given times), the
credential alarms, and the router's 02 never sealed outside a certificate's validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs

from consumers.router.rejections import rejection_notice
from consumers.router.routing import Rejected
from consumers.trustfeed import MonitoredCredentials, TrustFeed, TrustMetrics, crl_record
from consumers.trustfeed.record import ISSUER_CHAIN_HEADER
from schemas.agency import AgencyDirectory
from schemas.common import AgencyRef
from schemas.envelope import SignerRole
from signing.credentials import FixedCredentials, PkiCredentials
from signing.pki import RevokedEntry, build_crl, create_root_ca, generate_key
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.seal import Credential, load_credential
from signing.trust import TrustStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)
PLATFORM = "000.00.10.H26"
H26 = "000.00.00.H26"


@pytest.fixture
def pki(tmp_path: Path) -> PkiDirectory:
    pki = PkiDirectory(tmp_path / "pki")
    pki.init(now=T0 - timedelta(days=1))  # its CRL: nextUpdate T0 + 6 days
    pki.issue(agency_code=H26, role=CertRole.AGENCY, now=T0 - timedelta(days=1))
    return pki


def _feed(pki: PkiDirectory, updates: list[TrustStore]) -> TrustFeed:
    return TrustFeed(
        "unused:9092",
        "t.crl",
        pki.trust_store(),
        clock=lambda: T0,  # never read by offer/tick: they take the time
        grace=GRACE,
        on_update=updates.append,
        metrics=TrustMetrics(),
    )


def _record(pki: PkiDirectory) -> tuple[bytes, list[tuple[str, bytes]]]:
    rec = crl_record(pki.crl_der(), pki.crl_issuer(), pki.crl_issuer_chain())
    return rec.value, rec.headers


def _sample(feed: TrustFeed, name: str, **labels: str) -> float | None:
    return feed.metrics.registry.get_sample_value(name, labels or None)


def test_a_newer_crl_is_applied_and_handed_to_the_owner(pki: PkiDirectory) -> None:
    updates: list[TrustStore] = []
    feed = _feed(pki, updates)
    serial = pki.find(agency_code=H26, role=CertRole.AGENCY)[0].serial
    pki.revoke(serial, reason="keyCompromise", now=T0)
    with capture_logs() as logs:
        assert feed.offer(*_record(pki), at=T0 + timedelta(seconds=1))
    assert [entry["event"] for entry in logs] == ["trustfeed.crl_applied"]
    assert len(updates) == 1 and feed.store is updates[0]
    assert [e.serial_number for e in updates[0].crls[0]] == [int(serial, 16)]
    issuer = pki.crl_issuer().subject.rfc4514_string()
    assert _sample(feed, "lienthong_crl_applied_total", issuer=issuer) == 1
    left = _sample(feed, "lienthong_crl_seconds_until_next_update", issuer=issuer)
    assert left == pytest.approx(7 * 86400 - 1)
    # The same CRL again, or an older one, changes nothing.
    assert not feed.offer(*_record(pki), at=T0 + timedelta(seconds=2))
    assert len(updates) == 1
    assert _sample(feed, "lienthong_crl_refused_total", reason="not_newer") == 1


def test_an_older_crl_never_replaces_a_newer_one(pki: PkiDirectory) -> None:
    updates: list[TrustStore] = []
    feed = _feed(pki, updates)
    pki.publish_crl(now=T0)
    older = _record(pki)
    pki.publish_crl(now=T0 + timedelta(hours=1))
    newer = _record(pki)
    assert feed.offer(*newer, at=T0 + timedelta(hours=2))
    assert not feed.offer(*older, at=T0 + timedelta(hours=2))
    assert feed.store.crls[0].public_bytes(Encoding.DER) == newer[0]
    assert len(updates) == 1


def test_a_crl_of_a_foreign_ca_changes_nothing(pki: PkiDirectory) -> None:
    """Same issuer name as ours, another key, a higher number, revoking our agency: refused,
    logged, counted; the store is the one from before."""
    updates: list[TrustStore] = []
    feed = _feed(pki, updates)
    before = feed.store
    ours = pki.crl_issuer()
    forged_key = generate_key("ecdsa-p256")
    forged_ca = create_root_ca(forged_key, now=T0 - timedelta(days=30))
    assert forged_ca.subject == ours.subject
    serial = int(pki.find(agency_code=H26, role=CertRole.AGENCY)[0].serial, 16)
    forged = build_crl(
        issuer_key=forged_key,
        issuer_cert=forged_ca,
        revoked=[RevokedEntry(serial, T0 - timedelta(days=2), x509.ReasonFlags.key_compromise)],
        now=T0,
        number=10_000,
    ).public_bytes(Encoding.DER)
    with capture_logs() as logs:
        assert not feed.offer(forged, [], at=T0)
        chain = [(ISSUER_CHAIN_HEADER, forged_ca.public_bytes(Encoding.PEM))]
        assert not feed.offer(forged, chain, at=T0)
        assert not feed.offer(b"garbage", None, at=T0)
    assert [entry["event"] for entry in logs] == ["trustfeed.crl_refused"] * 3
    assert all(entry["log_level"] == "warning" for entry in logs)
    assert feed.store is before and updates == []
    assert _sample(feed, "lienthong_crl_refused_total", reason="untrusted") == 3


def test_staleness_moves_with_the_given_clock(pki: PkiDirectory) -> None:
    updates: list[TrustStore] = []
    feed = _feed(pki, updates)
    next_update = T0 + timedelta(days=6)  # init's CRL, from T0 - 1 day
    issuer = pki.crl_issuer().subject
    label = issuer.rfc4514_string()
    assert not feed.tick(next_update - timedelta(minutes=1))
    assert _sample(feed, "lienthong_crl_stale", issuer=label) == 0
    with capture_logs() as logs:
        assert not feed.tick(next_update + timedelta(minutes=1))  # stale, within the grace
    assert [e["event"] for e in logs] == ["trustfeed.crl_stale"]
    assert _sample(feed, "lienthong_crl_stale", issuer=label) == 1
    assert _sample(feed, "lienthong_crl_seconds_until_next_update", issuer=label) == -60
    assert updates == []
    with capture_logs() as logs:
        assert feed.tick(next_update + GRACE + timedelta(minutes=1))  # fail closed
    assert "trustfeed.crl_stale_fail_closed" in [e["event"] for e in logs]
    assert updates[-1].revocation_unknown == {issuer}
    assert _sample(feed, "lienthong_crl_stale", issuer=label) == 2
    # A fresh CRL opens it again at once.
    pki.publish_crl(now=next_update + GRACE)
    assert feed.offer(*_record(pki), at=next_update + GRACE + timedelta(minutes=2))
    assert updates[-1].revocation_unknown == frozenset()
    assert _sample(feed, "lienthong_crl_stale", issuer=label) == 0


# --- the service's own certificates -----------------------------------------------------------


def _platform(pki: PkiDirectory, *, now: datetime, days: int) -> Credential:
    pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=now, days=days)
    return load_credential(pki.root, PLATFORM, SignerRole.PLATFORM)


def test_the_expiry_gauge_and_the_warning_before_expiry(pki: PkiDirectory) -> None:
    _platform(pki, now=T0, days=60)
    metrics = TrustMetrics()
    watched = MonitoredCredentials(
        PkiCredentials(pki.root, PLATFORM, SignerRole.PLATFORM),
        role="PLATFORM",
        agency=PLATFORM,
        metrics=metrics,
        warn_before=timedelta(days=30),
    )
    labels = {"role": "PLATFORM", "agency": PLATFORM}
    with capture_logs() as logs:
        assert watched.check(T0 + timedelta(days=20)) == 40 * 86400
    assert logs == []
    value = metrics.registry.get_sample_value("lienthong_credential_seconds_until_expiry", labels)
    assert value == 40 * 86400
    with capture_logs() as logs:
        watched.check(T0 + timedelta(days=31))
        watched.check(T0 + timedelta(days=31, hours=1))  # not again so soon
    assert [(e["event"], e["days_left"]) for e in logs] == [("credential.expires_soon", 29.0)]
    with capture_logs() as logs:
        assert watched.credential_at(T0 + timedelta(days=61)) is None
    assert [e["event"] for e in logs] == ["credential.none_valid"]
    unavailable = "lienthong_credential_unavailable_total"
    assert metrics.registry.get_sample_value(unavailable, labels) == 1
    value = metrics.registry.get_sample_value("lienthong_credential_seconds_until_expiry", labels)
    assert value == -1


def _rejected() -> Rejected:
    """A refusal the platform answers: the sender's signature verified (a 02 is due)."""
    return Rejected(
        "UNKNOWN_RECIPIENT",
        "recipient 000.00.99.H26 is not in the directory",
        "00" * 32,
        message_id="m-1",
        document_id="000.00.00.H26,2019/08/28,4612/QĐ-UBND",
        sender=H26,
        payload_type="OFFICIAL_DOCUMENT",
        sender_verified=True,
        keep_content=True,
    )


def _leaf_serial(chain: tuple[bytes, ...]) -> int:
    return x509.load_der_x509_certificate(chain[0]).serial_number


def test_the_02_is_sealed_with_the_renewed_certificate_not_the_expired_one(
    pki: PkiDirectory,
) -> None:
    expired = _platform(pki, now=T0 - timedelta(days=400), days=365)
    renewed = _platform(pki, now=T0 - timedelta(days=10), days=365)
    notice = rejection_notice(
        _rejected(),
        platform=AgencyRef(PLATFORM, "Nền tảng"),
        credential=FixedCredentials([expired, renewed]),
        agencies=AgencyDirectory.default(),
        now=T0,
    )
    assert notice is not None
    (signature,) = notice.signatures
    assert signature.role == SignerRole.PLATFORM
    assert _leaf_serial(signature.certificate_chain) == _leaf_serial(renewed.chain)
    assert _leaf_serial(renewed.chain) != _leaf_serial(expired.chain)


def test_no_02_when_only_an_expired_certificate_exists(pki: PkiDirectory) -> None:
    expired = _platform(pki, now=T0 - timedelta(days=400), days=365)
    for credential in (expired, FixedCredentials([expired])):
        with capture_logs() as logs:
            notice = rejection_notice(
                _rejected(),
                platform=AgencyRef(PLATFORM, "Nền tảng"),
                credential=credential,
                agencies=AgencyDirectory.default(),
                now=T0,
            )
        assert notice is None
        assert [(e["event"], e["log_level"]) for e in logs] == [("router.notice_unsigned", "error")]
