"""A cohort on one shared server, end to end, with real accounts and a real browser (issue 19).

`citykit hub setup` for three learners and one instructor, `citykit hub start` on 127.0.0.1, then in
headless Chromium: the instructor signs in and, in the lab's terminal, generates and releases module
04 with `citykit grade` (as their own account; the formgrader service is opened and kept as a
screenshot); learner A signs in, fetches module 04 in the Assignments tab, answers (through the
contents API the lab's editor saves with) and submits; learner B signs in and cannot reach A's
server, files or submission, nor the hub's database (B's browser session, B's server and a kernel of B's); the instructor
collects, autogrades, writes feedback and releases it; learner A fetches the feedback in the
Assignments tab. `citykit hub stop` ends everything: no process of the cohort is left. Screenshots
go to test-artifacts/hub/.
"""

from __future__ import annotations

import csv
import io
import json
import pwd
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubtest import auto_scores, full_marks, needs_accounts, solutions
from notebook_helpers import CHROMIUM, CHROMIUM_ARGS

from citykit import paths
from citykit.hub import limits, service

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.xdist_group("hub"), needs_accounts]

M04 = "04-time-to-close"
LEARNERS = [("maria_g", "María", "González"), ("chloe", "Chloé", "Dubois"), ("sam.k", "Sam", "Kim")]
INSTRUCTORS = [("ines", "Inés", "Teacher")]
ARTIFACTS = paths.course_root() / "test-artifacts" / "hub"
XSRF = "decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '')"

API = f"""async ([method, url, body]) => {{
  const response = await fetch(url, {{method, credentials: 'same-origin', redirect: 'manual',
    headers: {{'Content-Type': 'application/json', 'X-XSRFToken': {XSRF}}},
    body: body === null ? undefined : JSON.stringify(body)}});
  return {{status: response.status, text: await response.text()}};
}}"""

# Runs code in a new kernel of the page's own server (kernels API and its websocket, as the lab does).
RUN_CODE = f"""async ([base, code]) => {{
  const headers = {{'Content-Type': 'application/json', 'X-XSRFToken': {XSRF}}};
  const kernel = await (await fetch(base + 'api/kernels', {{method: 'POST', headers, body: JSON.stringify({{name: 'python3'}})}})).json();
  const session = crypto.randomUUID(), msgId = crypto.randomUUID();
  const socket = new WebSocket(base.replace(/^http/, 'ws') + 'api/kernels/' + kernel.id + '/channels?session_id=' + session);
  const output = await new Promise((resolve, reject) => {{
    let text = '';
    socket.onerror = () => reject(new Error('kernel websocket failed'));
    socket.onopen = () => socket.send(JSON.stringify({{header: {{msg_id: msgId, username: '', session, msg_type: 'execute_request',
      version: '5.3', date: new Date().toISOString()}}, parent_header: {{}}, metadata: {{}}, channel: 'shell', buffers: [],
      content: {{code, silent: false, store_history: false, user_expressions: {{}}, allow_stdin: false, stop_on_error: true}}}}));
    socket.onmessage = (event) => {{
      const message = JSON.parse(event.data);
      if (message.parent_header.msg_id !== msgId) return;
      if (message.msg_type === 'stream') text += message.content.text;
      if (message.msg_type === 'error') text += 'ERROR ' + message.content.ename + ': ' + message.content.evalue;
      if (message.msg_type === 'status' && message.content.execution_state === 'idle') resolve(text);
    }};
    setTimeout(() => reject(new Error('kernel did not answer in 120 s')), 120000);
  }});
  socket.close();
  await fetch(base + 'api/kernels/' + kernel.id, {{method: 'DELETE', headers}});
  return output;
}}"""


