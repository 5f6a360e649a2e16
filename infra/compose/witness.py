"""A witness built from settings: its own key file, the log's verifier key it pins, its state
file, and consistency proofs read from the archive as the auditor role (serve_consistency)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from consumers.archive import serve_consistency
from consumers.witness import Witness, run_witness
from infra.compose.audit import auditor_url
from infra.settings import Settings
from signing.note import NoteSigner, VerifierKey


def utcnow() -> datetime:
    return datetime.now(UTC)


async def witness_main(
    settings: Settings,
    bootstrap: str,
    database_url: str,
    *,
    signer: NoteSigner,
    log_key: VerifierKey,
    state_file: Path,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = utcnow,
    idle: asyncio.Event | None = None,
) -> None:
    conn = await asyncpg.connect(auditor_url(database_url))

    async def proofs(old: int, new: int) -> list[bytes]:
        return await serve_consistency(conn, old, new)

    witness = Witness(signer, log_key, state_file, proofs, clock)
    try:
        await run_witness(
            witness,
            bootstrap,
            settings.topic("checkpoints"),
            settings.topic("cosignatures"),
            stop,
            idle=idle,
            client_options=settings.kafka_options(),
        )
    finally:
        await conn.close()
