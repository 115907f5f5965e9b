"""A cohort's hub under load: set-up time from nothing, memory and CPU per learner, learners per server.

    sudo .venv/bin/python benchmarks/bench_hub.py [--learners 6] [--quick] [--python PATH] [--proxy-command PATH]

Run as root on Linux with configurable-http-proxy (tests/.node after `make test`, or on PATH) and the
bundled city built. It makes a throwaway cohort (accounts `ckb<hex>-...`, a hub folder under /tmp):
1. times the set-up from nothing: `citykit hub setup` (accounts, course, exchange, config), then
   `citykit hub start` until the login page answers;
2. signs `--learners` learners in over HTTP (as a browser does: login form, OAuth to their server),
   so the hub starts one server per learner, each as its own account in its own cgroup;
3. runs module 04's student version, every answer filled in, top to bottom in a kernel of each
   learner's server, all learners at once (the kernels API and its websocket, as the lab does);
4. reads each learner's memory from their cgroup (idle server, then the peak with the kernel that ran
   the module) and CPU seconds from their processes, and the hub's own overhead (hub, proxy,
   formgrader, culler);
5. prints how many learners one 2-core, 8 GiB server holds with the idle culler on (idle servers
   stopped, so only active learners count): by memory, (8 GiB - 1 GiB for the system - the hub's
   overhead) / peak per learner; by CPU, everyone running the module within 5 minutes on 2 cores kept
   below 80% busy; the smaller of the two.
Then it stops the hub and tears the cohort down (accounts, homes, folders), even on failure.
`--quick`: one learner (CI runs it, tests/hub/test_hub_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import grp
import io
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from citykit import paths
from citykit.grading.assignments import generate
from citykit.hub import lifecycle, limits, service
from citykit.hub.accounts import uid_of
from citykit.hub.state import load_state

MODULE = "04-time-to-close"
SERVER_GIB, SERVER_CORES, SYSTEM_GIB, WINDOW_S, BUSY = 8, 2, 1, 300, 0.8
REPO = Path(__file__).resolve().parent.parent


def _proxy(given: str | None) -> str | None:
    local = REPO / "tests" / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
    return given or shutil.which("configurable-http-proxy") or (str(local) if local.exists() else None)


def _free_port() -> int:
    import socket

    for _ in range(200):
        start = secrets.randbelow(20_000) + 30_000
        try:
            for port in range(start, start + 4):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise SystemExit("no four free ports in a row")


def answered_notebook(base: Path) -> list[str]:
    """Module 04's student version with every answer filled in from the source: the code cells a learner runs."""
    course = base / "student-version"
    shutil.copytree(paths.notebooks_dir() / MODULE, course / "notebooks" / MODULE)
    generate(MODULE, course_root=course)
    student = nbformat.read(course / "grading" / "release" / MODULE / f"{MODULE}.ipynb", as_version=4)
    solutions = {}
    for cell in nbformat.read(paths.notebooks_dir() / MODULE / f"{MODULE}.ipynb", as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            solutions[meta["grade_id"]] = re.sub(r"\s*### (BEGIN|END) SOLUTION\n?", "\n", cell.source)
    return [solutions.get(c.metadata.get("nbgrader", {}).get("grade_id"), c.source) for c in student.cells
            if c.cell_type == "code"]  # fmt: skip


def _cookie_header(session: requests.Session, path: str) -> str:
    """The cookies a browser would send to `path` (the most specific one of each name)."""
    chosen: dict[str, tuple[int, str]] = {}
    for cookie in session.cookies:
        if path.startswith(cookie.path) and len(cookie.path) >= chosen.get(cookie.name, (-1, ""))[0]:
            chosen[cookie.name] = (len(cookie.path), cookie.value)
    return "; ".join(f"{name}={value}" for name, (_, value) in chosen.items())


def sign_in(base: str, account: str, password: str) -> requests.Session:
    """Sign in as a browser does, and wait for the person's server (the hub starts it)."""
    session = requests.Session()
    session.get(f"{base}hub/login", timeout=30)
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    answer = session.post(
        f"{base}hub/login", data={"username": account, "password": password, "_xsrf": xsrf}, timeout=120
    )
    answer.raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the lab page: the hub redirects to it (and its OAuth) once the server is up
        lab = session.get(f"{base}user/{account}/lab", timeout=60)
        up = lab.status_code == 200 and lab.url.split("?")[0].endswith(f"/user/{account}/lab")
        if up and session.get(f"{base}user/{account}/api/status", timeout=30).status_code == 200:
            return session
        time.sleep(1.0)
    raise SystemExit(f"{account}'s server did not start within 300 s")


async def run_module(base: str, account: str, session: requests.Session, cells: list[str]) -> dict:
    """Run the cells in a new kernel of the person's server; return errors and the kernel's id."""
    server = f"{base}user/{account}/"
    xsrf = session.cookies.get("_xsrf", path=f"/user/{account}/") or session.cookies.get("_xsrf")
    kernel = (await asyncio.to_thread(session.post, f"{server}api/kernels", json={"name": "python3"},
                                      headers={"X-XSRFToken": xsrf}, timeout=60)).json()  # fmt: skip
    url = f"{server.replace('http', 'ws', 1)}api/kernels/{kernel['id']}/channels?session_id={uuid.uuid4()}"
    socket = await websocket_connect(HTTPRequest(url, headers={"Cookie": _cookie_header(session, f"/user/{account}/")}))
    errors, started = [], time.monotonic()
    for number, code in enumerate(cells):
        msg_id = str(uuid.uuid4())
        await socket.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": account, "session": str(uuid.uuid4()), "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False,
                        "stop_on_error": False},
        }))  # fmt: skip
        while True:
            message = json.loads(await asyncio.wait_for(socket.read_message(), timeout=600))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "error":
                errors.append(f"cell {number}: {message['content']['ename']}: {message['content']['evalue'][:120]}")
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
    return {"kernel": kernel["id"], "socket": socket, "errors": errors, "seconds": time.monotonic() - started,
            "server": server, "xsrf": xsrf}  # fmt: skip


