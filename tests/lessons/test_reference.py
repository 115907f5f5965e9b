"""The hidden tests' reference route (`citykit.lessons.reference`): its views select what metrics.yml
says, follow a changed rule, and take the selection as bound values, never as SQL text.

Expected values here come from plain pandas masks over the frames the fixture writes: an independent
route from the DuckDB views under test.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from citykit import paths
from citykit.data import registry
from citykit.data.columns import PROGRAM_APPLICATIONS, REQUEST_FLAGS, SERVICE_REQUESTS
from citykit.errors import CitykitError
from citykit.lessons import reference

AS_OF = dt.date(2025, 12, 31)
NOW = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
PLACES = ["Ashgrove", "Ashgrove North", "O'Brien", "Cedar Flats"]  # one name begins another
# rows created exactly where periods start and end (an end is exclusive)
EDGES = pd.to_datetime(
    ["2024-10-01", "2025-01-01", "2025-03-01", "2025-04-01", "2025-12-31 23:59:59", "2026-01-01"], format="ISO8601"
)
TYPES = ["Pothole", "Noise Complaint", "Unlisted Type"]  # the last has no SLA target in metrics.yml
CRAFTED = "x' OR '1'='1"


def _requests(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    created = pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 570 * 24, n), unit="h")
    created = pd.DatetimeIndex([*EDGES, *created[len(EDGES) :]])
    frame = pd.DataFrame({c: pd.Series([None] * n, dtype="object") for c in SERVICE_REQUESTS})
    frame["request_id"] = [f"R{i:05d}" for i in range(n)]
    frame["created_at"] = created.astype("datetime64[us]")
    frame["status"] = rng.choice(["Open", "In Progress", "Closed", "Cancelled"], n, p=[0.15, 0.1, 0.65, 0.1])
    closed = created + pd.to_timedelta(rng.integers(1, 40 * 24, n), unit="h")
    has_close = frame["status"].isin(["Closed", "Cancelled"]).to_numpy() & (rng.random(n) > 0.05)
    frame["closed_at"] = pd.Series(closed, dtype="datetime64[us]").where(has_close)
    due = created + pd.to_timedelta(rng.integers(1, 10, n), unit="D")
    frame["due_at"] = pd.Series(due, dtype="datetime64[us]").where(rng.random(n) < 0.4)  # most exports: no due date
    frame["request_type"] = rng.choice(TYPES, n)
    frame["agency"] = np.where(frame["request_type"].eq("Pothole"), "Streets", "Police")
    frame["channel"] = rng.choice(["Phone", "Web", "App"], n)
    frame["neighborhood"] = rng.choice([*PLACES, None], n)
    frame["latitude"], frame["longitude"] = rng.normal(41.5, 0.01, n), rng.normal(-81.7, 0.01, n)
    frame["is_duplicate"] = rng.random(n) < 0.1
    for flag in REQUEST_FLAGS:
        frame[flag] = rng.random(n) < 0.08
    return frame


def _applications(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([None] * n, dtype="object") for c in PROGRAM_APPLICATIONS})
    frame["application_id"] = [f"A{i:05d}" for i in range(n)]
    submitted = pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 570, n), unit="D")
    frame["submitted_at"] = pd.DatetimeIndex([*EDGES, *submitted[len(EDGES) :]]).astype("datetime64[us]")
    frame["outcome"] = rng.choice(["Approved", "Denied", "Pending"], n)
    frame["neighborhood"] = rng.choice([*PLACES, None], n)
    return frame


@pytest.fixture()
def tiny(tmp_path, monkeypatch) -> dict[str, pd.DataFrame]:
    """A small registered dataset in a temporary CITYKIT_HOME, written with plain pandas."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path))
    rng = np.random.default_rng(11)
    frames = {
        "service_requests": _requests(rng),
        "program_applications": _applications(rng),
        "neighborhoods": pd.DataFrame({"neighborhood": PLACES, "population": [1000, 300, 2500, 400]}),
    }
    folder = tmp_path / "published" / "tiny"
    folder.mkdir(parents=True)
    for table, frame in frames.items():
        frame.to_parquet(folder / f"{table}.parquet", index=False)
    registry.register(registry.Dataset(name="tiny", as_of=AS_OF, location="published/tiny"))
    return frames


