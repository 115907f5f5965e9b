"""A cohort's hub folder and its state file, `hub.json`: the settings `citykit hub setup` was given
and the roster mapped to accounts (roster id -> system account and role). Every other command reads
it; `setup` run again rewrites it. It names people, so it is readable by root and the cohort's
instructors only (0640, group `formgrade-<cohort>`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from citykit.errors import CitykitError, quote
from citykit.files import atomic_write
from citykit.hub.accounts import Member

DEFAULT_PREFIX = Path("/srv/citykit-hub")
PREFIX_ENV = "CITYKIT_HUB_PREFIX"
STATE_FILE = "hub.json"
COHORT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
AUTH_MODES = ("firstuse", "native", "oidc")


def check_cohort_name(name: str) -> str:
    """A hub's cohort name is also a Unix group suffix and nbgrader's course id: lower case, short."""
    if not COHORT_NAME.match(name):
        raise CitykitError(f"cohort name {quote(name)} for a hub must be lower-case letters, digits, _ and - "
                           "(starting with a letter, at most 24 characters), e.g. fall-2027")  # fmt: skip
    return name


def prefix_dir(prefix: Path | str | None = None) -> Path:
    """The folder that holds one hub folder per cohort: --prefix, CITYKIT_HUB_PREFIX, /srv/citykit-hub."""
    return Path(prefix or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX).absolute()


def hub_dir(cohort: str, prefix: Path | str | None = None) -> Path:
    return prefix_dir(prefix) / check_cohort_name(cohort)


@dataclass(frozen=True)
class HubState:
    cohort: str
    folder: str  # the hub folder (everything below lives in it)
    members: tuple[Member, ...]
    auth: str = "firstuse"
    ip: str = "127.0.0.1"
    port: int = 8000  # the address people open; the proxy's API, the hub and the formgrader take the next three
    ssl_cert: str = ""
    ssl_key: str = ""
    public_url: str = ""  # the address people type, when a reverse proxy or DNS name fronts the hub
    account_prefix: str = "ck-"
    memory_mb: int = 2048  # per person's server and everything it starts (cgroup, where the system allows)
    cpus: float = 1.0
    processes: int = 512
    idle_minutes: int = 60  # the idle culler stops a server after this long without activity
    proxy_command: str = ""  # configurable-http-proxy
    python: str = ""  # the Python environment with citykit and JupyterHub (its bin/ runs everything)
    created: str = ""
    source_course: str = ""  # the course folder the cohort's course was copied from
    extra: dict = field(default_factory=dict)

    # -- the layout of the hub folder
    @property
    def path(self) -> Path:
        return Path(self.folder)

    @property
    def course(self) -> Path:
        return self.path / "course"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def public(self) -> Path:
        return self.path / "public"

    @property
    def exchange(self) -> Path:
        return self.path / "exchange"

    @property
    def jupyter(self) -> Path:
        return self.path / "jupyter"

    @property
    def config_file(self) -> Path:
        return self.path / "jupyterhub_config.py"

    @property
    def pid_file(self) -> Path:
        return self.path / "jupyterhub.pid"

    @property
    def proxy_pid_file(self) -> Path:
        return self.path / "jupyterhub-proxy.pid"

    @property
    def unit_name(self) -> str:
        return f"citykit-hub-{self.cohort}.service"

    @property
    def unit_file(self) -> Path:
        return self.path / self.unit_name

    @property
    def grader(self) -> str:
        """The account the cohort's formgrader service runs as (nbgrader's `grader-<course>`)."""
        return f"{self.account_prefix}grader-{self.cohort}"[:32]

    @property
    def learner_group(self) -> str:
        return f"nbgrader-{self.cohort}"

    @property
    def grader_group(self) -> str:
        return f"formgrade-{self.cohort}"

    @property
    def bin(self) -> Path:
        """The hub's own bin/: `citykit` and `nbgrader` for instructors' terminals, run with `python`."""
        return self.path / "bin"

    def module(self, name: str) -> list[str]:
        """The command that runs a module with the hub's Python (`python -m name`)."""
        return [self.python, "-m", name]

    # -- ports
    @property
    def proxy_api_port(self) -> int:
        return self.port + 1

    @property
    def hub_port(self) -> int:
        return self.port + 2

    @property
    def service_port(self) -> int:
        return self.port + 3

    @property
    def url(self) -> str:
        """Where the hub answers on this machine (what `status` and the tests ask)."""
        scheme = "https" if self.ssl_cert else "http"
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    # -- people
    @property
    def learners(self) -> list[Member]:
        return [m for m in self.members if m.role == "learner"]

    @property
    def instructors(self) -> list[Member]:
        return [m for m in self.members if m.role == "instructor"]

    @property
    def accounts(self) -> list[str]:
        return [m.account for m in self.members]

    def member(self, key: str) -> Member | None:
        """A person by roster id or account."""
        return next((m for m in self.members if key in (m.student_id, m.account)), None)

    def with_members(self, members: list[Member]) -> HubState:
        return replace(self, members=tuple(members))

    # -- the file
    def to_json(self) -> str:
        record = asdict(self)
        record["members"] = [asdict(m) for m in self.members]
        return json.dumps(record, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> HubState:
        raw = json.loads(text)
        raw["members"] = tuple(Member(**m) for m in raw.get("members", []))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def save_state(state: HubState) -> Path:
    path = state.path / STATE_FILE
    atomic_write(path, state.to_json())
    path.chmod(0o640)
    return path


def load_state(cohort: str, prefix: Path | str | None = None) -> HubState:
    folder = hub_dir(cohort, prefix)
    path = folder / STATE_FILE
    if not path.exists():
        raise CitykitError(f"no hub for cohort {cohort} in {folder}; set it up first: "
                           f"`sudo citykit hub setup --cohort {cohort} --roster roster.csv`"
                           + (f" --prefix {folder.parent}" if prefix else ""))  # fmt: skip
    try:
        return HubState.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as error:
        raise CitykitError(
            f"the hub's state file {path} is not valid ({error}); run `citykit hub setup` again"
        ) from None
    except PermissionError:
        raise CitykitError(f"cannot read {path}: it is for root and the cohort's instructors") from None
