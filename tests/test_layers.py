"""The import graph of src/aekit (function-level imports included): no circles, and no
import from a lower layer to a higher one, in the order DEVELOPERS.md gives (issue 25)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "aekit"

# DEVELOPERS.md, "Where things go": each package's layer; a module imports its own layer or
# lower ones. The HTML report (views/report*.py) sits above apps/, the figures below it.
LAYERS = {
    "errors": 0,
    "functional": 1,
    "scratch": 1,
    "data": 1,
    "nn": 2,
    "io": 3,  # files and formats: imports nothing of training/ (its writer callback is there)
    "training": 4,
    "backends": 4,
    "views": 5,
    "apps": 6,
    "sklearn": 6,
    "report": 7,
    "cli": 8,
    "__main__": 9,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ("aekit", *path.relative_to(SRC).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def _layer(name: str) -> int:
    parts = name.split(".")
    if len(parts) == 1:
        return 0  # aekit/__init__.py: the version and a lazy table of names
    if parts[1] == "views" and len(parts) > 2 and parts[2].startswith("report"):
        return LAYERS["report"]
    return LAYERS[parts[1]]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_package_has_a_layer():
    assert {n.split(".")[1] for n in _graph() if "." in n} <= set(LAYERS)


def test_no_import_climbs_a_layer():
    graph = _graph()
    up = [
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if t != "aekit" and _layer(t) > _layer(m)
    ]
    assert up == [], "imports from a lower layer to a higher one: " + "; ".join(sorted(up))


def test_the_import_graph_has_no_circle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []
    circles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if t == "aekit":
                continue  # the package's lazy table imports nothing when a module loads
            if state.get(t) == 1:
                circles.append(" -> ".join([*path[path.index(t) :], t]))
            elif t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert circles == [], "import circles: " + "; ".join(circles)


def test_the_checker_sees_a_function_level_circle(tmp_path, monkeypatch):
    """The test above can fail: two modules importing each other inside functions are found."""
    pkg = tmp_path / "aekit"
    (pkg / "apps").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "apps" / "__init__.py").write_text("")
    (pkg / "apps" / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "apps" / "b.py").write_text("def g():\n    from . import a\n")
    (pkg / "data").mkdir()
    (pkg / "data" / "__init__.py").write_text("from ..apps import a\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    graph = _graph()
    assert "aekit.apps.b" in graph["aekit.apps.a"] and "aekit.apps.a" in graph["aekit.apps.b"]
    assert "aekit.apps.a" in graph["aekit.data"] and _layer("aekit.apps.a") > _layer("aekit.data")
