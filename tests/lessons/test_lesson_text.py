"""Lessons a novice can follow: every glossary link in a notebook leads to a term of the glossary, and
in modules 00-07 every function or method a model solution calls is shown before the exercise (in this
module's text or code above it, or in an earlier module)."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from citykit import paths
from citykit.lessons.course import load_course
from citykit.lessons.mistakes import SOLUTION, nbgrader

MODULES = load_course()
GLOSSARY = paths.curriculum_dir() / "guides" / "glossary.md"
# a learner's module folder sits beside curriculum/ in their workspace (grading/workspaces/ID/)
LINK = re.compile(r"\]\((\.\./curriculum/guides/glossary\.md)(?:#([^)\s]*))?\)")
INTRODUCED_FIRST = [m.folder_name for m in MODULES if m.number <= 7]  # 08-14 not yet checked
LINKED = INTRODUCED_FIRST[:4]  # modules 00-03 link at least eight glossary terms


def _anchors() -> set[str]:
    return set(re.findall(r'<a id="([^"]+)"></a>', GLOSSARY.read_text(encoding="utf-8")))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.folder_name)
def test_glossary_links_lead_to_a_term(module):
    nb = nbformat.read(module.notebook, as_version=4)
    anchors = _anchors()
    links = [m.groups() for c in nb.cells if c.cell_type == "markdown" for m in LINK.finditer(c.source)]
    assert all(anchor in anchors for _, anchor in links if anchor), [a for _, a in links if a and a not in anchors]
    bad = re.findall(r"\]\(([^)]*glossary\.md[^)]*)\)", "\n".join(c.source for c in nb.cells))
    assert all(LINK.match(f"]({target})") for target in bad), (
        f"{module.folder_name}: link as ../curriculum/guides/glossary.md#term, not {bad}"
    )
    if module.folder_name in LINKED:
        assert len({a for _, a in links}) >= 8, f"{module.folder_name}: link terms to the glossary where first used"


def _calls(code: str) -> set[str]:
    """Names of the functions and methods a piece of code calls or reads (`.value_counts`, `len`, `.dt`)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            names.add(node.func.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def _shown(text: str) -> set[str]:
    """Names shown in a text or code: `name(` or `.name` (a bare `name` in backticks does not count)."""
    return set(re.findall(r"\.?([A-Za-z_]\w*)\s*\(", text)) | set(re.findall(r"\.([A-Za-z_]\w*)", text))


def test_every_tool_a_solution_uses_is_shown_before_its_exercise():
    seen: set[str] = set()
    for module in INTRODUCED_FIRST:
        nb = nbformat.read(paths.notebooks_dir() / module / f"{module}.ipynb", as_version=4)
        for cell in nb.cells:
            grading = nbgrader(cell)
            if cell.cell_type == "code" and grading.get("solution") and not grading.get("grade"):
                body = SOLUTION.search(cell.source)[2]
                unseen = {name for name in _calls(body) if name not in seen} - {"columns"}
                assert not unseen, (
                    f"{module} `{grading['grade_id']}` uses {sorted(unseen)} before the lesson shows them"
                )
                seen |= _shown(body)
            elif not grading.get("grade"):  # tests and written answers teach nothing
                seen |= _shown(cell.source)
