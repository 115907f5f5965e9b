"""The quality scorecard: each check fires on exactly the rows planted, and on nothing else."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from citykit.data import quality, registry
from citykit.data.columns import CHANNELS, RACE_ETHNICITY, REQUEST_FLAGS
from citykit.data.quality import CATALOG, Gate, check_dataset, load_gates, scorecard
from citykit.errors import CitykitError, WorkFailed

N = 30
AS_OF = dt.date(2025, 6, 30)  # "now" is midnight after it: 2025-07-01 00:00
NOW = pd.Timestamp("2025-07-01")
BOUNDS = (-81.80, 41.40, -81.60, 41.60)  # min_lon, min_lat, max_lon, max_lat
NAMES = ["Alder", "Birch", "Cedar"]
TYPES = ["Pothole", "Street Light Out", "Welfare Check"]  # Welfare Check is sensitive: no coordinates


def requests() -> pd.DataFrame:
    """A clean table: no check fires. Row i is request R0ii, created on June (i+1)."""
    i = np.arange(N)
    created = pd.Series(pd.Timestamp("2025-06-01") + pd.to_timedelta(i, unit="D")).astype("datetime64[us]")
    status = np.array(["Closed", "Open", "In Progress", "Cancelled"])[i % 4]
    closes = np.isin(status, ["Closed", "Cancelled"])
    request_type = np.array(TYPES)[i % 3]
    sensitive = request_type == "Welfare Check"
    return pd.DataFrame(
        {
            "request_id": [f"R{k:03d}" for k in i],
            "created_at": created,
            "closed_at": created.where(pd.Series(closes)) + pd.Timedelta(hours=6),
            "due_at": created + pd.Timedelta(days=5),
            "status": status,
            "agency": "Public Works",
            "request_type": request_type,
            "descriptor": "Street",
            "channel": np.array(CHANNELS)[i % len(CHANNELS)],
            "neighborhood": np.array(NAMES)[i % 3],
            "council_district": i % 3 + 1,
            "latitude": np.where(sensitive, np.nan, 41.45 + (i % 10) * 0.01),
            "longitude": np.where(sensitive, np.nan, -81.75 + (i % 7) * 0.01),
            "is_duplicate": False,
            "parent_request_id": pd.Series([None] * N, dtype="str"),
            **{flag: False for flag in REQUEST_FLAGS},
        }
    )


def score(frame: pd.DataFrame, table: str = "service_requests", **kwargs) -> quality.Scorecard:
    kwargs.setdefault("as_of", AS_OF)
    if table == "service_requests":
        kwargs.setdefault("bounds", BOUNDS)
    if table != "neighborhoods":
        kwargs.setdefault("neighborhoods", NAMES)
    return scorecard(frame, table, **kwargs)


def fired(card: quality.Scorecard) -> dict[str, set[str]]:
    """check name -> the ids it fired on (each planted case plants at most 3, all shown as examples)."""
    result = {}
    for check in card.checks:
        if check.failing:
            assert check.failing <= quality.MAX_EXAMPLES, "a case planted too many rows to compare ids"
            result[check.name] = set(check.examples)
    return result


def test_clean_table_fires_nothing_and_passes():
    card = score(requests())
    assert fired(card) == {}
    assert {c.name for c in card.checks} == set(CATALOG["service_requests"])
    assert card.passed


def _at(frame: pd.DataFrame, row: int, **values) -> None:
    for column, value in values.items():
        frame.loc[row, column] = value


def _created(frame: pd.DataFrame, row: int) -> pd.Timestamp:
    return frame.loc[row, "created_at"]


# Each case plants defects in a clean table and names every check that must fire, with its rows.
# Row i % 4: 0 Closed, 1 Open, 2 In Progress, 3 Cancelled; i % 3 == 2 is the sensitive type.
CASES: dict[str, tuple[Callable[[pd.DataFrame], None], dict[str, set[str]]]] = {
    "missing neighborhood": (
        lambda f: [_at(f, 2, neighborhood=None, council_district=np.nan), _at(f, 4, neighborhood="  ")],
        {"missing_neighborhood": {"R002", "R004"}},
    ),
    "missing coordinates (a sensitive type without them is fine)": (
        lambda f: _at(f, 0, latitude=np.nan, longitude=np.nan),
        {"missing_coordinates": {"R000"}},
    ),
    "missing due date": (lambda f: _at(f, 1, due_at=pd.NaT), {"missing_due_date": {"R001"}}),
    "placeholder coordinates 0,0 and outside the city": (
        lambda f: [_at(f, 0, latitude=0.0, longitude=0.0), _at(f, 3, latitude=39.0, longitude=-77.0)],
        {"placeholder_coords": {"R000", "R003"}},
    ),
    "placeholder close date is not closed-before-created": (
        lambda f: _at(f, 4, closed_at=pd.Timestamp("1900-01-01")),
        {"placeholder_date": {"R004"}},
    ),
    "status outside the list": (lambda f: _at(f, 1, status="Pending"), {"invalid_status": {"R001"}}),
    "channel outside the list": (lambda f: _at(f, 2, channel="Fax"), {"invalid_channel": {"R002"}}),
    "unknown neighborhood": (lambda f: _at(f, 3, neighborhood="Atlantis"), {"unknown_neighborhood": {"R003"}}),
    "mapped type variant (flag)": (lambda f: _at(f, 4, flag_type_variant=True), {"type_variant": {"R004"}}),
    "unmapped spelling variants": (
        lambda f: [_at(f, 0, request_type="Pot hole"), _at(f, 3, request_type="POTHOLE")],
        {"type_spelling_variants": {"R000", "R003"}},
    ),
    "closed before created": (
        lambda f: _at(f, 4, closed_at=_created(f, 4) - pd.Timedelta(days=1)),
        {"closed_before_created": {"R004"}},
    ),
    "closed without close time": (lambda f: _at(f, 8, closed_at=pd.NaT), {"closed_without_close_time": {"R008"}}),
    "open with close time": (
        lambda f: [_at(f, r, closed_at=_created(f, r) + pd.Timedelta(hours=1)) for r in (1, 2)],
        {"open_with_close_time": {"R001", "R002"}},
    ),
    "duplicates without a (known) parent": (
        lambda f: [_at(f, 5, is_duplicate=True), _at(f, 6, is_duplicate=True, parent_request_id="R999")],
        {"duplicate_missing_parent": {"R005", "R006"}, "marked_duplicate": {"R005", "R006"}},
    ),
    "a proper duplicate": (
        lambda f: _at(f, 7, is_duplicate=True, parent_request_id="R001"),
        {"marked_duplicate": {"R007"}},
    ),
    "repeated request_id": (lambda f: _at(f, 9, request_id="R001"), {"duplicate_request_id": {"R001"}}),
    "created or closed after the as-of date": (
        lambda f: [_at(f, 29, created_at=NOW + pd.Timedelta(days=1)), _at(f, 12, closed_at=NOW)],
        {"created_in_future": {"R029", "R012"}},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_check_fires_on_exactly_the_planted_rows(case):
    plant, expected = CASES[case]
    frame = requests()
    plant(frame)
    assert fired(score(frame)) == expected


def test_shares_use_the_rows_each_check_applies_to():
    frame = requests()
    _at(frame, 4, closed_at=_created(frame, 4) - pd.Timedelta(days=1))
    _at(frame, 0, latitude=0.0, longitude=0.0)
    card = score(frame)
    closed_before = card.get("closed_before_created")
    assert closed_before.rows == frame["closed_at"].notna().sum()
    assert closed_before.share == pytest.approx(1 / frame["closed_at"].notna().sum())
    coords = card.get("placeholder_coords")
    assert coords.rows == frame["latitude"].notna().sum()


def test_a_default_point_inside_the_city_is_a_placeholder():
    """A geocoder default inside the city: one exact point holding many located rows."""
    rng = np.random.default_rng(7)
    frame = pd.concat([requests()] * 10, ignore_index=True)
    frame["request_id"] = [f"R{k:04d}" for k in range(len(frame))]
    located = frame["latitude"].notna()
    frame.loc[located, "latitude"] = rng.uniform(41.41, 41.59, located.sum()).round(3)
    frame.loc[located, "longitude"] = rng.uniform(-81.79, -81.61, located.sum()).round(3)
    default_rows = frame.index[located][:120]
    frame.loc[default_rows, ["latitude", "longitude"]] = [41.5, -81.7]
    expected = (frame["latitude"].eq(41.5) & frame["longitude"].eq(-81.7)).sum()  # 120, plus any chance hits
    check = score(frame).get("placeholder_coords")
    assert check.failing == expected and expected >= 120


def test_without_bounds_only_zero_and_default_points_count():
    frame = requests()
    _at(frame, 3, latitude=39.0, longitude=-77.0)
    _at(frame, 0, latitude=0.0, longitude=0.0)
    assert set(score(frame, bounds=None).get("placeholder_coords").examples) == {"R000"}


def test_timeliness_needs_an_as_of_and_measures_staleness():
    frame = requests()
    names = {c.name for c in scorecard(frame, "service_requests").checks}
    assert "staleness_days" not in names and "created_in_future" not in names
    later = dt.datetime(2025, 12, 1)
    check = score(frame, as_of=later).get("staleness_days")
    expected_days = (pd.Timestamp(later) - frame["created_at"].max()).total_seconds() / 86400
    assert check.value == pytest.approx(expected_days, abs=0.01)
    assert check.gate_failed
    on_time = score(frame).get("staleness_days")  # newest request June 30, now July 1
    assert on_time.value == pytest.approx(1.0) and not on_time.gate_failed


def test_gates_compare_share_with_the_limit():
    frame = requests()
    frame.loc[[0, 1, 2], "neighborhood"] = None  # 3 of 30 = 10%
    gates = {"service_requests": {"missing_neighborhood": Gate(0.10)}}
    card = score(frame, gates=gates)
    assert card.passed and card.get("missing_neighborhood").verdict() == "pass"
    frame.loc[3, "neighborhood"] = None  # 4 of 30
    card = score(frame, gates=gates)
    assert not card.passed and [c.name for c in card.failed] == ["missing_neighborhood"]
    with pytest.raises(WorkFailed, match=r"missing_neighborhood 13\.33%"):
        card.raise_if_failed()
    ungated = score(frame, gates={})
    assert ungated.passed and ungated.get("missing_neighborhood").verdict() == "no gate"


def test_quality_yml_gates_every_listed_check_with_a_reason():
    raw = yaml.safe_load(quality.quality_file().read_text(encoding="utf-8"))
    gates = load_gates()
    for table, entries in raw["gates"].items():
        assert set(gates[table]) == set(entries)
        for name, entry in entries.items():
            assert entry.get("why"), f"{table}.{name} has no rationale"
    # The headline gates the standard promises.
    assert gates["service_requests"]["placeholder_coords"].limit == 0.10
    assert gates["service_requests"]["closed_before_created"].limit == 0.01
    assert gates["service_requests"]["duplicate_request_id"].limit == 0
    assert gates["service_requests"]["missing_neighborhood"].limit == 0.05


def test_unknown_check_in_the_gates_file_is_an_error(tmp_path):
    path = tmp_path / "quality.yml"
    path.write_text("gates:\n  service_requests:\n    placeholder_coord: {max_share: 0.1}\n")
    with pytest.raises(CitykitError, match=r"unknown check service_requests\.placeholder_coord"):
        load_gates(path)
    path.write_text("gates:\n  service_requests:\n    placeholder_coords: {limit: 0.1}\n")
    with pytest.raises(CitykitError, match="max_share or max_days"):
        load_gates(path)


def test_render_and_html_show_every_check_and_the_verdict():
    frame = requests()
    _at(frame, 1, status="Pending")
    card = score(frame)
    console = Console(record=True, width=160)
    card.render(console)
    text = console.export_text()
    assert all(c.name in text for c in card.checks)
    assert "FAIL" in text and "1 of" in text
    page = card._repr_html_()
    assert "<table" in page and "Status not one of" in page and "FAIL" in page
    frame_view = card.to_frame()
    assert len(frame_view) == len(card.checks)
    assert frame_view.set_index("name").loc["invalid_status", "failing"] == 1


# --- program applications and neighborhoods --------------------------------------------------------


def applications() -> pd.DataFrame:
    i = np.arange(12)
    submitted = pd.Series(pd.Timestamp("2025-03-01") + pd.to_timedelta(i, unit="D")).astype("datetime64[us]")
    outcome = np.array(["Approved", "Denied", "Withdrawn", "Pending"])[i % 4]
    races = {f"race_{code}": (i % len(RACE_ETHNICITY) == k) & (i != 7) for k, code in enumerate(RACE_ETHNICITY)}
    return pd.DataFrame(
        {
            "application_id": [f"A{k:02d}" for k in i],
            "program": "Rental Assistance",
            "submitted_at": submitted,
            "decided_at": submitted.where(pd.Series(outcome != "Pending")) + pd.Timedelta(days=21),
            "outcome": outcome,
            "neighborhood": np.array(NAMES)[i % 3],
            "council_district": i % 3 + 1,
            "age_band": "25-34",
            "gender": "Woman",
            **races,
            "race_not_reported": i == 7,  # row 7 reports no category
            "race_declined": False,
            "household_size": 2,
            "income_band": "<30% AMI",
            "language": "English",
        }
    )


APPLICATION_CASES = {
    "no race at all": (lambda f: _at(f, 7, race_not_reported=False), {"race_unrecorded": {"A07"}}),
    "category and declined": (lambda f: _at(f, 0, race_declined=True), {"race_conflict": {"A00"}}),
    "neighborhood generalised away": (
        lambda f: _at(f, 5, neighborhood=None),
        {"missing_neighborhood": {"A05"}},
    ),
    "unknown neighborhood": (lambda f: _at(f, 2, neighborhood="Atlantis"), {"unknown_neighborhood": {"A02"}}),
    "bad outcome": (lambda f: _at(f, 3, outcome="Maybe"), {"invalid_outcome": {"A03"}}),
    "age band and gender outside the standard (null and gender's wider label are fine)": (
        lambda f: [
            _at(f, 1, age_band="25 to 34", gender="F"),
            _at(f, 2, age_band="18-24", gender=None),
            _at(f, 3, age_band=None, gender="Nonbinary or another gender"),
        ],
        {"invalid_age_band": {"A01"}, "invalid_gender": {"A01"}},
    ),
    "multiracial by generalisation is recorded": (
        lambda f: _generalise_race(f, [5, 7]),
        {},
    ),
    "decided without date": (lambda f: _at(f, 4, decided_at=pd.NaT), {"decided_without_date": {"A04"}}),
    "decided before submitted": (
        lambda f: _at(f, 1, decided_at=pd.Timestamp("2025-01-01")),
        {"decided_before_submitted": {"A01"}},
    ),
    "repeated id": (lambda f: _at(f, 6, application_id="A00"), {"duplicate_application_id": {"A00"}}),
    "submitted after as-of": (
        lambda f: _at(f, 3, submitted_at=pd.Timestamp("2025-08-01")),
        {"submitted_in_future": {"A03"}},
    ),
}


def _generalise_race(frame: pd.DataFrame, rows: list[int]) -> None:
    """k-anonymity's representation of Multiracial and/or Multiethnic: the seven indicators <NA>."""
    columns = [f"race_{code}" for code in RACE_ETHNICITY]
    frame[columns] = frame[columns].astype("boolean")
    frame.loc[rows, columns] = pd.NA
    frame.loc[rows, ["race_not_reported", "race_declined"]] = False


