"""Publishing: flags set from raw values on hand-built rows, type spellings, and a re-publish of
the small raw export (raw files untouched, same tables as the build published)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from citykit.data.anonymize import PERSONAL_COLUMNS, flag_requests, map_request_types, normalise_type, publish

STANDARD = ["Pothole", "Street Light Out", "Illegal Dumping"]
BOUNDS = (-81.8, 41.4, -81.6, 41.6)  # min_lon, min_lat, max_lon, max_lat


@pytest.mark.parametrize(
    ("raw", "expected", "variant"),
    [
        ("Pothole", "Pothole", False),
        ("Pot hole", "Pothole", True),
        ("pothole", "Pothole", True),
        ("Street  Light Out", "Street Light Out", True),
        ("STREET LIGHT OUT ", "Street Light Out", True),
        ("StreetLightOut", "Street Light Out", True),
        ("Snow Removal", "Snow Removal", False),  # unknown: kept as exported, not a variant
    ],
)
def test_map_request_types(raw, expected, variant):
    mapped, is_variant = map_request_types(pd.Series([raw, "Illegal Dumping"]), STANDARD)
    assert mapped.tolist() == [expected, "Illegal Dumping"]
    assert is_variant.tolist() == [variant, False]


def test_normalise_type_folds_case_and_spacing():
    assert normalise_type(" Street  Light\tOut ") == normalise_type("streetlightout") == "streetlightout"


def frame(**changes: dict[int, object]) -> pd.DataFrame:
    """Eight clean rows inside BOUNDS; `changes` plants values at given rows."""
    n = 8
    created = pd.Series(pd.date_range("2024-03-01 09:00", periods=n, freq="D"), dtype="datetime64[us]")
    df = pd.DataFrame(
        {
            "request_id": [f"SR-{i}" for i in range(n)],
            "created_at": created,
            "closed_at": created + pd.Timedelta(hours=5),
            "request_type": ["Pothole"] * n,
            "neighborhood": ["Millbrook"] * n,
            "latitude": np.full(n, 41.512345),
            "longitude": np.full(n, -81.712345),
        }
    )
    for column, values in changes.items():
        for row, value in values.items():
            df.loc[row, column] = value
    return df


def test_each_flag_fires_on_exactly_the_planted_rows():
    df = frame(
        closed_at={1: pd.Timestamp("2024-03-02 08:00"), 2: pd.Timestamp("1900-01-01"), 7: pd.NaT},
        latitude={3: 0.0, 4: 39.0, 6: np.nan},
        longitude={3: 0.0, 4: -77.0, 6: np.nan},
        request_type={5: "pot hole"},
        neighborhood={6: None},
    )
    out = flag_requests(df, STANDARD, BOUNDS)
    expected = {
        "flag_closed_before_created": [1],  # row 2 is before created too, but it is a placeholder date
        "flag_placeholder_date": [2],
        "flag_placeholder_coords": [3, 4],  # missing coordinates (row 6) are not placeholders
        "flag_type_variant": [5],
        "flag_missing_neighborhood": [6],
    }
    for flag, rows in expected.items():
        assert np.flatnonzero(out[flag].to_numpy()).tolist() == rows, flag
    # raw values are kept (not repaired); coordinates rounded to 3 decimals; type standardised
    assert out.loc[2, "closed_at"] == pd.Timestamp("1900-01-01")
    assert out.loc[0, "latitude"] == 41.512 and out.loc[0, "longitude"] == -81.712
    assert (out.loc[3, "latitude"], out.loc[4, "latitude"]) == (0.0, 39.0)
    assert out.loc[5, "request_type"] == "Pothole"
    assert len(out) == len(df)


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_publish_again_from_raw_gives_the_same_tables_and_leaves_raw_untouched(riverton_small, tmp_path):
    raw_dir = riverton_small / "raw" / "riverton"
    before = digest(raw_dir)
    summary = publish(raw_dir, tmp_path / "out", dataset="riverton", home=riverton_small)  # the build's key
    assert digest(raw_dir) == before
    built = riverton_small / "published" / "riverton"
    for table in ("service_requests", "program_applications", "neighborhoods", "program_applications_aggregates"):
        again = pd.read_parquet(tmp_path / "out" / f"{table}.parquet")
        pd.testing.assert_frame_equal(again, pd.read_parquet(built / f"{table}.parquet"))
        assert summary.rows.get(table, len(again)) == len(again)
        assert not set(again.columns) & set(PERSONAL_COLUMNS.get(table, ()))
    requests = pd.read_parquet(tmp_path / "out" / "service_requests.parquet")
    assert summary.flags == {c: int(requests[c].sum()) for c in requests if c.startswith("flag_")}
    assert summary.coordinates_removed == int(requests["latitude"].isna().sum())
    assert summary.k_anonymity["k"] == 5 and summary.k_anonymity["smallest_class"] >= 5
