"""Evidence bundles: built, verified offline, and refused after any one-byte change."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from schemas.codec import decode_envelope, encode_envelope
from schemas.envelope import SignerRole
from signing import CertRole, TrustStore, sign_envelope
from signing.evidence import (
    ANCHORS,
    CRLS,
    ENVELOPE,
    LEAF,
    MANIFEST,
    MEMBERS,
    METADATA,
    PROOF,
    TREE_HEAD,
    EvidenceError,
    Status,
    build_bundle,
    pinned_trust,
    verify_bundle,
)
from signing.merkle import DictNodeStore, RightEdge, append_leaves, inclusion_proof, leaf_hash
from signing.merkle_leaf import LeafRecord, canonical_json, format_archived_at
from signing.note import COSIGNATURE_V1, ED25519, Checkpoint, NoteSigner, cosign, sign_note
from signing.pki import (
    RevokedEntry,
    build_crl,
    certificate_pem,
    create_root_ca,
    crl_pem,
    generate_key,
)
from signing.treehead import TreeHead, sign_tree_head
from tests.unit.signing.conftest import HANOI, ISSUED_AT, SIGN_AT, VERIFY_AT, TestPki, make_envelope

INDEX, SIZE = 5, 13
ARCHIVED_AT = SIGN_AT + timedelta(seconds=2)


@dataclass(frozen=True)
class Parts:
    kwargs: dict[str, Any]
    bundle: bytes


def _leaf(seq: int, raw: bytes, message_id: str | None) -> bytes:
    return LeafRecord(
        seq=seq,
        topic="lienthong.submissions",
        partition=seq % 3,
        offset=100 + seq,
        message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        archived_at=format_archived_at(ARCHIVED_AT),
    ).encode()


def _parts(pki: TestPki, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    agency = pki.issue(CertRole.AGENCY, "ecdsa-p256")
    env = sign_envelope(
        make_envelope(), key=agency.key, chain=agency.chain, role=SignerRole.AGENCY, at=SIGN_AT
    )
    raw = encode_envelope(env)
    leaves = [_leaf(i, b"other %d" % i, None) for i in range(SIZE)]
    leaves[INDEX] = _leaf(INDEX, raw, env.message_id)
    edge, nodes = append_leaves(RightEdge.empty(), 0, [leaf_hash(d) for d in leaves])
    store = DictNodeStore()
    store.put_many(nodes)
    archive = pki.issue(CertRole.ARCHIVE, "ed25519")
    head = TreeHead(SIZE, edge.root(), ARCHIVED_AT, "lienthong.archive/000.00.00.H26")
    crl = build_crl(issuer_key=pki.ca_key, issuer_cert=pki.ca, revoked=[], now=ISSUED_AT)
    return {
        "envelope_bytes": raw,
        "leaf_data": leaves[INDEX],
        "leaf_index": INDEX,
        "inclusion_proof": inclusion_proof(INDEX, SIZE, store),
        "signed_tree_head": sign_tree_head(head, key=archive.key, chain=archive.chain, at=SIGN_AT),
        "trust_anchors_pem": certificate_pem(pki.root),
        "crls_pem": crl_pem(crl),
        "metadata": metadata
        if metadata is not None
        else {
            "document_id": env.document_id,
            "seq": INDEX,
            "sender_agency": {
                "code": HANOI,
                "name": "Ủy ban nhân dân thành phố Hà Nội",
                "valid_from": "2008-08-01",
                "valid_to": None,
            },
        },
    }


@pytest.fixture(scope="module")
def parts(pki: TestPki) -> Parts:
    kwargs = _parts(pki)
    return Parts(kwargs, build_bundle(**kwargs))


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rezip(members: dict[str, bytes]) -> bytes:
    """A well-formed zip (valid CRCs) of tampered members, the way an editor would save it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _status(report: Any) -> dict[str, Status]:
    return {c.name: c.status for c in report.checks}


def test_valid_bundle_pinned(parts: Parts, trust: TrustStore) -> None:
    report = verify_bundle(parts.bundle, at=VERIFY_AT, trust_override=trust)
    assert report.ok and report.anchors_pinned, report.summary()
    assert set(_status(report).values()) == {Status.PASS}
    assert report.leaf is not None and report.leaf.seq == INDEX
    assert report.signed_tree_head == parts.kwargs["signed_tree_head"]
    assert _members(parts.bundle)[ENVELOPE] == parts.kwargs["envelope_bytes"]
    assert build_bundle(**parts.kwargs) == parts.bundle  # deterministic


def test_unpinned_and_unregistered_are_skips_not_passes(
    pki: TestPki, parts: Parts, trust: TrustStore
) -> None:
    report = verify_bundle(parts.bundle, at=VERIFY_AT)
    # Anchors from the bundle prove only self-consistency: never ok, though nothing failed.
    assert not report.ok and not report.anchors_pinned and not report.failures
    assert _status(report)["anchor-pinned"] is Status.SKIP
    assert _status(report)["envelope-signatures"] is Status.PASS
    kwargs = _parts(pki, metadata={})
    label = {"document_id": decode_envelope(kwargs["envelope_bytes"]).document_id, "seq": INDEX}
    bare = build_bundle(**{**kwargs, "metadata": label})
    report = verify_bundle(bare, at=VERIFY_AT, trust_override=trust)
    assert report.ok and _status(report)["envelope-signatures"] is Status.SKIP


