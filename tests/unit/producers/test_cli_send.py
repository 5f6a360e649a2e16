"""The sending commands refuse bad input in one line, exit 2, before keys or broker are touched."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from infra.cli.send import register

DECISION = resources.files("schemas").joinpath(
    "examples", "official_document", "v2", "decision-4612-qd-ubnd.json"
)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No broker, no PKI: any command that got as far as either would fail differently."""
    monkeypatch.setenv("LIENTHONG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIENTHONG_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("LIENTHONG_PKI_DIR", raising=False)
    return tmp_path


def test_the_commands_are_registered(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("send", "report", "paper", "status"):
        assert name in result.output


def test_a_secret_document_is_refused_before_keys_or_broker(
    app: typer.Typer, nowhere: Path
) -> None:
    data = json.loads(DECISION.read_text("utf-8"))
    data["secrecy"] = "TUYET_MAT"
    path = nowhere / "mat.json"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    result = CliRunner().invoke(app, ["send", str(path), "--agency", "000.00.00.H26"])
    assert result.exit_code == 2
    assert "error: refused: secret_document" in result.output


def test_a_rejection_needs_a_reason_and_13_needs_recipients(
    app: typer.Typer, nowhere: Path
) -> None:
    doc = "000.00.00.H26,2019/08/28,4612/QĐ-UBND"
    base = ["status", "send", "--agency", "000.00.31.H26", "--document", doc]
    rejected = CliRunner().invoke(app, [*base, "--code", "02"])
    assert rejected.exit_code == 2
    assert "missing_reason" in rejected.output
    revoke = CliRunner().invoke(app, [*base, "--code", "13"])
    assert revoke.exit_code == 2
    assert "missing_recipient" in revoke.output
    unknown = CliRunner().invoke(app, [*base, "--code", "07"])
    assert unknown.exit_code == 2  # click's own usage error


def test_a_missing_certificate_says_how_to_issue_one(app: typer.Typer, nowhere: Path) -> None:
    result = CliRunner().invoke(app, ["send", str(DECISION), "--agency", "000.00.00.H26"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "Traceback" not in result.output
