"""Report speed: a batch of neighborhood reports against the plain tools, a one-run breakdown, large scale.

    .venv/bin/python benchmarks/bench_reports.py [REPORT] [--count 24] [--workers N] [--repeat 3]
        [--skip-cli] [--skip-large] [--large-only] [--large-home DIR] [--quick]

REPORT defaults to 12-service-performance (04-time-to-close while that notebook does not exist).
Every method runs the same production-contract notebook for the same `--count` neighborhoods and
writes HTML without code:

  (a) plain CLI loop  : `papermill in.ipynb out.ipynb -p neighborhood X` then
                        `jupyter nbconvert --to html --no-input out.ipynb`, once per neighborhood
  (b) in-process loop : one Python process calling papermill.execute_notebook and nbconvert's
                        HTMLExporter per neighborhood (the best sequential script)
  (c) citykit batch   : `citykit report batch REPORT --over neighborhood` (warm workers, kernels reused)
  (c') same, kernels restarted per report (what reusing the kernel saves)

It prints each method's median wall time over `--repeat` interleaved runs, the median seconds per
report where a method reports them, and the ratios (a)/(c) and (b)/(c) of those medians. Then a breakdown of one run (kernel start,
imports, data load, compute, render, runner overhead) with a fresh kernel and with a reused one,
and the whole city at large scale `--repeat` times (`riverton_large` in `--large-home`, built with
`citykit data build --scale large` if missing, its quality scorecard scored once beforehand as the
first report on a dataset does): end-to-end seconds, runner and kernel CPU seconds, where the time
goes, and the peak memory of the runner and its kernel together, sampled every 20 ms: PSS (shared
pages counted once: the honest figure), summed RSS (shared pages twice: an upper bound) and USS
(private pages only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import nbformat
import psutil

from citykit import paths
from citykit.data import registry
from citykit.reports.contract import apply_contract

BIN = Path(sys.executable).parent
LOAD_MARKERS = ("citykit.load(", "load(", "query(", "read_parquet", ".execute(")


def default_report() -> str:
    return (
        "12-service-performance" if (paths.notebooks_dir() / "12-service-performance").exists() else "04-time-to-close"
    )


def neighborhoods(count: int) -> list[str]:
    path = registry.get("riverton").table_path("neighborhoods").as_posix()
    names = [r[0] for r in duckdb.execute(f"SELECT neighborhood FROM read_parquet('{path}') ORDER BY 1").fetchall()]
    return (names * (count // len(names) + 1))[:count]


def timed(command: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def contract_notebook(report: str, folder: Path) -> Path:
    from citykit.reports.run import resolve

    nb = apply_contract(nbformat.read(resolve(report).source, as_version=4))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "input.ipynb"
    nbformat.write(nb, path)
    return path


def plain_cli(notebook: Path, hoods: list[str], folder: Path) -> tuple[float, list[float]]:
    per_report = []
    started = time.perf_counter()
    for i, hood in enumerate(hoods):
        executed = folder / f"cli-{i:02d}.ipynb"
        t = timed(
            [str(BIN / "papermill"), str(notebook), str(executed), "-p", "neighborhood", hood, "--no-progress-bar"]
        )
        t += timed([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)])
        per_report.append(t)
    return time.perf_counter() - started, per_report


IN_PROCESS = textwrap.dedent("""
    import json, sys, time
    import papermill
    from nbconvert import HTMLExporter
    notebook, folder, hoods = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    times = []
    for i, hood in enumerate(hoods):
        t = time.perf_counter()
        nb = papermill.execute_notebook(notebook, f"{folder}/inproc-{i:02d}.ipynb", parameters={"neighborhood": hood},
                                        progress_bar=False)
        body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
        open(f"{folder}/inproc-{i:02d}.html", "w").write(body)
        times.append(time.perf_counter() - t)
    print(json.dumps(times))
""")


def in_process(notebook: Path, hoods: list[str], folder: Path) -> tuple[float, list[float]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(notebook), str(folder), json.dumps(hoods)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


BATCH = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from citykit.reports.batch import run_batch
    report, out, hoods, workers, reuse = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    result = run_batch(report, "neighborhood", hoods, out=Path(out), workers=workers, reuse_kernel=reuse, progress=False)
    assert not result.failed, result.summary()
    print(json.dumps([r.seconds for r in result.runs]))
""")


