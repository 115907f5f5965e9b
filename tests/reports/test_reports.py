"""The production-run contract and the report runner: outputs, HTML for readers, atomicity, timeouts."""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from citykit import paths
from citykit.cli import main
from citykit.errors import CitykitError, WorkFailed
from citykit.reports.contract import ProductionContract, apply_contract, lesson_only_reason, source_index
from citykit.reports.html import find_chromium
from citykit.reports.run import default_out, find_module_notebook, prepare, run_report

MODULE = "04-time-to-close"
SOURCE = paths.notebooks_dir() / MODULE / f"{MODULE}.ipynb"
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def nbg(grade: bool, solution: bool, task: bool = False) -> dict:
    return {
        "nbgrader": {
            "grade": grade,
            "solution": solution,
            "task": task,
            "locked": False,
            "grade_id": f"g{grade}{solution}{task}",
            "schema_version": 3,
        }
    }


def tiny_notebook(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata=KERNEL)


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def body(page: str) -> str:
    """The page without its stylesheets (the lab CSS mentions code classes)."""
    return re.sub(r"<style.*?</style>", "", page, flags=re.S)


def kernel_processes() -> list[psutil.Process]:
    """Live kernels under this process (a zombie is dead, only not yet reaped by its parent)."""
    live = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(process.cmdline()):
                live.append(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return live


# ------------------------------------------------------------------ the contract


def test_contract_removes_tests_answers_tasks_and_training_cells():
    cells = [
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),  # 0 kept
        new_code_cell("### BEGIN SOLUTION\ny = x\n### END SOLUTION", metadata=nbg(False, True)),  # 1 kept
        new_code_cell("assert y == 1", metadata=nbg(True, False)),  # 2 test
        new_markdown_cell("My answer", metadata=nbg(True, True)),  # 3 manually graded answer
        new_markdown_cell("Describe the data", metadata=nbg(False, False, task=True)),  # 4 task
        new_markdown_cell("### Exercise", metadata={"tags": ["training"]}),  # 5 lesson-only
        new_markdown_cell("For readers"),  # 6 kept
        new_code_cell("print(y)", metadata={"nbgrader": {"grade": False, "solution": False, "locked": True}}),  # 7
    ]
    nb = new_notebook(cells=cells)
    kept = apply_contract(nb)
    assert [c.source for c in kept.cells] == ["x = 1", cells[1].source, "For readers", "print(y)"]
    assert [source_index(c) for c in kept.cells] == [0, 1, 6, 7]
    assert len(nb.cells) == 8 and "citykit" not in nb.cells[0].metadata  # the input is untouched
    _, resources = ProductionContract().preprocess(nbformat.from_dict(nb), {})
    reasons = dict(resources["citykit"]["removed_cells"])
    assert reasons == {2: "nbgrader test", 3: "manually graded answer", 4: "nbgrader task", 5: "tagged 'training'"}
    assert lesson_only_reason(new_code_cell("z = 2")) is None


