"""The conformance kit (conformance/): it is what the generator makes, the router gives every
verdict it states, and its TBS files are what the signatures cover, checked without our code."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from consumers.router.routing import Rejected, RejectReason, Routed, RoutingPolicy, route_submission
from consumers.router.state import DocumentState, PartitionState, StateChange
from schemas.agency import AgencyDirectory
from schemas.codec import decode_envelope
from signing.errors import ReasonCode
from signing.trust import TrustStore
from tests.conformance.make_kit import KIT, build_kit, committed

ROOT = Path(__file__).resolve().parents[2]
MANIFEST: dict[str, Any] = json.loads((KIT / "cases.json").read_text(encoding="utf-8"))
CASES = {c["name"]: c for c in MANIFEST["cases"]}
# Reason codes no case can show through route_submission, and why.
NOT_IN_THE_KIT = {
    # Decided by the router service, not the pure decision: the inbox topic does not exist.
    RejectReason.NO_INBOX: "service",
    # Unreachable: a document without To fails the payload rules first (INVALID_PAYLOAD),
    # and the envelope's recipients must equal the payload's.
    RejectReason.NO_RECIPIENTS: "unreachable",
    # Decided by the platform's own CRL freshness (the trust feed fails closed on a CRL past
    # nextUpdate plus its grace), not by anything in an envelope: tests/unit/signing/test_crl.py.
    ReasonCode.REVOCATION_UNKNOWN: "platform",
}


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return build_kit()


def test_the_committed_kit_is_exactly_what_the_generator_makes(
    generated: dict[str, bytes],
) -> None:
    on_disk = committed()
    missing, extra = sorted(set(generated) - set(on_disk)), sorted(set(on_disk) - set(generated))
    assert (missing, extra) == ([], []), "run: python -m tests.conformance.make_kit"
    differ = sorted(k for k in generated if generated[k] != on_disk[k])
    assert differ == [], "stale kit files; run: python -m tests.conformance.make_kit"
    assert len(CASES) >= 60
    assert (KIT / "README.md").is_file()
    assert DEFECTS == []  # status-without-recipients was the last: the router refuses it now


def test_the_generator_is_deterministic(generated: dict[str, bytes]) -> None:
    # Two runs in one process: no randomness (keys, serials, signatures, message ids) left.
    again = build_kit()
    assert again.keys() == generated.keys()
    assert [k for k in generated if again[k] != generated[k]] == []


def _trust() -> TrustStore:
    return TrustStore.from_files(
        [KIT / p for p in MANIFEST["trust"]["anchors"]],
        [KIT / p for p in MANIFEST["trust"]["crls"]],
    )


def _state(case: dict[str, Any]) -> PartitionState:
    state = PartitionState()
    for doc_id, value in case["state"]["documents"].items():
        entry = DocumentState.from_json(json.dumps(value).encode())
        state.apply(StateChange.document(doc_id, entry))
    for message_id, seen in case["state"]["messages"].items():
        change = StateChange.message(message_id, seen["created_at_ms"], seen["sha256"])
        state.apply(change)
    return state


def _route(case: dict[str, Any]) -> Routed | Rejected:
    policy = MANIFEST["policy"]
    return route_submission(
        (KIT / case["envelope"]).read_bytes(),
        state=_state(case),
        trust=_trust(),
        agencies=AgencyDirectory.load(KIT / MANIFEST["agencies"]),
        policy=RoutingPolicy(
            platform_agency=policy["platform_agency"],
            max_bytes=case.get("policy", {}).get("max_bytes", policy["max_bytes"]),
        ),
        now=datetime.fromisoformat(MANIFEST["now"]),
    )


DEFECTS = sorted(n for n, c in CASES.items() if c.get("known_defect"))


@pytest.mark.parametrize("name", sorted(set(CASES) - set(DEFECTS)))
def test_the_router_gives_the_committed_verdict(name: str) -> None:
    case = CASES[name]
    raw = (KIT / case["envelope"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == case["sha256"]
    outcome = _route(case)
    expect = case["expect"]
    if expect["outcome"] == "routed":
        assert isinstance(outcome, Routed), outcome
        assert [f"inbox.{r}" for r in outcome.recipients] == expect["inboxes"]
        # Delivered as received, plus one trace hop by the platform at the router's clock.
        received = decode_envelope(raw)
        hop = outcome.envelope.trace[-1]
        assert outcome.envelope.trace[:-1] == received.trace
        assert (hop.agency, hop.at, hop.note) == (
            MANIFEST["policy"]["platform_agency"],
            datetime.fromisoformat(MANIFEST["now"]).astimezone(UTC),
            "routed",
        )
        assert outcome.envelope.payload == received.payload
        assert outcome.envelope.signatures == received.signatures
    else:
        assert isinstance(outcome, Rejected), outcome
        assert (str(outcome.reason), outcome.secret) == (expect["reason"], expect["secret"])
        assert outcome.notify_sender == expect["sender_told"]
        assert outcome.keep_content == expect["content_kept"]
        assert outcome.digest == case["sha256"]


def test_every_reason_code_has_a_case() -> None:
    shown = {
        c["expect"]["reason"] for c in MANIFEST["cases"] if c["expect"]["outcome"] == "rejected"
    }
    codes = {str(r) for r in RejectReason} | {str(r) for r in ReasonCode}
    assert codes - shown - {str(r) for r in NOT_IN_THE_KIT} == set()
    assert shown <= codes, "a case expects a reason the router does not have"
    assert not shown & {str(r) for r in NOT_IN_THE_KIT}, "shown after all: update NOT_IN_THE_KIT"
    assert any(c["expect"]["outcome"] == "routed" for c in MANIFEST["cases"])


# --- the outside team's path: the .avsc, hand-made Avro, bare cryptography -----------------


def _avsc(rel: str) -> Any:
    return fastavro.parse_schema(json.loads((ROOT / rel).read_text(encoding="utf-8")))


ENVELOPE_AVSC = _avsc("schemas/avro/envelope/v1.avsc")


def _long(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _long(len(raw)) + raw


def _array(items: list[bytes]) -> bytes:
    return (_long(len(items)) + b"".join(items) if items else b"") + b"\x00"


def _outside_tbs(env: dict[str, Any], index: int) -> bytes:
    """docs/signing.md "The bytes signed", written from the doc, over fastavro's record."""
    sig = env["signatures"][index]
    created: datetime = env["created_at"]
    delta = created - datetime(1970, 1, 1, tzinfo=UTC)
    created_ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return (
        b"LIENTHONG-SIGNED-ENVELOPE-V1\x00"
        + _string(env["message_id"])
        + _string(env["payload_type"])
        + _string(env["payload_schema"])
        + hashlib.sha256(env["payload"]).digest()
        + _string(env["document_id"])
        + _string(env["sender"])
        + _array([_string(r) for r in env["recipients"]])
        + _long(created_ms)
        + _string(sig["role"])
        + _string(sig["algorithm"])
        + _string(sig["signing_time"])
        + hashlib.sha256(sig["certificate_chain"][0]).digest()
        + _array([hashlib.sha256(s["value"]).digest() for s in env["signatures"][:index]])
    )


