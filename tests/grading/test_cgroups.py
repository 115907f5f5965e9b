"""cgroup v2 for the sandbox, on a fake unified hierarchy (a folder standing for /sys/fs/cgroup and a
fake /proc naming it), since this machine has cgroup v1: the grader's own group is found when it
delegates memory and pids, a run's group gets memory.max, memory.swap.max and pids.max, the
launcher joins it through cgroup.procs, and its counters become notes. Without cgroups, every run
says the tree-wide limits are NOT ENFORCED.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from citykit.grading import sandbox
from citykit.grading.limits import cgroup_parents
from citykit.grading.sandbox import Policy, Run

MODULE = "04-time-to-close"


def fake_v2(tmp_path: Path, delegated: str = "cpu memory pids") -> tuple[Path, Path]:
    """(fake /proc, this process's own group in the fake unified hierarchy)."""
    hierarchy = tmp_path / "cgroup2"
    own = hierarchy / "system.slice" / "grader.service"
    own.mkdir(parents=True)
    (own / "cgroup.subtree_control").write_text(delegated + "\n")
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "mounts").write_text(f"proc /proc proc rw 0 0\ncgroup2 {hierarchy} cgroup2 rw,nosuid,nodev 0 0\n")
    (proc / "self" / "cgroup").write_text("0::/system.slice/grader.service\n")
    return proc, own


def test_the_unified_hierarchy_is_used_when_it_delegates_memory_and_pids(tmp_path):
    proc, own = fake_v2(tmp_path)
    assert cgroup_parents(("memory", "pids"), proc=proc) == {"v2": own}
    proc, _ = fake_v2(tmp_path / "partial", delegated="cpu memory")  # pids not delegated: no tree limit from it
    assert cgroup_parents(("memory", "pids"), proc=proc) == {}


def test_a_run_makes_a_v2_group_with_its_limits_and_the_launcher_joins_it(tmp_path):
    _, own = fake_v2(tmp_path)
    policy = Policy(cgroups={"v2": str(own)}, memory_mb=768, processes=96)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Run(policy, scratch, Path(__file__).resolve().parents[2], MODULE) as run:
        (group,) = run.groups
        assert group.parent == own
        assert (group / "memory.max").read_text() == str(768 * 1024 * 1024)
        assert (group / "pids.max").read_text() == "96"
        spec = json.loads(run.spec.read_text())
        assert spec["cgroups"] == [str(group)] and sorted(spec["tree"]) == ["memory", "pids"]
        sandbox.join_cgroups(spec["cgroups"])  # what the launcher does first
        assert (group / "cgroup.procs").read_text() == str(os.getpid())
        (group / "cgroup.procs").write_text("")  # else the run's end would kill this process, its member
        (group / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 2\n")
        (group / "pids.events").write_text("max 5\n")
        assert run.events() == ["reached the memory limit (768 MB); 2 process(es) killed",
                                "reached the process limit (96): 5 new process(es) refused"]  # fmt: skip


def test_swap_is_refused_where_the_hierarchy_offers_it(tmp_path, monkeypatch):
    _, own = fake_v2(tmp_path)
    made = []
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):  # a real cgroup folder comes with its interface files
        real_mkdir(self, *args, **kwargs)
        if self.parent == own:
            (self / "memory.swap.max").write_text("max")
            made.append(self)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    group = sandbox._make_cgroup("v2", own, Policy(memory_mb=512, processes=10))
    assert made == [group] and (group / "memory.swap.max").read_text() == "0"
    assert (group / "memory.max").read_text() == str(512 * 1024 * 1024) and (group / "pids.max").read_text() == "10"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces and cgroups are Linux's")
def test_without_cgroups_every_run_says_the_tree_limits_are_not_enforced(monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(sandbox, "_user_ids", lambda name: (999, 999))
    monkeypatch.setattr(sandbox, "_cgroup_dirs", lambda: {})
    policy = Policy.detect()
    assert policy.isolate and policy.cgroups == {}
    (note,) = policy.notes()
    assert "NOT ENFORCED" in note and "no writable cgroup memory/pids controllers" in note
    assert "memory is limited per process only" in note and "processes are limited per user" in note
    assert not any("(cgroup)" in line for line in policy.enforced())
    monkeypatch.setattr(sandbox, "_cgroup_dirs", lambda: {"v2": Path("/sys/fs/cgroup/x")})
    with_v2 = Policy.detect()
    assert with_v2.notes() == [] and sum("(cgroup)" in line for line in with_v2.enforced()) == 2


@pytest.mark.parametrize("cgroups", [{}, {"memory": "/m", "pids": "/p"}, {"v2": "/u"}])
def test_what_is_said_of_the_users_process_limit_is_what_the_kernel_gets(cgroups, monkeypatch):
    """Walk 18, F2: the summary said "256 processes of citykit-grader" where the kernel's RLIMIT_NPROC
    was 2048 (the pids cgroup bounds each notebook; the user's limit is a backstop for all of them)."""
    resource = pytest.importorskip("resource")
    policy = Policy(isolate=True, user="citykit-grader", rlimits=True, cgroups=cgroups, processes=256)
    set_to = {}
    monkeypatch.setattr(resource, "setrlimit", lambda kind, values: set_to.__setitem__(kind, values))
    sandbox._set_rlimits(policy, processes=True, tree=policy.tree())
    nproc = set_to[resource.RLIMIT_NPROC][0]
    assert nproc == (256 * 8 if cgroups else 256)
    (line,) = [line for line in policy.enforced() if line.startswith("per process:")]
    assert f", {nproc} processes of citykit-grader" in line


def test_a_cgroup_busy_for_a_moment_after_its_last_process_is_still_removed(tmp_path, monkeypatch):
    """test_sandbox once found a run's pids group left behind: rmdir failed with EBUSY right after
    the group's last process left; it is tried again for a few seconds."""
    import errno

    group = tmp_path / "citykit-1-1"
    group.mkdir()
    tries = []
    real_rmdir = Path.rmdir

    def rmdir(self):
        tries.append(self)
        if len(tries) < 3:
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)
    sandbox._remove_cgroup(group)
    assert len(tries) == 3 and not group.exists()


def test_a_sandbox_launcher_whose_worker_died_before_the_death_signal_was_armed_exits(tmp_path, monkeypatch):
    # PR_SET_PDEATHSIG only fires for a parent that dies after it is set: a worker killed in between
    # would leave the kernel with no one to end it, so the launcher checks its parent again and exits.
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"policy": {"isolate": True}, "cgroups": []}), encoding="utf-8")
    monkeypatch.setenv(sandbox.SPEC_ENV, str(spec))
    parents = iter([4242, 1])  # the worker, then init (the worker is gone)
    monkeypatch.setattr(sandbox.os, "getppid", lambda: next(parents))
    monkeypatch.setattr(sandbox, "join_cgroups", lambda groups: None)
    armed = []
    monkeypatch.setattr(sandbox, "_libc", lambda: type("L", (), {"prctl": lambda *a: armed.append(a)})())

    def exits(code):
        raise SystemExit(code)

    def never(*args):
        raise AssertionError("the kernel was started for a dead worker")

    monkeypatch.setattr(sandbox.os, "_exit", exits)
    monkeypatch.setattr(sandbox.os, "execv", never)
    with pytest.raises(SystemExit) as ended:
        sandbox.launch([])
    assert ended.value.code == 1 and armed
