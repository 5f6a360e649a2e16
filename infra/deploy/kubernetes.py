"""The platform on Kubernetes, against Strimzi (Kafka) and CloudNativePG (PostgreSQL): topics and
users from the manifests and the agency directory, the database cluster, the configuration,
the schema migration Job and the services' workloads. Secrets are referenced, never written:
`secrets.sh` (beside the resources) creates those that are ours from local files.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from consumers.archive import load_log_key, log_key_path
from infra import context
from infra.acl import derive_acls, strimzi_user_resources
from infra.compose.archive import archive_log_id
from infra.deploy.catalog import (
    BY_NAME,
    CONFIG_DIR,
    POD_METRICS_PORT,
    STATE_DIR,
    Agency,
    Credential,
    EnvRef,
    Instance,
    MetricsPort,
    ServiceSpec,
    Token,
)
from infra.deploy.pkibundle import PkiBundle, bundle, identity_files
from infra.errors import InfraError
from infra.services.topic_setup import plan_topics
from infra.settings import Settings
from schemas.agency import AgencyDirectory, is_valid_agency_code
from schemas.topics import load_topic_manifests
from signing.profile import CertRole

STRIMZI_API = "kafka.strimzi.io/v1"
CNPG_API = "postgresql.cnpg.io/v1"
UID = 10001  # the image's user (Containerfile)
MANAGED = {"app.kubernetes.io/managed-by": "lienthong", "app.kubernetes.io/part-of": "lienthong"}
DB_ROLES = ("archiver", "auditor", "console")  # lienthong_<role>, each its own password
CONFIG_MAP = "lienthong-config"
PASSPHRASE_SECRET = "lienthong-key-passphrase"
WITNESS_KEY_SECRET = "lienthong-witness-key"
_NAME_RE = re.compile(r"[^a-z0-9.-]+")

# Requests are what a city's load needs (docs/operations.md, "Sizing"); limits leave room for
# a catch-up after an outage.
RESOURCES = {
    "route": ("100m", "256Mi", "512Mi"),
    "archive": ("250m", "512Mi", "1Gi"),
    "witness": ("50m", "128Mi", "256Mi"),
    "console": ("100m", "256Mi", "512Mi"),
    "gateway": ("50m", "256Mi", "512Mi"),
    "migrate": ("100m", "128Mi", "256Mi"),
}


@dataclass(frozen=True, slots=True)
class KubeOptions:
    namespace: str = "lienthong"
    image: str = "lienthong:0.1.0"
    kafka_cluster: str = "lienthong"  # the Strimzi Kafka resource
    kafka_bootstrap: str | None = None  # default: its TLS listener, <cluster>-kafka-bootstrap:9093
    postgres_cluster: str = "lienthong-db"
    postgres_instances: int = 3
    postgres_storage: str = "50Gi"
    postgres_wal_storage: str = "10Gi"
    router_replicas: int = 2
    gateway_agencies: tuple[str, ...] = ()
    witness: bool = True
    console: bool = True

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"{self.kafka_cluster}-kafka-bootstrap:9093"


@dataclass(frozen=True, slots=True)
class Manifests:
    files: dict[str, list[dict[str, Any]]]  # file name -> resources
    secrets_script: str
    pki_bundles: tuple[PkiBundle, ...] = field(default=())

    def resources(self) -> list[dict[str, Any]]:
        return [r for name in sorted(self.files) for r in self.files[name]]


def k8s_name(text: str) -> str:
    """A DNS subdomain: lower case, [a-z0-9.-], starting and ending alphanumeric."""
    name = _NAME_RE.sub("-", text.lower()).strip(".-")
    if not name or len(name) > 253:
        raise InfraError(f"{text!r} cannot be a Kubernetes name")
    return name


def _meta(name: str, opts: KubeOptions, component: str, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": opts.namespace,
        "labels": {**MANAGED, "app.kubernetes.io/component": component, **labels},
    }


# --- Kafka: topics and users ----------------------------------------------------------------


def kafka_topics(settings: Settings, agency_codes: list[str], opts: KubeOptions) -> list[dict]:
    """One KafkaTopic per topic of the manifests (an inbox per agency), replicated three times
    with min.insync.replicas 2 (plan_topics, as `topics ensure` creates them)."""
    plans = plan_topics(load_topic_manifests(), settings.topic_prefix, agency_codes, brokers=3)
    return [
        {
            "apiVersion": STRIMZI_API,
            "kind": "KafkaTopic",
            "metadata": _meta(
                k8s_name(plan.name), opts, "topic", **{"strimzi.io/cluster": opts.kafka_cluster}
            ),
            "spec": {
                "topicName": plan.name,
                "partitions": plan.partitions,
                "replicas": plan.replication_factor,
                "config": dict(plan.config),
            },
        }
        for plan in plans
    ]


def kafka_users(
    settings: Settings,
    agencies: AgencyDirectory,
    at: datetime,
    revoked: Collection[str],
    opts: KubeOptions,
) -> list[dict]:
    """A TLS KafkaUser per open agency and platform service, with the ACLs of docs/security.md."""
    rules = derive_acls(agencies, settings.topic_prefix, at=at, revoked=revoked)
    users = strimzi_user_resources(rules, opts.kafka_cluster, opts.namespace)
    for user in users:
        user["metadata"]["labels"]["app.kubernetes.io/part-of"] = "lienthong"
    return users


# --- PostgreSQL -----------------------------------------------------------------------------


def postgres_cluster(opts: KubeOptions) -> dict:
    """A CloudNativePG cluster of PostgreSQL 15: TLS only (its own CA; clients verify-full),
    each lienthong role with its own password Secret, data checksums on."""
    return {
        "apiVersion": CNPG_API,
        "kind": "Cluster",
        "metadata": _meta(opts.postgres_cluster, opts, "database"),
        "spec": {
            "description": "lienthong archive",
            "instances": opts.postgres_instances,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:15",
            "primaryUpdateStrategy": "unsupervised",
            # The superuser runs the schema migrations (the Job below) and nothing else; the
            # services connect as their own roles.
            "enableSuperuserAccess": True,
            "storage": {"size": opts.postgres_storage},
            "walStorage": {"size": opts.postgres_wal_storage},
            "bootstrap": {
                "initdb": {
                    "database": "lienthong",
                    "owner": "lienthong",
                    "encoding": "UTF8",
                    "dataChecksums": True,
                }
            },
            "postgresql": {
                "parameters": {
                    "password_encryption": "scram-sha-256",
                    "max_connections": "200",
                    "shared_buffers": "512MB",
                },
                # Refuse every connection that is not TLS, before CloudNativePG's own rules.
                "pg_hba": ["hostnossl all all all reject"],
            },
            "managed": {
                "roles": [
                    {
                        "name": f"lienthong_{role}",
                        "ensure": "present",
                        "login": True,
                        "superuser": False,
                        "createdb": False,
                        "createrole": False,
                        "passwordSecret": {"name": f"lienthong-db-{role}"},
                        "comment": f"lienthong {role} (migrations grant its rights)",
                    }
                    for role in DB_ROLES
                ]
            },
            "resources": {
                "requests": {"cpu": "500m", "memory": "2Gi"},
                "limits": {"memory": "2Gi"},
            },
        },
    }


# --- configuration --------------------------------------------------------------------------


def _toml_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string


def config_toml(settings: Settings, opts: KubeOptions) -> str:
    """The lienthong.toml every pod reads (LIENTHONG_CONFIG): no secret in it."""
    db = opts.postgres_cluster
    url = (
        f"postgresql://lienthong@{db}-rw:5432/lienthong?sslmode=verify-full"
        f"&sslrootcert={CONFIG_DIR}/db-ca/ca.crt"
    )
    tables: dict[str | None, dict[str, str | int | bool]] = {
        None: {
            "home": STATE_DIR,
            "topic_prefix": settings.topic_prefix,
            "platform_agency": settings.platform_agency,
            "pki_dir": f"{CONFIG_DIR}/pki",
        },
        "kafka": {
            "bootstrap": opts.bootstrap,
            "security_protocol": "SSL",
            "ca_file": f"{CONFIG_DIR}/kafka-ca/ca.crt",
            "cert_file": f"{CONFIG_DIR}/kafka-user/user.crt",
            "key_file": f"{CONFIG_DIR}/kafka-user/user.key",
        },
        # Each service swaps in its own role (lienthong_archiver, ...) and finds its password
        # in PGPASSWORD; the owner role here is never used by a running service.
        "database": {"url": url},
        "metrics": {"host": "0.0.0.0"},
    }
    lines = ["# lienthong.toml for Kubernetes: `lienthong manifests --target kubernetes`."]
    for section, values in tables.items():
        if section:
            lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def config_map(settings: Settings, opts: KubeOptions, log_key: str | None) -> dict:
    data = {"lienthong.toml": config_toml(settings, opts)}
    if log_key:
        data["witness-log-key"] = log_key  # public: what the witness pins
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(CONFIG_MAP, opts, "config"),
        "data": data,
    }


# --- workloads ------------------------------------------------------------------------------


def _arg(token: Token, agency: str | None) -> str:
    if isinstance(token, Instance):
        return "$(POD_NAME)"
    if isinstance(token, Agency):
        assert agency is not None
        return agency
    if isinstance(token, EnvRef):
        return f"$({token.name})"
    if isinstance(token, MetricsPort):
        return str(POD_METRICS_PORT)
    if isinstance(token, Credential):
        return f"{CONFIG_DIR}/credentials/{token.name}"
    return token.replace("{agency}", agency or "").replace("{listen}", "0.0.0.0")


def _secret_volume(name: str, secret: str, items: Iterable[tuple[str, str]] = ()) -> dict:
    source: dict[str, Any] = {"secretName": secret, "defaultMode": 0o440}
    listed = [{"key": key, "path": path} for key, path in items]
    if listed:
        source["items"] = listed
    return {"name": name, "secret": source}


def _env_secret(name: str, secret: str, key: str, optional: bool = False) -> dict:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


@dataclass(frozen=True, slots=True)
class _Pod:
    """What one service's pod needs beyond the catalog: its Kafka user, PKI, volumes."""

    spec: ServiceSpec
    name: str  # the workload's name
    kafka_user: str
    pki: PkiBundle | None
    agency: str | None = None
    state_volume: dict[str, Any] | None = None  # a volume mounted at state_path
    state_claim: bool = False  # or the StatefulSet's claim "state", mounted there
    state_path: str = STATE_DIR


