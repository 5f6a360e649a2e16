"""Signed tree heads: the archive's signed statement of its Merkle tree's size and root."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from signing.algorithms import PrivateKey
from signing.blob import DetachedSignature, sign_blob, verify_blob
from signing.core import VerifiedSignature
from signing.errors import ReasonCode, VerificationError
from signing.merkle import HASH_SIZE
from signing.merkle_leaf import canonical_json
from signing.profile import CertRole
from signing.tbs import epoch_millis
from signing.trust import TrustStore

TREE_HEAD_PREFIX = b"LIENTHONG-TREE-HEAD-V1\x00"
TREE_HEAD_PURPOSE = "lienthong.tree-head"
MAX_LOG_ID_BYTES = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The first `size` leaves have root `root`, as log `log_id` saw them at `timestamp`.

    The timestamp is kept as UTC whole milliseconds, what the signed encoding carries, so a
    head read back from JSON equals the head that was signed.
    """

    size: int
    root: bytes
    timestamp: datetime
    log_id: str  # e.g. "lienthong.archive/000.00.00.H26"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise ValueError("tree size is not an integer")
        if not 0 <= self.size < 2**63:
            raise ValueError(f"tree size {self.size} out of range")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"root is not a {HASH_SIZE}-byte hash")
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise ValueError("tree head timestamp must be a timezone-aware datetime")
        if (
            not isinstance(self.log_id, str)
            or not 0 < len(self.log_id.encode()) <= MAX_LOG_ID_BYTES
        ):
            raise ValueError(f"log id must be 1..{MAX_LOG_ID_BYTES} UTF-8 bytes")
        millis = epoch_millis(self.timestamp)
        object.__setattr__(self, "timestamp", _EPOCH + timedelta(milliseconds=millis))


def tree_head_bytes(head: TreeHead) -> bytes:
    """The signed encoding (docs/evidence.md):

    prefix || uint64be(size) || root (32) || int64be(timestamp ms) || uint8(len) || log_id UTF-8
    """
    log_id = head.log_id.encode("utf-8")
    return (
        TREE_HEAD_PREFIX
        + struct.pack(">Q", head.size)
        + head.root
        + struct.pack(">q", epoch_millis(head.timestamp))
        + struct.pack(">B", len(log_id))
        + log_id
    )


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    head: TreeHead
    signature: DetachedSignature


def sign_tree_head(
    head: TreeHead, *, key: PrivateKey, chain: Sequence[bytes], at: datetime, rsa_pss: bool = False
) -> SignedTreeHead:
    """Sign with an ARCHIVE certificate; the purpose keeps the signature off other artefacts."""
    signature = sign_blob(
        tree_head_bytes(head),
        key=key,
        chain=chain,
        at=at,
        role=CertRole.ARCHIVE,
        purpose=TREE_HEAD_PURPOSE,
        rsa_pss=rsa_pss,
    )
    return SignedTreeHead(head, signature)


def verify_tree_head_signer(
    signed: SignedTreeHead, *, trust: TrustStore, at: datetime
) -> VerifiedSignature:
    """Verify the signature; return who signed (an ARCHIVE certificate), or raise."""
    if signed.signature.purpose != TREE_HEAD_PURPOSE:
        raise VerificationError(
            ReasonCode.BAD_SIGNATURE, f"signed for {signed.signature.purpose!r}, not a tree head"
        )
    verified = verify_blob(
        tree_head_bytes(signed.head),
        signed.signature,
        trust=trust,
        at=at,
        role=CertRole.ARCHIVE,
        purpose=TREE_HEAD_PURPOSE,
    )
    # A head cannot be signed before the tree it describes existed.
    if verified.signing_time < signed.head.timestamp - timedelta(minutes=5):
        raise VerificationError(
            ReasonCode.SIGNING_TIME_INVALID, "tree head signed before its own timestamp"
        )
    return verified