def test_contract_leaves_out_cells_needing_tables_the_dataset_lacks_with_one_note_each():
    def needs(*tables):
        return {"citykit": {"requires": list(tables)}}

    cells = [
        new_code_cell("setup"),  # 0
        new_code_cell("population = load()", metadata=needs("neighborhoods")),  # 1 left out: a note
        new_markdown_cell("## Exercise", metadata={"tags": ["training"]}),  # 2 lesson-only, invisible to readers
        new_code_cell("rates = n / population", metadata=needs("neighborhoods")),  # 3 same gap: no second note
        new_code_cell("apps", metadata=needs("neighborhoods", "program_applications")),  # 4 a new gap: its own note
        new_markdown_cell("For readers"),  # 5
        new_code_cell("chart(rates)", metadata=needs("neighborhoods")),  # 6 after a kept cell: noted again
    ]
    nb = new_notebook(cells=cells)
    every = ["setup", "population = load()", "rates = n / population", "apps", "For readers", "chart(rates)"]
    assert [c.source for c in apply_contract(nb).cells] == every
    full = ["service_requests", "neighborhoods", "program_applications"]
    assert [c.source for c in apply_contract(nb, available_tables=full, dataset="riverton").cells] == every

    kept = apply_contract(nb, available_tables=["service_requests"], dataset="sf")
    notes = [c for c in kept.cells if "left_out" in c.metadata.get("citykit", {})]
    assert [c.metadata["citykit"]["left_out"] for c in notes] == [
        ["neighborhoods"],
        ["program_applications"],
        ["neighborhoods"],
    ]
    assert [c.source for c in kept.cells if c not in notes] == ["setup", "For readers"]
    assert all(c.cell_type == "markdown" and source_index(c) is None for c in notes)
    assert "`citykit data import-population FILE --name sf`" in notes[0].source and "`sf`" in notes[0].source
    assert "`citykit data import-applications FILE --mapping MAPPING.yml --name sf`" in notes[1].source
    _, resources = ProductionContract(available_tables=["service_requests"]).preprocess(nbformat.from_dict(nb), {})
    assert dict(resources["citykit"]["removed_cells"]) == {
        1: "needs neighborhoods", 2: "tagged 'training'", 3: "needs neighborhoods",
        4: "needs neighborhoods, program_applications", 6: "needs neighborhoods",
    }  # fmt: skip


def test_module_lookup_by_slug_folder_or_path():
    assert find_module_notebook("time-to-close") == SOURCE
    assert find_module_notebook(MODULE) == SOURCE
    with pytest.raises(CitykitError, match=r"unknown module 'no-such-module'; modules: .*04-time-to-close"):
        find_module_notebook("no-such-module")
    report, _ = prepare(SOURCE, {})  # the module's own notebook by path keeps course.yml's parameters
    assert report.name == MODULE and [p.type for p in report.parameters] == ["dataset", "period", "neighborhood"]


def test_default_out_is_the_archive(riverton):
    report, values = prepare("time-to-close", {"neighborhood": "harbor-point", "period": "2025-Q4"})
    tag = {v: hashlib.sha256(v.encode()).hexdigest()[:6] for v in ("Harbor Point", "2025-Q4")}
    folder = f"neighborhood=harbor-point~{tag['Harbor Point']}_period=2025-q4~{tag['2025-Q4']}"
    assert default_out(report, values) == paths.reports_dir() / MODULE / folder / riverton.as_of.isoformat()
    report, values = prepare("time-to-close", {})
    assert default_out(report, values) == paths.reports_dir() / MODULE / "citywide" / riverton.as_of.isoformat()


# ------------------------------------------------------------------ running module 04


@pytest.fixture(scope="module")
def module04(riverton, tmp_path_factory):
    table = riverton.table_path("service_requests").as_posix()
    neighborhood = duckdb.execute(f"SELECT min(neighborhood) FROM read_parquet('{table}')").fetchone()[0]
    out = tmp_path_factory.mktemp("report") / "out"
    result = run_report("time-to-close", {"neighborhood": neighborhood.lower()}, out)
    return result, neighborhood, table


