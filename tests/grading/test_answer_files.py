"""Answers out of the sandbox as data, and the scorer that runs tests on them (in this process, fast).

The exporter runs here on real objects (as it runs in a learner's kernel); the reader trusts nothing
in the folder. Each module's `answers:` in course.yml is checked against its notebook: every
declared name is assigned by its answer cell, and every name a test reads is provided.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from notebook_helpers import nbg

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading import answer_files
from citykit.grading.scoring import Plan, PlanCell, Scorer, assigned_names, plan_for, unprovided_names

matplotlib.use("Agg")
LIMIT = 2**24
MODULES = sorted(p.name for p in paths.notebooks_dir().iterdir() if (p / f"{p.name}.ipynb").exists())


def round_trip(values: dict, folder: Path, spec: dict | None = None) -> dict:
    answer_files.export(values, "g", spec or dict.fromkeys(values), str(folder), LIMIT)
    records = answer_files.read_answers(folder, LIMIT)["g"]
    reader = answer_files.Folder(folder, LIMIT)
    try:
        found = {}
        for name, record in records.items():
            try:
                found[name] = answer_files.read_value(reader, record, LIMIT)
            except answer_files.Refused as why:
                found[name] = f"refused: {why}"
        return found
    finally:
        reader.close()


def test_data_comes_back_as_the_same_types_and_values(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], 3: ["x", None], ("t", 1): pd.to_datetime(["2025-01-01", None])},
                         index=pd.Index(["p", "q"], name=5))  # fmt: skip
    series = pd.Series([1.5, np.nan], index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"]),
                       name=("n", 2))  # fmt: skip
    buckets = pd.cut(pd.Series([1, 5, 20]), bins=[0, 2, 10, 30], labels=["lo", "mid", "hi"]).value_counts()
    values = {"frame": frame, "series": series, "buckets": buckets, "nan": float("nan"), "count": np.int64(7),
              "flag": True, "text": "é", "nested": [1, (2, 3), {"k": {4}}, None], "big": 2**70,
              "stamp": pd.Timestamp("2025-01-01 10:00", tz="America/Chicago"), "wait": pd.Timedelta(days=1.5),
              "day": dt.date(2025, 1, 2), "grid": np.arange(6).reshape(2, 3), "mixed": [pd.Series([1, 2]), 3]}  # fmt: skip
    back = round_trip(values, tmp_path)
    pd.testing.assert_frame_equal(back["frame"], frame)
    pd.testing.assert_series_equal(back["series"], series)
    pd.testing.assert_series_equal(back["buckets"], buckets)
    assert isinstance(back["buckets"].index, pd.CategoricalIndex)
    assert back["nan"] != back["nan"] and type(back["count"]) is np.int64 and back["count"] == 7
    assert back["nested"] == [1, (2, 3), {"k": {4}}, None] and back["big"] == 2**70 and back["text"] == "é"
    assert back["stamp"] == values["stamp"] and str(back["stamp"].tz) == "America/Chicago"
    assert back["wait"] == values["wait"] and back["day"] == values["day"] and back["flag"] is True
    assert np.array_equal(back["grid"], values["grid"])
    pd.testing.assert_series_equal(back["mixed"][0], values["mixed"][0]) and back["mixed"][1] == 3
    assert not list(tmp_path.glob("*.pkl")) and all(
        p.suffix in (".json", ".parquet", ".npy") for p in tmp_path.iterdir()
    )


def test_objects_that_are_not_data_are_refused_with_a_reason(tmp_path):
    class Sneaky:
        def __eq__(self, other):
            return True

    back = round_trip({"obj": Sneaky(), "fn": lambda x: x, "objects": np.array([object()]), "missing_is_fine": 1},
                      tmp_path, {"obj": None, "fn": None, "objects": None, "not_defined": None, "missing_is_fine": None})  # fmt: skip
    assert back["obj"].startswith("refused: a ") and "is not data" in back["obj"]
    assert "function" in back["fn"] and "Python objects" in back["objects"]
    assert "not_defined" not in back and back["missing_is_fine"] == 1


def test_plain_answers_leave_a_kernel_without_pandas_as_it_was(tmp_path):
    """A notebook that never imported pandas (numbers and text only) does not pay for importing it in
    each export cell, inside its cell timeout."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom citykit.grading import answer_files\n"
        f"answer_files.export({{'x': 3, 'y': 'a', 'z': 1.5, 'n': None, 'b': True}}, 'g', dict.fromkeys('xyznb'), "
        f"{str(tmp_path)!r}, {LIMIT})\nprint(sorted({{'pandas', 'numpy'}} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    (tmp_path / "again").mkdir()
    back = round_trip({"x": 3, "y": "a", "z": 1.5, "n": None, "b": True}, tmp_path / "again")
    assert back == {"x": 3, "y": "a", "z": 1.5, "n": None, "b": True} and type(back["b"]) is bool


