"""Start, stop and ask about a cohort's hub.

- `start` runs JupyterHub in the foreground with the cohort's config (this process becomes
  JupyterHub: Ctrl-C, `kill` or systemd stop it); JupyterHub writes its pid to `jupyterhub.pid` and
  starts the proxy, the formgrader and the idle culler, then each person's server when they sign in.
- `stop` (from another terminal, or the systemd unit's ExecStop) sends TERM to the pid in the pid
  file and waits: JupyterHub stops the servers, the services and the proxy. Anything of the
  cohort's left after that (a server whose hub was killed, the proxy) is ended too, so nothing of
  the cohort keeps running.
- `status` says whether it runs, whether the login page answers, whose servers run and with what
  memory, and which limits the system enforces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from citykit.errors import CitykitError, WorkFailed
from citykit.hub import limits
from citykit.hub.accounts import require_root, uid_of
from citykit.hub.state import HubState


def _pid(file: Path) -> int | None:
    try:
        pid = int(file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def hub_pid(state: HubState) -> int | None:
    """JupyterHub's pid when it runs (the pid file names a live jupyterhub process)."""
    pid = _pid(state.pid_file)
    return pid if pid is not None and "jupyterhub" in _cmdline(pid) else None


def cohort_processes(state: HubState) -> dict[int, str]:
    """pid -> whose, for every process of the cohort: those run by its accounts (and its grader), and
    those the hub started (its services run as root: they carry the hub's API address)."""
    uids = {uid: name for name in [*state.accounts, state.grader] if (uid := uid_of(name)) is not None}
    marker = f"JUPYTERHUB_API_URL=http://127.0.0.1:{state.hub_port}/hub/api".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or _state(int(entry.name)) in ("Z", "X", ""):
            continue  # (a zombie has ended: it only waits for its parent)
        try:
            uid = entry.stat().st_uid
        except OSError:
            continue
        if uid in uids:
            found[int(entry.name)] = uids[uid]
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found[int(entry.name)] = "the hub's services"
    return found


def proxy_pid(state: HubState) -> int | None:
    pid = _pid(state.proxy_pid_file)
    return pid if pid is not None and "configurable-http-proxy" in _cmdline(pid) else None


def answers(state: HubState, timeout: float = 3.0) -> bool:
    """The hub's login page answers (HTTP 200) at its address."""
    context = ssl._create_unverified_context() if state.ssl_cert else None  # a self-signed pilot certificate
    try:
        with urllib.request.urlopen(f"{state.url}hub/login", timeout=timeout, context=context) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until_answers(state: HubState, timeout: float = 60.0, process=None) -> float:
    """Seconds until the login page answered; raise when it does not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if answers(state, timeout=2.0):
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            raise WorkFailed(f"the hub exited with code {process.returncode} before its login page answered")
        time.sleep(0.25)
    raise WorkFailed(f"the hub's login page did not answer at {state.url}hub/login within {timeout:.0f} s")


OIDC_FILE = "oidc.env"
PRIVATE = ("jupyterhub.sqlite",)  # JupyterHub's database (it writes its cookie secret 0600 itself)


def private_files(state: HubState) -> list[Path]:
    """JupyterHub's database, root's alone (0600) before it opens it: it holds every person's password
    hash and one-time-password secret, the tokens and the servers. SQLite gives its journal the
    database's mode."""
    made = []
    for name in PRIVATE:
        path = state.path / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)
        made.append(path)
    return made


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (comments, blank lines, quotes)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip().removeprefix("export ").strip()] = value
    return found


