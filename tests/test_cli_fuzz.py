"""Property test (issue 16): the CLI in-process with random strings for every report parameter and
option. It exits 0 or 2, never with a traceback; an exit 2 is one line; no file is left outside the
output folder. Kept cheap: a run that would start a kernel stops there (`KernelStarted`), which
counts as "accepted" (every check happens before a kernel starts).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from citykit import paths
from citykit.cli import main
from citykit.reports import batch
from citykit.reports.kernel import ReportKernel

REPORT = "time-to-close"  # parameters: dataset, period, neighborhood
TEXT = st.text(max_size=60)  # any characters, control characters included
PERIODS = st.sampled_from(["2025", "2025-Q4", "2025-07", "2025-01-01/2025-06-30", "9999-12", "2025-06-30/2025-01-01",
                           "latest quarter", "1850", "2025-Q0"])  # fmt: skip


class KernelStarted(Exception):
    pass


def _stop(*args, **kwargs):
    raise KernelStarted


def often(value, other):
    """A draw from `value` (a strategy or a constant) three times in four, else from `other`."""
    value = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.one_of(value, value, value, other)


NUMBERS = often(st.sampled_from(["1", "2.5", "60", "1e9"]), st.one_of(st.sampled_from(["-5", "0", "nan", "inf"]), TEXT))


def value_for(name: str):
    good = {"dataset": st.just("riverton"), "period": PERIODS,
            "neighborhood": st.sampled_from(["", "Harbor Point", "harbor-point", "Atlantis"])}  # fmt: skip
    return often(good[name], TEXT) if name in good else TEXT


@st.composite
def command_lines(draw, places: dict[str, Path]):
    run = draw(st.booleans())
    argv = ["report", "run" if run else "batch", draw(often(REPORT, TEXT))]
    if not run:
        argv += [
            "--over",
            draw(often(st.sampled_from(["neighborhood", "period"]), st.one_of(st.just("dataset"), TEXT))),
        ]
        if draw(st.booleans()):
            argv += ["--values", *draw(st.lists(st.one_of(PERIODS, TEXT), min_size=1, max_size=3))]
        if draw(st.booleans()):
            argv += ["--workers", draw(NUMBERS)]
        if draw(st.integers(0, 5)) == 0:
            argv += ["--scheduler", draw(TEXT)]
    names = often(st.sampled_from(["dataset", "period", "neighborhood"]), st.just("other"))
    for name in draw(st.lists(names, max_size=4)):
        key = draw(TEXT) if name == "other" else name
        argv += ["-p", f"{key}={draw(value_for(name))}"]
    if draw(st.booleans()):
        argv += ["--timeout", draw(NUMBERS)]
    if run and draw(st.integers(0, 5)) == 0:
        argv += ["--pdf"]
    where = draw(often("random", st.sampled_from(list(places))))
    folder = "out-" + draw(TEXT).replace("/", "_").replace("\\", "_")  # a new folder, any characters
    out = places[where] if where != "random" else places["work"] / folder
    argv += ["--out", str(out)]
    return argv, out


def snapshot(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, riverton):
    root = tmp_path_factory.mktemp("fuzz")
    work = root / "work"
    work.mkdir()
    (work / "users-file.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "home").mkdir()
    return root, {
        "work": work,
        "a new folder": work / "new",
        "users folder": work,
        "a file": work / "users-file.csv",
        "/": Path("/"),
        "home": root / "home",
        "dataset": riverton.folder,
        "course": paths.course_root() / "notebooks",
        "archive": paths.reports_dir() / "fuzz-never-written",
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_parameters_and_options_exit_0_or_2_and_write_nothing_outside(data, sandbox, monkeypatch):
    root, places = sandbox
    monkeypatch.setenv("HOME", str(places["home"]))
    monkeypatch.setattr(ReportKernel, "start", _stop)
    monkeypatch.setattr(ReportKernel, "ready_for_run", _stop)
    monkeypatch.setattr(batch, "_on_pool", _stop)
    monkeypatch.setattr(batch, "_on_dask", _stop)  # never a network connection to a random address
    argv, out = data.draw(command_lines(places))
    watched = [root, paths.reports_dir(), places["dataset"], paths.course_root() / "notebooks"]
    before = {str(folder): snapshot(folder) for folder in watched if folder.exists()}
    top = sorted(os.listdir("/"))
    err, here = io.StringIO(), os.getcwd()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        tempfile.TemporaryDirectory() as cwd,
    ):
        os.chdir(cwd)
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse
            code = stop.code
        except KernelStarted:
            code = 0  # accepted: it would run the report now
            event("accepted: stopped where the kernel would start")
        finally:
            os.chdir(here)
    assert code in (0, 2), (argv, err.getvalue())
    if code == 2:
        event("refused: exit 2")
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0], (argv, err.getvalue())
        assert lines[0].isprintable() and len(lines[0]) < 4_000, lines[0]
    assert sorted(os.listdir("/")) == top
    for folder, files in before.items():
        added = snapshot(Path(folder)) - files
        assert all(Path(f).is_relative_to(out) for f in added), (argv, added)  # only inside the output folder
    batch_root = out if argv[1] == "batch" else None
    if batch_root is not None and batch_root.is_dir() and not any(batch_root.iterdir()):
        batch_root.rmdir()  # run_batch makes its folder before the (stopped) workers start


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=120), command=st.sampled_from(["run", "run", "run", "batch"]))  # past 255 bytes too
def test_any_new_output_folder_name_is_accepted_or_refused_cleanly(name, command, sandbox, monkeypatch):
    """Valid parameters and a new folder of any name: it reaches the kernel (or is refused in one
    line), and the stopped run leaves nothing behind, not even the folders it made."""
    root, places = sandbox
    monkeypatch.setattr(ReportKernel, "ready_for_run", _stop)
    monkeypatch.setattr(batch, "_on_pool", _stop)
    out = places["work"] / "new" / ("out-" + name.replace("/", "_"))
    argv = ["report", command, REPORT, "-p", "period=2025-Q4", "--out", str(out)]
    argv += ["--over", "neighborhood", "--workers", "1"] if command == "batch" else ["--timeout", "30"]
    before = snapshot(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except KernelStarted:
            code = 0
            event("accepted: stopped where the kernel would start")
    assert code == 0 or (code == 2 and len(err.getvalue().strip().splitlines()) == 1), (argv, err.getvalue())
    assert snapshot(root) == before
    if command == "run":
        assert not (places["work"] / "new").exists()  # the folders a stopped run made are gone
    elif out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        (places["work"] / "new").rmdir()
