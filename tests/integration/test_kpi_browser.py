"""The KPI report as a person sees it: rendered by headless Chromium, figures read from the DOM."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.test_kpi import check_report_dom, cli, kpi_db, report_and_json

__all__ = ["cli", "kpi_db"]  # the fixtures this module borrows

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing in the report may need the network: any fetch attempt would fail here.
    "--proxy-server=127.0.0.1:9",
)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required in CI: apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium); required when CI=true")
    return path


def run_chromium(binary: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="kpi-chromium-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_rendered_report_shows_the_json_figures(
    cli: CliRunner, kpi_db: str, tmp_path: Path
) -> None:
    binary = chromium()
    report, by_month = report_and_json(cli, kpi_db, tmp_path)
    dom = run_chromium(binary, "--dump-dom", report.as_uri())
    assert "<svg" in dom and "Tỷ lệ trao đổi văn bản điện tử" in dom
    check_report_dom(dom, by_month)
    shot = tmp_path / "report.png"
    run_chromium(binary, f"--screenshot={shot}", "--window-size=1100,1900", report.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("LIENTHONG_KPI_SCREENSHOT")
    if keep:  # for a person to look at: LIENTHONG_KPI_SCREENSHOT=/tmp/kpi.png pytest ...
        shutil.copy(shot, keep)