def hub_environment(state: HubState) -> dict[str, str]:
    """The hub's environment: the hub's bin/ first on PATH, no course of the caller's, and for single
    sign-on the secrets in `oidc.env` (as the systemd unit's EnvironmentFile gives them), checked."""
    path = [str(state.bin), str(Path(state.python).parent), os.environ.get("PATH", "/usr/bin:/bin")]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    env.pop("CITYKIT_COURSE", None)  # the servers get the cohort's own course and data
    env.pop("CITYKIT_HOME", None)
    secrets_file = state.path / OIDC_FILE
    if secrets_file.is_file():
        if secrets_file.stat().st_mode & 0o077:  # secrets: root's alone
            secrets_file.chmod(0o600)
        env.update(read_env_file(secrets_file))
    if state.auth == "oidc":
        missing = [k for k in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET") if not env.get(k)]
        if env.get("CITYKIT_HUB_OIDC", "azuread") == "azuread" and not env.get("AAD_TENANT_ID"):
            missing.append("AAD_TENANT_ID")
        if missing:
            raise CitykitError(f"single sign-on needs {', '.join(missing)} in {secrets_file} (0600, KEY=value lines; "
                               "see the comment in jupyterhub_config.py and grading/README.md)")  # fmt: skip
    return env


def start(state: HubState) -> None:
    """Become JupyterHub for the cohort (never returns)."""
    require_root("citykit hub start")
    running = hub_pid(state)
    if running:
        raise CitykitError(
            f"the hub of {state.cohort} already runs (pid {running}); `citykit hub stop --cohort {state.cohort}` first"
        )
    if not Path(state.proxy_command).exists():
        raise CitykitError(f"the proxy {state.proxy_command} is missing; install configurable-http-proxy "
                           "(npm install -g configurable-http-proxy) and run `citykit hub setup` again")  # fmt: skip
    if not Path(state.python).exists():
        raise CitykitError(f"the hub's Python {state.python} is gone; run `citykit hub setup` again (--python)")
    env = hub_environment(state)
    private_files(state)
    os.chdir(state.path)
    os.umask(0o022)
    sys.stdout.flush()
    sys.stderr.flush()
    nothing = os.open(os.devnull, os.O_RDONLY)  # a service reads no input (and Jupyter asks "shut down?" on a terminal)
    os.dup2(nothing, 0)
    os.execve(state.python, [*state.module("jupyterhub"), "--config", str(state.config_file)], env)


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
        if alive:
            time.sleep(0.2)
    return alive


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


@dataclass
class Stopped:
    hub: int | None = None
    left_over: dict[int, str] = field(default_factory=dict)  # pid -> what, ended after the hub stopped

    def summary(self, cohort: str) -> str:
        if self.hub is None and not self.left_over:
            return f"the hub of {cohort} was not running"
        said = f"stopped the hub of {cohort}" + (f" (pid {self.hub})" if self.hub else "")
        if self.left_over:
            said += f"; ended {len(self.left_over)} left-over process(es): " + ", ".join(
                sorted(set(self.left_over.values()))
            )
        return said


def _end(pids: dict[int, str], grace: float) -> None:
    """TERM (Jupyter's graceful stop: kernels shut down), then KILL what is left after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in _wait_gone(list(pids), grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(list(pids), 5)


def stop(state: HubState, timeout: float = 45.0) -> Stopped:
    """Stop the cohort's servers and services (TERM, as JupyterHub would after its SIGINT wait), then the
    hub, then anything of the cohort still left."""
    require_root("citykit hub stop")
    done = Stopped(hub=hub_pid(state))
    if done.hub:
        _end(cohort_processes(state), grace=20)
        os.kill(done.hub, signal.SIGTERM)
        if _wait_gone([done.hub], timeout):
            os.kill(done.hub, signal.SIGKILL)
            _wait_gone([done.hub], 5)
    left = {
        pid: (name if name.startswith("the ") else f"{name}'s processes")
        for pid, name in cohort_processes(state).items()
    }
    proxy = proxy_pid(state)
    if proxy:
        left[proxy] = "the proxy"
    _end(left, grace=10)
    done.left_over = left
    for file in (state.pid_file, state.proxy_pid_file):
        file.unlink(missing_ok=True)
    return done


@dataclass
class Status:
    running: bool
    pid: int | None
    url: str
    answering: bool
    servers: dict[str, int]  # account -> resident memory of its processes (bytes)
    limits: list[str]
    not_enforced: str

    def summary(self, state: HubState) -> str:
        lines = [f"hub of {state.cohort}: " + (f"running (pid {self.pid})" if self.running else "not running"),
                 f"address: {self.url} " + ("(login page answers)" if self.answering else "(login page does not answer)")]  # fmt: skip
        people = {a: rss for a, rss in self.servers.items() if state.member(a) is not None}
        if self.servers:
            lines.append(f"servers running: {len(people)} of {len(state.members)} people")
            for account, rss in sorted(self.servers.items()):
                member = state.member(account)
                who = (f"{account} ({member.student_id}, {member.role})" if member
                       else f"{account} (formgrader)" if account == state.grader else account)  # fmt: skip
                lines.append(f"  {who}: {rss / 2**20:,.0f} MB resident")
        lines.append(
            f"limits per person: {state.memory_mb} MB memory, {state.cpus:g} CPU, {state.processes} processes: "
            + (f"enforced by cgroups ({', '.join(self.limits)})" if self.limits
               else f"NOT enforced ({self.not_enforced})")
        )  # fmt: skip
        return "\n".join(lines)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def status(state: HubState) -> Status:
    pid = hub_pid(state)
    servers: dict[str, int] = {}
    processes = cohort_processes(state)
    for process, account in processes.items():
        servers[account] = servers.get(account, 0) + _rss(process)
    cgroups = limits.Cgroups.detect()
    enforced, why_not = cgroups.enforces, cgroups.why_not
    names = {"memory_bytes": "memory", "cpu_quota_us": "cpu", "processes": "pids"}
    for process, account in processes.items():  # a running server says what its limits are, whoever asks
        if state.member(account) is not None:
            found = limits.limits_of(process)
            enforced, why_not = sorted(names[k] for k in found), "" if found else "its servers have no cgroup limits"
            break
    return Status(running=pid is not None, pid=pid, url=state.url, answering=answers(state) if pid else False,
                  servers=servers, limits=enforced, not_enforced=why_not)  # fmt: skip
