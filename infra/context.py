"""What every composition root loads from settings: the agency directory and the trust store."""

from __future__ import annotations

from infra.errors import InfraError
from infra.settings import Settings
from schemas.agency import AgencyDirectory
from signing.trust import TrustStore


def agency_directory(settings: Settings) -> AgencyDirectory:
    if settings.agencies_file is None:
        return AgencyDirectory.default()
    if not settings.agencies_file.exists():
        raise InfraError(f"LIENTHONG_AGENCIES: no agency directory at {settings.agencies_file}")
    return AgencyDirectory.load(settings.agencies_file)


def trust_store(settings: Settings) -> TrustStore:
    path = settings.trust_config
    if not path.exists():
        raise InfraError(
            f"no trust store at {path}: run `lienthong pki init` "
            "(or set LIENTHONG_TRUST_CONFIG to a trust.yaml naming your CA)"
        )
    return TrustStore.from_config(path)
