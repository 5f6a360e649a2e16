"""`lienthong pki` through typer's CliRunner, in a temporary PKI directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli.pki import app
from schemas.envelope import SignerRole
from signing import ReasonCode, TrustStore, VerificationError, sign_envelope, verify_envelope
from signing.pkidir import PkiDirectory
from tests.unit.signing.conftest import HANOI, FakeAgencies, make_envelope

runner = CliRunner()


@pytest.fixture
def pki_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIENTHONG_PKI_DIR", str(tmp_path / "pki"))
    # A home of its own, and no broker named: `pki revoke` must not find (and publish to) a
    # broker someone left running in the checkout (it then only warns that it did not publish).
    monkeypatch.setenv("LIENTHONG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIENTHONG_KAFKA_BOOTSTRAP", raising=False)
    return tmp_path / "pki"


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_pki_dir_falls_back_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIENTHONG_PKI_DIR", raising=False)
    monkeypatch.setenv("LIENTHONG_HOME", str(tmp_path))
    _ok("init")
    assert (tmp_path / "pki" / "ca" / "root.crt.pem").exists()


def test_init_refuses_to_overwrite(pki_path: Path) -> None:
    _ok("init")
    first = (pki_path / "ca" / "root.crt.pem").read_bytes()
    assert "already exists" in _fails("init")
    _ok("init", "--force")
    assert (pki_path / "ca" / "root.crt.pem").read_bytes() != first


def test_issue_sign_revoke_flow(pki_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CA_PASS", "mật khẩu CA")
    monkeypatch.setenv("KEY_PASS", "khóa riêng")
    _ok("init", "--intermediate", "--passphrase-env", "CA_PASS")
    assert b"ENCRYPTED" in (pki_path / "ca" / "root.key.pem").read_bytes()
    out = _ok(
        "issue", "--agency", HANOI, "--agency-name", "UBND thành phố Hà Nội",
        "--algorithm", "ed25519", "--ca-passphrase-env", "CA_PASS", "--passphrase-env", "KEY_PASS",
    )  # fmt: skip
    assert f"issued/{HANOI}/agency-" in out
    _ok("issue", "--agency", HANOI, "--person", "Nguyễn Văn A", "--algorithm", "rsa",
        "--ca-passphrase-env", "CA_PASS")  # fmt: skip
    _ok("issue", "--agency", HANOI, "--platform", "--ca-passphrase-env", "CA_PASS")
    _ok("issue", "--agency", HANOI, "--archive", "--ca-passphrase-env", "CA_PASS")
    index = json.loads((pki_path / "index.json").read_text(encoding="utf-8"))["certificates"]
    assert sorted(e["role"] for e in index.values()) == ["AGENCY", "ARCHIVE", "PERSON", "PLATFORM"]
    person = next(e for e in index.values() if e["role"] == "PERSON")
    assert person["person_name"] == "Nguyễn Văn A"
    assert "person-nguyen-van-a-" in person["certificate"]
    assert (pki_path / person["key"]).stat().st_mode & 0o077 == 0

    # What the CLI wrote is usable: sign with the agency key, verify with trust.yaml.
    pki = PkiDirectory(pki_path)
    agency_entry = pki.find(agency_code=HANOI, role="AGENCY")[0]  # type: ignore[arg-type]
    key, chain = pki.credential(agency_entry, b"kh\xc3\xb3a ri\xc3\xaang")
    assert len(chain) == 2  # signer + issuing CA
    now = datetime.now(UTC)
    env = sign_envelope(
        make_envelope(created_at=now), key=key, chain=chain, role=SignerRole.AGENCY, at=now
    )
    agencies = FakeAgencies({HANOI: (now.date().replace(year=2000), None)})
    assert (
        verify_envelope(env, trust=pki.trust_store(), agencies=agencies, at=now).agency_code
        == HANOI
    )

    out = _ok(
        "revoke", "--agency", HANOI, "--reason", "keyCompromise", "--ca-passphrase-env", "CA_PASS"
    )
    assert "revoked" in out and "keyCompromise" in out
    with pytest.raises(VerificationError) as err:
        verify_envelope(
            env, trust=TrustStore.from_config(pki_path / "trust.yaml"), agencies=agencies, at=now
        )
    assert err.value.reason is ReasonCode.REVOKED
    listing = _ok("list")
    assert "revoked" in listing and "PLATFORM" in listing

    serial = person["serial"]
    _ok("revoke", "--serial", serial[:16], "--ca-passphrase-env", "CA_PASS")
    assert "already revoked" in _fails(
        "revoke", "--serial", serial, "--ca-passphrase-env", "CA_PASS"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["issue", "--agency", HANOI], "pki init"),
        (["list"], "pki init"),
    ],
)
def test_errors_before_init(pki_path: Path, args: list[str], message: str) -> None:
    assert message in _fails(*args)


@pytest.mark.parametrize(
    "args, message",
    [
        (["issue", "--agency", "H26"], "not an agency code"),
        (["issue", "--agency", HANOI, "--algorithm", "dsa"], "unknown algorithm"),
        (["issue", "--agency", HANOI, "--platform", "--archive"], "at most one"),
        (["issue", "--agency", HANOI, "--passphrase-env", "NO_SUCH_VAR"], "NO_SUCH_VAR"),
        (["revoke", "--serial", "deadbeefdeadbeef"], "no unique certificate"),
        (["revoke"], "exactly one of --serial or --agency"),
        (["revoke", "--agency", HANOI], "0 valid AGENCY certificates"),
        (["revoke", "--serial", "1", "--reason", "bored"], "unknown revocation reason"),
    ],
)
def test_errors_are_one_line(pki_path: Path, args: list[str], message: str) -> None:
    _ok("init")
    stderr = _fails(*args)
    assert message in stderr
    assert stderr.count("\n") == 1


def test_wrong_ca_passphrase(pki_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CA_PASS", "right")
    monkeypatch.setenv("WRONG", "wrong")
    _ok("init", "--passphrase-env", "CA_PASS")
    assert "cannot open the CA key" in _fails(
        "issue", "--agency", HANOI, "--ca-passphrase-env", "WRONG"
    )
