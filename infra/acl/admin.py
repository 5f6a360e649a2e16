"""Applies the ACL table to a cluster with Kafka's Admin API (confluent-kafka's AdminClient:
aiokafka's admin client has no ACL calls)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from infra.acl.rules import CLUSTER, AclRule, is_managed
from infra.errors import InfraError

TIMEOUT_S = 30.0
# SCRAM-SHA-512 with 8192 iterations, as the brokers' own formatted user (infra.services.cluster);
# Kafka accepts 4096 to 16384.
SCRAM_ITERATIONS = 8192
MIN_SCRAM_PASSWORD = 16
# Kafka calls the cluster resource CLUSTER; librdkafka calls it BROKER.
_TO_KAFKA = {
    "TOPIC": ResourceType.TOPIC,
    "GROUP": ResourceType.GROUP,
    "TRANSACTIONAL_ID": ResourceType.TRANSACTIONAL_ID,
    "CLUSTER": ResourceType.BROKER,
}
_FROM_KAFKA = {v: k for k, v in _TO_KAFKA.items()}


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: list[AclRule]
    removed: list[AclRule]
    kept: int


def _binding(rule: AclRule) -> AclBinding:
    return AclBinding(
        _TO_KAFKA[rule.resource],
        CLUSTER if rule.resource == "CLUSTER" else rule.name,
        ResourcePatternType[rule.pattern],
        rule.principal,
        rule.host,
        AclOperation[rule.operation],
        AclPermissionType.ALLOW,
    )


def _rule(binding: AclBinding) -> AclRule | None:
    # librdkafka's stubs allow str | int too; a described binding always holds the enums.
    restype, pattern, operation = (
        binding.restype,
        binding.resource_pattern_type,
        binding.operation,
    )
    if not (
        isinstance(restype, ResourceType)
        and isinstance(pattern, ResourcePatternType)
        and isinstance(operation, AclOperation)
    ):
        return None
    resource = _FROM_KAFKA.get(restype)
    if resource is None or binding.permission_type != AclPermissionType.ALLOW:
        return None
    return AclRule(
        binding.principal, resource, pattern.name, binding.name, operation.name, binding.host
    )


class AclAdmin:
    """ACLs of one cluster; needs a super user's identity (lienthong-admin) or ALTER on the
    cluster. `options` are librdkafka properties (ClientSecurity.librdkafka_options)."""

    def __init__(self, bootstrap: str, options: Mapping[str, str]) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap, **options})

    def list(self) -> list[AclRule]:
        # None matches any name, principal and host (the stubs say str).
        everything = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        try:
            found = self._admin.describe_acls(everything, request_timeout=TIMEOUT_S).result()
        except KafkaException as exc:
            raise InfraError(f"describing ACLs failed: {exc.args[0]}") from None
        return sorted(r for r in map(_rule, found) if r is not None)

    def add(self, rules: Iterable[AclRule]) -> None:
        bindings = [_binding(r) for r in rules]
        if not bindings:
            return
        futures = self._admin.create_acls(bindings, request_timeout=TIMEOUT_S)
        for binding, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                raise InfraError(f"creating ACL {binding} failed: {exc.args[0]}") from None

    def remove(self, rules: Iterable[AclRule]) -> None:
        # A binding used as a filter matches exactly itself.
        filters = [_as_filter(_binding(r)) for r in rules]
        if not filters:
            return
        futures = self._admin.delete_acls(filters, request_timeout=TIMEOUT_S)
        for binding, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                raise InfraError(f"deleting ACL {binding} failed: {exc.args[0]}") from None

    def sync(self, wanted: Iterable[AclRule], *, dry_run: bool = False) -> SyncResult:
        """Make the managed principals' ACLs exactly `wanted`: add what is missing, remove what
        no rule asks for any more (a closed or revoked agency's). Idempotent."""
        want = set(wanted)
        have = {r for r in self.list() if is_managed(r.principal)}
        added = sorted(want - have)
        removed = sorted(have - want)
        if not dry_run:
            self.add(added)
            self.remove(removed)
        return SyncResult(added, removed, len(want & have))

    def scram_users(self) -> dict[str, int]:
        """Every SCRAM-SHA-512 user of the cluster with its iteration count."""
        try:
            # Without a list of users: one future for all of them (with a list, one per user).
            everyone = self._admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S)
            assert not isinstance(everyone, dict)
            described = everyone.result()
        except KafkaException as exc:
            raise InfraError(f"describing SCRAM users failed: {exc.args[0]}") from None
        return {
            user: info.iterations
            for user, description in sorted(described.items())
            for info in description.scram_credential_infos
            if info.mechanism == ScramMechanism.SCRAM_SHA_512
        }

    def set_scram(self, user: str, password: str) -> None:
        """Create or replace `user`'s SCRAM-SHA-512 credential: a department without client
        certificates connects on the SASL_SSL listener under the principal User:<user>, so
        the same ACLs apply as to its certificate."""
        if len(password) < MIN_SCRAM_PASSWORD:
            raise InfraError(
                f"a SCRAM password needs at least {MIN_SCRAM_PASSWORD} characters "
                "(it stands alone, without a certificate)"
            )
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(user, info, password.encode())
        self._scram_alter([upsert], f"setting the SCRAM credential of {user}")

    def delete_scram(self, user: str) -> None:
        deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
        self._scram_alter([deletion], f"deleting the SCRAM credential of {user}")

    def _scram_alter(self, changes: Sequence[UserScramCredentialAlteration], what: str) -> None:
        try:
            for future in self._admin.alter_user_scram_credentials(
                list(changes), request_timeout=TIMEOUT_S
            ).values():
                future.result()
        except KafkaException as exc:
            raise InfraError(f"{what} failed: {exc.args[0]}") from None


def _as_filter(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )
