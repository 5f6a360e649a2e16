"""The evolution gate: every example of every version decodes with the newest reader, and the
compatibility checker catches incompatible changes."""

from __future__ import annotations

import copy
import json
from typing import Any

import fastavro
import pytest

from schemas.codec import decode, encode
from schemas.compat import check_compatibility, check_history, reader_problems
from schemas.registry import SchemaRegistry, default_registry, parse_version
from schemas.samples import example_paths, load_example
from schemas.topics import load_topic_manifests

EXAMPLES = example_paths()


def test_every_schema_has_examples(registry: SchemaRegistry) -> None:
    covered = {p.split("/")[0] for p in EXAMPLES}
    assert covered == set(registry.names())
    assert len(registry.versions("official_document")) >= 2  # evolution is really exercised


@pytest.mark.parametrize("path", EXAMPLES)
def test_example_encodes_with_its_version_and_decodes_with_newest(path: str) -> None:
    writer, record = load_example(path)
    assert fastavro.validation.validate(record, writer.parsed, raise_errors=True)
    data = encode(writer.directory, record, version=writer.version)
    assert data[2:10] == writer.fingerprint
    decoded = decode(data)
    newest = default_registry().latest(writer.directory)
    assert decoded.writer is writer and decoded.name == newest.name
    for field in newest.raw["fields"]:
        assert field["name"] in decoded.record  # new fields arrive with their defaults
    # Fields the writer knew come back unchanged, at every depth (a nested record may have
    # gained fields, which arrive with their defaults).
    written = fastavro.schemaless_reader(_body(data), writer.parsed, None)
    for key, value in written.items():
        _assert_kept(decoded.record[key], value, key)


def _assert_kept(read: Any, written: Any, where: str) -> None:
    if isinstance(written, dict):
        assert isinstance(read, dict), where
        for key, value in written.items():
            assert key in read, f"{where}.{key}"
            _assert_kept(read[key], value, f"{where}.{key}")
    elif isinstance(written, list):
        assert isinstance(read, list) and len(read) == len(written), where
        for i, (r, w) in enumerate(zip(read, written, strict=True)):
            _assert_kept(r, w, f"{where}[{i}]")
    else:
        assert read == written, where


def _body(data: bytes) -> Any:
    import io

    buf = io.BytesIO(data)
    buf.seek(10)
    return buf


def test_v1_document_reads_as_v2_with_defaults() -> None:
    _, record = load_example("official_document/v1/plan-190-kh-ubnd.json")
    decoded = decode(encode("official_document", record, version=1))
    assert decoded.record["keywords"] == [] and decoded.record["procedure_code"] is None


@pytest.mark.parametrize("name", default_registry().names())
def test_versions_are_transitively_compatible(name: str) -> None:
    modes = {t.compatibility for t in load_topic_manifests() if name in t.schemas}
    versions = default_registry().versions(name)
    for mode in modes or {"FULL_TRANSITIVE"}:
        assert check_history([v.raw for v in versions], mode) == []
    # And with the real examples of each older version.
    for old in versions[:-1]:
        examples = [load_example(p)[1] for p in EXAMPLES if p.startswith(f"{name}/v{old.version}/")]
        assert (
            check_compatibility(old.raw, versions[-1].raw, "BACKWARD", old_examples=examples) == []
        )


def _document_v2() -> dict[str, Any]:
    return copy.deepcopy(default_registry().get("official_document", 2).raw)


def test_checker_catches_field_added_without_default() -> None:
    v1 = default_registry().get("official_document", 1).raw
    bad = _document_v2()
    bad["fields"].append({"name": "archive_box", "type": "string"})
    problems = check_compatibility(v1, bad, "BACKWARD_TRANSITIVE")
    assert problems == ["BACKWARD $.archive_box: added without a default"]
    assert check_compatibility(v1, bad, "FORWARD") == []  # old readers just skip it
    # Real example resolution fails too, independently of the structural rule.
    _, plan190 = load_example("official_document/v1/plan-190-kh-ubnd.json")
    found = check_compatibility(v1, bad, "BACKWARD", old_examples=[plan190])
    assert any(p.startswith("BACKWARD example 0") for p in found)
    # The synthetic version is a legal schema in itself: only evolution rejects it.
    parse_version("official_document", 3, bad)


def test_checker_catches_removed_field_without_default_forward() -> None:
    old = default_registry().get("status_notice", 1).raw
    new = copy.deepcopy(old)
    new["fields"] = [f for f in new["fields"] if f["name"] != "timestamp"]
    assert check_compatibility(old, new, "BACKWARD") == []
    assert check_compatibility(old, new, "FULL") == ["FORWARD $.timestamp: added without a default"]


def test_checker_enum_symbols() -> None:
    old = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    shrunk = {"type": "enum", "name": "E", "symbols": ["A"]}
    assert reader_problems(shrunk, old) == ["$: enum symbols ['B'] removed without an enum default"]
    assert reader_problems({**shrunk, "default": "A"}, old) == []
    assert reader_problems(old, shrunk) == []


FIXED32 = {"type": "fixed", "name": "H", "size": 32}


@pytest.mark.parametrize(
    ("writer", "reader", "ok"),
    [
        ("int", "long", True),
        ("int", "double", True),
        ("long", "int", False),
        ("double", "float", False),
        ("string", "bytes", True),
        ("string", "int", False),
        ("int", ["null", "long"], True),
        (["null", "string"], "string", False),
        (["null", "int"], ["null", "long"], True),
        (FIXED32, {"type": "fixed", "name": "H", "size": 16}, False),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, True),
        ({"type": "map", "values": "string"}, {"type": "map", "values": "int"}, False),
        ({"type": "int", "logicalType": "date"}, "int", True),
    ],
)  # fmt: skip
def test_checker_type_promotions(writer: Any, reader: Any, ok: bool) -> None:
    assert (reader_problems(reader, writer) == []) is ok


def test_checker_type_change_in_record() -> None:
    old = default_registry().get("periodic_report", 1).raw
    text = json.dumps(old)
    before = '"name": "value", "type": ["null", "string"]'
    new = json.loads(text.replace(before, before.replace("string", "double")))
    assert new != old
    problems = check_compatibility(old, new, "BACKWARD")
    assert any("indicators[].value" in p for p in problems)
