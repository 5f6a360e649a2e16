"""`lienthong pki`: a development PKI for agencies (root CA, certificates, revocation, CRL)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from aiokafka.errors import KafkaError

from infra import services
from infra.cli import pki_transport
from infra.cli.common import TABLE_OR_JSON, check_format, passphrase_from_env, print_records
from infra.compose.trust import publish_pki_crl
from infra.errors import InfraError
from infra.settings import load_settings
from signing.errors import PkiError, SigningError
from signing.pki import KEY_ALGORITHMS
from signing.pkidir import PkiDirectory
from signing.profile import CertRole

app = typer.Typer(
    help="Agency PKI: root CA, agency/person/platform/archive certificates, revocation, CRL, "
    "renewal.",
    no_args_is_help=True,
)
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
    publish: bool | None = typer.Option(
        None,
        "--publish/--no-publish",
        help="Publish the new CRL to the crl topic (default: when Kafka is configured or running).",
    ),
) -> None:
    """Revoke one certificate, update the index, republish crl.pem and the crl topic."""
    pki = PkiDirectory(pki_dir())
    serial = _one_serial(pki, serial, agency, person, platform, archive)
    entry = pki.revoke(
        serial, reason=reason, now=_now(), ca_passphrase=passphrase_from_env(ca_passphrase_env)
    )
    typer.echo(f"revoked {entry.serial} ({entry.subject}): {entry.reason}")
    typer.echo(str(pki.crl))
    _publish(pki, publish)


def _publish(pki: PkiDirectory, publish: bool | None) -> None:
    """Put crl.pem on `<prefix>crl`, where running services pick it up within seconds.

    publish=None: when a broker is configured or running here; without one, a warning (the
    CRL is still in crl.pem, which processes read at start). True: a failure is an error.
    """
    if publish is False:
        return
    settings = load_settings()
    try:
        bootstrap = services.kafka_bootstrap(settings)
    except InfraError as exc:
        if publish:
            raise PkiError(f"CRL not published: {exc}") from None
        print(
            f"warning: CRL not published to {settings.topic('crl')} ({exc}); running services "
            "see it at restart, or run `lienthong pki publish-crl` once Kafka is up",
            file=sys.stderr,
        )
        return
    try:
        offset = asyncio.run(publish_pki_crl(settings, bootstrap, pki))
    except KafkaError as exc:
        raise PkiError(
            f"CRL written to {pki.crl} but NOT published to {settings.topic('crl')}: "
            f"{type(exc).__name__}: {exc}; run `lienthong pki publish-crl --as-is`"
        ) from None
    typer.echo(f"published to {settings.topic('crl')} at offset {offset}")


@app.command("publish-crl")
@_clean_errors
def publish_crl(
    as_is: bool = typer.Option(
        False, "--as-is", help="Publish crl.pem unchanged instead of signing a fresh one."
    ),
    next_update_days: int = typer.Option(7, min=1, help="Days until the fresh CRL's nextUpdate."),
    ca_passphrase_env: str | None = typer.Option(
        None, help="Environment variable with the CA key passphrase."
    ),
) -> None:
    """Sign the CRL again (new thisUpdate, nextUpdate and number) and publish it to the crl
    topic; run it well before nextUpdate (services fail closed after nextUpdate + the grace)."""
    pki = PkiDirectory(pki_dir())
    if not as_is:
        pki.publish_crl(
            now=_now(),
            ca_passphrase=passphrase_from_env(ca_passphrase_env),
            next_update_days=next_update_days,
        )
    typer.echo(str(pki.crl))
    _publish(pki, True)


@app.command("renew")
@_clean_errors
def renew(
    serial: str | None = typer.Option(None, help="Serial number (hex) of the certificate."),
    agency: str | None = typer.Option(None, help="Renew this agency's certificate instead."),
    person: str | None = typer.Option(None, help="With --agency: the person's certificate."),
    platform: bool = typer.Option(False, "--platform", help="With --agency: the platform's."),
    archive: bool = typer.Option(False, "--archive", help="With --agency: the archive's."),
    algorithm: str | None = typer.Option(None, help="Key algorithm (default: the old one's)."),
    days: int = typer.Option(730, min=1, help="Validity in days."),
    passphrase_env: str | None = typer.Option(
        None, help="Environment variable with a passphrase to encrypt the new key."
    ),
    ca_passphrase_env: str | None = typer.Option(
        None, help="Environment variable with the CA key passphrase."
    ),
) -> None:
    """Issue a fresh key and certificate for the same identity. The old one stays valid until
    it expires; running services sign with the newest valid one from their next signature."""
    pki = PkiDirectory(pki_dir())
    serial = _one_serial(pki, serial, agency, person, platform, archive, newest=True)
    paths = pki.renew(
        serial,
        now=_now(),
        days=days,
        algorithm=_check_algorithm(algorithm) if algorithm else None,
        passphrase=passphrase_from_env(passphrase_env),
        ca_passphrase=passphrase_from_env(ca_passphrase_env),
    )
    typer.echo(f"renewed {serial[:16]} as serial {paths.serial}")
    for path in (paths.certificate, paths.chain, paths.key):
        typer.echo(str(path))


def _one_serial(
    pki: PkiDirectory,
    serial: str | None,
    agency: str | None,
    person: str | None,
    platform: bool,
    archive: bool,
    *,
    newest: bool = False,
) -> str:
    if (serial is None) == (agency is None):
        raise PkiError("give exactly one of --serial or --agency")
    if serial is not None:
        return serial
    assert agency is not None
    role = _role(person, platform, archive)
    matches = pki.find(agency_code=agency, role=role, person_name=person)
    if newest and matches:
        # Renewing an identity means renewing its newest certificate.
        matches = matches[-1:]
    if len(matches) != 1:
        found = ", ".join(m.serial for m in matches) or "none"
        raise PkiError(f"{len(matches)} valid {role} certificates match ({found}); use --serial")
    return matches[0].serial


@app.command("list")
@_clean_errors
def list_certificates(fmt: str = TABLE_OR_JSON) -> None:
    """Table of issued certificates with their status (json: every field in full)."""
    check_format(fmt)
    pki = PkiDirectory(pki_dir())
    records = [
        {
            "serial": e.serial,
            "role": e.role,
            "agency": e.agency_code,
            "person": e.person_name,
            "subject": e.subject,
            "algorithm": e.algorithm,
            "not_before": e.not_before,
            "not_after": e.not_after,
            "status": e.status,
            "revoked_at": e.revoked_at,
            "reason": e.reason,
        }
        for e in pki.entries()
    ]

    def cells(r: Any) -> list[str]:
        status = f"revoked ({r['reason']})" if r["status"] == "revoked" else r["status"]
        return [
            r["serial"][:16],
            r["role"],
            r["agency"],
            r["person"] or "",
            r["algorithm"],
            r["not_after"][:10],
            status,
        ]

    headers = ("serial", "role", "agency", "person", "algorithm", "not after", "status")
    print_records(fmt, headers, records, cells)


def register(main_app: typer.Typer) -> None:
    pki_transport.register(app)
    main_app.add_typer(app, name="pki", help="Agency PKI: root CA, certificates, revocation.")
