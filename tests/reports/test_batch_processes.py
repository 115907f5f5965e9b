"""A batch leaves nothing behind when it is stopped or killed, and its index survives two batches
(issue 16, finding 7).

The batch runs as a separate command in a session of its own, with a marker in its environment that
every process it starts inherits (its workers, forked, and the kernels, which jupyter_client starts
in sessions of their own); the tests look for the marker in /proc and for the process groups.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from citykit.reports import kernel as report_kernel
from citykit.reports.batch import clean_unfinished, write_index
from citykit.startup import PARENT_ENV, process_alive, process_token

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
MARK = "CITYKIT_TEST_MARK"


def processes() -> dict[int, tuple[int, int, str, bytes]]:
    """Live (not zombie) processes: pid -> (process group, session, command, environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if stat[0] not in ("Z", "X"):
            found[int(entry.name)] = (int(stat[2]), int(stat[3]), command, environ)
    return found


def marked(mark: str) -> dict[int, tuple[int, int, str]]:
    """Live processes whose environment holds MARK=mark: pid -> (process group, session, command)."""
    needle = f"{MARK}={mark}".encode()
    return {pid: info[:3] for pid, info in processes().items() if needle in info[3].split(b"\0")}


def groups_alive(pgids: set[int]) -> set[int]:
    """The process groups among `pgids` that still hold a live process (marked or not)."""
    return {info[0] for info in processes().values()} & pgids


def wait_for(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def unfinished(out: Path) -> list[str]:
    """Folders under `out` holding only a report marker, or nothing (a stopped run's leftovers)."""
    return [
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_dir() and {c.name for c in p.iterdir()} <= {".citykit-report"}
    ]


def ctrl_c_on() -> None:
    """In the child before it starts: Ctrl-C (SIGINT) as a terminal gives it. A test runner's worker
    (pytest-xdist) ignores SIGINT, and a child would inherit that and never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def hanging_notebook(path: Path) -> Path:
    nb = new_notebook(metadata=KERNEL, cells=[
        new_markdown_cell("# Hang"),
        new_code_cell("divisor = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("import time\ntime.sleep(600)"),
    ])  # fmt: skip
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_batch_leaves_no_process_and_no_staging(tmp_path, signame):
    mark = uuid.uuid4().hex
    out = tmp_path / "batch"
    command = [sys.executable, "-m", "citykit", "report", "batch", str(hanging_notebook(tmp_path / "hang.ipynb")),
               "--over", "divisor", "--values", "1", "2", "--out", str(out), "--workers", "2"]  # fmt: skip
    batch = subprocess.Popen(command, env={**os.environ, MARK: mark}, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=ctrl_c_on)  # fmt: skip
    try:
        # both runs under way: each worker's kernel is in its cell, each run has its staging folder
        assert wait_for(lambda: len(list(out.glob("**/.citykit-staging-*"))) == 2, 120), batch.stderr
        running = marked(mark)
        kernels = {pid: info for pid, info in running.items() if "ipykernel" in info[2]}
        assert len(kernels) == 2 and len(running) >= 5  # the batch, 2 workers (forked: no fork server), 2 kernels
        assert all(pgid == pid and sid == pid for pid, (pgid, sid, _) in kernels.items())  # their own sessions
        assert {sid for pid, (_, sid, _) in running.items() if pid not in kernels} == {batch.pid}
        folders = [
            folder
            for pid in running
            for folder in Path(report_kernel.tempfile.gettempdir()).glob(f"{report_kernel.FOLDER_PREFIX}{pid}-*")
        ]
        assert len(folders) == 2  # one per worker's kernel

        started = time.monotonic()
        batch.send_signal(getattr(signal, signame))  # the parent only, not its process group
        code = batch.wait(30)
        groups = {batch.pid, *kernels}  # the batch's (its workers) and each kernel's
        assert wait_for(lambda: not marked(mark) and not groups_alive(groups), 10), (marked(mark), groups_alive(groups))
        assert time.monotonic() - started < 10 + 1
        assert not list(out.glob("**/.citykit-staging-*"))  # removed, not left for the next run
        assert not [f for f in folders if f.exists()]  # the kernels' folders (connection file, sockets)
        if signame == "SIGKILL":  # a folder's parents, left empty, go with the next batch into the same --out
            clean_unfinished(out, min_age=0)
        assert not unfinished(out)  # no folder holding only our marker (the README: they are removed)
        if signame != "SIGKILL":
            said = batch.stderr.read()
            assert code == 130 and "interrupted" in said
            assert "Traceback" not in said and "Task exception" not in said  # one line, no noise
            index = (out / "index.html").read_text(encoding="utf-8")  # it says what finished (nothing, here)
            reason = "interrupted" if signame == "SIGINT" else signame
            assert f"stopped ({reason}) before its 2 runs finished; run the same batch again to finish it" in index
    finally:
        for pid in marked(mark):  # only what this test started
            os.kill(pid, signal.SIGKILL)


def test_stale_kernel_folders_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = Path(report_kernel.tempfile.gettempdir())
    stale = root / f"{report_kernel.FOLDER_PREFIX}{dead.pid}-test{uuid.uuid4().hex[:6]}"
    live = root / f"{report_kernel.FOLDER_PREFIX}{os.getpid()}-test{uuid.uuid4().hex[:6]}"
    try:
        for folder in (stale, live):
            folder.mkdir()
            (folder / "kernel.json").write_text("{}")
        removed = report_kernel.remove_stale_kernel_folders()
        assert stale in removed and not stale.exists()
        assert live.exists() and live not in removed
    finally:
        for folder in (stale, live):
            report_kernel.shutil.rmtree(folder, ignore_errors=True)


def test_process_tokens_tell_a_dead_or_reused_pid():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        token = process_token(sleeper.pid)
        assert process_alive(token) and process_alive(process_token())
        pid, start = token.split(":")
        assert not process_alive(f"{pid}:{int(start) + 1}")  # same pid, another start: another process
        sleeper.kill()
        assert wait_for(lambda: not process_alive(token), 5)  # a zombie (not reaped yet) is dead
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_watched_child_exits_when_the_watched_process_is_killed():
    sleeper = subprocess.Popen(["sleep", "60"])
    code = "import sys, time\nfrom citykit.startup import die_with_parent\n"
    code += f"die_with_parent({process_token(sleeper.pid)!r}, watch_ppid=False, interval=0.1, grace=0)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(1.0)
        assert child.poll() is None  # still there while the watched process lives
        sleeper.kill()
        sleeper.wait()
        assert child.wait(10) != 0
    finally:
        for process in (sleeper, child):
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_report_kernel_exits_when_the_process_it_watches_dies():
    """The kernel side of the watchdog: `CITYKIT_PARENT_PID` names a process other than its parent."""
    sleeper = subprocess.Popen(["sleep", "120"])
    kernel = report_kernel.ReportKernel(env={PARENT_ENV: process_token(sleeper.pid)}, reuse=False)
    try:
        kernel.start()
        pid = kernel.km.provisioner.pid
        assert process_alive(pid)
        sleeper.kill()
        sleeper.wait()
        assert wait_for(lambda: not process_alive(pid), 10)
    finally:
        sleeper.kill()
        kernel.shutdown()


def fake_report(root: Path, folder: str, status: str, parameters: dict, error: str = "") -> Path:
    """A report folder as run_report leaves it: its manifest and, when it succeeded, its page."""
    out = root / folder
    out.mkdir(parents=True)
    manifest = {"report": "rep", "parameters": parameters, "dataset": {"as_of": "2025-12-31"}, "status": status,
                "seconds": 1.25}  # fmt: skip
    if error:
        manifest["error"] = error
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if status == "succeeded":
        (out / "rep.html").write_text("<html></html>", encoding="utf-8")
    return out


def test_the_index_lists_every_report_in_the_folder_from_disk(tmp_path):
    """Two batches into one folder (say, over two periods): the index lists both, not only the last."""
    root = tmp_path / "reports"
    fake_report(root, "period=2025-q3/2025-12-31", "succeeded", {"period": "2025-Q3"})
    write_index(root, "Rep", "first batch")
    fake_report(root, "period=2025-q4/2025-12-31", "succeeded", {"period": "2025-Q4"})
    fake_report(root, "period=2025-q2/2025-12-31.failed", "failed", {"period": "2025-Q2"}, error="cell 3 raised boom")
    fake_report(root, "period=2025-q1/2025-12-31/.citykit-staging-1-x", "succeeded", {"period": "2025-Q1"})
    page = write_index(root, "Rep", "second batch").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)"', page)
    assert sorted(links) == ["period=2025-q3/2025-12-31/rep.html", "period=2025-q4/2025-12-31/rep.html"]
    assert "cell 3 raised boom" in page and "2025-Q1" not in page  # a run being built is not listed
    assert "2 report(s) and 1 failed run(s)" in page and "second batch" in page
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []


def _index_many(root: str, start) -> None:
    start.wait()
    for _ in range(20):
        write_index(Path(root), "Rep", "racing")


def test_indexes_written_at_once_are_whole(tmp_path):
    root = tmp_path / "reports"
    for q in range(1, 5):
        fake_report(root, f"period=2025-q{q}/2025-12-31", "succeeded", {"period": f"2025-Q{q}"})
    context = multiprocessing.get_context("fork")
    start = context.Barrier(3)
    writers = [context.Process(target=_index_many, args=(str(root), start)) for _ in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    page = (root / "index.html").read_text(encoding="utf-8")
    assert page.rstrip().endswith("</html>") and len(re.findall(r'<a href="', page)) == 4


@pytest.mark.slow
def test_ctrl_c_on_one_report_says_one_line_and_leaves_no_kernel(tmp_path):
    """The walk's finding: Ctrl-C on `report run` printed asyncio's "Task exception was never
    retrieved ... DeadKernelError" traceback after "citykit: interrupted"."""
    mark = uuid.uuid4().hex
    out = tmp_path / "one"
    busy = new_notebook(metadata=KERNEL, cells=[  # a kernel busy sending output, as a report's figures do
        new_code_cell("divisor = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("import time\nfor i in range(6000):\n    print(i)\n    time.sleep(0.01)"),
    ])  # fmt: skip
    nbformat.write(busy, tmp_path / "busy.ipynb")
    command = [sys.executable, "-m", "citykit", "report", "run", str(tmp_path / "busy.ipynb"), "-p", "divisor=1",
               "--out", str(out)]  # fmt: skip
    run = subprocess.Popen(command, env={**os.environ, MARK: mark}, cwd=tmp_path, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_on)  # fmt: skip
    try:
        assert wait_for(lambda: any("ipykernel" in info[2] for info in marked(mark).values()), 60), run.stderr
        time.sleep(1.5)  # the kernel is in its printing cell
        run.send_signal(signal.SIGINT)
        code = run.wait(30)
        said = run.stderr.read()
        assert code == 130 and said.strip() == "citykit: interrupted", said
        assert wait_for(lambda: not marked(mark), 10), marked(mark)
        assert not list(out.glob("**/.citykit-staging-*"))
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)
