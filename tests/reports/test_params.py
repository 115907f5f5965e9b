"""Report parameters: types, defaults, values checked against the dataset, before any kernel starts."""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import nbformat
import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

from citykit.cli import main
from citykit.errors import CitykitError
from citykit.lessons.course import find_module
from citykit.reports.params import (
    ParamSpec,
    allowed_values,
    module_parameters,
    notebook_parameters,
    parameters_slug,
    validate,
)

MODULE = "time-to-close"


@pytest.fixture(scope="module")
def specs():
    return module_parameters(find_module(MODULE))


@pytest.fixture(scope="module")
def hoods(riverton) -> list[str]:
    path = riverton.table_path("neighborhoods").as_posix()
    return [r[0] for r in duckdb.execute(f"SELECT neighborhood FROM read_parquet('{path}') ORDER BY 1").fetchall()]


def test_defaults_come_from_course_yml(specs, riverton):
    assert [s.name for s in specs] == ["dataset", "period", "neighborhood"]
    assert validate(specs, {}) == {"dataset": "riverton", "period": "2025", "neighborhood": None}


def test_a_neighborhood_slug_or_case_variant_becomes_its_name(specs, hoods):
    two_words = next(h for h in hoods if " " in h)
    slug = two_words.lower().replace(" ", "-")
    assert validate(specs, {"neighborhood": slug})["neighborhood"] == two_words
    assert validate(specs, {"neighborhood": two_words.upper()})["neighborhood"] == two_words
    assert validate(specs, {"neighborhood": ""})["neighborhood"] is None  # empty = citywide


def test_unknown_neighborhood_names_the_choices(specs, hoods):
    with pytest.raises(
        CitykitError, match=rf"unknown neighborhood 'Atlantis' in dataset 'riverton'; choose from: {hoods[0]}"
    ):
        validate(specs, {"neighborhood": "Atlantis"})


def test_period_must_overlap_the_data(specs, riverton):
    path = riverton.table_path("service_requests").as_posix()
    first, last = duckdb.execute(f"SELECT min(created_at), max(created_at) FROM read_parquet('{path}')").fetchone()
    before = str(first.year - 1)
    with pytest.raises(
        CitykitError,
        match=rf"period {before} is outside dataset 'riverton', which covers {first:%Y-%m-%d} to {last:%Y-%m-%d}",
    ):
        validate(specs, {"period": before})
    assert validate(specs, {"period": f"{last.year}-q4"})["period"] == f"{last.year}-Q4"
    with pytest.raises(CitykitError, match="not understood"):
        validate(specs, {"period": "last month"})


def test_unknown_parameter_and_dataset(specs):
    with pytest.raises(
        CitykitError, match=r"unknown parameter 'colour' for report; its parameters: dataset, period, neighborhood"
    ):
        validate(specs, {"colour": "red"})
    with pytest.raises(CitykitError, match="unknown dataset 'atlantis'"):
        validate(specs, {"dataset": "atlantis"})


def test_scalar_types_and_choices():
    specs = [
        ParamSpec("top", "int", 10),
        ParamSpec("share", "float", 0.5),
        ParamSpec("draft", "bool", False),
        ParamSpec("palette", "str", "colorblind", choices=("colorblind", "muted")),
    ]
    assert validate(specs, {"top": "12", "share": "0.25", "draft": "yes"}) == {
        "top": 12, "share": 0.25, "draft": True, "palette": "colorblind",
    }  # fmt: skip
    for given, message in [
        ({"top": "twelve"}, "parameter 'top' must be a whole number, not 'twelve'"),
        ({"share": "half"}, "parameter 'share' must be a number"),
        ({"draft": "maybe"}, "parameter 'draft' must be true or false"),
        ({"palette": "rainbow"}, "parameter 'palette' cannot be 'rainbow'; choose one of: colorblind, muted"),
        ({"top": ""}, "parameter 'top' must be a whole number, not ''"),
    ]:
        with pytest.raises(CitykitError, match=message):
            validate(specs, given)


def test_parameters_of_a_notebook_given_by_path(tmp_path):
    nb = new_notebook(cells=[new_code_cell(
        'dataset = "riverton"\nneighborhood = None\ntop = 5  # how many types\nshare = 0.9\nlabel = "x"\nstrict = True',
        metadata={"tags": ["parameters"]},
    )])  # fmt: skip
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    found = {s.name: (s.type, s.default) for s in notebook_parameters(path)}
    assert found == {
        "dataset": ("dataset", "riverton"), "neighborhood": ("neighborhood", None), "top": ("int", 5),
        "share": ("float", 0.9), "label": ("str", "x"), "strict": ("bool", True),
    }  # fmt: skip


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def test_slug_names_only_what_differs_from_the_defaults(specs):
    values = {"dataset": "riverton", "period": "2025-Q4", "neighborhood": "Harbor Point"}
    # a value its slug does not spell exactly gets a hash of the exact value after `~`
    expected = f"neighborhood=harbor-point~{short_hash('Harbor Point')}_period=2025-q4~{short_hash('2025-Q4')}"
    assert parameters_slug(values, specs) == expected
    assert parameters_slug({"dataset": "riverton", "period": "2025", "neighborhood": None}, specs) == "citywide"
    assert parameters_slug({"dataset": "riverton", "period": "2024", "neighborhood": None}, specs) == "period=2024"


