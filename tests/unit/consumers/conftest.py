"""Shared by the archive parse tests: a development PKI, issued once per session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signing.pkidir import PkiDirectory
from signing.profile import CertRole

# The moment the archive parse tests sign and archive at.
ARCHIVE_NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pki_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with agency certificates for Hà Nội People's Committee and Ba Đình and the
    platform's certificate, from the day before ARCHIVE_NOW."""
    root = tmp_path_factory.mktemp("pki")
    pki = PkiDirectory(root)
    issued = ARCHIVE_NOW - timedelta(days=1)
    pki.init(now=issued)
    for code in ("000.00.00.H26", "000.00.31.H26"):
        pki.issue(agency_code=code, role=CertRole.AGENCY, now=issued)
    pki.issue(agency_code="000.00.10.H26", role=CertRole.PLATFORM, now=issued)
    return root
