"""The `lienthong audit` command group, shared: `check` (infra.cli_archive) and the auditors'
search/show/verify/export (infra.cli_audit) each add their commands to it."""

from __future__ import annotations

import typer

audit_app = typer.Typer(
    help="Audit the archive: search it, show documents, verify evidence, check integrity.",
    no_args_is_help=True,
)
