"""When the OpenTelemetry exporter is on, and when it is not: the `lienthong` command in a child
process, so that what it imported is its own. Without LIENTHONG_OTEL_ENDPOINT nothing of
OpenTelemetry is imported; with it but without the packages, a warning and nothing else; a
malformed endpoint is one line and exit 2."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.observe import traces_url

ROOT = Path(__file__).resolve().parents[3]
# Runs `lienthong ARGS` as the entry point does, then says what the process imported and whether
# a span sink was left installed after the command closed.
PROBE = """
import atexit, sys
{block}
def report():
    from schemas import trace
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry" and sys.modules[m])
    print("otel-modules:", ",".join(loaded) or "none")
    print("sink-left:", trace.span_sink() is not None)
atexit.register(report)
sys.argv = ["lienthong", *{args!r}]
from infra.cli.main import main
main()
"""
# What an interpreter without the `otel` extra sees: every `import opentelemetry...` fails.
WITHOUT_OTEL = 'sys.modules["opentelemetry"] = None'
HAS_OTEL = importlib.util.find_spec("opentelemetry.sdk") is not None


def lienthong(
    args: list[str], endpoint: str | None, block: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIENTHONG_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["LIENTHONG_LOG_LEVEL"] = "INFO"
    if endpoint is not None:
        env["LIENTHONG_OTEL_ENDPOINT"] = endpoint
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(block=block, args=args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_without_the_setting_nothing_of_opentelemetry_is_imported() -> None:
    result = lienthong(["send", "--help"], None)
    assert result.returncode == 0, result.stderr
    assert "otel-modules: none" in result.stdout
    assert "sink-left: False" in result.stdout
    assert "otel." not in result.stderr


def test_with_the_setting_but_without_the_packages_a_warning_and_nothing_changes() -> None:
    result = lienthong(["route", "--help"], "http://127.0.0.1:4318", WITHOUT_OTEL)
    assert result.returncode == 0, result.stderr
    assert "otel-modules: none" in result.stdout
    assert "sink-left: False" in result.stdout
    assert "otel.unavailable" in result.stderr
    assert "pip install 'lienthong[otel]'" in result.stderr


def test_a_command_that_handles_no_records_starts_no_exporter() -> None:
    result = lienthong(["pki", "--help"], "http://127.0.0.1:4318")
    assert result.returncode == 0, result.stderr
    assert "otel-modules: none" in result.stdout


@pytest.mark.parametrize("endpoint", ["collector:4318", "ftp://collector/", "http://"])
def test_a_malformed_endpoint_is_one_line_and_exit_2(endpoint: str) -> None:
    result = lienthong(["archive", "--help"], endpoint)
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: LIENTHONG_OTEL_ENDPOINT={endpoint!r} is not an http(s) URL "
        "(an OTLP/HTTP collector, e.g. http://otel-collector:4318)"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not HAS_OTEL, reason="opentelemetry-sdk is not installed (the otel extra)")
def test_with_the_setting_and_the_packages_the_exporter_starts_and_stops_with_the_command() -> None:
    # Nothing listens on port 9: no span is made by --help, so the exit does not wait on it.
    result = lienthong(["subscribe", "--help"], "http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert "otel.started" in result.stderr and "lienthong-subscriber" in result.stderr
    assert "opentelemetry.sdk.trace" in result.stdout
    assert "sink-left: False" in result.stdout  # removed (and flushed) when the command closed


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://otel-collector:4318", "http://otel-collector:4318/v1/traces"),
        ("http://otel-collector:4318/", "http://otel-collector:4318/v1/traces"),
        ("https://tempo.example.vn/otlp/v1/traces", "https://tempo.example.vn/otlp/v1/traces"),
        (" http://127.0.0.1:4318 ", "http://127.0.0.1:4318/v1/traces"),
    ],
)
def test_a_collectors_base_address_gets_the_traces_path(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url