def _pod_template(pod: _Pod, opts: KubeOptions) -> dict:
    spec = pod.spec
    labels = {
        **MANAGED,
        "app.kubernetes.io/name": pod.name,
        "app.kubernetes.io/component": spec.name,
    }
    env: list[dict[str, Any]] = [
        {"name": "LIENTHONG_CONFIG", "value": f"{CONFIG_DIR}/config/lienthong.toml"},
    ]
    if any(isinstance(t, Instance) for t in spec.argv):
        env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    for token in spec.argv:
        if isinstance(token, EnvRef):
            key = token.name.lower().replace("_", "-")
            env.append(
                {
                    "name": token.name,
                    "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": key}},
                }
            )
    if spec.database:
        env.append(_env_secret("PGPASSWORD", f"lienthong-db-{spec.database}", "password"))
    if spec.signing_key:
        # Absent Secret: keys stored in clear (development); present: they are decrypted.
        env.append(
            _env_secret("LIENTHONG_KEY_PASSPHRASE", PASSPHRASE_SECRET, "passphrase", optional=True)
        )
    mounts = [
        {"name": "config", "mountPath": f"{CONFIG_DIR}/config", "readOnly": True},
        {"name": "kafka-ca", "mountPath": f"{CONFIG_DIR}/kafka-ca", "readOnly": True},
        {"name": "kafka-user", "mountPath": f"{CONFIG_DIR}/kafka-user", "readOnly": True},
        {"name": "home", "mountPath": STATE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": CONFIG_MAP, "items": [
            {"key": "lienthong.toml", "path": "lienthong.toml"}]}},
        _secret_volume("kafka-ca", f"{opts.kafka_cluster}-cluster-ca-cert", [("ca.crt", "ca.crt")]),
        _secret_volume(
            "kafka-user", pod.kafka_user, [("user.crt", "user.crt"), ("user.key", "user.key")]
        ),
        {"name": "home", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]  # fmt: skip
    if spec.database:
        mounts.append({"name": "db-ca", "mountPath": f"{CONFIG_DIR}/db-ca", "readOnly": True})
        volumes.append(
            _secret_volume("db-ca", f"{opts.postgres_cluster}-ca", [("ca.crt", "ca.crt")])
        )
    if pod.pki is not None:
        mounts.append({"name": "pki", "mountPath": f"{CONFIG_DIR}/pki", "readOnly": True})
        volumes.append(_secret_volume("pki", pod.pki.secret, pod.pki.files))
    if spec.credentials:
        mounts.append(
            {"name": "credentials", "mountPath": f"{CONFIG_DIR}/credentials", "readOnly": True}
        )
        items = [(name, name) for name in spec.credentials]
        volumes.append(_secret_volume("credentials", WITNESS_KEY_SECRET, items))
    if pod.state_volume is not None or pod.state_claim:
        mounts.append({"name": "state", "mountPath": pod.state_path})
    if pod.state_volume is not None:
        volumes.append({"name": "state", **pod.state_volume})
    cpu, memory, limit = RESOURCES[spec.name]
    container: dict[str, Any] = {
        "name": spec.name,
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [_arg(t, pod.agency) for t in spec.argv],
        "env": env,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    annotations: dict[str, str] = {}
    if any(isinstance(t, MetricsPort) for t in spec.argv):
        port = {"name": "metrics", "containerPort": POD_METRICS_PORT, "protocol": "TCP"}
        container["ports"] = [port]
        # /healthz: the process answers (else restart); /readyz: connected, assigned, lag under
        # its bound (else no traffic, an alert); startup gets 5 minutes (a router's restore).
        container["startupProbe"] = _probe("/healthz", period=5, failures=60)
        container["livenessProbe"] = _probe("/healthz", period=10, failures=3)
        container["readinessProbe"] = _probe("/readyz", period=10, failures=3)
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(POD_METRICS_PORT),
            "prometheus.io/path": "/metrics",
        }
    if spec.http_port:
        container["ports"] = [{"name": "http", "containerPort": spec.http_port, "protocol": "TCP"}]
        container["readinessProbe"] = {"tcpSocket": {"port": "http"}, "periodSeconds": 10}
        container["livenessProbe"] = {
            "tcpSocket": {"port": "http"}, "periodSeconds": 20, "failureThreshold": 3
        }  # fmt: skip
    metadata: dict[str, Any] = {"labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "metadata": metadata,
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 60,  # SIGTERM: finish, commit, stop
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }


