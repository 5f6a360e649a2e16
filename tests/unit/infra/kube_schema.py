"""Validates Kubernetes resources as the API server would, against the vendored schemas
(tests/fixtures/crds/README.md): the CRDs' openAPIV3Schema for Strimzi and CloudNativePG, the
Kubernetes OpenAPI definitions for the built-in kinds, plus the server's own rules that plain
JSON Schema does not say: unknown fields are refused, int-or-string takes both, object names
are DNS names, label values are short."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

CRDS = Path(__file__).resolve().parents[2] / "fixtures" / "crds"
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")  # RFC 1035: Services
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def _strict(node: Any) -> Any:
    """Each object schema with properties refuses others, unless it preserves unknown fields;
    int-or-string becomes integer-or-string."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items()}
    if node.get("x-kubernetes-int-or-string") or node.get("format") == "int-or-string":
        node.pop("type", None)
        node.pop("format", None)
        node = {**node, **INT_OR_STRING} if "anyOf" not in node else node
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


@cache
def _kubernetes() -> dict[str, Any]:
    document = json.loads((CRDS / "kubernetes-definitions.json").read_text(encoding="utf-8"))
    definitions = _strict(document["definitions"])
    return {"definitions": definitions}


def _gvk_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    k8s = _kubernetes()
    for name, definition in k8s["definitions"].items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found[(api, gvk["kind"])] = {"$ref": f"#/definitions/{name}", **k8s}
    object_meta = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            # The API server checks a custom resource's metadata as any object's.
            schema.setdefault("properties", {})["metadata"] = {"$ref": object_meta}
            found[(f"{group}/{version['name']}", kind)] = {**schema, **k8s}
    return found


@cache
def validators() -> dict[tuple[str, str], Draft7Validator]:
    return {key: Draft7Validator(schema) for key, schema in _gvk_schemas().items()}


def problems(resource: dict[str, Any]) -> list[str]:
    """Every reason the API server would refuse `resource`; [] when it would take it."""
    key = (resource.get("apiVersion"), resource.get("kind"))
    validator = validators().get(key)  # type: ignore[arg-type]
    if validator is None:
        return [f"no schema for apiVersion {key[0]!r} kind {key[1]!r} (not served)"]
    found = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
    ]
    metadata = resource.get("metadata") or {}
    name = metadata.get("name", "")
    pattern = DNS_LABEL if key[1] == "Service" else DNS_SUBDOMAIN
    limit = 63 if key[1] == "Service" else 253
    if not isinstance(name, str) or not pattern.match(name) or len(name) > limit:
        found.append(f"metadata.name: {name!r} is not a valid {key[1]} name")
    for where, labels in _label_sets(resource):
        for label, value in labels.items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                found.append(f"{where}.{label}: {value!r} is not a valid label value")
    return found


def _label_sets(resource: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sets = [("metadata.labels", (resource.get("metadata") or {}).get("labels") or {})]
    template = ((resource.get("spec") or {}).get("template") or {}).get("metadata") or {}
    sets.append(("spec.template.metadata.labels", template.get("labels") or {}))
    selector = ((resource.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    sets.append(("spec.selector.matchLabels", selector))
    return sets
