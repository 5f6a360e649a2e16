"""Small pieces the command modules share: exit codes and secrets read from the environment."""

from __future__ import annotations

import os

from signing.errors import PkiError

# sysexits.h EX_TEMPFAIL: the broker was unreachable or busy; running again may succeed.
EX_TEMPFAIL = 75


def passphrase_from_env(env_var: str | None) -> bytes | None:
    """A key passphrase comes from a named environment variable, never from the command line
    (where it would show in the process list and the shell history)."""
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if not value:
        raise PkiError(f"environment variable {env_var} is not set (passphrase expected)")
    return value.encode("utf-8")
