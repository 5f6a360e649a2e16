"""The ACL table (docs/security.md) as data: the agency directory in, Kafka bindings out.

Pure: no Kafka here. Every agency open at `at` whose transport identity is not revoked gets its
own few bindings; platform services get theirs; nothing else is allowed (the brokers run with
allow.everyone.if.no.acl.found=false, and only the brokers and lienthong-admin are super users).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.agency import AgencyDirectory
from signing.profile import (
    ARCHIVER_PRINCIPAL,
    CONSOLE_PRINCIPAL,
    ROUTER_PRINCIPAL,
    SERVICE_NAME_RE,
    WITNESS_PRINCIPAL,
    is_agency_code,
)

CLUSTER = "kafka-cluster"


@dataclass(frozen=True, slots=True, order=True)
class AclRule:
    """One ALLOW binding. resource: TOPIC | GROUP | TRANSACTIONAL_ID | CLUSTER; pattern:
    LITERAL | PREFIXED; operation in Kafka's names (READ, WRITE, DESCRIBE, IDEMPOTENT_WRITE)."""

    principal: str
    resource: str
    pattern: str
    name: str
    operation: str
    host: str = "*"

    def line(self) -> str:
        star = "*" if self.pattern == "PREFIXED" else ""
        return f"{self.principal:28} {self.operation:16} {self.resource:16} {self.name}{star}"


def principal_of(name: str) -> str:
    return f"User:{name}"


def is_managed(principal: str) -> bool:
    """Principals whose ACLs `acl sync` owns: agencies and lienthong-* services. ACLs of any
    other principal (an operator's, Strimzi's own) are left alone."""
    name = principal.removeprefix("User:")
    return principal.startswith("User:") and (
        is_agency_code(name) or bool(SERVICE_NAME_RE.match(name))
    )


def _grant(
    principal: str, resource: str, name: str, operations: Iterable[str], pattern: str = "LITERAL"
) -> list[AclRule]:
    return [AclRule(principal, resource, pattern, name, op) for op in operations]


def agency_acls(code: str, prefix: str) -> list[AclRule]:
    """Write submissions (idempotently), read its own inbox and the crl topic, use only the
    consumer groups named after it (its subscriber's and its edXML gateway's). Nothing else:
    not another inbox, not the dead letters."""
    p = principal_of(code)
    return [
        *_grant(p, "TOPIC", f"{prefix}submissions", ("WRITE", "DESCRIBE")),
        *_grant(p, "CLUSTER", CLUSTER, ("IDEMPOTENT_WRITE",)),
        *_grant(p, "TOPIC", f"{prefix}inbox.{code}", ("READ", "DESCRIBE")),
        *_grant(p, "TOPIC", f"{prefix}crl", ("READ", "DESCRIBE")),
        *_grant(p, "GROUP", f"{prefix}subscriber.{code}", ("READ",), "PREFIXED"),
        # `lienthong gateway edxml` runs as the agency, with the group <prefix>gateway.<code>.
        *_grant(p, "GROUP", f"{prefix}gateway.{code}", ("READ",), "PREFIXED"),
    ]


def service_acls(prefix: str) -> list[AclRule]:
    router = principal_of(ROUTER_PRINCIPAL)
    archiver = principal_of(ARCHIVER_PRINCIPAL)
    witness = principal_of(WITNESS_PRINCIPAL)
    console = principal_of(CONSOLE_PRINCIPAL)
    t = prefix
    return [
        # The router reads submissions and its changelog; writes inboxes, dead letters, its
        # changelog and submissions (a record moved to its home partition), in transactions
        # under its own transactional-id prefix, with its own group.
        *_grant(router, "TOPIC", f"{t}submissions", ("READ", "WRITE", "DESCRIBE")),
        *_grant(router, "TOPIC", f"{t}router-state", ("READ", "WRITE", "DESCRIBE")),
        *_grant(router, "TOPIC", f"{t}deadletter", ("WRITE", "DESCRIBE")),
        *_grant(router, "TOPIC", f"{t}inbox.", ("WRITE", "DESCRIBE"), "PREFIXED"),
        *_grant(router, "TOPIC", f"{t}crl", ("READ", "DESCRIBE")),
        *_grant(router, "GROUP", f"{t}router", ("READ",)),
        *_grant(router, "TRANSACTIONAL_ID", f"{t}router.", ("WRITE", "DESCRIBE"), "PREFIXED"),
        *_grant(router, "CLUSTER", CLUSTER, ("IDEMPOTENT_WRITE",)),
        # The archiver reads everything that is evidence (the witnesses' cosignatures too) and
        # writes its tree heads.
        *[
            rule
            for topic in ("submissions", "deadletter", "crl", "cosignatures")
            for rule in _grant(archiver, "TOPIC", f"{t}{topic}", ("READ", "DESCRIBE"))
        ],
        *_grant(archiver, "TOPIC", f"{t}inbox.", ("READ", "DESCRIBE"), "PREFIXED"),
        *_grant(archiver, "TOPIC", f"{t}checkpoints", ("WRITE", "DESCRIBE")),
        *_grant(archiver, "CLUSTER", CLUSTER, ("IDEMPOTENT_WRITE",)),
        # The witness reads the signed tree heads and publishes its cosignatures (idempotently);
        # the console only describes (health, lag).
        *_grant(witness, "TOPIC", f"{t}checkpoints", ("READ", "DESCRIBE")),
        *_grant(witness, "TOPIC", f"{t}crl", ("READ", "DESCRIBE")),
        *_grant(witness, "TOPIC", f"{t}cosignatures", ("WRITE", "DESCRIBE")),
        *_grant(witness, "CLUSTER", CLUSTER, ("IDEMPOTENT_WRITE",)),
        *_grant(console, "TOPIC", t, ("DESCRIBE",), "PREFIXED"),
        *_grant(console, "GROUP", t, ("DESCRIBE",), "PREFIXED"),
    ]


def derive_acls(
    agencies: AgencyDirectory,
    prefix: str,
    *,
    at: datetime,
    revoked: Collection[str] = (),
) -> list[AclRule]:
    """Every binding the cluster should hold, sorted: open agencies at `at` whose transport
    identity is not revoked, and the platform services (unless revoked themselves)."""
    rules = [
        rule
        for agency in agencies
        if agency.is_open(at) and agency.code not in revoked
        for rule in agency_acls(agency.code, prefix)
    ]
    rules += [r for r in service_acls(prefix) if r.principal.removeprefix("User:") not in revoked]
    return sorted(set(rules))
