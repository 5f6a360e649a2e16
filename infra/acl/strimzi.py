"""The ACL table as Strimzi KafkaUser resources (TLS client authentication, simple
authorization): what a department's IT team applies to an existing Strimzi cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import yaml

from infra.acl.rules import AclRule

_RESOURCE = {"TOPIC": "topic", "GROUP": "group", "TRANSACTIONAL_ID": "transactionalId"}
# Strimzi's names for the pattern types (its CRD's enum: literal, prefix).
_PATTERN = {"LITERAL": "literal", "PREFIXED": "prefix"}
# KafkaUser v1: Strimzi 0.49 and later serve it; 1.x serves nothing else.
API_VERSION = "kafka.strimzi.io/v1"
_OPERATION = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "IDEMPOTENT_WRITE": "IdempotentWrite",
}


def _resource(rule: AclRule) -> dict[str, str]:
    if rule.resource == "CLUSTER":
        return {"type": "cluster"}
    return {
        "type": _RESOURCE[rule.resource],
        "name": rule.name,
        "patternType": _PATTERN[rule.pattern],
    }


def strimzi_users(rules: Iterable[AclRule], cluster: str, namespace: str | None = None) -> str:
    """strimzi_user_resources as multi-document YAML."""
    docs = strimzi_user_resources(rules, cluster, namespace)
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def strimzi_user_resources(
    rules: Iterable[AclRule], cluster: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """One KafkaUser per principal. A KafkaUser named like the principal gets a certificate
    with CN=<name> from Strimzi's clients CA, and Strimzi maps it to User:<name>, which is
    what the rules name."""
    by_user: dict[str, list[AclRule]] = defaultdict(list)
    for rule in rules:
        by_user[rule.principal.removeprefix("User:")].append(rule)
    docs: list[dict[str, Any]] = []
    for user in sorted(by_user):
        grouped: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
        for rule in sorted(by_user[user]):
            key = (rule.resource, rule.pattern, rule.name, rule.host)
            grouped[key].append(_OPERATION[rule.operation])
        metadata: dict[str, Any] = {
            # Kubernetes names are lowercase DNS labels: agency codes keep their dots.
            "name": user.lower(),
            # The second label lets `kubectl apply --prune` delete only our users.
            "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/managed-by": "lienthong"},
        }
        if namespace:
            metadata["namespace"] = namespace
        acls = []
        for (resource, pattern, name, host), operations in grouped.items():
            rule = AclRule("", resource, pattern, name, "", host)
            acls.append({"resource": _resource(rule), "operations": operations, "host": host})
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "KafkaUser",
                "metadata": metadata,
                "spec": {
                    "authentication": {"type": "tls"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return docs
