"""Issue 16: outputs that never destroy, names that stay distinct, no password shown.

Each test reproduces a finding and asserts the fix: `--out` into a folder of the user's files is
refused and the files survive (and a rerun into a report's own folder replaces only what it wrote);
`--out /`, the home folder, a dataset's folder, the course and an existing file are refused before
any kernel starts; 北区 and 南区 get a report each; a database password never reaches a page, a
table, the executed notebook, the manifest or a message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from citykit import paths
from citykit.cli import main
from citykit.data import registry
from citykit.errors import CitykitError
from citykit.reports import batch
from citykit.reports.kernel import ReportKernel
from citykit.reports.run import MARKER, check_out, report_folder, resolve, run_report

MODULE = "time-to-close"
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
PASSWORD_URL = "postgresql://alice:secret@127.0.0.1/x"


class KernelStarted(Exception):
    """Raised where a kernel would start: a refusal must come before it."""


@pytest.fixture
def no_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise KernelStarted

    monkeypatch.setattr(ReportKernel, "start", refuse)
    monkeypatch.setattr(ReportKernel, "ready_for_run", refuse)
    monkeypatch.setattr(batch, "_on_pool", refuse)
    monkeypatch.setattr(batch, "_on_dask", refuse)


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(argv: list[str], capsys) -> str:
    """Run the CLI; it must exit 2 with one line on stderr (and no kernel). The line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ 1. outputs that never destroy


def test_out_holding_the_users_files_is_refused_and_they_survive(tmp_path, capsys, no_kernel, riverton):
    """Finding 1: `--out W` with W/tables/budget-2026.csv exited 0 and the budget file was gone."""
    work = tmp_path / "W"
    (work / "tables").mkdir(parents=True)
    (work / "tables" / "budget-2026.csv").write_text("line,amount\nroads,100\n", encoding="utf-8")
    before = files_under(tmp_path)
    line = refused(["report", "run", MODULE, "--out", str(work)], capsys)
    assert "holds files that no citykit report wrote" in line
    line = refused(["report", "batch", MODULE, "--over", "neighborhood", "--out", str(work)], capsys)
    assert "holds 'tables', which no citykit report wrote" in line
    assert files_under(tmp_path) == before  # the budget intact, nothing added


@pytest.mark.slow
def test_a_rerun_replaces_only_what_the_report_wrote(tmp_path):
    """A report's own folder: the user's files put in it later survive a rerun; a table the new
    run no longer writes goes; staging left by a killed run is cleaned."""
    nb = write(new_notebook(cells=[
        new_code_cell("tables = 2", metadata={"tags": ["parameters"]}),
        new_code_cell("import pandas as pd\nfrom citykit import publish_table\n"
                      "for n in range(tables):\n    publish_table(pd.DataFrame({'n': [n]}), f'table {n}')"),
    ], metadata=KERNEL), tmp_path / "src" / "counts.ipynb")  # fmt: skip
    work = tmp_path / "W"
    kernel = ReportKernel(reuse=True)  # one kernel for both runs
    first = run_report(nb, {"tables": 2}, work, kernel=kernel)
    assert sorted(p.name for p in first.tables) == ["01-table-0.csv", "02-table-1.csv"]
    (work / "tables" / "budget-2026.csv").write_text("line,amount\nroads,100\n", encoding="utf-8")
    (work / "notes.txt").write_text("mine", encoding="utf-8")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (work / f".citykit-staging-{dead.pid}-abc").mkdir()  # a run killed mid-way left this

    try:
        run_report(nb, {"tables": 1}, work, kernel=kernel)
    finally:
        kernel.shutdown()
    assert (work / "tables" / "budget-2026.csv").read_text(encoding="utf-8") == "line,amount\nroads,100\n"
    assert (work / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in (work / "tables").iterdir()) == ["01-table-0.csv", "budget-2026.csv"]
    assert not list(work.glob(".citykit-staging-*"))
    manifest = json.loads((work / "manifest.json").read_text(encoding="utf-8"))
    assert "notes.txt" not in manifest["outputs"] and "tables/02-table-1.csv" not in manifest["outputs"]


