"""The witness's decision on one checkpoint: cosign, skip (older, already covered), or refuse
with the evidence (the two signed statements that contradict each other)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from consumers.witness.state import WitnessState, load_state, save_state
from signing.merkle import ProofError, verify_consistency
from signing.note import Note, NoteError, NoteSigner, VerifierKey, cosign, open_checkpoint

Proofs = Callable[[int, int], Awaitable[list[bytes]]]


@dataclass
class Refused(Exception):
    """A checkpoint the witness will not cosign; `evidence` holds the signed notes that
    contradict each other (the log's own signatures on both)."""

    reason: str  # BAD_CHECKPOINT, SPLIT_VIEW, INCONSISTENT
    detail: str
    evidence: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class Witness:
    def __init__(
        self,
        signer: NoteSigner,
        log_key: VerifierKey,
        state_path: Path,
        proofs: Proofs,
        clock: Callable[[], datetime],
    ) -> None:
        self.signer = signer
        self.log_key = log_key
        self.state_path = state_path
        self.proofs = proofs
        self.clock = clock
        self.state = load_state(state_path)

    async def observe(self, data: bytes) -> Note | None:
        """The checkpoint cosigned (state saved first), None when it is older than what was
        cosigned and consistent with it; Refused otherwise."""
        try:
            checkpoint, note = open_checkpoint(data, self.log_key)
        except (NoteError, UnicodeDecodeError) as exc:
            raise Refused("BAD_CHECKPOINT", str(exc)) from None
        held = self.state
        if held is not None:
            if checkpoint.size == held.size and checkpoint.root != held.root:
                raise Refused(
                    "SPLIT_VIEW",
                    f"two heads of size {held.size} with different roots",
                    (held.note, note.encode().decode()),
                )
            if checkpoint.size < held.size:
                await self._consistent(checkpoint.size, checkpoint.root, held.size, held.root,
                                       note, held.note)  # fmt: skip
                return None  # never cosign a smaller tree
            if checkpoint.size > held.size:
                await self._consistent(held.size, held.root, checkpoint.size, checkpoint.root,
                                       note, held.note)  # fmt: skip
        new_state = WitnessState(
            checkpoint.origin, checkpoint.size, checkpoint.root, note.encode().decode()
        )
        save_state(self.state_path, new_state)  # durable before the statement exists
        self.state = new_state
        timestamp = int(self.clock().timestamp())
        return note.with_signature(cosign(note, self.signer, timestamp))

    async def _consistent(
        self, old: int, old_root: bytes, new: int, new_root: bytes, note: Note, held: str
    ) -> None:
        if old == 0:
            return
        try:
            proof = await self.proofs(old, new)
            verify_consistency(old, new, old_root, new_root, proof)
        except (ProofError, ValueError, LookupError) as exc:
            raise Refused(
                "INCONSISTENT",
                f"no valid consistency proof from {old} to {new}: {exc}",
                (held, note.encode().decode()),
            ) from None
