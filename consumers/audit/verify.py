"""Re-verify one archived submission: its bytes, its leaf, its signatures, and its place in the
signed Merkle tree; and gather the same pieces into an evidence bundle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from consumers.audit import sql
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope
from schemas.errors import SchemaError
from signing.envelope import AgencyRegistry, verify_envelope
from signing.errors import PkiError, VerificationError
from signing.evidence import build_bundle, witnessed_checkpoint
from signing.merkle import NodeKey, ProofError, leaf_hash, plan_inclusion, verify_inclusion
from signing.merkle_leaf import LeafFormatError, decode_leaf
from signing.note import NoteError, VerifierKey, cosigners, merge_notes
from signing.pki import certificate_pem, crl_pem
from signing.tbs import parse_signing_time
from signing.treehead import SignedTreeHead, signed_tree_head_from_dict, verify_tree_head
from signing.trust import TrustStore


class EvidenceMissing(LookupError):
    """The archive lacks a piece the evidence needs (no such document, no tree head yet...)."""


class PgNodeStore:
    """merkle_node as the proofs' node store: every node a proof needs in one query."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.calls = 0

    async def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.calls += 1
        if not keys:
            return {}
        rows = await self.conn.fetch(sql.MERKLE_NODES, [k[0] for k in keys], [k[1] for k in keys])
        return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the archive holds for one submission, as read; nothing here is trusted yet."""

    document_id: str  # the document asked for: the envelope must be this one
    seq: int
    kind: str
    raw: bytes | None  # None: erased, though the signed leaf says the bytes were kept
    raw_sha256: bytes
    leaf_data: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    tree_head: SignedTreeHead
    summary: dict[str, Any]  # what the archive says of the document (for people, unsigned)
    checkpoint: str | None = None  # the head as a checkpoint, with the witnesses' cosignatures


_SUMMARY = ("sender", "recipients", "number", "notation", "doc_type", "subject", "submitted_at")


def _summary(row: asyncpg.Record | None) -> dict[str, Any]:
    if row is None:
        return {}
    plain = {k: row[k] for k in _SUMMARY if row[k] is not None}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in plain.items()}


@dataclass(frozen=True, slots=True)
class WitnessRule:
    """The auditor's witnesses: `required` of `keys` must have cosigned the head used."""

    keys: tuple[VerifierKey, ...]
    required: int

    def __post_init__(self) -> None:
        if not 0 < self.required <= len(self.keys):
            raise ValueError(f"{self.required} witnesses required of {len(self.keys)} keys given")


async def _witnessed_head(
    conn: asyncpg.Connection, seq: int, rule: WitnessRule
) -> tuple[asyncpg.Record, str]:
    """The newest head covering `seq` that `rule.required` witnesses cosigned, with the merged
    cosigned checkpoint."""
    for row in await conn.fetch(sql.COVERING_CHECKPOINTS, seq):
        try:
            note = merge_notes([row["checkpoint"], *row["cosigned"]])
        except NoteError:
            continue
        if len(cosigners(note, rule.keys)) >= rule.required:
            return row, note.encode().decode()
    raise EvidenceMissing(
        f"record {seq} is covered by no signed tree head that {rule.required} of the "
        f"{len(rule.keys)} witnesses given cosigned (yet)"
    )


