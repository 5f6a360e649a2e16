"""`lienthong send`, `report submit`, `paper register`, `status send`: sign and publish."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from aiokafka.errors import KafkaError

from infra import services
from infra.cli.common import EX_TEMPFAIL, passphrase_from_env
from infra.context import exchange_directory
from infra.errors import InfraError
from infra.settings import Settings, load_settings
from producers.files import (
    PayloadFileError,
    attach_files,
    load_document,
    load_paper,
    load_report,
)
from producers.refusals import (
    SendRefused,
    attachment_bytes,
    check_attachment_size,
    check_secrecy,
)
from producers.sender import DocumentSender, Receipt
from schemas.addressing import Payload
from schemas.common import AgencyRef
from schemas.envelope import SignerRole
from schemas.errors import SchemaError, ValidationError
from schemas.status import Staff, StatusCode, StatusNotice
from signing.errors import PkiError, SigningError
from signing.seal import Credential, load_credential

F = TypeVar("F", bound=Callable[..., Any])

AGENCY = typer.Option(..., "--agency", help="Agency code whose AGENCY certificate signs.")
PERSON = typer.Option(
    None, "--person", help="Also sign first with this person's PERSON certificate (Decree 30)."
)
PASSPHRASE_ENV = typer.Option(
    None, "--passphrase-env", help="Environment variable holding the private keys' passphrase."
)
ATTACH = typer.Option(
    None, "--attach", help="Attach this file inline (repeatable; up to 25 MiB in total)."
)


def _send_errors(fn: F) -> F:
    """Refusals and bad input: one line, exit 2. A transient broker failure: one line, exit 75."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SendRefused as exc:
            _fail(f"refused: {exc}", 2)
        except KafkaError as exc:
            text = str(exc)  # aiokafka's text usually starts with the class name already
            if not text.startswith(type(exc).__name__):
                text = f"{type(exc).__name__}: {text}"
            retry = " (transient: try again)" if exc.retriable else ""
            _fail(f"kafka: {text}{retry}", EX_TEMPFAIL if exc.retriable else 2)
        except (
            InfraError,
            PkiError,
            SigningError,
            ValidationError,
            SchemaError,
            PayloadFileError,
            ValueError,
            OSError,
        ) as exc:
            _fail(str(exc), 2)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _now() -> datetime:
    # The command is the composition root: the only place that reads the clock.
    return datetime.now(UTC)


def _bootstrap(settings: Settings) -> str:
    # Sending needs Kafka only: a department machine need not see the platform's database.
    return services.kafka_bootstrap(settings)


def agency_credentials(
    settings: Settings, agency: str, person: str | None, passphrase_env: str | None
) -> list[Credential]:
    """The agency's AGENCY key (and a PERSON key) from the PKI directory: what every sending
    command signs with (`lienthong edxml import` too)."""
    secret = passphrase_from_env(passphrase_env)
    creds = [load_credential(settings.pki_dir, agency, SignerRole.AGENCY, passphrase=secret)]
    if person:
        creds.append(
            load_credential(
                settings.pki_dir, agency, SignerRole.PERSON, person_name=person, passphrase=secret
            )
        )
    return creds


