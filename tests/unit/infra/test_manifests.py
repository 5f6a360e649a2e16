"""`lienthong manifests --target kubernetes`: every generated resource passes the schema the API
server would apply (vendored CRDs and Kubernetes definitions, tests/fixtures/crds), the
resources say what the platform needs (topics, ACLs, roles, TLS), and no secret is inlined."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.acl import derive_acls
from infra.cli.main import build_app
from infra.config import apply_config, mask_value, read_config_file
from infra.deploy import KubeOptions, Manifests, create_log_key, kubernetes_manifests
from infra.settings import Settings, load_settings
from schemas.agency import AgencyDirectory
from schemas.topics import load_topic_manifests
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from tests.unit.infra import kube_schema
from tests.unit.infra.cli_args import PENDING, problems

AT = datetime.now(UTC)
PLATFORM = "000.00.10.H26"
BA_DINH = "000.00.31.H26"
OPERATOR_MADE = re.compile(  # Secrets Strimzi and CloudNativePG make themselves
    r"(lienthong-cluster-ca-cert|lienthong-db-ca|lienthong-db-superuser"
    r"|lienthong-(router|archiver|witness|console)|\d{3}\.\d{2}\.\d{2}\.[a-z]\d{2})\Z"
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A platform's PKI: root, the platform's PLATFORM and ARCHIVE certificates, Ba Đình's
    AGENCY certificate, the archive's checkpoint key."""
    home = tmp_path_factory.mktemp("home")
    settings = load_settings({"LIENTHONG_HOME": str(home)})
    pki = PkiDirectory(settings.pki_dir)
    now = AT - timedelta(days=1)
    pki.init(now=now)
    pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=now)
    pki.issue(agency_code=PLATFORM, role=CertRole.ARCHIVE, now=now)
    pki.issue(agency_code=BA_DINH, role=CertRole.AGENCY, now=now)
    create_log_key(settings, settings.pki_dir)
    return home


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    return load_settings({"LIENTHONG_HOME": str(home)})


@pytest.fixture(scope="module")
def generated(settings: Settings) -> Manifests:
    return kubernetes_manifests(
        settings,
        KubeOptions(gateway_agencies=(BA_DINH,)),
        agencies=AgencyDirectory.default(),
        at=AT,
        revoked=(),
    )


def of_kind(generated: Manifests, kind: str) -> list[dict[str, Any]]:
    return [r for r in generated.resources() if r["kind"] == kind]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# --- the schemas ------------------------------------------------------------------------------


def test_every_resource_passes_its_schema(generated: Manifests) -> None:
    resources = generated.resources()
    kinds = {(r["apiVersion"], r["kind"]) for r in resources}
    assert kinds == {
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("kafka.strimzi.io/v1", "KafkaUser"),
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
    }
    refused = {
        f"{r['kind']}/{r['metadata']['name']}": kube_schema.problems(r)
        for r in resources
        if kube_schema.problems(r)
    }
    assert refused == {}
    # Through YAML and back, as kubectl reads the files: the same resources.
    for name, docs in generated.files.items():
        assert list(yaml.safe_load_all(yaml.safe_dump_all(docs))) == docs, name


def _first(generated: Manifests, kind: str, name: str | None = None) -> dict[str, Any]:
    return copy.deepcopy(
        next(r for r in of_kind(generated, kind) if name is None or r["metadata"]["name"] == name)
    )


