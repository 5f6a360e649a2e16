"""`lienthong edxml import` and `edxml export`: national-axis files into the exchange and
deliveries back out as edXML (docs/edxml.md)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer

from consumers.inbox import safe_name
from infra import services
from infra.cli.common import broker_errors, progress_bar
from infra.cli.send import AGENCY, PASSPHRASE_ENV, PERSON, agency_credentials
from infra.gateway import (
    Outcome,
    export_delivery,
    import_files,
    national_legacy_codes,
    signature_checker,
)
from infra.settings import load_settings
from producers.refusals import SendRefused
from producers.sender import DocumentSender
from schemas.errors import SchemaError, ValidationError
from signing.errors import SigningError
from signing.pkidir import PkiDirectory

F = TypeVar("F", bound=Callable[..., Any])


def _now() -> datetime:
    return datetime.now(UTC)  # the command is the composition root: it reads the clock


@broker_errors(SigningError, SendRefused, SchemaError, ValidationError)
def import_command(
    files: list[Path] = typer.Argument(..., help="edXML files (documents or statuses)."),
    agency: str = AGENCY,
    person: str | None = PERSON,
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Import edXML files, seal each with AGENCY's keys and send it; one line per file
    (document id, message id, the receipt profile's flags). Exit 2 if any file was refused."""
    settings = load_settings()
    creds = agency_credentials(settings, agency, person, passphrase_env)
    bootstrap = services.kafka_bootstrap(settings)
    legacy = national_legacy_codes()
    verify = signature_checker(PkiDirectory(settings.pki_dir).root_cert, _now)

    async def run() -> list[Outcome]:
        async with DocumentSender(
            bootstrap,
            credentials=creds,
            topic=settings.topic("submissions"),
            clock=_now,
            client_options=settings.kafka_options(),
        ) as sender:
            with progress_bar("edxml import", len(files)) as bar:
                return await import_files(
                    files, sender, legacy_codes=legacy, verify=verify, done=bar.advance
                )

    outcomes = asyncio.run(run())
    for outcome in outcomes:
        print(outcome.line(), file=sys.stderr if outcome.state == "refused" else sys.stdout)
    if any(o.state == "refused" for o in outcomes):
        raise typer.Exit(2)


@broker_errors(SigningError, SendRefused, SchemaError, ValidationError)
def export_command(
    in_file: Path | None = typer.Option(
        None, "--in", help="document.json of a delivery folder written by `lienthong subscribe`."
    ),
    document: str | None = typer.Option(
        None, "--document", help="A document id: its folder under --dir."
    ),
    folder: Path | None = typer.Option(
        None, "--dir", help="The --out directory of `lienthong subscribe` (with --document)."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the .edxml."),
) -> None:
    """Write a delivered document as edXML; reads the signed envelope.avro of the delivery."""
    if (in_file is None) == (document is None):
        raise ValueError("give either --in FILE.json or --document ID (with --dir)")
    if document is not None:
        if folder is None:
            raise ValueError("--document needs --dir, the out directory of `lienthong subscribe`")
        in_file = folder / safe_name(document)
    assert in_file is not None
    data = export_delivery(in_file)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(data):,} bytes)")


def register(app: typer.Typer) -> None:
    """Add `lienthong edxml import|export`."""
    group = typer.Typer(
        help="edXML, the national axis's format (docs/edxml.md).", no_args_is_help=True
    )
    group.command("import")(import_command)
    group.command("export")(export_command)
    app.add_typer(group, name="edxml")