def _verifies(leaf_der: bytes, algorithm: str, value: bytes, data: bytes) -> bool:
    key = x509.load_der_x509_certificate(leaf_der).public_key()
    try:
        if algorithm == "rsa-pkcs1v15-sha256":
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(key, ed25519.Ed25519PublicKey)
            key.verify(value, data)
    except InvalidSignature:
        return False
    return True


def _decoded_by_hand(raw: bytes) -> dict[str, Any] | None:
    if raw[:2] != b"\xc3\x01":
        return None
    try:
        reader = io.BytesIO(raw[10:])
        record: dict[str, Any] = fastavro.schemaless_reader(reader, ENVELOPE_AVSC, None)
        if reader.read():
            return None  # trailing bytes
        return record
    except (EOFError, StopIteration, ValueError, IndexError):
        return None


SIGNATURE_BROKEN = {"bad-signature", "signature-over-other-tbs", "wrong-key"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tbs_files_are_what_an_outside_verifier_rebuilds(name: str) -> None:
    case = CASES[name]
    raw = (KIT / case["envelope"]).read_bytes()
    env = _decoded_by_hand(raw)
    if "tbs" not in case:
        # Only the undecodable cases come without TBS files, and they are refused MALFORMED.
        assert case["expect"] == {
            "outcome": "rejected",
            "reason": "MALFORMED",
            "secret": False,
            "sender_told": False,
            "content_kept": False,
        }
        assert env is None or name == "unknown-schema"
        return
    assert env is not None
    files = {Path(p).name: (KIT / p).read_bytes() for p in case["tbs"]}
    assert len(files) == len(env["signatures"])
    for i, sig in enumerate(env["signatures"]):
        tbs = files[f"tbs-{i}-{sig['role']}.bin"]
        assert _outside_tbs(env, i) == tbs
        if sig["algorithm"] not in ("ed25519", "rsa-pkcs1v15-sha256"):
            continue
        ok = _verifies(sig["certificate_chain"][0], sig["algorithm"], sig["value"], tbs)
        if case["expect"]["outcome"] == "routed":
            assert ok, f"signature {i} does not verify over its TBS"
        elif name in SIGNATURE_BROKEN:
            assert not ok
        elif name == "person-signature-replaced":
            assert ok == (i == 0)  # the new person signature is good; the agency's covers the old
    if name == "signature-over-other-tbs":
        [other] = case["other_files"]
        sig = env["signatures"][0]
        assert _verifies(
            sig["certificate_chain"][0], sig["algorithm"], sig["value"], (KIT / other).read_bytes()
        )