class Liar:
    """Equal to everything, and lying to every conversion a test might use."""

    __hash__ = object.__hash__

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __float__(self):
        return 42.0

    def __int__(self):
        return 42

    def __index__(self):
        return 42

    def __len__(self):
        return 4

    def __bool__(self):
        return True

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


class CallableLiar(Liar):
    def __call__(self, *args, **kwargs):
        return self


def test_answers_equal_to_everything_never_reach_the_tests(tmp_path):
    """What crosses is the data of an answer, never its object: a liar is refused, and a subclass
    of a data type comes back as the plain type, whose comparisons are its own."""

    class LyingFloat(float):
        __eq__ = Liar.__eq__
        __hash__ = float.__hash__

    class LyingInt(int):
        __eq__ = Liar.__eq__
        __hash__ = int.__hash__

    class LyingText(str):
        __eq__ = Liar.__eq__
        __hash__ = str.__hash__

    class LyingList(list):
        __eq__ = Liar.__eq__

    class LyingDict(dict):
        __eq__ = Liar.__eq__

    class LyingScalar(np.float64):
        __eq__ = Liar.__eq__
        __hash__ = np.float64.__hash__

    class LyingFrame(pd.DataFrame):
        def __eq__(self, other):
            return True

        def equals(self, other):
            return True

        @property
        def _constructor(self):
            return LyingFrame

    class LyingSeries(pd.Series):
        def equals(self, other):
            return True

        @property
        def _constructor(self):
            return LyingSeries

    values = {"liar": Liar(), "float": LyingFloat(1.5), "int": LyingInt(3), "text": LyingText("abc"),
              "list": LyingList([1]), "dict": LyingDict(a=1), "scalar": LyingScalar(2.0),
              "frame": LyingFrame({"a": [1, 2]}), "series": LyingSeries([1.0, 2.0]), "in_a_list": [1, Liar()],
              "in_a_dict": {"k": Liar()}, "in_a_frame": pd.DataFrame({"a": [Liar(), Liar()]}),
              "callable": CallableLiar()}  # fmt: skip
    back = round_trip(values, tmp_path)
    refused = {name for name, value in back.items() if isinstance(value, str) and value.startswith("refused: ")}
    assert refused == {"liar", "float", "int", "list", "dict", "in_a_list", "in_a_dict", "in_a_frame", "callable"}
    # walk 18, F3: an object that can be called was said to be "a function"
    assert "is not data" in back["callable"] and "function" not in back["callable"], back["callable"]
    assert type(back["text"]) is str and back["text"] == "abc" and back["text"] != "anything else"
    assert type(back["scalar"]) is np.float64 and back["scalar"] == 2.0 and back["scalar"] != 3.0
    assert type(back["frame"]) is pd.DataFrame and not back["frame"].equals(pd.DataFrame({"a": [9, 9]}))
    assert type(back["series"]) is pd.Series and not back["series"].equals(pd.Series([9.0, 9.0]))
    pd.testing.assert_frame_equal(back["frame"], pd.DataFrame({"a": [1, 2]}))


def test_citykit_results_travel_whole_and_their_methods_are_citykits(tmp_path):
    from citykit.standards.equity import Ratio

    ratio = Ratio(0.9, 0.8, 1.0, 0.03, method="log")
    back = round_trip({"ratio": ratio}, tmp_path)
    assert back["ratio"] == ratio and type(back["ratio"]) is Ratio
    # a manifest naming a class outside citykit is refused, never imported
    record = {"kind": "dataclass", "class": "subprocess:Popen", "fields": {}}
    with pytest.raises(answer_files.Refused, match="outside citykit"):
        answer_files.read_value(answer_files.Folder(tmp_path, LIMIT), record, LIMIT)


