"""PostgreSQL as a production source: `publish` then `citykit.load` gives the very frames the
parquet files give (filters pushed down as SQL), identical aggregates, and no connection string in
any file or output. Needs a server: `eval "$(bash .ci/postgres.sh)"` sets CITYKIT_TEST_PG_URL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

import citykit
from citykit.cli import main
from citykit.data import registry, sql_source
from citykit.errors import CitykitError

ENV = "CITYKIT_TEST_PG_URL"
pytestmark = pytest.mark.skipif(not os.environ.get(ENV), reason=f"{ENV} not set (run .ci/postgres.sh)")


@pytest.fixture(scope="module")
def published(riverton_small: Path, tmp_path_factory):
    """The small Riverton published to PostgreSQL from a fresh home (its own registry.local.yml)."""
    home = tmp_path_factory.mktemp("pg_home")
    (home / "published").symlink_to(riverton_small / "published")
    name = f"riverton_pg_{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKIT_HOME", str(home))
        result = sql_source.publish("riverton", ENV, as_name=name)
        yield name, home, result
        with sql_source._connect(ENV) as conn, conn.begin():
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.parametrize(
    "table, filters",
    [
        ("service_requests", {}),
        ("service_requests", {"period": "2025-Q2", "neighborhood": ["Millbrook", "Harbor Point"]}),
        ("service_requests", {"period": "2025-03", "columns": ["request_id", "council_district", "closed_at"]}),
        ("neighborhoods", {}),
        ("program_applications", {}),
        ("program_applications", {"period": "2025"}),
    ],
)
def test_load_gives_the_parquet_frame(published, table, filters):
    name, _, _ = published
    if "neighborhood" in filters:
        known = citykit.load("neighborhoods", "riverton")["neighborhood"].tolist()
        filters = {**filters, "neighborhood": known[:2]}
    from_parquet = citykit.load(table, "riverton", **filters)
    from_postgres = citykit.load(table, name, **filters)
    assert len(from_parquet) > 0
    pd.testing.assert_frame_equal(from_postgres, from_parquet)


def test_report_aggregates_are_identical(published):
    name, _, result = published
    assert result.rows["service_requests"] == len(citykit.load("service_requests", "riverton"))

    def aggregates(dataset: str) -> tuple[pd.Series, pd.Series]:
        df = citykit.load("service_requests", dataset)
        ok = df.status.eq("Closed") & ~df.is_duplicate & ~df.flag_closed_before_created & ~df.flag_placeholder_date
        median = ((df.closed_at - df.created_at)[ok] / pd.Timedelta(days=1)).groupby(df.request_type[ok]).median()
        return median, df.groupby("neighborhood").size()

    for parquet, postgres in zip(aggregates("riverton"), aggregates(name)):
        pd.testing.assert_series_equal(postgres, parquet)


def test_errors_match_the_parquet_loader(published):
    name, _, _ = published
    for kwargs, says in [
        ({"neighborhood": "Gotham"}, "unknown neighborhood 'Gotham'"),
        ({"period": "1999"}, "the data covers"),
    ]:
        with pytest.raises(CitykitError, match=says):
            citykit.load("service_requests", name, **kwargs)


def test_registry_keeps_the_variable_name_and_no_file_holds_the_url(published, capsys, monkeypatch):
    name, home, _ = published
    ds = registry.get(name)
    assert (ds.kind, ds.location) == ("postgres", ENV)
    url = os.environ[ENV]
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(password) >= 8
    assert main(["data", "publish", "riverton", "--to-env", ENV, "--as", name]) == 0
    monkeypatch.setenv("CITYKIT_BAD_PG", url.replace(password, "wrong-" + password[:4]))
    assert main(["data", "publish", "riverton", "--to-env", "CITYKIT_BAD_PG", "--as", name]) == 2
    assert main(["data", "publish", "riverton", "--to-env", "CITYKIT_UNSET_PG", "--as", name]) == 2
    out = capsys.readouterr()
    assert "CITYKIT_UNSET_PG is not set" in out.err and "cannot connect" in out.err
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "registry.local.yml" for p in files)
    for text in [out.out, out.err, *(p.read_bytes().decode("utf-8", "ignore") for p in files)]:
        assert password not in text and url not in text and "@127.0.0.1" not in text


def test_redact_removes_urls():
    assert sql_source.hide_urls("failed for postgresql://u:secret@h:5432/db now") == "failed for <database URL> now"


def _outputs(notebook: Path) -> list[str]:
    """Every cell's output text, apart from the injected parameters (they name the dataset)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts.append(str(output.get("text", "")) + str(data.get("text/plain", "")) + str(data.get("text/html", "")))
    return texts


def test_a_report_from_postgres_equals_the_report_from_parquet(published, tmp_path):
    from citykit.reports.run import find_module_notebook, run_report

    name, _, _ = published
    try:
        module = find_module_notebook("time-to-close")
    except CitykitError:
        pytest.skip("the time-to-close module is not in this tree yet")
    parquet = run_report(module, {"dataset": "riverton"}, out=tmp_path / "parquet")
    postgres = run_report(module, {"dataset": name}, out=tmp_path / "postgres")
    a, b = _outputs(parquet.notebook), _outputs(postgres.notebook)
    assert len(a) > 3
    assert [t.replace(name, "riverton") for t in b] == a
