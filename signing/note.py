"""C2SP signed notes, tlog checkpoints and Ed25519 cosignatures (cosignature/v1): the formats a
witness outside the platform checks and signs, readable by any C2SP verifier.

Specifications: c2sp.org/signed-note (note text, signature lines, key IDs, Ed25519 type 0x01,
verifier keys `name+hash+base64(type||key)`), c2sp.org/tlog-checkpoint (origin, size, base64
root, optional extension lines), c2sp.org/tlog-cosignature (type 0x04: the signature is
uint64be(timestamp) || Ed25519 over "cosignature/v1\\ntime <t>\\n" || checkpoint body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01  # signed-note Ed25519 signature over the note text
COSIGNATURE_V1 = 0x04  # tlog-cosignature timestamped Ed25519
DASH = "\u2014 "  # em dash and space: the start of every signature line
MAX_SIGNATURES = 64  # signed-note: verifiers must accept at least 16
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class NoteError(ValueError):
    """Not a well-formed note, checkpoint, key or signature, or a signature that fails."""


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.match(text):
        raise NoteError(f"{what} is not base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{what} is not base64: {exc}") from exc
    if base64.b64encode(data).decode() != text:
        raise NoteError(f"{what} is not canonical base64")
    return data


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"key name {name!r} is empty or holds a space, a plus or a control")


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key as signed-note spells it: `name+hash+base64(type || key)`."""

    name: str
    sig_type: int
    public_key: bytes  # 32 bytes, Ed25519

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.sig_type, self.public_key)

    def encode(self) -> str:
        blob = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+")
        if len(parts) < 3:
            raise NoteError("a verifier key is name+hash+base64(type||key)")
        # The name has no '+', but standard base64 may: the key is everything after the hash.
        name, hash_hex, blob = parts[0], parts[1], "+".join(parts[2:])
        _check_name(name)
        raw = _b64decode(blob, "verifier key")
        if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
            raise NoteError("a verifier key's hash is 8 lowercase hex digits")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("only Ed25519 keys (type 0x01, or 0x04 for cosignatures) are known")
        key = cls(name, raw[0], raw[1:])
        if key.key_id != int(hash_hex, 16):
            raise NoteError(f"verifier key {name}: hash {hash_hex} is not its key ID")
        return key


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """An Ed25519 private key with its name and signature type (0x01 or 0x04)."""

    name: str
    sig_type: int
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return VerifierKey(self.name, self.sig_type, public)

    def encode(self) -> str:
        """`PRIVATE+KEY+name+hash+base64(type || 32-byte seed)`, as golang.org/x/mod/sumdb/note."""
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob = base64.b64encode(bytes([self.sig_type]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{blob}"

    @classmethod
    def parse(cls, text: str) -> NoteSigner:
        parts = text.strip().split("+")
        if len(parts) < 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+name+hash+base64(type||seed)")
        name, hash_hex, blob = parts[2], parts[3], "+".join(parts[4:])
        _check_name(name)
        raw = _b64decode(blob, "signer key")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("only Ed25519 signer keys are known")
        signer = cls(name, raw[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if f"{signer.verifier.key_id:08x}" != hash_hex:
            raise NoteError(f"signer key {name}: hash {hash_hex} is not its key ID")
        return signer

    def encrypted_pem(self, passphrase: bytes) -> bytes:
        """The key as encrypted PKCS#8 PEM (the name and type travel beside it)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )

    @classmethod
    def from_pem(cls, pem: bytes, name: str, sig_type: int, passphrase: bytes | None) -> NoteSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except (TypeError, ValueError) as exc:
            raise NoteError(f"cannot open the key of {name}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise NoteError(f"the key of {name} is not Ed25519")
        return cls(name, sig_type, key)

    @classmethod
    def generate(cls, name: str, sig_type: int) -> NoteSigner:
        _check_name(name)
        return cls(name, sig_type, Ed25519PrivateKey.generate())


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  # after the 4-byte key ID

    def line(self) -> str:
        blob = base64.b64encode(struct.pack(">I", self.key_id) + self.signature).decode()
        return f"{DASH}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # ends with a newline; the signed bytes
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signature(self, sig: NoteSignature) -> Note:
        return Note(self.text, (*self.signatures, sig))


def parse_note(data: bytes | str) -> Note:
    """Text, a blank line, then one or more signature lines; refuses anything else."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note holds no control characters but newline")
    if not text.endswith("\n"):
        raise NoteError("a note ends with a newline")
    body, sep, sigs = text.rpartition("\n\n")
    if not sep:
        raise NoteError("a note's text and its signatures are separated by a blank line")
    body += "\n"
    signatures = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError(f"not a signature line: {line[:40]!r}")
        name, space, blob = line[len(DASH) :].partition(" ")
        _check_name(name)
        raw = _b64decode(blob, "signature") if space else b""
        if len(raw) < 5:
            raise NoteError(f"signature of {name} is too short")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    return Note(body, tuple(signatures))


def sign_note(text: str, signer: NoteSigner) -> Note:
    """A note of `text` signed with an Ed25519 (type 0x01) key."""
    if signer.sig_type != ED25519:
        raise NoteError("a note is signed with a type 0x01 key; cosignatures use cosign()")
    if not text.endswith("\n"):
        raise NoteError("note text ends with a newline")
    signature = signer.private_key.sign(text.encode())
    return Note(text, (NoteSignature(signer.name, signer.verifier.key_id, signature),))


def verify_note(note: Note, key: VerifierKey) -> None:
    """The note carries a valid signature by `key` (type 0x01); NoteError otherwise. Others'
    signatures are ignored, as signed-note requires."""
    if key.sig_type != ED25519:
        raise NoteError("verify_note takes a type 0x01 key")
    mine = [s for s in note.signatures if (s.name, s.key_id) == (key.name, key.key_id)]
    if not mine:
        raise NoteError(f"the note carries no signature by {key.name}")
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    for sig in mine:
        try:
            public.verify(sig.signature, note.text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {key.name} does not verify") from None


# --- tlog-checkpoint ---


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint is at least three non-empty lines, each ending in newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]*", size) or int(size) >= 2**63:
        raise NoteError(f"tree size {size!r} is not a decimal without leading zeroes")
    digest = _b64decode(root, "root hash")
    if len(digest) != 32:
        raise NoteError("the root hash is not 32 bytes")
    return Checkpoint(origin, int(size), digest, tuple(lines[3:-1]))


def open_checkpoint(data: bytes | str, log_key: VerifierKey) -> tuple[Checkpoint, Note]:
    """A checkpoint signed by the log's key, whose origin is that key's name."""
    note = parse_note(data)
    verify_note(note, log_key)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != log_key.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the log {log_key.name!r}")
    return checkpoint, note


# --- tlog-cosignature (Ed25519, cosignature/v1) ---


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(note: Note, signer: NoteSigner, timestamp: int) -> NoteSignature:
    """The witness's cosignature line for the checkpoint `note` (already verified by it)."""
    if signer.sig_type != COSIGNATURE_V1:
        raise NoteError("a cosigner's key has type 0x04")
    if not 0 <= timestamp < 2**63:
        raise NoteError("timestamp out of range")
    signature = signer.private_key.sign(cosigned_message(note.text, timestamp))
    return NoteSignature(
        signer.name, signer.verifier.key_id, struct.pack(">Q", timestamp) + signature
    )


def verify_cosignature(note: Note, key: VerifierKey) -> int:
    """The timestamp of `key`'s valid cosignature on the note; NoteError if there is none."""
    if key.sig_type != COSIGNATURE_V1:
        raise NoteError("verify_cosignature takes a type 0x04 key")
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    mine = [s for s in note.signatures if (s.name, s.key_id) == (key.name, key.key_id)]
    if not mine:
        raise NoteError(f"no cosignature by {key.name}")
    for sig in mine:
        if len(sig.signature) != 8 + 64:
            raise NoteError(f"cosignature by {key.name} is not 72 bytes")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        try:
            public.verify(sig.signature[8:], cosigned_message(note.text, timestamp))
        except InvalidSignature:
            raise NoteError(f"the cosignature by {key.name} does not verify") from None
        return int(timestamp)
    raise NoteError(f"no cosignature by {key.name}")  # pragma: no cover


def merge_notes(notes: Iterable[bytes | str]) -> Note:
    """One note with every distinct signature line of notes of the same text (a checkpoint as
    the log signed it and as each witness published it)."""
    merged: Note | None = None
    for data in notes:
        note = parse_note(data)
        if merged is None:
            merged = note
        elif note.text != merged.text:
            raise NoteError("notes of different texts cannot be merged")
        else:
            seen = set(merged.signatures)
            merged = Note(
                merged.text, (*merged.signatures, *(s for s in note.signatures if s not in seen))
            )
    if merged is None:
        raise NoteError("no note to merge")
    return merged


def cosigners(note: Note, keys: Iterable[VerifierKey]) -> list[VerifierKey]:
    """The keys among `keys` whose cosignature on the note verifies (others are ignored)."""
    good = []
    for key in keys:
        try:
            verify_cosignature(note, key)
        except NoteError:
            continue
        good.append(key)
    return good
