"""The house rules the code must keep: no import circles in the package, a core that imports no transport or
cluster framework, and small hand-written modules. Read from the source (every import statement, including the
ones inside functions) and checked in fresh interpreters."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "services" / "pynomaly"
GENERATED = (PACKAGE / "v1", PACKAGE / "oip" / "v2")  # protoc's stubs

# The core: domain types, detectors, converters, explanations, verification and the model store.
CORE = ["pynomaly.refs", "pynomaly.rows", "pynomaly.data", "pynomaly.errors", "pynomaly.algorithms", "pynomaly.export",
        "pynomaly.explain", "pynomaly.verification", "pynomaly.store", "pynomaly.store.object", "pynomaly.training"]
FRAMEWORKS = ["grpc", "ray", "kopf", "fastapi", "starlette", "uvicorn", "aiohttp", "flask"]
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "services").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if not set(GENERATED) & set(p.parents)}


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from pynomaly import training` names a module; `from pynomaly.refs import ModelRef` a name in one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A module's import of its own parent package is Python's doing (the parent runs first), not a dependency.
            if target and target != name and not name.startswith(f"{target}."):
                found.add(target)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_the_import_graph_is_read():
    """The reader sees the imports it must see (else an empty graph would pass the circle check)."""
    sources = _sources()
    modules = set(sources)
    assert "pynomaly.store.base" in _imports("pynomaly.store.local", sources["pynomaly.store.local"], modules)
    assert "pynomaly.export.deep" in _imports("pynomaly.export", sources["pynomaly.export"], modules)
    assert "pynomaly.training" in _imports("pynomaly.jobs", sources["pynomaly.jobs"], modules)
    # Function-level imports count: the deep converters import the torch exporter only when they run.
    assert "pynomaly.export.torch_module" in _imports("pynomaly.export.deep", sources["pynomaly.export.deep"],
                                                      modules)
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_has_no_import_circle():
    sources = _sources()
    modules = set(sources)
    graph = {name: _imports(name, path, modules) for name, path in sources.items()}
    assert _circles(graph) == []


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_framework(module: str):
    """In a fresh interpreter: importing a core module loads no gRPC, Ray, kopf or web framework."""
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["pynomaly_operator.resources", "pynomaly_operator.reconcile"])
def test_the_operators_decisions_import_no_framework(module: str):
    """The operator's pure half (builders, reconcile) runs without kopf or gRPC: only platform.py and handlers.py
    touch them."""
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "operators"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"


def test_the_package_face_loads_the_sdk_only_when_asked():
    code = ("import sys, pynomaly; before = 'grpc' in sys.modules; from pynomaly import Client; "
            "print(before, 'grpc' in sys.modules, Client.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "pynomaly.client"]


def test_the_server_starts_without_the_training_stack():
    """`pynomaly serve` listens in about half a second: the server process imports neither the training stack
    (scikit-learn, PyOD, numba: the worker imports those) nor onnx (imported on a thread once serving)."""
    training = ["sklearn", "pyod", "numba", "torch", "onnx", "skl2onnx", "shap"]
    code = (f"import sys, pynomaly.server.app, pynomaly.cli_serve; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({training!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hand_written_modules_stay_small():
    written = [p for p in (ROOT / "services").rglob("*.py") if not set(GENERATED) & set(p.parents)]
    for folder in ("benchmarks", "tests", "load_tests", "operators"):
        written += (ROOT / folder).rglob("*.py")
    large = {str(p.relative_to(ROOT)): n for p in written if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert large == {}