def _probe(path: str, *, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _selector(name: str) -> dict:
    return {"matchLabels": {"app.kubernetes.io/name": name}}


def _service(name: str, opts: KubeOptions, component: str, port: int, port_name: str,
             headless: bool = False) -> dict:  # fmt: skip
    spec: dict[str, Any] = {
        "selector": {"app.kubernetes.io/name": name},
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, opts, component),
        "spec": spec,
    }


def _deployment(pod: _Pod, opts: KubeOptions, replicas: int, recreate: bool) -> dict:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": _selector(pod.name),
        "template": _pod_template(pod, opts),
    }
    if recreate:
        # One at a time: the archiver holds a lock, a gateway owns its drop folder.
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(pod.name, opts, pod.spec.name),
        "spec": spec,
    }


def _stateful_set(pod: _Pod, opts: KubeOptions, replicas: int, claims: list[dict]) -> dict:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": pod.name,
        "podManagementPolicy": "Parallel",
        "selector": _selector(pod.name),
        "template": _pod_template(pod, opts),
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(pod.name, opts, pod.spec.name),
        "spec": spec,
    }


def _claim(name: str, size: str, mode: str = "ReadWriteOnce") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": size}}},
    }


def migrate_job(opts: KubeOptions) -> dict:
    """`lienthong db migrate` as the database's superuser: run it before each upgrade."""
    superuser = f"{opts.postgres_cluster}-superuser"
    url = (
        f"postgresql://postgres@{opts.postgres_cluster}-rw:5432/lienthong?sslmode=verify-full"
        f"&sslrootcert={CONFIG_DIR}/db-ca/ca.crt"
    )
    cpu, memory, limit = RESOURCES["migrate"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta("lienthong-db-migrate", opts, "migrate"),
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": {**MANAGED, "app.kubernetes.io/component": "migrate"}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "migrate",
                            "image": opts.image,
                            "args": ["db", "migrate"],
                            "env": [
                                {
                                    "name": "LIENTHONG_CONFIG",
                                    "value": f"{CONFIG_DIR}/config/lienthong.toml",
                                },
                                # The environment wins over the file: the superuser, here only.
                                {"name": "LIENTHONG_DATABASE_URL", "value": url},
                                _env_secret("PGPASSWORD", superuser, "password"),
                            ],
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"memory": limit},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {
                                    "name": "config",
                                    "mountPath": f"{CONFIG_DIR}/config",
                                    "readOnly": True,
                                },
                                {
                                    "name": "db-ca",
                                    "mountPath": f"{CONFIG_DIR}/db-ca",
                                    "readOnly": True,
                                },
                                {"name": "home", "mountPath": STATE_DIR},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": CONFIG_MAP}},
                        _secret_volume(
                            "db-ca", f"{opts.postgres_cluster}-ca", [("ca.crt", "ca.crt")]
                        ),
                        {"name": "home", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def workloads(
    settings: Settings, opts: KubeOptions, pki_dir: Path
) -> tuple[dict[str, list[dict]], list[PkiBundle]]:
    """File name -> resources for route, archive, witness, console and each gateway."""
    files: dict[str, list[dict]] = {}
    bundles: list[PkiBundle] = []
    platform = settings.platform_agency

    route_pki = bundle(
        "lienthong-pki-route", pki_dir, identity_files(pki_dir, platform, CertRole.PLATFORM)
    )
    route = _Pod(BY_NAME["route"], "lienthong-route", "lienthong-router", route_pki)
    files["route.yaml"] = [
        _stateful_set(route, opts, opts.router_replicas, []),
        _service(route.name, opts, "route", POD_METRICS_PORT, "metrics", headless=True),
    ]
    bundles.append(route_pki)

    log_key = _log_key_files(settings, pki_dir)
    archive_pki = bundle(
        "lienthong-pki-archive",
        pki_dir,
        identity_files(pki_dir, platform, CertRole.ARCHIVE) + log_key,
    )
    archive = _Pod(BY_NAME["archive"], "lienthong-archive", "lienthong-archiver", archive_pki)
    files["archive.yaml"] = [
        _deployment(archive, opts, 1, recreate=True),
        _service(archive.name, opts, "archive", POD_METRICS_PORT, "metrics"),
    ]
    bundles.append(archive_pki)

    if opts.witness:
        # Its state remembers the newest checkpoint it cosigned: kept across restarts.
        witness = _Pod(
            BY_NAME["witness"], "lienthong-witness", "lienthong-witness", None,
            state_claim=True, state_path=f"{STATE_DIR}/witness",
        )  # fmt: skip
        files["witness.yaml"] = [
            _stateful_set(witness, opts, 1, [_claim("state", "1Gi")]),
            _service(witness.name, opts, "witness", POD_METRICS_PORT, "metrics", headless=True),
        ]

    if opts.console:
        console_pki = bundle("lienthong-pki-console", pki_dir, [])
        console = _Pod(BY_NAME["console"], "lienthong-console", "lienthong-console", console_pki)
        spec = BY_NAME["console"]
        files["console.yaml"] = [
            _deployment(console, opts, 2, recreate=False),
            _service(console.name, opts, "console", spec.http_port, "http"),
        ]
        bundles.append(console_pki)

    for code in opts.gateway_agencies:
        if not is_valid_agency_code(code):
            raise InfraError(f"--gateway {code!r} is not an agency code (DDD.DD.DD.LDD)")
        name = k8s_name(f"lienthong-gateway-{code}")
        pki = bundle(f"{name}-pki", pki_dir, identity_files(pki_dir, code, CertRole.AGENCY))
        # The drop folders are shared with the document system: a ReadWriteMany volume.
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(name, opts, "gateway"),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        }
        gateway = _Pod(
            BY_NAME["gateway"], name, code.lower(), pki, agency=code,
            state_volume={"persistentVolumeClaim": {"claimName": name}},
            state_path=f"{STATE_DIR}/gateway/{code}",
        )  # fmt: skip
        files[f"gateway-{code}.yaml"] = [claim, _deployment(gateway, opts, 1, recreate=True)]
        bundles.append(pki)
    return files, bundles


