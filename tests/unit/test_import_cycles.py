"""No import cycle among the api (``chalicelib``), the core (``timmybot``) and the voice task.

Every import statement counts, read from the source (nothing is imported): module-level ones,
function-level ones (deferred for cold-start cost, but still a dependency each time the function
runs) and those under ``if TYPE_CHECKING:`` (no run-time effect, but two modules that name each
other's types are one module in two files; a cycle there is how the bootstrap and the worker came
to know each other). Only the implicit import of a parent package (``import a.b`` runs
``a/__init__``) is left out: Python handles a partly initialised parent, and counting it would make
every package that re-exports a submodule look like a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    (ROOT / "chalice_app", "chalicelib"),
    (ROOT / "layers" / "core" / "python", "timmybot"),
    (ROOT, "voice_task"),
)


def modules(packages: Iterable[tuple[Path, str]]) -> dict[str, Path]:
    """Dotted module name → source file, for every module of ``packages``."""
    found: dict[str, Path] = {}
    for base, package in packages:
        for path in sorted((base / package).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement anywhere in the module (functions, classes, TYPE_CHECKING blocks)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def imported_by(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The known modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub`` when that
    is a module; anything outside ``known`` is ignored)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()

    def add(dotted: str) -> None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != name:
            targets.add(dotted)

    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
            continue
        if node.level:
            package = name.split(".") if is_package else name.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            add(submodule if submodule in known else base)
    return targets


def import_graph(packages: Iterable[tuple[Path, str]]) -> dict[str, set[str]]:
    known = modules(packages)
    return {name: imported_by(name, path, known) for name, path in known.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle_among_the_api_the_core_and_the_voice_task() -> None:
    graph = import_graph(PACKAGES)

    assert len(graph) > 100, "the walk found the packages"  # a wrong root would pass vacuously
    assert "chalicelib.services" in graph["chalicelib.worker"], "TYPE_CHECKING imports are read"
    assert cycles(graph) == []


def test_a_cycle_through_a_function_level_or_type_checking_import_is_found(tmp_path: Path) -> None:
    # GIVEN a package where a imports b inside a function, and b imports a only for type checking
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def run() -> None:\n    from pkg import b\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import run\n")
    (package / "c.py").write_text("from . import a\nimport pkg.b\n")

    # WHEN the graph is read
    graph = import_graph([(tmp_path, "pkg")])

    # THEN a and b are one cycle, and c (which only imports them) is not part of it
    assert graph["pkg.c"] == {"pkg.a", "pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
