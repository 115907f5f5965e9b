"""Scoring apart from learner code: answers out of the sandbox, tests in a clean process.

Grading a notebook has two phases (`TwoPhaseExecute`, the Execute step of nbgrader's autograde):

1. The learner's notebook runs in a sandboxed kernel (`citykit.grading.sandbox`), each test cell
   reduced to its imports (the tests run in phase 2, visible part included: their messages are the
   feedback, so running them here too would only cost time). After each answer cell, the answers
   its exercise declares (course.yml `answers:`, see `declared_answers`) are written as data
   (`citykit.grading.answer_files`).
2. Every graded test, visible and hidden, runs in this process (a grading worker that never runs
   learner code) in a namespace built from the course's own source notebook: its locked cells
   replayed (parameters, setup: never the learner's copies), each exercise's exported answers put
   where its answer cell stands, and the test cells in order. Their outputs replace the test cells'
   outputs in the graded notebook, so nbgrader's own grading step (SaveAutoGrades) scores them
   and the gradebook, formgrader, feedback and export work as before.

A kernel the learner tampered with (input or AST transformers, patched `citykit.check`, builtins)
changes only what its own notebook shows, never a test's verdict: at worst it exports wrong
answers, which score what wrong answers score.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import json
import os
import re
import signal
import sys
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, Unicode

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading import answer_files

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
OUTPUT_LIMIT = 2 * 2**20  # output kept per cell of a learner's notebook
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------- declared answers


def _course_files(course_root: Path | None) -> list[Path]:
    files = []
    if course_root is not None:
        files.append(Path(course_root) / "curriculum" / "course.yml")
    with contextlib.suppress(CitykitError):
        files.append(paths.course_file())
    return [f for f in files if f.is_file()]


def declared_answers(assignment: str, course_root: Path | None = None) -> dict[str, dict[str, dict | None]] | None:
    """grade_id -> answer name -> options ({"calls": [...]} for a function, else None), from the
    module's `answers:` in course.yml (the course copy's first, then the active course's); None
    when the module declares none. A bad declaration is a one-line CitykitError."""
    import yaml

    slug = re.sub(r"^\d{2}-", "", assignment)
    for file in _course_files(course_root):
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for entry in raw.get("modules", []) or []:
            if entry.get("slug") == slug and entry.get("answers") is not None:
                return _parse_answers(entry["answers"], f"{file}: module {slug}")
    return None


def _parse_answers(raw: Any, where: str) -> dict[str, dict[str, dict | None]]:
    if not isinstance(raw, dict):
        raise CitykitError(f"{where}: `answers` maps each answer cell's grade_id to a list of names")
    parsed: dict[str, dict[str, dict | None]] = {}
    for grade_id, names in raw.items():
        if not isinstance(names, list):
            raise CitykitError(f"{where}: answers of {grade_id!r} should be a list of names")
        entries: dict[str, dict | None] = {}
        for item in names:
            if isinstance(item, str):
                name, options = item, None
            elif isinstance(item, dict) and len(item) == 1:
                name, options = next(iter(item.items()))
                calls = (options or {}).get("calls")
                if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
                    raise CitykitError(f"{where}: {grade_id}: {name} should give `calls:`, a list of argument lists")
                options = {"calls": list(calls)}
            else:
                raise CitykitError(f"{where}: {grade_id}: {item!r} is not an answer name")
            if not IDENTIFIER.match(str(name)):
                raise CitykitError(f"{where}: {grade_id}: {name!r} is not a Python name")
            entries[str(name)] = options
        parsed[str(grade_id)] = entries
    return parsed


def assigned_names(source: str) -> list[str]:
    """The global names a cell assigns, imports or defines (in order, each once): its statements and
    those inside its if/for/while/with/try blocks, not inside functions or classes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []

    def targets(node: ast.AST) -> None:
        found.extend(e.id for e in ast.walk(node) if isinstance(e, ast.Name) and isinstance(e.ctx, ast.Store))

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
                targets(node.target)
            elif isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.append(node.name)
                continue
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found.extend((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Expr | ast.Return):
                found.extend(e.target.id for e in ast.walk(node) if isinstance(e, ast.NamedExpr))
            for block in ("body", "orelse", "finalbody"):
                visit(getattr(node, block, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                if handler.name:
                    found.append(handler.name)
                visit(handler.body)

    visit(tree.body)
    return list(dict.fromkeys(found))


def used_names(source: str) -> set[str]:
    """The global names a cell reads that it does not define itself (before or after; a rough but
    safe over-approximation for deciding what a test needs)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    loads, local = set(), set(assigned_names(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.add(node.id)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            local.add(node.name)
    return loads - local


# ---------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlanCell:
    kind: str  # "locked" (replayed), "solution" (answers put in), "test" (run and scored), "free" (see plan_for)
    grade_id: str
    source: str


@dataclass(frozen=True)
class Plan:
    """What the scorer runs for one notebook of an assignment, from the course's source notebook."""

    assignment: str
    notebook: str
    cells: tuple[PlanCell, ...]
    answers: dict[str, dict[str, dict | None]]  # grade_id -> name -> options
    declared: bool  # from course.yml (else taken from the answer cells' assignments)

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        for cell in self.cells:
            digest.update(f"{cell.kind}\0{cell.grade_id}\0{cell.source}\0".encode())
        return digest.hexdigest()


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def plan_for(assignment: str, notebook: str, course_root: Path | None = None) -> Plan:
    """The scoring plan of `notebook` (a name without .ipynb) from notebooks/<assignment>/: its locked,
    answer and test cells in order, and the unlocked cells of the course's own version that define a
    name a later locked or test cell reads and nothing else provides (replayed as written in the
    course: the learner's edits to them do not reach the tests)."""
    import builtins

    import nbformat

    root = Path(course_root) if course_root is not None else paths.course_root()
    source = root / "notebooks" / assignment / f"{notebook}.ipynb"
    if not source.is_file():
        raise CitykitError(f"no source notebook {source} to score {assignment} with")
    nb = nbformat.read(source, as_version=4)
    cells: list[PlanCell] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = _meta(cell)
        grade_id = meta.get("grade_id") or ""
        if grade_id and meta.get("solution"):
            cells.append(PlanCell("solution", grade_id, cell.source))
        elif grade_id and meta.get("grade"):
            cells.append(PlanCell("test", grade_id, cell.source))
        elif grade_id and meta.get("locked"):
            cells.append(PlanCell("locked", grade_id, cell.source))
        else:
            cells.append(PlanCell("free", f"cell {index + 1}", cell.source))
    declared = declared_answers(assignment, course_root)
    solutions = [c.grade_id for c in cells if c.kind == "solution"]
    if declared is None:
        answers = {c.grade_id: dict.fromkeys(assigned_names(c.source)) for c in cells if c.kind == "solution"}
    else:
        unknown = sorted(set(declared) - set(solutions))
        if unknown:
            raise CitykitError(f"course.yml declares answers of {', '.join(unknown)}, not answer cells of {assignment}")
        answers = {g: declared.get(g, {}) for g in solutions}
    # keep a free cell only when a later locked or test cell needs a name that only it defines
    provided = set(dir(builtins)) | {"display", "get_ipython"}
    needed_from: dict[int, set[str]] = {}
    last_definer: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if cell.kind in ("locked", "test"):
            for name in used_names(cell.source) - provided:
                if name in last_definer:
                    needed_from.setdefault(last_definer[name], set()).add(name)
        names = set(answers.get(cell.grade_id, {})) if cell.kind == "solution" else set(assigned_names(cell.source))
        if cell.kind == "free":
            for name in names:
                last_definer[name] = index
        else:
            provided |= names
            for name in names:
                last_definer.pop(name, None)
    kept = tuple(c for i, c in enumerate(cells) if c.kind != "free" or i in needed_from)
    return Plan(assignment, notebook, kept, answers, declared is not None)


def unprovided_names(plan: Plan) -> dict[str, list[str]]:
    """test grade_id -> names it reads that no locked cell, earlier test, kept free cell or declared
    answer provides (a declaration missing from course.yml `answers:`, or a name made up by the test)."""
    import builtins

    provided = set(dir(builtins)) | {"display", "get_ipython"}
    missing: dict[str, list[str]] = {}
    for cell in plan.cells:
        if cell.kind == "test":
            lacking = sorted(used_names(cell.source) - provided)
            if lacking:
                missing[cell.grade_id] = lacking
        if cell.kind == "solution":
            provided |= set(plan.answers.get(cell.grade_id, {}))
        else:
            provided |= set(assigned_names(cell.source))
    return missing


def imports_only(source: str) -> str:
    """A cell's top-level import statements, nothing else ("" when it has none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    lines = source.splitlines()
    return "\n".join("\n".join(lines[node.lineno - 1 : node.end_lineno]) for node in tree.body
                     if isinstance(node, ast.Import | ast.ImportFrom))  # fmt: skip


def visible_part(source: str) -> str:
    """A test cell without its hidden tests (the lines between the markers)."""
    lines, inside = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the scorer


@functools.cache
def _shell_class():
    """The scorer's IPython shell class, made once per process (IPython keeps one shell per class)."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type

    class QuietDisplayHook(DisplayHook):
        """Keeps a cell's last value (an execute_result) without printing it."""

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            pass

    class ScoringShell(InteractiveShell):
        displayhook_class = Type(QuietDisplayHook)
        error: dict | None = None

        def showtraceback(self, exc_tuple=None, filename=None, tb_offset=None, exception_only=False,
                          running_compiled_code=False):  # fmt: skip
            etype, evalue, tb = exc_tuple or sys.exc_info()
            if etype is None:
                return
            self.error = {"ename": etype.__name__, "evalue": str(evalue),
                          "traceback": _traceback(self, etype, evalue, tb)}  # fmt: skip

        def showsyntaxerror(self, filename=None, running_compiled_code=False):
            self.showtraceback()

        def _format_exception_for_storage(self, exception, filename=None, running_compiled_code=False):
            return {"ename": type(exception).__name__, "evalue": str(exception), "traceback": []}  # no history kept

    return ScoringShell


def _traceback(shell, etype, evalue, tb) -> list[str]:
    """A traceback as an IPython kernel prints it (each frame of a cell as `Cell In[N], line L` with an
    arrow at the line), made without IPython's slow inspection of every frame."""
    import linecache

    cells = getattr(shell.compile, "_filename_map", {})
    lines = ["-" * 75, f"{etype.__name__:<42}Traceback (most recent call last)"]
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename not in cells:
        start = start.tb_next  # IPython's own frames, before the cell's
    tb = start or tb
    while tb is not None:
        frame, number = tb.tb_frame, tb.tb_lineno
        filename = frame.f_code.co_filename
        if filename in cells:
            source = linecache.getlines(filename)
            lines.append(f"Cell In[{cells[filename]}], line {number}")
            for n in range(max(1, number - 2), min(len(source), number + 2) + 1):
                arrow = "----> " if n == number else "      "
                lines.append(f"{arrow}{n} {source[n - 1].rstrip()}")
        else:
            lines.append(f"File {filename}:{number}, in {frame.f_code.co_name}")
            text = linecache.getline(filename, number).rstrip()
            if text:
                lines.append(f"----> {number} {text.strip()}")
        lines.append("")
        tb = tb.tb_next
    lines.append(f"{etype.__name__}: {evalue}")
    return ["\n".join(lines)]


class CellTimeout(TimeoutError):
    """A test cell ran past the cell timeout in the scorer."""


class AnsweredCalls:
    """A learner's function, as the results of the calls the course declares: each call was made in
    the sandbox; here a call with the same arguments (the same objects, or equal data) returns that
    result again (a copy), or raises what the learner's function raised."""

    def __init__(self, name: str, table: list[tuple[tuple, str | None, Any]]):
        self.__name__ = self.__qualname__ = name
        self._table = table  # (arguments as evaluated here, their fingerprint, outcome)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (the learner's, as graded on the declared calls)>"

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"{self.__name__} is graded on positional arguments only")
        for index, (probe, fingerprint, outcome) in enumerate(self._table):
            if len(probe) == len(args) and all(a is b for a, b in zip(probe, args, strict=True)):
                return _outcome(outcome)
            if len(probe) == len(args):
                if fingerprint is None:
                    fingerprint = _fingerprint(probe)
                    self._table[index] = (probe, fingerprint, outcome)
                if fingerprint == _fingerprint(args):
                    return _outcome(outcome)
        raise AssertionError(
            f"{self.__name__} was called on arguments the course does not grade it on (course.yml `answers:` "
            "names the calls); tell your instructor"
        )


def _outcome(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return copy.deepcopy(outcome)


def _fingerprint(args: tuple) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    for value in args:
        digest.update(type(value).__qualname__.encode())
        if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
            kinds = value.dtypes if isinstance(value, pd.DataFrame) else [value.dtype]
            digest.update(repr((value.shape, [str(d) for d in kinds])).encode())
            if isinstance(value, pd.DataFrame):
                digest.update(repr(list(value.columns)).encode())
            try:
                digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
            except TypeError:
                digest.update(value.to_json(default_handler=repr).encode())
        else:
            try:
                digest.update(repr(answer_files.encode(value)).encode())
            except answer_files.Refused:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def _error_of(record: list) -> BaseException:
    import builtins

    name, message = str(record[0]), str(record[1])
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:
            pass
    return RuntimeError(f"{name}: {message}")


@dataclass
class Scored:
    """What scoring one learner's notebook gave."""

    outputs: dict[str, list] = field(default_factory=dict)  # test grade_id -> nbformat outputs
    refused: dict[str, str] = field(default_factory=dict)  # answer name -> why it could not be graded
    seconds: float = 0.0


IPYTHON_NAMES = {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_dh", "_ih", "exit", "quit",
                 "get_ipython", "__builtins__", "__builtin__", "__name__", "__doc__", "__spec__", "__loader__",
                 "__package__", "_exit_code"}  # fmt: skip


class Scorer:
    """Runs test cells in a fresh namespace per learner (a process that never runs learner code).

    The locked cells before the first answer cell (parameters, setup: loading the data) give the same
    namespace to every learner of an assignment, so they run once per worker and each learner starts
    from a deep copy of the result (unless a value cannot be copied: then they run again each time).
    """

    def __init__(self, cell_timeout: int = 0):
        self.cell_timeout = cell_timeout
        self._shell = None
        self._baseline: set[str] | None = None
        self._prefix: dict[str, tuple[int, dict | None]] = {}  # plan key -> (cells replayed, snapshot)

    @property
    def shell(self):
        if self._shell is None:
            import matplotlib
            from traitlets.config.configurable import MultipleInstanceError

            matplotlib.use("Agg", force=True)
            try:
                self._shell = _shell_class().instance(colors="nocolor")
            except MultipleInstanceError:  # another IPython shell runs this process (grading from IPython)
                self._shell = _shell_class()(colors="nocolor")
        return self._shell

    def _run(self, source: str, timeout: int = 0) -> tuple[list, dict | None, Any]:
        """(stream and display outputs, error, result) of running `source` in the shell."""
        from IPython.utils.capture import capture_output

        shell = self.shell
        shell.error = None
        alarm = timeout and hasattr(signal, "setitimer")
        if alarm:

            def stop(_signum, _frame):
                raise CellTimeout(f"the test ran longer than {timeout} s")

            previous = signal.signal(signal.SIGALRM, stop)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with capture_output(display=True) as captured:
                result = shell.run_cell(source, store_history=True)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        from nbformat.v4 import new_output

        outputs = []
        if captured.stdout:
            outputs.append(new_output("stream", name="stdout", text=captured.stdout))
        if captured.stderr:
            outputs.append(new_output("stream", name="stderr", text=captured.stderr))
        for shown in captured.outputs:
            outputs.append(new_output("display_data", data=shown.data, metadata=shown.metadata or {}))
        return outputs, shell.error, result

    def _clear(self) -> None:
        """An empty namespace (IPython's own names kept), without IPython's reset and its slow gc."""
        shell = self.shell
        if self._baseline is None:
            self._baseline = set(shell.user_ns)
        for name in [n for n in shell.user_ns if n not in self._baseline]:
            del shell.user_ns[name]
        for name in ("Out", "_oh"):
            if isinstance(shell.user_ns.get(name), dict):
                shell.user_ns[name].clear()
        for name in ("_", "__", "___"):
            shell.user_ns[name] = ""

    def _fresh(self, plan: Plan) -> int:
        """Set the shell's namespace to the plan's replayed prefix; return how many cells it covers."""
        shell = self.shell
        self._clear()
        cached = self._prefix.get(plan.key)
        if cached is not None and cached[1] is not None:
            count, snapshot = cached
            shell.user_ns.update(_copied(snapshot))
            return count
        count = 0
        for cell in plan.cells:
            if cell.kind != "locked":
                break
            _, error, _ = self._run(cell.source)
            if error:
                raise CitykitError(f"the locked cell {cell.grade_id} of {plan.assignment} fails in the scorer: "
                                   f"{error['ename']}: {error['evalue']}")  # fmt: skip
            count += 1
        if cached is None:
            self._prefix[plan.key] = (count, _snapshot(shell.user_ns))
        return count

    def score(self, plan: Plan, answers_folder: Path, limit_bytes: int) -> Scored:
        """Score one learner: their exported answers, the course's locked and test cells."""
        import matplotlib.pyplot as plt

        started = time.perf_counter()
        scored = Scored()
        manifest = answer_files.read_answers(answers_folder, limit_bytes)
        # the process's warning filters, as a kernel's; each learner meets each warning afresh
        with warnings.catch_warnings(), _quiet_descriptors():
            done = self._fresh(plan)
            folder = None
            try:
                folder = answer_files.Folder(answers_folder, limit_bytes)
            except OSError:
                folder = None
            try:
                for cell in plan.cells[done:]:
                    if cell.kind in ("locked", "free"):
                        self._run(cell.source, self.cell_timeout)
                    elif cell.kind == "solution":
                        self._put_answers(plan, cell.grade_id, manifest.get(cell.grade_id, {}), folder, limit_bytes,
                                          scored)  # fmt: skip
                    else:
                        scored.outputs[cell.grade_id] = self._test(cell, scored)
            finally:
                if folder is not None:
                    folder.close()
                plt.close("all")
                self._clear()
        scored.seconds = time.perf_counter() - started
        return scored

    def _put_answers(self, plan: Plan, grade_id: str, records: dict, folder, limit_bytes: int, scored: Scored) -> None:
        namespace = self.shell.user_ns
        for name, options in plan.answers.get(grade_id, {}).items():
            record = records.get(name)
            if not isinstance(record, dict):
                namespace.pop(name, None)  # not answered: the tests meet a NameError, as in the notebook
                continue
            try:
                if folder is None:
                    raise answer_files.Refused("the answers folder could not be read")
                if options and options.get("calls") is not None:
                    namespace[name] = self._function(name, options["calls"], record, folder, limit_bytes)
                else:
                    namespace[name] = answer_files.read_value(folder, record, limit_bytes)
            except answer_files.Refused as why:
                namespace.pop(name, None)
                scored.refused[name] = str(why)
            except Exception as error:
                namespace.pop(name, None)
                scored.refused[name] = f"its data could not be read ({type(error).__name__})"

    def _function(self, name: str, calls: list[str], record: dict, folder, limit_bytes: int) -> AnsweredCalls:
        if record.get("kind") == "refused":
            raise answer_files.Refused(str(record.get("why", "it is not a function")))
        if record.get("kind") != "function":
            raise answer_files.Refused("it should be a function (def ...)")
        made = {str(r.get("call")): r for r in record.get("calls", []) if isinstance(r, dict)}
        table = []
        for call in calls:
            args = eval(f"({call},)", self.shell.user_ns)
            result = made.get(call)
            if result is None:
                outcome: Any = RuntimeError(f"{name}({call}) gave nothing when the notebook ran")
            elif "error" in result:
                outcome = _error_of(list(result["error"])[:2])
            else:
                try:
                    outcome = answer_files.read_value(folder, result["result"], limit_bytes)
                except answer_files.Refused as why:
                    outcome = TypeError(f"what {name} returned cannot be graded: {why}")
            table.append((args, None, outcome))
        return AnsweredCalls(name, table)

    def _test(self, cell: PlanCell, scored: Scored) -> list:
        from nbformat.v4 import new_output

        outputs, error, result = self._run(cell.source, self.cell_timeout)
        if result is not None and result.result is not None and error is None:
            data = self.shell.display_formatter.format(result.result)[0]
            outputs.append(new_output("execute_result", data=data, execution_count=result.execution_count))
        if error is not None:
            if error["ename"] == "NameError":
                missing = re.match(r"name '(\w+)' is not defined", error["evalue"])
                if missing and missing[1] in scored.refused:
                    error["evalue"] = f"your answer `{missing[1]}` could not be graded: {scored.refused[missing[1]]}"
                    error["traceback"] = [*error["traceback"][:-1], f"NameError: {error['evalue']}"]
            if error["ename"] == "CellTimeout":
                error["ename"] = "TimeoutError"
            outputs.append(new_output("error", **error))
        return outputs


@contextlib.contextmanager
def _quiet_descriptors():
    """What test code writes straight to the process's stdout and stderr (DuckDB's progress bar on a
    slow query) goes nowhere, not onto the grader's terminal; Python's own output is captured apart."""
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _snapshot(namespace: dict) -> dict | None:
    """A copy of the names a replayed prefix defined (the learner scored now works on the originals,
    so what their tests change never reaches the next learner), or None when one cannot be copied."""
    kept = {k: v for k, v in namespace.items() if k not in IPYTHON_NAMES and not re.match(r"^_i\d+$|^_\d+$", k)}
    try:
        return _copied(kept)
    except Exception:
        return None


SHARED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)


def _copied(snapshot: dict) -> dict:
    """A deep copy of the snapshot's data; modules, functions and classes are shared, and pandas
    objects are copied shallowly (pandas copies on write, so a change to one never reaches another)."""
    import pandas as pd

    memo: dict[int, Any] = {}
    pending = list(snapshot.values())
    seen = 0
    while pending and seen < 10_000:
        value = pending.pop()
        seen += 1
        if id(value) in memo:
            continue
        if isinstance(value, SHARED):
            memo[id(value)] = value
        elif isinstance(value, pd.DataFrame | pd.Series | pd.Index):
            memo[id(value)] = value.copy(deep=False)
        elif isinstance(value, dict):
            pending += list(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending += list(value)
    return copy.deepcopy(snapshot, memo)


# ---------------------------------------------------------------------------------- nbgrader's Execute


SANDBOX_REQUIRED = (
    "this course grades only in the sandbox: run `citykit grade autograde {assignment}` (on the hub it goes "
    "through the grading helper)"
)


class Unresponsive(DeadKernelError):
    """A learner's kernel that no longer answers (it ignored an interrupt): treated as dead."""


class TwoPhaseExecute(Execute):
    """nbgrader's Execute step, in two phases (see the module's doc): the learner's notebook in the
    sandbox, then every test in this process. The course's nbgrader configuration puts it on
    `Autograde.autograde_preprocessors` (`citykit.grading.cohort.apply_to_config`), so plain
    `nbgrader autograde` and the formgrader's autograde button grade this way too: with nothing
    configured (`sandbox`, `scratch`), it takes the cohort's limits and container, makes the sandbox
    user as root, and logs what the sandbox enforces and what it does not, every run."""

    scratch = Unicode("", help="a private folder for each learner's sandbox run").tag(config=True)
    sandbox = Dict({}, help="the sandbox policy (citykit.grading.sandbox.Policy as a dict)").tag(config=True)
    answers_mb = Integer(64, help="answers a notebook may export, in MB").tag(config=True)
    require_sandbox = Bool(False, help="plain nbgrader (formgrader's button) refuses to grade unless learner code "
                           "runs isolated (as root on Linux, or in a container); a course on a shared hub sets "
                           "it").tag(config=True)  # fmt: skip

    _scorer: Scorer | None = None
    _interrupted = None  # the cell interrupted at its timeout (phase 1)
    notes: ClassVar[dict[str, list[str]]] = {}  # notebook -> limits its run reached (read by the grading worker)

    def preprocess(self, nb, resources=None, km=None):
        from citykit.grading import sandbox  # lazy: loaded only when used

        info = resources.get("nbgrader", {})
        root = Path(self.config.CourseDirectory.root or paths.course_root())
        plan = _plan_cached(info["assignment"], info["notebook"], root)
        if TwoPhaseExecute._scorer is None:
            TwoPhaseExecute._scorer = Scorer()
        scorer = TwoPhaseExecute._scorer
        scorer.cell_timeout = int(self.timeout or 0)
        if self.sandbox:  # citykit's autograde: detected and said once per cohort
            policy, limit = sandbox.Policy.from_dict(self.sandbox), int(self.answers_mb) * 2**20
        else:  # plain nbgrader (`nbgrader autograde`, the formgrader)
            policy, limit = self._course_policy(root)
            if self.require_sandbox and not (policy.isolate or policy.container):
                raise CitykitError(SANDBOX_REQUIRED.format(assignment=info["assignment"]))
        with sandbox.Run(policy, Path(self.scratch) if self.scratch else None, root, info["assignment"]) as run:
            folder = Path(sandbox.CONTAINER_OUT) if policy.container else run.answers  # as the notebook sees it
            run_nb, origin = _phase_one_notebook(nb, plan, folder, limit)
            path = resources.setdefault("metadata", {}).get("path")
            resources["metadata"]["path"] = str(run.workdir)
            try:
                if policy.container:
                    self._phase_one_container(run_nb, run, limit)
                else:
                    self._phase_one(run_nb, resources, run)
            finally:
                resources["metadata"]["path"] = path
            run.stop()  # every process of the run has ended before its answers are read
            scored = scorer.score(plan, run.answers, limit)
        TwoPhaseExecute.notes[info["notebook"]] = list(run.notes)
        _merge(nb, run_nb, origin, scored)
        return nb, resources

    def _course_policy(self, root: Path):
        """The sandbox policy and answer-size limit (bytes) when plain nbgrader grades: the cohort's,
        with what is and is not enforced in nbgrader's log."""
        from citykit.grading import sandbox  # lazy: loaded only when used
        from citykit.grading.limits import cohort_limits  # lazy: loaded only when used

        made = sandbox.ensure_user()
        policy = sandbox.course_policy(root)
        for line in [made, "sandbox: " + "; ".join(policy.enforced()), *policy.notes()]:
            if line:
                self.log.warning(line)
        return policy, cohort_limits(root).answers_mb * 2**20

    def _phase_one(self, nb, resources, run) -> None:
        """Execute the notebook in the sandboxed kernel. A kernel that dies (a limit, or stopped at the
        notebook's wall time) leaves the cells after it unexecuted; what it exported before counts."""
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError

        from citykit.grading import sandbox  # lazy: loaded only when used

        NotebookClient.__init__(self, nb, None)  # owns its kernel manager: shuts the kernel down after
        self.reset_execution_trackers()
        self._output_bytes, self._output_cut = {}, {}
        self._check_assign_resources(resources)
        self.shutdown_kernel = "immediate"  # a tampered kernel may ignore a polite shutdown
        # nbgrader raises when a cell's output is late (4 s after its reply): its grades were that output.
        # Here they are not (the tests run in phase 2), and a kernel that delays its own output, or a
        # slow machine, would otherwise leave the learner not graded; the cell keeps what arrived.
        self.raise_on_iopub_timeout = False
        self._interrupted = None
        self.km = self.create_kernel_manager()
        run.configure_kernel_manager(self.km)
        watchdog = run.watchdog()
        try:
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                if info:
                    nb.metadata["language_info"] = info["content"].get("language_info", {})
                for index, cell in enumerate(nb.cells):
                    try:
                        self.preprocess_cell(cell, resources, index)
                    except DeadKernelError as error:
                        why = str(error) if isinstance(error, Unresponsive) else ""
                        cell.outputs = [*cell.get("outputs", []), sandbox.died_output(run, why)]
                        break
                    except CellTimeoutError:
                        cell.outputs = [*cell.get("outputs", []),
                                        sandbox.died_output(run, "the notebook's kernel stopped answering")]  # fmt: skip
                        break
        except DeadKernelError:
            pass
        except RuntimeError as error:  # the kernel did not start (a broken sandbox): said on the first cell
            if nb.cells:
                nb.cells[0].outputs = [sandbox.died_output(run, f"the kernel did not start: {error}")]
        finally:
            watchdog.cancel()

    async def _async_handle_timeout(self, timeout, cell=None):
        """A cell over its timeout is interrupted and fails (nbgrader's way), and the next cell runs. When
        that one times out too with no reply from the kernel in between (it ignored the interrupt, or
        no longer answers at all), the run ends: the answers exported before are graded, without
        waiting for the notebook's wall time, one cell timeout after another."""
        if self._interrupted is not None:
            raise Unresponsive(f"the notebook's kernel did not answer an interrupt at the cell timeout ({timeout} s)")
        self._interrupted = cell
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs):
        if "header" in (kwargs.get("execute_reply") or {}):  # a reply from the kernel (not a timeout's stand-in)
            self._interrupted = None
        return super().on_cell_executed(**kwargs)

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handling, up to OUTPUT_LIMIT bytes per cell: a notebook printing without
        end fills the grader's memory, not only its own."""
        used = self._output_bytes.get(cell_index, 0) + len(json.dumps(msg.get("content", {}), default=str))
        self._output_bytes[cell_index] = used
        if used > OUTPUT_LIMIT:
            if not self._output_cut.get(cell_index):
                self._output_cut[cell_index] = True
                from nbformat.v4 import new_output

                outs.append(new_output("stream", name="stdout", text=f"\n[output beyond {OUTPUT_LIMIT // 2**20} MB "
                                                                      "not kept]\n"))  # fmt: skip
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _phase_one_container(self, nb, run, limit: int) -> None:
        """Execute the notebook in a container (`sandbox.container_command`) and take its outputs back
        from the notebook it wrote: a regular file, within the limit, with the same cells."""
        import subprocess
        import uuid

        import nbformat

        from citykit.grading import sandbox  # lazy: loaded only when used

        prepared = run.dir / "notebook.ipynb"
        nbformat.write(nb, prepared)
        prepared.chmod(0o644)
        name = f"citykit-grade-{uuid.uuid4().hex[:12]}"
        command = sandbox.container_command(run.policy, prepared, run.workdir, run.answers, sandbox.published_folders(),
                                            int(self.timeout or 0), name)  # fmt: skip
        try:
            subprocess.run(command, capture_output=True, timeout=run.policy.wall_seconds, check=False)
        except subprocess.TimeoutExpired:
            run.notes.append(f"stopped at the wall-time limit ({run.policy.wall_seconds} s)")
            subprocess.run([run.policy.engine, "kill", name], capture_output=True, check=False)
        except OSError as error:
            run.notes.append(f"the container could not start: {error}")
        try:
            executed = nbformat.reads(
                answer_files.read_file(run.answers / "executed.ipynb", limit).decode(), as_version=4
            )
        except (OSError, ValueError, answer_files.Refused) as error:
            run.notes.append(f"the container's notebook could not be read ({type(error).__name__})")
            return
        if len(executed.cells) != len(nb.cells):
            run.notes.append("the container's notebook does not have the cells it was given")
            return
        for cell, ran in zip(nb.cells, executed.cells, strict=True):
            if cell.cell_type == "code" and ran.get("cell_type") == "code":
                cell.outputs = ran.get("outputs", [])
                cell.execution_count = ran.get("execution_count")


EXPORT_CELL = (
    "__import__('citykit.grading.answer_files', fromlist=['export']).export(globals(), {grade_id!r}, {spec!r}, "
    "{folder!r}, {limit!r})"
)


def _phase_one_notebook(nb, plan: Plan, folder: Path, limit_bytes: int):
    """The notebook the sandbox runs, and for each of its cells the graded notebook's cell it stands
    for (None: an export cell). Test cells lose their hidden part; after each answer cell, a cell
    exports the answers its exercise declares into `folder`."""
    import nbformat

    run_nb = nbformat.from_dict(copy.deepcopy(dict(nb)))
    cells, origin = [], []
    for index, cell in enumerate(run_nb.cells):
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            # the tests run in the scorer (their visible part too, whose messages are the feedback); here
            # a test cell keeps only its imports, which a learner's later cells may use (`check`)
            cell.source = imports_only(visible_part(cell.source))
        cells.append(cell)
        origin.append(index)
        spec = plan.answers.get(meta.get("grade_id")) if cell.cell_type == "code" and meta.get("solution") else None
        if spec:
            source = EXPORT_CELL.format(grade_id=meta["grade_id"], spec=spec, folder=str(folder), limit=limit_bytes)
            cells.append(nbformat.v4.new_code_cell(source))
            origin.append(None)
    run_nb.cells = cells
    return run_nb, origin


def _merge(nb, run_nb, origin: list, scored: Scored) -> None:
    """The graded notebook: the sandbox's outputs for the learner's cells, the scorer's for the tests
    (whose full source stays, hidden tests included, as nbgrader keeps it)."""
    last = None  # the learner's cell before an export cell: the kernel's death during the export is told there
    for run_index, cell in enumerate(run_nb.cells):
        target = origin[run_index]
        if target is None:
            died = [o for o in cell.get("outputs", []) if o.get("ename") == "DeadKernelError"]
            if died and last is not None:
                last.outputs = [*last.get("outputs", []), *died]
            continue
        if nb.cells[target].cell_type != "code":
            continue
        original = nb.cells[target]
        original.outputs = cell.get("outputs", [])
        original.execution_count = cell.get("execution_count")
        last = original
        meta = _meta(original)
        if meta.get("grade") and not meta.get("solution"):
            original.outputs = scored.outputs.get(meta.get("grade_id"), [])


_PLAN_CACHE: dict[tuple, tuple[float, Plan]] = {}


def _plan_cached(assignment: str, notebook: str, root: Path) -> Plan:
    """The plan, read again when the source notebook or course.yml changed."""
    files = [root / "notebooks" / assignment / f"{notebook}.ipynb", *_course_files(root)]
    stamp = sum(f.stat().st_mtime_ns for f in files if f.exists())
    key = (assignment, notebook, str(root))
    cached = _PLAN_CACHE.get(key)
    if cached is None or cached[0] != stamp:
        _PLAN_CACHE[key] = (stamp, plan_for(assignment, notebook, root))
    return _PLAN_CACHE[key][1]
