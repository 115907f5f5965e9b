"""`citykit.connect`: one SQL route to a dataset's tables. Its views hold the rows `citykit.load`
gives with the same filters; paths and values reach SQL bound, so a home under a folder named
o'brien works; a PostgreSQL dataset gives the same rows (skipped without a server:
`eval "$(bash .ci/postgres.sh)"` sets CITYKIT_TEST_PG_URL; CI starts one)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import citykit
from citykit.data import registry, sql_source
from citykit.errors import CitykitError

PG = "CITYKIT_TEST_PG_URL"
TABLES = ("service_requests", "program_applications", "neighborhoods")
SELECTIONS = [  # FIRST and SECOND: two of the small city's neighborhoods, read from its data (`_named`)
    {},
    {"period": "2025-Q2"},
    {"period": "2025-03", "neighborhood": "FIRST"},
    {"period": "2025", "neighborhood": ["FIRST", "SECOND"]},
]


def _named(selection: dict) -> dict:
    """The selection with FIRST and SECOND replaced by the small city's two busiest neighborhoods (of those
    applicants' records also name)."""
    if "neighborhood" not in selection:
        return selection
    ds = registry.get("riverton")
    requests = pc.value_counts(
        pq.read_table(ds.table_path("service_requests"), columns=["neighborhood"])["neighborhood"]
    )
    # applicants' neighborhoods are generalised away where few people live: keep names both tables use
    applied = set(
        pq.read_table(ds.table_path("program_applications"), columns=["neighborhood"])["neighborhood"].to_pylist()
    )
    ranked = sorted(requests, key=lambda v: -v["counts"].as_py())
    names = [v["values"].as_py() for v in ranked if v["values"].as_py() in applied - {None}][:2]
    swap = {"FIRST": names[0], "SECOND": names[1]}
    value = selection["neighborhood"]
    return {**selection, "neighborhood": swap[value] if isinstance(value, str) else [swap[v] for v in value]}


def _home(riverton_small: Path, root: Path) -> Path:
    """A CITYKIT_HOME at `root` holding the small city's published tables (symlinked)."""
    root.mkdir(parents=True)
    (root / "published").symlink_to(riverton_small / "published")
    return root


def _frames(con, tables=TABLES) -> dict[str, pd.DataFrame]:
    return {t: con.sql(f'SELECT * FROM "{t}"').df() for t in tables}


def _loaded(dataset: str, selection: dict) -> dict[str, pd.DataFrame]:
    """The same selection through citykit.load: the neighborhoods table stays whole (a denominator)."""
    return {t: citykit.load(t, dataset, **(selection if t != "neighborhoods" else {})) for t in TABLES}


@pytest.fixture()
def small_home(riverton_small, tmp_path, monkeypatch) -> Path:
    home = _home(riverton_small, tmp_path / "o'brien" / "home")
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    return home


@pytest.mark.parametrize("selection", SELECTIONS)
def test_views_hold_the_rows_load_gives_under_a_folder_named_obrien(riverton_small, small_home, selection, monkeypatch):
    assert "'" in str(registry.get("riverton").table_path("service_requests"))
    selection = _named(selection)
    got = _frames(citykit.connect("riverton", tables=TABLES, **selection))
    monkeypatch.setenv("CITYKIT_HOME", str(riverton_small))  # the same files, loaded from a plain path
    for table, frame in _loaded("riverton", selection).items():
        pd.testing.assert_frame_equal(got[table], frame)
    # and the count pyarrow reads from the file itself, filtered in arrow (no SQL at all)
    requests = pq.read_table(registry.get("riverton").table_path("service_requests"))
    if "period" in selection:
        p = citykit.parse_period(selection["period"])
        created = requests["created_at"]
        requests = requests.filter(
            pc.and_(pc.greater_equal(created, pd.Timestamp(p.start)), pc.less(created, pd.Timestamp(p.end)))
        )
    if "neighborhood" in selection:
        names = selection["neighborhood"]
        names = pa.array([names] if isinstance(names, str) else names)
        requests = requests.filter(pc.is_in(requests["neighborhood"], value_set=names))
    assert len(got["service_requests"]) == requests.num_rows > 0


