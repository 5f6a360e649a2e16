"""The cluster's ACLs as the directory and the transport PKI want them, and the admin client
that applies them: shared by `lienthong acl` and `lienthong pki transport revoke`."""

from __future__ import annotations

from datetime import UTC, datetime

from infra import context, services
from infra.acl import AclAdmin, AclRule, SyncResult, derive_acls
from infra.settings import Settings
from signing.pkidir import PkiDirectory
from signing.transportpki import TransportPki


def wanted_acls(settings: Settings, at: datetime | None = None) -> list[AclRule]:
    """Every open agency's and platform service's ACLs, none for a revoked transport identity."""
    revoked = TransportPki(PkiDirectory(settings.pki_dir)).revoked_names()
    return derive_acls(
        context.exchange_directory(settings),
        settings.topic_prefix,
        at=at or datetime.now(UTC),
        revoked=revoked,
    )


def acl_admin(settings: Settings) -> AclAdmin:
    bootstrap = services.kafka_bootstrap(settings)
    return AclAdmin(bootstrap, settings.kafka_security.librdkafka_options())


def sync_acls(settings: Settings, *, dry_run: bool = False) -> SyncResult:
    return acl_admin(settings).sync(wanted_acls(settings), dry_run=dry_run)
