"""`lienthong acl`: the cluster's ACLs from the agency directory (docs/security.md)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import typer

from infra import context, services
from infra.acl import AclAdmin, AclRule, derive_acls, strimzi_users
from infra.cli.common import TABLE_OR_JSON, check_format, clean_errors
from infra.settings import Settings, load_settings
from signing.pkidir import PkiDirectory
from signing.transportpki import TransportPki

app = typer.Typer(
    help="Kafka ACLs derived from the agency directory: sync, list, export.",
    no_args_is_help=True,
)


def wanted_acls(settings: Settings, at: datetime) -> list[AclRule]:
    revoked = TransportPki(PkiDirectory(settings.pki_dir)).revoked_names()
    return derive_acls(
        context.agency_directory(settings), settings.topic_prefix, at=at, revoked=revoked
    )


def _admin(settings: Settings) -> AclAdmin:
    bootstrap = services.kafka_bootstrap(settings)
    return AclAdmin(bootstrap, settings.kafka_security.librdkafka_options())


@app.command("sync")
@clean_errors
def sync(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the changes, apply none."),
) -> None:
    """Make the cluster's ACLs match the directory: every open agency and the platform
    services get theirs; closed agencies and revoked transport identities lose theirs.
    Idempotent; prints what it added and removed. Needs the administrator's identity."""
    settings = load_settings()
    result = _admin(settings).sync(wanted_acls(settings, datetime.now(UTC)), dry_run=dry_run)
    for rule in result.added:
        typer.echo(f"+ {rule.line()}")
    for rule in result.removed:
        typer.echo(f"- {rule.line()}")
    verb = "would add" if dry_run else "added"
    typer.echo(
        f"{verb} {len(result.added)}, {'would remove' if dry_run else 'removed'} "
        f"{len(result.removed)}, kept {result.kept}"
    )


@app.command("list")
@clean_errors
def list_acls(fmt: str = TABLE_OR_JSON) -> None:
    """Every ACL on the cluster, one per line (json: a list of objects)."""
    check_format(fmt)
    rules = _admin(load_settings()).list()
    if fmt == "json":
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rules], indent=2))
        return
    for rule in rules:
        typer.echo(rule.line())


@app.command("export")
@clean_errors
def export(
    fmt: str = typer.Option("strimzi", "--format", help="strimzi: KafkaUser resources (YAML)."),
    cluster: str = typer.Option("lienthong", help="The Strimzi Kafka cluster's name."),
    namespace: str | None = typer.Option(None, help="Kubernetes namespace of the users."),
) -> None:
    """The ACLs the directory asks for, as resources for another cluster (no Kafka needed)."""
    if fmt != "strimzi":
        raise ValueError(f"--format must be strimzi, not {fmt!r}")
    settings = load_settings()
    typer.echo(
        strimzi_users(wanted_acls(settings, datetime.now(UTC)), cluster, namespace), nl=False
    )


def register(main_app: typer.Typer) -> None:
    main_app.add_typer(app, name="acl", help="Kafka ACLs from the agency directory.")
