"""What signing/note.py writes, checked by verifiers that are not ours: a Go program
(tests/interop/c2spverify) over golang.org/x/mod/sumdb/note and
github.com/transparency-dev/formats. Skipped only when no `go` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from signing.note import COSIGNATURE_V1, ED25519, Checkpoint, NoteSigner, cosign, sign_note

PROGRAM = Path(__file__).resolve().parents[2] / "interop" / "c2spverify"
GO = shutil.which("go")
pytestmark = pytest.mark.skipif(GO is None, reason="`go` is not installed: no outside verifier")


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("go") / "c2spverify"
    assert GO is not None
    done = subprocess.run(
        [GO, "build", "-o", str(binary), "."],
        cwd=PROGRAM,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return binary


def _run(binary: Path, note: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], input=note.decode(), capture_output=True, text=True, timeout=60
    )


def test_go_verifies_our_checkpoint_and_cosignatures(verifier: Path) -> None:
    log = NoteSigner.generate("lienthong.archive/000.00.00.H26", ED25519)
    w1 = NoteSigner.generate("bo-noi-vu.gov.vn/witness", COSIGNATURE_V1)
    w2 = NoteSigner.generate("ha-noi.gov.vn/witness", COSIGNATURE_V1)
    root = bytes(range(32))
    note = sign_note(Checkpoint(log.name, 40, root).text(), log)
    note = note.with_signature(cosign(note, w1, 1_767_225_600))
    note = note.with_signature(cosign(note, w2, 1_767_225_601))
    keys = [log.verifier.encode(), "2", w1.verifier.encode(), w2.verifier.encode()]
    done = _run(verifier, note.encode(), *keys)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"log {log.name}",
        f"witness {w1.name} 1767225600",
        f"witness {w2.name} 1767225601",
        f"checkpoint {log.name} 40 {root.hex()}",
    ]
    # The outside verifier refuses what ours refuses: one changed byte, a missing witness.
    changed = note.encode().replace(b"\n40\n", b"\n41\n")
    assert _run(verifier, changed, *keys).returncode == 1
    assert _run(verifier, note.encode(), log.verifier.encode(), "3", *keys[2:]).returncode == 1
