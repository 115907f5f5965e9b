"""The warm report kernel: one Jupyter kernel that serves several reports in turn.

Two sides:
- in the runner, `ReportKernel` starts a kernel with `PRELUDE`, resets it with `RESET` between
  reports, runs a notebook on it with papermill (`execute`), and kills it when a run hangs;
- in the kernel, `install_kernel_hooks()` (run by `PRELUDE`, never part of the notebook) warms the
  imports, sets the charts' look (`citykit.reports.charts`), and installs display formatters that
  prepare every matplotlib figure for readers and give it alt text, and record every displayed
  table (DataFrame, Styler, equity table, quality scorecard) (`citykit.reports.figures`); `reset_kernel_state()` (run by
  `RESET`) gives the next report a clean namespace.

Nothing outlives the runner: the kernel (in a session of its own, as jupyter_client starts it)
watches the runner named by `CITYKIT_PARENT_PID` and exits within seconds of its death, even by
`kill -9` (`citykit.startup.die_with_parent`, started by the prelude); `kill_all_kernels()` kills
every kernel of this process at once (a batch worker told to stop). A kernel's folder
(`$TMPDIR/citykit-kernel-<pid>-*`: its working directory, connection file and sockets) goes with it,
and folders left by a runner that died are removed when the next kernel starts.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

from citykit.errors import WorkFailed
from citykit.reports.charts import apply_style, prepare_figure
from citykit.reports.figures import TABLE_MIME, figure_alt, table_payload
from citykit.startup import PARENT_ENV, die_with_parent, process_alive, process_token

KERNEL_NAME = "python3"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
PRELUDE = (
    "import citykit.reports.kernel as _citykit_kernel\n_citykit_kernel.install_kernel_hooks()\ndel _citykit_kernel\n"
)
RESET = "import citykit.reports.kernel as _citykit_kernel\n_citykit_kernel.reset_kernel_state()\n"
ENGINE = "citykit"  # the papermill engine name that runs on a ReportKernel
# The kernel draws with the inline backend, whatever the runner's environment says: a server or cron
# job often sets MPLBACKEND=Agg, which registers no figure printer, so no figure would reach the page.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# A report kernel keeps no input history: IPython would write every cell to ~/.ipython's SQLite file
# (~0.4 s of a 24-report batch: its two kernels took turns on one file), the injected parameters cell
# with them, whose values may carry a password.
KERNEL_ARGUMENTS = ("--HistoryManager.enabled=False",)
PNG_COMPRESS_LEVEL = 3  # zlib level of the figures' PNGs (Pillow's default: 6); lossless at any level
FOLDER_PREFIX = "citykit-kernel-"  # + "<runner pid>-<random>" under the temporary folder
_live: weakref.WeakSet[ReportKernel] = weakref.WeakSet()  # this process' started kernels


# ------------------------------------------------------------------ in the runner


class ReportKernel:
    """One kernel, started with the runner's prelude, that can serve several reports in turn.

    `reuse=True` keeps the kernel between reports and resets it (user names deleted, figures
    closed, matplotlib and pandas settings restored): the kernel start and the imports are paid once per
    worker instead of once per report. A kernel that failed or timed out is replaced, never reused.
    """

    def __init__(self, env: dict[str, str] | None = None, reuse: bool = True, max_runs: int = 50) -> None:
        # the kernel watches this process, unless `env` names another one (a batch's parent)
        self.env = {**os.environ, PARENT_ENV: process_token(), **(env or {}), "MPLBACKEND": INLINE_BACKEND}
        self.reuse, self.max_runs = reuse, max_runs
        self.km = self.kc = None
        self.runs = 0
        self._launched = 0.0  # when `launch` started the kernel's process (perf_counter)
        self.cwd: str | None = None
        self.timings: dict[str, float] = {}
        self.executed = None  # the notebook the last run executed (kept when it fails)
        self.timed_out = False  # the last run hit its timeout and the kernel was killed

    def start(self) -> ReportKernel:
        return self.launch().wait_until_ready()

    def launch(self) -> ReportKernel:
        """Start the kernel's process without waiting for it: the caller can work while it boots."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync  # the per-thread event loop nbclient runs on too

        self._launched = time.perf_counter()
        remove_stale_kernel_folders()
        self.cwd = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
        self.km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=os.path.join(self.cwd, "kernel"),
                                     connection_file=os.path.join(self.cwd, "kernel.json"))  # fmt: skip
        _live.add(self)
        run_sync(self.km.start_kernel)(cwd=self.cwd, env=self.env, extra_arguments=list(KERNEL_ARGUMENTS))
        return self

    def wait_until_ready(self) -> ReportKernel:
        """After `launch`: wait for the kernel to answer, then run the prelude (its warm imports)."""
        from jupyter_core.utils import run_sync

        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=60)
        ready = time.perf_counter()
        reply = self._execute_quietly(PRELUDE, timeout=120)
        if reply["content"]["status"] != "ok":
            raise WorkFailed(f"the report kernel could not start: {reply['content'].get('evalue')}")
        self.timings = {"kernel start": ready - self._launched, "imports": time.perf_counter() - ready}
        self.runs = 0
        return self

    def _execute_quietly(self, code: str, timeout: float) -> dict:
        from jupyter_core.utils import run_sync

        return run_sync(self.kc.execute_interactive)(code, timeout=timeout, output_hook=lambda msg: None)

    @property
    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return self.km is not None and bool(run_sync(self.km.is_alive)())

    def ready_for_run(self) -> ReportKernel:
        """A clean kernel for the next report: the same one reset, or a new one."""
        if self.alive and self.reuse and 0 < self.runs < self.max_runs:
            reply = self._execute_quietly(RESET, timeout=60)
            if reply["content"]["status"] == "ok":
                self.timings = {"kernel start": 0.0, "imports": 0.0}
                self.runs += 1
                return self
        if self.km is not None and (self.runs > 0 or not self.alive):
            self.shutdown()
        if self.km is None:
            self.start()
        self.runs += 1
        return self

    def execute(self, nb, parameters: dict[str, Any], timeout: float | None = None, source: str | None = None):
        """Run `nb` with papermill on this kernel (after `ready_for_run`); the executed notebook.

        `nb` is taken over (changed in place). `source`: the notebook's path, recorded as papermill's
        `input_path`. papermill's steps run without its file round trips (`_papermill`), and without
        an output path (it would rewrite the whole notebook twice per cell). A run still busy after
        `timeout` seconds has its kernel killed and `timed_out` set. When it fails, papermill's error
        propagates and `executed` holds the notebook as far as it ran.
        """
        nb.metadata["kernelspec"] = dict(KERNELSPEC)
        self.executed, self.timed_out = None, False
        timer = threading.Timer(timeout, self.kill, kwargs={"timed_out": True}) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            return _papermill(nb, parameters, source, report_kernel=self, execution_timeout=timeout)
        finally:
            if timer:
                timer.cancel()

    def kill(self, timed_out: bool = False) -> None:
        """Kill the kernel and any process it started, at once (a hung cell); safe from another thread
        or a signal handler."""
        self.timed_out = self.timed_out or timed_out
        try:
            pid = self.km.provisioner.pid if self.km and self.km.provisioner else None
        except AttributeError:
            pid = None
        if pid:
            _kill_tree(pid)

    def abandon(self) -> None:
        """Kill the kernel and remove its folder without talking to it (this process is stopping)."""
        self.kill()
        if self.cwd:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def shutdown(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            from jupyter_core.utils import run_sync

            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:
                self.kill()
        if self.cwd:
            shutil.rmtree(self.cwd, ignore_errors=True)
        self.km = self.kc = self.cwd = None
        _live.discard(self)


def _kill_tree(pid: int) -> None:
    """SIGKILL a kernel and its process group (jupyter_client starts it as a session leader)."""
    try:
        if hasattr(os, "killpg") and os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all_kernels() -> None:
    """Kill every kernel this process started and remove their folders, at once (the process is stopping)."""
    for kernel in list(_live):
        kernel.abandon()


def remove_stale_kernel_folders() -> list[Path]:
    """Remove the kernel folders of runners that are no longer alive (a crash, `kill -9`); those removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        owner = folder.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not process_alive(int(owner)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _papermill(nb, parameters: dict[str, Any], source: str | None, **engine_kwargs):
    """`papermill.execute_notebook(nb, None, parameters, report_mode=True)` on the citykit engine, step
    by step as papermill 2 takes them, less what costs without use in a report run: the notebook
    written to JSON and parsed back (with two schema validations) on the way in, written to JSON
    again for no output path on the way out, and the parameters cell parsed for a warning about
    names the runner has already validated. The executed notebook is the same, except that
    papermill's `input_path` names the notebook instead of holding a copy of all of it."""
    from papermill import __version__
    from papermill.engines import papermill_engines
    from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers
    from papermill.parameterize import parameterize_notebook

    engine = _engine()
    nb.metadata.setdefault(  # papermill's load_notebook_node, without the JSON round trip
        "papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {}, "version": __version__}
    )
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    if parameters:
        nb = parameterize_notebook(nb, parameters, True, kernel_name=KERNEL_NAME, engine_name=engine)
    nb = remove_error_markers(prepare_notebook_metadata(nb, source, None, report_mode=True))
    kernel_name = papermill_engines.nb_kernel_name(engine_name=engine, nb=nb, name=KERNEL_NAME)
    nb = papermill_engines.execute_notebook_with_engine(
        engine, nb, input_path=source, output_path=None, kernel_name=kernel_name, progress_bar=False,
        log_output=False, start_timeout=60, stdout_file=None, stderr_file=None, **engine_kwargs,
    )  # fmt: skip
    raise_for_execution_errors(nb, None)
    return nb


def _engine() -> str:
    """A papermill engine that executes on a ReportKernel's running kernel (registered once)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class ReportKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None,
                                     report_kernel=None, **kwargs):  # fmt: skip
            kwargs.pop("input_path", None)
            kwargs.pop("timeout", None)
            client = PapermillNotebookClient(
                nb_man, km=report_kernel.km, kernel_name=kernel_name, timeout=execution_timeout,
                startup_timeout=start_timeout, log_output=log_output, **kwargs,
            )  # fmt: skip
            client.kc = report_kernel.kc
            report_kernel.executed = nb_man.nb  # the executed notebook, even when a cell fails
            return client.execute(cleanup_kc=False)

    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, ReportKernelEngine)
    return ENGINE


# ------------------------------------------------------------------ in the kernel

_rc_snapshot: dict | None = None  # matplotlib's settings after the prelude, restored by each reset
_resets = 0  # reports this kernel was reset after


def install_kernel_hooks() -> None:
    """Warm the kernel's imports and register the figure-alt and table formatters (idempotent)."""
    global _rc_snapshot
    import duckdb  # noqa: F401  (warm imports: paid once per kernel, not once per report)
    import matplotlib
    import matplotlib.pyplot
    import pandas as pd
    import seaborn  # noqa: F401  (a warm import: every report draws with it)
    from IPython import get_ipython
    from matplotlib.figure import Figure

    import citykit.data.load  # a warm import, paid in the kernel only, never by the runner  # noqa: F401

    shell = get_ipython()
    if shell is None:
        return
    _watch_runner()
    # the inline backend registers its figure printer when first used: use it now, then wrap it
    matplotlib.pyplot.close(matplotlib.pyplot.figure())
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    # the same pixels, zlib level 3 instead of 6: a third less time encoding (~11 ms a report of 4
    # figures) and, on these charts, files no larger (measured in benchmarks/README.md)
    set_matplotlib_formats("png", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    formatters = shell.display_formatter.formatters
    png = formatters["image/png"]
    original = png.lookup_by_type(Figure)
    if not getattr(original, "_citykit", False):

        def png_with_alt(fig: Figure) -> Any:
            prepare_figure(fig)  # legends off the data, values on few bars, no text under 9 pt
            data = original(fig)
            return None if data is None else (data, {"alt": figure_alt(fig)})

        png_with_alt._citykit = True  # type: ignore[attr-defined]
        png.for_type(Figure, png_with_alt)
    if TABLE_MIME not in formatters:
        from IPython.core.formatters import JSONFormatter
        from traitlets import Unicode

        class TableFormatter(JSONFormatter):
            format_type = Unicode(TABLE_MIME)

        table = TableFormatter(parent=shell.display_formatter)
        table.for_type(pd.DataFrame, table_payload)
        table.for_type_by_name("citykit.standards.equity", "DisaggregatedTable", table_payload)  # as shown: "≤10", "†"
        table.for_type_by_name("citykit.data.quality", "Scorecard", table_payload)
        table.for_type_by_name("pandas.io.formats.style", "Styler", table_payload)
        formatters[TABLE_MIME] = table
    apply_style()  # one palette and type scale for every report's charts
    _rc_snapshot = dict(matplotlib.rcParams)
    gc.freeze()  # the imported libraries: see `_freeze_long_lived` (their import-time garbage is small)


def _freeze_long_lived() -> None:
    """Move every object alive now out of the garbage collector's reach, after collecting what is
    garbage: its full collections then scan only what the next reports create, not the ~150,000
    objects of pandas, matplotlib, DuckDB and statsmodels (~45 ms of each warm report's ~1 s)."""
    gc.collect()  # the finished report's garbage: nothing unreachable is kept for good
    gc.freeze()


_watchdog = None


def _watch_runner() -> None:
    """In the kernel: exit when the runner (`CITYKIT_PARENT_PID`) or the process that started the
    kernel dies, even by `kill -9` (once per kernel)."""
    global _watchdog
    if _watchdog is None:
        _watchdog = die_with_parent(os.environ.get(PARENT_ENV, ""), grace=2.0)


def reset_kernel_state() -> None:
    """Between two reports in one kernel: a clean namespace, figures closed, settings restored.

    Cheaper than `%reset -f` (which also runs a full garbage collection, ~0.5 s): the user's names
    go, the output cache goes, modules already imported stay imported. After the first report, what
    it imported for good (the libraries it used first) is frozen too (`_freeze_long_lived`).
    """
    global _resets
    import matplotlib
    import matplotlib.pyplot as plt
    import pandas as pd
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        hidden = shell.user_ns_hidden
        for name in [n for n in shell.user_ns if n not in hidden]:
            del shell.user_ns[name]
        shell.user_ns.get("_oh", {}).clear()
        for name in ("_", "__", "___"):
            shell.user_ns[name] = ""
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _rc_snapshot is not None:
            matplotlib.rcParams.update(_rc_snapshot)
        pd.reset_option("all")
    _resets += 1
    if _resets == 1:
        _freeze_long_lived()