def publish(
    payload: Payload,
    *,
    agency: str,
    person: str | None = None,
    passphrase_env: str | None = None,
    status_to: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> Receipt:
    """Sign ``payload`` with the agency's keys from the PKI directory and publish it."""
    # Refuse what is refused anyway before touching keys or the network.
    check_secrecy(payload)
    check_attachment_size(attachment_bytes(payload))
    settings = settings or load_settings()
    creds = agency_credentials(settings, agency, person, passphrase_env)
    bootstrap = _bootstrap(settings)

    async def run() -> Receipt:
        async with DocumentSender(
            bootstrap,
            credentials=creds,
            topic=settings.topic("submissions"),
            clock=_now,
            client_options=settings.kafka_options(),
        ) as sender:
            if isinstance(payload, StatusNotice):
                return await sender.send_status(payload, to=status_to)
            return await sender.send(payload)

    return asyncio.run(run())


def _print(receipt: Receipt) -> None:
    print(
        f"message_id={receipt.message_id} document_id={receipt.document_id} "
        f"topic={receipt.topic} partition={receipt.partition} offset={receipt.offset} "
        f"bytes={receipt.size}"
    )


@_send_errors
def send_command(
    file: Path = typer.Argument(..., help="The document, .json or .toml (as schemas/examples)."),
    attach: list[Path] | None = ATTACH,
    agency: str = AGENCY,
    person: str | None = PERSON,
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Sign an official document and publish it to the exchange; prints its message id."""
    document = attach_files(load_document(file), attach or [])
    _print(publish(document, agency=agency, person=person, passphrase_env=passphrase_env))


@_send_errors
def report_submit(
    file: Path = typer.Argument(..., help="The periodic report, .json or .toml."),
    attach: list[Path] | None = ATTACH,
    agency: str = AGENCY,
    person: str | None = PERSON,
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Sign a periodic report and submit it to its recipient agency."""
    report = attach_files(load_report(file), attach or [])
    _print(publish(report, agency=agency, person=person, passphrase_env=passphrase_env))


@_send_errors
def paper_register(
    file: Path = typer.Argument(..., help="The paper exchange record, .json or .toml."),
    agency: str = AGENCY,
    person: str | None = PERSON,
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Register a document that travelled on paper (it counts against the paperless share)."""
    record = load_paper(file)
    _print(publish(record, agency=agency, person=person, passphrase_env=passphrase_env))


@_send_errors
def status_send(
    agency: str = typer.Option(..., "--agency", help="The answering agency (it signs)."),
    document: str = typer.Option(..., "--document", help="Id of the document answered."),
    code: StatusCode = typer.Option(..., "--code", help="Status code."),
    to: list[str] | None = typer.Option(
        None,
        "--to",
        help="Recipient. Answers go to the document's sender (the default, read off the "
        "document id); a revocation request (13) names each recipient of the document.",
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why; required for 02."),
    staff: str | None = typer.Option(None, "--staff", help="Name of the clerk or handler."),
    department: str | None = typer.Option(None, "--department", help="The staff's department."),
    person: str | None = PERSON,
    passphrase_env: str | None = PASSPHRASE_ENV,
) -> None:
    """Answer a document with a status notice (01..06, 15, 16) or request its revocation (13)."""
    if code is StatusCode.REJECTED and not (reason and reason.strip()):
        raise SendRefused("missing_reason", "status 02 (rejected) needs --reason", "description")
    if code is StatusCode.REVOCATION_REQUESTED and not to:
        # The recipients of a document are not knowable offline: the sender names them.
        raise SendRefused(
            "missing_recipient", "status 13 goes to the document's recipients: pass --to each"
        )
    settings = load_settings()
    known = exchange_directory(settings).lookup(agency)
    if known is None:
        raise InfraError(f"agency {agency} is not in the agency directory")
    notice = StatusNotice(
        document_id=document,
        from_agency=AgencyRef(agency, known.name),
        code=code,
        timestamp=_now(),
        description=reason,
        staff=Staff(name=staff, department=department) if staff else None,
    )
    receipt = publish(
        notice,
        agency=agency,
        person=person,
        passphrase_env=passphrase_env,
        status_to=to or None,
        settings=settings,
    )
    _print(receipt)


def register(app: typer.Typer) -> None:
    """Add the sending commands to the `lienthong` app."""
    app.command("send")(send_command)
    report_app = typer.Typer(help="Periodic reports (Decree 09/2019).", no_args_is_help=True)
    report_app.command("submit")(report_submit)
    paper_app = typer.Typer(help="Documents exchanged on paper.", no_args_is_help=True)
    paper_app.command("register")(paper_register)
    status_app = typer.Typer(help="Status notices (01..16).", no_args_is_help=True)
    status_app.command("send")(status_send)
    app.add_typer(report_app, name="report")
    app.add_typer(paper_app, name="paper")
    app.add_typer(status_app, name="status")
