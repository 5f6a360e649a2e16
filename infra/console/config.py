"""What the console runs with: its database role, the trust store and agency directory, the
auditors' witnesses, and the session and login limits. Built once by `lienthong console serve`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from consumers.archive import ParseContext, WitnessPolicy
from consumers.audit import WitnessRule
from infra import context
from infra.compose.archive import archive_log_id, archive_parse_context
from infra.console.accounts import LoginPolicy
from infra.console.sessions import SessionPolicy
from infra.settings import Settings
from schemas.agency import AgencyDirectory
from signing.trust import TrustStore

CONSOLE_ROLE = "lienthong_console"
CONSOLE_URL_ENV = "LIENTHONG_CONSOLE_DATABASE_URL"


def console_url(database_url: str) -> str:
    """The console never uses the platform's own role: the same server and database as
    lienthong_console (migration 0009: the auditor's reads, plus its sessions), its credentials
    from the server's auth rules or ~/.pgpass. LIENTHONG_CONSOLE_DATABASE_URL names another."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{CONSOLE_ROLE}@{host}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    database_url: str  # as lienthong_console
    agencies: AgencyDirectory
    # Loaded at each use: a CRL published since the console started counts at once.
    trust: Callable[[], TrustStore]
    parse_context: Callable[[], ParseContext]
    log_origin: str
    witnesses: WitnessRule | None = None
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    login: LoginPolicy = field(default_factory=LoginPolicy)
    # Mark cookies Secure (and name the session cookie __Host-) even over plain HTTP: for a
    # console behind a TLS-terminating proxy. Over HTTPS they always are.
    secure_cookies: bool = False
    clock: Callable[[], datetime] = utcnow
    page_size: int = 20
    # Host names the console answers to (an empty tuple: any). Behind a proxy, its public name.
    allowed_hosts: tuple[str, ...] = ()
    # Peers whose X-Forwarded-For is believed (the reverse proxy's address): the login throttle
    # and the access log then see the browser's address, not the proxy's. From anyone else the
    # header is ignored: a browser can send it too.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def witness_policy(self) -> WitnessPolicy | None:
        if self.witnesses is None:
            return None
        return WitnessPolicy(witnesses=self.witnesses.keys, required=self.witnesses.required)


def console_config(
    settings: Settings,
    database_url: str,
    *,
    witnesses: WitnessRule | None = None,
    sessions: SessionPolicy | None = None,
    login: LoginPolicy | None = None,
    secure_cookies: bool = False,
    clock: Callable[[], datetime] = utcnow,
    allowed_hosts: tuple[str, ...] = (),
    trusted_proxies: tuple[str, ...] = (),
) -> ConsoleConfig:
    """The console's configuration from the process settings (trust store, agency directory,
    the archive's log id) and its own options."""
    context.trust_store(settings)  # fail at start, in one line, if there is no trust store
    return ConsoleConfig(
        database_url=database_url,
        agencies=context.agency_directory(settings),
        trust=lambda: context.trust_store(settings),
        parse_context=lambda: archive_parse_context(settings),
        log_origin=archive_log_id(settings),
        witnesses=witnesses,
        sessions=sessions or SessionPolicy(),
        login=login or LoginPolicy(),
        secure_cookies=secure_cookies,
        clock=clock,
        allowed_hosts=allowed_hosts,
        trusted_proxies=trusted_proxies,
    )