@pytest.fixture
def places(tmp_path, riverton, monkeypatch):
    """Places no report may write into, by name."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    existing = tmp_path / "report.html"
    existing.write_text("<p>the user's page</p>", encoding="utf-8")
    link = tmp_path / "link-to-root"
    link.symlink_to("/")
    not_ours = tmp_path / "ok"
    (tmp_path / "ok.failed").mkdir()
    (tmp_path / "ok.failed" / "keep.txt").write_text("mine", encoding="utf-8")
    return {
        "/": (Path("/"), "is the root of a file system"),
        "home": (home, "is your home folder"),
        "a file": (existing, "is a file"),
        "a link to /": (link, "is the root of a file system"),
        "a dataset's folder": (riverton.folder / "out", "inside dataset 'riverton'"),
        "the data home": (paths.citykit_home() / "out", "inside the data home"),
        "the course": (paths.course_root() / "notebooks" / "out", "inside the course folder"),
        "the course itself": (paths.course_root(), "inside the course folder"),
        "<out>.failed of the user's": (not_ours, "ok.failed' exists and no citykit report wrote it"),
    }


@pytest.mark.parametrize(
    "place",
    ["/", "home", "a file", "a link to /", "a dataset's folder", "the data home", "the course", "the course itself",
     "<out>.failed of the user's"],
)  # fmt: skip
def test_unsafe_places_are_refused_before_any_kernel(place, places, tmp_path, capsys, no_kernel):
    """Finding 1: `--out /` wrote a report into /, --out inside a dataset was accepted, an existing
    file ran the whole report and then failed with a traceback."""
    target, says = places[place]
    root_before = sorted(os.listdir("/"))
    before = files_under(tmp_path)
    assert says in refused(["report", "run", MODULE, "--out", str(target)], capsys)
    if place != "<out>.failed of the user's":
        assert says in refused(["report", "batch", MODULE, "--over", "neighborhood", "--out", str(target)], capsys)
    assert sorted(os.listdir("/")) == root_before and files_under(tmp_path) == before
    assert not (target.exists() and target.is_dir() and (target / MARKER).exists())


def test_the_archive_and_new_folders_are_places_for_reports(tmp_path, riverton):
    check_out(paths.reports_dir() / "x" / "y")  # the course's archive
    check_out(tmp_path / "new" / "folder")
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # checking writes nothing


# ------------------------------------------------------------------ 2. names that stay distinct


@pytest.fixture
def wards(tmp_path, monkeypatch, riverton):
    """An imported city whose neighborhoods are 北区 and 南区, and a report over them."""
    home = tmp_path / "home"
    folder = home / "imported" / "wards"
    folder.mkdir(parents=True)
    duckdb.execute(
        "COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () % 2 = 0 THEN '北区' ELSE '南区' END AS neighborhood)"
        f" FROM read_parquet(?) LIMIT 200) TO '{(folder / 'service_requests.parquet').as_posix()}' (FORMAT parquet)",
        [riverton.table_path("service_requests").as_posix()],
    )
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    registry.register(registry.Dataset("wards", dt.date(2025, 12, 31), location="imported/wards",
                                       title="Wards", tables=("service_requests",)))  # fmt: skip
    return write(new_notebook(cells=[
        new_code_cell('dataset = "wards"\nneighborhood = None', metadata={"tags": ["parameters"]}),
        new_code_cell('print("REPORT FOR", neighborhood)'),
    ], metadata=KERNEL), tmp_path / "src" / "wards.ipynb")  # fmt: skip


def printed(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_two_neighborhoods_in_another_alphabet_get_a_report_each(wards, tmp_path, capsys):
    """Finding 2: `-p neighborhood=南区` produced the 北区 report, and batch refused to run."""
    _, runs, root = batch.plan(str(wards), "neighborhood", out=tmp_path / "batch")
    assert [r.value for r in runs] == ["北区", "南区"]
    north, south = runs
    assert north.out != south.out and north.out.parent.parent == south.out.parent.parent == root

    run_report(str(wards), {"neighborhood": "北区"}, north.out)
    assert main(["report", "run", str(wards), "-p", "neighborhood=南区", "--out", str(south.out)]) == 0
    capsys.readouterr()
    for run, name in ((north, "北区"), (south, "南区")):
        manifest = json.loads((run.out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["parameters"]["neighborhood"] == name
        assert printed(run.out / "wards.ipynb").strip() == f"REPORT FOR {name}"
        assert f"neighborhood = {name}" in (run.out / "wards.html").read_text(encoding="utf-8")


def test_a_folder_holding_other_values_is_never_reused(wards, tmp_path):
    """Should two values' hashes collide, the second run is refused instead of overwriting."""
    report = resolve(str(wards))
    values = {"dataset": "wards", "neighborhood": "南区"}
    folder = report_folder(tmp_path / "batch", values, report.parameters, "2025-12-31")
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"values": "another set of values"}), encoding="utf-8")
    with pytest.raises(CitykitError, match="holds the report of other parameter values"):
        report_folder(tmp_path / "batch", values, report.parameters, "2025-12-31")


