"""Logging, configured once per process: JSON lines for machines, console lines for people."""

from __future__ import annotations

import logging
import sys

import structlog
from aiokafka import errors as kafka_errors

# While a fresh broker elects the coordinator of a consumer group (or of offsets) the clients
# ask again every 100 ms and log each answer at ERROR: over 200 lines in the first `make demo`.
# These answers are retried by the client itself and say nothing an operator can act on.
# The same for a new topic's partitions electing their leaders (`lienthong generate` creates its
# topics and reads them at once): "Failed fetch offsets ...: NotLeaderForPartitionError".
COORDINATOR_ELECTION_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.GroupCoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorForGroupError,
    kafka_errors.GroupLoadInProgressError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever sys.stderr is when a record is emitted, not when it was configured
    (test runners and CLI runners swap it, and close the old one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _StderrLogger:
    """structlog's own output: one rendered line to whatever sys.stderr is now. structlog events
    skip the stdlib (a LogRecord copied twice and a caller lookup per line cost ~3/4 of a
    line's time); only the clients' stdlib records go through the handler below."""

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = msg


class DemoteCoordinatorElection(logging.Filter):
    """A Kafka client's record about a coordinator being elected (an election error among its
    arguments) is demoted to DEBUG, and kept only where its logger lets DEBUG through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not record.name.startswith(("aiokafka", "kafka")):
            return True
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        if not any(isinstance(a, COORDINATOR_ELECTION_ERRORS) for a in args):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _logger_factory(*args: object) -> _StderrLogger:
    return _StderrLogger(str(args[0]) if args and args[0] is not None else None)


def _add_logger_name(
    logger: object, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    name = getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Route structlog and the stdlib loggers (aiokafka, asyncpg) through one renderer on stderr."""
    if json is None:
        json = not sys.stderr.isatty()
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: structlog.types.Processor
    if json:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def chain(add_name: structlog.types.Processor) -> list[structlog.types.Processor]:
        steps: list[structlog.types.Processor] = [
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            add_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
        ]
        if json:
            steps.append(structlog.processors.format_exc_info)
        return steps

    structlog.configure(
        processors=[*chain(_add_logger_name), renderer],
        logger_factory=_logger_factory,
        # Calls below the level return at once (a debug line per record costs nothing at INFO).
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Not cached: a logger bound once would keep this configuration for good, and tools
        # that swap it (structlog.testing.capture_logs, a second configure) would miss it.
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderr()
    handler.addFilter(DemoteCoordinatorElection())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=chain(structlog.stdlib.add_logger_name),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # The clients are chatty at INFO (every connection, every rebalance step).
    for noisy in ("aiokafka", "kafka", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