def verify_tree_head(signed: SignedTreeHead, *, trust: TrustStore, at: datetime) -> TreeHead:
    """The tree head, once its ARCHIVE signature verifies; VerificationError otherwise."""
    verify_tree_head_signer(signed, trust=trust, at=at)
    return signed.head


# --- JSON: a Kafka checkpoint message, a DB row (jsonb), a bundle member ---


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a base64 string")
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name} is not base64: {exc}") from exc
    if _b64(data) != value:
        raise ValueError(f"{name} is not canonical base64")
    return data


def signature_to_dict(sig: DetachedSignature) -> dict[str, Any]:
    """DetachedSignature's wire form: strings as they are, bytes as standard padded base64."""
    return {
        "purpose": sig.purpose,
        "algorithm": sig.algorithm,
        "certificate_chain": [_b64(der) for der in sig.certificate_chain],
        "signing_time": sig.signing_time,
        "value": _b64(sig.value),
    }


def signature_from_dict(obj: object) -> DetachedSignature:
    if not isinstance(obj, dict) or set(obj) != {
        "purpose",
        "algorithm",
        "certificate_chain",
        "signing_time",
        "value",
    }:
        raise ValueError("signature must have exactly purpose, algorithm, certificate_chain, ...")
    chain = obj["certificate_chain"]
    if not isinstance(chain, list):
        raise ValueError("certificate_chain is not a list")
    for name in ("purpose", "algorithm", "signing_time"):
        if not isinstance(obj[name], str):
            raise ValueError(f"{name} is not a string")
    return DetachedSignature(
        purpose=obj["purpose"],
        algorithm=obj["algorithm"],
        certificate_chain=tuple(_unb64(c, "certificate_chain[]") for c in chain),
        signing_time=obj["signing_time"],
        value=_unb64(obj["value"], "value"),
    )


def signed_tree_head_to_dict(signed: SignedTreeHead) -> dict[str, Any]:
    head = signed.head
    return {
        "version": _JSON_VERSION,
        "tree_head": {
            "size": head.size,
            "root": _b64(head.root),
            "timestamp_ms": epoch_millis(head.timestamp),
            "log_id": head.log_id,
        },
        "signature": signature_to_dict(signed.signature),
    }


def signed_tree_head_to_json(signed: SignedTreeHead) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8)."""
    return canonical_json(signed_tree_head_to_dict(signed))


def signed_tree_head_from_dict(obj: object) -> SignedTreeHead:
    """Inverse of signed_tree_head_to_dict; ValueError on anything else."""
    if not isinstance(obj, dict) or set(obj) != {"version", "tree_head", "signature"}:
        raise ValueError("a signed tree head has exactly version, tree_head, signature")
    if obj["version"] != _JSON_VERSION:
        raise ValueError(f"unknown signed tree head version {obj['version']!r}")
    head = obj["tree_head"]
    if not isinstance(head, dict) or set(head) != {"size", "root", "timestamp_ms", "log_id"}:
        raise ValueError("tree_head has exactly size, root, timestamp_ms, log_id")
    millis = head["timestamp_ms"]
    if not isinstance(millis, int) or isinstance(millis, bool):
        raise ValueError("timestamp_ms is not an integer")
    return SignedTreeHead(
        TreeHead(
            size=head["size"],
            root=_unb64(head["root"], "root"),
            timestamp=_EPOCH + timedelta(milliseconds=millis),
            log_id=head["log_id"],
        ),
        signature_from_dict(obj["signature"]),
    )


def signed_tree_head_from_json(data: bytes | str) -> SignedTreeHead:
    """Parse any JSON formatting (jsonb reorders keys); ValueError when not a signed tree head."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"signed tree head is not JSON: {exc}") from exc
    try:
        return signed_tree_head_from_dict(obj)
    except (OverflowError, TypeError) as exc:
        raise ValueError(f"bad signed tree head: {exc}") from exc
