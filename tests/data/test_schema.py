"""The pandera schemas: structure passes or fails with one clear line; real-data defects pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citykit.data.columns import (
    NEIGHBORHOODS,
    PROGRAM_APPLICATIONS,
    RACE_ETHNICITY,
    REQUEST_FLAGS,
    SERVICE_REQUESTS,
)
from citykit.data.schema import schema, validate
from citykit.errors import CitykitError

N = 6


def _stamps(values) -> pd.Series:
    return pd.Series(pd.to_datetime(values)).astype("datetime64[us]")


def requests() -> pd.DataFrame:
    created = _stamps(pd.date_range("2025-03-01", periods=N, freq="D"))
    frame = pd.DataFrame(
        {
            "request_id": [f"R{i}" for i in range(N)],
            "created_at": created,
            "closed_at": created + pd.Timedelta(hours=5),
            "due_at": created + pd.Timedelta(days=5),
            "status": ["Closed", "Open", "In Progress", "Cancelled", "Closed", "Closed"],
            "agency": "Public Works",
            "request_type": "Pothole",
            "descriptor": "Street",
            "channel": ["Phone", "Web", "App", "Email", "Walk-in", "Social"],
            "neighborhood": "Alder",
            "council_district": 1,
            "latitude": 41.5,
            "longitude": -81.7,
            "is_duplicate": False,
            "parent_request_id": pd.Series([None] * N, dtype="str"),
            **{flag: False for flag in REQUEST_FLAGS},
        }
    )
    frame.loc[[1, 2], "closed_at"] = pd.NaT
    return frame


def neighborhoods() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "neighborhood": ["Alder", "Birch"],
            "council_district": [1, 2],
            "population": [700, 300],
            "households": [300, 120],
            "median_household_income": [52000.0, 81000.0],
            "area_km2": [3.2, 4.1],
            **{f"pop_{code}": [100, 40] for code in RACE_ETHNICITY},
            "pop_multiracial": [0, 20],
        }
    )
    return frame


def applications() -> pd.DataFrame:
    submitted = _stamps(pd.date_range("2025-02-01", periods=N, freq="MS"))  # published by month
    return pd.DataFrame(
        {
            "application_id": [f"A{i}" for i in range(N)],
            "program": "Rental Assistance",
            "submitted_at": submitted,
            "outcome": ["Approved", "Denied", "Withdrawn", "Pending", "Approved", "Approved"],
            "neighborhood": "Alder",
            "council_district": 1,
            "gender": "Woman",
            **{f"race_{code}": code == "black" for code in RACE_ETHNICITY},
            "race_not_reported": False,
            "race_declined": False,
            "language": "English",
        }
    )


FRAMES = {"service_requests": requests, "neighborhoods": neighborhoods, "program_applications": applications}


@pytest.mark.parametrize("table", FRAMES)
def test_valid_tables_pass_unchanged(table):
    frame = FRAMES[table]()
    assert (
        tuple(frame.columns)
        == {
            "service_requests": SERVICE_REQUESTS,
            "neighborhoods": NEIGHBORHOODS,
            "program_applications": PROGRAM_APPLICATIONS,
        }[table]
    )
    pd.testing.assert_frame_equal(validate(frame, table), frame)


def test_real_data_defects_pass_the_schema():
    frame = requests()
    frame.loc[0, "closed_at"] = frame.loc[0, "created_at"] - pd.Timedelta(days=2)  # closed before created
    frame.loc[4, "closed_at"] = pd.Timestamp("1900-01-01")  # placeholder date
    frame.loc[5, ["latitude", "longitude"]] = 0.0  # placeholder coordinates
    frame.loc[3, ["is_duplicate", "parent_request_id"]] = [True, "R0"]
    validate(frame, "service_requests")


def test_nullable_columns_accept_missing_values():
    frame = requests()
    frame["council_district"] = frame["council_district"].astype("Int64")
    frame.loc[0, ["neighborhood", "council_district", "latitude", "longitude", "closed_at"]] = [
        None,
        pd.NA,
        np.nan,
        np.nan,
        pd.NaT,
    ]
    frame.loc[0, "status"] = "Open"
    validate(frame, "service_requests")
    apps = applications()
    apps.loc[3, "language"] = None
    apps.loc[3, "neighborhood"] = None
    races = [f"race_{code}" for code in RACE_ETHNICITY]
    apps[races] = apps[races].astype("boolean")
    apps.loc[2, races] = pd.NA  # generalised to Multiracial and/or Multiethnic by k-anonymity
    validate(apps, "program_applications")
    apps["race_white"] = apps["race_white"].map({True: "yes", False: "no"}).astype(object)
    assert "race_white" in _error(apps, "program_applications")


def _error(frame: pd.DataFrame, table: str = "service_requests") -> str:
    with pytest.raises(CitykitError) as info:
        validate(frame, table)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_duplicate_request_id_names_column_and_rows():
    frame = requests()
    frame.loc[[2, 4], "request_id"] = "R1"  # three rows share R1
    message = _error(frame)
    assert "request_id" in message and "3 rows" in message


def test_status_outside_the_list_names_the_value_and_count():
    frame = requests()
    frame.loc[1, "status"] = "Closd"
    message = _error(frame)
    assert "status" in message and "1 row " in message and "Closd" in message


def test_missing_required_value():
    frame = requests()
    frame.loc[[0, 5], "created_at"] = pd.NaT
    message = _error(frame)
    assert "created_at" in message and "2 rows" in message


def test_missing_and_unexpected_columns():
    assert "missing column agency" in _error(requests().drop(columns="agency"))
    assert "unexpected column caller_name" in _error(requests().assign(caller_name="Ann"))


def test_columns_out_of_order():
    frame = requests()
    columns = list(frame.columns)
    columns[0], columns[1] = columns[1], columns[0]
    assert "order" in _error(frame[columns])


def test_wrong_dtype_is_reported_with_the_found_dtype():
    frame = requests()
    frame["created_at"] = frame["created_at"].dt.strftime("%m/%d/%Y")  # text dates, as a portal exports them
    message = _error(frame)
    assert "created_at" in message


def test_coordinates_out_of_range_fail():
    frame = requests()
    frame.loc[2, "latitude"] = 95.0
    assert "latitude" in _error(frame)


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("neighborhoods", "population", -5),
        ("neighborhoods", "area_km2", 0.0),
        ("program_applications", "outcome", "Maybe"),
        ("program_applications", "submitted_at", pd.NaT),
    ],
)
def test_other_tables_reject_bad_values(table, column, value):
    frame = FRAMES[table]()
    frame.loc[1, column] = value
    message = _error(frame, table)
    assert column in message and "1 row" in message


def test_unique_neighborhood_and_application_id():
    frame = neighborhoods()
    frame.loc[1, "neighborhood"] = "Alder"
    assert "neighborhood" in _error(frame, "neighborhoods")
    apps = applications()
    apps.loc[2, "application_id"] = "A0"
    assert "application_id" in _error(apps, "program_applications")


def test_unknown_table():
    with pytest.raises(CitykitError, match="unknown table"):
        schema("requests")


def test_published_riverton_tables_are_valid(riverton):
    for table in riverton.tables:
        validate(pd.read_parquet(riverton.table_path(table)), table)