@pytest.mark.slow
def test_module_04_writes_every_output(module04, riverton):
    result, neighborhood, _ = module04
    out = result.out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{MODULE}.html", f"{MODULE}.ipynb", f"{MODULE}.xlsx", "manifest.json", "tables", ".citykit-report"]
    )
    executed = nbformat.read(result.notebook, as_version=4)
    assert executed.metadata.papermill.parameters == {
        "dataset": "riverton",
        "period": "2025",
        "neighborhood": neighborhood,
    }
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in executed.cells)
    # papermill's record, as papermill.execute_notebook(SOURCE, ...) would write it: the source's path
    # (not a copy of the whole notebook), the injected cell after the parameters cell, code hidden
    assert Path(executed.metadata.papermill.input_path).resolve() == SOURCE.resolve()
    assert executed.metadata.papermill.output_path is None
    tags = [c.metadata.get("tags", []) for c in executed.cells]
    injected = tags.index(["injected-parameters"])
    assert "parameters" in tags[injected - 1] and f'neighborhood = "{neighborhood}"' in executed.cells[injected].source
    assert all(c.metadata.jupyter.source_hidden for c in executed.cells if c.cell_type == "code")
    assert all("papermill" in c.metadata and "tags" in c.metadata for c in executed.cells)

    manifest = json.loads((out / "manifest.json").read_text())
    build = json.loads((riverton.folder / "build.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["report"] == MODULE
    assert manifest["parameters"] == {"dataset": "riverton", "period": "2025", "neighborhood": neighborhood}
    published = hashlib.sha256()  # the data's own hash (walk-20: a small and a default build shared one)
    for path in sorted(riverton.folder.glob("*.parquet")):
        published.update(path.name.encode() + b"\0" + path.read_bytes())
    assert manifest["dataset"]["fingerprint"] == build["data_fingerprint"] == published.hexdigest()[:16]
    assert manifest["dataset"]["as_of"] == riverton.as_of.isoformat()
    assert {"python", "papermill", "nbconvert", "pandas", "duckdb", "citykit"} <= set(manifest["versions"])
    assert 0 < manifest["seconds"] < 600 and manifest["started"].startswith(str(pd.Timestamp.now("UTC").year))
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != ".citykit-report")
    assert sorted(manifest["outputs"]) == written  # every file but the folder's marker


@pytest.mark.slow
def test_module_04_tables_match_an_independent_sql_route(module04):
    result, neighborhood, table = module04
    expected = (
        duckdb.execute(
            f"""SELECT request_type, count(*) AS closed_requests,
                   median(epoch(closed_at - created_at) / 86400.0) AS median_days
            FROM read_parquet('{table}')
            WHERE neighborhood = ? AND created_at >= DATE '2025-01-01' AND created_at < DATE '2026-01-01'
              AND status = 'Closed' AND closed_at IS NOT NULL AND NOT is_duplicate
              AND NOT flag_closed_before_created AND NOT flag_placeholder_date
            GROUP BY request_type""",
            [neighborhood],
        )
        .df()
        .set_index("request_type")
        .sort_index()
    )
    csv = next(p for p in result.tables if "median-days" in p.name)
    got = pd.read_csv(csv, index_col=0).sort_index()
    assert list(got.index) == list(expected.index)
    assert (got["closed_requests"] == expected["closed_requests"]).all()
    assert (got["median_days"] - expected["median_days"]).abs().max() <= 0.051  # shown to one decimal
    sheets = pd.read_excel(result.out / f"{MODULE}.xlsx", sheet_name=None, index_col=0)
    assert len(sheets) == len(result.tables)
    sheet = list(sheets.values())[result.tables.index(csv)]  # sheets in the order of the tables
    pd.testing.assert_frame_equal(sheet.sort_index(), got, check_dtype=False, check_names=False)


@pytest.mark.slow
def test_module_04_html_is_for_readers_and_accessible(module04):
    result, neighborhood, _ = module04
    page = body(result.html.read_text(encoding="utf-8"))
    assert '<html lang="en">' in page
    assert len(re.findall(r"<h1[ >]", page)) == 1
    levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", page)]
    assert levels[0] == 1 and all(b - a <= 2 for a, b in itertools.pairwise(levels))  # an outline, h1 first
    images = re.findall(r"<img\b[^>]*>", page)
    assert images and all(re.search(r'\balt="[^"]{10,}"', img) for img in images)
    assert any("Median days to close by request type" in img for img in images)  # alt from the figure's title
    assert "<th" in page and "<table" in page
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched from the network
    assert f"neighborhood = {neighborhood}" in page and "as of 2025-12-31" in page  # parameters, data as of
    assert "jp-CodeMirrorEditor" not in page and 'class="highlight' not in page  # no code
    input_areas = re.findall(r'<div class="jp-InputArea[^"]*">\s*<div class="([^"]*)"', page)
    assert input_areas and all("jp-RenderedMarkdown" in classes for classes in input_areas)  # narrative only
    assert "jp-InputPrompt" not in page and "jp-OutputPrompt" not in page
    for cell in (c for c in nbformat.read(SOURCE, as_version=4).cells if lesson_only_reason(c)):
        first_line = next(line for line in cell.source.splitlines() if line.strip()).lstrip("#> ").strip()
        assert first_line not in page and html.escape(first_line) not in page, first_line
    for text in ("BEGIN SOLUTION", "read_parquet", "check.", "YOUR CODE", "Exercise"):
        assert text not in page
    assert "About these figures" in page  # methodology and caveats


# ------------------------------------------------------------------ small synthetic notebooks


@pytest.mark.slow
def test_a_failing_report_names_its_cell_and_keeps_the_previous_report(tmp_path):
    out = tmp_path / "out"
    good = write(tiny_notebook(
        new_code_cell("divisor = 2", metadata={"tags": ["parameters"]}),
        new_code_cell("print(10 / divisor)"),
    ), tmp_path / "good" / "daily.ipynb")  # fmt: skip
    bad = write(tiny_notebook(
        new_markdown_cell("lesson only", metadata={"tags": ["training"]}),
        new_code_cell("divisor = 2", metadata={"tags": ["parameters"]}),
        new_code_cell("half = divisor / 2"),
        new_code_cell("print(10 / divisor)"),
    ), tmp_path / "bad" / "daily.ipynb")  # fmt: skip

    first = run_report(good, {"divisor": "4"}, out)
    executed = nbformat.read(first.notebook, as_version=4)
    assert executed.cells[-1].outputs[0].text.strip() == "2.5"
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {"daily.ipynb", "daily.html", "manifest.json"} <= set(before)

    with pytest.raises(
        WorkFailed,
        match=r"report daily failed: cell 3 \(print\(10 / divisor\)\) raised ZeroDivisionError: division by zero",
    ):
        run_report(bad, {"divisor": 0}, out)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "good", "out", "out.failed"]  # no staging left
    kept = nbformat.read(tmp_path / "out.failed" / "daily.ipynb", as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in kept.cells for o in c.get("outputs", []))
    assert json.loads((tmp_path / "out.failed" / "manifest.json").read_text())["status"] == "failed"

    capsys_code = main(["report", "run", str(bad), "-p", "divisor=0", "--out", str(out)])
    assert capsys_code == 1