def _set(resource: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = resource
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return resource


_DELETE = object()
_CONTAINER = "spec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("kind", "name", "path", "value", "expected"),
    [
        # wrong type
        ("StatefulSet", "lienthong-route", "spec.replicas", "two", "not of type 'integer'"),
        ("Deployment", "lienthong-archive", f"{_CONTAINER}.ports.0.containerPort", "9100",
         "not of type 'integer'"),
        ("Cluster", None, "spec.instances", "3", "not of type 'integer'"),
        # a required field missing
        ("Deployment", "lienthong-archive", "spec.selector", _DELETE, "'selector' is a required"),
        ("KafkaUser", None, "spec.authorization.acls", _DELETE, "'acls' is a required"),
        ("Job", None, "spec.template.spec.containers.0.name", _DELETE, "'name' is a required"),
        # an unknown field (a typo): refused, as kubectl's strict field validation does
        ("StatefulSet", "lienthong-route", "spec.replica", 2, "'replica' was unexpected"),
        ("Cluster", None, "spec.storage.sise", "1Gi", "'sise' was unexpected"),
        ("KafkaTopic", None, "spec.replica", 3, "'replica' was unexpected"),
        # outside an enum or a bound
        ("KafkaUser", None, "spec.authorization.acls.0.resource.patternType", "prefixed",
         "is not one of ['literal', 'prefix']"),
        ("KafkaTopic", None, "spec.partitions", 0, "less than the minimum of 1"),
        ("KafkaUser", None, "spec.authentication.type", "mtls", "is not one of"),
        # names and labels the API server refuses
        ("Service", "lienthong-archive", "metadata.name", "lienthong.archive", "not a valid"),
        ("KafkaTopic", None, "metadata.name", "Lienthong.Inbox", "not a valid KafkaTopic name"),
        ("ConfigMap", None, "metadata.labels.app.kubernetes.io/part-of", "x" * 64,
         "not a valid label value"),
        # an API version nobody serves any more
        ("KafkaUser", None, "apiVersion", "kafka.strimzi.io/v1beta2", "no schema"),
    ],
)  # fmt: skip
def test_the_validator_refuses_a_broken_resource(
    generated: Manifests, kind: str, name: str | None, path: str, value: Any, expected: str
) -> None:
    resource = _first(generated, kind, name)
    assert kube_schema.problems(resource) == []
    if path.startswith("metadata.labels."):
        resource["metadata"]["labels"][path.removeprefix("metadata.labels.")] = value
    else:
        _set(resource, path, value)
    found = kube_schema.problems(resource)
    assert any(expected in p for p in found), found


def test_int_or_string_ports_take_both(generated: Manifests) -> None:
    service = _first(generated, "Service", "lienthong-archive")
    for target in ("metrics", 9100):
        service["spec"]["ports"][0]["targetPort"] = target
        assert kube_schema.problems(service) == []
    service["spec"]["ports"][0]["targetPort"] = 9100.5
    assert kube_schema.problems(service)


# --- what the resources say -----------------------------------------------------------------


def test_a_topic_per_manifest_and_an_inbox_per_open_agency(
    generated: Manifests, settings: Settings
) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(generated, "KafkaTopic")}
    open_codes = [a.code for a in AgencyDirectory.default() if a.is_open(AT)]
    expected = {f"lienthong.{s.name}" for s in load_topic_manifests() if not s.per_agency}
    expected |= {f"lienthong.inbox.{code}" for code in open_codes}
    assert set(topics) == expected
    for topic in topics.values():
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "lienthong"
    assert topics["lienthong.submissions"]["spec"]["partitions"] == 12
    assert topics["lienthong.crl"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert (
        topics[f"lienthong.inbox.{BA_DINH}"]["metadata"]["name"]
        == f"lienthong.inbox.{BA_DINH}".lower()
    )


def test_a_tls_user_per_principal_with_its_acls(generated: Manifests, settings: Settings) -> None:
    users = {u["metadata"]["name"]: u for u in of_kind(generated, "KafkaUser")}
    rules = derive_acls(AgencyDirectory.default(), "lienthong.", at=AT)
    principals = {r.principal.removeprefix("User:").lower() for r in rules}
    assert set(users) == principals
    assert {"lienthong-router", "lienthong-archiver", "lienthong-witness"} <= set(users)
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "tls"}
        assert user["spec"]["authorization"]["type"] == "simple"
    router = users["lienthong-router"]["spec"]["authorization"]["acls"]
    assert {
        "resource": {
            "type": "transactionalId",
            "name": "lienthong.router.",
            "patternType": "prefix",
        },
        "operations": ["Describe", "Write"],
        "host": "*",
    } in router
    ba_dinh = users[BA_DINH.lower()]["spec"]["authorization"]["acls"]
    topics = {a["resource"].get("name") for a in ba_dinh if a["resource"]["type"] == "topic"}
    assert topics == {"lienthong.submissions", f"lienthong.inbox.{BA_DINH}", "lienthong.crl"}


