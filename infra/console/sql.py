"""The console's own SQL: accounts, sessions, login attempts (migration 0009), and the few
archive reads the integrity page needs beyond consumers.audit."""

from __future__ import annotations

# --- accounts (the administrator, as the database owner) -------------------------------------

_ACCOUNT_COLUMNS = "username, full_name, roles, disabled_at, created_at"

ADD_ACCOUNT = f"""
INSERT INTO console_account (username, full_name, password_hash, roles)
VALUES ($1, $2, $3, $4) RETURNING {_ACCOUNT_COLUMNS}"""

SET_PASSWORD = """
UPDATE console_account SET password_hash = $2, password_changed_at = now()
WHERE username = $1 RETURNING username"""

SET_ROLES = (
    f"UPDATE console_account SET roles = $2 WHERE username = $1 RETURNING {_ACCOUNT_COLUMNS}"
)

DISABLE_ACCOUNT = """
UPDATE console_account SET disabled_at = coalesce(disabled_at, now())
WHERE username = $1 RETURNING username"""

ENABLE_ACCOUNT = "UPDATE console_account SET disabled_at = NULL WHERE username = $1 RETURNING 1"

ACCOUNT_EXISTS = "SELECT 1 FROM console_account WHERE username = $1"

LIST_ACCOUNTS = f"SELECT {_ACCOUNT_COLUMNS} FROM console_account ORDER BY username"

REVOKE_SESSIONS_OF = """
UPDATE console_session SET revoked_at = now() WHERE username = $1 AND revoked_at IS NULL"""

LIST_SESSIONS = """
SELECT username, created_at, last_seen_at, expires_at, revoked_at, client
FROM console_session WHERE $1::text IS NULL OR username = $1
ORDER BY created_at DESC LIMIT 200"""

# --- login (the console, as lienthong_console) ----------------------------------------------

ACCOUNT_FOR_LOGIN = """
SELECT username, full_name, password_hash, roles, disabled_at
FROM console_account WHERE username = $1"""

# Failures of the account since its last success (within the window), and of the client address.
RECENT_FAILURES = """
SELECT
  (SELECT count(*) FROM console_login_attempt a
   WHERE a.username = $1 AND NOT a.ok AND a.at > greatest($3::timestamptz, coalesce(
         (SELECT max(s.at) FROM console_login_attempt s WHERE s.username = $1 AND s.ok),
         '-infinity'))) AS account,
  (SELECT count(*) FROM console_login_attempt a
   WHERE a.client = $2 AND NOT a.ok AND a.at > $3) AS client"""

RECORD_ATTEMPT = """
INSERT INTO console_login_attempt (at, username, client, ok) VALUES ($1, $2, $3, $4)"""

# --- sessions (the console) -----------------------------------------------------------------

OPEN_SESSION = """
INSERT INTO console_session (token_sha256, username, created_at, last_seen_at, expires_at, client)
VALUES ($1, $2, $3, $3, $4, $5)"""

SESSION_BY_DIGEST = """
SELECT s.username, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at,
       a.full_name, a.roles, a.disabled_at
FROM console_session s JOIN console_account a USING (username)
WHERE s.token_sha256 = $1"""

TOUCH_SESSION = """
UPDATE console_session SET last_seen_at = greatest(last_seen_at, $2) WHERE token_sha256 = $1"""

REVOKE_SESSION = """
UPDATE console_session SET revoked_at = $2 WHERE token_sha256 = $1 AND revoked_at IS NULL"""

# --- integrity page -------------------------------------------------------------------------

LATEST_HEAD = """
SELECT size, root, signed::text AS signed, checkpoint, created_at
FROM tree_head ORDER BY size DESC LIMIT 1"""

# The cosignatures of the newest heads (the witnesses cosign as they catch up).
RECENT_COSIGNATURES = """
SELECT origin, size, root, witness, key_id, stored_at
FROM cosignature ORDER BY size DESC, witness LIMIT 50"""

ARCHIVE_COUNTS = """
SELECT (SELECT count(*) FROM archive_record) AS records,
       (SELECT count(*) FROM document) AS documents,
       (SELECT count(*) FROM tree_head) AS heads"""

ACCESS_LOG_RECENT = """
SELECT id, at, db_role, who, command, args::text AS args
FROM audit_access_log WHERE who = $1 ORDER BY id DESC LIMIT $2"""
