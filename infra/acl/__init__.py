"""Who may do what on the bus: Kafka ACLs derived from the agency directory (rules, pure),
exported as Strimzi KafkaUser resources (strimzi, pure), applied with the Admin API (admin).

Public names: AclRule, derive_acls, principal_of, is_managed, strimzi_users,
strimzi_user_resources, AclAdmin, SyncResult.
"""

from infra.acl.admin import AclAdmin, SyncResult
from infra.acl.rules import AclRule, derive_acls, is_managed, principal_of
from infra.acl.strimzi import strimzi_user_resources, strimzi_users

__all__ = [
    "AclAdmin",
    "AclRule",
    "SyncResult",
    "derive_acls",
    "is_managed",
    "principal_of",
    "strimzi_user_resources",
    "strimzi_users",
]
