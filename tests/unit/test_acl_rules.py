"""The ACL table derived from the agency directory (infra.acl, pure), and its Strimzi export."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from infra.acl import AclRule, derive_acls, is_managed, strimzi_users
from schemas.agency import Agency, AgencyDirectory

AT = datetime(2026, 3, 1, tzinfo=UTC)
BA_DINH, HAI_BA_TRUNG, CLOSED = "000.00.31.H26", "000.00.32.H26", "000.00.99.H26"
P = "lienthong."


def _directory() -> AgencyDirectory:
    return AgencyDirectory.from_agencies(
        [
            Agency(BA_DINH, "UBND quận Ba Đình", None, date(2008, 8, 1)),
            Agency(HAI_BA_TRUNG, "UBND quận Hai Bà Trưng", None, date(2008, 8, 1)),
            Agency(CLOSED, "Đã sáp nhập", None, date(2008, 8, 1), valid_to=date(2025, 7, 1)),
        ]
    )


def _of(rules: list[AclRule], principal: str) -> set[tuple[str, str, str, str]]:
    return {(r.operation, r.resource, r.pattern, r.name) for r in rules if r.principal == principal}


def test_an_agency_gets_its_own_inbox_submissions_and_groups_and_nothing_else() -> None:
    rules = derive_acls(_directory(), P, at=AT)
    assert _of(rules, f"User:{BA_DINH}") == {
        ("WRITE", "TOPIC", "LITERAL", "lienthong.submissions"),
        ("DESCRIBE", "TOPIC", "LITERAL", "lienthong.submissions"),
        ("IDEMPOTENT_WRITE", "CLUSTER", "LITERAL", "kafka-cluster"),
        ("READ", "TOPIC", "LITERAL", f"lienthong.inbox.{BA_DINH}"),
        ("DESCRIBE", "TOPIC", "LITERAL", f"lienthong.inbox.{BA_DINH}"),
        ("READ", "TOPIC", "LITERAL", "lienthong.crl"),
        ("DESCRIBE", "TOPIC", "LITERAL", "lienthong.crl"),
        ("READ", "GROUP", "PREFIXED", f"lienthong.subscriber.{BA_DINH}"),
    }
    agencies = [r for r in rules if r.principal.startswith("User:000.")]
    # No agency may write an inbox, read the dead letters or use a transactional id.
    assert not any(
        r.name.startswith("lienthong.inbox.") and r.operation == "WRITE" for r in agencies
    )
    assert not any("deadletter" in r.name for r in agencies)
    assert not any(r.resource == "TRANSACTIONAL_ID" for r in agencies)
    assert not any(r.pattern == "PREFIXED" and r.resource == "TOPIC" for r in agencies)


def test_closed_and_revoked_agencies_get_nothing() -> None:
    rules = derive_acls(_directory(), P, at=AT, revoked={HAI_BA_TRUNG})
    principals = {r.principal for r in rules}
    assert f"User:{BA_DINH}" in principals
    assert f"User:{CLOSED}" not in principals  # closed in 2025
    assert f"User:{HAI_BA_TRUNG}" not in principals  # its transport identity was revoked
    before = derive_acls(_directory(), P, at=datetime(2025, 1, 1, tzinfo=UTC))
    assert f"User:{CLOSED}" in {r.principal for r in before}


def test_router_and_archiver() -> None:
    rules = derive_acls(_directory(), P, at=AT)
    router = _of(rules, "User:lienthong-router")
    assert ("WRITE", "TOPIC", "PREFIXED", "lienthong.inbox.") in router
    assert ("WRITE", "TOPIC", "LITERAL", "lienthong.deadletter") in router
    assert ("WRITE", "TOPIC", "LITERAL", "lienthong.submissions") in router  # home partition
    assert ("WRITE", "TRANSACTIONAL_ID", "PREFIXED", "lienthong.router.") in router
    assert ("READ", "GROUP", "LITERAL", "lienthong.router") in router
    assert not any(op == "READ" and name.startswith("lienthong.inbox") for op, _, _, name in router)
    archiver = _of(rules, "User:lienthong-archiver")
    assert ("READ", "TOPIC", "PREFIXED", "lienthong.inbox.") in archiver
    assert ("WRITE", "TOPIC", "LITERAL", "lienthong.checkpoints") in archiver
    assert not any(
        op == "WRITE" and "checkpoints" not in name
        for op, res, _, name in archiver
        if res == "TOPIC"
    )
    # Only the administrator (a super user, no ACL needed) writes the crl topic.
    assert not any(r.name == "lienthong.crl" and r.operation == "WRITE" for r in rules)


def test_derivation_is_deterministic_and_managed_principals_are_ours() -> None:
    assert derive_acls(_directory(), P, at=AT) == derive_acls(_directory(), P, at=AT)
    assert is_managed(f"User:{BA_DINH}") and is_managed("User:lienthong-router")
    assert not is_managed("User:CN=someone,O=x") and not is_managed("User:strimzi-operator")


def test_strimzi_export_is_one_tls_kafkauser_per_principal() -> None:
    rules = derive_acls(_directory(), P, at=AT)
    docs = list(yaml.safe_load_all(strimzi_users(rules, "city", "lienthong")))
    names = [d["metadata"]["name"] for d in docs]
    assert names == sorted(names) and len(names) == len({r.principal for r in rules})
    ba_dinh = next(d for d in docs if d["metadata"]["name"] == BA_DINH.lower())
    assert ba_dinh["kind"] == "KafkaUser"
    assert ba_dinh["metadata"]["labels"] == {
        "strimzi.io/cluster": "city",
        "app.kubernetes.io/managed-by": "lienthong",
    }
    assert ba_dinh["spec"]["authentication"] == {"type": "tls"}
    acls = ba_dinh["spec"]["authorization"]["acls"]
    inbox = next(a for a in acls if a["resource"].get("name") == f"lienthong.inbox.{BA_DINH}")
    assert inbox["resource"]["patternType"] == "literal"
    assert sorted(inbox["operations"]) == ["Describe", "Read"]
    assert {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"], "host": "*"} in acls


def test_the_export_and_transport_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lienthong acl export` needs no Kafka; a revoked transport identity leaves the export."""
    from typer.testing import CliRunner

    from infra.cli.main import build_app

    monkeypatch.setenv("LIENTHONG_HOME", str(tmp_path))
    for name in [k for k in os.environ if k.startswith("LIENTHONG_KAFKA_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()
    app = build_app()
    assert runner.invoke(app, ["pki", "init"]).exit_code == 0
    issued = runner.invoke(app, ["pki", "transport", "issue", "--agency", BA_DINH])
    assert issued.exit_code == 0, issued.output
    assert f"principal User:{BA_DINH}" in issued.output
    exported = runner.invoke(app, ["acl", "export", "--format", "strimzi", "--cluster", "city"])
    assert exported.exit_code == 0, exported.output
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(exported.output)}
    assert BA_DINH.lower() in names and "lienthong-router" in names
    # No cluster here: the revocation is recorded, the command says the ACLs are still on the
    # cluster and exits 75 (try again); --no-sync says the same without trying.
    revoked = runner.invoke(app, ["pki", "transport", "revoke", BA_DINH])
    assert revoked.exit_code == 75, revoked.output
    assert "its ACLs are still on the cluster" in revoked.output and "acl sync" in revoked.output
    issued = runner.invoke(app, ["pki", "transport", "issue", "--agency", HAI_BA_TRUNG])
    assert issued.exit_code == 0, issued.output
    quiet = runner.invoke(app, ["pki", "transport", "revoke", HAI_BA_TRUNG, "--no-sync"])
    assert quiet.exit_code == 0 and "until `lienthong acl sync`" in quiet.output
    after = runner.invoke(app, ["acl", "export", "--format", "strimzi"])
    assert BA_DINH.lower() not in {d["metadata"]["name"] for d in yaml.safe_load_all(after.output)}
    wrong = runner.invoke(app, ["acl", "export", "--format", "csv"])
    assert wrong.exit_code == 2
