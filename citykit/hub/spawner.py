"""`CohortSpawner`: each person's server as their own system account, with their role's settings.

JupyterHub's `LocalProcessSpawner` starts `jupyterhub-singleuser` as the user (setuid), so file
permissions keep learners apart. This subclass adds what a cohort needs, read from the hub's state
file at every start (so `citykit hub add-learner` needs no new code, only a restart):

- the role's arguments and environment: learners get a lab without a terminal, nbgrader's
  Assignments tab only, a contents manager that serves real files under their home and keeps the
  course references read-only; instructors get a terminal where `citykit grade ...` runs on the
  cohort's course (`CITYKIT_COURSE`, `CITYKIT_HOME`);
- a Jupyter config path of the person's own folder (a learner's nbgrader id), their role's folder
  and the kit's lab settings (default kernel started without asking, no news or update dialogs);
- the umask: learners' files private (077), instructors' shared with their group (002: the course
  folder itself is closed to everyone else);
- memory, CPU and process limits per person with cgroups (`citykit.hub.limits`), which
  LocalProcessSpawner itself does not enforce.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Dict, Integer, List, Unicode

from citykit.hub import limits
from citykit.hub.state import HubState

UMASK = {"learner": 0o077, "instructor": 0o002}


class CohortSpawner(LocalProcessSpawner):
    state_file = Unicode("", help="the hub's state file (hub.json): roles and roster ids").tag(config=True)
    role_args = Dict(List(Unicode()), help="role -> extra arguments of the server").tag(config=True)
    role_environment = Dict(Dict(Unicode()), help="role -> extra environment of the server").tag(config=True)
    config_root = Unicode("", help="the hub's jupyter/ folder: <role>/ and users/<account>/").tag(config=True)
    kit_config = Unicode("", help="the kit's Jupyter config folder (lab settings)").tag(config=True)
    processes = Integer(512, help="processes and threads of a person's server and all it starts").tag(config=True)

    _cgroups: ClassVar[list[Path]] = []  # the groups of the server being started (set per start)

    def hub_state(self) -> HubState:
        return HubState.from_json(Path(self.state_file).read_text(encoding="utf-8"))

    @property
    def role(self) -> str:
        member = self.hub_state().member(self.user.name)
        if member is None:
            raise PermissionError(
                f"{self.user.name} is not on the cohort's roster; add them with `citykit hub add-learner`"
            )
        return member.role

    def get_args(self) -> list[str]:
        return [*super().get_args(), *self.role_args.get(self.role, [])]

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        role = self.role
        env.update(self.role_environment.get(role, {}))
        folders = [Path(self.config_root) / "users" / self.user.name, Path(self.config_root) / role]
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(f) for f in folders if f.is_dir()] + [self.kit_config])
        return env

    def make_preexec_fn(self, name: str):
        drop_root = super().make_preexec_fn(name)
        umask = UMASK.get(self.role, 0o077)
        groups = list(self._cgroups)

        def preexec() -> None:
            limits.join(groups)  # while still root: the server and all it starts count against the limits
            os.umask(umask)
            drop_root()

        return preexec

    async def start(self):
        state = self.hub_state()
        found = limits.Cgroups.detect()
        self._cgroups = []
        if found.parents:
            self._cgroups = found.make(state.cohort, self.user.name, memory_bytes=int(self.mem_limit or 0),
                                       cpus=float(self.cpu_limit or 0), processes=self.processes)  # fmt: skip
            self.log.info("%s: limits by cgroup: %s", self.user.name, json.dumps(
                {"memory_bytes": int(self.mem_limit or 0), "cpus": self.cpu_limit, "processes": self.processes}))  # fmt: skip
        else:
            self.log.warning("%s: memory and CPU limits NOT enforced (%s)", self.user.name, found.why_not)
        return await super().start()

    async def stop(self, now: bool = False):
        await super().stop(now=now)
        state = self.hub_state()
        limits.remove(list(limits.Cgroups.detect().group_paths(state.cohort, self.user.name).values()))
