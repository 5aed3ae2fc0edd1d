"""Imports go one way: no cycle among dotmlp's modules, and the per-sweep analysis never reaches
the cross-sweep study (dotmlp.study sits above it).

The imports are read from the source with `ast`, nothing is imported: every `import` and
`from … import` counts, at module level and inside functions alike (a function-level import runs
when the function is called, and a cycle through it is a cycle all the same). Imports under
`if TYPE_CHECKING:` are left out: they never run. Importing a module runs the packages above it
first, so `import dotmlp.study.answer` is also an edge to dotmlp.study (its __init__.py).
"""

import ast
import subprocess
import sys
from collections import deque
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "dotmlp"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def packages_above(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]


def import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, wherever it is, except in the body of `if TYPE_CHECKING:`."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and (getattr(node.test, "id", None) == "TYPE_CHECKING"
                                         or getattr(node.test, "attr", None) == "TYPE_CHECKING"):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package → the package's modules it imports (named, or above one named;
    not the packages above itself, which are already importing when it runs)."""
    paths = {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        named = set()
        for node in import_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
                continue
            base = ".".join([*here[:len(here) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module
            named |= {base, *(f"{base}.{alias.name}" for alias in node.names)}  # a name or a module
        own = {name, *packages_above(name)}
        graph[name] = {module for target in named for module in (target, *packages_above(target))
                       if module in paths and module not in own}
    return graph


def shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest chain of imports from start to goal (start → … → goal), None where none."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt in previous:
                continue
            previous[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start or len(path) == 1:
                    path.append(previous[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each module that is on one (modules already shown are skipped)."""
    found, shown = [], set()
    for module in sorted(graph):
        if module not in shown and (cycle := shortest_path(graph, module, module)):
            found.append(cycle)
            shown |= set(cycle)
    return found


def describe(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


# ---------------------------------------------------------------------------- the package
def test_no_import_cycle_among_dotmlp_s_modules():
    found = cycles(import_graph())
    assert not found, f"import cycles among dotmlp's modules:\n{describe(found)}"


def test_the_per_sweep_analysis_never_reaches_the_study():
    graph = import_graph()
    analysis = [m for m in graph if m == "dotmlp.analysis" or m.startswith("dotmlp.analysis.")]
    study = [m for m in graph if m == "dotmlp.study" or m.startswith("dotmlp.study.")]
    assert analysis and study
    reached = [path for a in analysis for s in study if (path := shortest_path(graph, a, s))]
    assert not reached, "the analysis imports the study (it is the study's input, not its user):\n" \
        + describe(reached)


def test_the_study_package_is_light_to_import():
    # sweep/run.py imports dotmlp.study (its presets) before it checks its arguments and starts Ray.
    code = ("import sys, dotmlp.study; heavy = {'numpy', 'pandas', 'torch', 'ray'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------- the walk itself
def test_the_walk_finds_a_cycle_through_a_function_level_import_but_not_type_checking(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.low import VALUE\n")
    (package / "sub" / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import high\nVALUE = 1\n")
    (package / "high.py").write_text("from .sub import low\n\ndef f():\n    from pkg import top\n")
    (package / "top.py").write_text("import pkg.high\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.sub"] == {"pkg.sub.low"} and graph["pkg.sub.low"] == set()
    assert graph["pkg.high"] == {"pkg.sub", "pkg.sub.low", "pkg.top"}
    assert describe(cycles(graph)) == "pkg.high -> pkg.top -> pkg.high"
    (package / "sub" / "low.py").write_text("def g():\n    from .. import high\n")  # a cycle now
    assert "pkg.high -> pkg.sub.low -> pkg.high" in describe(cycles(import_graph(tmp_path, "pkg")))
