"""What every composition root loads from settings: the agency directory and the trust store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

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


def exchange_directory(settings: Settings) -> AgencyDirectory:
    """Every agency the exchange routes for: the local directory and the national agencies
    beside it (LIENTHONG_NATIONAL_AGENCIES). A code in both keeps the local entry: the city's
    own directory is the truth about its agencies. The router, the archiver (and `audit check`,
    which must derive exactly what it did), subscribers, gateways, topics and ACLs use this;
    the KPI counts the local directory only."""
    local = agency_directory(settings)
    if not settings.national_agencies:
        return local
    if settings.national_agencies_file is None:
        national = AgencyDirectory.national()
    elif not settings.national_agencies_file.exists():
        raise InfraError(
            f"LIENTHONG_NATIONAL_AGENCIES: no agency directory at {settings.national_agencies_file}"
        )
    else:
        national = AgencyDirectory.load(settings.national_agencies_file)
    extra = [a for a in national if a.code not in local]
    return AgencyDirectory.from_agencies([*local, *extra]) if extra else local


def trust_store(settings: Settings) -> TrustStore:
    path = settings.trust_config
    if not path.exists():
        raise InfraError(
            f"no trust store at {path}: run `lienthong pki init` "
            "(or set LIENTHONG_TRUST_CONFIG to a trust.yaml naming your CA)"
        )
    return TrustStore.from_config(path)


PASSPHRASE_ENV = "LIENTHONG_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "LIENTHONG_KEY_PASSPHRASE_FILE"


def key_passphrase(settings: Settings, env: Mapping[str, str] | None = None) -> bytes | None:
    """The passphrase of the service keys (the ARCHIVE key, the checkpoint key), from
    $LIENTHONG_KEY_PASSPHRASE or from the file $LIENTHONG_KEY_PASSPHRASE_FILE names, which must
    lie outside the state directory: a passphrase beside the keys it protects protects
    nothing. None when neither is set (keys stored in clear: development only)."""
    env = os.environ if env is None else env
    value = env.get(PASSPHRASE_ENV)
    path_text = env.get(PASSPHRASE_FILE_ENV)
    if value and path_text:
        raise InfraError(f"set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}, not both")
    if value:
        return value.encode("utf-8")
    if not path_text:
        return None
    path = Path(path_text).resolve()
    for inside in (settings.home.resolve(), settings.pki_dir.resolve()):
        if path.is_relative_to(inside):
            raise InfraError(
                f"{PASSPHRASE_FILE_ENV}: {path} lies in {inside}, beside the keys it protects; "
                "keep it elsewhere (another disk, a secrets mount)"
            )
    if not path.exists():
        raise InfraError(f"{PASSPHRASE_FILE_ENV}: no file {path}")
    secret = path.read_bytes().rstrip(b"\r\n")
    if not secret:
        raise InfraError(f"{PASSPHRASE_FILE_ENV}: {path} is empty")
    return secret
