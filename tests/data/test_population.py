"""Denominators and people for an imported dataset: population, boundaries, program records
(k-anonymized under the standard, race and ethnicity coded multi-select)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import citykit
from citykit.cli import main
from citykit.data import registry
from citykit.data.columns import NEIGHBORHOODS, RACE_ETHNICITY
from citykit.data.importers import import_requests
from citykit.data.population import import_applications, import_boundaries, import_population, race_indicators
from citykit.data.quality import check_dataset
from citykit.errors import CitykitError

NAMES = ["Canton", "Dorchester", "Belair-Edison"]
BALTIMORE = ("ServiceRequestNum,SRType,MethodReceived,CreatedDate,SRStatus,CloseDate,Agency,Neighborhood,"
             "CouncilDistrict,Latitude,Longitude")  # fmt: skip


@pytest.fixture
def town(tmp_path, monkeypatch) -> str:
    """An imported dataset with 6 requests: 2 per neighborhood in NAMES, 1 in 'Nowhere', 1 without."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    hoods = [NAMES[0], NAMES[0], NAMES[1], NAMES[2], "Nowhere", ""]
    lines = [BALTIMORE] + [
        f"R{i},Pothole,Phone,03/0{i + 1}/2024 09:00:00 AM,Closed,03/0{i + 2}/2024 09:00:00 AM,Streets,{h},1,39.29,-76.61"
        for i, h in enumerate(hoods)
    ]
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n")
    import_requests("baltimore", path, name="town")
    return "town"


def population_frame() -> pd.DataFrame:
    rows = []
    for i, name in enumerate(NAMES):
        pops = {f"pop_{code}": 10 * (i + 1) + j for j, code in enumerate(RACE_ETHNICITY)}
        pops["pop_multiracial"] = 7
        rows.append({"neighborhood": name, "council_district": i + 1, "population": sum(pops.values()),
                     "households": 100 + i, "median_household_income": 50_000.0 + i, "area_km2": 1.5 + i, **pops})  # fmt: skip
    return pd.DataFrame(rows)[list(NEIGHBORHOODS)]


def test_population_is_attached_and_loads(tmp_path, town):
    expected = population_frame()
    path = tmp_path / "pop.csv"
    expected.to_csv(path, index=False)
    result = import_population(path)  # the only imported dataset
    assert registry.get(town).tables == ("service_requests", "neighborhoods")
    got = citykit.load("neighborhoods", town)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert any(n.startswith("1 requests name a neighborhood not in this table") for n in result.notes)  # 'Nowhere'
    assert {c.table for c in check_dataset(town).checks} == {"service_requests", "neighborhoods"}


def test_population_that_does_not_add_up_is_refused(tmp_path, town):
    bad = population_frame()
    bad.loc[1, "population"] += 5
    bad.to_csv(tmp_path / "pop.csv", index=False)
    with pytest.raises(CitykitError, match="do not add up to population"):
        import_population(tmp_path / "pop.csv", name=town)
    assert "neighborhoods" not in registry.get(town).tables


def test_population_missing_columns_names_them(tmp_path, town, capsys):
    population_frame().drop(columns=["pop_mena"]).to_csv(tmp_path / "pop.csv", index=False)
    assert main(["data", "import-population", str(tmp_path / "pop.csv"), "--name", town]) == 2
    assert "lacks the neighborhoods columns pop_mena" in capsys.readouterr().err


def square(x: float, y: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]}


def test_boundaries_are_normalised_and_bound_the_city(tmp_path, town):
    features = [
        {"type": "Feature", "properties": {"NAME": n}, "geometry": square(-76.62 + i * 0.01, 39.28)}
        for i, n in enumerate(NAMES)
    ]
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = import_boundaries(path, name=town)
    assert result.rows == 3
    ds = registry.get(town)
    stored = json.loads(ds.boundaries_path.read_text())
    assert [f["properties"] for f in stored["features"]] == [{"neighborhood": n} for n in NAMES]
    from citykit.data.quality import city_bounds

    assert np.allclose(city_bounds(ds.boundaries_path), (-76.62, 39.28, -76.59, 39.29))


def test_boundaries_that_are_not_polygons_are_refused(tmp_path, town):
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "A"}, "geometry": {"type": "Point", "coordinates": [-76.6, 39.3]}}]}))  # fmt: skip
    with pytest.raises(CitykitError, match="Polygon or MultiPolygon"):
        import_boundaries(path, name=town)
    assert not registry.get(town).boundaries_path.exists()


