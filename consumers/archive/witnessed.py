"""Witnessed checkpoints: which heads of the log a quorum of the auditor's witnesses cosigned,
and every signed statement of the log that contradicts another (a split view).

An insider who controls the database and the archive's keys can rewrite everything the archive
holds, but not what witnesses outside the platform cosigned: the newest checkpoint cosigned by
N of them fixes a size and a root that the records must still give.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from signing.note import (
    Note,
    NoteError,
    VerifierKey,
    parse_checkpoint,
    parse_note,
    verify_cosignature,
    verify_note,
)

COSIGNED_NOTES = "SELECT DISTINCT note FROM cosignature WHERE origin = $1"
LOG_CHECKPOINTS = "SELECT checkpoint FROM tree_head WHERE checkpoint IS NOT NULL"


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The auditor's rule: `required` of `witnesses` must have cosigned. `log_key` (optional)
    also checks the log's own signature; `notes` are cosigned checkpoints the auditor holds
    (from a witness, or the cosignatures topic), beside those the archive stored."""

    witnesses: tuple[VerifierKey, ...]
    required: int
    log_key: VerifierKey | None = None
    notes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.required <= len(self.witnesses):
            raise ValueError(
                f"{self.required} witnesses required, but {len(self.witnesses)} keys given"
            )


@dataclass(slots=True)
class Statement:
    """One (size, root) of the log, with who vouched for it."""

    size: int
    root: bytes
    note: str  # one signed note saying it (the log's signature, and cosignatures if any)
    witnesses: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Witnessed:
    statements: dict[tuple[int, bytes], Statement]
    refused: list[str]  # notes that claim a cosignature that does not verify

    def quorum(self, required: int) -> list[Statement]:
        """Statements cosigned by at least `required` witnesses, smallest first."""
        return sorted(
            (s for s in self.statements.values() if len(s.witnesses) >= required),
            key=lambda s: s.size,
        )

    def split_views(self) -> list[tuple[Statement, Statement]]:
        """Pairs of statements of one size with different roots."""
        by_size: dict[int, list[Statement]] = {}
        for s in self.statements.values():
            by_size.setdefault(s.size, []).append(s)
        return [(a[0], b) for a in by_size.values() if len(a) > 1 for b in a[1:]]


async def gather(conn: asyncpg.Connection, origin: str, policy: WitnessPolicy) -> Witnessed:
    notes = [r["note"].encode() for r in await conn.fetch(COSIGNED_NOTES, origin)]
    logged = [r["checkpoint"].encode() for r in await conn.fetch(LOG_CHECKPOINTS)]
    return judge([*policy.notes, *notes, *logged], origin, policy)


def judge(notes: Iterable[bytes], origin: str, policy: WitnessPolicy) -> Witnessed:
    """Every statement of log `origin` in `notes`, with the witnesses whose cosignature on it
    verifies. A note the log did not sign (when its key is given) is no statement."""
    out = Witnessed({}, [])
    for data in notes:
        try:
            note = parse_note(data)
            checkpoint = parse_checkpoint(note.text)
            if checkpoint.origin != origin:
                continue
            if policy.log_key is not None:
                verify_note(note, policy.log_key)
        except (NoteError, UnicodeDecodeError) as exc:
            out.refused.append(f"{exc}")
            continue
        key = (checkpoint.size, checkpoint.root)
        statement = out.statements.setdefault(
            key, Statement(checkpoint.size, checkpoint.root, data.decode())
        )
        for witness in _cosigners(note, policy.witnesses, out.refused):
            if not statement.witnesses:
                statement.note = data.decode()  # prefer a cosigned note as the evidence
            statement.witnesses.add(witness)
    return out


def _cosigners(note: Note, witnesses: tuple[VerifierKey, ...], refused: list[str]) -> list[str]:
    names = []
    for key in witnesses:
        if not any((s.name, s.key_id) == (key.name, key.key_id) for s in note.signatures):
            continue
        try:
            verify_cosignature(note, key)
        except NoteError as exc:
            refused.append(str(exc))
            continue
        names.append(key.encode())
    return names
