"""The archiver built from settings: topics, trust, agency directory and the tree-head signer;
`run_archiver` runs it with live trust (the crl topic followed, the ARCHIVE certificate watched)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from consumers.archive import (
    Archiver,
    ArchiverConfig,
    ArchiverMetrics,
    ArchiveTopics,
    ParseContext,
    ParseSource,
    archive_signer,
    collect_cosignatures,
    reindex_documents,
)
from consumers.trustfeed import MonitoredCredentials
from infra import context
from infra.compose.trust import monitored_credentials, run_with_trust, trust_feed, trust_metrics
from infra.settings import Settings
from signing.profile import CertRole


def utcnow() -> datetime:
    return datetime.now(UTC)


# Parse worker processes: off by default. On the 2-core benchmark box the archiver is bound by
# its sequential database writes (~0.4 ms a row), not by parsing, and 2 workers gave the same
# rows/s for +146 MiB (docs/benchmarks.md, Archive). Set where cores are spare and writes fast.
PARSE_WORKERS_ENV = "LIENTHONG_ARCHIVE_PARSE_WORKERS"


def default_parse_workers() -> int:
    return int(os.environ.get(PARSE_WORKERS_ENV) or 0)


ARCHIVER_ROLE = "lienthong_archiver"
ARCHIVE_URL_ENV = "LIENTHONG_ARCHIVE_DATABASE_URL"


def archiver_url(database_url: str) -> str:
    """The archiver writes as its own least-privileged role (migration 0007), on the same
    server and database, its credentials from the server's auth rules or ~/.pgpass; or as
    LIENTHONG_ARCHIVE_DATABASE_URL names."""
    override = os.environ.get(ARCHIVE_URL_ENV)
    if override:
        return override
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{ARCHIVER_ROLE}@{host}"))


def archive_log_id(settings: Settings) -> str:
    return f"{settings.topic('archive')}/{settings.platform_agency}"


def archive_topics(settings: Settings) -> ArchiveTopics:
    return ArchiveTopics(
        submissions=settings.topic("submissions"),
        deadletter=settings.topic("deadletter"),
        inbox_prefix=settings.inbox(""),
    )


def archive_parse_context(settings: Settings) -> ParseContext:
    """What the archiver parses records with; `audit check` derives the rows again with it."""
    return ParseContext(
        topics=archive_topics(settings),
        trust=context.trust_store(settings),
        agencies=context.exchange_directory(settings),
    )


async def reindex_archive(
    database_url: str, ctx: ParseContext, *, batch: int = 500, every: bool = False
) -> int:
    """`archive reindex`: as the tables' owner (the archiver's role may not update documents),
    the full-text columns derived again from the archived bytes (consumers.archive.reindex)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await reindex_documents(conn, ctx, batch=batch, every=every)
    finally:
        await conn.close()


def build_archiver(
    settings: Settings,
    bootstrap: str,
    database_url: str,
    *,
    max_batch: int = 500,
    checkpoint_seconds: float = 60.0,
    wait_for_lock: bool = False,
    parse_workers: int | None = None,  # None: $LIENTHONG_ARCHIVE_PARSE_WORKERS, else 0
) -> Archiver:
    config = ArchiverConfig(
        topics=archive_topics(settings),
        database_url=archiver_url(database_url),
        checkpoints_topic=settings.topic("checkpoints"),
        max_batch=max_batch,
        checkpoint_seconds=checkpoint_seconds,
        wait_for_lock=wait_for_lock,
        parse_workers=default_parse_workers() if parse_workers is None else parse_workers,
    )
    parse = ParseContext(
        topics=config.topics,
        trust=context.trust_store(settings),
        agencies=context.exchange_directory(settings),
    )
    # The workers build their own context from the paths the one above was just loaded from.
    source = ParseSource(config.topics, settings.trust_config, settings.agencies_file)
    signer = archive_signer(
        settings.pki_dir,
        settings.platform_agency,
        archive_log_id(settings),
        context.key_passphrase(settings),
    )
    return Archiver(
        bootstrap,
        config,
        parse=parse,
        parse_source=source,
        signer=signer,
        clock=utcnow,
        metrics=ArchiverMetrics(),
        client_options=settings.kafka_options(),
    )


async def run_archiver(
    settings: Settings, bootstrap: str, archiver: Archiver, stop: asyncio.Event
) -> None:
    """The archiver with the crl topic followed beside it (each new trust store verifies the
    next batch) and its ARCHIVE certificate watched: a renewed one signs the next tree head."""
    metrics = trust_metrics(archiver.metrics.registry)
    credentials = monitored_credentials(
        settings, settings.platform_agency, CertRole.ARCHIVE, metrics
    )
    feed = trust_feed(
        settings,
        bootstrap,
        clock=lambda: archiver.clock(),
        owners=[archiver.update_trust],
        metrics=metrics,
        base=archiver.parse.trust,
    )

    async def archive(stop: asyncio.Event) -> None:
        follow = asyncio.create_task(_follow_credential(archiver, credentials, stop))
        # Witnesses' cosignatures, from their topic into the cosignature table.
        cosigned = asyncio.create_task(
            collect_cosignatures(
                bootstrap,
                settings.topic("cosignatures"),
                archiver.config.database_url,
                stop,
                settings.kafka_options(),
            )
        )
        try:
            await archiver.run(stop)
        finally:
            follow.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
            with contextlib.suppress(Exception):
                await asyncio.wait_for(cosigned, 10)

    await run_with_trust(archive, feed, stop, clock=lambda: archiver.clock(), watches=[credentials])


async def _follow_credential(
    archiver: Archiver, credentials: MonitoredCredentials, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        held = credentials.held_at(archiver.clock())
        if held is not None and held.credential.chain != archiver.signer.chain:
            archiver.signer = dataclasses.replace(
                archiver.signer, key=held.credential.key, chain=held.credential.chain
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60.0)