def cpu_seconds(uid: int) -> float:
    total = 0.0
    for process in psutil.process_iter(["uids"]):
        try:
            if process.info["uids"] and process.info["uids"].real == uid:
                times = process.cpu_times()
                total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def cgroup_memory(cohort: str, account: str) -> tuple[int, int]:
    """(now, peak) memory in bytes of the account's cgroup (v1 usage/max_usage, v2 current/peak)."""
    folders = limits.Cgroups.detect().group_paths(cohort, account)
    for key, (now, peak) in (("memory", ("memory.usage_in_bytes", "memory.max_usage_in_bytes")),
                             ("v2", ("memory.current", "memory.peak"))):  # fmt: skip
        if key in folders and (folders[key] / now).exists():
            values = [
                int((folders[key] / name).read_text()) if (folders[key] / name).exists() else 0 for name in (now, peak)
            ]
            return values[0], values[1]
    return 0, 0


def overhead_bytes(state) -> int:
    """Resident memory of the hub itself: JupyterHub, the proxy, the formgrader and the culler."""
    pids = {service.hub_pid(state), service.proxy_pid(state)}
    pids |= {pid for pid, who in service.cohort_processes(state).items() if who in ("the hub's services", state.grader)}
    total = 0
    for pid in filter(None, pids):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def scrub(prefix: str) -> None:
    """Nothing of the throwaway cohort stays: accounts with its prefix (setup may have stopped half-way), homes."""
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            subprocess.run(["userdel", entry.pw_name], capture_output=True)
        home = Path("/home") / entry.pw_name
        if entry.pw_name.startswith(prefix) and home.is_dir():
            shutil.rmtree(home, ignore_errors=True)
    for home in Path("/home").glob(f"{prefix}*"):
        shutil.rmtree(home, ignore_errors=True)
    for entry in grp.getgrall():
        if entry.gr_name.startswith(prefix):
            subprocess.run(["groupdel", entry.gr_name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="one learner: checks the benchmark runs (CI)")
    parser.add_argument("--python", default=sys.executable, help="the Python the accounts run (default: this one)")
    parser.add_argument("--proxy-command", default=None)
    parser.add_argument("--memory-mb", type=int, default=2048, help="per-learner limit the hub sets")
    args = parser.parse_args()
    if args.quick:
        args.learners = 1
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise SystemExit("bench_hub makes system accounts: run it as root on Linux")
    proxy = _proxy(args.proxy_command)
    if proxy is None:
        raise SystemExit("no configurable-http-proxy: `npm ci --prefix tests/.node` or npm install -g")
    tag = secrets.token_hex(2)
    cohort, prefix = f"bench{tag}", f"ckb{tag}-"
    base = Path(tempfile.mkdtemp(prefix="citykit-hub-bench-", dir="/tmp"))
    base.chmod(0o755)
    roster = base / "roster.csv"
    roster.write_text("student_id,first_name,last_name,role\n" + "".join(
        f"learner{n:02d},L{n},Bench,learner\n" for n in range(args.learners)) + "teacher,T,Bench,instructor\n")  # fmt: skip
    cells = answered_notebook(base)
    hub = None
    state = None
    log = (base / "hub.log").open("w")
    citykit = [sys.executable, "-m", "citykit", "hub"]
    where = ["--cohort", cohort, "--prefix", str(base / "srv")]
    try:
        started = time.monotonic()
        subprocess.run([*citykit, "setup", *where, "--roster", str(roster), "--port", str(_free_port()),
                        "--proxy-command", proxy, "--account-prefix", prefix, "--python", args.python,
                        "--memory-mb", str(args.memory_mb)], check=True, stdout=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
        setup_s = time.monotonic() - started
        state = load_state(cohort, base / "srv")
        hub = subprocess.Popen([*citykit, "start", *where], stdout=log, stderr=subprocess.STDOUT)
        service.wait_until_answers(state, timeout=180, process=hub)
        total_s = time.monotonic() - started
        print(f"set-up from nothing: {total_s:.1f} s (citykit hub setup {setup_s:.1f} s, then start until the login "
              f"page answers {total_s - setup_s:.1f} s), {args.learners} learner(s) and 1 instructor", flush=True)  # fmt: skip
        sheet = csv.DictReader(io.StringIO((state.path / "first-passwords.csv").read_text(encoding="utf-8")))
        passwords = {row["account"]: row["password"] for row in sheet}
        learners = [m.account for m in state.learners]
        started = time.monotonic()
        sessions = dict(zip(learners, [None] * len(learners)))

        async def everyone() -> list[dict]:
            signed = await asyncio.gather(*(asyncio.to_thread(sign_in, state.url, a, passwords[a]) for a in learners))
            sessions.update(zip(learners, signed))
            print(f"{len(learners)} server(s) started in {time.monotonic() - started:.1f} s", flush=True)
            idle = {a: cgroup_memory(cohort, a)[0] for a in learners}
            runs = await asyncio.gather(*(run_module(state.url, a, sessions[a], cells) for a in learners))
            for account, run in zip(learners, runs):
                run["idle"] = idle[account]
                run["now"], run["peak"] = cgroup_memory(cohort, account)
                run["rss"] = sum(p.memory_info().rss for p in psutil.process_iter() if p.uids().real == uid_of(account))
                run["cpu"] = cpu_seconds(uid_of(account))
                run["socket"].close()
            return runs

        runs = asyncio.run(everyone())
        overhead = overhead_bytes(state)
        errors = [f"{a}: {e}" for a, run in zip(learners, runs) for e in run["errors"]]
        mb = 2**20
        for account, run in zip(learners, runs):
            print(f"  {account}: idle server {run['idle'] / mb:,.0f} MB; with module 04 run: peak {run['peak'] / mb:,.0f} MB "
                  f"(resident now {run['rss'] / mb:,.0f} MB); CPU {run['cpu']:.1f} s; wall {run['seconds']:.1f} s")  # fmt: skip
        peak = max(run["peak"] or run["rss"] for run in runs)
        cpu = max(run["cpu"] for run in runs)
        per_learner = f"per learner: peak memory {peak / mb:,.0f} MB, CPU {cpu:.1f} s to run module 04 top to bottom"
        print(f"{per_learner}; the hub itself (hub, proxy, formgrader, culler): {overhead / mb:,.0f} MB")
        by_memory = int(((SERVER_GIB - SYSTEM_GIB) * 2**30 - overhead) // peak)
        by_cpu = int(SERVER_CORES * WINDOW_S * BUSY // max(cpu, 0.1))
        print(f"learners per 2-core 8 GiB server (culler on: idle servers stopped, active learners count): "
              f"{min(by_memory, by_cpu)} (memory allows {by_memory}; CPU allows {by_cpu} when all run module 04 within "
              f"{WINDOW_S // 60} minutes)")  # fmt: skip
        if errors:
            print("cells that failed:\n  " + "\n  ".join(errors))
            raise SystemExit(1)
    finally:
        if state is not None:
            service.stop(state)
            lifecycle.teardown(load_state(cohort, base / "srv"))
        if hub is not None:
            hub.wait(timeout=60)
        log.close()
        scrub(prefix)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
