"""`lienthong archive`: the archiver's composition root, run until SIGTERM; `archive reindex`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import typer

from consumers.archive import ArchiveLockedError
from infra import services
from infra.cli.common import METRICS_PORT, Bar, clean_errors, out, progress_bar
from infra.compose.archive import (
    PARSE_WORKERS_ENV,
    archive_parse_context,
    build_archiver,
    reindex_archive,
    run_archiver,
)
from infra.settings import load_settings


async def catch_up(lag: Callable[[], int], bar: Bar, every_s: float = 0.5) -> None:
    """The backlog found at start (or any later one) as a bar, hidden again once caught up."""
    total = 0
    while True:
        behind = lag()
        if behind > 0:
            total = max(total, behind)
            bar.update(completed=total - behind, total=total)
        elif total:
            bar.update(completed=total, total=total, visible=False)
            total = 0
        await asyncio.sleep(every_s)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Archive submissions, inboxes and dead letters into PostgreSQL (until SIGTERM); "
        "`archive reindex` fills the full-text columns of documents archived before 0008."
    )

    @group.callback(invoke_without_command=True)
    @clean_errors
    def archive(
        ctx: typer.Context,
        metrics_port: int = METRICS_PORT,
        checkpoint_seconds: float = typer.Option(60.0, help="Sign a tree head this often."),
        max_batch: int = typer.Option(500, help="Records per database transaction, at most."),
        wait: bool = typer.Option(False, help="Wait for a running archiver to stop, not refuse."),
        parse_workers: int = typer.Option(
            0,
            min=0,
            envvar=PARSE_WORKERS_ENV,
            help="Processes that parse and verify records; 0 parses in the archiver's own.",
        ),
    ) -> None:
        """Archive submissions, inboxes and dead letters into PostgreSQL until SIGTERM."""
        if ctx.invoked_subcommand is not None:
            return
        settings = load_settings()
        bootstrap = services.kafka_bootstrap(settings)
        archiver = build_archiver(
            settings,
            bootstrap,
            services.database_url(settings),
            max_batch=max_batch,
            checkpoint_seconds=checkpoint_seconds,
            wait_for_lock=wait,
            parse_workers=parse_workers,
        )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            with progress_bar("archive catch-up", None, visible=False) as bar:
                follow = asyncio.create_task(catch_up(lambda: archiver.consumer_lag.total, bar))
                try:
                    await run_archiver(
                        settings, bootstrap, archiver, stop, metrics_port=metrics_port
                    )
                finally:
                    follow.cancel()

        try:
            asyncio.run(main())
        except ArchiveLockedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    @group.command("reindex")
    @clean_errors
    def reindex(
        batch: int = typer.Option(500, min=1, help="Documents per transaction."),
        every: bool = typer.Option(
            False, "--all", help="Every document, not only those not indexed yet."
        ),
    ) -> None:
        """Derive body and names again from the archived bytes, for full-text search (0008);
        runs as the database's owner (LIENTHONG_DATABASE_URL), can be stopped and rerun."""
        settings = load_settings()
        url = services.database_url(settings)
        done = asyncio.run(
            reindex_archive(url, archive_parse_context(settings), batch=batch, every=every)
        )
        out.print(f"indexed {done} document(s)")

    app.add_typer(group, name="archive")