async def load_evidence(
    conn: asyncpg.Connection, document_id: str, witnesses: WitnessRule | None = None
) -> Evidence:
    row = await conn.fetchrow(sql.SUBMISSION_RECORD, document_id)
    if row is None:
        raise EvidenceMissing(f"no archived submission for document {document_id!r}")
    if row["raw"] is None and _leaf_withheld(bytes(row["leaf_data"])):
        # The signed leaf says so; parse_error (unsigned) says why.
        raise EvidenceMissing(
            f"the archive keeps no bytes for {document_id!r}: its signed leaf says they were "
            f"withheld ({row['parse_error'] or 'no reason recorded'})"
        )
    checkpoint = None
    if witnesses is not None:
        head_row, checkpoint = await _witnessed_head(conn, row["seq"], witnesses)
    else:
        head_row = await conn.fetchrow(sql.LATEST_TREE_HEAD)
    if head_row is None or head_row["size"] <= row["seq"]:
        raise EvidenceMissing(
            f"record {row['seq']} is not yet covered by a signed tree head; try again shortly"
        )
    signed = head_row["signed"]
    tree_head = signed_tree_head_from_dict(
        json.loads(signed) if isinstance(signed, str) else signed
    )
    plan = plan_inclusion(row["seq"], tree_head.head.size)
    nodes = await PgNodeStore(conn).get_many(plan.keys)
    return Evidence(
        document_id=document_id,
        seq=row["seq"],
        kind=row["kind"],
        raw=None if row["raw"] is None else bytes(row["raw"]),
        raw_sha256=bytes(row["raw_sha256"]),
        leaf_data=bytes(row["leaf_data"]),
        leaf_hash=bytes(row["leaf_hash"]),
        # A node missing from merkle_node is a finding, not a crash: an empty proof fails below.
        proof=tuple(plan.assemble(nodes)) if all(k in nodes for k in plan.keys) else (),
        tree_head=tree_head,
        summary=_summary(await conn.fetchrow(sql.DOCUMENT_BY_ID, document_id)),
        checkpoint=checkpoint,
    )


def _leaf_withheld(leaf_data: bytes) -> bool:
    try:
        return decode_leaf(leaf_data).withheld
    except LeafFormatError:
        return False  # then the bytes are expected, and the leaf check reports the leaf


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


_FINDINGS = (VerificationError, ProofError, LeafFormatError, SchemaError, PkiError, ValueError)


def _check(results: list[CheckResult], name: str, check: Callable[[], str]) -> bool:
    try:
        results.append(CheckResult(name, True, check()))
    except _FINDINGS as exc:
        results.append(CheckResult(name, False, str(exc) or type(exc).__name__))
    return results[-1].ok


def signing_moment(raw: bytes) -> datetime:
    """The latest signing time on the envelope: certificates and CRLs are judged as of then,
    so a certificate revoked or expired after the document was signed does not void it."""
    envelope = decode_envelope(raw)
    return max(parse_signing_time(s.signing_time) for s in envelope.signatures)


def verify_evidence(
    ev: Evidence,
    *,
    trust: TrustStore,
    agencies: AgencyRegistry,
    now: datetime,
    witnesses: WitnessRule | None = None,
) -> list[CheckResult]:
    """Every check, each with its result; a failure does not stop the checks after it."""
    results: list[CheckResult] = []
    raw = ev.raw if ev.raw is not None else b""
    digest = hashlib.sha256(raw).digest()

    def stored() -> bytes:
        if ev.raw is None:
            raise ValueError(
                "the stored bytes were erased (raw is NULL), but the signed leaf says the "
                "archive kept them"
            )
        return ev.raw

    def raw_bytes() -> str:
        stored()
        if digest != ev.raw_sha256:
            raise ValueError("SHA-256 of the stored bytes differs from archive_record.raw_sha256")
        return f"{len(raw)} bytes, sha256 {digest.hex()}"

    def leaf() -> str:
        record = decode_leaf(ev.leaf_data)
        if record.seq != ev.seq:
            raise ValueError(f"leaf says seq {record.seq}, the record is seq {ev.seq}")
        if record.withheld:
            raise ValueError("the leaf says the archive withheld these bytes, yet it holds some")
        if record.sha256 != digest.hex():
            raise ValueError("the leaf names other bytes than the stored envelope")
        if leaf_hash(ev.leaf_data) != ev.leaf_hash:
            raise ValueError("archive_record.leaf_hash is not the hash of its leaf data")
        return f"seq {record.seq}: {record.topic}/{record.partition}@{record.offset}"

    def document() -> str:
        # The document row only points at a record (submission_seq, an unsigned column): the
        # signed bytes must themselves be document ev.document_id, and the leaf's message.
        envelope = decode_envelope(stored())
        if envelope.document_id != ev.document_id:
            raise ValueError(
                f"the archived envelope is document {envelope.document_id!r}, not "
                f"{ev.document_id!r} (the document row points at another record: seq {ev.seq})"
            )
        record = decode_leaf(ev.leaf_data)
        if record.message_id != envelope.message_id:
            raise ValueError(
                f"the leaf names message {record.message_id!r}, the envelope is "
                f"{envelope.message_id!r}"
            )
        if ev.kind != "submission":
            raise ValueError(f"record {ev.seq} is a {ev.kind}, not the document's submission")
        return f"envelope of {envelope.document_id}, message {envelope.message_id}"

    def signatures() -> str:
        envelope = decode_envelope(stored())
        at = signing_moment(stored())
        sender = verify_envelope(envelope, trust=trust, agencies=agencies, at=at)
        signers = "; ".join(
            f"{s.role} {s.subject} sha256:{s.certificate_sha256[:16]}… "
            f"at {s.signing_time.isoformat()}"
            for s in sender.signatures
        )
        return f"sender {sender.agency_code} as of {at.isoformat()}: {signers}"

    def tree_head() -> str:
        head = verify_tree_head(ev.tree_head, trust=trust, at=now)
        return f"size {head.size}, root {head.root.hex()}, {head.timestamp.isoformat()}"

    def inclusion() -> str:
        head = ev.tree_head.head
        if not ev.proof and head.size > 1:
            raise ValueError("merkle_node lacks nodes the inclusion proof needs")
        verify_inclusion(leaf_hash(ev.leaf_data), ev.seq, head.size, ev.proof, head.root)
        return f"leaf {ev.seq} is in the tree of size {head.size} ({len(ev.proof)} hashes)"

    _check(results, "stored-bytes", raw_bytes)
    _check(results, "leaf", leaf)
    _check(results, "document", document)
    _check(results, "envelope-signatures", signatures)
    _check(results, "tree-head-signature", tree_head)
    _check(results, "inclusion", inclusion)
    if witnesses is not None:

        def witnessed() -> str:
            if ev.checkpoint is None:
                raise ValueError("no cosigned checkpoint for this tree head")
            return witnessed_checkpoint(ev.checkpoint, ev.tree_head, witnesses.keys,
                                        witnesses.required)  # fmt: skip

        _check(results, "witnessed", witnessed)
    return results


