"""The loader's filters equal plain pandas filtering on the same rows, from any working directory."""

import numpy as np
import pandas as pd
import pytest

import citykit
from citykit.data import registry
from citykit.data.columns import SERVICE_REQUESTS
from citykit.errors import CitykitError

NEIGHBORHOODS = ["Ashgrove", "Bellmoor", "Cedar Flats", "Dunmore"]


@pytest.fixture()
def tiny_city(tmp_path, monkeypatch):
    """A small registered dataset in a temporary CITYKIT_HOME, written with plain pandas."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path))
    rng = np.random.default_rng(7)
    n = 2_000
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730 * 24, n), unit="h")
    frame = pd.DataFrame({c: pd.Series([None] * n, dtype="object") for c in SERVICE_REQUESTS})
    frame["request_id"] = [f"R{i:06d}" for i in range(n)]
    frame["created_at"] = created.astype("datetime64[us]")
    frame["closed_at"] = (created + pd.to_timedelta(rng.integers(1, 400, n), unit="h")).astype("datetime64[us]")
    frame["neighborhood"] = rng.choice([*NEIGHBORHOODS, None], n)
    frame["request_type"] = rng.choice(["Pothole", "Noise Complaint"], n)
    frame["latitude"] = rng.normal(41.5, 0.01, n)
    folder = tmp_path / "published" / "tiny"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "service_requests.parquet", index=False)
    registry.register(
        registry.Dataset(
            name="tiny",
            as_of=pd.Timestamp("2025-12-31").date(),
            location="published/tiny",
            tables=("service_requests",),
        )
    )
    return frame


@pytest.mark.parametrize(
    "period, start, end",
    [
        ("2025", "2025-01-01", "2026-01-01"),
        ("2024-Q3", "2024-07-01", "2024-10-01"),
        ("2025-02", "2025-02-01", "2025-03-01"),
    ],
)
def test_period_filter_equals_pandas(tiny_city, period, start, end):
    loaded = citykit.load("service_requests", dataset="tiny", period=period)
    mask = (tiny_city.created_at >= start) & (tiny_city.created_at < end)
    assert sorted(loaded.request_id) == sorted(tiny_city.loc[mask, "request_id"])


def test_neighborhood_and_columns_are_pushed_down(tiny_city):
    loaded = citykit.load(
        "service_requests",
        dataset="tiny",
        neighborhood=["Bellmoor", "Dunmore"],
        columns=["request_id", "neighborhood", "created_at"],
    )
    expected = tiny_city[tiny_city.neighborhood.isin(["Bellmoor", "Dunmore"])]
    assert list(loaded.columns) == ["request_id", "neighborhood", "created_at"]
    assert sorted(loaded.request_id) == sorted(expected.request_id)
    assert str(loaded.created_at.dtype).startswith("datetime64")


def test_works_from_any_working_directory(tiny_city, tmp_path, monkeypatch):
    elsewhere = tmp_path / "some" / "other" / "folder"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert (
        len(citykit.load("service_requests", dataset="tiny", neighborhood="Ashgrove"))
        == (tiny_city.neighborhood == "Ashgrove").sum()
    )


def test_unknown_names_list_the_valid_choices(tiny_city):
    with pytest.raises(CitykitError, match="Ashgrove, Bellmoor, Cedar Flats, Dunmore"):
        citykit.load("service_requests", dataset="tiny", neighborhood="Atlantis")
    with pytest.raises(CitykitError, match=r"registered datasets: .*tiny"):
        citykit.load("service_requests", dataset="gotham")
    with pytest.raises(CitykitError, match="choose one of: service_requests"):
        citykit.load("parking_tickets", dataset="tiny")
    with pytest.raises(CitykitError, match="no column 'caller_name'"):
        citykit.load("service_requests", dataset="tiny", columns=["caller_name"])


def test_a_period_outside_the_data_names_its_coverage(tiny_city):
    first, last = tiny_city.created_at.min(), tiny_city.created_at.max()
    with pytest.raises(CitykitError, match=f"covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"):
        citykit.load("service_requests", dataset="tiny", period="2019")


def test_a_covered_period_that_matches_nothing_is_just_empty(tiny_city):
    frame = citykit.load(
        "service_requests",
        dataset="tiny",
        period="2025-03-01/2025-03-01",
        neighborhood="Ashgrove",
        columns=["request_id"],
    )
    mask = (tiny_city.neighborhood == "Ashgrove") & (tiny_city.created_at.dt.date == pd.Timestamp("2025-03-01").date())
    assert len(frame) == mask.sum()


def test_a_table_an_export_lacks_is_named_with_how_to_add_it(tiny_city):
    with pytest.raises(
        CitykitError,
        match=r"^dataset 'tiny' has no neighborhoods \(population by neighborhood\); "
        r"add it with `citykit data import-population FILE --name tiny`$",
    ):
        citykit.load("neighborhoods", dataset="tiny")
    with pytest.raises(CitykitError, match=r"has no program_applications .*`citykit data import-applications FILE"):
        citykit.load("program_applications", dataset="tiny")


def test_without_a_neighborhoods_table_report_parameters_take_the_names_requests_carry(tiny_city):
    from citykit.reports import params

    assert params.neighborhoods("tiny") == sorted(NEIGHBORHOODS)
    assert params.check_neighborhood("cedar-flats", "tiny") == "Cedar Flats"
    with pytest.raises(CitykitError, match="unknown neighborhood 'Atlantis' in dataset 'tiny'"):
        params.check_neighborhood("Atlantis", "tiny")