def test_auditor_directory_overrides_metadata(parts: Parts, trust: TrustStore) -> None:
    from tests.unit.signing.conftest import FakeAgencies

    closed = FakeAgencies({HANOI: (datetime(2001, 1, 1).date(), datetime(2020, 1, 1).date())})
    report = verify_bundle(parts.bundle, at=VERIFY_AT, trust_override=trust, agencies=closed)
    assert not report.ok
    assert "CLOSED_AGENCY" in report.failures[0].detail


def test_wrong_anchor_or_time_fails(parts: Parts) -> None:
    other_key = generate_key("ecdsa-p256")
    other = TrustStore((create_root_ca(other_key, now=ISSUED_AT),))
    report = verify_bundle(parts.bundle, at=VERIFY_AT, trust_override=other)
    assert not report.ok
    assert {c.name for c in report.failures} == {"tree-head-signature", "envelope-signatures"}
    assert "UNTRUSTED_CHAIN" in report.failures[0].detail
    early = verify_bundle(parts.bundle, at=SIGN_AT - timedelta(hours=1))
    assert "SIGNING_TIME_INVALID" in early.failures[0].detail


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


@pytest.mark.parametrize("name", [MANIFEST, *MEMBERS])
def test_one_byte_in_any_member_fails(name: str, parts: Parts) -> None:
    with zipfile.ZipFile(io.BytesIO(parts.bundle)) as zf:
        info = zf.getinfo(name)
    # Data starts after the 30-byte local header, the name and the (empty) extra field.
    start = info.header_offset + 30 + len(name.encode())
    for pos in (start, start + info.file_size // 2, start + info.file_size - 1):
        report = verify_bundle(_flip(parts.bundle, pos), at=VERIFY_AT)
        assert not report.ok
        assert name in report.failures[0].detail, report.summary()

    # The same change saved as a well-formed zip: the manifest names the member.
    members = _members(parts.bundle)
    members[name] = _flip(members[name], len(members[name]) // 2)
    report = verify_bundle(_rezip(members), at=VERIFY_AT)
    assert not report.ok
    failed = {c.name: c.detail for c in report.failures}
    assert "container" in failed  # not the canonical zip any more
    canonical = _canonical_rezip(members)
    report = verify_bundle(canonical, at=VERIFY_AT)
    assert not report.ok
    assert name in {c.name: c.detail for c in report.failures}["manifest"], report.summary()


def _canonical_rezip(members: dict[str, bytes]) -> bytes:
    from signing.evidence import _zip

    return _zip(members)


def test_every_byte_of_the_zip_matters(parts: Parts) -> None:
    size = len(parts.bundle)
    for pos in range(size):  # all of them: headers, names, data, central directory
        report = verify_bundle(_flip(parts.bundle, pos), at=VERIFY_AT)
        assert not report.ok, f"byte {pos} of {size} changed and the bundle still verifies"
        assert report.failures and report.failures[0].detail


def _with_manifest(members: dict[str, bytes]) -> bytes:
    from signing.evidence import _manifest, _zip

    return _zip({**members, MANIFEST: _manifest(members)})


def test_consistent_tampering_is_caught_by_the_proof_chain(parts: Parts, trust: TrustStore) -> None:
    """Change a member and rewrite the manifest too: the signed chain still refuses it."""
    base = _members(parts.bundle)
    proof = json.loads(base[PROOF])
    head = json.loads(base[TREE_HEAD])
    other_root = certificate_pem(create_root_ca(generate_key("ed25519"), now=ISSUED_AT))
    cases: dict[str, tuple[bytes, str]] = {
        ENVELOPE: (_flip(base[ENVELOPE], len(base[ENVELOPE]) - 1), "envelope-digest"),
        LEAF: (base[LEAF].replace(b'"offset":105', b'"offset":106'), "inclusion"),
        PROOF: (canonical_json({**proof, "tree_size": SIZE + 1}), "inclusion"),
        TREE_HEAD: (
            canonical_json({**head, "tree_head": {**head["tree_head"], "timestamp_ms": 1}}),
            "tree-head-signature",
        ),
        ANCHORS: (other_root, "tree-head-signature"),
        CRLS: (b"junk", "trust"),
        METADATA: (canonical_json({"sender_agency": {"code": "bad"}}), "envelope-signatures"),
    }
    for name, (data, check) in cases.items():
        bundle = _with_manifest({**base, name: data})
        report = verify_bundle(bundle, at=VERIFY_AT)
        assert not report.ok, name
        assert check in {c.name for c in report.failures}, (name, report.summary())
    # Pinned anchors stop a bundle whose tree head was re-signed by a key of the attacker's PKI.
    other = TestPki()
    forged = _parts(other)
    report = verify_bundle(build_bundle(**forged), at=VERIFY_AT, trust_override=trust)
    assert "tree-head-signature" in {c.name for c in report.failures}


def test_build_refusals(parts: Parts) -> None:
    kw = parts.kwargs
    bad = [
        {"envelope_bytes": kw["envelope_bytes"] + b"x"},
        {"leaf_index": INDEX + 1},
        {"inclusion_proof": kw["inclusion_proof"][:-1]},
        {"leaf_data": kw["leaf_data"].replace(b":", b": ", 1)},
        {"trust_anchors_pem": b"no certificate"},
        {"crls_pem": b"junk"},
        {"metadata": {"when": datetime.now(UTC)}},
    ]
    for change in bad:
        with pytest.raises(EvidenceError):
            build_bundle(**{**kw, **change})
    assert not verify_bundle(b"not a zip").ok
    assert verify_bundle(b"not a zip").failures[0].name == "container"


def test_a_revocation_in_the_bundle_counts_when_its_crl_is_signed_under_the_pinned_root(
    pki: TestPki,
) -> None:
    kwargs = _parts(pki)
    env = decode_envelope(kwargs["envelope_bytes"])
    signer = x509.load_der_x509_certificate(env.signatures[0].certificate_chain[0])
    revoked = build_crl(
        issuer_key=pki.ca_key,
        issuer_cert=pki.ca,
        revoked=[RevokedEntry(signer.serial_number, SIGN_AT - timedelta(days=1))],
        now=ISSUED_AT,
    )
    bundle = build_bundle(**{**kwargs, "crls_pem": crl_pem(revoked)})
    # The auditor pins the root and brings no CRL of their own: the bundle's CRL, signed by
    # the issuing CA under that root, still revokes the signer.
    report = verify_bundle(bundle, at=VERIFY_AT, trust_override=TrustStore((pki.root,)))
    assert not report.ok
    assert _status(report)["envelope-signatures"] is Status.FAIL
    assert "REVOKED" in next(c.detail for c in report.failures if c.name == "envelope-signatures")
    assert "1 CRL(s) from the bundle" in next(c.detail for c in report.checks if c.name == "trust")
    # A CRL claiming to be the root's but signed by another key is ignored, and said so.
    other_key = generate_key("ecdsa-p256")
    forged = build_crl(issuer_key=other_key, issuer_cert=pki.root, revoked=[], now=ISSUED_AT)
    trust, note = pinned_trust(TrustStore((pki.root,)), crl_pem(forged) + crl_pem(revoked))
    assert trust.crls == (revoked,) and "ignored bundle CRL(s) with a bad signature" in note


def test_a_bundle_labelled_with_another_document_is_refused(
    pki: TestPki, parts: Parts, trust: TrustStore
) -> None:
    meta = {**parts.kwargs["metadata"], "document_id": "000.00.00.H26,2019/08/28,1/QĐ-UBND"}
    bundle = build_bundle(**{**parts.kwargs, "metadata": meta})
    report = verify_bundle(bundle, at=VERIFY_AT, trust_override=trust)
    assert not report.ok and [c.name for c in report.failures] == ["document"]
    assert "labels the bundle" in report.failures[0].detail
    asked = verify_bundle(parts.bundle, at=VERIFY_AT, trust_override=trust, document_id="x")
    assert [c.name for c in asked.failures] == ["document"]


def test_a_witnessed_bundle_carries_its_cosigned_checkpoint(
    parts: Parts, trust: TrustStore
) -> None:
    head = parts.kwargs["signed_tree_head"].head
    log = NoteSigner.generate(head.log_id, ED25519)
    w1, w2, w3 = (NoteSigner.generate(f"w{i}.example/witness", COSIGNATURE_V1) for i in (1, 2, 3))
    note = sign_note(Checkpoint(head.log_id, head.size, head.root).text(), log)
    for w in (w1, w2):
        note = note.with_signature(cosign(note, w, 1_773_108_000))
    bundle = build_bundle(**parts.kwargs, checkpoint_note=note.encode())
    keys = (w1.verifier, w2.verifier, w3.verifier)
    report = verify_bundle(bundle, at=VERIFY_AT, trust_override=trust, witnesses=keys, required=2)
    assert report.ok, report.summary()
    assert "cosigned by w1.example/witness, w2.example/witness" in _detail(report, "witnessed")
    three = verify_bundle(bundle, at=VERIFY_AT, trust_override=trust, witnesses=keys, required=3)
    assert not three.ok and [c.name for c in three.failures] == ["witnessed"]
    # Asked for witnesses, a bundle without a checkpoint (v1) is not ok.
    plain = verify_bundle(parts.bundle, at=VERIFY_AT, trust_override=trust, witnesses=keys,
                          required=1)  # fmt: skip
    assert not plain.ok and "format v1" in _detail(plain, "witnessed")
    # The checkpoint must be the tree head's.
    other = sign_note(Checkpoint(head.log_id, head.size + 1, head.root).text(), log)
    with pytest.raises(EvidenceError, match="checkpoint"):
        build_bundle(**parts.kwargs, checkpoint_note=other.encode())


def _detail(report: Any, name: str) -> str:
    return next(c.detail for c in report.checks if c.name == name)
