"""The systemd units: shipped as generated, accepted by `systemd-analyze verify`, sandboxed,
and running real `lienthong` command lines."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.deploy import SERVICES, systemd_units
from infra.deploy.systemd import unit_name
from tests.unit.infra.cli_args import PENDING, problems

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "infra" / "deploy" / "systemd"
LIENTHONG = str(Path(sys.executable).parent / "lienthong")
AGENCY = "000.00.31.H26"
REQUIRED = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "2",
    "User": "lienthong",
    "CapabilityBoundingSet": "",
    "Environment": "LIENTHONG_CONFIG=/etc/lienthong/lienthong.toml",
}


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_shipped_units_are_the_generated_ones() -> None:
    """infra/deploy/systemd is what `lienthong manifests --target systemd` writes: edit the
    catalog, regenerate, never the files by hand."""
    generated = systemd_units()
    shipped = {p.name: p.read_text(encoding="utf-8") for p in SHIPPED.iterdir()}
    assert shipped == generated


def test_one_unit_per_service_and_templates_per_agency() -> None:
    names = set(systemd_units())
    assert names == {unit_name(s) for s in SERVICES} | {"lienthong.sysusers.conf"}
    assert "lienthong-subscribe@.service" in names and "lienthong-gateway@.service" in names
    assert {"lienthong-route.service", "lienthong-archive.service"} <= names
    assert {"lienthong-witness.service", "lienthong-console.service"} <= names


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_unit_is_sandboxed_and_restarts(spec: object) -> None:
    text = systemd_units()[unit_name(spec)]  # type: ignore[arg-type]
    service = parse(text)["Service"]
    for key, value in REQUIRED.items():
        assert value in service.get(key, []), f"{key}={value} missing"
    assert "@system-service" in service["SystemCallFilter"]
    # No secret in the unit: only the (root-owned) environment file and credentials hold one.
    for value in service.get("Environment", []):
        assert "PASSWORD" not in value.upper().split("=")[0] or value.endswith("_ENV")
    assert "/etc/lienthong/lienthong.env" in service["EnvironmentFile"][0]


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_unit_runs_a_real_command_line(spec: object) -> None:
    text = systemd_units()[unit_name(spec)]  # type: ignore[arg-type]
    argv = shlex.split(parse(text)["Service"]["ExecStart"][0])
    assert argv[0] == "/opt/lienthong/bin/lienthong"
    found = problems([a.replace("%i", AGENCY) for a in argv[1:]])
    assert set(found) <= PENDING, found


def test_the_archive_unit_hands_the_passphrase_as_a_credential() -> None:
    service = parse(systemd_units()["lienthong-archive.service"])["Service"]
    assert service["LoadCredential"] == ["key-passphrase:/etc/lienthong/credentials/key-passphrase"]
    assert "LIENTHONG_KEY_PASSPHRASE_FILE=%d/key-passphrase" in service["Environment"]
    witness = parse(systemd_units()["lienthong-witness.service"])["Service"]
    assert witness["LoadCredential"] == ["witness.key:/etc/lienthong/credentials/witness.key"]
    # WITNESS_LOG_KEY comes from the unit's own file, which must then exist.
    assert witness["EnvironmentFile"] == [
        "-/etc/lienthong/lienthong.env",
        "/etc/lienthong/%N.env",
    ]
    route = parse(systemd_units()["lienthong-route.service"])["Service"]
    assert route["EnvironmentFile"][-1] == "-/etc/lienthong/%N.env"


def test_the_sysusers_entry_makes_the_user() -> None:
    line = [ln for ln in systemd_units()["lienthong.sysusers.conf"].splitlines() if ln[:1] == "u"]
    assert line == ['u lienthong - "lienthong document exchange" /var/lib/lienthong -']


# --- systemd's own verifier -----------------------------------------------------------------

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _verify(directory: Path, names: list[str]) -> tuple[int, str]:
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=directory, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).strip()


def _write_units(directory: Path, edit: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """The units with ExecStart on this machine's lienthong, templates as an instance."""
    names = []
    for name, text in systemd_units(LIENTHONG).items():
        if not name.endswith(".service"):
            continue
        if edit and name in edit:
            old, new = edit[name]
            assert old in text
            text = text.replace(old, new)
        instance = name.replace("@.service", f"@{AGENCY}.service")
        (directory / instance).write_text(text, encoding="utf-8")
        names.append(instance)
    return names


@needs_systemd
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    code, output = _verify(tmp_path, _write_units(tmp_path))
    assert code == 0 and output == "", output


@needs_systemd
@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (("Restart=on-failure", "Restrat=on-failure"), "Unknown key"),
        (("ProtectSystem=strict", "ProtectSystem=sometimes"), "protect system"),
        (("RestartSec=5s", "RestartSec=soon"), "sec value"),
    ],
)
def test_the_verifier_catches_a_broken_unit(
    tmp_path: Path, edit: tuple[str, str], complaint: str
) -> None:
    names = _write_units(tmp_path, {"lienthong-archive.service": edit})
    _, output = _verify(tmp_path, ["lienthong-archive.service"])
    assert complaint.lower() in output.lower(), output
    assert "lienthong-archive.service" in names


@needs_systemd
def test_the_verifier_catches_a_missing_executable(tmp_path: Path) -> None:
    for name, text in systemd_units("/nonexistent/lienthong").items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    code, output = _verify(tmp_path, ["lienthong-route.service"])
    assert code != 0 and "/nonexistent/lienthong" in output