def citykit_cli_batch(report: str, hoods: list[str], folder: Path, workers: int) -> float:
    return timed([str(BIN / "citykit"), "report", "batch", report, "--over", "neighborhood", "--values", *hoods,
                  "--out", str(folder / "batch"), "--workers", str(workers)])  # fmt: skip


def citykit_batch(report: str, hoods: list[str], folder: Path, workers: int, reuse: bool) -> tuple[float, list[float]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", BATCH, report, str(folder / f"batch-{int(reuse)}"), json.dumps(hoods),
                           str(workers), "1" if reuse else "0"], check=True, capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def breakdown(report: str, hood: str, folder: Path) -> None:
    """Where one run's time goes: with a fresh kernel, then in a reused (batch) kernel."""
    from citykit.reports.kernel import ReportKernel
    from citykit.reports.run import resolve, run_report

    source = nbformat.read(resolve(report).source, as_version=4)
    kernel = ReportKernel(env={"CITYKIT_DUCKDB_THREADS": "1"}, reuse=True)
    try:
        for label in ("fresh kernel", "reused kernel"):
            kernel_cpu = _kernel_cpu(kernel)
            started, runner_cpu = time.perf_counter(), time.process_time()
            result = run_report(report, {"neighborhood": hood}, folder / f"breakdown-{label[:5]}", kernel=kernel)
            total = time.perf_counter() - started
            runner_cpu = time.process_time() - runner_cpu
            kernel_cpu = _kernel_cpu(kernel) - kernel_cpu if label == "reused kernel" else None
            t = result.timings
            load = sum(
                s for i, s in t["cells"].items() if i >= 0 and any(m in source.cells[i].source for m in LOAD_MARKERS)
            )
            compute = t["run cells"] - load
            accounted = t["kernel start"] + t["imports"] + t["run cells"] + t["render"]
            print(f"  {label:14s} total {total:5.2f} s = kernel start {t['kernel start']:.2f} + imports {t['imports']:.2f}"
                  f" + data load {load:.2f} + compute {compute:.2f} + render/tables/manifest {t['render']:.2f}"
                  f" + runner overhead {total - accounted:.2f}")  # fmt: skip
            if kernel_cpu is not None:  # CPU seconds: less sensitive to other load than wall time
                print(f"                 CPU: runner {runner_cpu:.2f} s, kernel {kernel_cpu:.2f} s")
            slowest = sorted(((s, i) for i, s in t["cells"].items() if i >= 0), reverse=True)[:3]
            print("                 slowest cells: " + ", ".join(f"cell {i} {s:.2f} s" for s, i in slowest))
    finally:
        kernel.shutdown()


def _kernel_cpu(kernel) -> float:
    """CPU seconds (user + system) the kernel's process has used so far (0 before it starts)."""
    try:
        times = psutil.Process(kernel.km.provisioner.pid).cpu_times()
    except (AttributeError, psutil.Error):
        return 0.0
    return times.user + times.system


LARGE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import psutil
    from citykit.reports.kernel import ReportKernel
    from citykit.reports.run import run_report
    t, cpu = time.perf_counter(), time.process_time()
    kernel = ReportKernel(reuse=False)  # what run_report starts by default, kept to read its CPU time
    try:
        result = run_report(sys.argv[1], {"dataset": "riverton_large", "period": None}, Path(sys.argv[2]), kernel=kernel)
        times = psutil.Process(kernel.km.provisioner.pid).cpu_times()
    finally:
        kernel.shutdown()
    timings = {k: v for k, v in result.timings.items() if k != "cells"}
    cells = sorted(((s, i) for i, s in result.timings.get("cells", {}).items() if i >= 0), reverse=True)[:4]
    print(json.dumps({"seconds": time.perf_counter() - t, "runner_cpu": time.process_time() - cpu,
                      "kernel_cpu": times.user + times.system, "timings": timings, "slowest": cells}))