@pytest.mark.slow
def test_a_hung_cell_is_killed_at_the_timeout(tmp_path):
    nb = write(tiny_notebook(
        new_code_cell("seconds = 600", metadata={"tags": ["parameters"]}),
        new_code_cell("import time\ntime.sleep(seconds)"),
    ), tmp_path / "hang.ipynb")  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(WorkFailed, match=r"report hang failed: .*timed out after 3 s"):
        run_report(nb, {}, tmp_path / "out", timeout=3)
    assert time.perf_counter() - started < 30
    assert not (tmp_path / "out").exists() and (tmp_path / "out.failed" / "hang.ipynb").exists()
    assert kernel_processes() == []  # no kernel left running


@pytest.mark.slow
def test_manifest_never_holds_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_TEST_DB_URL", "postgresql://analyst:s3cret-pw@db.example/city")
    nb = write(tiny_notebook(
        new_code_cell('source = "postgresql://analyst:hunter2@db.example/city"', metadata={"tags": ["parameters"]}),
        new_code_cell("import os\nprint(len(source))"),
    ), tmp_path / "db.ipynb")  # fmt: skip
    result = run_report(nb, {}, tmp_path / "out")
    text = (result.out / "manifest.json").read_text()
    assert "hunter2" not in text and "s3cret-pw" not in text and "CITYKIT_TEST_DB_URL" not in text
    assert json.loads(text)["parameters"]["source"] == "postgresql://***@db.example/city"


