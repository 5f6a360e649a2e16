"""`lienthong acl`: the cluster's ACLs from the agency directory (docs/security.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from infra import context
from infra.acl import is_managed, principal_of, strimzi_users
from infra.cli.common import clean_errors
from infra.compose.acl import acl_admin, sync_acls, wanted_acls
from infra.settings import Settings, load_settings

app = typer.Typer(
    help="Kafka ACLs derived from the agency directory: sync, list, export.",
    no_args_is_help=True,
)


@app.command("sync")
@clean_errors
def sync(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the changes, apply none."),
) -> None:
    """Make the cluster's ACLs match the directory: every open agency and the platform
    services get theirs; closed agencies and revoked transport identities lose theirs.
    Idempotent; prints what it added and removed. Needs the administrator's identity."""
    settings = load_settings()
    result = sync_acls(settings, dry_run=dry_run)
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
def list_acls() -> None:
    """Every ACL on the cluster, one per line."""
    for rule in acl_admin(load_settings()).list():
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
    typer.echo(strimzi_users(wanted_acls(settings), cluster, namespace), nl=False)


scram = typer.Typer(
    help="SCRAM-SHA-512 users for the SASL_SSL listener (departments without certificates).",
    no_args_is_help=True,
)


def _known_principal(settings: Settings, user: str) -> None:
    """A SCRAM user is worth creating only under a name the ACL table knows: an open agency or
    a platform service. Any other name could log in and do nothing, or collide with an
    operator's own principals, which `acl sync` leaves alone."""
    if not is_managed(principal_of(user)):
        raise ValueError(
            f"{user!r} is neither an agency code (e.g. 000.00.31.H26) nor a lienthong-* service"
        )
    if "." in user and not context.exchange_directory(settings).is_open(user, datetime.now(UTC)):
        raise ValueError(f"{user} is not an open agency of the directory: it would have no ACLs")


@scram.command("set")
@clean_errors
def scram_set(
    user: str = typer.Argument(..., help="Agency code or lienthong-* service name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (one line)."
    ),
) -> None:
    """Create or replace a user's SCRAM-SHA-512 credential. The principal is User:<user>, so
    the agency's ACLs apply unchanged. Prompts for the password unless --password-stdin."""
    import sys

    settings = load_settings()
    _known_principal(settings, user)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    acl_admin(settings).set_scram(user, password)
    typer.echo(f"set SCRAM-SHA-512 credential of User:{user}")


@scram.command("delete")
@clean_errors
def scram_delete(user: str = typer.Argument(...)) -> None:
    """Remove a user's SCRAM credential: its next login fails (open sessions last until they
    re-authenticate; see docs/security.md)."""
    acl_admin(load_settings()).delete_scram(user)
    typer.echo(f"deleted SCRAM-SHA-512 credential of User:{user}")


@scram.command("list")
@clean_errors
def scram_list() -> None:
    """The cluster's SCRAM-SHA-512 users, one per line with the iteration count."""
    for user, iterations in acl_admin(load_settings()).scram_users().items():
        typer.echo(f"User:{user} SCRAM-SHA-512 iterations={iterations}")


app.add_typer(scram, name="scram")


def register(main_app: typer.Typer) -> None:
    main_app.add_typer(app, name="acl", help="Kafka ACLs from the agency directory.")
