"""`lienthong pki`: a development PKI for agencies (root CA, certificates, revocation, CRL)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from infra.cli.common import passphrase_from_env
from infra.settings import load_settings
from signing.errors import PkiError, SigningError
from signing.pki import KEY_ALGORITHMS
from signing.pkidir import PkiDirectory
from signing.profile import CertRole

app = typer.Typer(
    help="Agency PKI: root CA, agency/person/platform/archive certificates, revocation, CRL.",
    no_args_is_help=True,
)
out = Console()
F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(fn: F) -> F:
    """Expected failures end in one line on stderr and exit code 2, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (PkiError, SigningError, ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def pki_dir() -> Path:
    """LIENTHONG_PKI_DIR, else $LIENTHONG_HOME/pki (see infra.settings)."""
    return load_settings().pki_dir


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in KEY_ALGORITHMS:
        raise PkiError(f"unknown algorithm {algorithm!r}; one of {', '.join(KEY_ALGORITHMS)}")
    return algorithm


def _role(person: str | None, platform: bool, archive: bool) -> CertRole:
    chosen = [r for r, on in ((CertRole.PLATFORM, platform), (CertRole.ARCHIVE, archive)) if on]
    if person:
        chosen.append(CertRole.PERSON)
    if len(chosen) > 1:
        raise PkiError("choose at most one of --person, --platform, --archive")
    return chosen[0] if chosen else CertRole.AGENCY


def _now() -> datetime:
    # The CLI is the composition root: the only place that reads the clock.
    return datetime.now(UTC)


@app.command("init")
@_clean_errors
def init(
    algorithm: str = typer.Option("ecdsa-p256", help=f"CA key: {' | '.join(KEY_ALGORITHMS)}."),
    intermediate: bool = typer.Option(False, help="Also create an issuing CA under the root."),
    passphrase_env: str | None = typer.Option(
        None, help="Environment variable holding the passphrase that encrypts the CA keys."
    ),
    days: int = typer.Option(3650, min=1, help="Root CA validity in days."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA (and all issued)."),
) -> None:
    """Create the root CA in the PKI directory; refuses to overwrite without --force."""
    pki = PkiDirectory(pki_dir())
    written = pki.init(
        now=_now(),
        algorithm=_check_algorithm(algorithm),
        passphrase=passphrase_from_env(passphrase_env),
        intermediate=intermediate,
        force=force,
        days=days,
    )
    for path in written:
        typer.echo(str(path))


@app.command("issue")
@_clean_errors
def issue(
    agency: str = typer.Option(..., help="Agency code DDD.DD.DD.LDD, e.g. 000.00.00.H26."),
    person: str | None = typer.Option(None, help="Issue a PERSON certificate for this name."),
    platform: bool = typer.Option(False, "--platform", help="Issue the platform's certificate."),
    archive: bool = typer.Option(False, "--archive", help="Issue the archive's certificate."),
    agency_name: str | None = typer.Option(None, help="Agency name for O (default: the code)."),
    algorithm: str = typer.Option("ecdsa-p256", help=f"Key: {' | '.join(KEY_ALGORITHMS)}."),
    passphrase_env: str | None = typer.Option(
        None, help="Environment variable with a passphrase to encrypt the new key."
    ),
    ca_passphrase_env: str | None = typer.Option(
        None, help="Environment variable with the CA key passphrase."
    ),
    days: int = typer.Option(730, min=1, help="Validity in days."),
) -> None:
    """Issue an agency (default), person, platform or archive certificate; prints the paths."""
    pki = PkiDirectory(pki_dir())
    paths = pki.issue(
        agency_code=agency,
        role=_role(person, platform, archive),
        now=_now(),
        person_name=person,
        agency_name=agency_name,
        algorithm=_check_algorithm(algorithm),
        passphrase=passphrase_from_env(passphrase_env),
        ca_passphrase=passphrase_from_env(ca_passphrase_env),
        days=days,
    )
    typer.echo(f"serial {paths.serial}")
    for path in (paths.certificate, paths.chain, paths.key):
        typer.echo(str(path))


@app.command("revoke")
@_clean_errors
def revoke(
    serial: str | None = typer.Option(None, help="Serial number (hex, as `pki list` shows)."),
    agency: str | None = typer.Option(None, help="Revoke this agency's certificate instead."),
    person: str | None = typer.Option(None, help="With --agency: the person's certificate."),
    platform: bool = typer.Option(False, "--platform", help="With --agency: the platform's."),
    archive: bool = typer.Option(False, "--archive", help="With --agency: the archive's."),
    reason: str = typer.Option(
        "unspecified", help="keyCompromise | superseded | affiliationChanged | ... (RFC 5280)."
    ),
    ca_passphrase_env: str | None = typer.Option(
        None, help="Environment variable with the CA key passphrase."
    ),
) -> None:
    """Revoke one certificate, update the index and republish crl.pem."""
    pki = PkiDirectory(pki_dir())
    if (serial is None) == (agency is None):
        raise PkiError("give exactly one of --serial or --agency")
    if agency is not None:
        role = _role(person, platform, archive)
        matches = pki.find(agency_code=agency, role=role, person_name=person)
        if len(matches) != 1:
            found = ", ".join(m.serial for m in matches) or "none"
            raise PkiError(
                f"{len(matches)} valid {role} certificates match ({found}); use --serial"
            )
        serial = matches[0].serial
    if serial is None:  # unreachable: exactly one of the two was given
        raise PkiError("give --serial")
    entry = pki.revoke(
        serial, reason=reason, now=_now(), ca_passphrase=passphrase_from_env(ca_passphrase_env)
    )
    typer.echo(f"revoked {entry.serial} ({entry.subject}): {entry.reason}")
    typer.echo(str(pki.crl))


@app.command("list")
@_clean_errors
def list_certificates() -> None:
    """Table of issued certificates with their status."""
    pki = PkiDirectory(pki_dir())
    table = Table("serial", "role", "agency", "person", "algorithm", "not after", "status")
    for e in pki.entries():
        status = f"revoked ({e.reason})" if e.status == "revoked" else e.status
        table.add_row(
            e.serial[:16],
            e.role,
            e.agency_code,
            e.person_name or "",
            e.algorithm,
            e.not_after[:10],
            status,
        )
    out.print(table)


def register(main_app: typer.Typer) -> None:
    main_app.add_typer(app, name="pki", help="Agency PKI: root CA, certificates, revocation.")
