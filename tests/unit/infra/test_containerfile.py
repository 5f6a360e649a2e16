"""The Containerfile, read as a builder would (no podman or docker here): two stages, the wheel
the only thing carried over, no compiler and no root at run time, a health check, `lienthong`
as the entrypoint. Then the wheel itself, built from exactly what the builder stage copies,
installed into a fresh virtualenv and run: a wheel missing a package or a data file fails."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schemas.agency import AgencyDirectory

ROOT = Path(__file__).resolve().parents[3]
CONTAINERFILE = ROOT / "Containerfile"
PACKAGES = ("schemas", "signing", "producers", "consumers", "infra")
PACKAGE_MANAGERS = re.compile(r"\b(apt-get|apt|apk|dnf|yum|microdnf)\s+(install|add)\b")
COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|rustc|cargo)\b")


@dataclass
class Stage:
    image: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, args)


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs (with defaults) and the stages, continuation lines joined, comments gone."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            parts = rest.split()
            image = _expand(parts[0], args)
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image, alias))
        elif stages:
            stages[-1].instructions.append((word, rest))
    return args, stages


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)


def _stage_args(stage: Stage, args: dict[str, str]) -> dict[str, str]:
    scoped = dict(args)
    for word, rest in stage.instructions:
        if word == "ARG":
            name, _, default = rest.partition("=")
            scoped[name] = default or args.get(name, "")
    return scoped


def problems(text: str) -> list[str]:
    """What is wrong with a Containerfile for lienthong; [] when nothing is."""
    args, stages = parse(text)
    found: list[str] = []
    if len(stages) < 2:
        return ["not multi-stage: a builder stage and a runtime stage are needed"]
    builders = {s.alias: s for s in stages[:-1] if s.alias}
    wheel_dirs: dict[str, set[str]] = {}
    for alias, stage in builders.items():
        for word, rest in stage.instructions:
            m = re.search(r"pip wheel .*--wheel-dir[ =](\S+)", rest) if word == "RUN" else None
            if m:
                wheel_dirs.setdefault(alias, set()).add(m[1].rstrip("/"))
    if not wheel_dirs:
        found.append("no builder stage builds the wheel (pip wheel --wheel-dir DIR)")
    final = stages[-1]
    scoped = _stage_args(final, args)
    if not re.fullmatch(r"(docker\.io/(library/)?)?python:3\.11-slim(-\w+)?", final.image):
        found.append(f"runtime image is {final.image}, not a python:3.11 slim image")
    if not final.instructions or not any(w == "COPY" for w, _ in final.instructions):
        found.append("the runtime stage copies no wheel")
    for word, rest in final.instructions:
        expanded = _expand(rest, scoped)
        if word in ("COPY", "ADD"):
            words = shlex.split(expanded)
            source = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")][:-1]
            if word == "ADD" or source is None:
                found.append(f"{word} {rest}: the runtime stage takes files from the build context")
            elif source not in wheel_dirs or any(
                p.rstrip("/") not in wheel_dirs[source] and not p.endswith(".whl") for p in paths
            ):
                found.append(f"COPY {rest}: copies more than the built wheel")
        if word == "RUN":
            if PACKAGE_MANAGERS.search(expanded) or COMPILERS.search(expanded):
                found.append(f"RUN {rest[:60]}...: installs system packages or a compiler")
            if "pip install" in expanded and "--only-binary=:all:" not in expanded:
                found.append("pip install without --only-binary=:all: may compile a dependency")
    users = [_expand(rest, scoped) for w, rest in final.instructions if w == "USER"]
    if not users:
        found.append("no USER: the service would run as root")
    else:
        user = users[-1].split(":")[0]
        if user in ("root", "0", ""):
            found.append(f"USER {users[-1]}: runs as root")
    health = [rest for w, rest in final.instructions if w == "HEALTHCHECK"]
    if not health or health[-1].upper().startswith("NONE") or "/healthz" not in health[-1]:
        found.append("no HEALTHCHECK asking the service's /healthz")
    entry = [rest for w, rest in final.instructions if w == "ENTRYPOINT"]
    try:
        entrypoint = json.loads(entry[-1]) if entry else None
    except json.JSONDecodeError:
        entrypoint = None  # the shell form: signals go to /bin/sh, not to lienthong
    if entrypoint != ["lienthong"]:
        found.append(f'ENTRYPOINT {entry[-1] if entry else None}: expected ["lienthong"]')
    return found


def test_the_containerfile_has_every_property() -> None:
    assert problems(CONTAINERFILE.read_text(encoding="utf-8")) == []


def _mutate(old: str, new: str) -> str:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("USER ${UID}:${UID}", "USER root", "runs as root"),
        ("USER ${UID}:${UID}", "", "no USER"),
        ("ARG UID=10001", "ARG UID=0", "runs as root"),
        ("COPY --from=builder /dist/ /tmp/dist/", "COPY . /src/", "build context"),
        ("COPY --from=builder /dist/ /tmp/dist/", "COPY --from=builder /src/ /tmp/dist/", "more"),
        ("RUN python", "RUN apt-get install -y gcc && python", "compiler"),
        (" --only-binary=:all:", "", "may compile"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "HEALTHCHECK"),
        ('ENTRYPOINT ["lienthong"]', "ENTRYPOINT lienthong", "ENTRYPOINT"),
        ("FROM ${PYTHON_IMAGE} AS runtime", "FROM python:3.12 AS runtime", "3.11"),
        ("--wheel-dir /dist", "--target /dist", "builds the wheel"),
    ],
)  # fmt: skip
def test_each_broken_property_is_caught(old: str, new: str, problem: str) -> None:
    found = problems(_mutate(old, new))
    assert any(problem in p for p in found), found


def test_a_single_stage_file_is_caught() -> None:
    text = 'FROM python:3.11-slim\nCOPY . /src\nRUN pip install /src\nENTRYPOINT ["lienthong"]\n'
    assert problems(text) == ["not multi-stage: a builder stage and a runtime stage are needed"]


# --- the wheel ------------------------------------------------------------------------------


def builder_sources() -> list[str]:
    """The paths the builder stage copies from the build context."""
    _, stages = parse(CONTAINERFILE.read_text(encoding="utf-8"))
    sources = []
    for word, rest in stages[0].instructions:
        if word == "COPY" and "--from" not in rest:
            sources += shlex.split(rest)[:-1]
    return sources


def tracked_package_files() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line for line in listed.stdout.splitlines() if line}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as the builder stage builds it, from a copy holding only what that stage copies."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in builder_sources():
        path = ROOT / name.rstrip("/")
        if path.is_dir():
            shutil.copytree(path, src / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / path.name)
    dist = work / "dist"
    # --no-build-isolation: the test venv's setuptools (pyproject's dev extra), no download.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(src)],
        check=True, cwd=work, timeout=120,
    )  # fmt: skip
    (built,) = dist.glob("lienthong-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        inside = set(archive.namelist())
    missing = sorted(tracked_package_files() - inside)
    assert not missing, f"the wheel lacks {missing[:10]} (pyproject package-data?)"
    assert not [n for n in inside if n.startswith(("tests/", "bench/"))]
    entry_points = next(n for n in inside if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "lienthong = infra.cli.main:main" in archive.read(entry_points).decode()


@pytest.mark.slow
def test_the_installed_wheel_runs_outside_the_tree(wheel: Path, tmp_path: Path) -> None:
    """A fresh virtualenv with the wheel and nothing of the source tree: --version, commands
    that need the shipped data (agency directory, topic manifests, Avro schemas, migrations)."""
    started = time.monotonic()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # Dependencies from the test's own environment (no download), through a .pth line: that
    # adds the directory only, not the editable install's finder of the source tree.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=120,
    )  # fmt: skip
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    env["LIENTHONG_HOME"] = str(tmp_path / "home")

    def run(*argv: str) -> str:
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(str(env_dir / "bin" / "lienthong"), "--version").strip() == "lienthong 0.1.0"
    where = run(str(python), "-c", "import infra, schemas; print(infra.__file__, schemas.__file__)")
    assert str(ROOT) not in where and str(site) in where
    loaded = run(str(python), "-c", _LOAD_EVERYTHING)
    counts = json.loads(loaded)
    tracked = tracked_package_files()
    assert counts["migrations"] == len([f for f in tracked if f.endswith(".sql")])
    assert counts["topics"] == len([f for f in tracked if f.startswith("schemas/topics/")])
    assert counts["agencies"] == len(list(AgencyDirectory.default())) > 10
    assert counts["schemas"] == len([f for f in tracked if f.endswith(".avsc")]) - 2  # signing/
    show = run(str(env_dir / "bin" / "lienthong"), "config", "show", "--format", "json")
    assert json.loads(show)["valid"] is True
    assert time.monotonic() - started < 60


_LOAD_EVERYTHING = """
import json
from schemas.agency import AgencyDirectory
from schemas.registry import default_registry
from schemas.topics import load_topic_manifests
from infra.services.migrate import load_migrations
import signing.tbs  # loads signing/*.avsc at import
registry = default_registry()
print(json.dumps({
    "migrations": len(load_migrations()),
    "topics": len(load_topic_manifests()),
    "agencies": len(list(AgencyDirectory.default())),
    "schemas": len(list(registry)),
}))
"""
