"""Logging is configured once: JSON lines for machines; the clients' stdlib logs go through it."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from infra.logs import configure_logging


def test_json_lines_carry_context_and_stdlib_client_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    structlog.contextvars.bind_contextvars(topic="lienthong.submissions", offset=7)
    try:
        structlog.get_logger("test").info("router.routed", document_id="4612/QĐ-UBND")
        logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "g")
        logging.getLogger("aiokafka.consumer").info("chatty detail")  # below WARNING: dropped
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [entry["event"] for entry in lines] == ["router.routed", "Heartbeat failed for group g"]
    assert lines[0]["document_id"] == "4612/QĐ-UBND"  # UTF-8, not escaped
    assert lines[0]["topic"] == "lienthong.submissions" and lines[0]["offset"] == 7
    assert lines[1]["logger"] == "aiokafka.consumer" and lines[1]["level"] == "warning"


def test_console_output_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)
    structlog.get_logger("test").info("infra.up", bootstrap="127.0.0.1:9092")
    err = capsys.readouterr().err
    assert "infra.up" in err and "bootstrap=127.0.0.1:9092" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])


def test_structlog_lines_below_the_level_are_dropped_and_name_their_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    log = structlog.get_logger("consumers.router.service")
    log.debug("router.batch_detail", records=3)  # below INFO: never rendered
    log.warning("router.retry", delay_s=0.5)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["event"], e["level"], e["logger"]) for e in lines] == [
        ("router.retry", "warning", "consumers.router.service")
    ]


def test_coordinator_election_errors_of_the_clients_are_demoted_to_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aiokafka import errors

    configure_logging("INFO", json=True)
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    # What a fresh broker answers, 200 times over, while it elects the group's coordinator.
    for _ in range(200):
        coordinator.error(
            "Group Coordinator Request failed: %s", errors.GroupCoordinatorNotAvailableError()
        )
    coordinator.error(
        "Heartbeat send request failed: %s. Will retry.", errors.NotCoordinatorError()
    )
    coordinator.error("OffsetCommit failed: %s", errors.CoordinatorLoadInProgressError())
    # A new topic's partitions electing their leaders (lienthong generate reads at once).
    logging.getLogger("aiokafka.consumer.fetcher").error(
        "Failed fetch offsets from %s: %s", 1, errors.NotLeaderForPartitionError()
    )
    # Not an election: still an error.
    coordinator.error(
        "Group Coordinator Request failed: %s", errors.GroupAuthorizationFailedError()
    )
    logging.getLogger("aiokafka.client").error(
        'Unable connect to "%s:%s": %s', "127.0.0.1", 9, errors.KafkaConnectionError("refused")
    )
    # Our own lines are never demoted, whatever they carry.
    logging.getLogger("lienthong.own").error("odd: %s", errors.GroupCoordinatorNotAvailableError())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["logger"], e["level"]) for e in lines] == [
        ("aiokafka.consumer.group_coordinator", "error"),
        ("aiokafka.client", "error"),
        ("lienthong.own", "error"),
    ]
    assert "GroupAuthorizationFailedError" in lines[0]["event"]


def test_demoted_election_errors_show_where_the_client_logs_at_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aiokafka import errors

    configure_logging("DEBUG", json=True)
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.error("Group Coordinator Request failed: %s", errors.CoordinatorNotAvailableError())
    assert capsys.readouterr().err == ""  # the clients stay at WARNING even at DEBUG
    logging.getLogger("aiokafka").setLevel(logging.DEBUG)
    try:
        coordinator.error(
            "Group Coordinator Request failed: %s", errors.CoordinatorNotAvailableError()
        )
    finally:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["event"].split(":")[0]) for e in lines] == [
        ("debug", "Group Coordinator Request failed")
    ]