def sender_agency_metadata(agencies: AgencyDirectory, code: str | None) -> dict[str, Any] | None:
    agency = agencies.lookup(code) if code else None
    if agency is None:
        return None
    return {
        "code": agency.code,
        "name": agency.name,
        "valid_from": agency.valid_from.isoformat(),
        "valid_to": agency.valid_to.isoformat() if agency.valid_to else None,
    }


def evidence_bundle(ev: Evidence, *, trust: TrustStore, agencies: AgencyDirectory) -> bytes:
    """The zip `verify-bundle` checks offline: the evidence, the trust it was checked against,
    and (unauthenticated, for the reader) what the archive says about the document.

    Refused (EvidenceMissing) when the bytes are gone or are not document ev.document_id: a
    bundle labelled with one document must never carry another's envelope."""
    if ev.raw is None:
        raise EvidenceMissing(
            f"the archive's bytes of {ev.document_id!r} were erased (raw is NULL, but the signed "
            "leaf says they were kept): `audit verify` and `audit check` report it"
        )
    try:
        envelope = decode_envelope(ev.raw)
    except SchemaError as exc:
        raise EvidenceMissing(
            f"the archived bytes of {ev.document_id!r} do not decode: {exc}"
        ) from None
    if envelope.document_id != ev.document_id:
        raise EvidenceMissing(
            f"the archived envelope (seq {ev.seq}) is document {envelope.document_id!r}, not "
            f"{ev.document_id!r}: the archive's document row was altered; see `audit verify`"
        )
    metadata: dict[str, Any] = {
        "document_id": ev.document_id,
        "seq": ev.seq,
        "document": ev.summary,
    }
    sender = sender_agency_metadata(agencies, ev.summary.get("sender"))
    if sender is not None:
        metadata["sender_agency"] = sender
    return build_bundle(
        checkpoint_note=ev.checkpoint.encode() if ev.checkpoint else None,
        envelope_bytes=ev.raw,
        leaf_data=ev.leaf_data,
        leaf_index=ev.seq,
        inclusion_proof=list(ev.proof),
        signed_tree_head=ev.tree_head,
        trust_anchors_pem=b"".join(certificate_pem(a) for a in trust.anchors),
        crls_pem=b"".join(crl_pem(c) for c in trust.crls),
        metadata=metadata,
    )
