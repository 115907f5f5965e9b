"""The production-run contract: what of a lesson notebook runs as a report.

Before a report runs, every lesson-only cell goes: nbgrader test cells (graded, not a solution),
manually graded answers (graded solutions), nbgrader task cells, and cells tagged `training`.
What remains (parameters, setup, the solution cells that do the analysis, narrative for readers)
must run on any dataset and any valid parameters. nbgrader's metadata is the one marking of tests
and answers; the `training` tag marks only lesson cells nbgrader does not know about.

Written as an nbconvert preprocessor, like nbgrader's own ClearSolutions / ClearHiddenTests, so it
can sit in any nbconvert pipeline; `apply_contract` is the plain-function form.
"""

from __future__ import annotations

import copy

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Unicode

TRAINING_TAG = "training"
SOURCE_INDEX_KEY = "source_index"  # kept cells remember their index in the source notebook


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


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
    """Remove lesson-only cells; record each kept cell's source index in `metadata.citykit`."""

    training_tag = Unicode(TRAINING_TAG, help="Tag marking lesson-only cells nbgrader does not know.").tag(
        config=True
    )

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        kept, removed = [], []
        for index, cell in enumerate(nb.cells):
            reason = lesson_only_reason(cell, self.training_tag)
            if reason is None:
                cell.metadata.setdefault("citykit", {})[SOURCE_INDEX_KEY] = index
                kept.append(cell)
            else:
                removed.append((index, reason))
        nb.cells = kept
        resources.setdefault("citykit", {})["removed_cells"] = removed
        return nb, resources


def apply_contract(nb: NotebookNode) -> NotebookNode:
    """A copy of `nb` with the lesson-only cells removed (the input is left untouched)."""
    result, _ = ProductionContract().preprocess(copy.deepcopy(nb), {})
    return result


def source_index(cell: NotebookNode) -> int | None:
    """The index a kept cell had in the source notebook (None for cells papermill injected)."""
    return cell.get("metadata", {}).get("citykit", {}).get(SOURCE_INDEX_KEY)
