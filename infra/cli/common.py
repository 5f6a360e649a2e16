"""What the command modules share: the console, one-line errors, exit codes, secrets from env."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg
import typer
from rich.console import Console

from infra.errors import InfraError, unmigrated
from signing.errors import PkiError

# sysexits.h EX_TEMPFAIL: the broker was unreachable or busy; running again may succeed.
EX_TEMPFAIL = 75

out = Console()
F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(fn: F) -> F:
    """Expected failures end in one line on stderr and exit code 2, never a stack trace; the
    common mistakes name their fix."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InfraError, ValueError, PkiError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except (
            asyncpg.UndefinedTableError,
            asyncpg.UndefinedFunctionError,
            asyncpg.InvalidCatalogNameError,
        ) as exc:
            print(f"error: {unmigrated(exc)}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def passphrase_from_env(env_var: str | None) -> bytes | None:
    """A key passphrase comes from a named environment variable, never from the command line
    (where it would show in the process list and the shell history)."""
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if not value:
        raise PkiError(f"environment variable {env_var} is not set (passphrase expected)")
    return value.encode("utf-8")
