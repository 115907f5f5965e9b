"""benchmarks/bench_hub.py in its --quick mode (one learner), like tests/test_benchmarks.py runs the
other benchmarks: the benchmark cannot rot. It needs what the hub's other tests need (root, useradd,
the proxy); no figure is asserted here (benchmarks/README.md holds them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hubtest import needs_accounts, proxy_command, runnable_python

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_hub.py"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hub"), needs_accounts]


def test_bench_hub_runs_quick(riverton):
    with runnable_python() as python:
        done = subprocess.run([sys.executable, str(BENCH), "--quick", "--python", python, "--proxy-command",
                               proxy_command()], capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for printed in ("set-up from nothing:", "per learner: peak memory", "learners per 2-core 8 GiB server"):
        assert printed in done.stdout, done.stdout[-2000:]
