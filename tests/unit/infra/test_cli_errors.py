"""The common mistakes end in one line that names the fix, exit code 2, never a traceback, for
every command that talks to Kafka: an unreachable broker, a missing or expired client
certificate. (An unmigrated database: tests/integration/test_cli_infra.py.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli.main import build_app
from signing.note import COSIGNATURE_V1, NoteSigner
from signing.pki import certificate_pem, create_root_ca, generate_key, private_key_pem
from signing.pkidir import PkiDirectory
from signing.profile import CertRole

NOW = datetime.now(UTC)
H26 = "000.00.00.H26"
BA_DINH = "000.00.31.H26"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("cli-errors")
    pki = PkiDirectory(root / "pki")
    pki.init(now=NOW)
    for code in (H26, BA_DINH):
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=NOW)
    witness = NoteSigner.generate("bo-noi-vu.gov.vn/w1", COSIGNATURE_V1)
    (root / "witness.key").write_text(witness.encode() + "\n")
    log_key = NoteSigner.generate("lienthong.archive/000.00.10.H26", COSIGNATURE_V1)
    (root / "log.key").write_text(log_key.verifier.encode())
    (root / "in").mkdir()
    edxml = next((Path(__file__).resolve().parents[2] / "fixtures" / "edxml").rglob("*.edxml"))
    (root / "doc.xml").write_bytes(edxml.read_bytes())
    # A transport client certificate that expired three days ago, and its key.
    key = generate_key("ecdsa-p256")
    old = create_root_ca(key, now=NOW - timedelta(days=30), name="000.00.31.H26", days=27)
    (root / "expired.pem").write_bytes(certificate_pem(old))
    (root / "expired.key").write_bytes(private_key_pem(key))
    current = create_root_ca(generate_key("ecdsa-p256"), now=NOW - timedelta(days=1), days=30)
    (root / "ca.pem").write_bytes(certificate_pem(current))
    yield {"root": root, "pki": root / "pki"}


NAMES = [
    "topics ensure", "route", "archive", "subscribe", "gateway", "witness run", "status send",
    "edxml import", "decode", "pki publish-crl", "acl list",
]  # fmt: skip


def commands(root: Path) -> dict[str, list[str]]:
    return {
        "topics ensure": ["topics", "ensure"],
        "route": ["route"],
        "archive": ["archive"],
        "subscribe": ["subscribe", "--agency", BA_DINH, "--out", str(root / "out")],
        "gateway": [
            "gateway", "edxml", "--in", str(root / "in"), "--out", str(root / "gw"),
            "--agency", BA_DINH,
        ],
        "witness run": [
            "witness", "run", "--key", str(root / "witness.key"),
            "--log-key", (root / "log.key").read_text(), "--state", str(root / "w.state"),
        ],
        "status send": [
            "status", "send", "--agency", BA_DINH, "--document", f"{H26},2026/01/05,12/QĐ-UBND",
            "--code", "01",
        ],
        "edxml import": ["edxml", "import", str(root / "doc.xml"), "--agency", H26],
        "decode": ["decode", "--topic", "submissions"],
        "pki publish-crl": ["pki", "publish-crl", "--as-is"],
        "acl list": ["acl", "list"],
    }  # fmt: skip


def run(env: dict[str, str], args: list[str]) -> Any:
    return CliRunner().invoke(build_app(), ["--log-json", *args], env=env)


def one_line(result: Any) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


def base_env(place: dict[str, Path], address: str) -> dict[str, str]:
    return {
        "LIENTHONG_HOME": str(place["root"] / "home"),
        "LIENTHONG_PKI_DIR": str(place["pki"]),
        "LIENTHONG_KAFKA_BOOTSTRAP": address,
        "LIENTHONG_DATABASE_URL": f"postgresql://lt@127.0.0.1:{closed_port()}/lienthong",
    }


@pytest.mark.parametrize("name", NAMES)
def test_an_unreachable_broker_is_one_line_naming_the_setting(
    place: dict[str, Path], name: str
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = run(base_env(place, address), commands(place["root"])[name])
    line = one_line(result)
    assert result.exit_code == 2, (name, result.output)
    assert "LIENTHONG_KAFKA_BOOTSTRAP" in line and address in line, line


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_client_certificate_is_one_line_naming_the_setting(
    place: dict[str, Path], name: str
) -> None:
    root = place["root"]
    env = base_env(place, f"127.0.0.1:{closed_port()}") | {
        "LIENTHONG_KAFKA_SECURITY_PROTOCOL": "SSL",
        "LIENTHONG_KAFKA_CA_FILE": str(root / "ca.pem"),
        "LIENTHONG_KAFKA_CERT_FILE": str(root / "missing.pem"),
        "LIENTHONG_KAFKA_KEY_FILE": str(root / "expired.key"),
    }
    result = run(env, commands(root)[name])
    line = one_line(result)
    assert result.exit_code == 2, (name, result.output)
    assert f"LIENTHONG_KAFKA_CERT_FILE={root / 'missing.pem'}: no such file" in line, line


@pytest.mark.parametrize("name", ["topics ensure", "route", "subscribe", "status send", "acl list"])
def test_an_expired_client_certificate_is_one_line_naming_the_fix(
    place: dict[str, Path], name: str
) -> None:
    root = place["root"]
    env = base_env(place, f"127.0.0.1:{closed_port()}") | {
        "LIENTHONG_KAFKA_SECURITY_PROTOCOL": "SSL",
        "LIENTHONG_KAFKA_CA_FILE": str(root / "ca.pem"),
        "LIENTHONG_KAFKA_CERT_FILE": str(root / "expired.pem"),
        "LIENTHONG_KAFKA_KEY_FILE": str(root / "expired.key"),
    }
    result = run(env, commands(root)[name])
    line = one_line(result)
    assert result.exit_code == 2, (name, result.output)
    assert f"LIENTHONG_KAFKA_CERT_FILE={root / 'expired.pem'}" in line
    assert " expired " in line and "renew it" in line, line


def test_a_server_without_lienthongs_roles_names_the_migration() -> None:
    import asyncpg

    from infra.errors import unmigrated

    missing = asyncpg.InvalidAuthorizationSpecificationError(
        'role "lienthong_archiver" does not exist'
    )
    assert "run `lienthong db migrate`, which creates lienthong's roles" in unmigrated(missing)
    wrong = asyncpg.InvalidPasswordError('password authentication failed for user "lt"')
    line = unmigrated(wrong)
    assert "check the user and password" in line and "migrate" not in line


def test_a_schema_older_than_the_code_names_the_migration() -> None:
    import asyncpg

    from infra.errors import unmigrated

    # An archiver of this version writing into a database migrated before 0011.
    older = asyncpg.UndefinedColumnError(
        'column "trace_id" of relation "archive_record" does not exist'
    )
    line = unmigrated(older)
    assert "older than this lienthong" in line and "run `lienthong db migrate`" in line
    assert "trace_id" in line
