"""Benchmarks that cannot rot: each runs in its `--quick` mode (small sizes, one run) and prints its
ratios against the plain tools. No target is asserted here; `benchmarks/README.md` holds the medians."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("script", "printed"),
    [("bench_import.py", "ratio import/DuckDB"), ("bench_reports.py", "ratio (a)/(c)"), ("bench_grading.py", "ratio:")],
)
def test_benchmark_runs_quick(riverton, script, printed):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert printed in done.stdout, done.stdout[-2000:]


def test_the_memory_sampler_counts_shared_pages_once():
    """bench_reports' large-city figure: PSS summed over a process tree counts a page the parent and
    its child share once, RSS summed counts it twice (an upper bound)."""
    import psutil

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from bench_reports import MemorySampler
    finally:
        sys.path.remove(str(BENCHMARKS))
    code = (  # 200 MB written before the fork: shared (copy on write) by parent and child until they exit
        "import os, time\nblock = bytearray(200 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n"
        "if os.fork() == 0:\n    time.sleep(1.5)\n    os._exit(0)\ntime.sleep(1.5)\nos.wait()\n"
    )
    child = psutil.Popen([sys.executable, "-c", code])
    with MemorySampler(child, interval=0.05) as memory:
        child.wait(timeout=30)
    mb = 2**20
    assert memory.samples > 5
    assert memory.rss > 380 * mb  # both processes' 200 MB
    assert 190 * mb < memory.pss < 300 * mb  # the shared 200 MB once (plus two small interpreters)
    assert memory.uss <= memory.pss  # (before the fork the parent's 200 MB were private)