""")


class MemorySampler:
    """Peak memory of a process and its children together, sampled every `interval` seconds.

    `rss`: the sum of resident sets (pages shared between the processes, e.g. libraries and the
    page cache's mapped parquet, counted once per process: an upper bound). `pss`: the sum of
    proportional set sizes (/proc/PID/smaps_rollup; a page shared by n processes counts 1/n in
    each, so shared pages are counted once: the honest figure). `uss`: pages private to one of the
    processes (a lower bound). Each peak is the largest sum at one instant."""

    def __init__(self, process: psutil.Process, interval: float = 0.02) -> None:
        self.process, self.interval = process, interval
        self.rss = self.pss = self.uss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        try:
            tree = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return
        rss = pss = uss = 0
        for p in tree:
            try:
                full = p.memory_full_info()  # rss, and pss/uss from /proc/PID/smaps_rollup on Linux
            except psutil.Error:
                continue
            rss += full.rss
            pss += getattr(full, "pss", full.rss)
            uss += getattr(full, "uss", full.rss)
        self.rss, self.pss, self.uss = max(self.rss, rss), max(self.pss, pss), max(self.uss, uss)
        self.samples += 1


SCORE_LARGE = textwrap.dedent("""
    import time
    from citykit.data import quality, registry
    card = registry.get("riverton_large").folder / quality.CARD_FILE
    before = card.stat().st_mtime_ns if card.exists() else None
    t = time.perf_counter()
    quality.check_dataset("riverton_large")
    print("scored" if (card.stat().st_mtime_ns if card.exists() else None) != before else "kept", time.perf_counter() - t)
""")


def prepare_large(home: str | None) -> dict[str, str]:
    """The environment of the large runs: riverton_large built if missing, its quality scorecard
    scored once and kept beside its tables, as the first report on a new version of the data does."""
    env = dict(os.environ, **({"CITYKIT_HOME": home} if home else {}))
    probe = subprocess.run([sys.executable, "-c", "from citykit.data import registry; print(registry.get('riverton_large').exists())"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    if probe.stdout.strip() != "True":
        print("  building riverton_large (citykit data build --scale large) ...", flush=True)
        subprocess.run([str(BIN / "citykit"), "data", "build", "--scale", "large"], check=True, env=env)
    done = subprocess.run([sys.executable, "-c", SCORE_LARGE], check=True, capture_output=True, text=True, env=env)
    how, seconds = done.stdout.split()
    if how == "scored":
        print(f"  riverton_large's quality scorecard scored and kept beside its tables ({float(seconds):.1f} s, "
              "not timed below: every report after the first on this data reads it)", flush=True)  # fmt: skip
    else:
        print("  riverton_large's quality scorecard: kept beside its tables (every timed run reads it)", flush=True)
    return env


def large_scale(report: str, folder: Path, env: dict[str, str]) -> dict | None:
    """The whole city on riverton_large in a fresh runner process (its own kernel): seconds end to
    end, where they go, and the peak memory of the runner and its kernel together."""
    out = folder / f"large-{time.monotonic_ns()}"
    started = time.perf_counter()
    child = psutil.Popen([sys.executable, "-c", LARGE, report, str(out)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    with MemorySampler(child) as memory:
        stdout, err = child.communicate()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        print(f"  large run failed: {err.strip().splitlines()[-1] if err.strip() else child.returncode}")
        return None
    shutil.rmtree(out, ignore_errors=True)
    run = json.loads(stdout.strip().splitlines()[-1])
    rows = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?)", [str(Path(env.get("CITYKIT_HOME") or paths.citykit_home())
                                                     / "published/riverton_large/service_requests.parquet")]
    ).fetchone()[0]  # fmt: skip
    t = run["timings"]
    print(f"  whole city, riverton_large ({rows:,} requests): {seconds:.1f} s end to end (target <= 8 s); "
          f"peak memory of runner + kernel: {memory.pss / 2**30:.2f} GiB PSS, shared pages once (target <= 1 GiB), "
          f"{memory.rss / 2**30:.2f} GiB RSS summed (shared pages twice: an upper bound), "
          f"{memory.uss / 2**30:.2f} GiB private; {memory.samples} samples", flush=True)  # fmt: skip
    print(f"    run_report {run['seconds']:.1f} s: kernel start {t.get('kernel start', 0):.2f} + imports "
          f"{t.get('imports', 0):.2f} + cells {t.get('run cells', 0):.2f} + render {t.get('render', 0):.2f}; "
          f"CPU: runner {run['runner_cpu']:.1f} s, kernel {run['kernel_cpu']:.1f} s; slowest cells: "
          + ", ".join(f"cell {i} {s:.2f} s" for s, i in run["slowest"]), flush=True)  # fmt: skip
    return {"seconds": seconds, "pss": memory.pss, "rss": memory.rss, "cpu": run["runner_cpu"] + run["kernel_cpu"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default=None)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-cli", action="store_true", help="skip (a), the slowest method")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every method; medians are printed")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--large-home", default=None, help="CITYKIT_HOME holding riverton_large (default: the kit's)")
    parser.add_argument("--large-only", action="store_true", help="only the whole city on riverton_large")
    parser.add_argument("--quick", action="store_true", help="2 reports, one run, no large city: checks it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeat, args.skip_large = 2, 1, True
    report = args.report or default_report()
    one, five, _ = os.getloadavg()
    print(f"report {report}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {one:.2f} {five:.2f}",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="citykit-bench-") as tmp:
        folder = Path(tmp)
        if not args.large_only:
            batch_methods(report, args, folder)
        if not args.skip_large or args.large_only:
            print(f"large scale, {args.repeat} run(s):", flush=True)
            env = prepare_large(args.large_home)
            runs = [r for r in (large_scale(report, folder, env) for _ in range(args.repeat)) if r]
            if len(runs) > 1:
                med = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "pss", "rss", "cpu")}
                each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
                print(f"  medians of {len(runs)}: {med['seconds']:.1f} s end to end (runs: {each} s), peak {med['pss'] / 2**30:.2f} GiB PSS, "
                      f"{med['rss'] / 2**30:.2f} GiB RSS summed, {med['cpu']:.1f} CPU s (runner + kernel)")  # fmt: skip
    return 0


def _target(times: int, reports: int) -> str:
    """The issue's target for a ratio, which holds for 24 reports: a smaller batch (`--quick`) is mostly
    its workers' start-up, so its ratio is no measure against it."""
    return (
        f"(target >= {times}x)"
        if reports >= 24
        else f"({reports} reports: not comparable with the {times}x target for 24)"
    )


def batch_methods(report: str, args: argparse.Namespace, folder: Path) -> None:
    """The batch against the plain tools, interleaved `--repeat` times; then one run's breakdown."""
    hoods = neighborhoods(args.count)
    print(f"{len(hoods)} neighborhood reports, {args.workers} workers", flush=True)
    notebook = contract_notebook(report, folder)
    methods = []
    if not args.skip_cli:
        methods.append(("(a) papermill + nbconvert CLI loop", lambda: plain_cli(notebook, hoods, folder)))
    methods += [
        ("(b) in-process papermill + nbconvert", lambda: in_process(notebook, hoods, folder)),
        ("(c') citykit batch, kernel per report", lambda: citykit_batch(report, hoods, folder, args.workers, reuse=False)),
        ("(c) citykit batch (API)", lambda: citykit_batch(report, hoods, folder, args.workers, reuse=True)),
        ("(c) citykit report batch (CLI)", lambda: (citykit_cli_batch(report, hoods, folder, args.workers), [])),
    ]  # fmt: skip
    totals: dict[str, list[float]] = {label: [] for label, _ in methods}
    each: dict[str, list[float]] = {label: [] for label, _ in methods}
    for run_number in range(args.repeat):  # interleaved, so a burst of load hits every method alike
        for label, run in methods:
            total, per_report = run()
            totals[label].append(total)
            each[label] += per_report
            print(f"  run {run_number + 1}: {label} {total:.1f} s", flush=True)
    print(f"medians of {args.repeat} run(s):")
    by = {}  # "(a)", "(b)", ...: the method's median wall time
    for label, _ in methods:
        median = statistics.median(totals[label])
        by.setdefault(label.split()[0], median)
        runs = ", ".join(f"{t:.1f}" for t in totals[label]) if args.repeat > 1 else ""
        per = f"median {statistics.median(each[label]):.2f} s per report (in its worker)" if each[label] else ""
        print(f"  {label:40s} {median:7.1f} s   {per}" + (f"   runs: {runs} s" if runs else ""))
    best = statistics.median(totals["(c) citykit report batch (CLI)"])
    if "(a)" in by:
        print(f"  ratio (a)/(c): {by['(a)'] / best:.1f}x faster than the plain CLI loop {_target(8, len(hoods))}")
    print(f"  ratio (b)/(c): {by['(b)'] / best:.1f}x faster than the in-process loop {_target(6, len(hoods))}")
    fresh, reused = by["(c')"], statistics.median(totals["(c) citykit batch (API)"])
    print(f"  reusing kernels: (c')/(c) = {fresh / reused:.1f}x")
    print("one run, where the time goes:", flush=True)
    breakdown(report, hoods[0], folder)


if __name__ == "__main__":
    raise SystemExit(main())
