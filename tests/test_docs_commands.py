"""Every shell command the docs show runs: README.md, curriculum/guides/*.md and grading/README.md.

The commands are read from the fenced code blocks (bash, sh, shell, console and unlabelled blocks;
one command a line, `\\` continuations joined, trailing `# comments` stripped; commands quoted in a
comment count too: `` `citykit lab` `` in backticks, `# or: .venv/bin/citykit lab`, and
`# or: --zips FOLDER`, which is the line's own command with those options). They run in document
order, in ONE scratch course made with `citykit init` in a temporary folder, with `CITYKIT_HOME` in
another and a tiny city (`citykit data build --scale tiny`), so the whole walk takes a few minutes.

Each documented command is either run (and must exit with its expected code), started and checked
(servers: the URL with a token appears, the server answers on 127.0.0.1 with the token and refuses
without it, and serves the folder the docs promise; then it is stopped), or on the reviewed SKIPS
list below with its reason. Anything else fails the test: a new command in the docs needs a decision
here. Placeholders (`roster.csv`, `~/Downloads/311_export.csv`, ...) become test files (PLACEHOLDERS),
and the few changes to how a command runs here are listed with their reasons (ADJUSTMENTS).

Run it alone with `.venv/bin/python -m pytest -p no:xdist tests/test_docs_commands.py -s` to see
the table of every command, what happened and how long it took.
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # `.venv/bin` in the docs means the venv this test runs in
VENV = BIN.parent
CITYKIT = BIN / "citykit"
DOCS = ("README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "curriculum" / "guides").glob("*.md")),
        "grading/README.md")  # fmt: skip
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
# First words that make a comment's backticked text (or its `or: ...`) a command.
PROGRAMS = {"citykit", ".venv/bin/citykit", "nbgrader", "make", "pip", "python", "python3", "conda", "cd", "export",
            "pytest", "jupyter"}  # fmt: skip
# What a learner's lab must not serve: solutions, raw data, other learners' work, the gradebook.
COURSE_INSIDES = {"notebooks", "datasets", "submitted", "autograded", "feedback", "gradebook.db", "cohorts"}
LEARNERS = ("ada", "bo", "cy")  # the test roster; ada submits through the exchange, bo through an LMS download


# --- reading the docs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str  # as documented (continuations joined)
    block: int  # index of its fenced block in the doc: a `cd` lasts until the block ends

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def normal(self) -> str:
        """The command with `.venv/bin/` dropped and spaces collapsed: what the rules below match."""
        return re.sub(r"\s+", " ", re.sub(r"^\.venv/bin/", "", self.text.strip()))


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: `#` starts a comment at the line's start or after a space,
    outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def _is_program(text: str) -> bool:
    words = text.split()
    return bool(words) and words[0] in PROGRAMS


def comment_commands(code: str, comment: str) -> list[str]:
    """Commands quoted in a comment: backticked commands, and `or: COMMAND` / `or: --OPTIONS` (the
    line's own command with those options; the options end at a comma or a parenthesis)."""
    found = [text.strip() for text in re.findall(r"`([^`]+)`", comment) if _is_program(text)]
    alternative = re.search(r"\bor:\s*(.+)", comment)
    if alternative:
        text = re.split(r",|\s\(", alternative.group(1).replace("`", ""))[0].strip()
        if text.startswith("-") and code:
            found.append(f"{code} {text}")
        elif _is_program(text):
            found.append(text)
    return list(dict.fromkeys(found))


def extract(markdown: str, doc: str) -> list[Command]:
    """Every shell command in the markdown's fenced code blocks, in order."""
    commands: list[Command] = []
    fence: str | None = None
    language = ""
    block = -1
    pending, start = "", 0
    for number, line in enumerate(markdown.splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            opened = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", stripped)
            if opened:
                fence, language, block = opened.group(1), opened.group(2).lower(), block + 1
            continue
        if stripped.startswith(fence) and not stripped.strip(fence[0]):
            fence = None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if language == "console":
            if stripped.startswith("$ "):
                stripped = stripped[2:]
            elif not pending:
                continue  # output
        if not pending:
            start = number
        code, comment = split_comment(stripped)
        if code.endswith("\\") and not comment:
            pending += code[:-1].rstrip() + " "
            continue
        code = (pending + code).strip()
        pending = ""
        for text in ([code] if code else []) + comment_commands(code, comment):
            commands.append(Command(doc, start, text, block))
    return commands


def documented_commands() -> list[Command]:
    return [c for doc in DOCS for c in extract((REPO / doc).read_text(encoding="utf-8"), doc)]


# --- what happens to each command ---------------------------------------------------------------


def _has_chromium() -> bool:
    from citykit.reports.html import find_chromium

    return find_chromium() is not None


def _pg_url() -> str:
    return os.environ.get("CITYKIT_TEST_PG_URL", "")


@dataclass(frozen=True)
class Skip:
    pattern: str  # regex searched in Command.normal
    reason: str
    applies: Callable[[], bool] = lambda: True  # skipped only when this holds


# The reviewed skip list: documented commands this test does not run, each with why (and what covers it).
SKIPS = (
    Skip(r"^make test$", "it is this suite (make test runs tests/, this file included)"),
    Skip(r"^make demo$", "installs first (make setup); tests/test_readme.py::test_make_demo_from_a_clean_clone runs it in a clean clone"),
    Skip(r"^make setup$", "installs into the venv; tests/test_readme.py's make demo runs it in a clean clone"),
    Skip(r"^pip install .*citykit-\*\.whl|^pip install .* \.$", "tests/test_wheel.py installs the wheel in a clean venv"),
    Skip(r"^conda ", "needs conda; tests/test_environment.py keeps environment.yml in step with pyproject.toml"),
    Skip(r"^citykit data build && pytest$", "the conda route's last step: the default city and the whole suite (this suite)"),
    Skip(r"^\S+ \S+ \S+ \S+ \S+ cd /srv/", "a crontab entry for a city server (/srv/citykit, /exports/...); its import and "
         "batch commands run here in the README's own lines"),
    Skip(r"--scale large", "minutes and gigabytes (benchmarks/ build it); --scale tiny runs here"),
    Skip(r"postgresql\+psycopg://|--to-env CITY_DB_URL|dataset=\w+_pg\b",
         "needs PostgreSQL: set CITYKIT_TEST_PG_URL (eval \"$(bash .ci/postgres.sh)\") to run these lines",
         applies=lambda: not _pg_url()),
    Skip(r"--pdf\b", "needs headless Chromium (apt-get install chromium)", applies=lambda: not _has_chromium()),
    Skip(r"^sudo ", "a city server's administration as root (installs, system accounts): tests/hub/ runs citykit hub "
         "setup, start, status, add-learner, stop and teardown on a throwaway cohort (root, useradd, the proxy)"),
    Skip(r"nbgrader release_feedback", "on a cohort's hub, as its instructor: tests/hub/test_hub_cohort.py runs it"),
    Skip(r"^(docker|kubectl|helm) |^cd /srv/citykit-hub/", "Kubernetes: no cluster, registry or Docker here; "
         "tests/hub/test_hub_config.py checks the values.yaml, volumes.yaml and Dockerfile they read"),
)  # fmt: skip

# Commands this test knows how to run (the rest must be skipped above, or the test fails).
RUNS = (r"^citykit ", r"^cd \S+$", r"^export [A-Z_]+=\S+$", r"^make lab(-instructor)?$")
SERVERS = r"^citykit lab\b|^make lab(-instructor)?$"
# Exit codes other than 0 that a command documents.
EXIT_CODES = ((r"^citykit data check\b", {0, 1}),)  # "quality scorecard; exit 1 when a gate fails"

# How commands run here differently from the page, and why.
BATCH_NEIGHBORHOODS = ("Millbrook", "Harbor Point")
ADJUSTMENTS = (
    ("`citykit demo`, `citykit data build` without --scale get --scale tiny",
     "the default city takes minutes; the same code runs at tiny scale (make demo in tests/test_readme.py builds "
     "the default city)"),
    ("`report batch ... --over neighborhood` without --values runs --values Millbrook 'Harbor Point'",
     "every neighborhood is 24 runs; two prove the documented batch path, and tests/test_batch.py::"
     "test_default_values_are_every_neighborhood covers the expansion to every neighborhood"),
    ("`report batch` without --workers runs with --workers 1",
     "the default is one worker per core, and each worker starts its own kernel: one warm kernel is quicker on a "
     "shared machine (tests/test_batch.py runs parallel workers)"),
    ("`make lab`, `make lab-instructor` run as `make -C REPO -o VENV/.installed VENV=VENV TARGET`, "
     "with CITYKIT_COURSE set to the scratch course",
     "their prerequisite make setup reinstalls into the venv (skipped, as make setup is); the target's own "
     "recipe runs, on the scratch course"),
    ("the commands of each doc run in the scratch course folder; a `cd` lasts to the end of its block",
     "the docs run commands from the citykit folder"),
)  # fmt: skip


NEXT_YEAR = (datetime.date.today() + datetime.timedelta(days=365)).isoformat()


def placeholders(files: Path, scratch: Path) -> list[tuple[str, object, str]]:
    """(pattern in a documented command, the text the test puts there, the test file behind it)."""
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    return [
        (r"~/Downloads/311_export\.csv", q(files / "Downloads" / "311_export.csv"),
         "a 600-request export in Baltimore's layout (recognized by `import auto`)"),
        (r"~/Downloads/lms-export/?", q(files / "Downloads" / "lms-export"),
         "an LMS download: bo.zip holding bo_12345_04-time-to-close.ipynb (bo's answers)"),
        (r"(?<=--zips )FOLDER\b", q(files / "values-export"),
         "an LMS download of module 00: bo_777_00-values-to-questions.ipynb, not zipped"),
        (r"(?<![\w/.-])roster\.csv\b", q(files / "roster.csv"), f"a roster of {len(LEARNERS)} learners"),
        (r"(?<![\w/.-])population\.csv\b", q(files / "population.csv"),
         "population of the export's 3 neighborhoods (canonical neighborhoods columns)"),
        (r"(?<![\w/.-])neighborhoods\.geojson\b", q(files / "neighborhoods.geojson"), "3 polygons, one per neighborhood"),
        (r"(?<![\w/.-])my-analysis\.ipynb\b", q(files / "my-analysis.ipynb"), "a copy of module 04's notebook"),
        (r"(?<![\w/.-])my-course\b", q(scratch / "my-course"), "a second course folder (the install route)"),
        (r"--student ID\b", f"--student {LEARNERS[0]}", "a learner of the roster"),
        (r"(?<=--due )([\w-]+)=\d{4}-\d{2}-\d{2}\b", lambda m: f"{m.group(1)}={NEXT_YEAR}",
         "a due date a year from today: a past one is refused, and the documented example must not expire"),
        (r"postgresql\+psycopg://user:secret@host/db", q(_pg_url() or "postgresql+psycopg://user:secret@host/db"),
         "CITYKIT_TEST_PG_URL"),
    ]  # fmt: skip


@dataclass
class Outcome:
    command: Command
    status: str  # ran | server | skipped | unknown | failed
    detail: str = ""
    seconds: float = 0.0


def classify(command: Command) -> tuple[str, str]:
    """('skip', reason), ('server', ''), ('run', '') or ('unknown', why)."""
    for skip in SKIPS:
        if re.search(skip.pattern, command.normal) and skip.applies():
            return "skip", skip.reason
    if re.search(SERVERS, command.normal):
        return "server", ""
    if any(re.search(pattern, command.normal) for pattern in RUNS):
        return "run", ""
    return "unknown", "neither run by this test nor on its skip list: run it here, or add it to SKIPS with a reason"


def uncovered(commands: list[Command]) -> list[str]:
    return [f"{c.where}: `{c.text}`" for c in commands if classify(c)[0] == "unknown"]


# --- running them -------------------------------------------------------------------------------


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYKIT_", "VIRTUAL_ENV")) and k != "CITY_DB_URL"}
    env.update(CITYKIT_HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", COLUMNS="160")
    return env


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never through a proxy


def _get(url: str, token: str | None) -> tuple[int, bytes]:
    """(HTTP status, body); status 0 when nothing answers."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with LOCAL.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def stop_group(process: subprocess.Popen) -> None:
    """Stop a server this test started, with everything it started (its own process group)."""
    group = process.pid  # start_new_session: the leader's id is the group's, not reused while any member lives
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)  # anyone left (JupyterLab outliving make or citykit)?
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)
    process.wait()


@dataclass
class Runner:
    course: Path  # the scratch course: every doc's commands run here
    files: Path  # the placeholders' test files
    scratch: Path
    env: dict[str, str]
    timeout: float = 600
    outcomes: list[Outcome] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)  # command -> where it was checked

    def substitute(self, command: Command) -> str:
        text = command.text.strip()
        for pattern, value, _ in placeholders(self.files, self.scratch):
            text = re.sub(pattern, value if callable(value) else (lambda _match, value=value: value), text)
        text = re.sub(r"^(\.venv/bin/)?(citykit|nbgrader)\b", lambda m: str(BIN / m.group(2)), text)
        if re.match(rf"{re.escape(str(CITYKIT))} (demo|data build)\b", text) and "--scale" not in text:
            text += " --scale tiny"
        if re.search(r" report batch .*--over neighborhood", text) and "--values" not in text:
            text += " --values " + " ".join(shlex.quote(n) for n in BATCH_NEIGHBORHOODS)
        if " report batch " in text and "--workers" not in text:
            text += " --workers 1"
        return text

    def run_all(self, commands: list[Command]) -> list[Outcome]:
        cwd, block = self.course, None
        for command in commands:
            if (command.doc, command.block) != block:
                cwd, block = self.course, (command.doc, command.block)
            kind, reason = classify(command)
            started = time.monotonic()
            if kind in ("skip", "unknown"):
                outcome = Outcome(command, "skipped" if kind == "skip" else "unknown", reason)
            elif kind == "server":
                outcome = self.server(command)
            else:
                outcome, cwd = self.run(command, cwd)
            outcome.seconds = time.monotonic() - started
            if _pg_url():  # the test database's password stays out of the report
                outcome.detail = outcome.detail.replace(_pg_url(), "$CITYKIT_TEST_PG_URL")
            self.outcomes.append(outcome)
        return self.outcomes

    def run(self, command: Command, cwd: Path) -> tuple[Outcome, Path]:
        text = self.substitute(command)
        if text.startswith("cd "):
            target = (cwd / Path(shlex.split(text)[1]).expanduser()).resolve()
            if not target.is_dir():
                return Outcome(command, "failed", f"no folder {target}"), cwd
            return Outcome(command, "ran", f"cwd {target}"), target
        if text.startswith("export "):
            name, _, value = shlex.split(text)[1].partition("=")
            self.env[name] = value
            return Outcome(command, "ran", f"{name} set"), cwd
        expected = next((codes for pattern, codes in EXIT_CODES if re.search(pattern, command.normal)), {0})
        try:
            done = subprocess.run(["bash", "-c", text], cwd=cwd, env=self.env, capture_output=True, text=True,
                                  timeout=self.timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return Outcome(command, "failed", f"still running after {self.timeout:.0f} s: {text}"), cwd
        if done.returncode not in expected:
            tail = (done.stdout[-1500:] + "\n" + done.stderr[-2500:]).strip()
            return Outcome(
                command, "failed", f"exit {done.returncode} (expected {sorted(expected)}): {text}\n{tail}"
            ), cwd
        return Outcome(command, "ran", f"exit {done.returncode}"), cwd

    def server(self, command: Command) -> Outcome:
        if command.normal in self.servers:
            return Outcome(
                command, "server", f"the same command was started and checked at {self.servers[command.normal]}"
            )
        make = re.match(r"^make (lab(?:-instructor)?)$", command.normal)
        env = dict(self.env)
        if make:
            argv = ["make", "-C", str(REPO), "-o", f"{VENV}/.installed", f"VENV={VENV}", make.group(1)]
            env["CITYKIT_COURSE"] = str(self.course)
        else:
            argv = shlex.split(self.substitute(command))
        instructor = "instructor" in command.normal
        port_flag = re.search(r"--port (\d+)", command.normal)
        port = int(port_flag.group(1)) if port_flag else None  # without --port: 8888, or a free one when taken
        deadline = time.monotonic() + 60
        while port is not None and not port_free(port) and time.monotonic() < deadline:  # another test's lab
            time.sleep(1)
        process = subprocess.Popen(argv, cwd=self.course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        seen: list[str] = []
        try:
            url = None
            deadline = time.monotonic() + 120
            while url is None and time.monotonic() < deadline and process.poll() is None:
                try:
                    seen.append(lines.get(timeout=1))
                except queue.Empty:
                    continue
                # citykit's own line, printed once the server answers (not JupyterLab's log with token=...)
                url = re.search(r"^citykit lab for the .*?: (http://127\.0\.0\.1:(\d+)/)lab\?token=(\S+)", seen[-1])
            if url is None:
                return Outcome(
                    command, "failed", f"no URL with a token (exit {process.poll()}):\n{''.join(seen)[-2500:]}"
                )
            base, token = url.group(1), url.group(3)
            problems = []
            if port is not None and int(url.group(2)) != port:
                problems.append(f"served on port {url.group(2)}, not {port}")
            status, body = _get(f"{base}api/contents", token)
            names = {item["name"] for item in json.loads(body)["content"]} if status == 200 else set()
            if status != 200:
                problems.append(f"{base}api/contents answered {status} with the token")
            elif instructor and not {"nbgrader_config.py", "release"} <= names:
                problems.append(f"the instructor's lab does not serve grading/: {sorted(names)}")
            elif not instructor and (not names or names & COURSE_INSIDES):
                problems.append(f"the learner's lab serves the course's insides: {sorted(names)}")
            if _get(f"{base}api/contents", None)[0] not in (401, 403):
                problems.append("the server answers without the token")
            if problems:
                return Outcome(command, "failed", "; ".join(problems))
            self.servers[command.normal] = command.where
            return Outcome(command, "server", f"{base} answered with the token, refused without; stopped")
        finally:
            stop_group(process)


# --- the scratch course and its test files -----------------------------------------------------


def write_files(files: Path, course: Path) -> None:
    """The placeholders' files (see `placeholders`)."""
    import csv
    import datetime as dt
    import random

    import pandas as pd

    from citykit.data.columns import NEIGHBORHOODS, RACE_ETHNICITY

    downloads = files / "Downloads"
    (downloads / "lms-export").mkdir(parents=True)
    (files / "values-export").mkdir()
    rows = ["student_id,first_name,last_name,email"] + [f"{i},{i.title()},Learner,{i}@city.example" for i in LEARNERS]
    (files / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    # A Baltimore export (the layout of citykit/resources/mappings/baltimore.yml), 2025, 3 neighborhoods.
    hoods = ["Canton", "Dorchester", "Belair-Edison"]
    header = ["ServiceRequestNum", "SRType", "MethodReceived", "CreatedDate", "SRStatus", "CloseDate", "Agency",
              "Address", "ZipCode", "Neighborhood", "CouncilDistrict", "Latitude", "Longitude"]  # fmt: skip
    stamp = "%m/%d/%Y %I:%M:%S %p"
    rng = random.Random(311)
    with (downloads / "311_export.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        for i in range(600):
            created = dt.datetime(2025, 1, 1, 8) + dt.timedelta(hours=rng.randrange(364 * 24))
            closed = created + dt.timedelta(hours=rng.randrange(2, 30 * 24))
            still_open = closed > dt.datetime(2025, 12, 31)
            k = i % 3
            writer.writerow({
                "ServiceRequestNum": f"SR{i:05d}", "SRType": ["SW-Dirty Alley", "HCD-Potholes", "TRM-Street Light Out"][k],
                "MethodReceived": ["Phone", "Web", "API"][rng.randrange(3)], "CreatedDate": created.strftime(stamp),
                "SRStatus": "Open" if still_open else "Closed", "CloseDate": "" if still_open else closed.strftime(stamp),
                "Agency": "Public Works", "Address": f"{i} Main St", "ZipCode": "21224", "Neighborhood": hoods[k],
                "CouncilDistrict": str(k + 1), "Latitude": f"{39.28 + rng.random() * 0.01:.6f}",
                "Longitude": f"{-76.62 + k * 0.01 + rng.random() * 0.01:.6f}",
            })  # fmt: skip
    population = []
    for k, name in enumerate(hoods):
        counts = {f"pop_{code}": 1000 * (k + 1) + 37 * j for j, code in enumerate(RACE_ETHNICITY)}
        counts["pop_multiracial"] = 300
        population.append({"neighborhood": name, "council_district": k + 1, "population": sum(counts.values()),
                           "households": 3000 + k, "median_household_income": 50_000.0 + 1000 * k,
                           "area_km2": 1.5 + k, **counts})  # fmt: skip
    pd.DataFrame(population)[list(NEIGHBORHOODS)].to_csv(files / "population.csv", index=False)
    square = lambda x, y: [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]  # noqa: E731
    features = [{"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": square(-76.62 + k * 0.01, 39.28)}}
                for k, name in enumerate(hoods)]  # fmt: skip
    (files / "neighborhoods.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    notebooks = course / "notebooks"
    shutil.copyfile(notebooks / "04-time-to-close" / "04-time-to-close.ipynb", files / "my-analysis.ipynb")
    with zipfile.ZipFile(downloads / "lms-export" / "bo.zip", "w") as archive:  # the solution: bo scores
        archive.write(notebooks / "04-time-to-close" / "04-time-to-close.ipynb", "bo_12345_04-time-to-close.ipynb")
    shutil.copyfile(notebooks / "00-values-to-questions" / "00-values-to-questions.ipynb",
                    files / "values-export" / "bo_777_00-values-to-questions.ipynb")  # fmt: skip


def make_scratch_course(scratch: Path) -> Runner:
    """`citykit init` a course, a tiny city in a CITYKIT_HOME of its own, and what `make demo`
    (skipped) would have left for the learner's lab: module 04's student version."""
    env = base_env(scratch / "home")
    course = scratch / "course"
    for argv, cwd in (([CITYKIT, "init", str(course)], scratch),
                      ([CITYKIT, "data", "build", "--scale", "tiny"], course),
                      ([CITYKIT, "grade", "generate", "time-to-close"], course)):  # fmt: skip
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    write_files(scratch / "files", course)
    return Runner(course, scratch / "files", scratch, env)


def drop_published_schemas(runner: Runner) -> None:
    """The README's `data publish ... --as mycity_pg` left a schema in the test database: drop it."""
    if not _pg_url():
        return
    import psycopg

    names = {m.group(1) for c in documented_commands() for m in [re.search(r" --as (\w+)", c.normal)] if m}
    with psycopg.connect(_pg_url().replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def table(outcomes: list[Outcome]) -> str:
    rows = [f"{o.status:8} {o.seconds:6.1f}s  {o.command.where:38} {o.command.text[:90]}"
            + (f"\n{'':17}{o.detail}" if o.status in ("skipped", "unknown", "failed") else "")
            for o in outcomes]  # fmt: skip
    return "\n".join(rows)


# --- tests --------------------------------------------------------------------------------------

SAMPLE = """\
# A page

```bash
citykit course list                 # the modules
citykit grade collect m1            # or: --zips FOLDER, an LMS download
make lab   # or: .venv/bin/citykit lab --port 1
citykit report run m1 \\
    -p period=2025-Q4               # continued
# learners: open `citykit lab`, then `citykit grade submit m1 --student ID`
frobnicate --all
```

```python
print("not a shell command")
```

```console
$ citykit data check   # a prompt
output line # not a command
```

```
0 6 * * * cd /srv/x && citykit data check
```
"""


def test_extractor_reads_blocks_comments_and_continuations():
    texts = [(c.line, c.text) for c in extract(SAMPLE, "sample.md")]
    assert texts == [
        (4, "citykit course list"),
        (5, "citykit grade collect m1"),
        (5, "citykit grade collect m1 --zips FOLDER"),
        (6, "make lab"),
        (6, ".venv/bin/citykit lab --port 1"),
        (7, "citykit report run m1 -p period=2025-Q4"),
        (9, "citykit lab"),
        (9, "citykit grade submit m1 --student ID"),
        (10, "frobnicate --all"),
        (18, "citykit data check"),
        (23, "0 6 * * * cd /srv/x && citykit data check"),
    ]


def test_a_command_neither_run_nor_skipped_fails_the_check():
    commands = extract(SAMPLE, "sample.md")
    assert uncovered(commands) == ["sample.md:10: `frobnicate --all`"]
    assert classify(commands[-1])[0] == "skip"  # the cron line
    assert classify(commands[3]) == ("server", "") and classify(commands[4]) == ("server", "")


def test_every_documented_command_is_run_or_on_the_skip_list():
    commands = documented_commands()
    assert len(commands) > 50 and uncovered(commands) == []


def test_a_failing_command_fails(tmp_path):
    """Outside a course folder `report params` exits 2 (naming citykit init): reported as a failure."""
    runner = Runner(tmp_path, tmp_path, tmp_path, base_env(tmp_path / "home"))
    [outcome] = runner.run_all([Command("sample.md", 1, "citykit report params time-to-close", 0)])
    assert outcome.status == "failed" and outcome.detail.startswith("exit 2 (expected [0])")
    assert "citykit init" in outcome.detail


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path):
    started = time.monotonic()
    runner = make_scratch_course(tmp_path)
    prepared = time.monotonic() - started
    try:
        outcomes = runner.run_all(documented_commands())
    finally:
        drop_published_schemas(runner)
    report = table(outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "server", "skipped", "unknown", "failed")}
    print(f"\n{report}\n\nscratch course in {prepared:.0f} s; {counts}; {time.monotonic() - started:.0f} s in all")
    bad = [o for o in outcomes if o.status in ("failed", "unknown")]
    assert not bad, "documented commands that fail or that this test neither runs nor skips:\n" + table(bad)
    # the walk did what the docs say it does
    grading = runner.course / "grading"
    assert (grading / "submitted" / LEARNERS[0] / "04-time-to-close").is_dir(), "the learner's submit did not arrive"
    # the learner fetched with the documented `citykit grade fetch` (nbgrader's fetch into the workspace)
    assert (grading / "workspaces" / LEARNERS[0] / "04-time-to-close" / "04-time-to-close.ipynb").is_file()
    assert any("grade fetch" in o.command.text and o.status == "ran" for o in outcomes)
    assert (grading / "submitted" / LEARNERS[1] / "04-time-to-close" / "04-time-to-close.ipynb").is_file()
    assert (grading / "feedback" / LEARNERS[1] / "04-time-to-close" / "04-time-to-close.html").is_file()
    assert (grading / "export" / "canvas-gradebook.csv").is_file()
    assert (runner.course / "reports" / "dashboard" / "dashboard.html").is_file()  # grading/README.md says so
    assert (runner.course / "reports" / "quality-mycity").is_dir()  # the analyst guide's --out
    assert (runner.scratch / "my-course" / "reports" / "demo" / "04-time-to-close.html").is_file()
