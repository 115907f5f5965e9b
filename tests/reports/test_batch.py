"""Batches: parallel runs that survive a failing or hung run, an index, and Dask equal to local."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from citykit.cli import main
from citykit.errors import CitykitError
from citykit.reports.batch import plan, run_batch

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def flaky_notebook(path: Path) -> Path:
    """divisor 0 hangs, a negative divisor raises, any other value succeeds."""
    nb = new_notebook(metadata=KERNEL, cells=[
        new_markdown_cell("# Tenths"),
        new_code_cell("divisor = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("import os, time\nif divisor == 0:\n    time.sleep(600)\nif divisor < 0:\n    raise ValueError('negative divisor')"),
        new_code_cell("import pandas as pd\ndisplay(pd.DataFrame({'tenth': [10 / divisor], 'threads': [os.environ.get('CITYKIT_DUCKDB_THREADS')]}))"),
    ])  # fmt: skip
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_batch_survives_a_failing_and_a_hung_run(tmp_path, capsys):
    notebook = flaky_notebook(tmp_path / "tenths.ipynb")
    out = tmp_path / "batch"
    code = main([
        "report", "batch", str(notebook), "--over", "divisor", "--values", "4", "0", "-1", "5",
        "--out", str(out), "--workers", "2", "--timeout", "8",
    ])  # fmt: skip
    captured = capsys.readouterr()
    folder_of = {r.value: r.out for r in plan(str(notebook), "divisor", [4, 0, -1, 5], out=out)[1]}  # its names
    assert code == 1  # some runs failed
    assert "2 of 4 reports succeeded" in captured.out
    assert "2 of 4 reports failed" in captured.err
    for divisor in (4, 5):
        folder = folder_of[divisor]
        table = pd.read_csv(folder / "tables" / "01-tenths.csv", index_col=0)
        assert table["tenth"].tolist() == [10 / divisor]
        assert table["threads"].tolist() == [1]  # DuckDB capped at one thread per kernel in a batch
        assert (folder / "tenths.html").exists()
    for divisor in (0, -1):
        assert not folder_of[divisor].exists()
        assert (folder_of[divisor].parent / "undated.failed" / "tenths.ipynb").exists()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in index and index.count("<h1>") == 1 and '<th scope="col">' in index
    links = re.findall(r'<a href="([^"]+)"', index)
    assert sorted(links) == [(folder_of[d] / "tenths.html").relative_to(out).as_posix() for d in (4, 5)]
    assert "ValueError: negative divisor" in index and "timed out after 8 s" in index


def test_bad_batch_values_fail_before_anything_runs(tmp_path, riverton):
    with pytest.raises(CitykitError, match="unknown neighborhood 'Atlantis'"):
        plan("time-to-close", "neighborhood", ["Atlantis"], out=tmp_path / "b")
    with pytest.raises(CitykitError, match="has no parameter 'colour'"):
        plan("time-to-close", "colour", ["red"], out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_default_values_are_every_neighborhood(riverton, tmp_path):
    path = riverton.table_path("neighborhoods").as_posix()
    expected = [r[0] for r in duckdb.execute(f"SELECT neighborhood FROM read_parquet('{path}') ORDER BY 1").fetchall()]
    _, runs, root = plan("time-to-close", "neighborhood", out=tmp_path)
    assert [r.value for r in runs] == expected and root == tmp_path
    tag = hashlib.sha256(expected[0].encode()).hexdigest()[:6]  # the exact name's hash keeps names apart
    assert runs[0].out == tmp_path / f"neighborhood={expected[0].lower().replace(' ', '-')}~{tag}" / "2025-12-31"


def outputs_of(result) -> dict[str, object]:
    """What a batch produced, minus timings: every table's CSV text and every cell's outputs."""
    found: dict[str, object] = {}
    for run in result.runs:
        assert run.status == "succeeded", run.error
        folder = run.out
        for csv in sorted((folder / "tables").glob("*.csv")):
            found[f"{folder.relative_to(result.out)}/{csv.name}"] = csv.read_text()
        nb = nbformat.read(run.html.with_suffix(".ipynb"), as_version=4)
        texts = [
            str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
            for c in nb.cells for o in c.get("outputs", [])
        ]  # fmt: skip
        found[f"{folder.relative_to(result.out)}/outputs"] = texts
    return found


@pytest.mark.slow
def test_dask_localcluster_batch_equals_local_batch(riverton, tmp_path):
    distributed = pytest.importorskip("distributed")
    hoods = ["Harbor Point", "Riverside"]
    local = run_batch("time-to-close", "neighborhood", hoods, {"period": "2025-Q4"}, out=tmp_path / "local",
                      workers=2, progress=False)  # fmt: skip
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:  # fmt: skip
        remote = run_batch("time-to-close", "neighborhood", hoods, {"period": "2025-Q4"}, out=tmp_path / "dask",
                           scheduler=cluster.scheduler_address, progress=False)  # fmt: skip
    assert [r.value for r in remote.runs] == hoods
    local_outputs, dask_outputs = outputs_of(local), outputs_of(remote)
    assert len(local_outputs) >= 2 * 3  # two tables and the outputs, per neighborhood
    assert dask_outputs == local_outputs
    assert (tmp_path / "dask" / "index.html").exists()


def test_a_failed_value_with_a_password_is_redacted_in_the_summary(tmp_path):
    from citykit.reports.batch import BatchResult, BatchRun, failure_line

    url = "postgresql://alice:s3cret-pw@127.0.0.1/city"
    result = BatchResult("r", "db", tmp_path, [BatchRun(url, {"db": url}, tmp_path, "failed", error="boom")])
    assert "s3cret-pw" not in result.summary()
    line = failure_line("db", {"parameters": {"period": "2025-Q4", "db": url}}, {"error": f"cannot reach {url}"})
    assert line == "failed db=postgresql://***@127.0.0.1/city: cannot reach postgresql://***@127.0.0.1/city"


def test_a_failed_run_prints_one_plain_line_and_the_summary_counts_failures(tmp_path, capsys):
    """Walk of issue 21: the terminal printed a Python dict per failure and repeated every failure in
    one long summary line; now `failed neighborhood=Ashgrove: <error>`, and the summary counts them."""
    from citykit.reports.batch import BatchResult, BatchRun, _progress

    parameters = [{"dataset": "riverton", "period": "2025-Q4", "neighborhood": hood} for hood in ("Ashgrove", None)]
    errors = ["report 12-service-performance timed out after 1 s (kernel killed)", "ValueError: boom"]
    with _progress(True, 3, "12-service-performance over neighborhood", "neighborhood") as advance:
        for params, error in zip(parameters, errors):
            advance({"parameters": params}, {"status": "failed", "error": error, "seconds": 1.0})
        advance({"parameters": {"neighborhood": "Millbrook"}}, {"status": "succeeded", "seconds": 1.0})
    printed = [line.strip() for line in capsys.readouterr().err.splitlines() if line.startswith("failed")]
    assert printed == [
        "failed neighborhood=Ashgrove: report 12-service-performance timed out after 1 s (kernel killed)",
        "failed neighborhood=citywide: ValueError: boom",
    ]
    runs = [BatchRun(p["neighborhood"], p, tmp_path, "failed", error=e) for p, e in zip(parameters, errors)]
    runs.append(BatchRun("Millbrook", {}, tmp_path, "succeeded"))
    summary = BatchResult("12-service-performance", "neighborhood", tmp_path, runs, 3.0).summary()
    assert summary.startswith("12-service-performance over neighborhood: 1 of 3 reports succeeded in 3.0 s; 2 failed")
    assert "index" in summary and "timed out" not in summary and "boom" not in summary and "{" not in summary


def test_the_index_names_a_citywide_run_citywide_beside_neighborhood_runs(tmp_path):
    # privacy walk F7: an archive holding city and neighborhood runs of several periods listed "neighborhood=None"
    import json

    from citykit.reports.batch import index_rows

    runs = {"city-2025": {"neighborhood": None, "period": "2025"},
            "hp-2025-12": {"neighborhood": "Harbor Point", "period": "2025-12"}}  # fmt: skip
    for folder, parameters in runs.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "equity-report.html").write_text("<html></html>", encoding="utf-8")
        manifest = {"report": "equity-report", "status": "succeeded", "parameters": parameters, "seconds": 1.0}
        (tmp_path / folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    values = sorted(row["value"] for row in index_rows(tmp_path, "Equity"))
    assert values == ["neighborhood=Harbor Point, period=2025-12", "neighborhood=citywide, period=2025"]


def test_the_index_is_titled_without_double_punctuation_and_says_the_shared_parameters_once(tmp_path):
    """Walk of issue 21: "Service performance: how is ...?: reports", and no word of the period."""
    import html
    import json

    from citykit.reports.batch import write_index

    title = "Service performance: how is the city serving residents?"
    for hood in ("Ashgrove", "Millbrook"):
        folder = tmp_path / hood
        folder.mkdir()
        (folder / "svc.html").write_text("<html></html>", encoding="utf-8")
        parameters = {"dataset": "riverton", "period": "2025-Q4", "neighborhood": hood,
                      "db": "postgresql://alice:s3cret-pw@127.0.0.1/city"}  # fmt: skip
        manifest = {"report": "svc", "status": "succeeded", "parameters": parameters, "seconds": 1.0}
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    page = html.unescape(write_index(tmp_path, title).read_text(encoding="utf-8"))
    assert f"<title>Reports: {title}</title>" in page and f"<h1>Reports: {title}</h1>" in page
    assert "?:" not in page
    summary = re.search(r"<p>(.*?)</p>", page)[1]
    assert summary == ("This folder holds 2 report(s), all with dataset riverton, period 2025-Q4, "
                       "db postgresql://***@127.0.0.1/city.")  # fmt: skip
    assert "s3cret" not in page and page.count("2025-Q4") == 1  # said once, not in every row


def test_workers_are_forked_only_from_a_process_without_other_threads():
    """The command line (one thread) forks its workers, which start their kernels at once; a process
    with threads (a notebook, a server) starts them through a fork server, as forking it is unsafe."""
    import subprocess
    import sys
    import threading

    from citykit.reports.batch import _pool_context

    alone = subprocess.run(
        [sys.executable, "-c", "from citykit.reports.batch import _pool_context; print(_pool_context().get_start_method())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert alone.stdout.strip() == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert _pool_context().get_start_method() == "forkserver"
    finally:
        stop.set()
        other.join()


def _run_in(kernel, code: str) -> str:
    """What `code` prints in the report kernel."""
    from jupyter_core.utils import run_sync

    printed = []

    def keep(msg):
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])

    reply = run_sync(kernel.kc.execute_interactive)(code, timeout=60, output_hook=keep)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def test_a_reused_kernel_freezes_its_libraries_and_still_collects_each_reports_garbage():
    """gc.freeze keeps the imported libraries out of every collection, once after the prelude and once
    after the first report (what it imported); what each report leaves, even in reference cycles, is
    still collected, never frozen for good."""
    from citykit.reports.kernel import ReportKernel

    report = (
        "import builtins\n"
        "builtins.__dict__.setdefault('finalized', [])\n"
        "class Node:\n"
        "    def __del__(self, done=builtins.finalized):\n"
        "        done.append(1)\n"
        "loop = Node(); loop.me = loop  # a cycle only the collector frees\n"
    )
    kernel = ReportKernel(reuse=True)
    try:
        frozen = []
        for _ in range(3):
            kernel.ready_for_run()  # the reset between reports
            _run_in(kernel, report)
            frozen.append(int(_run_in(kernel, "import gc; print(gc.get_freeze_count())")))
        assert frozen[0] > 50_000  # the libraries, frozen by the prelude
        # once more after the first report, then never again (it may shrink: frozen objects still die by refcount)
        assert frozen[1] > frozen[0] and frozen[2] <= frozen[1]
        # the first two reports' cycles are gone by a collection; the third's is still the namespace's
        assert int(_run_in(kernel, "import gc, builtins; gc.collect(); print(len(builtins.finalized))")) == 2
    finally:
        kernel.shutdown()


def test_the_progress_bar_is_drawn_in_neutral_colours(capsys):
    """Walk of issue 21: rich's default bar (pink, shown as bright red on a 256-colour terminal) read
    as an error; blue while the batch runs, green when it is done."""
    from rich.color import Color
    from rich.progress import BarColumn

    from citykit.reports.batch import _progress

    progress = _progress(True, 1, "report over neighborhood", "neighborhood")
    with progress:
        [bar] = [c for c in progress.bar.columns if isinstance(c, BarColumn)]
        style = progress.bar.console.get_style
        styles = {name: style(getattr(bar, name)) for name in ("complete_style", "finished_style")}
    assert styles["complete_style"].color == Color.parse("blue")
    assert styles["finished_style"].color == Color.parse("green")
    red = {Color.parse(c).name for c in ("red", "bright_red", "magenta", "bright_magenta")}
    assert not {s.color.name for s in styles.values()} & red


def test_a_report_kernel_keeps_no_input_history():
    """No cell of a report, the parameters with their secrets among them, reaches IPython's history
    file, and no SQLite write is paid per cell."""
    import time
    import uuid

    from citykit.reports.kernel import ReportKernel

    secret = uuid.uuid4().hex
    kernel = ReportKernel(reuse=True)
    try:
        kernel.ready_for_run()
        _run_in(kernel, f"dataset = 'postgresql://analyst:{secret}@localhost/city'")
        said = _run_in(kernel, "h = get_ipython().history_manager\nprint(h.enabled, h.hist_file)")
        enabled, history = said.split(maxsplit=1)
        assert enabled == "False"
        time.sleep(0.5)  # IPython's history thread would have written the cell by now
        assert not Path(history.strip()).is_file() or secret.encode() not in Path(history.strip()).read_bytes()
    finally:
        kernel.shutdown()
