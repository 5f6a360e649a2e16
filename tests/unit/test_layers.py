"""The rooms and the stairs between them: layers import downward only, and no import circles.

Layers (STYLE.md): schemas <- signing <- producers / consumers <- infra (<- bench). Inside
consumers, each subsystem is a package that never imports another, and the layers above use its
public face (the package) rather than its modules. Inside infra: settings, errors, logs, context
<- services <- compose <- console <- demo, deploy <- cli. Every import counts, module-level or
inside a function: a lazy import hides a circle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("schemas", "signing", "producers", "consumers", "infra", "bench")
RANK = {"schemas": 0, "signing": 1, "producers": 2, "consumers": 2, "infra": 3, "bench": 4}
# deploy writes the services' units and manifests: beside demo, above what it describes.
INFRA_RANK = {
    "services": 1,
    "compose": 2,
    "console": 3,
    "demo": 4,
    "deploy": 4,
    "cli": 5,
}  # else: 0
CONSUMER_SUBSYSTEMS = ("router", "archive", "audit", "kpi", "inbox", "trustfeed", "witness")


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (a submodule when `from pkg import submodule`)
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`: no circle at run time, still a layering edge


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, tops: Iterable[str] = TOP) -> dict[str, Path]:
    found = {}
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inner = type_only or (isinstance(child, ast.If) and _is_type_checking(child))
        yield child, inner
        yield from _walk(child, inner)


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in a module resolved to a module of the tree (others are ignored)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node, type_only in _walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        for target in targets:
            # `import a.b.c` names a.b.c; keep the longest prefix that is one of our modules.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append(Import(name, target, node.lineno, type_only))  # type: ignore[attr-defined]
    return found


def all_imports(root: Path, tops: Iterable[str] = TOP) -> list[Import]:
    mods = modules(root, tops)
    known = set(mods)
    return [imp for name, path in mods.items() for imp in imports_of(name, path, known)]


def _subsystem(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "consumers" and len(parts) > 1 and parts[1] in CONSUMER_SUBSYSTEMS:
        return f"consumers.{parts[1]}"
    return None


def _infra_rank(module: str) -> int:
    parts = module.split(".")
    return INFRA_RANK.get(parts[1], 0) if len(parts) > 1 else 0


def layer_violations(imports: Iterable[Import]) -> list[str]:
    bad = []
    for imp in imports:
        src_top, dst_top = imp.source.split(".")[0], imp.target.split(".")[0]
        where = f"{imp.source}:{imp.line} imports {imp.target}"
        if src_top != dst_top:
            if RANK[dst_top] > RANK[src_top]:
                bad.append(f"{where}: {src_top} is below {dst_top}")
            elif RANK[dst_top] == RANK[src_top]:
                bad.append(f"{where}: {src_top} and {dst_top} never import each other")
        src_sub, dst_sub = _subsystem(imp.source), _subsystem(imp.target)
        if dst_sub and src_sub != dst_sub:
            if src_top == "consumers":
                bad.append(f"{where}: consumer subsystems never import each other")
            elif imp.target != dst_sub and not imp.source.startswith("tests"):
                bad.append(f"{where}: use the package's public face, {dst_sub}")
        if src_top == dst_top == "infra" and _infra_rank(imp.target) > _infra_rank(imp.source):
            bad.append(f"{where}: infra.{imp.source.split('.')[1]} is below it")
    return bad


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), run-time imports only."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_only:
            graph.setdefault(imp.source, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# --- the tree as it is ---------------------------------------------------------------------


def test_layers_import_downward_only() -> None:
    assert layer_violations(all_imports(ROOT)) == []


def test_no_import_circles() -> None:
    assert cycles(all_imports(ROOT)) == []


def test_the_checker_sees_the_real_edges() -> None:
    """An empty graph would pass the two tests above: these edges must be seen."""
    edges = {(i.source, i.target) for i in all_imports(ROOT)}
    assert ("infra.compose.router", "consumers.router") in edges  # from a package's face
    assert ("consumers.router.service", "consumers.router.routing") in edges
    assert ("infra.cli.main", "infra.cli.route") in edges  # `from infra.cli import route`
    assert ("infra.demo.scenario", "infra.demo.archive") in edges
    assert len(edges) > 300


def test_each_subsystem_is_a_package_with_a_public_face() -> None:
    for package in [f"consumers/{s}" for s in CONSUMER_SUBSYSTEMS] + [
        "infra/cli",
        "infra/services",
        "infra/demo",
        "infra/compose",
        "infra/console",
    ]:
        init = ROOT / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init} says nothing of its job"
        assert "Public names" in doc, f"{init} does not name its public face"
    flat = [p.name for p in (ROOT / "consumers").glob("*.py") if p.name != "__init__.py"]
    assert flat == [], f"consumers/ has modules outside a subsystem: {flat}"


# --- the checker can fail ------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for top in TOP:
        (tmp_path / top).mkdir(exist_ok=True)
        (tmp_path / top / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"schemas/a.py": "from infra.settings import X\n", "infra/settings.py": ""}, "below"),
        ({"signing/a.py": "def f():\n    import producers.b\n", "producers/b.py": ""}, "below"),
        ({"producers/a.py": "from consumers import b\n", "consumers/b.py": ""}, "each other"),
        (
            {
                "consumers/router/__init__.py": "",
                "consumers/kpi/__init__.py": "",
                "consumers/kpi/sql.py": "from consumers.router import x\n",
            },
            "consumer subsystems",
        ),
        (
            {
                "consumers/router/__init__.py": "",
                "consumers/router/service.py": "",
                "infra/run.py": "from consumers.router.service import Router\n",
            },
            "public face",
        ),
        (
            {
                "infra/compose/__init__.py": "",
                "infra/cli/__init__.py": "",
                "infra/compose/r.py": ("from infra.cli import common\n"),
                "infra/cli/common.py": "",
            },
            "below it",
        ),
    ],
)
def test_an_upward_import_is_found(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    root = _tree(tmp_path, files)
    found = layer_violations(all_imports(root))
    assert len(found) == 1 and expected in found[0], found


def test_a_circle_is_found_even_through_a_lazy_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "schemas/codec.py": "from schemas.envelope import Envelope\n",
            "schemas/envelope.py": "def encode():\n    from schemas.codec import encode\n",
            "schemas/pkg/__init__.py": "from schemas.pkg.inner import x\n",
            "schemas/pkg/inner.py": "from schemas.pkg import y\n",
            "schemas/fine.py": "from schemas.pkg.inner import x\n",
        },
    )
    assert cycles(all_imports(root)) == [
        ["schemas.codec", "schemas.envelope"],
        ["schemas.pkg", "schemas.pkg.inner"],
    ]


def test_type_only_imports_are_no_circle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "schemas/a.py": "from schemas.b import B\n",
            "schemas/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from schemas.a import A\n"
            ),
        },
    )
    assert cycles(all_imports(root)) == []
