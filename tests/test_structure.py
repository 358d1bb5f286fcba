"""The package's import structure: no import circles, search/denoise below evaluate/registry, no private imports.

Read from the source with ``ast`` (nothing is imported), counting imports inside
functions too: a function-level import that dodges a circle is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE_ROOT = REPO / "pyscripts"
PACKAGE = "atacdenoise"
# Layers that search/ and denoise/ must not import from (data flows one way; shared helpers move down).
LOWER_LAYERS, UPPER_LAYERS = ("search", "denoise"), ("evaluate", "registry")
PYTHON_TREES = ("pyscripts", "tests", "benchmarks", "bin")


def module_files() -> dict[str, tuple[Path, bool]]:
    """``{dotted module name: (file, is_package)}`` of every module of the package."""
    modules = {}
    for path in sorted((PACKAGE_ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported_modules(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known) -> list[str]:
    """The package modules an import statement loads: ``from pkg import sub`` loads ``pkg.sub`` (a module)
    or ``pkg`` (for a name defined there)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    found = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            found.append(submodule)
        elif base in known:
            found.append(base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(m for m in imported_modules(name, is_package, node, modules) if m != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search with colours)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_reports_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_count_as_edges(tmp_path):
    source = "def f():\n    from atacdenoise.tracks.store import open_store\n"
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom))
    known = {"atacdenoise.tracks.store", "atacdenoise.tracks"}
    assert imported_modules("atacdenoise.tracks.binning", False, node, known) == ["atacdenoise.tracks.store"]


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_search_and_denoise_do_not_import_evaluate_or_registry():
    upward = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                    for target in targets
                    if module.split(".")[1] in LOWER_LAYERS and target.split(".")[1:2] and
                    target.split(".")[1] in UPPER_LAYERS)
    assert not upward, "; ".join(upward)


def python_files() -> list[Path]:
    files = [p for tree in PYTHON_TREES for p in (REPO / tree).rglob("*.py")]
    files += [p for p in (REPO / "bin").iterdir() if p.is_file() and p.read_bytes().startswith(b"#!/usr/bin/env python")]
    return files


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {', '.join(private)} "
                                     f"from {node.module}")
    assert not offenders, "; ".join(offenders)


# The one stderr print a library module keeps: the pipeline's live status line (a progress display on a
# terminal, like tqdm's bars), not a diagnostic.
STDERR_PRINT_ALLOWED = {("pipeline.py", "_run_watched")}


class _StderrPrints(ast.NodeVisitor):
    """``(line, innermost function)`` of every ``print(..., file=sys.stderr)``."""

    def __init__(self):
        self.functions, self.found = ["<module>"], []

    def visit_FunctionDef(self, node):
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    def visit_Call(self, node):
        if getattr(node.func, "id", None) == "print" and any(
                k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in node.keywords):
            self.found.append((node.lineno, self.functions[-1]))
        self.generic_visit(node)


def test_library_modules_log_diagnostics_instead_of_printing_to_stderr():
    offenders = []
    for path in sorted((PACKAGE_ROOT / PACKAGE).rglob("*.py")):
        if path.name.startswith("cli"):  # the command line writes its results and sets up logging
            continue
        prints = _StderrPrints()
        prints.visit(ast.parse(path.read_text(), filename=str(path)))
        offenders += [f"{path.relative_to(REPO)}:{line} ({function})" for line, function in prints.found
                      if (path.name, function) not in STDERR_PRINT_ALLOWED]
    assert not offenders, "print to stderr instead of logging: " + ", ".join(offenders)
