"""citykit's own readers share one DuckDB database per process: `citykit.data.views.connect(...,
shared=True)` (as `compare_periods` and `compare_backlog` use it) is a cursor whose views and tables
are TEMP ones, so two selections open at once each see only their own rows, and a notebook's
`citykit.connect` stays a database of its own. A dataset's neighborhood names are read once per
version of its parquet file: a rewritten file's new names are seen, an unknown name still raises."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import citykit
from citykit import files
from citykit.data import changes, parquet_source, query, registry, views
from citykit.errors import CitykitError


@pytest.fixture()
def small_home(riverton_small, tmp_path, monkeypatch) -> Path:
    """A CITYKIT_HOME holding a copy of the small city's published tables (the test may rewrite them)."""
    home = tmp_path / "home"
    shutil.copytree(riverton_small / "published", home / "published")
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    monkeypatch.delenv("CITYKIT_NO_CACHE", raising=False)
    return home


def _requests() -> Path:
    return registry.get("riverton").table_path("service_requests")


def _two_names() -> list[str]:
    counts = pc.value_counts(pq.read_table(_requests(), columns=["neighborhood"])["neighborhood"])
    return [v["values"].as_py() for v in sorted(counts, key=lambda v: -v["counts"].as_py()) if v["values"].as_py()][:2]


def _count(sql: str, params: list) -> int:
    """A count straight from the parquet file, in a DuckDB database of its own."""
    with duckdb.connect() as con:
        return con.execute(sql, params).fetchone()[0]


def test_two_shared_connects_each_see_their_own_rows(small_home):
    first, second = _two_names()
    path = _requests().as_posix()
    in_q3 = "created_at >= TIMESTAMP '2025-07-01' AND created_at < TIMESTAMP '2025-10-01'"
    expected = {
        name: _count(f"SELECT count(*) FROM read_parquet(?) WHERE neighborhood = ? AND {in_q3}", [path, name])
        for name in (first, second)
    }
    assert expected[first] != expected[second] and min(expected.values()) > 0

    # the shared ones are cursors of the process' database: a table it holds they see (made before
    # they open: a cursor with TEMP objects does not see tables made later); their views are TEMP
    # ones, which neither that database nor another cursor sees
    shared = query.connect(shared=True)
    shared.execute("CREATE OR REPLACE TABLE test_shared_marker AS SELECT 1 AS x")
    a = views.connect("riverton", period="2025-Q3", neighborhood=first, shared=True)
    b = views.connect("riverton", period="2025-Q3", neighborhood=second, shared=True)
    notebook = citykit.connect("riverton", period="2025-Q3", neighborhood=first)
    for con, name in ((a, first), (b, second), (notebook, first)):
        n, names = con.sql("SELECT count(*), list(DISTINCT neighborhood) FROM service_requests").fetchone()
        assert (n, names) == (expected[name], [name])
        assert con.sql("SELECT getvariable('neighborhood')").fetchone() == (name,)
    try:
        assert a.sql("SELECT x FROM test_shared_marker").fetchone() == (1,)
        with pytest.raises(duckdb.CatalogException):
            notebook.sql("SELECT x FROM test_shared_marker")  # a notebook's connection: a database of its own
    finally:
        shared.execute("DROP TABLE test_shared_marker")
    with pytest.raises(duckdb.CatalogException):
        shared.sql("SELECT count(*) FROM service_requests")
    assert a.sql("SELECT temporary FROM duckdb_views() WHERE view_name = 'service_requests'").fetchall() == [(True,)]
    assert notebook.sql("SELECT temporary FROM duckdb_views() WHERE view_name = 'service_requests'").fetchall() == [
        (False,)
    ]
    a.close()
    assert b.sql("SELECT count(*) FROM service_requests").fetchone() == (expected[second],)  # b outlives a
    b.close()
    notebook.close()


def test_compare_periods_rows_are_each_selections_own(small_home):
    """`changes._source` (behind compare_periods), two open at once: each `rows` holds its own
    neighborhood's requests of the window, counted here with pandas from the file."""
    first, second = _two_names()
    frame = pq.read_table(_requests(), columns=["created_at", "neighborhood"]).to_pandas()
    window = (frame["created_at"] >= "2025-01-01") & (frame["created_at"] < "2025-07-01")
    one = changes._source("riverton", citykit.parse_period("2025-01").start, citykit.parse_period("2025-06").end, first)
    two = changes._source(
        "riverton", citykit.parse_period("2025-01").start, citykit.parse_period("2025-06").end, second
    )
    try:
        for con, name in ((one, first), (two, second)):
            assert con.sql("SELECT count(*) FROM rows").fetchone()[0] == int(
                (window & (frame["neighborhood"] == name)).sum()
            )
    finally:
        one.close()
        two.close()


def test_neighborhood_names_are_read_once_per_version_of_the_file(small_home, monkeypatch):
    monkeypatch.setattr(files, "SETTLED_NS", 0)  # the copied file counts as settled at once
    reads = []
    distinct = parquet_source._distinct_neighborhoods
    monkeypatch.setattr(parquet_source, "_distinct_neighborhoods", lambda *a: reads.append(1) or distinct(*a))
    first, second = _two_names()
    citykit.connect("riverton", neighborhood=first).close()
    citykit.load("service_requests", "riverton", neighborhood=second, columns=["neighborhood"])
    views.connect("riverton", neighborhood=second, shared=True).close()
    assert len(reads) == 1

    # the file rewritten: `first` renamed; the new name is known at once, the old one refused
    path = _requests()
    table = pq.read_table(path)
    column = table.schema.get_field_index("neighborhood")
    renamed = pc.if_else(pc.equal(table["neighborhood"], first), pa.scalar("Zenith Park"), table["neighborhood"])
    pq.write_table(table.set_column(column, "neighborhood", renamed), path)
    assert len(citykit.load("service_requests", "riverton", neighborhood="Zenith Park", columns=["neighborhood"])) > 0
    assert len(reads) == 2
    known = sorted({n for n in pq.read_table(path, columns=["neighborhood"])["neighborhood"].to_pylist() if n})
    assert "Zenith Park" in known and first not in known
    says = f"unknown neighborhood {first!r} in dataset 'riverton'; choose from: {', '.join(known)}"
    for read in (
        lambda: citykit.connect("riverton", neighborhood=first),
        lambda: citykit.load("service_requests", "riverton", neighborhood=[second, first]),
        lambda: citykit.backlog("riverton", neighborhood=first),
    ):
        with pytest.raises(CitykitError) as error:
            read()
        assert str(error.value) == says
    assert len(reads) == 2

    monkeypatch.setenv("CITYKIT_NO_CACHE", "1")  # the plain path: read every time
    citykit.connect("riverton", neighborhood="Zenith Park").close()
    citykit.connect("riverton", neighborhood="Zenith Park").close()
    assert len(reads) == 4
