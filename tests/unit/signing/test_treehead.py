"""Signed tree heads: exact encoding, sign/verify, JSON round trip, refusals; leaf format."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from signing import CertRole, ReasonCode, TrustStore, VerificationError
from signing.merkle import leaf_hash
from signing.merkle_leaf import LeafFormatError, LeafRecord, decode_leaf, format_archived_at
from signing.treehead import (
    TREE_HEAD_PURPOSE,
    SignedTreeHead,
    TreeHead,
    sign_tree_head,
    signed_tree_head_from_json,
    signed_tree_head_to_json,
    tree_head_bytes,
    verify_tree_head,
)
from tests.unit.signing.conftest import SIGN_AT, VERIFY_AT, TestPki

ROOT = bytes(range(32))
HEAD = TreeHead(
    size=8,
    root=ROOT,
    timestamp=datetime(2026, 3, 10, 1, 59, 30, 123999, tzinfo=UTC),
    log_id="lienthong.archive/000.00.00.H26",
)


@pytest.fixture(scope="module")
def signed(pki: TestPki) -> SignedTreeHead:
    cred = pki.issue(CertRole.ARCHIVE, "ecdsa-p256")
    return sign_tree_head(HEAD, key=cred.key, chain=cred.chain, at=SIGN_AT)


def test_encoding_known_answer() -> None:
    expected = (
        b"LIENTHONG-TREE-HEAD-V1\x00"
        + bytes.fromhex("0000000000000008")
        + ROOT
        + (1773107970123).to_bytes(8, "big")  # 2026-03-10T01:59:30.123Z
        + bytes([31])
        + b"lienthong.archive/000.00.00.H26"
    )
    assert tree_head_bytes(HEAD) == expected
    assert HEAD.timestamp == datetime(2026, 3, 10, 1, 59, 30, 123000, tzinfo=UTC)


def test_tree_head_refusals() -> None:
    good = dict(size=1, root=ROOT, timestamp=HEAD.timestamp, log_id="x")
    for change in (
        {"size": -1},
        {"size": 2**63},
        {"size": True},
        {"root": ROOT[:31]},
        {"timestamp": datetime(2026, 1, 1)},
        {"log_id": ""},
        {"log_id": "đ" * 128},  # 256 UTF-8 bytes
    ):
        with pytest.raises(ValueError):
            TreeHead(**{**good, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_sign_verify(algorithm: str, pki: TestPki, trust: TrustStore) -> None:
    cred = pki.issue(CertRole.ARCHIVE, algorithm)
    signed = sign_tree_head(HEAD, key=cred.key, chain=cred.chain, at=SIGN_AT)
    assert signed.signature.purpose == TREE_HEAD_PURPOSE
    assert verify_tree_head(signed, trust=trust, at=VERIFY_AT) == HEAD


def test_json_round_trip(signed: SignedTreeHead, trust: TrustStore) -> None:
    data = signed_tree_head_to_json(signed)
    obj = json.loads(data)
    assert set(obj["signature"]) == {
        "purpose",
        "algorithm",
        "certificate_chain",
        "signing_time",
        "value",
    }
    assert obj["tree_head"]["timestamp_ms"] == 1773107970123
    assert signed_tree_head_from_json(data) == signed
    # jsonb gives keys back in its own order and with spaces: still the same head.
    assert signed_tree_head_from_json(json.dumps(obj, indent=2)) == signed
    assert verify_tree_head(signed_tree_head_from_json(data), trust=trust, at=VERIFY_AT) == HEAD


def test_json_refusals(signed: SignedTreeHead) -> None:
    obj = json.loads(signed_tree_head_to_json(signed))
    bad: list[object] = [
        b"not json",
        "[]",
        {**obj, "version": 2},
        {**obj, "extra": 1},
        {**obj, "tree_head": {**obj["tree_head"], "root": "AAAA"}},
        {**obj, "tree_head": {**obj["tree_head"], "root": obj["tree_head"]["root"] + "\n"}},
        {**obj, "tree_head": {**obj["tree_head"], "timestamp_ms": "1"}},
        {**obj, "tree_head": {**obj["tree_head"], "size": -1}},
        {**obj, "signature": {**obj["signature"], "value": "!!"}},
        {**obj, "signature": {**obj["signature"], "certificate_chain": "x"}},
        {**obj, "signature": {k: v for k, v in obj["signature"].items() if k != "purpose"}},
    ]
    for item in bad:
        text = item if isinstance(item, bytes | str) else json.dumps(item)
        with pytest.raises(ValueError):
            signed_tree_head_from_json(text)


def test_verify_refusals(signed: SignedTreeHead, pki: TestPki, trust: TrustStore) -> None:
    head = signed.head
    agency = pki.issue(CertRole.AGENCY)
    cases = {
        ReasonCode.BAD_SIGNATURE: [
            replace(signed, head=replace(head, size=head.size + 1)),
            replace(signed, head=replace(head, root=bytes(32))),
            replace(signed, head=replace(head, timestamp=head.timestamp + timedelta(seconds=1))),
            replace(signed, head=replace(head, log_id="another log")),
            replace(signed, signature=replace(signed.signature, purpose="lienthong.blob")),
        ],
        ReasonCode.SIGNING_TIME_INVALID: [
            # Re-signed honestly, but a day before the tree it describes.
            sign_tree_head(
                replace(head, timestamp=SIGN_AT + timedelta(days=1)),
                key=pki.issue(CertRole.ARCHIVE).key,
                chain=pki.issue(CertRole.ARCHIVE).chain,
                at=SIGN_AT,
            ),
        ],
        ReasonCode.WRONG_KEY_USAGE: [
            replace(signed, signature=replace(signed.signature, certificate_chain=agency.chain)),
        ],
    }
    for reason, items in cases.items():
        for item in items:
            with pytest.raises(VerificationError) as err:
                verify_tree_head(item, trust=trust, at=VERIFY_AT)
            assert err.value.reason in (reason, ReasonCode.BAD_SIGNATURE)
            if reason is not ReasonCode.WRONG_KEY_USAGE:
                assert err.value.reason is reason


# --- leaf format (signing/merkle_leaf.py) ---

LEAF = LeafRecord(
    seq=7,
    topic="lienthong.submissions",
    partition=2,
    offset=41,
    message_id="8a2f5c1e-4b7d-4e0a-9c3b-2d1f6e8a9b70",
    sha256="ab" * 32,
    archived_at=format_archived_at(datetime(2026, 3, 10, 2, 0, 0, 123456, tzinfo=UTC)),
)


def test_leaf_known_answer() -> None:
    data = LEAF.encode()
    assert data == (
        b'{"archived_at":"2026-03-10T02:00:00.123Z","message_id":'
        b'"8a2f5c1e-4b7d-4e0a-9c3b-2d1f6e8a9b70","offset":41,"partition":2,'
        b'"seq":7,"sha256":"' + b"ab" * 32 + b'","topic":"lienthong.submissions"}'
    )
    assert decode_leaf(data) == LEAF
    assert len(leaf_hash(data)) == 32
    unparsed = replace(LEAF, message_id=None, extra={"kind": "deadletter"})
    assert decode_leaf(unparsed.encode()) == unparsed


def test_leaf_refusals() -> None:
    data = LEAF.encode()
    obj = json.loads(data)
    bad = [
        b"\xff",
        b"[]",
        data.replace(b",", b", ", 1),  # not canonical
        json.dumps({**obj, "note": "Hà Nội"}, sort_keys=True, separators=(",", ":")).encode(),
        data[:-1] + b',"seq":8}',  # duplicate key
    ]
    for change in (
        {"sha256": "AB" * 32},
        {"sha256": "ab" * 31},
        {"seq": -1},
        {"seq": True},
        {"offset": 1.5},
        {"topic": 3},
        {"archived_at": "2026-03-10T02:00:00Z"},
        {"message_id": 5},
    ):
        bad.append(
            json.dumps({**obj, **change}, sort_keys=True, separators=(",", ":")).encode("utf-8")
        )
    bad.append(json.dumps({k: v for k, v in obj.items() if k != "topic"}).encode())
    for item in bad:
        with pytest.raises(LeafFormatError):
            decode_leaf(item)
    with pytest.raises(ValueError):
        replace(LEAF, extra={"seq": 1}).encode()
    with pytest.raises(ValueError):
        replace(LEAF, sha256="x").encode()


def test_a_withheld_leaf_says_so_and_a_kept_one_says_nothing() -> None:
    withheld = replace(LEAF, withheld=True)
    data = withheld.encode()
    assert data == LEAF.encode().replace(b'{"archived_at"', b'{"archived_at"', 1).replace(
        b',"message_id"', b',"content":"withheld","message_id"', 1
    )
    assert decode_leaf(data) == withheld and decode_leaf(LEAF.encode()).withheld is False
    obj = json.loads(data)
    for value in ("kept", "", None, True):
        bad = json.dumps({**obj, "content": value}, sort_keys=True, separators=(",", ":"))
        with pytest.raises(LeafFormatError):
            decode_leaf(bad.encode())
    with pytest.raises(ValueError):
        replace(LEAF, extra={"content": "withheld"}).encode()  # only through the field
