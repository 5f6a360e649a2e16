"""The `lienthong` command, assembled: the one module that imports every command group.

Each group module (infra.cli.<group>) owns its commands and a `register(app)`; none imports
this module, so the app is built in one direction only.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import typer

from infra.cli import (
    acl,
    archive,
    audit,
    config,
    console,
    decode,
    demo,
    edxml,
    gateway,
    kpi,
    manifests,
    pki,
    route,
    send,
    services,
    subscribe,
    witness,
)
from infra.config import CONFIG_ENV, ConfigError, apply_config
from infra.logs import configure_logging
from infra.observe import start_tracing
from infra.settings import load_settings

# In the order `lienthong --help` lists them.
GROUPS = (
    config,
    services,
    pki,
    acl,
    route,
    send,
    edxml,
    subscribe,
    gateway,
    archive,
    audit,
    witness,
    kpi,
    console,
    decode,
    demo,
    manifests,
)

# The commands that send, route, deliver or archive records, and the service name their spans
# carry when LIENTHONG_OTEL_ENDPOINT is set (docs/observability.md, Traces).
TRACED_COMMANDS = {
    "send": "lienthong-sender",
    "route": "lienthong-router",
    "subscribe": "lienthong-subscriber",
    "archive": "lienthong-archiver",
    "gateway": "lienthong-gateway",
    "edxml": "lienthong-edxml",
    "kpi": "lienthong-kpi",
    "demo": "lienthong-demo",
}


def build_app() -> typer.Typer:
    """A new `lienthong` app with every group registered once."""
    app = typer.Typer(
        help="lienthong: the document exchange between state agencies.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def main_options(
        ctx: typer.Context,
        config_path: Path | None = typer.Option(
            None,
            "--config",
            envvar=CONFIG_ENV,
            dir_okay=False,
            help="TOML configuration file; LIENTHONG_* environment variables override it.",
        ),
        version: bool = typer.Option(
            False,
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print lienthong's version and exit.",
        ),
        log_level: str = typer.Option("INFO", envvar="LIENTHONG_LOG_LEVEL", help="Log level."),
        log_json: bool | None = typer.Option(
            None,
            "--log-json/--log-console",
            help="Force JSON or console logs (default: JSON unless stderr is a terminal).",
        ),
    ) -> None:
        try:
            ctx.obj = apply_config(config_path, os.environ)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        source = ctx.get_parameter_source("log_level")
        if source is not None and source.name == "DEFAULT":
            # Options read their variables before the file filled the environment.
            log_level = os.environ.get("LIENTHONG_LOG_LEVEL") or log_level
        try:
            configure_logging(log_level, json=log_json)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        _start_tracing(ctx)

    for group in GROUPS:
        group.register(app)
    return app


def _start_tracing(ctx: typer.Context) -> None:
    """Spans to the configured collector, flushed when the command ends; nothing at all
    (not even an import of OpenTelemetry) without LIENTHONG_OTEL_ENDPOINT."""
    service = TRACED_COMMANDS.get(ctx.invoked_subcommand or "")
    if service is None:
        return
    try:
        endpoint = load_settings().otel_endpoint
    except ValueError:
        return  # another setting is malformed: the command itself says which
    try:
        stop = start_tracing(endpoint, service)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if stop is not None:
        ctx.call_on_close(stop)


def _print_version(value: bool) -> None:
    if value:
        try:
            print(f"lienthong {metadata.version('lienthong')}")
        except metadata.PackageNotFoundError:  # run from a checkout that was never installed
            print("lienthong (not installed)")
        raise typer.Exit(0)


def main() -> None:
    build_app()()
