"""`citykit.open_at_now` filters the open requests in DuckDB before pandas sees a row (issue 21: the
6M-request city read every row into pandas to keep 90,000). Its rows are the ones the rule as first
written in pandas keeps (`_pandas_open`, kept here as the reference), on hand-built edge cases whose
answer is written by hand and on the whole of Riverton (city, a neighborhood, a creation period)."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

import citykit
from citykit.data import backlog as backlog_module
from citykit.data import registry
from citykit.standards.reader import load_metrics


def _pandas_open(frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """The pandas rule before issue 21, verbatim: open status, or closed after now unless cancelled;
    not a duplicate (a missing flag is not one); created before now."""
    closed_at = pd.to_datetime(frame["closed_at"])
    open_status = frame["status"].isin(load_metrics()["time_to_close"]["open_statuses"])
    closed_later = closed_at.gt(now).fillna(False) & ~frame["status"].isin(["Cancelled"])
    keep = (open_status | closed_later) & ~frame["is_duplicate"].fillna(False).astype(bool)
    keep &= pd.to_datetime(frame["created_at"]).lt(now)
    return frame[keep.to_numpy()].reset_index(drop=True)


def _same_as_pandas(dataset: str, now: pd.Timestamp, **selection) -> pd.DataFrame:
    period = selection.get("created_in")
    frame = citykit.load(
        "service_requests",
        dataset=dataset,
        period=registry_period(dataset, period),
        neighborhood=selection.get("neighborhood"),
        columns=backlog_module.COLUMNS,
    )
    expected = _pandas_open(frame, now)
    found = citykit.open_at_now(dataset, **selection)
    pd.testing.assert_frame_equal(found[backlog_module.COLUMNS], expected)
    days = [(now - t).days for t in expected["created_at"]]  # timedelta.days: whole days, floored
    assert found["age_days"].tolist() == days
    return found


def registry_period(dataset: str, period):
    from citykit.data.periods import parse_period

    return None if period is None else parse_period(period, as_of=registry.get(dataset).as_of)


@pytest.mark.parametrize(
    "selection", [{}, {"neighborhood": "Millbrook"}, {"created_in": "2025-Q4"}], ids=["city", "hood", "period"]
)
def test_riverton_open_rows_are_the_pandas_rule_s(riverton, selection):
    found = _same_as_pandas("riverton", pd.Timestamp(riverton.now), **selection)
    assert len(found) > 100


# (created_at, closed_at, status, is_duplicate) as days before "now" (None = missing), and open?
NOW_MINUS = {
    "open": (31, None, "Open", False, True),
    "in progress, duplicate flag missing": (31, None, "In Progress", None, True),
    "duplicate": (31, None, "Open", True, False),
    "created at now": (0, None, "Open", False, False),
    "no creation date": (None, None, "Open", False, False),
    "closed after now": (61, -4, "Closed", False, True),
    "cancelled after now": (61, -4, "Cancelled", False, False),
    "no status, closed after now": (61, -4, None, False, True),
    "closed before now": (61, 27, "Closed", False, False),
    "closed at now": (61, 0, "Closed", False, False),
    "closed, no close date": (61, None, "Closed", False, False),
    "no status, no close date": (61, None, None, False, False),
    "placeholder creation date": (46020, None, "Open", False, True),
}


@pytest.fixture
def edge_city(riverton, tmp_path, monkeypatch):
    """Riverton's other tables, and a service_requests of one row per case above (in Millbrook)."""
    home = tmp_path / "home"
    folder = home / riverton.location
    folder.mkdir(parents=True)
    for table in riverton.tables:
        if table != "service_requests":
            (folder / f"{table}.parquet").symlink_to(riverton.table_path(table))
    now = pd.Timestamp(riverton.now)

    def at(days):
        return None if days is None else (now - pd.Timedelta(days=days)).to_pydatetime()

    cases = pd.DataFrame(
        [(i, at(c), at(d), s, dup) for i, (c, d, s, dup, _) in enumerate(NOW_MINUS.values())],
        columns=["i", "created", "closed", "st", "dup"],
    ).astype({"dup": "boolean"})
    duckdb.execute(
        "COPY (SELECT r.* REPLACE (c.created AS created_at, c.closed AS closed_at, c.st AS status, "
        "c.dup AS is_duplicate, 'Millbrook' AS neighborhood) FROM (SELECT *, row_number() OVER () - 1 AS i "
        "FROM read_parquet($src) LIMIT $n) r JOIN cases c USING (i) ORDER BY i) TO "
        f"'{(folder / 'service_requests.parquet').as_posix()}' (FORMAT parquet)",
        {"src": riverton.table_path("service_requests").as_posix(), "n": len(cases)},
    )
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    return now


def test_edge_cases_by_hand(edge_city):
    found = _same_as_pandas("riverton", edge_city)
    assert len(found) == sum(case[-1] for case in NOW_MINUS.values()) == 5
    expected_status = [case[2] for case in NOW_MINUS.values() if case[-1]]
    assert [None if pd.isna(s) else s for s in found["status"]] == expected_status
    assert found["age_days"].tolist() == [31, 31, 61, 61, 46020]
    assert found["bucket"].iloc[-1] == "over 365 days"
    counts = citykit.backlog("riverton", neighborhood="Millbrook")
    assert int(counts.sum()) == 5 and int(counts["over 365 days"]) == 1


def test_a_database_dataset_filters_the_loaded_rows_with_the_same_rule(riverton, monkeypatch):
    """A dataset in a database: `load` reads the selected rows; the same SQL rule keeps the open ones."""
    rows = citykit.load("service_requests", neighborhood="Millbrook", columns=backlog_module.COLUMNS)
    expected = _pandas_open(rows, pd.Timestamp(riverton.now))
    as_database = dataclasses.replace(riverton, kind="postgres")
    monkeypatch.setattr(backlog_module.registry, "get", lambda name: as_database)
    read = []

    def load(table, dataset, period, neighborhood, columns):
        read.append((table, dataset, period, neighborhood, columns))
        return rows.set_index(np.arange(len(rows)) * 2)  # an index of its own: the result's is fresh

    monkeypatch.setattr(backlog_module, "load", load)
    found = citykit.open_at_now("riverton", neighborhood="Millbrook")
    assert read == [("service_requests", "riverton", None, "Millbrook", backlog_module.COLUMNS)]
    assert 100 < len(found) < len(rows)
    pd.testing.assert_frame_equal(found[backlog_module.COLUMNS], expected)
