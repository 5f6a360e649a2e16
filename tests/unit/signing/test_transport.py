"""ClientSecurity: the options every Kafka client of lienthong is built from."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing.transport import (
    ClientSecurity,
    SecurityProtocol,
    TransportConfigError,
    client_security_from_env,
)


def _self_signed(tmp: Path, passphrase: bytes | None) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "000.00.31.H26")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    enc = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    cert_file, key_file = tmp / "c.pem", tmp / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    )
    return cert_file, key_file


def test_plaintext_adds_no_option() -> None:
    security = ClientSecurity()
    assert security.aiokafka_options() == {}
    assert security.librdkafka_options() == {}
    assert security.ssl_context() is None
    assert client_security_from_env({}) == security


def test_mutual_tls_options_with_an_encrypted_key(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, b"mat-khau")
    security = ClientSecurity(
        SecurityProtocol.SSL, ca_file=cert, cert_file=cert, key_file=key, key_password="mat-khau"
    )
    options = security.aiokafka_options()
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert "sasl_mechanism" not in options
    assert security.librdkafka_options() == {
        "security.protocol": "SSL",
        "ssl.ca.location": str(cert),
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
        "ssl.key.password": "mat-khau",
    }


def test_a_wrong_passphrase_is_named(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, b"right")
    security = ClientSecurity(
        SecurityProtocol.SSL, ca_file=cert, cert_file=cert, key_file=key, key_password="wrong"
    )
    with pytest.raises(TransportConfigError, match="passphrase"):
        security.ssl_context()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    security = ClientSecurity(SecurityProtocol.SSL, ca_file=tmp_path / "nope.pem")
    with pytest.raises(TransportConfigError, match=r"nope\.pem"):
        security.aiokafka_options()


def test_scram_over_tls(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path, None)
    security = ClientSecurity(
        SecurityProtocol.SASL_SSL, ca_file=cert, sasl_username="ops", sasl_password="s3cret"
    )
    options = security.aiokafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("ops", "s3cret")
    rd = security.librdkafka_options()
    assert rd["sasl.mechanism"] == "SCRAM-SHA-512" and rd["sasl.username"] == "ops"
    assert "s3cret" not in security.describe() and "ops" in security.describe()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": SecurityProtocol.PLAINTEXT, "ca_file": Path("ca.pem")},
        {"protocol": SecurityProtocol.SSL, "cert_file": Path("c.pem")},
        {"protocol": SecurityProtocol.SASL_SSL, "sasl_username": "u"},
        {"protocol": SecurityProtocol.SSL, "sasl_username": "u", "sasl_password": "p"},
    ],
)
def test_contradictions_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(TransportConfigError):
        ClientSecurity(**kwargs)  # type: ignore[arg-type]


def test_from_env_reads_secrets_through_a_named_variable(tmp_path: Path) -> None:
    env = {
        "LIENTHONG_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "LIENTHONG_KAFKA_CA_FILE": "/pki/ca.pem",
        "LIENTHONG_KAFKA_CERT_FILE": "/pki/c.pem",
        "LIENTHONG_KAFKA_KEY_FILE": "/pki/k.pem",
        "LIENTHONG_KAFKA_KEY_PASSWORD_ENV": "KEY_PASS",
        "KEY_PASS": "kp",
        "LIENTHONG_KAFKA_SASL_USERNAME": "ops",
        "LIENTHONG_KAFKA_SASL_PASSWORD_ENV": "SCRAM_PASS",
        "SCRAM_PASS": "sp",
    }
    security = client_security_from_env(env)
    assert security.protocol is SecurityProtocol.SASL_SSL
    assert security.ca_file == Path("/pki/ca.pem")
    assert (security.key_password, security.sasl_password) == ("kp", "sp")
    with pytest.raises(TransportConfigError, match="SCRAM_PASS"):
        client_security_from_env({k: v for k, v in env.items() if k != "SCRAM_PASS"})
    with pytest.raises(TransportConfigError, match="expected PLAINTEXT"):
        client_security_from_env({"LIENTHONG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})


def test_a_child_process_gets_the_same_identity_from_the_environment(tmp_path: Path) -> None:
    """client_security_env is client_security_from_env's inverse: a child started with it
    (the bench's relay, router, archiver) connects exactly as its parent does; passwords go
    through variables of their own, never into the *_ENV names."""
    from signing.transport import client_security_env

    files = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("x")
    cases = [
        ClientSecurity(),
        ClientSecurity(
            SecurityProtocol.SSL,
            ca_file=files["ca"],
            cert_file=files["cert"],
            key_file=files["key"],
            key_password="mat khau",
            check_hostname=False,
        ),
        ClientSecurity(
            SecurityProtocol.SASL_SSL,
            ca_file=files["ca"],
            sasl_username="000.00.31.H26",
            sasl_password="mat-khau-dai-24-ky-tu",
        ),
    ]
    for security in cases:
        env = client_security_env(security)
        assert client_security_from_env(env) == security
        assert env.get("LIENTHONG_KAFKA_KEY_PASSWORD_ENV") in (None, "KAFKA_KEY_PASSWORD")
