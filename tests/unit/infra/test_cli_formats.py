"""`--format json` on every command that prints a table: the JSON parses, and carries the rows
the table shows (in full where the table shortens them); a wrong format is one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.acl import AclRule
from infra.cli import acl as acl_cli
from infra.cli.main import build_app
from signing.pkidir import PkiDirectory
from signing.profile import CertRole, TransportKind
from signing.transportpki import TransportPki

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    d = PkiDirectory(root)
    d.init(now=NOW)
    d.issue(agency_code="000.00.00.H26", role=CertRole.AGENCY, now=NOW)
    d.issue(
        agency_code="000.00.00.H26", role=CertRole.PERSON, person_name="Nguyễn Văn Sửu", now=NOW
    )
    revoked = d.issue(agency_code="000.00.31.H26", role=CertRole.AGENCY, now=NOW)
    d.revoke(revoked.serial, reason="keyCompromise", now=NOW)
    TransportPki(d).issue(TransportKind.SERVICE, "lienthong-router", now=NOW)
    return root


def run(env: dict[str, str], *args: str) -> Any:
    # A wide terminal, so that the table's cells are not folded.
    return CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "250", **env})


def test_pki_list_json_carries_every_certificate_in_full(pki: Path) -> None:
    env = {"LIENTHONG_PKI_DIR": str(pki)}
    table = run(env, "pki", "list")
    listed = run(env, "pki", "list", "--format", "json")
    assert table.exit_code == 0 and listed.exit_code == 0, table.output + listed.output
    records = json.loads(listed.stdout)
    entries = PkiDirectory(pki).entries()
    assert [r["serial"] for r in records] == [e.serial for e in entries]
    assert len(records) == 3
    for record in records:
        assert record["serial"][:16] in table.stdout  # the same rows the table shows
    assert {r["person"] for r in records} == {None, "Nguyễn Văn Sửu"}  # UTF-8, not escaped
    assert "Nguyễn Văn Sửu" in listed.stdout
    revoked = [r for r in records if r["status"] == "revoked"]
    assert [r["reason"] for r in revoked] == ["keyCompromise"]
    assert "revoked (keyCompromise)" in table.stdout
    assert all(datetime.fromisoformat(r["not_after"]) for r in records)


def test_pki_transport_list_json(pki: Path) -> None:
    env = {"LIENTHONG_PKI_DIR": str(pki)}
    table = run(env, "pki", "transport", "list")
    listed = run(env, "pki", "transport", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert [r["principal"] for r in records] == ["User:lienthong-router"]
    assert records[0]["serial"][:16] in table.stdout and "User:lienthong-router" in table.stdout


def test_infra_status_json_has_the_tables_rows(tmp_path: Path) -> None:
    env = {"LIENTHONG_HOME": str(tmp_path / "home")}  # nothing started there
    table = run(env, "infra", "status")
    listed = run(env, "infra", "status", "--format", "json")
    assert table.exit_code == listed.exit_code
    records = json.loads(listed.stdout)
    assert {r["service"] for r in records} >= {"kafka", "postgres"}
    for record in records:
        assert record["service"] in table.stdout and record["state"] in table.stdout


def test_acl_list_json(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [
        AclRule("User:000.00.31.H26", "TOPIC", "LITERAL", "lienthong.inbox.000.00.31.H26", "READ"),
        AclRule("User:lienthong-router", "TOPIC", "PREFIXED", "lienthong.inbox.", "WRITE"),
    ]

    class FakeAdmin:
        def list(self) -> list[AclRule]:
            return rules

    monkeypatch.setattr(acl_cli, "acl_admin", lambda settings: FakeAdmin())
    lines = run({}, "acl", "list")
    listed = run({}, "acl", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [AclRule(**r) for r in json.loads(listed.stdout)] == rules
    assert lines.stdout.splitlines() == [r.line() for r in rules]


@pytest.mark.parametrize(
    "args",
    [
        ("pki", "list"),
        ("pki", "transport", "list"),
        ("infra", "status"),
        ("acl", "list"),
        ("topics", "ensure"),
    ],
)
def test_a_wrong_format_is_one_line_before_any_work(args: tuple[str, ...], pki: Path) -> None:
    result = run(
        {"LIENTHONG_PKI_DIR": str(pki), "LIENTHONG_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
        *args,
        "--format",
        "yaml",
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format must be table or json, not 'yaml'"
