"""The instructor's path on a system without POSIX-only modules (Windows): no `fcntl`, no `resource`.

Each check runs in a fresh Python (and the kernels it starts) whose `sitecustomize` makes both
modules unimportable, so an unconditional `import fcntl` or `import resource` anywhere on the path
fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from citykit.grading.cohort import Limits
from citykit.grading.limits import NOT_ENFORCED, limited_kernels, limits_enforced

BLOCKER = 'import sys\nsys.modules["fcntl"] = None\nsys.modules["resource"] = None\n'


def run_without_posix_modules(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    """Run `script` in a Python where `import fcntl` and `import resource` raise ImportError."""
    site = tmp_path / "no-posix-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    prelude = textwrap.dedent("""
        for name in ("fcntl", "resource"):
            try:
                __import__(name)
            except ImportError:
                pass
            else:
                raise SystemExit(f"{name} is still importable: the blocker did not load")
    """)
    return subprocess.run(
        [sys.executable, "-c", prelude + script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )


LOCK_SCRIPT = """
import threading, time
from pathlib import Path
from citykit.data.generate import _build_lock

events, entered = [], threading.Event()

def first_build():
    with _build_lock(Path("home"), "riverton"):
        events.append("first in")
        entered.set()
        time.sleep(0.5)
        events.append("first out")

thread = threading.Thread(target=first_build)
thread.start()
entered.wait(30)
with _build_lock(Path("home"), "riverton"):
    events.append("second in")
thread.join()
print(events)
"""

KERNEL_SCRIPT = """
from jupyter_client.manager import start_new_kernel
from citykit.grading.cohort import Limits
from citykit.grading.limits import apply_limits, limited_kernels, limits_enforced

print("enforced:", limits_enforced(), apply_limits(1024, 3))
with limited_kernels(Limits(cell_timeout=30, notebook_cpu_seconds=3, memory_mb=1024)):
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
try:
    seen = []
    kc.execute_interactive(
        "import sys\\nprint('kernel:', sys.modules['resource'], 6 * 7)", timeout=60,
        output_hook=lambda msg: seen.append(msg["content"].get("text", "")),
    )
    print("".join(seen).strip())
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""


def test_the_build_lock_excludes_a_second_build_without_fcntl(tmp_path):
    result = run_without_posix_modules(tmp_path, LOCK_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['first in', 'first out', 'second in']"


def test_a_limited_kernel_runs_a_cell_without_resource_and_says_once_that_limits_are_off(tmp_path):
    """The kernel itself starts in a Python without `resource` too (the blocker is on its path)."""
    result = run_without_posix_modules(tmp_path, KERNEL_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["enforced: False False", "kernel: None 42"]
    assert result.stderr.count(NOT_ENFORCED) == 1


@pytest.mark.skipif(not limits_enforced(), reason="this system has no resource limits")
def test_no_note_where_limits_are_enforced(capsys):
    with limited_kernels(Limits()):
        pass
    assert NOT_ENFORCED not in capsys.readouterr().err
