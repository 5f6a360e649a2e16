"""`lienthong console`: the auditors' and the e-government office's web console over the archive
and the KPI (docs/console.md).

Modules: app (the Starlette application and the login), web (security headers, cookies, the
page guard: session, role, CSRF, access log), pages_audit (search, document timeline, verify,
evidence bundle, integrity), pages_kpi (the KPI dashboard), charts (inline SVG), timeline (a
document's story as a timeline), accounts (argon2id accounts, roles, login throttling),
sessions (server-side sessions, CSRF tokens), config (what it runs with), sql.

Public names: ROLES, Account, AccountError, ConsoleConfig, LoginPolicy, SessionPolicy,
add_account, console_config, console_url, create_app, disable_account, enable_account,
list_accounts, list_sessions, revoke_sessions, set_password, set_roles.
"""

from infra.console.accounts import (
    ROLES,
    Account,
    AccountError,
    LoginPolicy,
    add_account,
    disable_account,
    enable_account,
    list_accounts,
    revoke_sessions,
    set_password,
    set_roles,
)
from infra.console.app import create_app
from infra.console.config import ConsoleConfig, console_config, console_url
from infra.console.sessions import SessionPolicy, list_sessions

__all__ = [
    "ROLES",
    "Account",
    "AccountError",
    "ConsoleConfig",
    "LoginPolicy",
    "SessionPolicy",
    "add_account",
    "console_config",
    "console_url",
    "create_app",
    "disable_account",
    "enable_account",
    "list_accounts",
    "list_sessions",
    "revoke_sessions",
    "set_password",
    "set_roles",
]
