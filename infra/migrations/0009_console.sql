-- The auditors' console (infra/console, docs/console.md): its accounts, sessions and login
-- attempts, and the database role it runs as.
--
-- The console reads the archive as the auditor does and writes only three things: the access
-- log (through lienthong_auditor's INSERT), its sessions, and its login attempts. It cannot
-- create or change an account (`lienthong console user ...` does that as the owner), and it
-- cannot write a row of the archive: it holds no privilege on those tables beyond SELECT.

CREATE TABLE console_account (
    username            text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    full_name           text NOT NULL DEFAULT '',
    -- An argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash): never the password.
    password_hash       text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    roles               text[] NOT NULL
                        CHECK (cardinality(roles) > 0
                               AND roles <@ ARRAY['auditor', 'kpi_viewer']::text[]),
    disabled_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- A session is known by the SHA-256 of its token: whoever reads this table (a backup, the
-- auditor next door) cannot present a session. The cookie holds the token itself.
CREATE TABLE console_session (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    username     text NOT NULL REFERENCES console_account (username),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,  -- the absolute limit, whatever the activity
    revoked_at   timestamptz,           -- logout, `console session revoke`, account disabled
    client       text NOT NULL DEFAULT ''
);
CREATE INDEX console_session_user_idx ON console_session (username, created_at DESC);

-- Every login attempt, to throttle guessing per account and per client address.
CREATE TABLE console_login_attempt (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    username text NOT NULL,
    client   text NOT NULL,
    ok       boolean NOT NULL
);
CREATE INDEX console_login_attempt_user_idx ON console_login_attempt (username, at DESC);
CREATE INDEX console_login_attempt_client_idx ON console_login_attempt (client, at DESC);

-- The console's role: everything the auditor may do (read the archive, append to the access
-- log), plus its sessions and attempts. The auditor role gets nothing here: the password hashes
-- and session digests are not for every auditor's eyes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lienthong_console') THEN
        CREATE ROLE lienthong_console LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END $$;
GRANT lienthong_auditor TO lienthong_console;
GRANT USAGE ON SCHEMA public TO lienthong_console;
GRANT SELECT (username, full_name, password_hash, roles, disabled_at) ON console_account
    TO lienthong_console;
GRANT SELECT, INSERT ON console_session TO lienthong_console;
GRANT UPDATE (last_seen_at, revoked_at) ON console_session TO lienthong_console;
GRANT SELECT, INSERT ON console_login_attempt TO lienthong_console;
GRANT USAGE ON SEQUENCE console_login_attempt_id_seq TO lienthong_console;
REVOKE ALL ON console_account, console_session, console_login_attempt FROM lienthong_auditor;

-- A revoked session stays revoked: the console may stamp revoked_at, never clear it.
CREATE FUNCTION lt_console_session_keep_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL THEN
        NEW.revoked_at := OLD.revoked_at;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER console_session_keep_revoked BEFORE UPDATE ON console_session
    FOR EACH ROW EXECUTE FUNCTION lt_console_session_keep_revoked();