@pytest.fixture()
def metrics_copy(tmp_path, monkeypatch):
    """A course copy of metrics.yml the test may change: returns a function writing its changes."""
    folder = tmp_path / "standards"
    folder.mkdir()
    rules = yaml.safe_load(paths.standard_file("metrics.yml").read_text(encoding="utf-8"))
    monkeypatch.setattr(paths, "standards_dir", lambda: folder)

    def write(change) -> dict:
        change(rules)
        (folder / "metrics.yml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
        assert reference.standard("metrics.yml") == rules  # the course's copy wins over the kit's
        return rules

    return write


def ids(con, view: str) -> set[str]:
    return set(con.sql(f"SELECT request_id FROM {view}").df()["request_id"])


def selected(frame: pd.DataFrame, period: str | None, neighborhood: str | None, on: str = "created_at") -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if period is not None:
        p = {"2025": ("2025-01-01", "2026-01-01"), "2024-Q4": ("2024-10-01", "2025-01-01"),
             "2025-03": ("2025-03-01", "2025-04-01")}[period]  # fmt: skip
        keep &= (frame[on] >= pd.Timestamp(p[0])) & (frame[on] < pd.Timestamp(p[1]))
    if neighborhood is not None:
        keep &= frame["neighborhood"].eq(neighborhood)
    return frame[keep]


def counted_mask(frame: pd.DataFrame, rules: dict) -> pd.Series:
    ttc = rules["time_to_close"]
    keep = frame["status"].isin(ttc["closed_statuses"]) & ~frame["status"].isin(ttc["exclude"].get("statuses") or [])
    keep &= frame["closed_at"].notna()
    if ttc["exclude"].get("duplicates"):
        keep &= ~frame["is_duplicate"]
    for flag in ttc["exclude"].get("flags") or []:
        keep &= ~frame[flag]
    return keep


# ------------------------------------------------------------------ the selection


@pytest.mark.parametrize(
    "period, neighborhood",
    [(None, None), ("2025", None), ("2024-Q4", "Ashgrove"), ("2025-03", "O'Brien"), ("2025", "Ashgrove")],
)
def test_requests_and_applications_hold_the_period_and_neighborhood(tiny, period, neighborhood):
    con = reference.connect(
        "tiny", period, neighborhood, tables=("service_requests", "program_applications", "neighborhoods")
    )
    expected = selected(tiny["service_requests"], period, neighborhood)
    assert len(expected) and ids(con, "requests") == set(expected["request_id"])
    apps = selected(tiny["program_applications"], period, neighborhood, on="submitted_at")
    assert set(con.sql("SELECT application_id FROM applications").df()["application_id"]) == set(apps["application_id"])
    # neighborhoods is every neighborhood whatever the selection: the denominators of rates
    assert con.sql("SELECT count(*) FROM neighborhoods").fetchone()[0] == len(tiny["neighborhoods"])


def test_a_quoted_name_is_a_value_and_a_crafted_one_selects_nothing(tiny):
    con = reference.connect("tiny", neighborhood="O'Brien", tables=("service_requests", "program_applications"))
    frame = tiny["service_requests"]
    assert ids(con, "requests") == set(frame.loc[frame["neighborhood"].eq("O'Brien"), "request_id"]) != set()
    crafted = reference.connect("tiny", neighborhood=CRAFTED, tables=("service_requests", "program_applications"))
    for view in ("requests", "volume", "counted", "backlog", "applications"):
        assert crafted.sql(f"SELECT count(*) FROM {view}").fetchone()[0] == 0, view


def test_the_views_hold_no_selected_value_in_their_sql(tiny):
    con = reference.connect("tiny", "2025-03", "O'Brien", tables=("service_requests", "program_applications"))
    text = " ".join(sql for (sql,) in con.sql("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall())
    assert "FROM requests" in text  # the views are there
    for value in ("O'Brien", "O''Brien", "2025-03-01", "2025-04-01", "'Closed'", "published/tiny"):
        assert value not in text, value
    assert con.sql("SELECT getvariable('neighborhood'), getvariable('period_start')").fetchone() == (
        "O'Brien",
        dt.date(2025, 3, 1),
    )


# ------------------------------------------------------------------ the rules of metrics.yml


def test_counted_is_what_metrics_yml_says(tiny, metrics_copy):
    frame = tiny["service_requests"]
    rules = metrics_copy(lambda r: None)  # the kit's rules, unchanged
    con = reference.connect("tiny")
    assert ids(con, "counted") == set(frame.loc[counted_mask(frame, rules), "request_id"])
    assert ids(con, "counted") != set(frame.loc[frame["status"].eq("Closed"), "request_id"])  # the rules matter here


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: r["time_to_close"]["exclude"].update(flags=["flag_closed_before_created"]), id="one-flag"),
    pytest.param(lambda r: r["time_to_close"]["exclude"].update(flags=["flag_type_variant"]), id="another-flag"),
    pytest.param(lambda r: r["time_to_close"]["exclude"].update(duplicates=False), id="duplicates-count"),
    pytest.param(lambda r: (r["time_to_close"].update(closed_statuses=["Closed", "Cancelled"]),
                            r["time_to_close"]["exclude"].update(statuses=[])), id="cancelled-count"),
    pytest.param(lambda r: r["time_to_close"]["exclude"].update(statuses=["Closed"]), id="closed-excluded"),
])  # fmt: skip
def test_counted_follows_a_changed_rule(tiny, metrics_copy, change):
    frame = tiny["service_requests"]
    before = ids(reference.connect("tiny"), "counted")
    rules = metrics_copy(change)
    after = ids(reference.connect("tiny"), "counted")
    assert after == set(frame.loc[counted_mask(frame, rules), "request_id"])
    assert after != before