def test_clean_applications_fire_nothing():
    card = score(applications(), "program_applications")
    assert fired(card) == {}
    assert {c.name for c in card.checks} == set(CATALOG["program_applications"])


@pytest.mark.parametrize("case", APPLICATION_CASES)
def test_application_checks_fire_on_the_planted_rows(case):
    plant, expected = APPLICATION_CASES[case]
    frame = applications()
    plant(frame)
    assert fired(score(frame, "program_applications")) == expected


def neighborhoods() -> pd.DataFrame:
    pops = {f"pop_{code}": [100, 50, 20] for code in RACE_ETHNICITY}
    frame = pd.DataFrame({"neighborhood": NAMES, "council_district": [1, 2, 3], **pops, "pop_multiracial": [30, 0, 10]})
    frame.insert(2, "population", frame.filter(like="pop_").sum(axis=1))
    frame.insert(3, "households", frame["population"] // 2)
    frame.insert(4, "median_household_income", [40000.0, 65000.0, 90000.0])
    frame.insert(5, "area_km2", [2.0, 3.0, 4.0])
    return frame


def test_neighborhood_checks():
    assert fired(score(neighborhoods(), "neighborhoods")) == {}
    frame = neighborhoods()
    frame.loc[1, "pop_asian"] += 5
    frame.loc[2, "median_household_income"] = np.nan
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    assert fired(score(frame, "neighborhoods")) == {
        "population_mismatch": {"Birch"},
        "missing_values": {"Cedar"},
        "duplicate_neighborhood": {"Alder"},
    }


# --- a whole registered dataset -------------------------------------------------------------------


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A registered parquet dataset in a temporary CITYKIT_HOME, with boundaries beside it."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path))
    folder = tmp_path / "published" / "tiny"
    folder.mkdir(parents=True)
    frame = requests()
    _at(frame, 3, latitude=39.0, longitude=-77.0)  # outside the boundaries below
    frame.to_parquet(folder / "service_requests.parquet")
    applications().to_parquet(folder / "program_applications.parquet")
    neighborhoods().to_parquet(folder / "neighborhoods.parquet")
    west, south, east, north = BOUNDS
    square = [[[west, south], [east, south], [east, north], [west, north], [west, south]]]
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"neighborhood": "all"},
                "geometry": {"type": "Polygon", "coordinates": square},
            }
        ],
    }
    (folder / "boundaries.geojson").write_text(json.dumps(geojson))
    registry.register(registry.Dataset(name="tiny", as_of=AS_OF, location="published/tiny"))
    return "tiny"