def test_a_chart_is_redrawn_from_its_data(tmp_path):
    import matplotlib.pyplot as plt

    with plt.style.context("default"):  # another test's report style (titles on the left) must not leak in
        fig, ax = plt.subplots()
        ax.barh(["Roads", "Parks", "Water"], [30, 10, 20], color="#0072B2")
        ax.set_title("Requests by agency")
        ax.set_xlabel("Number of requests")
        ax.set_ylabel("Agency")
        back = round_trip({"fig": fig, "ax": ax}, tmp_path)
        plt.close(fig)
    drawn = back["ax"]
    assert drawn.get_title() == "Requests by agency" and drawn.get_ylabel() == "Agency"
    assert sorted(p.get_width() for p in drawn.patches) == [10, 20, 30]
    assert [t.get_text() for t in drawn.get_yticklabels()] == ["Roads", "Parks", "Water"]
    assert len(back["fig"].axes) == 1 and back["fig"].axes[0].get_xlabel() == "Number of requests"


def test_the_reader_follows_no_link_and_reads_nothing_oversized(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "0.parquet").symlink_to(secret)
    (folder / "answers-0.json").write_text(json.dumps({"grade_id": "g", "answers": {"x": {"kind": "frame",
        "file": "0.parquet", "columns": [], "column_names": [None], "index_names": [None]}}}))  # fmt: skip
    reader = answer_files.Folder(folder, LIMIT)
    with pytest.raises(OSError):
        answer_files.read_value(reader, answer_files.read_answers(folder, LIMIT)["g"]["x"], LIMIT)
    with pytest.raises(answer_files.Refused, match="unexpected file"):
        reader.read("../secret.txt")
    reader.close()
    link = tmp_path / "linked"
    link.symlink_to(folder)  # the folder itself replaced by a link: nothing is read
    assert answer_files.read_answers(link, LIMIT) == {}
    answer_files.export({"big": pd.DataFrame({"x": np.random.default_rng(1).random(500_000)})}, "h", {"big": None},
                        str(folder), 2**20)  # fmt: skip
    assert "too large" in answer_files.read_answers(folder, 2**20)["h"]["big"]["why"]


def scoring_notebook():
    cells = [
        new_code_cell("import pandas as pd\nvalues = pd.Series([3, 4, 5])", metadata=nbg("setup", locked=True)),
        new_code_cell("def summary(frame):\n    return frame.sum()\nhelper = 1", metadata=nbg("fn", solution=True)),
        new_code_cell(
            "assert summary(values) == 12, 'sums'\nassert summary(values.head(2)) == 7, 'the frame given'",
            metadata=nbg("fn-test", grade=True, locked=True, points=2),
        ),
        new_code_cell("shown = values * 2", metadata={}),
        new_code_cell("total = shown.sum()", metadata=nbg("total", solution=True)),
        new_code_cell(
            "assert total == shown.sum() == 24, 'total of shown'",
            metadata=nbg("total-test", grade=True, locked=True, points=1),
        ),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})