def test_the_database_is_postgresql_15_tls_only_with_a_role_each(generated: Manifests) -> None:
    (cluster,) = of_kind(generated, "Cluster")
    spec = cluster["spec"]
    assert spec["imageName"].endswith(":15") and spec["instances"] == 3
    assert spec["postgresql"]["pg_hba"][0] == "hostnossl all all all reject"
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == {"lienthong_archiver", "lienthong_auditor", "lienthong_console"}
    for name, role in roles.items():
        assert role["passwordSecret"] == {
            "name": name.replace("_", "-").replace("lienthong-", "lienthong-db-")
        }
        assert role["superuser"] is False and role["createrole"] is False
    assert spec["bootstrap"]["initdb"]["dataChecksums"] is True


def test_the_config_map_is_a_valid_configuration_without_secrets(
    generated: Manifests, tmp_path: Path
) -> None:
    (config,) = of_kind(generated, "ConfigMap")
    text = config["data"]["lienthong.toml"]
    path = tmp_path / "lienthong.toml"
    path.write_text(text)
    path.chmod(0o644)  # as a ConfigMap is mounted: readable, so it must hold no secret
    values = read_config_file(path)
    assert all(mask_value(k, v) == v for k, v in values.items())
    env: dict[str, str] = {}
    apply_config(path, env)
    settings = load_settings(env)
    assert settings.kafka_security.protocol.value == "SSL"
    assert settings.external_kafka == "lienthong-kafka-bootstrap:9093"
    assert settings.external_database and "sslmode=verify-full" in settings.external_database
    assert tomllib.loads(text)["metrics"]["host"] == "0.0.0.0"
    assert config["data"]["witness-log-key"].startswith("lienthong.archive/")


def test_no_secret_is_inlined_and_every_secret_has_a_maker(generated: Manifests) -> None:
    resources = generated.resources()
    assert not of_kind(generated, "Secret")
    referenced = set()
    for resource in resources:
        for key, value in walk(resource):
            if key in ("secretKeyRef",):
                referenced.add(value["name"])
            if key == "secret" and isinstance(value, dict):
                referenced.add(value["secretName"])
            if key == "env":
                for var in value:
                    name = var["name"].upper()
                    if any(w in name for w in ("PASSWORD", "PASSPHRASE", "SECRET", "TOKEN")):
                        assert "value" not in var, var  # only ever valueFrom a Secret
    made_by_script = set(
        re.findall(r"create secret generic ([a-z0-9.-]+)", generated.secrets_script)
    )
    unmade = {s for s in referenced if s not in made_by_script and not OPERATOR_MADE.match(s)}
    assert unmade == set()
    assert {
        "lienthong-db-archiver",
        "lienthong-pki-archive",
        "lienthong-witness-key",
    } <= made_by_script


def test_each_service_gets_only_its_own_keys(generated: Manifests, settings: Settings) -> None:
    bundles = {b.secret: dict(b.files) for b in generated.pki_bundles}
    every = [path for files in bundles.values() for path in files.values()]
    assert not [p for p in every if p.startswith("ca/") and p.endswith(".key.pem")]
    keys = {
        name: [p for p in files.values() if p.endswith(".key.pem")]
        for name, files in bundles.items()
    }
    assert (
        all("/platform-" in p for p in keys["lienthong-pki-route"]) and keys["lienthong-pki-route"]
    )
    assert (
        all("/archive-" in p for p in keys["lienthong-pki-archive"])
        and keys["lienthong-pki-archive"]
    )
    assert keys["lienthong-pki-console"] == []
    gateway = keys[f"lienthong-gateway-{BA_DINH.lower()}-pki"]
    assert gateway and all(f"issued/{BA_DINH}/agency-" in p for p in gateway)
    assert any(p.startswith("log-keys/") for p in bundles["lienthong-pki-archive"].values())
    # The script ships exactly those files, each under the key the volume maps back.
    for files in bundles.values():
        for key, path in files.items():
            assert f'--from-file={key}="$PKI"/{shlex.quote(path)}' in generated.secrets_script
            assert (settings.pki_dir / path).is_file()


def test_the_secrets_script_is_valid_shell(generated: Manifests, tmp_path: Path) -> None:
    script = tmp_path / "secrets.sh"
    script.write_text(generated.secrets_script)
    done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "openssl rand" in generated.secrets_script and "BEGIN" not in generated.secrets_script