def test_check_dataset_scores_every_table_at_the_as_of(tiny_dataset):
    card = check_dataset(tiny_dataset)
    assert card.dataset == "tiny" and card.as_of == NOW.to_pydatetime()
    assert {c.table for c in card.checks} == set(CATALOG)
    assert set(card.get("placeholder_coords").examples) == {"R003"}  # found through the boundaries
    assert card.get("unknown_neighborhood").failing == 0  # names come from the neighborhoods table
    located = requests()["latitude"].notna().sum()
    assert card.get("placeholder_coords").share == pytest.approx(1 / located)  # 5%, under the 10% gate
    assert card.passed


# --- the bundled synthetic city -------------------------------------------------------------------

# build.json's planted defect classes -> the scorecard check that must find exactly that many rows.
PLANTED_CHECK = {
    "closed_before_created": "closed_before_created",
    "placeholder_date": "placeholder_date",
    "placeholder_coords": "placeholder_coords",
    "type_variant": "type_variant",
    "duplicate": "marked_duplicate",
    "missing_neighborhood": "missing_neighborhood",
    "missing_due_date": "missing_due_date",
}
# The publisher's flag for each class, which the scorecard (reading values) independently verifies.
PUBLISHER_FLAG = {
    "closed_before_created": "flag_closed_before_created",
    "placeholder_date": "flag_placeholder_date",
    "placeholder_coords": "flag_placeholder_coords",
    "missing_neighborhood": "flag_missing_neighborhood",
}


@pytest.fixture(scope="module")
def riverton_card(riverton):
    return check_dataset(riverton.name)


def test_scorecard_finds_planted_defects(riverton, riverton_card):
    build = json.loads((riverton.folder / "build.json").read_text(encoding="utf-8"))
    planted = build["planted"]
    assert set(planted) <= set(PLANTED_CHECK), f"new planted classes to score: {set(planted) - set(PLANTED_CHECK)}"
    found = {name: riverton_card.get(PLANTED_CHECK[name]).failing for name in planted}
    assert found == planted
    requests = pd.read_parquet(riverton.table_path("service_requests"), columns=list(PUBLISHER_FLAG.values()))
    flagged = {name: int(requests[flag].sum()) for name, flag in PUBLISHER_FLAG.items()}
    assert flagged == {name: found[name] for name in PUBLISHER_FLAG}


def test_synthetic_city_passes_every_gate(riverton_card):
    assert riverton_card.passed, riverton_card.summary()
    assert riverton_card.get("staleness_days").value < 1  # requests run up to the as-of date
