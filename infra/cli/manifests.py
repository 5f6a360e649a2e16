"""`lienthong manifests`: what runs the services, generated — systemd units, or Kubernetes
resources for Strimzi and CloudNativePG (docs/operations.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import typer
import yaml

from infra import context
from infra.cli.common import clean_errors
from infra.deploy import KubeOptions, create_log_key, kubernetes_manifests, systemd_units
from infra.settings import load_settings
from signing.pkidir import PkiDirectory
from signing.transportpki import TransportPki


def _version() -> str:
    try:
        return metadata.version("lienthong")
    except metadata.PackageNotFoundError:
        return "0.1.0"


@clean_errors
def manifests(
    target: str = typer.Option(..., "--target", help="kubernetes or systemd."),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="Write one file per part here (default: stdout)."
    ),
    namespace: str = typer.Option("lienthong", help="Kubernetes namespace of everything."),
    image: str | None = typer.Option(None, help="The image (default lienthong:<version>)."),
    kafka_cluster: str = typer.Option("lienthong", help="The Strimzi Kafka cluster's name."),
    kafka_bootstrap: str | None = typer.Option(
        None, help="Brokers' TLS address (default <kafka-cluster>-kafka-bootstrap:9093)."
    ),
    postgres_cluster: str = typer.Option("lienthong-db", help="The CloudNativePG cluster."),
    postgres_instances: int = typer.Option(3, min=1, help="PostgreSQL instances (1 primary)."),
    postgres_storage: str = typer.Option("50Gi", help="Data volume of each instance."),
    router_replicas: int = typer.Option(2, min=1, help="Router pods (12 partitions at most)."),
    gateway: list[str] = typer.Option(
        [], "--gateway", help="An agency whose edXML gateway runs here; repeat for several."
    ),
    witness: bool = typer.Option(True, "--witness/--no-witness", help="A witness pod."),
    console: bool = typer.Option(True, "--console/--no-console", help="The console."),
    create_key: bool = typer.Option(
        False, "--create-log-key", help="Make the archive's checkpoint key first, if missing."
    ),
    executable: str = typer.Option(
        "/opt/lienthong/bin/lienthong", help="systemd: where the lienthong command is."
    ),
) -> None:
    """Generate the deployment: `--target systemd` writes a unit per service (templates per
    agency for subscribe and gateway); `--target kubernetes` writes Strimzi KafkaTopics and
    KafkaUsers (with their ACLs) from the agency directory, a CloudNativePG Cluster, the
    configuration, the migration Job and the workloads, plus secrets.sh for the Secrets."""
    if target == "systemd":
        _emit({name: text for name, text in systemd_units(executable).items()}, out)
        return
    if target != "kubernetes":
        raise ValueError(f"--target must be kubernetes or systemd, not {target!r}")
    settings = load_settings()
    if create_key:
        path = create_log_key(settings, settings.pki_dir)
        print(f"checkpoint key: {path}", file=sys.stderr)
    now = datetime.now(UTC)
    options = KubeOptions(
        namespace=namespace,
        image=image or f"lienthong:{_version()}",
        kafka_cluster=kafka_cluster,
        kafka_bootstrap=kafka_bootstrap,
        postgres_cluster=postgres_cluster,
        postgres_instances=postgres_instances,
        postgres_storage=postgres_storage,
        router_replicas=router_replicas,
        gateway_agencies=tuple(gateway),
        witness=witness,
        console=console,
    )
    result = kubernetes_manifests(
        settings,
        options,
        agencies=context.agency_directory(settings),
        at=now,
        revoked=TransportPki(PkiDirectory(settings.pki_dir)).revoked_names(),
    )
    files: dict[str, str] = {name: _yaml(docs) for name, docs in result.files.items()}
    if out is None:
        print("# secrets: run with --out DIR to get secrets.sh beside the resources")
        print("---\n".join(files[name] for name in sorted(files)), end="")
        return
    files["secrets.sh"] = result.secrets_script
    _emit(files, out)
    (out / "secrets.sh").chmod(0o755)


def _yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=100)


def _emit(files: dict[str, str], out: Path | None) -> None:
    if out is None:
        for name in sorted(files):
            print(f"# --- {name}")
            print(files[name], end="")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)


def register(app: typer.Typer) -> None:
    app.command("manifests")(manifests)
