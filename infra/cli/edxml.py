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
from cryptography import x509

from consumers.inbox import safe_name
from infra import services
from infra.cli.common import broker_errors, passphrase_from_env
from infra.cli.send import AGENCY, PASSPHRASE_ENV, PERSON, agency_credentials
from infra.gateway import (
    NationalIds,
    Outcome,
    export_delivery,
    import_files,
    national_legacy_codes,
    signature_checker,
)
from infra.settings import load_settings, national_ids_file
from producers.refusals import SendRefused
from producers.sender import DocumentSender
from schemas.errors import SchemaError, ValidationError
from signing.edxml import sign_edxml
from signing.errors import SigningError
from signing.pkidir import PkiDirectory
from signing.profile import is_agency_code
from signing.seal import Credential, SignerRole, load_credential

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
    legacy = national_legacy_codes(settings.national_agencies_file)
    verify = signature_checker(PkiDirectory(settings.pki_dir).root_cert, _now)

    async def run() -> list[Outcome]:
        async with DocumentSender(
            bootstrap,
            credentials=creds,
            topic=settings.topic("submissions"),
            clock=_now,
            client_options=settings.kafka_options(),
        ) as sender:
            return await import_files(
                files,
                sender,
                legacy_codes=legacy,
                verify=verify,
                national_ids=NationalIds(national_ids_file(settings)),
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
    sign_as: str = typer.Option(
        "platform",
        "--sign-as",
        help="Whose key signs the edXML (XML-DSig): 'platform' (the converter, default), an "
        "agency code (its AGENCY key, e.g. the sender exporting its own document), or 'none'.",
    ),
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Write a delivered document as edXML, signed (XML-DSig) by the platform or an agency;
    reads the signed envelope.avro of the delivery."""
    if (in_file is None) == (document is None):
        raise ValueError("give either --in FILE.json or --document ID (with --dir)")
    if document is not None:
        if folder is None:
            raise ValueError("--document needs --dir, the out directory of `lienthong subscribe`")
        in_file = folder / safe_name(document)
    assert in_file is not None
    data = export_delivery(in_file)
    signer = _export_signer(sign_as, passphrase_env)
    if signer is not None:
        data = sign_edxml(data, signer)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    signed = ""
    if signer is not None:
        subject = x509.load_der_x509_certificate(signer.chain[0]).subject.rfc4514_string()
        signed = f", signed by {subject}"
    print(f"wrote {out} ({len(data):,} bytes{signed})")


def _export_signer(sign_as: str, passphrase_env: str | None) -> Credential | None:
    if sign_as == "none":
        return None
    settings = load_settings()
    passphrase = passphrase_from_env(passphrase_env)
    if sign_as == "platform":
        return load_credential(
            settings.pki_dir, settings.platform_agency, SignerRole.PLATFORM, passphrase=passphrase
        )
    if not is_agency_code(sign_as):
        raise ValueError(f"--sign-as takes 'platform', 'none' or an agency code, not {sign_as!r}")
    return load_credential(settings.pki_dir, sign_as, SignerRole.AGENCY, passphrase=passphrase)


def register(app: typer.Typer) -> None:
    """Add `lienthong edxml import|export`."""
    group = typer.Typer(
        help="edXML, the national axis's format (docs/edxml.md).", no_args_is_help=True
    )
    group.command("import")(import_command)
    group.command("export")(export_command)
    app.add_typer(group, name="edxml")
