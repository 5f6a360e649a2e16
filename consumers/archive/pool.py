"""Parsing in worker processes: records in, their rows out, in the order the records came.

Parsing is pure (bytes -> rows) and ~90 % of the archiver's CPU, so it can run on other cores
while the archiver's own process fetches and writes. One single-process executor per shard,
and a record goes to the shard of its Kafka key: a delivery carries its submission's key (the
document id), so it reaches the worker whose payload cache decoded that submission's payload,
in this batch or an earlier one. Results are put back in submission order, so what is written
does not depend on which worker finished first; rows are the same as the in-process parse's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from consumers.archive.parse import ParseContext, parse_record
from consumers.archive.rows import ArchiveTopics, Parsed, SourceRecord
from schemas.agency import AgencyDirectory
from signing.crl import TrustMaterial
from signing.trust import TrustStore

log = structlog.get_logger()

PARSE_SLICE = 25  # in-process: records parsed between two turns of the event loop (~5-10 ms)
CHUNK = 100  # records per task sent to a worker: pickling amortised, shards kept busy
RESTARTS = 3  # broken pools in a row for one batch before it is parsed in-process instead


@dataclass(frozen=True, slots=True)
class ParseSource:
    """What a worker needs to build its own ParseContext: paths, not objects, built once per
    worker (its initializer) so the trust store's chain cache lives as long as the worker."""

    topics: ArchiveTopics
    trust_config: Path
    agencies_file: Path | None = None
    # A live trust store (a CRL from the crl topic) as bytes; None: trust_config's files.
    trust: TrustMaterial | None = None

    def context(self) -> ParseContext:
        agencies = (
            AgencyDirectory.default()
            if self.agencies_file is None
            else AgencyDirectory.load(self.agencies_file)
        )
        trust = self.trust.store() if self.trust else TrustStore.from_config(self.trust_config)
        return ParseContext(self.topics, trust, agencies)


_worker_ctx: ParseContext | None = None


def _init_worker(source: ParseSource) -> None:
    global _worker_ctx
    # Ctrl-C reaches the whole process group: the archiver stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _worker_ctx = source.context()


def _exit_with(parent: int) -> None:
    """A SIGKILLed archiver cannot stop its workers, and an idle worker waiting for its next
    task never learns it is orphaned: it leaves when it is reparented."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _parse_chunk(chunk: Sequence[SourceRecord]) -> list[Parsed]:
    assert _worker_ctx is not None, "worker not initialised"
    return [parse_record(src, _worker_ctx) for src in chunk]


def _ready() -> int:
    return 0


def shard_of(src: SourceRecord, shards: int) -> int:
    """Stable across processes and runs (not hash(), which is salted per process)."""
    key = src.key if src.key is not None else src.offset.to_bytes(8, "big", signed=True)
    return zlib.crc32(key) % shards


class ParsePool:
    """`workers` = 0 parses in the archiver's process, handing the event loop back every
    PARSE_SLICE records; otherwise that many worker processes, started on first use."""

    def __init__(self, ctx: ParseContext, source: ParseSource | None, workers: int) -> None:
        if workers < 0:
            raise ValueError("parse workers must be >= 0")
        if workers and source is None:
            raise ValueError("parse workers need a ParseSource to build their context from")
        self.ctx = ctx
        self.source = source
        self.workers = workers
        self.restarts = 0  # pools replaced after a worker died, over this pool's life
        self._executors: list[ProcessPoolExecutor] = []
        self._renew = False  # workers hold an older trust store: replace them before parsing

    def update_trust(self, trust: TrustStore) -> None:
        """Verify with `trust` from the next batch on (a new CRL, consumers.trustfeed). Workers
        cannot share the object: they are replaced, before the next batch, by workers built
        from its bytes. The payload cache is kept."""
        self.ctx = replace(self.ctx, trust=trust)
        if self.source is not None:
            self.source = replace(self.source, trust=TrustMaterial.of(trust))
            self._renew = bool(self._executors)

    def start(self) -> None:
        """Start the workers now (they take ~1 s to import), not at the first batch."""
        if self.workers and not self._executors:
            assert self.source is not None
            mp = multiprocessing.get_context("spawn")  # no fork of a process running a loop
            self._executors = [
                ProcessPoolExecutor(
                    1, mp_context=mp, initializer=_init_worker, initargs=(self.source,)
                )
                for _ in range(self.workers)
            ]
            for ex in self._executors:
                ex.submit(_ready)

    async def parse(self, records: Sequence[SourceRecord]) -> list[Parsed]:
        if not self.workers or not records:
            return await self._in_process(records)
        if self._renew:
            self._renew = False
            self._shutdown(wait=True)  # idle: parse() is never run twice at once
        for attempt in range(RESTARTS + 1):
            self.start()
            try:
                return await self._in_workers(records)
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory): nothing of this batch was written, and
                # parsing is pure, so parse all of it again on fresh workers.
                self.restarts += 1
                log.warning("archive.parse_pool_broken", error=repr(exc), attempt=attempt + 1)
                self._shutdown(wait=False)
        log.error("archive.parse_pool_failing", records=len(records))
        return await self._in_process(records)

    async def _in_process(self, records: Sequence[SourceRecord]) -> list[Parsed]:
        parsed = []
        for i, src in enumerate(records):
            parsed.append(parse_record(src, self.ctx))
            if i % PARSE_SLICE == PARSE_SLICE - 1:
                await asyncio.sleep(0)
        return parsed

    async def _in_workers(self, records: Sequence[SourceRecord]) -> list[Parsed]:
        n = len(self._executors)
        by_shard: list[list[int]] = [[] for _ in range(n)]
        for i, src in enumerate(records):
            by_shard[shard_of(src, n)].append(i)
        loop = asyncio.get_running_loop()
        tasks = []
        for shard, indexes in enumerate(by_shard):
            for k in range(0, len(indexes), CHUNK):
                part = indexes[k : k + CHUNK]
                chunk = [records[i] for i in part]
                fut = loop.run_in_executor(self._executors[shard], _parse_chunk, chunk)
                tasks.append((part, fut))
        try:
            results = await asyncio.gather(*(fut for _, fut in tasks))
        except BaseException:
            for _, fut in tasks:
                fut.cancel()
            raise
        out: list[Parsed | None] = [None] * len(records)
        for (part, _), rows in zip(tasks, results, strict=True):
            for i, row in zip(part, rows, strict=True):
                out[i] = row
        assert all(p is not None for p in out)
        return out  # type: ignore[return-value]

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests that kill one)."""
        return [pid for ex in self._executors for pid in (ex._processes or {})]

    def close(self) -> None:
        self._shutdown(wait=True)

    def _shutdown(self, *, wait: bool) -> None:
        executors, self._executors = self._executors, []
        for ex in executors:
            ex.shutdown(wait=wait, cancel_futures=True)
