"""The production-run contract: what of a lesson notebook runs as a report.

Before a report runs, every lesson-only cell goes: nbgrader test cells (graded, not a solution),
manually graded answers (graded solutions), nbgrader task cells, and cells tagged `training`.
What remains (parameters, setup, the solution cells that do the analysis, narrative for readers)
must run on any dataset and any valid parameters. nbgrader's metadata is the one marking of tests
and answers; the `training` tag marks only lesson cells nbgrader does not know about.

A cell that needs a table an imported city may lack (population, program records) names it in
`metadata.citykit.requires`. When the run's dataset lacks it, the cell goes too, and one short note
in its place tells the reader what was left out and how to add the data, so a report on a plain
311 export says so plainly instead of failing or inventing a denominator.

Written as an nbconvert preprocessor, like nbgrader's own ClearSolutions / ClearHiddenTests, so it
can sit in any nbconvert pipeline; `apply_contract` is the plain-function form.
"""

from __future__ import annotations

import copy

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from traitlets import List, Unicode

from citykit.data.registry import how_to_add

TRAINING_TAG = "training"
SOURCE_INDEX_KEY = "source_index"  # kept cells remember their index in the source notebook
REQUIRES_KEY = "requires"  # metadata.citykit.requires: tables the cell needs


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def required_tables(cell: NotebookNode) -> list[str]:
    """The tables a cell declares it needs (`metadata.citykit.requires`)."""
    return list(cell.get("metadata", {}).get("citykit", {}).get(REQUIRES_KEY, []))


def lesson_only_reason(cell: NotebookNode, training_tag: str = TRAINING_TAG) -> str | None:
    """Why a cell is removed before a production run, or None when it stays."""
    meta = _nbgrader(cell)
    grade, solution = bool(meta.get("grade")), bool(meta.get("solution"))
    if meta.get("task"):
        return "nbgrader task"
    if grade and not solution:
        return "nbgrader test"
    if grade and solution:
        return "manually graded answer"
    if training_tag in cell.get("metadata", {}).get("tags", []):
        return f"tagged {training_tag!r}"
    return None


class ProductionContract(Preprocessor):
    """Remove lesson-only cells, and cells needing tables the dataset lacks (one note in their place);
    record each kept cell's source index in `metadata.citykit`."""

    training_tag = Unicode(TRAINING_TAG, help="Tag marking lesson-only cells nbgrader does not know.").tag(config=True)

    available_tables = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="Tables the run's dataset holds; cells requiring others are left out (None: keep all).",
    ).tag(config=True)
    dataset = Unicode("", help="The run's dataset, named in the notes on what was left out.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        kept, removed, left_out = [], [], []
        noted: list[str] = []  # missing tables already explained since the last kept cell
        for index, cell in enumerate(nb.cells):
            reason = lesson_only_reason(cell, self.training_tag)
            if reason is not None:
                removed.append((index, reason))
                continue
            missing = [t for t in required_tables(cell) if not self._holds(t)]
            if missing:
                removed.append((index, "needs " + ", ".join(missing)))
                unexplained = [t for t in missing if t not in noted]
                if unexplained:
                    kept.append(self._left_out_note(unexplained))
                    left_out.append(unexplained)
                    noted += unexplained
                continue
            noted = []
            cell.metadata.setdefault("citykit", {})[SOURCE_INDEX_KEY] = index
            kept.append(cell)
        nb.cells = kept
        resources.setdefault("citykit", {}).update(removed_cells=removed, left_out=left_out)
        return nb, resources

    def _holds(self, table: str) -> bool:
        return self.available_tables is None or table in self.available_tables

    def _left_out_note(self, missing: list[str]) -> NotebookNode:
        lines = []
        for table in missing:
            holds, command = how_to_add(table, self.dataset or "NAME")
            how = f" Add it with `{command}` and run the report again." if command else ""
            lines.append(
                f"**Left out here:** this part needs {holds} (the `{table}` table), which dataset "
                f"`{self.dataset}` does not have.{how}"
            )
        return new_markdown_cell("> " + "\n>\n> ".join(lines), metadata={"citykit": {"left_out": missing}})


def apply_contract(nb: NotebookNode, available_tables: list[str] | None = None, dataset: str = "") -> NotebookNode:
    """A copy of `nb` with the lesson-only cells removed (the input is left untouched).

    available_tables: the tables of the run's dataset; cells requiring any other are left out,
    with a note. None keeps every cell.
    """
    contract = ProductionContract(available_tables=available_tables, dataset=dataset)
    result, _ = contract.preprocess(copy.deepcopy(nb), {})
    return result


def source_index(cell: NotebookNode) -> int | None:
    """The index a kept cell had in the source notebook (None for cells papermill injected)."""
    return cell.get("metadata", {}).get("citykit", {}).get(SOURCE_INDEX_KEY)
