"""Which files of the PKI directory each service gets: the trust store (anchors, CRLs, index)
and the certificates and keys of its own identity, never the CA's keys or another's key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.errors import InfraError
from signing.pkidir import PkiDirectory
from signing.profile import CertRole

_SECRET_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+\Z")


@dataclass(frozen=True, slots=True)
class PkiBundle:
    """A Secret's worth of PKI files; each key maps back to its path under the PKI directory."""

    secret: str
    files: tuple[tuple[str, str], ...]  # (secret key, path relative to the PKI directory)


def secret_key(relative: str) -> str:
    """Secret keys are flat: issued/000.00.10.H26/x.pem becomes issued--000.00.10.H26--x.pem."""
    key = relative.replace("/", "--")
    if not _SECRET_KEY_RE.match(key) or len(key) > 253:
        raise InfraError(f"PKI file {relative!r} cannot be a Secret key (use ASCII file names)")
    return key


def trust_files(pki_dir: Path) -> list[str]:
    """trust.yaml, what it names, index.json, and the CA certificates (not their keys)."""
    pki = PkiDirectory(pki_dir)
    if not pki.trust_config.exists():
        raise InfraError(f"no PKI at {pki_dir} (no trust.yaml): run `lienthong pki init`")
    files = {"trust.yaml"}
    config = yaml.safe_load(pki.trust_config.read_text(encoding="utf-8")) or {}
    for value in config.values() if isinstance(config, dict) else ():
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str) and not Path(name).is_absolute():
                files.add(name)
    if pki.index.exists():
        files.add("index.json")
    files |= {
        str(p.relative_to(pki_dir)) for p in (pki_dir / "ca").glob("*.crt.pem") if p.is_file()
    }
    missing = sorted(f for f in files if not (pki_dir / f).is_file())
    if missing:
        raise InfraError(f"{pki.trust_config} names files that are not there: {missing}")
    return sorted(files)


def identity_files(pki_dir: Path, agency: str, role: CertRole) -> list[str]:
    """Certificate, chain and key of every valid certificate of `agency` in `role` (a renewal
    is taken up when its validity starts, so the older one stays until it expires)."""
    entries = PkiDirectory(pki_dir).find(agency_code=agency, role=role)
    if not entries:
        flag = {CertRole.PLATFORM: "--platform", CertRole.ARCHIVE: "--archive"}.get(role, "")
        raise InfraError(
            f"no valid {role} certificate for {agency} in {pki_dir}: run "
            f"`lienthong pki issue --agency {agency}{' ' + flag if flag else ''}`"
        )
    files = []
    for entry in entries:
        files += [entry.certificate, entry.chain, entry.key]
    return sorted(set(files))


def bundle(secret: str, pki_dir: Path, extra: list[str]) -> PkiBundle:
    names = sorted(set(trust_files(pki_dir)) | set(extra))
    for name in extra:
        if not (pki_dir / name).is_file():
            raise InfraError(f"{pki_dir / name} does not exist")
    return PkiBundle(secret, tuple((secret_key(n), n) for n in names))
