"""Does a command line name a real `lienthong` command, with options it has and every option
it requires? For the units and manifests, which hold command lines as text."""

from __future__ import annotations

from functools import cache
from typing import Any

import typer.main

from infra.cli.main import build_app

# Options and commands allowed to be missing (none: every unit and manifest names a real one).
PENDING: set[str] = set()


@cache
def _root() -> Any:
    return typer.main.get_command(build_app())


def problems(argv: list[str]) -> list[str]:
    """[] when `lienthong ARGV` parses: the commands exist, every --option is one of the
    command's, and every required option is given."""
    command = _root()
    path: list[str] = []
    rest = list(argv)
    while rest and hasattr(command, "commands"):
        name = rest[0]
        if name.startswith("-"):
            break
        if name not in command.commands:
            return [f"no command `{' '.join([*path, name, *rest[1:2]])}`"]
        command = command.commands[name]
        path.append(name)
        rest.pop(0)
    # A group that runs by itself (`lienthong archive` beside `archive reindex`) takes options.
    if hasattr(command, "commands") and not getattr(command, "invoke_without_command", False):
        return [f"`{' '.join(path)}` needs a subcommand"]
    known: dict[str, Any] = {}
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            known[opt] = param
    found = []
    given = set()
    for word in rest:
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            if name not in known:
                found.append(f"{' '.join(path)}: no option {name}")
            else:
                given.add(known[name].name)
    for param in command.params:
        if param.required and param.name not in given:
            found.append(f"{' '.join(path)}: {param.opts[0]} is required")
    return found
