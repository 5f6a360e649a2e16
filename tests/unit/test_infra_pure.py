"""Pure parts of infra/: settings, topic plans, migration files, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.services.kafka import random_cluster_id
from infra.services.manager import _redact
from infra.services.migrate import load_migrations
from infra.services.postgres import _let_postgres_through
from infra.services.topic_setup import plan_topics
from infra.settings import load_settings
from schemas.topics import load_topic_manifests


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    s = load_settings({"LIENTHONG_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.topic_prefix == "lienthong."
    assert s.external_kafka is None and s.external_database is None
    assert not s.postgres_unsafe_fast
    s2 = load_settings(
        {
            "LIENTHONG_HOME": str(tmp_path),
            "LIENTHONG_KAFKA_BOOTSTRAP": "h:9092",
            "LIENTHONG_DATABASE_URL": "postgresql://x",
            "LIENTHONG_TOPIC_PREFIX": "qa.",
            "LIENTHONG_KAFKA_PORT": "19092",
        }
    )
    assert (s2.external_kafka, s2.external_database, s2.topic_prefix, s2.kafka_port) == (
        "h:9092",
        "postgresql://x",
        "qa.",
        19092,
    )


@pytest.mark.parametrize("bad", ["abc", "0", "70000"])
def test_a_bad_port_names_the_setting(bad: str) -> None:
    with pytest.raises(ValueError, match="LIENTHONG_POSTGRES_PORT"):
        load_settings({"LIENTHONG_POSTGRES_PORT": bad})


def test_plan_expands_inboxes_and_caps_replication() -> None:
    specs = load_topic_manifests()
    agencies = ["000.00.00.H26", "000.00.31.H26", "000.00.00.G22"]
    single = plan_topics(specs, "lt.", agencies, brokers=1)
    names = [p.name for p in single]
    assert "lt.submissions" in names
    assert [n for n in names if n.startswith("lt.inbox.")] == [f"lt.inbox.{a}" for a in agencies]
    assert {p.replication_factor for p in single} == {1}
    assert all("min.insync.replicas" not in p.config for p in single)
    triple = plan_topics(specs, "lt.", agencies, brokers=3)
    submissions = next(p for p in triple if p.name == "lt.submissions")
    assert submissions.replication_factor == 3
    assert submissions.config["min.insync.replicas"] == "2"


def test_migrations_are_numbered_in_order_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_redact_hides_passwords() -> None:
    assert _redact("postgresql://auditor:s3cret@127.0.0.1:5432/lt") == (
        "postgresql://auditor:***@127.0.0.1:5432/lt"
    )
    assert _redact("postgresql://postgres@127.0.0.1/lt") == "postgresql://postgres@127.0.0.1/lt"


def test_cluster_ids_never_start_with_a_dash() -> None:
    # 0xf8... encodes to "-" first in URL-safe base64: such an id is drawn again.
    draws = iter([b"\xf8" + b"\x00" * 15, b"\x10" * 16])
    assert random_cluster_id(lambda: next(draws)) == "EBAQEBAQEBAQEBAQEBAQEA"
    assert all(not random_cluster_id().startswith("-") for _ in range(2000))


def test_a_0700_checkout_is_made_traversable_up_to_the_working_directory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    above = tmp_path / "above"
    checkout = above / "checkout"
    data = checkout / ".lienthong" / "postgres"
    data.mkdir(parents=True)
    for d in (above, checkout, checkout / ".lienthong"):
        d.chmod(0o700)
    monkeypatch.chdir(checkout)
    _let_postgres_through(data)
    assert checkout.stat().st_mode & 0o777 == 0o701
    assert (checkout / ".lienthong").stat().st_mode & 0o777 == 0o701
    assert above.stat().st_mode & 0o777 == 0o700  # above the working directory: not ours


def test_the_key_passphrase_comes_from_the_environment_or_a_file_outside_the_state(
    tmp_path: Path,
) -> None:
    from infra.context import key_passphrase
    from infra.errors import InfraError

    home = tmp_path / "state"
    s = load_settings({"LIENTHONG_HOME": str(home), "HOME": str(tmp_path)})
    assert key_passphrase(s, {}) is None
    assert key_passphrase(s, {"LIENTHONG_KEY_PASSPHRASE": "mật khẩu"}) == "mật khẩu".encode()
    outside = tmp_path / "secrets" / "archive.pass"
    outside.parent.mkdir()
    outside.write_text("s3cret\n")
    assert key_passphrase(s, {"LIENTHONG_KEY_PASSPHRASE_FILE": str(outside)}) == b"s3cret"
    beside = home / "pki" / "archive.pass"
    beside.parent.mkdir(parents=True)
    beside.write_text("s3cret\n")
    with pytest.raises(InfraError, match="beside the keys"):
        key_passphrase(s, {"LIENTHONG_KEY_PASSPHRASE_FILE": str(beside)})
    with pytest.raises(InfraError, match="not both"):
        key_passphrase(
            s, {"LIENTHONG_KEY_PASSPHRASE": "a", "LIENTHONG_KEY_PASSPHRASE_FILE": str(outside)}
        )


def test_settings_read_the_kafka_transport(tmp_path: Path) -> None:
    from signing.transport import SecurityProtocol

    plain = load_settings({"LIENTHONG_HOME": str(tmp_path)})
    assert plain.kafka_security.is_plaintext and plain.kafka_options() == {}
    ca = tmp_path / "ca.pem"
    secured = load_settings(
        {
            "LIENTHONG_HOME": str(tmp_path),
            "LIENTHONG_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LIENTHONG_KAFKA_CA_FILE": str(ca),
            "LIENTHONG_KAFKA_SASL_USERNAME": "ops",
            "LIENTHONG_KAFKA_SASL_PASSWORD_ENV": "OPS_PASSWORD",
            "OPS_PASSWORD": "pw",
        }
    )
    assert secured.kafka_security.protocol is SecurityProtocol.SASL_SSL
    assert secured.kafka_security.ca_file == ca
    with pytest.raises(ValueError, match="LIENTHONG_KAFKA_SECURITY_PROTOCOL"):
        load_settings({"LIENTHONG_KAFKA_SECURITY_PROTOCOL": "TLS"})


def test_every_bootstrap_address_is_parsed() -> None:
    from infra.errors import InfraError
    from infra.services.kafka import bootstrap_addresses

    assert bootstrap_addresses("a:1, b:2,[::1]:3,") == [("a", 1), ("b", 2), ("::1", 3)]
    with pytest.raises(InfraError, match="host:port"):
        bootstrap_addresses("a:1,b")


def test_secure_cluster_properties(tmp_path: Path) -> None:
    """What each node of `infra up --brokers 3 --secure` runs with (docs/security.md)."""
    from infra.services.cluster import Node, _properties
    from signing.profile import KAFKA_PRINCIPAL_RULES

    settings = load_settings({"LIENTHONG_HOME": str(tmp_path)})
    nodes = (Node(1, 9001, 9101, 9201), Node(2, 9002, 9102, 9202), Node(3, 9003, 9103, 9203))
    tls = {"keystore": tmp_path / "ks.pem", "truststore": tmp_path / "ca.pem"}
    text = _properties(settings, nodes[1], nodes, True, tls)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9201,2@127.0.0.1:9202,3@127.0.0.1:9203"
    assert props["listeners"] == (
        "SSL://127.0.0.1:9002,SASL_SSL://127.0.0.1:9102,CONTROLLER://127.0.0.1:9202"
    )
    assert props["listener.security.protocol.map"] == "SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert props["inter.broker.listener.name"] == "SSL"
    assert (props["ssl.keystore.type"], props["ssl.truststore.type"]) == ("PEM", "PEM")
    assert props["ssl.keystore.location"] == str(tls["keystore"])
    assert props["ssl.client.auth"] == "required"
    assert props["listener.name.sasl_ssl.ssl.client.auth"] == "none"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.principal.mapping.rules"] == KAFKA_PRINCIPAL_RULES
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:lienthong-broker;User:lienthong-admin"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    plain = dict(
        line.split("=", 1)
        for line in _properties(settings, nodes[0], nodes, False, {}).splitlines()
    )
    assert plain["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name" not in plain and "ssl.client.auth" not in plain


def test_broker_errors_are_one_line_with_the_exit_code_that_says_whether_to_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import typer
    from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

    from infra.cli.common import EX_TEMPFAIL, broker_errors

    class Refused(Exception):
        pass

    def failing(exc: BaseException) -> object:
        @broker_errors(Refused)
        def command() -> None:
            raise exc

        return command

    for exc, code in (
        (KafkaConnectionError("broker away"), EX_TEMPFAIL),
        (TopicAuthorizationFailedError(), 2),
        (Refused("bad file"), 2),
        (ValueError("bad agency"), 2),
    ):
        with pytest.raises(typer.Exit) as done:
            failing(exc)()  # type: ignore[operator]
        assert done.value.exit_code == code, exc
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(ZeroDivisionError):  # a bug is not "bad input": it stays loud
        failing(ZeroDivisionError())()  # type: ignore[operator]
