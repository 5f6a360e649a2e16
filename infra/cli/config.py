"""`lienthong config show`: the effective configuration, where each value came from, secrets
masked."""

from __future__ import annotations

import json
import os
import sys

import typer

from infra.config import LoadedConfig, effective, mask_value, unknown_variables
from infra.settings import load_settings

app = typer.Typer(help="The configuration file and the environment.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Every setting: its value (passwords and passphrases masked), and whether it came from
    the default, the --config file or the environment. Exits 2 when the result is not valid."""
    if fmt not in ("table", "json"):
        print(f"error: --format must be table or json, not {fmt!r}", file=sys.stderr)
        raise typer.Exit(2)
    root = ctx.find_root().obj
    loaded = root if isinstance(root, LoadedConfig) else LoadedConfig(None)
    rows = effective(loaded, os.environ)
    unknown = unknown_variables(os.environ)
    try:
        load_settings()
        problem = None
    except ValueError as exc:
        problem = str(exc)
    if fmt == "json":
        document = {
            "config_file": str(loaded.path) if loaded.path else None,
            "settings": [
                {
                    "key": row.setting.dotted,
                    "env": row.setting.env,
                    "value": row.value,
                    "source": row.source,
                    **({"note": row.note} if row.note else {}),
                }
                for row in rows
            ],
            "unknown_env": unknown,
            "valid": problem is None,
            **({"error": mask_value("", problem)} if problem else {}),
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        # Plain lines, never cut: `grep KAFKA` and copying a value must work at any width.
        print(f"# configuration file: {loaded.path or '(none)'}")
        for row in rows:
            value = "(unset)" if row.value is None else row.value
            note = f"  ({row.note})" if row.note else ""
            print(f"{row.setting.env:34} {row.source:8} {value}{note}")
        for name in unknown:
            print(f"warning: {name} is set but is not a lienthong setting (a typo?)")
    if problem:
        print(f"error: {mask_value('', problem)}", file=sys.stderr)
        raise typer.Exit(2)


def register(main_app: typer.Typer) -> None:
    main_app.add_typer(app, name="config", help="The configuration file and the environment.")
