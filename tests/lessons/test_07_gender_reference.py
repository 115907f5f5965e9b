"""Module 07's comparisons by gender (issue 20, after gender tables keep zero rows): when no decided applicant is
recorded as the standard's reference gender, its row is a published 0 and the lesson says in a sentence that
genders are not compared, instead of a table of empty ratios. The notebook's comparison cell runs here on
hand-built applicants (one kernel-free exec; the whole report runs in test_modules.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import yaml

import citykit
from citykit import CitykitError, equity, paths

NOTEBOOK = "notebooks/07-disaggregation/07-disaggregation.ipynb"
RACES = ["aian", "asian", "black", "hispanic", "mena", "nhpi", "white"]


def _cell() -> str:
    nb = json.loads((paths.course_root() / NOTEBOOK).read_text(encoding="utf-8"))
    [source] = ["".join(c["source"]) for c in nb["cells"] if "def compare(" in "".join(c["source"])]
    return source


def _run(genders: dict[str, tuple[int, int]]) -> list:
    """What the cell displays for decided applicants of these genders (gender -> (people, approved)), every one
    White alone and English-speaking (so race is one group and language is not compared)."""
    rows = [{"gender": g, "approved": i < a} for g, (n, a) in genders.items() for i in range(n)]
    decided = pd.DataFrame(rows).assign(**{f"race_{c}": c == "white" for c in RACES}, race_declined=False,
                                        race_not_reported=False, language="English")  # fmt: skip
    decided["outcome"] = np.where(decided["approved"], "Approved", "Denied")
    shown: list = []
    standard = citykit.disaggregation_standard()
    labels = standard.race_labels
    namespace = {
        "pd": pd, "np": np, "citykit": citykit, "equity": equity, "CitykitError": CitykitError,
        "Markdown": lambda text: SimpleNamespace(markdown=text), "display": shown.append,
        "DATASET": SimpleNamespace(has=lambda table: False), "dataset": "hand-built", "STANDARD": standard,
        "LABELS": labels, "REFERENCE": labels[standard.disparity.reference_group["race_ethnicity"]],
        "GROUP": labels["hispanic"], "decided": decided,
    }  # fmt: skip
    exec(compile(_cell(), NOTEBOOK, "exec"), namespace)
    return shown


def _reference() -> str:
    path = paths.course_root() / "curriculum" / "standards" / "disaggregation.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["disparity"]["reference_group"]["gender"]


def test_no_one_in_the_reference_gender_is_said_in_a_sentence_not_a_table_of_empty_ratios():
    man = _reference()
    assert man == "Man"
    shown = _run({"Woman": (40, 30), "Nonbinary": (30, 20)})
    sentences = [s.markdown for s in shown if hasattr(s, "markdown")]
    [said] = [s for s in sentences if "by gender" in s]
    assert said.startswith("*No comparison by gender") and f"no decided applicant is recorded as {man}" in said, said
    comparisons = [s for s in shown if "against" in str(getattr(s, "title", ""))]
    assert not [s for s in comparisons if s.by == ["gender"]], comparisons
    [gender_table] = [s for s in shown if getattr(s, "by", None) == ["gender"]]  # the counts, Man a row of 0
    counts = gender_table.data.set_index("gender")["n"]
    assert counts[man] == 0 and counts["Woman"] == 40


def test_with_people_in_the_reference_gender_the_genders_are_compared():
    shown = _run({"Woman": (60, 45), "Man": (50, 25), "Nonbinary": (30, 15)})
    assert not [s for s in shown if "by gender" in str(getattr(s, "markdown", ""))]
    [comparison] = [s for s in shown if getattr(s, "by", None) == ["gender"] and "against" in s.title]
    ratios = comparison.data.set_index("gender")["rate_ratio"]
    assert ratios["Woman"] == (45 / 60) / (25 / 50)  # 1.5, by hand
