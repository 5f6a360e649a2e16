"""`lienthong archive` and `lienthong audit check`: the composition roots of the archive."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import typer
from prometheus_client import start_http_server

from consumers.archive_parse import ArchiveTopics, ParseContext
from consumers.archive_pool import ParseSource
from consumers.archive_tree import archive_signer
from consumers.archiver import ArchiveLockedError, Archiver, ArchiverConfig, ArchiverMetrics
from infra import context, services
from infra.cli import clean_errors
from infra.cli_audit_app import audit_app
from infra.settings import Settings, load_settings


def utcnow() -> datetime:
    return datetime.now(UTC)


# Parse worker processes: off by default. On the 2-core benchmark box the archiver is bound by
# its sequential database writes (~0.4 ms a row), not by parsing, and 2 workers gave the same
# rows/s for +146 MiB (docs/benchmarks.md, Archive). Set where cores are spare and writes fast.
PARSE_WORKERS_ENV = "LIENTHONG_ARCHIVE_PARSE_WORKERS"


def default_parse_workers() -> int:
    return int(os.environ.get(PARSE_WORKERS_ENV) or 0)


def archive_log_id(settings: Settings) -> str:
    return f"{settings.topic('archive')}/{settings.platform_agency}"


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
        topics=ArchiveTopics(
            submissions=settings.topic("submissions"),
            deadletter=settings.topic("deadletter"),
            inbox_prefix=settings.inbox(""),
        ),
        database_url=database_url,
        checkpoints_topic=settings.topic("checkpoints"),
        max_batch=max_batch,
        checkpoint_seconds=checkpoint_seconds,
        wait_for_lock=wait_for_lock,
        parse_workers=default_parse_workers() if parse_workers is None else parse_workers,
    )
    parse = ParseContext(
        topics=config.topics,
        trust=context.trust_store(settings),
        agencies=context.agency_directory(settings),
    )
    # The workers build their own context from the paths the one above was just loaded from.
    source = ParseSource(config.topics, settings.trust_config, settings.agencies_file)
    signer = archive_signer(settings.pki_dir, settings.platform_agency, archive_log_id(settings))
    return Archiver(
        bootstrap,
        config,
        parse=parse,
        parse_source=source,
        signer=signer,
        clock=utcnow,
        metrics=ArchiverMetrics(),
    )


def register(app: typer.Typer) -> None:
    @app.command("archive")
    @clean_errors
    def archive(
        metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on 127.0.0.1:PORT."),
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
        settings = load_settings()
        archiver = build_archiver(
            settings,
            services.kafka_bootstrap(settings),
            services.database_url(settings),
            max_batch=max_batch,
            checkpoint_seconds=checkpoint_seconds,
            wait_for_lock=wait,
            parse_workers=parse_workers,
        )
        if metrics_port:
            start_http_server(metrics_port, addr="127.0.0.1", registry=archiver.metrics.registry)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await archiver.run(stop)

        try:
            asyncio.run(main())
        except ArchiveLockedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    register_check(audit_app)
    if not any(g.typer_instance is audit_app for g in app.registered_groups):
        app.add_typer(audit_app, name="audit")


_check_registered: list[typer.Typer] = []


def register_check(group: typer.Typer) -> None:
    if group in _check_registered:
        return
    _check_registered.append(group)

    @group.command("check")
    def check(
        limit: int = typer.Option(50, help="Print at most this many findings."),
        who: str = typer.Option(None, "--who", help="Who asks (access log); default $USER."),
    ) -> None:
        """Recompute leaves, tree and signed heads: exit 0 intact, 1 tampered, 2 on error."""
        from consumers.archive_check import check_archive
        from infra.cli_audit import run_audited

        try:
            settings = load_settings()
            trust = context.trust_store(settings)
            # As the auditor role, after the access log has the request, like every audit command.
            report = run_audited(
                who, "check", {}, lambda conn: check_archive(conn, trust=trust, at=utcnow())
            )
        except Exception as exc:  # any failure to check is "could not say", never "intact"
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        for finding in report.findings[:limit]:
            print(finding.line())
        if len(report.findings) > limit:
            print(f"... and {len(report.findings) - limit} more findings")
        print(report.summary())
        raise typer.Exit(1 if report.findings else 0)
