"""The `lienthong` command, assembled: the one module that imports every command group.

Each group module (infra.cli.<group>) owns its commands and a `register(app)`; none imports
this module, so the app is built in one direction only.
"""

from __future__ import annotations

from importlib import metadata

import typer

from infra.cli import (
    acl,
    archive,
    audit,
    console,
    decode,
    demo,
    edxml,
    gateway,
    kpi,
    pki,
    route,
    send,
    services,
    subscribe,
    witness,
)
from infra.logs import configure_logging

# In the order `lienthong --help` lists them.
GROUPS = (
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
)


def build_app() -> typer.Typer:
    """A new `lienthong` app with every group registered once."""
    app = typer.Typer(
        help="lienthong: the document exchange between state agencies.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def main_options(
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
        configure_logging(log_level, json=log_json)

    for group in GROUPS:
        group.register(app)
    return app


def _print_version(value: bool) -> None:
    if value:
        try:
            print(f"lienthong {metadata.version('lienthong')}")
        except metadata.PackageNotFoundError:  # run from a checkout that was never installed
            print("lienthong (not installed)")
        raise typer.Exit(0)


def main() -> None:
    build_app()()
