"""What the command modules share: the console, one-line errors, exit codes, secrets from env."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from infra.errors import InfraError, unmigrated
from signing.errors import PkiError

# sysexits.h EX_TEMPFAIL: the broker was unreachable or busy; running again may succeed.
EX_TEMPFAIL = 75

out = Console()
F = TypeVar("F", bound=Callable[..., Any])

# Every long-running service's endpoints (docs/observability.md); the address is
# LIENTHONG_METRICS_HOST (default 127.0.0.1).
METRICS_PORT = typer.Option(
    0,
    "--metrics-port",
    min=0,
    max=65535,
    envvar="LIENTHONG_METRICS_PORT",
    help="Serve /metrics, /healthz and /readyz on LIENTHONG_METRICS_HOST:PORT (0: off).",
)


# Every command that prints a table takes it (docs/observability.md, "Scripts").
TABLE_OR_JSON = typer.Option(
    "table", "--format", help="table (for people) or json (a list of objects, for scripts)."
)

Record = Mapping[str, Any]


def check_format(fmt: str) -> None:
    """Before any work is done: a wrong --format is one line, not a traceback at the end."""
    if fmt not in ("table", "json"):
        raise ValueError(f"--format must be table or json, not {fmt!r}")


def print_records(
    fmt: str,
    headers: Sequence[str],
    records: Sequence[Record],
    cells: Callable[[Record], Sequence[str]] | None = None,
) -> None:
    """The same rows as a table (`cells` may shorten values for the eye) or as a JSON list of
    objects with every value in full, on stdout alone so that it pipes into jq."""
    if fmt == "json":
        print(json.dumps(list(records), ensure_ascii=False, indent=2, default=str))
        return
    table = Table(*headers)
    for record in records:
        row = cells(record) if cells else [str(v) for v in record.values()]
        table.add_row(*row)
    out.print(table)


class Bar:
    """A progress bar's handle; does nothing when there is no bar."""

    def __init__(self, progress: Progress | None = None, task: Any = None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, *, completed: int, total: int | None, visible: bool = True) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total, visible=visible)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, *, visible: bool = True) -> Iterator[Bar]:
    """A transient bar on stderr while long work runs, only when stderr is a terminal: under
    systemd, a pipe or a test, nothing (the log lines say the same)."""
    if not sys.stderr.isatty():
        yield Bar()
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total, visible=visible))


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
            asyncpg.UndefinedColumnError,
            asyncpg.UndefinedFunctionError,
            asyncpg.InvalidCatalogNameError,
            asyncpg.InvalidAuthorizationSpecificationError,
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


def broker_errors(*expected: type[BaseException]) -> Callable[[F], F]:
    """For the commands that talk to Kafka: bad input (InfraError, PkiError, ValueError,
    OSError and `expected`) is one line and exit 2; a broker failure is one line, and exit 75
    (EX_TEMPFAIL) when the client says a retry may help."""
    bad_input: tuple[type[BaseException], ...] = (
        InfraError,
        PkiError,
        ValueError,
        OSError,
        *expected,
    )

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except KafkaError as exc:
                retry = " (transient: try again)" if exc.retriable else ""
                print(f"error: kafka: {type(exc).__name__}: {exc}{retry}", file=sys.stderr)
                raise typer.Exit(EX_TEMPFAIL if exc.retriable else 2) from None
            except bad_input as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise typer.Exit(2) from None

        return wrapper  # type: ignore[return-value]

    return decorate