def test_the_scorer_runs_tests_on_exported_answers_and_the_courses_own_cells(tmp_path):
    import nbformat

    root = tmp_path / "course"
    (root / "notebooks" / "01-sums").mkdir(parents=True)
    nbformat.write(scoring_notebook(), root / "notebooks" / "01-sums" / "01-sums.ipynb")
    (root / "curriculum").mkdir()
    (root / "curriculum" / "course.yml").write_text(
        "modules:\n  - slug: sums\n    answers:\n      fn:\n        - summary: {calls: [values, values.head(2)]}\n"
        "      total: [total]\n", encoding="utf-8")  # fmt: skip
    plan = plan_for("01-sums", "01-sums", root)
    assert [c.kind for c in plan.cells] == ["locked", "solution", "test", "free", "solution", "test"]
    assert plan.answers == {"fn": {"summary": {"calls": ["values", "values.head(2)"]}}, "total": {"total": None}}
    assert unprovided_names(plan) == {}  # `shown` comes from the unlocked cell, replayed as the course wrote it
    scorer = Scorer(cell_timeout=30)
    right = tmp_path / "right"
    right.mkdir()
    learner = {"values": pd.Series([3, 4, 5]), "summary": lambda frame: frame.sum(), "total": 24}
    answer_files.export(learner, "fn", plan.answers["fn"], str(right), LIMIT)
    answer_files.export(learner, "total", plan.answers["total"], str(right), LIMIT)
    scored = scorer.score(plan, right, LIMIT)
    assert scored.outputs == {"fn-test": [], "total-test": []}
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    tampered = {"values": pd.Series([0]), "summary": lambda frame: 12, "total": 24}  # ignores its argument
    answer_files.export(tampered, "fn", plan.answers["fn"], str(wrong), LIMIT)
    scored = scorer.score(plan, wrong, LIMIT)
    error = scored.outputs["fn-test"][0]
    assert error["ename"] == "AssertionError" and error["evalue"] == "the frame given"
    assert "Cell In[" in error["traceback"][0] and "----> 2 " in error["traceback"][0]  # as feedback reads it
    assert scored.outputs["total-test"][0]["ename"] == "NameError"  # exercise 2 not exported: not answered


def test_what_one_learners_tests_change_in_the_replayed_setup_never_reaches_the_next(tmp_path):
    # the locked setup runs once per worker; every learner, the first included, starts from it unchanged
    setup = "data = [1, 2]\nframe = pd.DataFrame({'a': [1, 2]})"
    test = "assert data == [1, 2] and list(frame.columns) == ['a'], (data, list(frame.columns))\n" \
           "data.append(99)\nframe['b'] = 0"  # fmt: skip
    plan = Plan("setup", "setup", (PlanCell("locked", "imports", "import pandas as pd"),
                                   PlanCell("locked", "setup", setup), PlanCell("test", "t", test)), {}, False)  # fmt: skip
    scorer = Scorer(cell_timeout=30)
    for learner in range(3):
        folder = tmp_path / f"learner-{learner}"
        folder.mkdir()
        assert scorer.score(plan, folder, LIMIT).outputs == {"t": []}, f"learner {learner}"


def test_assigned_names_reach_into_blocks_but_not_functions():
    source = ("import numpy as np\nif x:\n    a = 1\nelse:\n    a, (b, c) = 2, (3, 4)\nfor i in range(3):\n"
              "    pass\ndef f():\n    hidden = 1\nwith open(p) as handle:\n    d = 1\n")  # fmt: skip
    assert assigned_names(source) == ["np", "a", "b", "c", "i", "f", "handle", "d"]


@pytest.mark.parametrize("module", MODULES)
def test_each_modules_answers_are_declared_assigned_and_enough_for_its_tests(module):
    import nbformat

    plan = plan_for(module, module)
    assert plan.declared, f"course.yml declares no `answers:` for {module}"
    nb = nbformat.read(paths.notebooks_dir() / module / f"{module}.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}  # fmt: skip
    for grade_id, names in plan.answers.items():
        assigned = set(assigned_names(solutions[grade_id]))
        assert set(names) <= assigned, f"{module} {grade_id}: {sorted(set(names) - assigned)} not assigned there"
    assert unprovided_names(plan) == {}, f"{module}: tests read names no cell or declared answer provides"


def test_a_bad_declaration_is_one_line(tmp_path):
    root = tmp_path / "course"
    (root / "notebooks" / "01-sums").mkdir(parents=True)
    import nbformat

    nbformat.write(scoring_notebook(), root / "notebooks" / "01-sums" / "01-sums.ipynb")
    (root / "curriculum").mkdir()
    (root / "curriculum" / "course.yml").write_text("modules:\n  - slug: sums\n    answers:\n      nope: [x]\n")
    with pytest.raises(CitykitError, match="declares answers of nope"):
        plan_for("01-sums", "01-sums", root)
    (root / "curriculum" / "course.yml").write_text(
        "modules:\n  - slug: sums\n    answers:\n      total: [not a name]\n"
    )
    with pytest.raises(CitykitError, match="is not a Python name"):
        plan_for("01-sums", "01-sums", root)
    assert os.path.exists(root / "curriculum" / "course.yml")
