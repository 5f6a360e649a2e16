"""The archive's Merkle tree: its right edge rebuilt from stored nodes, and signed checkpoints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from consumers.archive.store import fetch_nodes
from signing.algorithms import PrivateKey
from signing.errors import PkiError, SigningError
from signing.merkle import EMPTY_ROOT, RightEdge, plan_consistency, plan_root, range_keys
from signing.note import ED25519, Checkpoint, NoteError, NoteSigner, VerifierKey, sign_note
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.treehead import SignedTreeHead, TreeHead, sign_tree_head, signed_tree_head_to_json


class ArchiveStateError(Exception):
    """The stored archive contradicts itself (e.g. a right-edge node is missing): a person must
    look at it; retrying cannot help."""


LOG_KEY_DIR = "log-keys"  # in the PKI directory: one Ed25519 checkpoint key per log


def log_key_path(pki_dir: Path, log_id: str) -> Path:
    return pki_dir / LOG_KEY_DIR / (log_id.replace("/", "_") + ".key")


def log_verifier_key(pki_dir: Path, log_id: str) -> VerifierKey:
    """The checkpoint key's public half, as written beside it."""
    path = log_key_path(pki_dir, log_id).with_suffix(".vkey")
    if not path.exists():
        raise PkiError(f"no checkpoint verifier key {path}: start the archiver once to make it")
    key = VerifierKey.parse(path.read_text())
    if key.name != log_id:
        raise PkiError(f"{path} is the key of {key.name!r}, not of the log {log_id!r}")
    return key


@dataclass(frozen=True, slots=True)
class HeadSigner:
    """The ARCHIVE key that signs tree heads, the log they name, and the log's Ed25519 note key
    that signs the same heads as C2SP checkpoints (its name is the log id)."""

    key: PrivateKey
    chain: tuple[bytes, ...]
    log_id: str
    log_key: NoteSigner | None = None

    def sign(self, size: int, root: bytes, at: datetime) -> tuple[SignedTreeHead, str]:
        head = TreeHead(size=size, root=root, timestamp=at, log_id=self.log_id)
        signed = sign_tree_head(head, key=self.key, chain=self.chain, at=at)
        return signed, signed_tree_head_to_json(signed).decode()

    def checkpoint(self, size: int, root: bytes) -> str | None:
        """The head as a signed checkpoint note, or None without a log key."""
        if self.log_key is None:
            return None
        return sign_note(Checkpoint(self.log_id, size, root).text(), self.log_key).encode().decode()


def load_log_key(
    pki_dir: Path, log_id: str, *, create: bool = False, passphrase: bytes | None = None
) -> NoteSigner:
    """The archive's checkpoint key, named after the log, made on first use when `create`:
    encrypted PKCS#8 PEM under `passphrase`, else the signed-note PRIVATE+KEY text. Its
    verifier key is what witnesses and auditors pin."""
    path = log_key_path(pki_dir, log_id)
    if not path.exists():
        if not create:
            raise PkiError(f"no checkpoint key {path}: start the archiver once to make it")
        signer = NoteSigner.generate(log_id, ED25519)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = signer.encrypted_pem(passphrase) if passphrase else (signer.encode() + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # The public half beside it, for `audit log-key`, which then needs no passphrase.
        path.with_suffix(".vkey").write_text(signer.verifier.encode() + "\n")
        return signer
    data = path.read_bytes()
    try:
        if data.startswith(b"-----BEGIN"):
            signer = NoteSigner.from_pem(data, log_id, ED25519, passphrase)
        elif passphrase:
            raise PkiError(f"{path} is not encrypted, but a key passphrase is set: encrypt it")
        else:
            signer = NoteSigner.parse(data.decode())
    except NoteError as exc:
        raise PkiError(str(exc)) from None
    if signer.name != log_id or signer.sig_type != ED25519:
        raise PkiError(f"{path} is the key of {signer.name!r}, not of the log {log_id!r}")
    return signer


def archive_signer(
    pki_dir: Path, agency_code: str, log_id: str, passphrase: bytes | None = None
) -> HeadSigner:
    """The ARCHIVE credential and the checkpoint key; both encrypted under `passphrase` when
    one is given (the archive key as `pki issue --passphrase-env` wrote it)."""
    pki = PkiDirectory(pki_dir)
    entries = pki.find(agency_code=agency_code, role=CertRole.ARCHIVE)
    if not entries:
        raise PkiError(
            f"no valid ARCHIVE certificate for {agency_code} in {pki_dir}: "
            f"run `lienthong pki issue --agency {agency_code} --archive`"
        )
    try:
        key, chain = pki.credential(entries[-1], passphrase)
    except SigningError as exc:
        raise PkiError(f"cannot open the ARCHIVE key: {exc}") from None
    log_key = load_log_key(pki_dir, log_id, create=True, passphrase=passphrase)
    return HeadSigner(key, tuple(chain), log_id, log_key)


async def serve_consistency(conn: asyncpg.Connection, old: int, new: int) -> list[bytes]:
    """RFC 6962 PROOF(old, D[new]) from the stored nodes: the archive's documented interface
    for witnesses and auditors (`lienthong audit consistency OLD NEW`). One query."""
    plan = plan_consistency(old, new)
    nodes = await fetch_nodes(conn, plan.keys)
    missing = [k for k in plan.keys if k not in nodes]
    if missing:
        raise ArchiveStateError(f"merkle_node lacks {missing} for the proof {old} -> {new}")
    return list(plan.assemble(nodes))


async def root_at(conn: asyncpg.Connection, size: int) -> bytes:
    """The root of the first `size` leaves, from the stored nodes."""
    plan = plan_root(size)
    nodes = await fetch_nodes(conn, plan.keys)
    missing = [k for k in plan.keys if k not in nodes]
    if missing:
        raise ArchiveStateError(f"merkle_node lacks {missing} for the root of {size}")
    hashes = plan.assemble(nodes)
    return hashes[0] if hashes else EMPTY_ROOT


async def load_right_edge(conn: asyncpg.Connection, size: int) -> RightEdge:
    """The compact range of the first `size` leaves: log2(size) rows, not the whole tree."""
    keys: Sequence[tuple[int, int]] = range_keys(0, size)
    found = await fetch_nodes(conn, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise ArchiveStateError(
            f"merkle_node lacks {missing} of the right edge of {size} records: run `audit check`"
        )
    return RightEdge(size, tuple(found[k] for k in keys))
