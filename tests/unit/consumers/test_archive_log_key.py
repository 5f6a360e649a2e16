"""The archive's checkpoint key on disk: encrypted under the passphrase when one is set (no
seed in clear), its public half beside it, and refused with the wrong passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.archive import load_log_key, log_verifier_key
from consumers.archive.tree import log_key_path
from signing.errors import PkiError

LOG = "lienthong.archive/000.00.00.H26"


def test_an_encrypted_checkpoint_key(tmp_path: Path) -> None:
    made = load_log_key(tmp_path, LOG, create=True, passphrase=b"correct horse")
    data = log_key_path(tmp_path, LOG).read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert made.encode().encode() not in data
    assert log_key_path(tmp_path, LOG).stat().st_mode & 0o077 == 0
    again = load_log_key(tmp_path, LOG, passphrase=b"correct horse")
    assert again.verifier == made.verifier == log_verifier_key(tmp_path, LOG)
    with pytest.raises(PkiError):
        load_log_key(tmp_path, LOG, passphrase=b"wrong")
    with pytest.raises(PkiError):
        load_log_key(tmp_path, LOG)  # encrypted, and no passphrase


def test_a_clear_key_is_refused_once_a_passphrase_is_set(tmp_path: Path) -> None:
    load_log_key(tmp_path, LOG, create=True)
    with pytest.raises(PkiError, match="not encrypted"):
        load_log_key(tmp_path, LOG, passphrase=b"x")
    other = "lienthong.archive/000.00.00.G22"
    log_key_path(tmp_path, other).write_bytes(log_key_path(tmp_path, LOG).read_bytes())
    with pytest.raises(PkiError, match="not of the log"):
        load_log_key(tmp_path, other)  # another log's key, copied in


def test_the_archive_signer_opens_encrypted_keys_only_with_the_passphrase(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from consumers.archive import archive_signer
    from signing.pkidir import PkiDirectory
    from signing.profile import CertRole

    now = datetime.now(UTC)
    secret = b"ca and archive passphrase"
    pki = PkiDirectory(tmp_path)
    pki.init(now=now, passphrase=secret)
    pki.issue(agency_code="000.00.00.H26", role=CertRole.ARCHIVE, now=now, passphrase=secret,
              ca_passphrase=secret)  # fmt: skip
    for path in [*tmp_path.rglob("*.key.pem")]:
        assert b"ENCRYPTED" in path.read_bytes(), path
    signer = archive_signer(tmp_path, "000.00.00.H26", LOG, secret)
    assert log_key_path(tmp_path, LOG).read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    assert signer.checkpoint(0, bytes(32)) is not None
    with pytest.raises(PkiError, match="ARCHIVE key"):
        archive_signer(tmp_path, "000.00.00.H26", LOG)