@pytest.mark.slow
def test_figures_get_alt_text_and_tables_their_names(tmp_path):
    nb = write(tiny_notebook(
        new_markdown_cell("# Weekly requests\nA tiny report."),
        new_code_cell("weeks = 4", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import matplotlib.pyplot as plt\nimport pandas as pd\nfrom citykit import describe_figure, publish_table\n"
            "fig, ax = plt.subplots()\nax.plot(range(weeks), [3, 1, 4, 1][:weeks])\n"
            "ax.set_title('Requests per week')\nax.set_xlabel('Week')\nax.set_ylabel('Requests')\nplt.show()\n"
            "fig2, ax2 = plt.subplots()\nax2.bar(['a', 'b'], [1, 2])\n"
            "describe_figure(fig2, 'Bar chart: b has twice the requests of a.')\nplt.show()"
        ),
        new_markdown_cell("## Counts by type"),
        new_code_cell("frame = pd.DataFrame({'type': ['a', 'b'], 'requests': [1, 2]}).set_index('type')\ndisplay(frame)"),
        new_code_cell("publish_table(frame * 10, 'ten times')"),
        new_markdown_cell("## How long residents waited and how often the city met its target"),
        new_code_cell("display(frame)"),
    ), tmp_path / "weekly.ipynb")  # fmt: skip
    result = run_report(nb, {"weeks": 3}, tmp_path / "out")
    page = body(result.html.read_text(encoding="utf-8"))
    alts = re.findall(r'<img\b[^>]*\balt="([^"]*)"', page)
    assert alts == [  # the title and what the data drawn show ([3, 1, 4] over weeks 0-2; bars a=1, b=2)
        "Chart: Requests per week. From 3 (week 0) to 4 (week 2), up 1 (+33%); highest 4 (week 2), lowest 1 (week 1).",
        "Bar chart: b has twice the requests of a. 2 bars. Largest: b, 2; smallest: a, 1.",
    ]
    assert [p.name for p in result.tables] == [  # long headings are cut at a word, to 40 characters at most
        "01-counts-by-type.csv",
        "02-ten-times.csv",
        "03-how-long-residents-waited-and-how-often.csv",
    ]
    published = pd.read_csv(result.tables[1], index_col=0)  # publish_table: the page's headings, for people
    assert published["Requests"].tolist() == [10, 20] and published.index.name == "Type"
    assert pd.read_csv(result.tables[0], index_col=0).columns.tolist() == ["requests"]  # displayed: as computed
    assert len(re.findall(r"<h1[ >]", page)) == 1 and "weeks = 3" in page


@pytest.mark.slow
def test_pdf_is_printed_with_headless_chromium(tmp_path):
    nb = write(tiny_notebook(new_code_cell("x = 1", metadata={"tags": ["parameters"]}), new_code_cell("print(x)")),
               tmp_path / "short.ipynb")  # fmt: skip
    if find_chromium() is None:
        with pytest.raises(CitykitError, match="needs headless Chromium"):
            run_report(nb, {}, tmp_path / "out", pdf=True)
        assert not (tmp_path / "out").exists()
        return
    result = run_report(nb, {}, tmp_path / "out", pdf=True)
    assert result.pdf is not None and result.pdf.read_bytes().startswith(b"%PDF")


def test_missing_notebook_path_is_bad_input(tmp_path):
    with pytest.raises(CitykitError, match="no notebook at"):
        run_report(tmp_path / "nope.ipynb", {}, tmp_path)


def test_a_notebook_using_the_figure_helpers_does_not_import_the_runner():
    code = (
        "import sys, citykit\n"
        "citykit.describe_figure, citykit.publish_table\n"
        "print(sorted(m for m in sys.modules if m.startswith(('citykit.', 'papermill', 'nbconvert', 'jupyter_client'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['citykit.reports', 'citykit.reports.figures']"


def test_reports_modules_import_each_other_in_one_direction_and_never_grading():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("citykit")  # counts imports inside functions too
    modules = sorted(m for m in graph.modules if m.startswith("citykit.reports."))
    for module in modules:
        assert not any(m.startswith("citykit.grading") for m in graph.find_upstream_modules(module)), module
        for other in modules:
            assert other == module or not (graph.chain_exists(module, other) and graph.chain_exists(other, module))
    for low, high in [("figures", "kernel"), ("params", "html"), ("kernel", "run"), ("html", "run"), ("run", "batch")]:
        assert not graph.chain_exists(f"citykit.reports.{low}", f"citykit.reports.{high}"), (low, high)
