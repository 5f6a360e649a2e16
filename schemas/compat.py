"""Schema evolution checks: structural Avro resolution rules plus resolving real examples."""

from __future__ import annotations

import enum
import io
from collections.abc import Iterable, Sequence
from typing import Any

import fastavro

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Writer type -> reader types that can read it (Avro spec, "Schema Resolution").
PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


class Mode(enum.StrEnum):
    BACKWARD = "BACKWARD"  # the new schema reads data written with the old one
    FORWARD = "FORWARD"  # the old schema reads data written with the new one
    FULL = "FULL"  # both


class _Names:
    """Named types of one schema, so string references can be resolved."""

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, Any] = {}
        self._collect(schema, None)

    def _collect(self, s: Any, ns: str | None) -> None:
        if isinstance(s, list):
            for b in s:
                self._collect(b, ns)
        elif isinstance(s, dict):
            kind = s.get("type")
            if kind in ("record", "enum", "fixed", "error"):
                name = s["name"]
                ns = name.rsplit(".", 1)[0] if "." in name else s.get("namespace", ns)
                self.types[_full(name, ns)] = s
                self.types.setdefault(name.rsplit(".", 1)[-1], s)
                for f in s.get("fields", ()):
                    self._collect(f["type"], ns)
            elif kind == "array":
                self._collect(s["items"], ns)
            elif kind == "map":
                self._collect(s["values"], ns)

    def resolve(self, s: Any) -> Any:
        if isinstance(s, str) and s not in PRIMITIVES:
            return self.types.get(s) or self.types[s.rsplit(".", 1)[-1]]
        if isinstance(s, dict) and s.get("type") in PRIMITIVES:
            return s["type"]  # logical types resolve on their underlying type
        return s


def _full(name: str, ns: str | None) -> str:
    return name if "." in name or not ns else f"{ns}.{name}"


def _kind(s: Any) -> str:
    if isinstance(s, list):
        return "union"
    return s if isinstance(s, str) else str(s["type"])


def reader_problems(reader: Any, writer: Any) -> list[str]:
    """Why ``reader`` cannot read every datum ``writer`` may write (empty list: it can)."""
    return _read(reader, writer, _Names(reader), _Names(writer), "$", set())


def _read(
    r: Any, w: Any, rn: _Names, wn: _Names, path: str, seen: set[tuple[str, str]]
) -> list[str]:
    r, w = rn.resolve(r), wn.resolve(w)
    rk, wk = _kind(r), _kind(w)
    if wk == "union":
        return [p for i, b in enumerate(w) for p in _read(r, b, rn, wn, f"{path}|{i}", seen)]
    if rk == "union":
        for b in r:
            if not _read(b, w, rn, wn, path, seen):
                return []
        return [f"{path}: no branch of the reader union reads writer type {wk}"]
    if wk in PRIMITIVES:
        ok = rk in PROMOTIONS.get(wk, {wk})
        return [] if ok else [f"{path}: writer {wk} cannot be read as {rk}"]
    if rk != wk:
        return [f"{path}: writer {wk} cannot be read as {rk}"]
    if wk == "array":
        return _read(r["items"], w["items"], rn, wn, f"{path}[]", seen)
    if wk == "map":
        return _read(r["values"], w["values"], rn, wn, f"{path}{{}}", seen)
    rname, wname = r["name"].rsplit(".", 1)[-1], w["name"].rsplit(".", 1)[-1]
    if rname != wname and wname not in r.get("aliases", ()):
        return [f"{path}: writer {wname} is not reader {rname}"]
    if wk == "fixed":
        return [] if r["size"] == w["size"] else [f"{path}: fixed size {w['size']}->{r['size']}"]
    if wk == "enum":
        lost = [s for s in w["symbols"] if s not in r["symbols"]]
        if lost and "default" not in r:
            return [f"{path}: enum symbols {lost} removed without an enum default"]
        return []
    key = (rname, path)
    if key in seen:  # recursive types
        return []
    seen.add(key)
    wfields = {f["name"]: f for f in w["fields"]}
    problems: list[str] = []
    for f in r["fields"]:
        wf = wfields.get(f["name"]) or next(
            (wfields[a] for a in f.get("aliases", ()) if a in wfields), None
        )
        if wf is None:
            if "default" not in f:
                problems.append(f"{path}.{f['name']}: added without a default")
            continue
        problems += _read(f["type"], wf["type"], rn, wn, f"{path}.{f['name']}", seen)
    return problems


def resolution_problems(reader: Any, writer: Any, records: Iterable[dict[str, Any]]) -> list[str]:
    """Write each record with ``writer`` and read it with ``reader``: what actually fails."""
    wp = fastavro.parse_schema(writer, named_schemas={})
    rp = fastavro.parse_schema(reader, named_schemas={})
    problems = []
    for i, rec in enumerate(records):
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, wp, rec)
            buf.seek(0)
            fastavro.schemaless_reader(buf, wp, rp)
        except Exception as exc:  # any failure is the finding we report
            problems.append(f"example {i}: {type(exc).__name__}: {exc}")
    return problems


def check_compatibility(
    old: Any,
    new: Any,
    mode: Mode | str,
    *,
    old_examples: Sequence[dict[str, Any]] = (),
    new_examples: Sequence[dict[str, Any]] = (),
) -> list[str]:
    """Problems that make ``new`` an illegal successor of ``old`` under ``mode``.

    BACKWARD: new reads old data; FORWARD: old reads new data; FULL: both. Both the
    structural rules and (when given) real example records are checked. Empty: compatible.
    """
    mode = Mode(str(mode).removesuffix("_TRANSITIVE"))
    problems: list[str] = []
    if mode in (Mode.BACKWARD, Mode.FULL):
        problems += [f"BACKWARD {p}" for p in reader_problems(new, old)]
        problems += [f"BACKWARD {p}" for p in resolution_problems(new, old, old_examples)]
    if mode in (Mode.FORWARD, Mode.FULL):
        problems += [f"FORWARD {p}" for p in reader_problems(old, new)]
        problems += [f"FORWARD {p}" for p in resolution_problems(old, new, new_examples)]
    return problems


def check_history(versions: Sequence[Any], mode: Mode | str) -> list[str]:
    """Transitive check: every later version against every earlier one."""
    problems = []
    for i, old in enumerate(versions):
        for j in range(i + 1, len(versions)):
            problems += [
                f"v{i + 1}->v{j + 1} {p}" for p in check_compatibility(old, versions[j], mode)
            ]
    return problems