def _log_key_files(settings: Settings, pki_dir: Path) -> list[str]:
    """The archive's checkpoint key and its public half: they must exist before the first
    deployment, or every restart of the pod would make a new log key."""
    path = log_key_path(pki_dir, archive_log_id(settings))
    if not path.exists():
        raise InfraError(
            f"no checkpoint key {path}: create it once with "
            "`lienthong manifests --target kubernetes --create-log-key` (it is kept in the "
            "PKI directory and shipped to the archiver's Secret)"
        )
    return [str(path.relative_to(pki_dir)), str(path.with_suffix(".vkey").relative_to(pki_dir))]


def log_verifier(settings: Settings, pki_dir: Path) -> str | None:
    vkey = log_key_path(pki_dir, archive_log_id(settings)).with_suffix(".vkey")
    return vkey.read_text(encoding="utf-8").strip() if vkey.exists() else None


def create_log_key(settings: Settings, pki_dir: Path) -> Path:
    """The archive's checkpoint key, made now if missing (encrypted under the service keys'
    passphrase when one is set), exactly as the archiver would make it on its first start."""
    log_id = archive_log_id(settings)
    load_log_key(pki_dir, log_id, create=True, passphrase=context.key_passphrase(settings))
    return log_key_path(pki_dir, log_id)


