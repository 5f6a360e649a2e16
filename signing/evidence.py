"""Evidence bundles: one archived message, its inclusion proof and signed tree head, in a zip."""

from __future__ import annotations

import enum
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from schemas.agency import Agency, AgencyDirectory
from schemas.codec import decode_envelope
from schemas.errors import SchemaError
from signing.envelope import AgencyRegistry, verify_envelope
from signing.errors import PkiError, VerificationError
from signing.merkle import ProofError, leaf_hash, verify_inclusion
from signing.merkle_leaf import LeafFormatError, LeafRecord, canonical_json, decode_leaf
from signing.note import NoteError, VerifierKey, cosigners, parse_checkpoint, parse_note
from signing.tbs import parse_signing_time
from signing.treehead import (
    SignedTreeHead,
    signed_tree_head_from_json,
    signed_tree_head_to_json,
    verify_tree_head_signer,
)
from signing.trust import TrustStore

BUNDLE_FORMAT = "lienthong.evidence.v1"
# v2 = v1 + the tree head as a C2SP checkpoint with the witnesses' cosignatures.
WITNESSED_FORMAT = "lienthong.evidence.v2"
MANIFEST = "MANIFEST.json"
ENVELOPE, LEAF, PROOF, TREE_HEAD = "envelope.avro", "leaf.bin", "proof.json", "tree-head.json"
ANCHORS, CRLS, METADATA = "trust/anchors.pem", "trust/crls.pem", "metadata.json"
CHECKPOINT = "checkpoint.note"
MEMBERS = (ENVELOPE, LEAF, PROOF, TREE_HEAD, ANCHORS, CRLS, METADATA)
# Fixed zip metadata so the same evidence always gives the same bytes, and any other bytes
# (a flipped header bit, a comment, a re-zip) are noticed.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----\s*", re.DOTALL)


class EvidenceError(ValueError):
    """build_bundle refused: the pieces given do not prove what a bundle claims."""


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"  # not checked, and the detail says why; never counted as a pass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class BundleReport:
    """Every check with its result; `ok` when none failed and the core chain was verified."""

    checks: tuple[Check, ...]
    leaf: LeafRecord | None = None
    signed_tree_head: SignedTreeHead | None = None
    witnesses_required: bool = False  # then "witnessed" is a core check too

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    @property
    def ok(self) -> bool:
        passed = {c.name for c in self.checks if c.status is Status.PASS}
        core = CORE_CHECKS | ({"witnessed"} if self.witnesses_required else set())
        return not self.failures and core <= passed

    @property
    def anchors_pinned(self) -> bool:
        return any(c.name == "anchor-pinned" and c.status is Status.PASS for c in self.checks)

    def summary(self) -> str:
        return "\n".join(f"{c.status:4} {c.name}: {c.detail}" for c in self.checks)


_UNPINNED = (
    "anchors come from the bundle: this proves consistency, not authenticity;"
    " pass the archive's anchor obtained independently (trust_override)"
)
# anchor-pinned is core: anchors taken from the bundle prove only that the bundle agrees with
# itself (anyone can make a root), so a bundle is never "ok" unless the auditor pinned them.
CORE_CHECKS = frozenset(
    {
        "container",
        "manifest",
        "leaf",
        "envelope-digest",
        "document",
        "inclusion",
        "anchor-pinned",
        "tree-head-signature",
    }
)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _names(members: Mapping[str, bytes]) -> tuple[str, ...]:
    return (*MEMBERS, CHECKPOINT) if CHECKPOINT in members else MEMBERS


