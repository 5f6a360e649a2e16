"""Certificates over time: the expiry gauge per role and subject, the warning ahead, readiness
failing once one is expired or nearly so, and a missing file named with its setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from infra.observe import CertificateWatch
from infra.observe.certs import CERT_METRIC, CertSource, file_source
from signing.certcheck import Validity
from signing.pki import certificate_pem, create_root_ca, generate_key

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def cert_file(path: Path, name: str, *, days_left: int) -> Path:
    # Issued 10 days ago for `10 + days_left` days: notAfter is NOW + days_left.
    cert = create_root_ca(
        generate_key("ed25519"), now=NOW - timedelta(days=10), name=name, days=10 + days_left
    )
    path.write_bytes(certificate_pem(cert))
    return path


def watch(sources: list[CertSource], registry: CollectorRegistry) -> CertificateWatch:
    return CertificateWatch(
        sources, registry, warn_before=timedelta(days=30), critical_before=timedelta(days=1)
    )


def gauge(registry: CollectorRegistry, role: str, subject: str) -> float | None:
    return registry.get_sample_value(CERT_METRIC, {"role": role, "subject": subject})


def test_valid_certificates_are_ready_and_gauged(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    path = cert_file(tmp_path / "client.pem", "client", days_left=200)
    w = watch([file_source("transport", path, "LIENTHONG_KAFKA_CERT_FILE")], registry)
    ok, detail = w.check(NOW)
    assert ok and "transport CN=client,O=lienthong,C=VN" in detail and "200 days" in detail
    assert gauge(registry, "transport", "CN=client,O=lienthong,C=VN") == 200 * 86400


def test_an_expired_certificate_fails_readiness_naming_the_setting(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    path = cert_file(tmp_path / "client.pem", "client", days_left=-3)
    w = watch([file_source("transport", path, "LIENTHONG_KAFKA_CERT_FILE")], registry)
    with capture_logs() as logs:
        ok, detail = w.check(NOW)
    assert not ok
    assert "expired" in detail and f"LIENTHONG_KAFKA_CERT_FILE={path}" in detail
    assert gauge(registry, "transport", "CN=client,O=lienthong,C=VN") == -3 * 86400
    assert [e["event"] for e in logs] == ["certificate.expired"]


def test_within_the_critical_margin_fails_and_within_the_warning_only_warns(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    soon = cert_file(tmp_path / "ca.pem", "ca", days_left=10)
    w = watch([file_source("transport-ca", soon, "LIENTHONG_KAFKA_CA_FILE")], registry)
    with capture_logs() as logs:
        ok, _ = w.check(NOW)
        assert ok
        # Warned once per six hours, not at every scrape.
        w.check(NOW + timedelta(minutes=5))
    assert [(e["event"], e["days_left"]) for e in logs] == [("certificate.expires_soon", 10.0)]
    ok, detail = w.check(NOW + timedelta(days=9, hours=12))
    assert not ok and "renew it now" in detail


def test_a_missing_file_fails_readiness_and_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    w = watch([file_source("transport", missing, "LIENTHONG_KAFKA_CERT_FILE")], CollectorRegistry())
    ok, detail = w.check(NOW)
    assert not ok and str(missing) in detail


def test_a_file_without_a_certificate_fails(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    ok, detail = watch(
        [file_source("transport", junk, "LIENTHONG_KAFKA_CERT_FILE")], CollectorRegistry()
    ).check(NOW)
    assert not ok and "no readable certificate" in detail


def test_a_role_with_no_valid_certificate_fails(tmp_path: Path) -> None:
    source = CertSource("signing:platform", lambda: [], "`lienthong pki renew`")
    ok, detail = watch([source], CollectorRegistry()).check(NOW)
    assert not ok and "signing:platform: no valid certificate" in detail


def test_a_renewal_replaces_the_series(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    held = [Validity("CN=old", NOW + timedelta(days=2))]
    w = watch([CertSource("signing:archive", lambda: list(held), "pki")], registry)
    w.check(NOW)
    held[:] = [Validity("CN=new", NOW + timedelta(days=400))]
    assert w.check(NOW)[0]
    assert gauge(registry, "signing:archive", "CN=old") is None
    assert gauge(registry, "signing:archive", "CN=new") == 400 * 86400
