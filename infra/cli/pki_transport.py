"""`lienthong pki transport`: TLS identities of Kafka clients and brokers (docs/security.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from infra.cli.common import EX_TEMPFAIL, clean_errors, passphrase_from_env
from infra.compose.acl import sync_acls
from infra.errors import InfraError
from infra.settings import load_settings
from signing.errors import PkiError
from signing.pkidir import PkiDirectory
from signing.profile import TransportKind
from signing.transportpki import TransportPki

app = typer.Typer(
    help="Transport certificates: one TLS identity per agency, platform service and broker, "
    "under a transport CA (separate from the signing keys).",
    no_args_is_help=True,
)
out = Console()


def _pki() -> TransportPki:
    return TransportPki(PkiDirectory(load_settings().pki_dir))


def _kind(
    agency: str | None, service: str | None, broker: str | None, server: str | None
) -> tuple[TransportKind, str]:
    chosen = [
        (kind, name)
        for kind, name in (
            (TransportKind.AGENCY, agency),
            (TransportKind.SERVICE, service),
            (TransportKind.BROKER, broker),
            (TransportKind.SERVER, server),
        )
        if name
    ]
    if len(chosen) != 1:
        raise PkiError("choose exactly one of --agency, --service, --broker, --server")
    return chosen[0]


def register(pki_app: typer.Typer) -> None:

    @app.command("issue")
    @clean_errors
    def issue(
        agency: str | None = typer.Option(None, help="An agency's systems: principal = its code."),
        service: str | None = typer.Option(
            None, help="A platform service: lienthong-router, lienthong-archiver, ..."
        ),
        broker: str | None = typer.Option(None, help="A Kafka node, e.g. lienthong-broker."),
        server: str | None = typer.Option(
            None, help="Another TLS server (PostgreSQL), e.g. lienthong-postgres."
        ),
        host: list[str] = typer.Option(
            ["127.0.0.1", "localhost"], "--host", help="Broker DNS name or IP (repeatable)."
        ),
        days: int = typer.Option(397, min=1, help="Validity in days."),
        passphrase_env: str | None = typer.Option(
            None, help="Environment variable holding a passphrase that encrypts the key."
        ),
        ca_passphrase_env: str | None = typer.Option(
            None, help="Environment variable holding the CA keys' passphrase."
        ),
    ) -> None:
        """Issue a key and TLS certificate: CN = the principal's name (User:<name> in Kafka)."""
        kind, name = _kind(agency, service, broker, server)
        entry = _pki().issue(
            kind,
            name,
            now=datetime.now(UTC),
            hosts=tuple(host) if kind in (TransportKind.BROKER, TransportKind.SERVER) else (),
            days=days,
            passphrase=passphrase_from_env(passphrase_env),
            ca_passphrase=passphrase_from_env(ca_passphrase_env),
        )
        tp = _pki()
        typer.echo(f"principal {entry.principal}")
        for label, rel in (
            ("chain", entry.chain),
            ("key", entry.key),
            ("keystore", entry.keystore),
        ):
            typer.echo(f"{label:9} {tp.path(rel)}")
        typer.echo(f"ca-file   {tp.ca_bundle}")

    @app.command("revoke")
    @clean_errors
    def revoke(
        name: str = typer.Argument(..., help="The principal's name (agency code or service)."),
        sync: bool = typer.Option(
            True,
            "--sync/--no-sync",
            help="Then remove its ACLs from the cluster (`lienthong acl sync`); --no-sync when "
            "the cluster is not reachable from here.",
        ),
    ) -> None:
        """Mark a principal's transport certificates revoked and remove its ACLs. Kafka reads
        no CRL: the certificate still completes a TLS handshake, but with no ACL it may do
        nothing (docs/security.md)."""
        settings = load_settings()
        for e in _pki().revoke(name, now=datetime.now(UTC)):
            typer.echo(f"revoked {e.serial[:16]} {e.principal}")
        if not sync:
            typer.echo("its ACLs stay until `lienthong acl sync` runs against the cluster")
            return
        try:
            result = sync_acls(settings)
        except InfraError as exc:
            typer.echo(f"revoked, but its ACLs are still on the cluster: {exc}", err=True)
            typer.echo("run `lienthong acl sync` once the cluster is reachable", err=True)
            raise typer.Exit(EX_TEMPFAIL) from None
        for rule in result.removed:
            typer.echo(f"- {rule.line()}")
        typer.echo(f"removed {len(result.removed)} ACLs, added {len(result.added)}")

    @app.command("list")
    @clean_errors
    def list_transport() -> None:
        """Table of transport certificates."""
        table = Table("serial", "kind", "principal", "not after", "status")
        for e in _pki().entries():
            table.add_row(e.serial[:16], e.kind, e.principal, e.not_after[:10], e.status)
        out.print(table)

    pki_app.add_typer(app, name="transport", help="Transport (TLS) certificates for Kafka.")