def _zip(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name in (MANIFEST, *_names(members)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.create_system = 3  # otherwise it depends on the building machine's OS
            info.external_attr = 0o100644 << 16
            zf.writestr(info, members[name])
    return out.getvalue()


def _manifest(members: Mapping[str, bytes]) -> bytes:
    files = {name: _sha256_hex(members[name]) for name in _names(members)}
    fmt = WITNESSED_FORMAT if CHECKPOINT in members else BUNDLE_FORMAT
    return canonical_json({"format": fmt, "hash": "sha256", "files": files})


def witnessed_checkpoint(
    note_text: str | bytes,
    signed_tree_head: SignedTreeHead,
    witnesses: tuple[VerifierKey, ...],
    required: int,
) -> str:
    """The checkpoint states the signed tree head's log, size and root, and `required` of
    `witnesses` cosigned it; returns who did, or raises ValueError."""
    note = parse_note(note_text)
    checkpoint = parse_checkpoint(note.text)
    head = signed_tree_head.head
    if (checkpoint.origin, checkpoint.size, checkpoint.root) != (head.log_id, head.size, head.root):
        raise ValueError(
            f"the checkpoint ({checkpoint.origin}, {checkpoint.size}) is not the signed tree head "
            f"({head.log_id}, {head.size}) or its root differs"
        )
    good = cosigners(note, witnesses)
    if len(good) < required:
        raise ValueError(
            f"{len(good)} of the {len(witnesses)} witnesses given cosigned it, {required} required"
        )
    return f"size {checkpoint.size} cosigned by {', '.join(k.name for k in good)}"


def _proof_json(leaf_index: int, tree_size: int, path: list[bytes]) -> bytes:
    return canonical_json(
        {
            "leaf_index": leaf_index,
            "tree_size": tree_size,
            "inclusion_path": [h.hex() for h in path],
        }
    )


def _load_trust(anchors_pem: bytes, crls_pem: bytes) -> TrustStore:
    try:
        anchors = tuple(x509.load_pem_x509_certificates(anchors_pem))
        crls = tuple(x509.load_pem_x509_crl(m.group()) for m in _PEM_CRL.finditer(crls_pem))
    except ValueError as exc:
        raise PkiError(f"cannot read the trust files: {exc}") from exc
    if _PEM_CRL.sub(b"", crls_pem).strip():
        raise PkiError("trust/crls.pem holds something other than PEM CRLs")
    return TrustStore(anchors, crls)


def pinned_trust(pinned: TrustStore, crls_pem: bytes) -> tuple[TrustStore, str]:
    """The auditor's anchors with their own CRLs, plus every CRL in the bundle that an issuer
    under those anchors signed (a revocation counts whoever carried it; the bundle cannot add
    an anchor). A bundle CRL issued by a pinned anchor whose signature does not verify is
    dropped and named; one from an intermediate is checked when a chain brings that CA."""
    try:
        carried = [x509.load_pem_x509_crl(m.group()) for m in _PEM_CRL.finditer(crls_pem)]
    except ValueError as exc:
        raise PkiError(f"cannot read trust/crls.pem: {exc}") from exc
    own = {crl.public_bytes(serialization.Encoding.DER) for crl in pinned.crls}
    kept, dropped = [], []
    for crl in carried:
        if crl.public_bytes(serialization.Encoding.DER) in own:
            continue
        issuers = [a for a in pinned.anchors if a.subject == crl.issuer]
        if issuers and not any(crl.is_signature_valid(a.public_key()) for a in issuers):  # type: ignore[arg-type]
            dropped.append(crl.issuer.rfc4514_string())
            continue
        kept.append(crl)
    note = f"; {len(kept)} CRL(s) from the bundle" if kept else ""
    if dropped:
        note += f"; ignored bundle CRL(s) with a bad signature: {', '.join(dropped)}"
    trust = TrustStore(
        pinned.anchors, (*pinned.crls, *kept), revocation_unknown=pinned.revocation_unknown
    )
    return trust, note


def build_bundle(
    *,
    envelope_bytes: bytes,
    leaf_data: bytes,
    leaf_index: int,
    inclusion_proof: list[bytes],
    signed_tree_head: SignedTreeHead,
    trust_anchors_pem: bytes,
    crls_pem: bytes,
    metadata: dict[str, Any],
    checkpoint_note: bytes | None = None,
) -> bytes:
    """The zip an auditor verifies offline; refuses pieces that do not prove inclusion. With
    `checkpoint_note` (the head as a cosigned checkpoint) the bundle is format v2."""
    try:
        leaf = decode_leaf(leaf_data)
    except LeafFormatError as exc:
        raise EvidenceError(str(exc)) from exc
    if leaf.sha256 != _sha256_hex(envelope_bytes):
        raise EvidenceError("the leaf does not name these envelope bytes (sha256 differs)")
    if leaf.seq != leaf_index:
        raise EvidenceError(f"leaf says seq {leaf.seq}, caller says index {leaf_index}")
    head = signed_tree_head.head
    try:
        verify_inclusion(leaf_hash(leaf_data), leaf_index, head.size, inclusion_proof, head.root)
        _load_trust(trust_anchors_pem, crls_pem)
        metadata_bytes = canonical_json(metadata)
    except (ProofError, PkiError, TypeError, ValueError) as exc:
        raise EvidenceError(str(exc)) from exc
    members = {
        ENVELOPE: envelope_bytes,
        LEAF: leaf_data,
        PROOF: _proof_json(leaf_index, head.size, inclusion_proof),
        TREE_HEAD: signed_tree_head_to_json(signed_tree_head),
        ANCHORS: trust_anchors_pem,
        CRLS: crls_pem,
        METADATA: metadata_bytes,
    }
    if checkpoint_note is not None:
        try:
            witnessed_checkpoint(checkpoint_note, signed_tree_head, (), 0)
        except (NoteError, ValueError) as exc:
            raise EvidenceError(f"checkpoint: {exc}") from exc
        members[CHECKPOINT] = checkpoint_note
    return _zip({MANIFEST: _manifest(members), **members})


class _Failed(Exception):
    pass


class _Skip(Exception):
    pass


# Whatever the bytes, a check ends in one of these; each becomes a FAIL with its message.
_CHECK_FAILURES = (
    _Failed,
    VerificationError,
    ProofError,
    PkiError,
    SchemaError,
    ValueError,
    TypeError,
    KeyError,
)


def _canonical(data: bytes, name: str) -> Any:
    try:
        value = json.loads(data.decode("utf-8"))
        if canonical_json(value) != data:
            raise _Failed(f"{name} is not canonical JSON (sorted keys, no spaces, UTF-8)")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Failed(f"{name} is not JSON: {exc}") from exc
    return value


def _read_zip(zip_bytes: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            names = zf.namelist()
            expected = {MANIFEST, *MEMBERS}
            if len(names) != len(set(names)) or set(names) - {CHECKPOINT} != expected:
                raise _Failed(f"members are {sorted(names)}, expected {sorted(expected)}")
            members = {}
            for name in names:
                try:
                    members[name] = zf.read(name)
                except Exception as exc:  # zipfile fails on bad input in a dozen ways
                    raise _Failed(f"{name} is corrupt in the zip: {exc!r}") from exc
    except _Failed:
        raise
    except Exception as exc:
        raise _Failed(f"not a readable zip: {exc!r}") from exc
    if _zip(members) != zip_bytes:
        raise _Failed("zip bytes differ from the canonical container of its own members")
    return members


class _Verifier:
    """Runs named checks in order; a check that fails or cannot run is recorded, not raised."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            self.checks.append(Check(name, Status.PASS, check()))
            return True
        except _CHECK_FAILURES as exc:
            self.checks.append(Check(name, Status.FAIL, str(exc)))
            return False

    def skip(self, name: str, why: str) -> None:
        self.checks.append(Check(name, Status.SKIP, why))


def _metadata_agencies(metadata: object) -> AgencyRegistry | None:
    info = metadata.get("sender_agency") if isinstance(metadata, dict) else None
    if info is None:
        return None
    try:
        agency = Agency(
            code=info["code"],
            name=info["name"],
            parent=None,
            valid_from=date.fromisoformat(info["valid_from"]),
            valid_to=date.fromisoformat(info["valid_to"]) if info.get("valid_to") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _Failed(f"metadata sender_agency is malformed: {exc}") from exc
    return AgencyDirectory.from_agencies([agency])


def verify_bundle(
    zip_bytes: bytes,
    *,
    at: datetime | None = None,
    trust_override: TrustStore | None = None,
    agencies: AgencyRegistry | None = None,
    document_id: str | None = None,
    witnesses: tuple[VerifierKey, ...] = (),
    required: int = 0,
) -> BundleReport:
    """Check a bundle offline; `trust_override` pins the auditor's own anchors and CRLs (the
    bundle's CRLs signed under those anchors count too, see pinned_trust).

    `agencies` is the auditor's agency directory; without it the sender's validity comes
    from metadata.json, and without that the envelope's signatures are not checked.
    `document_id`, when given, is the document the auditor expects the bundle to prove.
    With `required` > 0, `checkpoint.note` must state the tree head and carry valid
    cosignatures of `required` of `witnesses` (check "witnessed", then a core check).
    """
    now = at or datetime.now(UTC)
    v = _Verifier()
    box: dict[str, Any] = {}

    def container() -> str:
        box["m"] = _read_zip(zip_bytes)
        return f"{len(box['m'])} members, canonical zip"

    if not v.run("container", container):
        return BundleReport(tuple(v.checks))
    m: dict[str, bytes] = box["m"]

    def manifest() -> str:
        listed = _canonical(m[MANIFEST], MANIFEST)
        if listed != json.loads(_manifest(m)):
            files = listed.get("files") if isinstance(listed, dict) else None
            bad = [
                n
                for n in _names(m)
                if not isinstance(files, dict) or files.get(n) != _sha256_hex(m[n])
            ]
            raise _Failed(f"{MANIFEST} and the SHA-256 of {', '.join(bad) or 'its format'} differ")
        return "every member's SHA-256 matches"

    def leaf() -> str:
        record = box["leaf"] = decode_leaf(m[LEAF])
        return f"seq {record.seq}: {record.topic}/{record.partition}@{record.offset}"

    def envelope_digest() -> str:
        if box["leaf"].withheld:
            raise _Failed("the leaf says the archive withheld the bytes; a bundle carries them")
        if box["leaf"].sha256 != _sha256_hex(m[ENVELOPE]):
            raise _Failed("SHA-256 of envelope.avro is not the one the leaf names")
        return f"sha256 {box['leaf'].sha256}"

    def tree_head() -> str:
        _canonical(m[TREE_HEAD], TREE_HEAD)
        try:
            box["sth"] = signed_tree_head_from_json(m[TREE_HEAD])
        except ValueError as exc:
            raise _Failed(f"{TREE_HEAD}: {exc}") from exc
        h = box["sth"].head
        return f"size {h.size}, root {h.root.hex()}, {h.timestamp.isoformat()}, log {h.log_id}"

    def inclusion() -> str:
        proof = _canonical(m[PROOF], PROOF)
        try:
            index, size = proof["leaf_index"], proof["tree_size"]
            path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
            if set(proof) != {"leaf_index", "tree_size", "inclusion_path"}:
                raise ValueError("unexpected fields")
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (index, size)):
                raise ValueError("index and size must be integers")
        except (KeyError, TypeError, ValueError) as exc:
            raise _Failed(f"{PROOF} is malformed: {exc}") from exc
        if index != box["leaf"].seq:
            raise _Failed(f"proof is for leaf {index}, the leaf is seq {box['leaf'].seq}")
        if size != box["sth"].head.size:
            raise _Failed(f"proof is for size {size}, the tree head for {box['sth'].head.size}")
        verify_inclusion(leaf_hash(m[LEAF]), index, size, path, box["sth"].head.root)
        return f"leaf {index} is in the tree of size {size} ({len(path)} hashes)"

    def trust() -> str:
        note = ""
        if trust_override is not None:
            box["trust"], note = pinned_trust(trust_override, m[CRLS])
        else:
            box["trust"] = _load_trust(m[ANCHORS], m[CRLS])
        names = "; ".join(a.subject.rfc4514_string() for a in box["trust"].anchors)
        return f"{'auditor' if trust_override else 'bundle'} anchors: {names}{note}"

    def document() -> str:
        # metadata.json is the platform's word, but it is the bundle's label: the envelope
        # must be the document it names (and the record it names), or the bundle is refused.
        try:
            env = decode_envelope(m[ENVELOPE])
        except SchemaError as exc:
            raise _Failed(f"envelope.avro does not decode: {exc}") from exc
        if env.message_id != box["leaf"].message_id:
            raise _Failed(f"envelope is {env.message_id}, the leaf names {box['leaf'].message_id}")
        meta = _canonical(m[METADATA], METADATA)
        labelled = meta.get("document_id") if isinstance(meta, dict) else None
        if labelled != env.document_id:
            raise _Failed(
                f"metadata.json labels the bundle {labelled!r}; the envelope is document "
                f"{env.document_id!r}"
            )
        if isinstance(meta, dict) and meta.get("seq") != box["leaf"].seq:
            raise _Failed(
                f"metadata.json names seq {meta.get('seq')!r}, the leaf {box['leaf'].seq}"
            )
        if document_id is not None and env.document_id != document_id:
            raise _Failed(f"the bundle proves document {env.document_id!r}, not {document_id!r}")
        return f"envelope of {env.document_id}, as metadata.json labels it"

    def tree_head_signature() -> str:
        signer = verify_tree_head_signer(box["sth"], trust=box["trust"], at=now)
        return f"signed by {signer.subject} at {signer.signing_time.isoformat()}"

    def envelope_signatures() -> str:
        try:
            env = decode_envelope(m[ENVELOPE])
        except SchemaError as exc:
            raise _Failed(f"envelope.avro does not decode: {exc}") from exc
        if env.message_id != box["leaf"].message_id:
            raise _Failed(f"envelope is {env.message_id}, the leaf names {box['leaf'].message_id}")
        registry = agencies or _metadata_agencies(_canonical(m[METADATA], METADATA))
        if registry is None:
            raise _Skip("no agency directory given and metadata.json has no sender_agency")
        try:
            signed_at = max(parse_signing_time(s.signing_time) for s in env.signatures)
        except ValueError:
            signed_at = now  # verify_envelope reports the missing or malformed signature
        sender = verify_envelope(env, trust=box["trust"], agencies=registry, at=signed_at)
        return f"sent by {sender.agency_code} ({sender.agency_name}), {len(env.signatures)} sig."

    v.run("manifest", manifest)

    def metadata() -> str:
        if not isinstance(_canonical(m[METADATA], METADATA), dict):
            raise _Failed("metadata.json is not a JSON object")
        return "canonical JSON object (not authenticated: the platform wrote it)"

    v.run("metadata", metadata)
    has_leaf = v.run("leaf", leaf)
    if has_leaf:
        v.run("envelope-digest", envelope_digest)
        v.run("document", document)
    has_head = v.run("tree-head", tree_head)
    if has_leaf and has_head:
        v.run("inclusion", inclusion)
    has_trust = v.run("trust", trust)
    if trust_override is None:
        v.skip("anchor-pinned", _UNPINNED)
    else:
        v.checks.append(Check("anchor-pinned", Status.PASS, "anchors supplied by the auditor"))
    if has_head and has_trust:
        v.run("tree-head-signature", tree_head_signature)
    if has_leaf and has_trust:
        try:
            v.run("envelope-signatures", envelope_signatures)
        except _Skip as why:
            v.skip("envelope-signatures", str(why))

    def witnessed() -> str:
        if CHECKPOINT not in m:
            raise _Failed("the bundle carries no cosigned checkpoint (format v1)")
        try:
            return witnessed_checkpoint(m[CHECKPOINT], box["sth"], witnesses, required)
        except NoteError as exc:
            raise _Failed(f"{CHECKPOINT}: {exc}") from exc

    if required > 0 and has_head:
        v.run("witnessed", witnessed)
    elif required > 0:
        v.checks.append(Check("witnessed", Status.FAIL, "no tree head to compare"))
    elif CHECKPOINT in m:
        v.skip("witnessed", "cosigned checkpoint present, but no witness keys given (--witness)")
    return BundleReport(tuple(v.checks), box.get("leaf"), box.get("sth"), required > 0)