# --- secrets: created by the operator, from local files ---------------------------------------


def secrets_script(opts: KubeOptions, bundles: Iterable[PkiBundle], pki_dir: Path) -> str:
    """A shell script that creates or updates the Secrets the resources reference and that
    neither Strimzi nor CloudNativePG makes. It reads the files where they are; no secret is
    ever written into the manifests."""
    ns = shlex.quote(opts.namespace)
    lines = [
        "#!/bin/sh",
        "# Generated by `lienthong manifests --target kubernetes`: the Secrets the resources",
        "# reference. Run it where the PKI directory is, with kubectl pointed at the cluster.",
        "# Strimzi makes the KafkaUser and cluster-CA Secrets; CloudNativePG the database CA and",
        "# superuser Secrets. Re-run after a certificate renewal: it updates in place.",
        "set -eu",
        f"NS={ns}",
        f"PKI=${{LIENTHONG_PKI_DIR:-{shlex.quote(str(pki_dir))}}}",
        'apply() { kubectl -n "$NS" apply -f -; }',
        "",
        "# The database roles' passwords: made once, never printed, kept when they exist.",
    ]
    for role in DB_ROLES:
        secret = f"lienthong-db-{role}"
        lines += [
            f'kubectl -n "$NS" get secret {secret} >/dev/null 2>&1 || \\',
            f'  kubectl -n "$NS" create secret generic {secret} --type=kubernetes.io/basic-auth \\',
            f"    --from-literal=username=lienthong_{role} "
            '--from-literal=password="$(openssl rand -hex 32)"',
        ]
    lines += ["", "# Each service's part of the PKI (its own keys only, never the CA's)."]
    for item in bundles:
        args = " \\\n    ".join(
            f'--from-file={key}="$PKI"/{shlex.quote(path)}' for key, path in item.files
        )
        lines += [
            f'kubectl -n "$NS" create secret generic {item.secret} --dry-run=client -o yaml \\',
            f"    {args} | apply",
        ]
    lines += [
        "",
        "# The passphrase of the archive's keys, when they are encrypted (production).",
        'if [ -n "${LIENTHONG_KEY_PASSPHRASE_FILE:-}" ]; then',
        f'  kubectl -n "$NS" create secret generic {PASSPHRASE_SECRET} --dry-run=client '
        '-o yaml --from-file=passphrase="$LIENTHONG_KEY_PASSPHRASE_FILE" | apply',
        "fi",
    ]
    if opts.witness:
        lines += [
            "",
            "# The witness's own Ed25519 key (`lienthong witness keygen`).",
            'if [ -n "${WITNESS_KEY_FILE:-}" ]; then',
            f'  kubectl -n "$NS" create secret generic {WITNESS_KEY_SECRET} --dry-run=client '
            '-o yaml --from-file=witness.key="$WITNESS_KEY_FILE" | apply',
            "fi",
        ]
    return "\n".join(lines) + "\n"


def kubernetes_manifests(
    settings: Settings,
    opts: KubeOptions,
    *,
    agencies: AgencyDirectory,
    at: datetime,
    revoked: Collection[str],
) -> Manifests:
    """Everything, by file: kafka-topics, kafka-users, postgres, config, migrate-job and one
    file per workload; plus the script that makes our Secrets."""
    codes = sorted(a.code for a in agencies if a.is_open(at))
    for code in opts.gateway_agencies:
        if code not in codes:
            raise InfraError(f"--gateway {code}: not an open agency of the directory")
    pki_dir = settings.pki_dir
    files = {
        "kafka-topics.yaml": kafka_topics(settings, codes, opts),
        "kafka-users.yaml": kafka_users(settings, agencies, at, revoked, opts),
        "postgres.yaml": [postgres_cluster(opts)],
        "config.yaml": [config_map(settings, opts, log_verifier(settings, pki_dir))],
        "migrate-job.yaml": [migrate_job(opts)],
    }
    services, bundles = workloads(settings, opts, pki_dir)
    files |= services
    return Manifests(files, secrets_script(opts, bundles, pki_dir), tuple(bundles))
