"""The package's shape: no import cycle, no import from a lower layer to a higher one, a light CLI.

Every ``import``/``from ... import`` of a robustmip module anywhere in a module's source (top level
or inside a function) counts as an edge. Modules are ranked by the layer they belong to (the map in
README's "Layout"); an edge may go to the same or a lower rank only, and the edges between modules
must form no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustmip"

RANKS: dict[str, int] = {
    "errors": 0, "deadline": 0,
    "layers": 1,
    "network": 2,
    "spec": 3, "data": 3, "models": 3, "report": 3, "parallel": 3,
    "io": 4, "solvers": 4,
    "bounds": 5,
    "milp": 6,
    "attacks": 7,
    "training": 8,
    "bab": 9, "params": 9, "pruning": 9, "sensitivity": 9, "certify": 9,
    "vnncomp": 10, "studies": 10,
    "cli": 11, "__main__": 12,
}
"""Layer of each top-level module or subpackage of robustmip (``robustmip/__init__.py`` is lazy and exempt)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "robustmip")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "robustmip":
                found.add(module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    return {name: {t for t in (resolve(i) for i in _imports(path)) if t and t != name}
            for name, path in modules.items()}


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return None if len(parts) < 2 else RANKS.get(parts[1])


def test_every_module_has_a_layer():
    unranked = sorted(m for m in _graph() if m != "robustmip" and _rank(m) is None)
    assert not unranked, f"add these to RANKS (and to README's layout): {unranked}"


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{src} -> {dst}" for src, targets in _graph().items() if src != "robustmip"
                    for dst in targets if dst != "robustmip" and _rank(dst) > _rank(src))
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = {m: t - {"robustmip"} for m, t in _graph().items() if m != "robustmip"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_layer_check_catches_a_violation(tmp_path, monkeypatch):
    """The checks above would fail on an upward import (so they are not vacuous)."""
    graph = _graph()
    graph["robustmip.network"] = graph["robustmip.network"] | {"robustmip.milp.verify"}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: graph)
    with pytest.raises(AssertionError, match="robustmip.network -> robustmip.milp.verify"):
        test_no_import_goes_up_a_layer()


def test_cli_help_imports_no_heavy_library():
    """``robustmip --help`` must answer at once: building the parser imports no torch, Pyomo or solver."""
    code = ("import sys, robustmip.cli as c; c.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'pyomo', 'highspy', 'onnx', 'gurobipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
