"""`lienthong infra|db|topics`: start, stop and inspect the services; migrate; create topics."""

from __future__ import annotations

import asyncio
import shlex
import sys

import typer

from infra import services
from infra.cli.common import TABLE_OR_JSON, check_format, clean_errors, out, print_records
from infra.settings import load_settings

infra_app = typer.Typer(
    help="Start, stop and inspect the local Kafka broker and PostgreSQL.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the manifests.", no_args_is_help=True)


@infra_app.command("up")
@clean_errors
def infra_up(
    brokers: int | None = typer.Option(
        None, "--brokers", min=1, help="Run a cluster of this many nodes (default: one broker)."
    ),
    secure: bool | None = typer.Option(
        None,
        "--secure/--plaintext",
        help="TLS on every listener, client certificates, SCRAM, ACLs (docs/security.md).",
    ),
) -> None:
    """Start Kafka and PostgreSQL (or check the ones the environment names)."""
    settings = load_settings()
    ep = services.up(settings, brokers=brokers, secure=secure)
    # Whole lines (no wrapping at the terminal's width): the addresses are copied from here.
    out.print(f"kafka     {ep.bootstrap}", soft_wrap=True)
    out.print(f"postgres  {ep.database_url}", soft_wrap=True)
    out.print(f"state     {settings.home}", soft_wrap=True)


@infra_app.command("down")
@clean_errors
def infra_down() -> None:
    """Stop the services this project started (never the external ones)."""
    stopped = services.down(load_settings())
    out.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@infra_app.command("status")
@clean_errors
def infra_status(fmt: str = TABLE_OR_JSON) -> None:
    """Report each service; exits 1 when one is crashed or unreachable."""
    check_format(fmt)
    reports = services.status(load_settings())
    records = [
        {"service": r.name, "state": r.state, "address": r.address, "detail": r.detail}
        for r in reports
    ]
    print_records(
        fmt,
        ("service", "state", "address", "detail"),
        records,
        lambda r: (r["service"], r["state"], r["address"] or "-", r["detail"]),
    )
    if any(r.state not in ("running", "external", "stopped") for r in reports):
        raise typer.Exit(1)


@infra_app.command("env")
@clean_errors
def infra_env() -> None:
    """Print the endpoints as shell exports (eval "$(lienthong infra env)")."""
    ep = services.endpoints(load_settings())
    # Quoted: the database URL holds a `?` (its passfile), which an unquoted shell word globs.
    print(f"export LIENTHONG_KAFKA_BOOTSTRAP={shlex.quote(ep.bootstrap)}")
    # A secure cluster: the administrator's identity (a department uses its own certificate).
    for name, value in services.kafka_client_env(load_settings()).items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"export LIENTHONG_DATABASE_URL={shlex.quote(ep.database_url)}")


@db_app.command("migrate")
@clean_errors
def db_migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet."""
    import asyncpg

    from infra.services.migrate import migrate

    url = services.database_url(load_settings())

    async def run() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    out.print("applied: " + ", ".join(applied) if applied else "database is up to date")


@topics_app.command("ensure")
@clean_errors
def topics_ensure(fmt: str = TABLE_OR_JSON) -> None:
    """Create the topics the manifests name (idempotent), with a per-agency inbox each.
    The table leaves out inboxes that were there already; json lists every topic."""
    from infra.services.topic_setup import ensure_all

    check_format(fmt)
    settings = load_settings()
    outcomes = asyncio.run(ensure_all(settings, services.kafka_bootstrap(settings)))
    inboxes = f"{settings.topic_prefix}inbox."
    records = [
        {"topic": o.name, "action": o.action, "detail": o.detail}
        for o in outcomes
        if fmt == "json" or o.action != "unchanged" or not o.name.startswith(inboxes)
    ]
    print_records(fmt, ("topic", "action", "detail"), records)
    created = sum(o.action == "created" for o in outcomes)
    summary = f"{len(outcomes)} topics: {created} created, {len(outcomes) - created} present"
    if fmt == "json":
        print(summary, file=sys.stderr)
    else:
        out.print(summary)


def register(app: typer.Typer) -> None:
    app.add_typer(infra_app, name="infra")
    app.add_typer(db_app, name="db")
    app.add_typer(topics_app, name="topics")