# ------------------------------------------------------------------ 4. no password shown


@pytest.mark.slow
def test_a_password_in_a_url_parameter_is_shown_nowhere(tmp_path, capsys):
    """Finding 8: the HTML page printed a database password that the manifest hid."""
    nb = write(new_notebook(cells=[
        new_markdown_cell("# Database check"),
        new_code_cell('db = "none"\nfail = False', metadata={"tags": ["parameters"]}),
        new_code_cell('print("connecting to", db)'),
        new_code_cell('from urllib.parse import urlparse\nprint("password:", urlparse(db).password)'),
        new_code_cell('print("password length in the kernel:", len(urlparse(db).password or ""))'),
        new_code_cell('import pandas as pd\ndisplay(pd.DataFrame({"source": [db]}))'),
        new_code_cell('if fail:\n    raise ValueError(f"cannot connect to {db}")'),
    ], metadata=KERNEL), tmp_path / "src" / "dbcheck.ipynb")  # fmt: skip
    out = tmp_path / "out"
    assert main(["report", "run", str(nb), "-p", f"db={PASSWORD_URL}", "--out", str(out)]) == 0
    shown = capsys.readouterr()
    assert main(["report", "run", str(nb), "-p", f"db={PASSWORD_URL}", "-p", "fail=true", "--out", str(out)]) == 1
    failed = capsys.readouterr()
    assert "postgresql://***@127.0.0.1/x" in failed.err and len(failed.err.strip().splitlines()) == 1

    written = files_under(tmp_path / "out") | files_under(tmp_path / "out.failed")
    assert {"dbcheck.html", "dbcheck.ipynb", "manifest.json", "tables/01-database-check.csv"} <= set(written)
    for text in [
        shown.out,
        shown.err,
        failed.out,
        failed.err,
        *(b.decode("utf-8", "replace") for b in written.values()),
    ]:
        assert "secret" not in text
    page = written["dbcheck.html"].decode("utf-8")
    assert "db = postgresql://***@127.0.0.1/x" in page  # the header names the database, not its password
    assert "password: ***" in printed(out / "dbcheck.ipynb")
    # QA walk: the kernel itself gets the real value (it must connect), only what is saved is redacted
    assert f"password length in the kernel: {len('secret')}" in printed(out / "dbcheck.ipynb")


def test_a_run_stopped_before_its_kernel_leaves_nothing(tmp_path, no_kernel, riverton):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        with pytest.raises(KernelStarted):
            run_report(MODULE, {}, out)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["empty"]  # no marker, no folder
