"""C2SP signed notes, checkpoints and cosignatures: known answers from the specifications'
reference implementations (golang.org/x/mod/sumdb/note, transparency-dev/formats), and
refusals. tests/interop runs an outside Go verifier over what this code writes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing.note import (
    COSIGNATURE_V1,
    ED25519,
    Checkpoint,
    NoteError,
    NoteSigner,
    VerifierKey,
    cosign,
    cosigned_message,
    open_checkpoint,
    parse_checkpoint,
    parse_note,
    sign_note,
    verify_cosignature,
    verify_note,
)

# golang.org/x/mod/sumdb/note's example: a verifier key and a note it signed.
NEUMANN = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# transparency-dev/formats note.VKeyToCosignatureV1(NEUMANN): the same key as a type 0x04
# cosigner, whose key ID commits to the other type byte.
NEUMANN_COSIGNER = "PeterNeumann+18b9780b+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ROOT = bytes.fromhex("0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62")


def _signer(name: str, sig_type: int, seed: int) -> NoteSigner:
    return NoteSigner(name, sig_type, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def test_the_reference_note_verifies_and_its_key_round_trips() -> None:
    key = VerifierKey.parse(NEUMANN)
    assert key.encode() == NEUMANN and key.sig_type == ED25519 and key.key_id == 0xC74F20A3
    note = parse_note(NEUMANN_NOTE)
    assert note.encode().decode() == NEUMANN_NOTE
    verify_note(note, key)
    cosigner = VerifierKey(key.name, COSIGNATURE_V1, key.public_key)
    assert cosigner.encode() == NEUMANN_COSIGNER


def test_the_spec_checkpoint_parses_exactly() -> None:
    # c2sp.org/tlog-checkpoint's example body.
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint(text)
    assert (cp.origin, cp.size, cp.root) == ("example.com/behind-the-sofa", 20852163, ROOT)
    assert cp.text() == text
    # c2sp.org/tlog-cosignature's signed message for that body at time 1679315147.
    assert cosigned_message(text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    # The spec's example cosignature line: key ID 8d66cf3f, timestamp 1679315147.
    line = (
        "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9"
        "dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    )
    sig = parse_note(text + "\n" + line).signatures[0]
    assert sig.key_id == 0x8D66CF3F and int.from_bytes(sig.signature[:8], "big") == 1679315147


def test_a_log_signs_a_checkpoint_and_a_witness_cosigns_it() -> None:
    log = _signer("lienthong.archive/000.00.00.H26", ED25519, 7)
    witness = _signer("bo-noi-vu.gov.vn/witness", COSIGNATURE_V1, 9)
    cp = Checkpoint(log.name, 13, ROOT)
    note = sign_note(cp.text(), log)
    opened, parsed = open_checkpoint(note.encode(), log.verifier)
    assert opened == cp and parsed == note
    cosigned = parsed.with_signature(cosign(parsed, witness, 1_767_225_600))
    again = parse_note(cosigned.encode())
    assert verify_cosignature(again, witness.verifier) == 1_767_225_600
    verify_note(again, log.verifier)  # the witness's line is ignored by the log's check
    assert NoteSigner.parse(witness.encode()).verifier == witness.verifier
    assert VerifierKey.parse(witness.verifier.encode()) == witness.verifier


def test_refusals() -> None:
    log = _signer("log.example/a", ED25519, 1)
    other = _signer("log.example/a", ED25519, 2)  # same name, other key: ignored, so refused
    witness = _signer("w.example/1", COSIGNATURE_V1, 3)
    note = sign_note(Checkpoint(log.name, 5, ROOT).text(), log)
    with pytest.raises(NoteError, match="no signature"):
        verify_note(note, other.verifier)
    forged = note.encode().replace(b"\n5\n", b"\n6\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(forged, log.verifier)
    cosigned = note.with_signature(cosign(note, witness, 100))
    moved = parse_note(cosigned.encode().replace(b"\n5\n", b"\n6\n"))
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(moved, witness.verifier)
    with pytest.raises(NoteError, match="no cosignature"):
        verify_cosignature(note, witness.verifier)
    for bad in (
        b"no blank line\n",
        b"text\n\nnot a signature\n",
        b"text\n\n\xe2\x80\x94 name AAAA\n",  # too short
        b"te\x01xt\n\n\xe2\x80\x94 n AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 n AAAAAAAA",  # no final newline
    ):
        with pytest.raises(NoteError):
            parse_note(bad)
    for text in ("o\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "o\n5\nAAAA\n", "o\n5\n"):
        with pytest.raises(NoteError):
            parse_checkpoint(text)
    with pytest.raises(NoteError, match="not its key ID"):
        VerifierKey.parse(NEUMANN.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(NoteError):
        cosign(note, log, 1)  # a type 0x01 key does not cosign
