"""The `lienthong` command, assembled: the one module that imports every command group.

Each group module (infra.cli.<group>) owns its commands and a `register(app)`; none imports
this module, so the app is built in one direction only.
"""

from __future__ import annotations

import typer

from infra.cli import (
    acl,
    archive,
    audit,
    decode,
    demo,
    kpi,
    pki,
    route,
    send,
    services,
    subscribe,
)
from infra.logs import configure_logging

# In the order `lienthong --help` lists them.
GROUPS = (services, pki, acl, route, send, subscribe, archive, audit, kpi, decode, demo)


def build_app() -> typer.Typer:
    """A new `lienthong` app with every group registered once."""
    app = typer.Typer(
        help="lienthong: the document exchange between state agencies.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

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

    for group in GROUPS:
        group.register(app)
    return app


def main() -> None:
    build_app()()