def test_days_targets_and_on_time_follow_the_definition_and_sla_days(tiny, metrics_copy):
    frame = tiny["service_requests"].set_index("request_id")
    rules = metrics_copy(lambda r: r["sla_days"].update({"Pothole": 2.5}))  # a course's own, fractional target
    got = (
        reference.connect("tiny")
        .sql("SELECT request_id, days_to_close, target_at, on_time FROM counted")
        .df()
        .set_index("request_id")
    )
    rows = frame.loc[got.index]
    days = (rows["closed_at"] - rows["created_at"]) / pd.Timedelta(days=1)
    assert np.allclose(got["days_to_close"], days)
    sla = pd.to_timedelta(rows["request_type"].map(rules["sla_days"]).astype(float), unit="D")
    target = rows["due_at"].fillna(rows["created_at"] + sla)
    assert (
        got["target_at"].isna().equals(target.isna())
        and rows.loc[target.isna(), "request_type"].eq("Unlisted Type").all()
    )
    assert (got["target_at"] == target)[target.notna()].all()
    on_time = (rows["closed_at"] <= target).where(target.notna())
    assert got["on_time"].astype("float").equals(on_time.astype("float"))
    sla_table = reference.connect("tiny").sql("SELECT * FROM sla").df().set_index("request_type")["days"]
    assert sla_table.to_dict() == {k: float(v) for k, v in rules["sla_days"].items()}


def test_backlog_ages_open_requests_at_the_datasets_now_in_the_standards_buckets(tiny, metrics_copy):
    frame = tiny["service_requests"]
    rules = metrics_copy(lambda r: r["backlog"].update(buckets=[
        {"label": "first fortnight", "min": 0, "max": 14}, {"label": "older", "min": 15, "max": None}]))  # fmt: skip
    got = (
        reference.connect("tiny", "2025")
        .sql("SELECT request_id, age_days, age_bucket FROM backlog")
        .df()
        .set_index("request_id")
    )
    rows = selected(frame, "2025", None)
    rows = rows[rows["status"].isin(rules["time_to_close"]["open_statuses"]) & ~rows["is_duplicate"]].set_index(
        "request_id"
    )
    assert set(got.index) == set(rows.index) != set()
    ages = np.floor((NOW - rows["created_at"]) / pd.Timedelta(days=1))
    assert (got["age_days"] == ages.loc[got.index]).all()
    assert (got["age_bucket"] == np.where(ages.loc[got.index] <= 14, "first fortnight", "older")).all()
    assert reference.connect("tiny").sql("SELECT getvariable('now')").fetchone()[0] == NOW.to_pydatetime()


def test_volume_leaves_out_duplicates_as_metrics_yml_says(tiny, metrics_copy):
    frame = tiny["service_requests"]
    assert ids(reference.connect("tiny"), "volume") == set(frame.loc[~frame["is_duplicate"], "request_id"])
    metrics_copy(lambda r: r["volume"]["exclude"].update(duplicates=False))
    assert ids(reference.connect("tiny"), "volume") == set(frame["request_id"])


def test_a_rule_naming_no_column_is_a_clear_error(tiny, metrics_copy):
    metrics_copy(lambda r: r["time_to_close"]["exclude"].update(flags=["flag_made_up"]))
    with pytest.raises(CitykitError, match=r"flag_made_up.*not a column"):
        reference.connect("tiny")


# ------------------------------------------------------------------ what it refuses, what it stays apart from


def test_a_database_dataset_or_a_missing_table_is_refused_clearly(tiny):
    registry.register(registry.Dataset(name="db", as_of=AS_OF, kind="postgres", location="CITY_DB_URL"))
    with pytest.raises(CitykitError, match="lives in a database"):
        reference.connect("db")
    registry.register(
        registry.Dataset(name="bare", as_of=AS_OF, location="published/tiny", tables=("service_requests",))
    )
    with pytest.raises(CitykitError, match="import-population"):
        reference.connect("bare", tables=("service_requests", "neighborhoods"))
    with pytest.raises(CitykitError, match="choose from"):
        reference.connect("tiny", tables=("parking_tickets",))


def test_it_takes_no_route_the_solutions_take():
    tree = ast.parse(Path(reference.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    for route in ("pandas", "citykit.data.load", "citykit.lessons.check", "citykit.standards.equity",
                  "citykit.data.quality", "citykit.standards.reader"):  # fmt: skip
        assert route not in imported, route