def _answered(student_version: dict, source: Path) -> dict:
    """The student version with every answer cell holding the source notebook's solution."""
    answers = solutions(source)
    for cell in student_version["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return student_version


def _sign_in(browser, base: str, account: str, password: str):
    """A new browser session that signs in as `account` (the hub starts their server: several start at once)."""
    page = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
    page.goto(f"{base}hub/login")
    page.fill("#username_input", account)
    page.fill("#password_input", password)
    page.click("#login_submit")
    return page


def _lab(page, account: str):
    """Wait for the person's lab to load."""
    page.wait_for_url(re.compile(rf"/user/{re.escape(account)}/lab"), timeout=150_000)
    page.wait_for_selector(".jp-DirListing-content", timeout=120_000)
    return page


def _terminal(page, command: str) -> None:
    """Type a command into the lab's terminal (opened from the launcher the first time), as the instructor would."""
    if page.locator(".jp-Terminal .xterm").count() == 0:
        page.locator(".jp-LauncherCard", has_text="Terminal").first.click()
        page.locator(".jp-Terminal .xterm").last.wait_for(timeout=60_000)
    page.locator(".jp-Terminal .xterm").last.click()
    time.sleep(1.0)  # the shell's prompt
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def _assignments(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").first.click()
    page.locator("#released_assignments_list").wait_for(timeout=60_000)


def _type_as_instructor(page, account: str, commands: str, flag: str) -> None:
    """Type `commands` in the instructor's terminal, their output to ~/<flag>.log, the exit code to ~/<flag>.rc."""
    home = Path(pwd.getpwnam(account).pw_dir)
    (home / f"{flag}.rc").unlink(missing_ok=True)
    _terminal(page, f"({commands}) > ~/{flag}.log 2>&1; echo $? > ~/{flag}.rc")


def _instructor_done(account: str, commands: str, flag: str, timeout: float) -> str:
    """Wait for the typed commands' exit code; return their output (a failure shows it)."""
    home = Path(pwd.getpwnam(account).pw_dir)
    rc = _wait_for(lambda: (home / f"{flag}.rc").is_file() and (home / f"{flag}.rc").read_text().strip(), timeout,
                   f"the instructor's `{commands}`")  # fmt: skip
    log = (home / f"{flag}.log").read_text(encoding="utf-8", errors="replace")
    assert rc == "0", f"`{commands}` as {account} failed ({rc}):\n{log[-3000:]}"
    return log


def test_a_cohort_on_one_hub_from_release_to_feedback(hub_cohort):
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    started = time.monotonic()

    def stage(what: str) -> None:  # the test's time line (pytest -s shows it)
        print(f"  {time.monotonic() - started:6.1f} s  {what}")

    state = hub_cohort(LEARNERS, INSTRUCTORS)
    setup_seconds = time.monotonic() - started
    sheet = (state.path / "first-passwords.csv").read_text(encoding="utf-8")
    passwords = {row["student_id"]: (row["account"], row["password"]) for row in csv.DictReader(io.StringIO(sheet))}
    teacher, maria, chloe = (passwords[i] for i in ("ines", "maria_g", "chloe"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (state.path / "hub-test.log").open("w")  # closed in the finally below
    hub = subprocess.Popen([sys.executable, "-m", "citykit", "hub", "start", "--cohort", state.cohort,
                            "--prefix", str(state.path.parent)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        answered_after = service.wait_until_answers(state, timeout=120, process=hub)
        print(f"\nhub set up in {setup_seconds:.1f} s, login page after {answered_after:.1f} s more")
        base = state.url
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                stage("hub answers")
                # -- the instructor: signs in, releases module 04 from the lab's terminal, opens formgrader
                instructor = _sign_in(browser, base, *teacher)
                learner = _sign_in(browser, base, *maria)
                other = _sign_in(browser, base, *chloe)
                _lab(instructor, teacher[0])
                release = "citykit grade generate time-to-close && citykit grade release time-to-close"
                _type_as_instructor(instructor, teacher[0], release, "release")
                out = _instructor_done(teacher[0], release, "release", 180)
                assert f"released to {state.exchange / state.cohort / 'outbound' / M04}" in out
                released = state.exchange / state.cohort / "outbound" / M04
                assert released.stat().st_uid == pwd.getpwnam(teacher[0]).pw_uid  # released as the instructor's account
                stage("instructor signed in, released module 04")
                formgrader = instructor.context.new_page()
                formgrader.goto(f"{base}services/{state.cohort}/formgrader")
                formgrader.get_by_text("Manage Assignments").first.wait_for(timeout=60_000)
                formgrader.get_by_text(M04).first.wait_for(timeout=60_000)

                stage("formgrader reached")
                # -- learner A: fetches, answers, submits in the Assignments tab
                _lab(learner, maria[0])
                _assignments(learner)
                learner.locator("#released_assignments_list").get_by_text(M04).wait_for(timeout=60_000)
                courses = learner.locator("#released_assignments_list").inner_text()
                assert state.cohort in courses
                learner.locator("#released_assignments_list").get_by_role("button", name="Fetch").click()
                fetched = learner.locator("#fetched_assignments_list")
                fetched.get_by_text(M04).first.wait_for(timeout=60_000)
                server = f"{base}user/{maria[0]}/"
                path = f"{server}api/contents/{M04}/{M04}.ipynb"
                got = learner.evaluate(API, ["GET", path + "?content=1", None])
                assert got["status"] == 200, got
                notebook = _answered(
                    json.loads(got["text"])["content"], state.course / "notebooks" / M04 / f"{M04}.ipynb"
                )
                put = learner.evaluate(API, ["PUT", path, {"type": "notebook", "format": "json", "content": notebook}])
                assert put["status"] == 200, put
                fetched.get_by_role("button", name="Submit").first.click()
                learner.locator("#submitted_assignments_list").get_by_text(M04).first.wait_for(timeout=60_000)

                stage("learner A fetched, answered, submitted")
                # -- the instructor collects, autogrades, writes and releases feedback (while learner B tries A's files)
                grading = (
                    "citykit grade collect time-to-close && citykit grade autograde time-to-close && "
                    "citykit grade feedback time-to-close"
                )  # feedback is released to the exchange too
                _type_as_instructor(instructor, teacher[0], grading, "grade")
                # -- learner B: cannot open A's server, files or submission
                _lab(other, chloe[0])
                own = f"{base}user/{chloe[0]}/"
                into_a = other.evaluate(API, ["GET", f"{server}api/contents/{M04}?content=1", None])
                assert into_a["status"] in (302, 403, 404) and "04-time-to-close.ipynb" not in into_a["text"], into_a
                up = other.evaluate(API, ["GET", f"{own}api/contents/..%2F{maria[0]}?content=1", None])
                assert up["status"] in (403, 404), up
                inbound = state.exchange / state.cohort / "inbound"
                probe = other.evaluate(RUN_CODE, [own, "\n".join([
                    "import glob, json, os",
                    "found = {}",
                    f"for name, path in [('home', {str(Path(pwd.getpwnam(maria[0]).pw_dir) / M04 / (M04 + '.ipynb'))!r}),",
                    f"                   ('inbound', {str(inbound)!r}), ('hub-db', {str(state.path / 'jupyterhub.sqlite')!r})]:",
                    "    try:",
                    "        (os.listdir if name == 'inbound' else open)(path)",
                    "        found[name] = 'opened'",
                    "    except PermissionError:",
                    "        found[name] = 'PermissionError'",
                    f"found['glob'] = glob.glob({str(inbound)!r} + '/maria_g+*')",
                    "print(json.dumps(found))",
                ])])  # fmt: skip
                assert json.loads(probe.strip().splitlines()[-1]) == {
                    "home": "PermissionError", "inbound": "PermissionError", "hub-db": "PermissionError", "glob": []}, probe  # fmt: skip

                stage("learner B kept out of A's files")
                graded = _instructor_done(teacher[0], grading, "grade", 420)
                if shutil.which("sudo"):  # the grading helper: learner code in the root sandbox
                    assert "runs as the unprivileged user citykit-grader" in graded, graded[-3000:]
                    assert "NOT ENFORCED" not in graded, graded[-3000:]
                most = full_marks(state.course / "notebooks" / M04 / f"{M04}.ipynb")
                assert auto_scores(state.course / "grading" / "gradebook.db") == {"maria_g": most}

                stage("collected, autograded, feedback released")
                # -- learner A sees the feedback in the Assignments tab
                learner.reload()
                learner.wait_for_selector(".jp-DirListing-content", timeout=60_000)
                _assignments(learner)
                submitted = learner.locator("#submitted_assignments_list")
                submitted.get_by_role("button", name="Fetch Feedback").first.click(timeout=60_000)
                submitted.get_by_text("view feedback").first.wait_for(timeout=60_000)
                learner.screenshot(path=str(ARTIFACTS / "learner-assignments-feedback.png"))
                home = Path(pwd.getpwnam(maria[0]).pw_dir)
                pages = list((home / M04 / "feedback").glob(f"*/{M04}.html"))
                assert len(pages) == 1, pages
                text = pages[0].read_text(encoding="utf-8")
                assert f"{M04} (Score: {float(most)} / " in text, "the feedback does not give every autograded point"
                assert "BEGIN HIDDEN TESTS" not in text

                formgrader.reload()  # the instructor's formgrader, one submission graded
                formgrader.get_by_text(M04).first.wait_for(timeout=60_000)
                formgrader.screenshot(path=str(ARTIFACTS / "instructor-formgrader.png"))
                stage("learner A fetched the feedback")
                # limits: the learner's server is in its own cgroup with the cohort's memory limit
                servers = {pid: who for pid, who in service.cohort_processes(state).items() if who == maria[0]}
                if limits.Cgroups.detect().parents:
                    found = limits.limits_of(next(iter(servers)))
                    assert found.get("memory_bytes") == state.memory_mb * 2**20, found
                status = subprocess.run([sys.executable, "-m", "citykit", "hub", "status", "--cohort", state.cohort,
                                         "--prefix", str(state.path.parent)], capture_output=True, text=True, timeout=60)  # fmt: skip
                assert status.returncode == 0 and "running (pid" in status.stdout, status.stdout + status.stderr
                database = state.path / "jupyterhub.sqlite"  # password hashes: root's alone (walk-19 F2)
                assert database.stat().st_mode & 0o077 == 0, oct(database.stat().st_mode)
                assert "servers running: 3 of 4 people" in status.stdout, status.stdout
            finally:
                browser.close()
    finally:
        stopped = subprocess.run([sys.executable, "-m", "citykit", "hub", "stop", "--cohort", state.cohort,
                                  "--prefix", str(state.path.parent)], capture_output=True, text=True, timeout=120)  # fmt: skip
        hub.wait(timeout=60)
        log.close()
    stage("hub stopped")
    assert stopped.returncode == 0, stopped.stderr
    assert service.cohort_processes(state) == {}
    assert service.hub_pid(state) is None and service.proxy_pid(state) is None
    assert not any("configurable-http-proxy" in service._cmdline(int(p.name)) and str(state.proxy_api_port)
                   in service._cmdline(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit())  # fmt: skip
