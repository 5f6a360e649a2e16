"""Readable JSON form of Avro records, used by the example payload files and by humans.

Not Avro's JSON encoding: dates are ISO dates, timestamps ISO 8601 with offset, bytes base64,
fixed hex, and a union is tagged ({"InlineContent": {...}}) only when it has more than one
non-null branch.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

Named = dict[str, Any]
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def from_json(schema: Any, value: Any) -> Any:
    """JSON form -> fastavro-ready record for ``schema`` (a raw .avsc dict)."""
    return _convert(schema, value, {}, _namespace(schema, None), to_json=False)


def to_json(schema: Any, value: Any) -> Any:
    """fastavro record -> JSON form (inverse of from_json)."""
    return _convert(schema, value, {}, _namespace(schema, None), to_json=True)


def _namespace(schema: Any, default: str | None) -> str | None:
    if isinstance(schema, dict):
        name = schema.get("name", "")
        if "." in name:
            return str(name.rsplit(".", 1)[0])
        return schema.get("namespace", default)
    return default


def _fullname(name: str, ns: str | None) -> str:
    return name if "." in name or not ns else f"{ns}.{name}"


def _convert(schema: Any, value: Any, named: Named, ns: str | None, *, to_json: bool) -> Any:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return _primitive(schema, None, value, to_json)
        resolved = named.get(_fullname(schema, ns)) or named[schema]
        return _convert(resolved, value, named, ns, to_json=to_json)
    if isinstance(schema, list):
        return _union(schema, value, named, ns, to_json)
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        ns = _namespace(schema, ns)
        named[_fullname(schema["name"], ns)] = schema
    if kind == "record":
        out = {}
        for f in schema["fields"]:
            if f["name"] in value:
                out[f["name"]] = _convert(f["type"], value[f["name"]], named, ns, to_json=to_json)
            elif "default" not in f:
                raise ValueError(f"{schema['name']}.{f['name']} is missing")
        return out
    if kind == "enum":
        return value
    if kind == "fixed":
        return value.hex() if to_json else bytes.fromhex(value)
    if kind == "array":
        return [_convert(schema["items"], v, named, ns, to_json=to_json) for v in value]
    if kind == "map":
        return {
            k: _convert(schema["values"], v, named, ns, to_json=to_json) for k, v in value.items()
        }
    return _primitive(kind, schema.get("logicalType"), value, to_json)


def _primitive(kind: str, logical: str | None, value: Any, to_json: bool) -> Any:
    if value is None:
        return None
    if logical == "date":
        return value.isoformat() if to_json else date.fromisoformat(value)
    if logical == "timestamp-millis":
        if to_json:
            return value.isoformat(timespec="milliseconds")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp without offset: {value!r}")
        return parsed
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii") if to_json else base64.b64decode(value)
    return value


def _branch_name(schema: Any, named: Named, ns: str | None) -> str:
    if isinstance(schema, dict):
        return _fullname(str(schema.get("name", schema["type"])), _namespace(schema, ns))
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return _fullname(schema, ns)
    return str(schema)


def _union(branches: list[Any], value: Any, named: Named, ns: str | None, to_json: bool) -> Any:
    if value is None:
        return None
    live = [b for b in branches if b != "null"]
    if len(live) == 1:
        return _convert(live[0], value, named, ns, to_json=to_json)
    for b in live:  # register every branch's name before choosing one
        if isinstance(b, dict) and "name" in b:
            named[_branch_name(b, named, ns)] = b
    if to_json and isinstance(value, tuple):  # fastavro's (branch name, value) writer form
        tag, inner = value
        for b in live:
            full = _branch_name(b, named, ns)
            if full == tag:
                return {full.rsplit(".", 1)[-1]: _convert(b, inner, named, ns, to_json=True)}
        raise ValueError(f"unknown union branch {tag!r}")
    if to_json:
        # fastavro returns the bare record; the branch is the record whose fields fit.
        for b in live:
            resolved = named.get(_branch_name(b, named, ns), b)
            if isinstance(resolved, dict) and resolved.get("type") == "record":
                if set(value) <= {f["name"] for f in resolved["fields"]}:
                    short = _branch_name(b, named, ns).rsplit(".", 1)[-1]
                    return {short: _convert(b, value, named, ns, to_json=True)}
        raise ValueError(f"no union branch fits {value!r}")
    ((tag, inner),) = value.items()
    for b in live:
        full = _branch_name(b, named, ns)
        if tag in (full, full.rsplit(".", 1)[-1]):
            return (full, _convert(b, inner, named, ns, to_json=False))
    raise ValueError(f"unknown union branch {tag!r}")
