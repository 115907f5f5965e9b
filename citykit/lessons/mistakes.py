"""The mistake catalogues: for each exercise, the wrong answers learners plausibly write and the advice
its visible check must give, and other correct ways that must pass (curriculum/mistakes/NN-slug.yml).

One YAML file per module, keyed by the grade_id of each exercise's solution cell (the cell a learner
writes in)::

    # Catalogued mistakes of module NN: for each exercise (the grade_id of its solution cell), plausible wrong answers
    exercises:
      <grade_id of the solution cell>:
        mistakes:
          - name: wrong-denominator        # short id, unique within the exercise
            why: shares over all requests instead of closed ones   # what a learner did
            code: |                        # replaces the body of the solution cell
              share_within_sla = ...
            advice: "denominator"          # words the failing visible check's message must contain
        alternatives:                      # other correct ways: the visible check must pass
          - name: query-method
            code: |
              ...

A variant's code replaces what lies between `### BEGIN SOLUTION` and `### END SOLUTION`. It may
rebind any name, but must not change a shared table in place (`requests.drop(..., inplace=True)`):
the harness (tests/lessons/test_mistakes.py) restores the names a variant rebinds, not the objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from citykit import paths
from citykit.errors import CitykitError

MIN_MISTAKES = 3  # per autograded code exercise
SOLUTION = re.compile(r"(### BEGIN SOLUTION\n)(.*?)(### END SOLUTION)", re.S)


@dataclass(frozen=True)
class Variant:
    name: str
    code: str
    why: str = ""
    advice: str = ""  # empty for an alternative (a correct answer)


@dataclass(frozen=True)
class Exercise:
    grade_id: str
    mistakes: tuple[Variant, ...] = ()
    alternatives: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    module: str  # folder name, NN-slug
    path: Path
    exercises: dict[str, Exercise] = field(default_factory=dict)

    @property
    def n_mistakes(self) -> int:
        return sum(len(e.mistakes) for e in self.exercises.values())

    @property
    def n_alternatives(self) -> int:
        return sum(len(e.alternatives) for e in self.exercises.values())


def catalogue_dir() -> Path:
    return paths.curriculum_dir() / "mistakes"


def catalogue_path(module: str) -> Path:
    return catalogue_dir() / f"{module}.yml"


def catalogued_modules() -> list[str]:
    """Folder names (NN-slug) of the modules that have a catalogue, in order."""
    folder = catalogue_dir()
    return sorted(p.stem for p in folder.glob("[0-9][0-9]-*.yml")) if folder.is_dir() else []


def _variants(raw: object, where: str, *, mistakes: bool) -> tuple[Variant, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CitykitError(f"{where}: expected a list of entries with name and code")
    found, names = [], set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise CitykitError(f"{where}[{index}]: expected an entry with name and code")
        needed = ("name", "code", "why", "advice") if mistakes else ("name", "code")
        missing = [key for key in needed if not str(entry.get(key) or "").strip()]
        if missing:
            raise CitykitError(f"{where}[{index}] ({entry.get('name', '?')}): missing {', '.join(missing)}")
        unknown = set(entry) - {"name", "code", "why", "advice"}
        if unknown:
            raise CitykitError(f"{where}[{index}] ({entry['name']}): unknown key(s) {', '.join(sorted(unknown))}")
        if entry["name"] in names:
            raise CitykitError(f"{where}: two entries are named {entry['name']!r}")
        names.add(entry["name"])
        found.append(
            Variant(str(entry["name"]), str(entry["code"]), str(entry.get("why", "")), str(entry.get("advice", "")))
        )
    return tuple(found)


def load_catalogue(module: str, path: Path | None = None) -> Catalogue:
    """The catalogue of `module` (a folder name such as `01-loading-data`), its entries checked for shape."""
    path = path or catalogue_path(module)
    if not path.exists():
        raise CitykitError(f"no mistake catalogue for {module} ({path})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise CitykitError(f"{path.name} is not valid YAML{line}: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("exercises"), dict):
        raise CitykitError(f"{path.name}: expected a mapping 'exercises' of solution grade_ids")
    exercises = {}
    for grade_id, entry in raw["exercises"].items():
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"mistakes", "alternatives"}:
            raise CitykitError(f"{path.name}: {grade_id} takes only 'mistakes' and 'alternatives'")
        where = f"{path.name}: {grade_id}"
        exercises[str(grade_id)] = Exercise(
            str(grade_id),
            _variants(entry.get("mistakes"), f"{where}.mistakes", mistakes=True),
            _variants(entry.get("alternatives"), f"{where}.alternatives", mistakes=False),
        )
    return Catalogue(module, path, exercises)


def nbgrader(cell: dict) -> dict:
    """A cell's nbgrader metadata (empty for a cell nbgrader does not grade)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def code_exercises(nb) -> list[str]:
    """grade_ids of the cells a learner writes code in (nbgrader solution cells that are not graded
    themselves: their test cells are), in notebook order."""
    return [
        nbgrader(c)["grade_id"]
        for c in nb["cells"]
        if c["cell_type"] == "code" and nbgrader(c).get("solution") and not nbgrader(c).get("grade")
    ]


def problems(catalogue: Catalogue, nb) -> list[str]:
    """What is wrong with a catalogue for the (source) notebook `nb`: unknown grade_ids, grade_ids that
    are not code exercises (written answers are graded by hand and exempt), and code exercises with
    fewer than MIN_MISTAKES mistakes."""
    exercises = code_exercises(nb)
    every_id = {nbgrader(c).get("grade_id") for c in nb["cells"]} - {None}
    found = []
    for grade_id, exercise in catalogue.exercises.items():
        if grade_id not in every_id:
            found.append(f"{grade_id}: no cell of {catalogue.module} has this grade_id")
        elif grade_id not in exercises:
            found.append(f"{grade_id}: not a code exercise's solution cell (key an exercise by its solution cell)")
        for variant in (*exercise.mistakes, *exercise.alternatives):
            if "### BEGIN SOLUTION" in variant.code or "### END SOLUTION" in variant.code:
                found.append(f"{grade_id}/{variant.name}: give only the code between the solution markers")
    for grade_id in exercises:
        have = len(catalogue.exercises[grade_id].mistakes) if grade_id in catalogue.exercises else 0
        if have < MIN_MISTAKES:
            found.append(f"{grade_id}: {have} catalogued mistake(s); every code exercise needs {MIN_MISTAKES}")
    return found


def with_body(source: str, code: str) -> str:
    """A solution cell's source with the code between its solution markers replaced by `code`."""
    if not SOLUTION.search(source):
        raise CitykitError("the solution cell has no ### BEGIN SOLUTION / ### END SOLUTION markers")
    body = code if code.endswith("\n") else code + "\n"
    return SOLUTION.sub(lambda m: m[1] + body + m[3], source, count=1)