def test_names_stay_distinct_in_any_alphabet(specs):
    """北区 and 南区 slugged to the same name ("none") and overwrote each other's reports."""

    def name(hood):
        return parameters_slug({"dataset": "riverton", "period": "2025", "neighborhood": hood}, specs)

    assert name("北区") == f"neighborhood=beiqu~{short_hash('北区')}"  # anyascii: 北区 -> BeiQu
    assert name("南区") == f"neighborhood=nanqu~{short_hash('南区')}"
    assert name("Harbor Point") != name("harbor point") != name("Harbor-Point")
    assert name("Москва").startswith("neighborhood=moskva~")
    assert name("x" * 100_000) == f"neighborhood={'x' * 40}~{short_hash('x' * 100_000)}"  # a readable part of 40


@settings(max_examples=150, deadline=None)
@for_all(st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=2, unique=True))
def test_two_different_values_never_share_a_folder_name(specs, pair):
    names = {parameters_slug({"dataset": "riverton", "period": "2025", "neighborhood": v}, specs) for v in pair}
    assert len(names) == 2
    for folder in names:
        assert len(folder) <= 180 and "/" not in folder and "\\" not in folder and folder not in (".", "..")
        assert folder.isascii() and folder.isprintable()


def test_a_neighborhood_is_matched_by_its_exact_name_never_a_shared_slug(monkeypatch):
    from citykit.reports import params

    monkeypatch.setattr(
        params, "neighborhoods", lambda dataset: ["Harbor Point", "Harbor-Point", "北区", "南区", "Oak"]
    )
    assert params.check_neighborhood("南区", "x") == "南区" and params.check_neighborhood("北区", "x") == "北区"
    assert params.check_neighborhood("Harbor-Point", "x") == "Harbor-Point"
    assert params.check_neighborhood("oak", "x") == "Oak"  # one name in any letter case
    with pytest.raises(CitykitError, match="could be any of 'Harbor Point', 'Harbor-Point'"):
        params.check_neighborhood("harbor_point", "x")  # a slug two names share: never a guess
    with pytest.raises(CitykitError, match="unknown neighborhood '西区'"):
        params.check_neighborhood("西区", "x")
    # QA walk: the slug of both, which also matches one of them in another letter case, picked that one
    for ambiguous in ("harbor-point", "harbor point", "HARBOR-POINT"):
        with pytest.raises(CitykitError, match="could be any of 'Harbor Point', 'Harbor-Point'"):
            params.check_neighborhood(ambiguous, "x")
    assert params.check_neighborhood("Harbor Point", "x") == "Harbor Point"  # exact: never ambiguous


def test_allowed_values_of_a_neighborhood_are_the_datasets(specs, hoods):
    spec = next(s for s in specs if s.name == "neighborhood")
    assert allowed_values(spec, "riverton") == hoods
    assert allowed_values(ParamSpec("x", "str", "a", choices=("a", "b")), None) == ["a", "b"]
    with pytest.raises(CitykitError, match="give --values"):
        allowed_values(ParamSpec("x", "int", 1), None)


@pytest.mark.parametrize(
    "parameter, message",
    [
        ("neighborhood=Atlantis", "unknown neighborhood 'Atlantis'"),
        ("period=1999", "period 1999 is outside dataset"),
        ("colour=red", "unknown parameter 'colour'"),
        ("dataset=atlantis", "unknown dataset 'atlantis'"),
    ],
)
def test_bad_parameters_exit_2_with_one_line_and_write_nothing(parameter, message, tmp_path, capsys, riverton):
    out = tmp_path / "out"
    code = main(["report", "run", MODULE, "-p", parameter, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no report, no staging folder


def test_as_of_is_a_date(riverton):
    assert isinstance(riverton.as_of, dt.date)


@pytest.mark.parametrize("module", ["equity-report", "disaggregation", "caveats-and-strategy"])
def test_a_day_range_on_monthly_applications_is_refused_before_a_kernel_starts(module, riverton, tmp_path, capsys):
    """walk-20 #14: `report run equity-report -p period=2025-01-15/2025-02-14` ran the notebook and
    failed in a cell (exit 1, a .failed folder); it is a parameter error (exit 2, nothing written)."""
    specs = module_parameters(find_module(module))
    with pytest.raises(CitykitError, match="published by month"):
        validate(specs, {"period": "2025-01-15/2025-02-14"})
    assert validate(specs, {"period": "2025-01-01/2025-11-30"})["period"] == "2025-01-01/2025-11-30"
    assert validate(specs, {"period": "2025-Q3"})["period"] == "2025-Q3"
    # a report on requests only still takes days
    assert validate(module_parameters(find_module(MODULE)), {"period": "2025-01-15/2025-02-14"})["period"]
    out = tmp_path / "out"
    assert main(["report", "run", module, "-p", "period=2025-01-15/2025-02-14", "--out", str(out)]) == 2
    assert "published by month" in capsys.readouterr().err and not out.exists()
    assert not (tmp_path / "out.failed").exists()
