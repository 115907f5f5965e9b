"""The package's shape: no import cycles, lazy imports only where they buy start-up time, and
notebooks that use only the public API (`citykit.__all__`)."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import grimp
import pytest

import citykit
from citykit import paths

PACKAGE = Path(citykit.__file__).parent
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
# The one deep import a notebook may make, and only inside hidden tests: the reference route.
HIDDEN_ONLY = {"citykit.lessons.reference"}
# Modules whose function-level imports keep `citykit --help` and each command's start-up short.
LAZY_ENTRY_POINTS = {"citykit.cli", "citykit.demo"}
LAZY_MARK = re.compile(r"#(?!\s*noqa\b[^#]*$)\s*\S")  # elsewhere such an import says why, in a comment


def cycles(package: str, extra_path: Path | None = None) -> list[list[str]]:
    """Import cycles among the package's modules (function-level imports included), as lists."""
    if extra_path is not None:
        sys.path.insert(0, str(extra_path))
    try:
        graph = grimp.build_graph(package, cache_dir=None)
    finally:
        if extra_path is not None:
            sys.path.remove(str(extra_path))
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # Tarjan's strongly connected components (iterative, the graph is small)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("def late():\n    from loopy import a\n")
    (pkg / "c.py").write_text("from loopy import a\n")
    assert cycles("loopy", tmp_path) == [["loopy.a", "loopy.b"]]


def test_citykit_has_no_import_cycles():
    assert cycles("citykit") == []


def function_level_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of each `citykit` import inside a function body."""
    tree = ast.parse(source)
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("citykit"):
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names if a.name.startswith("citykit")]
    return found


def test_function_level_imports_of_citykit_say_why():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        if module in LAZY_ENTRY_POINTS:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for line_no, imported in function_level_imports("\n".join(lines)):
            if not LAZY_MARK.search(lines[line_no - 1]):
                unexplained.append(f"{module}:{line_no} imports {imported} inside a function")
    assert not unexplained, "import at the top, or say in a comment why it must wait:\n" + "\n".join(unexplained)


def test_lazy_import_check_catches_an_unexplained_one():
    source = "def f():\n    from citykit.data import load\n\ndef g():\n    import citykit.paths  # lazy: reason\n"
    assert function_level_imports(source) == [(2, "citykit.data"), (5, "citykit.paths")]
    assert not LAZY_MARK.search("    from citykit.data import load  # noqa: F401")
    assert LAZY_MARK.search("    from citykit.data import load  # noqa: F401  # duckdb: not on the CLI's path")
    assert LAZY_MARK.search("    import citykit.paths  # lazy: reason")


# -- notebooks use the public API ---------------------------------------------------------------


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def private_uses(source: str) -> list[str]:
    """Deep or private citykit names a notebook cell uses (hidden tests may use the reference route)."""
    hidden = "\n".join(HIDDEN.findall(source))
    public = set(citykit.__all__)
    problems = []

    def check(text: str, allowed: set[str]) -> None:
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                problems.extend(a.name for a in node.names if a.name.startswith("citykit.") and a.name not in allowed)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "citykit":
                if node.module == "citykit":
                    problems.extend(f"citykit.{a.name}" for a in node.names if a.name not in public)
                elif not {f"{node.module}.{a.name}" for a in node.names} <= allowed:
                    problems.append(node.module)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "citykit"
                and node.attr not in public
            ):
                problems.append(f"citykit.{node.attr}")

    check(HIDDEN.sub("", source), set())
    if hidden:
        check(hidden, HIDDEN_ONLY)
    return problems


def test_the_public_api_check_catches_deep_imports():
    assert private_uses("from citykit.data import registry\n") == ["citykit.data"]
    assert private_uses("import citykit\nx = citykit.paths.course_root()\n") == ["citykit.paths"]
    assert private_uses("from citykit import load, _PUBLIC\n") == ["citykit._PUBLIC"]
    assert private_uses("from citykit.lessons import reference\n") == ["citykit.lessons"]
    hidden = "x = 1\n### BEGIN HIDDEN TESTS\nfrom citykit.lessons import reference as _r\n### END HIDDEN TESTS\n"
    assert private_uses(hidden) == []


NOTEBOOKS = [
    *sorted(paths.kit_course().glob("notebooks/*/*.ipynb")),
    paths.kit_course() / "grading" / "dashboard.ipynb",
]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_only_the_public_api(notebook):
    problems = [p for cell in code_cells(notebook) for p in private_uses(cell)]
    assert not problems, f"{notebook.name} uses names outside citykit.__all__: {sorted(set(problems))}"


def test_every_public_name_resolves():
    for name in citykit.__all__:
        assert getattr(citykit, name) is not None, name
