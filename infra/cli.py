"""The `lienthong` command: the composition root that wires settings, logging and services."""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from infra import services
from infra.cli_pki import app as pki_app
from infra.errors import InfraError
from infra.logs import configure_logging
from infra.settings import Settings, load_settings
from signing.errors import PkiError

app = typer.Typer(
    help="lienthong: the document exchange between state agencies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
infra_app = typer.Typer(
    help="Start, stop and inspect the local Kafka broker and PostgreSQL.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the manifests.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")

out = Console()
F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(fn: F) -> F:
    """Expected failures end in one line on stderr and exit code 2, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InfraError, ValueError, PkiError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main_options(
    log_level: str = typer.Option("INFO", envvar="LIENTHONG_LOG_LEVEL", help="Log level."),
    log_json: bool | None = typer.Option(
        None,
        "--log-json/--log-console",
        help="Force JSON or console logs (default: JSON unless stderr is a terminal).",
    ),
) -> None:
    configure_logging(log_level, json=log_json)


def _settings() -> Settings:
    return load_settings()


@infra_app.command("up")
@clean_errors
def infra_up() -> None:
    """Start Kafka and PostgreSQL (or check the ones the environment names)."""
    settings = _settings()
    ep = services.up(settings)
    out.print(f"kafka     {ep.bootstrap}")
    out.print(f"postgres  {ep.database_url}")
    out.print(f"state     {settings.home}")


@infra_app.command("down")
@clean_errors
def infra_down() -> None:
    """Stop the services this project started (never the external ones)."""
    stopped = services.down(_settings())
    out.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@infra_app.command("status")
@clean_errors
def infra_status() -> None:
    """Report each service; exits 1 when one is crashed or unreachable."""
    reports = services.status(_settings())
    table = Table("service", "state", "address", "detail")
    for r in reports:
        table.add_row(r.name, r.state, r.address or "-", r.detail)
    out.print(table)
    if any(r.state not in ("running", "external", "stopped") for r in reports):
        raise typer.Exit(1)


@infra_app.command("env")
@clean_errors
def infra_env() -> None:
    """Print the endpoints as shell exports (eval "$(lienthong infra env)")."""
    ep = services.endpoints(_settings())
    print(f"export LIENTHONG_KAFKA_BOOTSTRAP={ep.bootstrap}")
    print(f"export LIENTHONG_DATABASE_URL={ep.database_url}")


@db_app.command("migrate")
@clean_errors
def db_migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet."""
    import asyncpg

    from infra.migrate import migrate

    url = services.database_url(_settings())

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
def topics_ensure() -> None:
    """Create the topics the manifests name (idempotent), with a per-agency inbox each."""
    from infra.topic_setup import ensure_all

    settings = _settings()
    outcomes = asyncio.run(ensure_all(settings, services.kafka_bootstrap(settings)))
    table = Table("topic", "action", "detail")
    for o in outcomes:
        if o.action != "unchanged" or not o.name.startswith(f"{settings.topic_prefix}inbox."):
            table.add_row(o.name, o.action, o.detail)
    out.print(table)
    created = sum(o.action == "created" for o in outcomes)
    out.print(f"{len(outcomes)} topics: {created} created, {len(outcomes) - created} present")


app.add_typer(pki_app, name="pki", help="Agency PKI: root CA, certificates, revocation.")

# Commands that live beside the edge they wire; they import this module (for `app`, `out` and
# `clean_errors`), so they are registered once it is loaded, not at import time.
_EDGE_COMMANDS = (
    "infra.cli_route",
    "infra.cli_send",
    "infra.cli_subscribe",
    "infra.cli_archive",
    "infra.cli_audit",
    "infra.cli_kpi",
)
_registered: list[str] = []


def build_app() -> typer.Typer:
    """The full command, every group registered exactly once."""
    for module in _EDGE_COMMANDS:
        if module not in _registered:
            importlib.import_module(module).register(app)
            _registered.append(module)
    return app


@app.command("demo")
@clean_errors
def demo() -> None:
    """Run the main flow end to end on the services, printing what happened."""
    from infra.demo import run_demo

    # The demo prints what happened as tables; per-message log lines would drown them.
    configure_logging(os.environ.get("LIENTHONG_LOG_LEVEL", "WARNING"))
    settings = _settings()
    ep = services.up(settings)
    console = out if out.is_terminal else Console(width=150)
    asyncio.run(run_demo(settings, ep, console))


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()
