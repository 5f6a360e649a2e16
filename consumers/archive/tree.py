"""The archive's Merkle tree: its right edge rebuilt from stored nodes, and signed checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from consumers.archive.store import fetch_nodes
from signing.algorithms import PrivateKey
from signing.errors import PkiError
from signing.merkle import RightEdge, range_keys
from signing.pkidir import PkiDirectory
from signing.profile import CertRole
from signing.treehead import SignedTreeHead, TreeHead, sign_tree_head, signed_tree_head_to_json


class ArchiveStateError(Exception):
    """The stored archive contradicts itself (e.g. a right-edge node is missing): a person must
    look at it; retrying cannot help."""


@dataclass(frozen=True, slots=True)
class HeadSigner:
    """The ARCHIVE key that signs tree heads, and the log they name."""

    key: PrivateKey
    chain: tuple[bytes, ...]
    log_id: str

    def sign(self, size: int, root: bytes, at: datetime) -> tuple[SignedTreeHead, str]:
        head = TreeHead(size=size, root=root, timestamp=at, log_id=self.log_id)
        signed = sign_tree_head(head, key=self.key, chain=self.chain, at=at)
        return signed, signed_tree_head_to_json(signed).decode()


def archive_signer(pki_dir: Path, agency_code: str, log_id: str) -> HeadSigner:
    pki = PkiDirectory(pki_dir)
    entries = pki.find(agency_code=agency_code, role=CertRole.ARCHIVE)
    if not entries:
        raise PkiError(
            f"no valid ARCHIVE certificate for {agency_code} in {pki_dir}: "
            f"run `lienthong pki issue --agency {agency_code} --archive`"
        )
    key, chain = pki.credential(entries[-1])
    return HeadSigner(key, tuple(chain), log_id)


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