def test_every_workload_runs_a_real_command_line(generated: Manifests) -> None:
    containers = [
        c
        for r in generated.resources()
        if r["kind"] in ("Deployment", "StatefulSet", "Job")
        for c in r["spec"]["template"]["spec"]["containers"]
    ]
    assert {c["name"] for c in containers} == {
        "route", "archive", "witness", "console", "gateway", "migrate"
    }  # fmt: skip
    for container in containers:
        found = problems(container["args"])
        assert set(found) <= PENDING, (container["name"], found)
        sec = container["securityContext"]
        assert sec["readOnlyRootFilesystem"] and not sec["allowPrivilegeEscalation"]
    route = next(c for c in containers if c["name"] == "route")
    assert route["args"][:3] == ["route", "--instance", "$(POD_NAME)"]
    assert route["readinessProbe"]["httpGet"]["path"] == "/readyz"
    gateway = next(c for c in containers if c["name"] == "gateway")
    assert gateway["args"][gateway["args"].index("--agency") + 1] == BA_DINH


def test_stateful_parts_keep_their_state(generated: Manifests) -> None:
    archive = _first(generated, "Deployment", "lienthong-archive")
    assert archive["spec"]["replicas"] == 1 and archive["spec"]["strategy"]["type"] == "Recreate"
    witness = _first(generated, "StatefulSet", "lienthong-witness")
    assert witness["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    mounts = witness["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "state", "mountPath": "/var/lib/lienthong/witness"} in mounts


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(home: Path) -> Iterator[dict[str, str]]:
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("LIENTHONG_")]:
        del os.environ[name]
    try:
        yield {"LIENTHONG_HOME": str(home)}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_command_writes_the_files(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(
        build_app(),
        ["manifests", "--target", "kubernetes", "--out", str(out), "--gateway", BA_DINH,
         "--namespace", "city", "--image", "registry.city/lienthong:0.1.0"],
        env=cli_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([
        "archive.yaml", "config.yaml", "console.yaml", f"gateway-{BA_DINH}.yaml",
        "kafka-topics.yaml", "kafka-users.yaml", "migrate-job.yaml", "postgres.yaml",
        "route.yaml", "secrets.sh", "witness.yaml",
    ])  # fmt: skip
    assert os.access(out / "secrets.sh", os.X_OK)
    for path in out.glob("*.yaml"):
        for resource in yaml.safe_load_all(path.read_text()):
            assert resource["metadata"]["namespace"] == "city"
            assert kube_schema.problems(resource) == [], path.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "helm"], "--target must be kubernetes or systemd"),
        (["--target", "kubernetes", "--gateway", "000.00.99.Z99"], "not an open agency"),
        (["--target", "kubernetes", "--gateway", "Ba Dinh"], "not an open agency"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    result = CliRunner().invoke(build_app(), ["manifests", *args], env=cli_env)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_pki_material_is_named_with_its_fix(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "fresh"
    env = {"LIENTHONG_HOME": str(home)}
    settings = load_settings(env)

    def run(*extra: str) -> Any:
        args = ["manifests", "--target", "kubernetes", *extra]
        return CliRunner().invoke(build_app(), args, env=env)

    assert "pki init" in run().stderr  # no PKI at all
    pki = PkiDirectory(settings.pki_dir)
    yesterday = AT - timedelta(days=1)
    pki.init(now=yesterday)
    no_cert = run()
    assert no_cert.exit_code == 2
    assert f"run `lienthong pki issue --agency {PLATFORM} --platform`" in no_cert.stderr
    pki.issue(agency_code=PLATFORM, role=CertRole.PLATFORM, now=yesterday)
    pki.issue(agency_code=PLATFORM, role=CertRole.ARCHIVE, now=yesterday)
    no_key = run()
    assert no_key.exit_code == 2 and "--create-log-key" in no_key.stderr
    made = run("--create-log-key")
    assert made.exit_code == 0, made.stderr
    assert "kind: KafkaTopic" in made.stdout and "checkpoint key:" in made.stderr
    again = run()  # the key stays: the same log from now on
    assert again.exit_code == 0 and again.stdout == made.stdout