def test_race_answers_become_multi_select_indicators():
    codes = {
        "Asian": "asian",
        "White": "white",
        "Declined": "declined",
        "": "not_reported",
        "Two or more races": "multiracial",
    }
    out = race_indicators(pd.Series(["Asian; White", "Declined", None, "White", "Two or more races"]), codes)
    assert out["race_asian"].tolist()[:4] == [True, False, False, False]
    assert out["race_white"].tolist()[:4] == [True, False, False, True]
    assert out["race_declined"].tolist() == [False, True, False, False, False]
    assert out["race_not_reported"].tolist() == [False, False, True, False, False]
    assert out.loc[4, [f"race_{c}" for c in RACE_ETHNICITY]].isna().all()  # detail lost at source
    with pytest.raises(CitykitError, match="'Martian'"):
        race_indicators(pd.Series(["Martian"]), codes)


def program_export(folder: Path, n: int = 120) -> tuple[pd.DataFrame, dict]:
    """A program's raw applications (with personal columns) and its mapping, written to `folder`."""
    rng = np.random.default_rng(7)
    raw = pd.DataFrame({
        "App No": [f"A{i:04d}" for i in range(n)],
        "Applicant Name": [f"Person {i}" for i in range(n)],
        "Phone": ["555-0100"] * n,
        "Submitted": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "Decision": rng.choice(["APPROVED", "DENIED", "PENDING"], n),
        "Area": rng.choice(NAMES, n),
        "District": rng.choice(["1", "2"], n),
        "Age": rng.integers(18, 90, n).astype(str),
        "Sex": rng.choice(["F", "M", "X"], n, p=[0.5, 0.45, 0.05]),
        "Race": rng.choice(["White", "Black or African American", "Asian;White", "Declined", "Hispanic or Latino"], n),
        "HH": rng.integers(1, 6, n).astype(str),
    })  # fmt: skip
    raw.to_csv(folder / "apps.csv", index=False)
    spec = {
        "program": "Rental assistance",
        "columns": {"application_id": "App No", "submitted_at": "Submitted", "outcome": "Decision", "neighborhood": "Area",
                    "council_district": "District", "age": "Age", "gender": "Sex", "race": "Race", "household_size": "HH"},
        "timestamp_formats": ["%Y-%m-%d"],
        "outcome_map": {"APPROVED": "Approved", "DENIED": "Denied", "PENDING": "Pending"},
        "gender_map": {"F": "Woman", "M": "Man", "X": "Nonbinary"},
        "race_mapping": "census_style",
    }  # fmt: skip
    (folder / "apps.yml").write_text(yaml.safe_dump(spec))
    return raw, spec


def test_applications_are_k_anonymized_and_drop_personal_columns(tmp_path, town):
    n = 120
    raw, spec = program_export(tmp_path, n)
    result = import_applications(tmp_path / "apps.csv", tmp_path / "apps.yml", name=town)
    df = citykit.load("program_applications", town)
    assert len(df) == result.rows and 0 < len(df) <= n
    text = df.astype(str).to_string()
    assert "Person 1" not in text and "555-0100" not in text
    quasi = ["submitted_at", "neighborhood", "council_district", "gender", "language"]
    quasi += [c for c in df.columns if c.startswith("race_")]  # every quasi-identifier the standard publishes
    sizes = df.groupby(quasi, dropna=False).size()
    assert sizes.min() >= 5  # k = 5 in the standard
    assert not set(df.application_id) & set(raw["App No"])  # fresh ids, never the export's
    # a kept row's outcome and month of submission are the raw ones (rows are generalised, not altered): every
    # published (month, outcome) pair is a raw one, as many times at most (ids are fresh per export: no join)
    month = pd.to_datetime(raw["Submitted"]).dt.to_period("M").dt.start_time
    raw_pairs = Counter(zip(month, raw["Decision"].map(spec["outcome_map"])))
    published_pairs = Counter(zip(df.submitted_at, df.outcome))
    assert not published_pairs - raw_pairs and sum(published_pairs.values()) == len(df)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["07-disaggregation", "13-equity-report"])
def test_with_population_and_a_program_imported_nothing_is_left_out(tmp_path, town, module):
    from citykit.reports.run import run_report

    population_frame().to_csv(tmp_path / "pop.csv", index=False)
    import_population(tmp_path / "pop.csv", name=town)
    program_export(tmp_path)
    import_applications(tmp_path / "apps.csv", tmp_path / "apps.yml", name=town)
    result = run_report(module, {"dataset": town, "period": None}, tmp_path / "out")
    page = result.html.read_text(encoding="utf-8")
    assert "Left out here" not in page
    assert json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))["left_out"] == []
    decided = citykit.load("program_applications", town)["outcome"].isin(["Approved", "Denied"]).sum()
    if module == "07-disaggregation":
        assert f"{decided:,} decided" in page
    else:
        assert "Approval rate by race and ethnicity" in page
