"""A witness built from settings: its own key file, the log's verifier key it pins, its state
file, and consistency proofs read from the archive as the auditor role (serve_consistency)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from consumers.archive import serve_consistency
from consumers.telemetry import ConsumerLag
from consumers.witness import Witness, WitnessMetrics, run_witness
from infra.compose.audit import auditor_url
from infra.compose.observe import (
    certificate_check,
    certificate_sources,
    certificate_watch,
    consumer_checks,
)
from infra.observe import Health, observability
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
    metrics_port: int | None = None,
) -> None:
    conn = await asyncpg.connect(auditor_url(database_url))
    metrics = WitnessMetrics()
    lag = ConsumerLag(metrics.consumer_lag, f"witness:{signer.name}")
    health = Health("witness")
    consumer_checks(health, lag, settings, started=lambda: lag.observed_at is not None)

    def database() -> tuple[bool, str]:
        ok = not conn.is_closed()
        return ok, "connected (consistency proofs)" if ok else "connection to PostgreSQL lost"

    health.add("database", database)
    watch = certificate_watch(settings, metrics.registry, certificate_sources(settings))
    certificate_check(health, watch, clock)
    health.register(metrics.registry)

    async def proofs(old: int, new: int) -> list[bytes]:
        return await serve_consistency(conn, old, new)

    witness = Witness(signer, log_key, state_file, proofs, clock)
    try:
        async with observability(settings.metrics_host, metrics_port, metrics.registry, health):
            await run_witness(
                witness,
                bootstrap,
                settings.topic("checkpoints"),
                settings.topic("cosignatures"),
                stop,
                idle=idle,
                client_options=settings.kafka_options(),
                metrics=metrics,
                lag=lag,
            )
    finally:
        await conn.close()
