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