def test_variables_hold_the_selection_and_the_dataset_dates(small_home):
    hood = _named({"neighborhood": "FIRST"})["neighborhood"]
    con = citykit.connect("riverton", period="2025-Q3", neighborhood=hood, variables={"minimum": 20})
    ds = registry.get("riverton")
    got = con.sql(
        "SELECT getvariable('period_start'), getvariable('period_end'), getvariable('neighborhood'), "
        "getvariable('neighborhoods'), getvariable('now'), getvariable('as_of'), getvariable('minimum')"
    ).fetchone()
    assert got == (
        pd.Timestamp("2025-07-01").to_pydatetime(), pd.Timestamp("2025-10-01").to_pydatetime(), hood,
        [hood], ds.now, ds.as_of, 20,
    )  # fmt: skip
    # a value that looks like SQL is only ever a value
    crafted = citykit.connect(variables={"name": "x'); DROP TABLE t; --"})
    assert crafted.sql("SELECT getvariable('name')").fetchone()[0] == "x'); DROP TABLE t; --"


def test_no_arguments_is_the_plain_connection():
    con = citykit.connect()
    assert con.sql("SELECT 42").fetchone() == (42,)
    assert con.sql("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"dataset": "riverton", "neighborhood": "Gotham"}, "unknown neighborhood 'Gotham'"),
        ({"dataset": "riverton", "neighborhood": "x' OR '1'='1"}, "unknown neighborhood"),
        ({"dataset": "riverton", "tables": ["requests"]}, "unknown table 'requests'"),
        ({"dataset": "riverton", "period": "last year"}, "not understood"),
        ({"period": "2025"}, "name it with dataset="),
        ({"dataset": "nowhere"}, "nowhere"),
    ],
)
def test_bad_arguments_are_one_line_errors(small_home, kwargs, says):
    with pytest.raises(CitykitError, match=says) as error:
        citykit.connect(**kwargs)
    assert "\n" not in str(error.value)


def test_boundaries_of_a_parquet_dataset(small_home):
    assert citykit.boundaries("riverton") == registry.get("riverton").boundaries_path


# ------------------------------------------------------------------ a dataset in PostgreSQL


@pytest.fixture(scope="module")
def published(riverton_small, tmp_path_factory):
    if not os.environ.get(PG):
        pytest.skip(f"{PG} not set (run .ci/postgres.sh)")
    home = _home(riverton_small, tmp_path_factory.mktemp("pg") / "o'brien")
    name = f"riverton_pg_{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKIT_HOME", str(home))
        sql_source.publish("riverton", PG, as_name=name)
        yield name
        with sql_source._connect(PG) as conn, conn.begin():
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.parametrize("selection", SELECTIONS)
def test_a_postgres_dataset_gives_the_parquet_rows(published, selection):
    selection = _named(selection)
    from_postgres = _frames(citykit.connect(published, tables=TABLES, **selection))
    from_parquet = _frames(citykit.connect("riverton", tables=TABLES, **selection))
    for table in TABLES:
        assert len(from_parquet[table]) > 0
        pd.testing.assert_frame_equal(from_postgres[table], from_parquet[table])
    con = citykit.connect(published, **selection)
    assert con.sql("SELECT getvariable('now')").fetchone()[0] == registry.get(published).now


def test_postgres_boundaries_and_errors(published):
    path = citykit.boundaries(published)
    assert path is not None and path.read_text(encoding="utf-8") == registry.get("riverton").boundaries_path.read_text(
        encoding="utf-8"
    )
    with pytest.raises(CitykitError, match="unknown neighborhood 'Gotham'"):
        citykit.connect(published, neighborhood="Gotham")


def test_a_typed_none_compares_with_dates_and_reserved_names_are_refused(small_home):
    con = citykit.connect("riverton", variables={"start": (None, "DATE"), "since": ("2025-12-01", "DATE")})
    everything, since = con.sql(
        "SELECT count(*) FILTER (WHERE getvariable('start') IS NULL OR created_at >= getvariable('start')), "
        "count(*) FILTER (WHERE created_at >= getvariable('since')) FROM service_requests"
    ).fetchone()
    requests = pq.read_table(registry.get("riverton").table_path("service_requests"), columns=["created_at"])
    assert everything == requests.num_rows
    assert since == pc.sum(pc.greater_equal(requests["created_at"], pd.Timestamp("2025-12-01"))).as_py() > 0
    for name in ("now", "period_start", "service_requests_path"):
        with pytest.raises(CitykitError, match=r"set by citykit\.connect itself"):
            citykit.connect("riverton", variables={name: 1})
