"""The fast bootstrap (`bootstrap_quantile_differences`, `_Sorted.quantiles`) gives exactly the
intervals of the bootstrap as first written (`bootstrap_reference`: resampling counts per replicate
and `_Sorted.medians`, itself checked against statsmodels in test_comparisons.py): same seed, same
draws, the same floats, for the median and the 90th percentile, with ties, open requests, tiny and
empty periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citykit.data import comparisons as cmp


def waits(rng: np.random.Generator, n: int, ties: bool, closed_share: float) -> pd.DataFrame:
    days = rng.exponential(12.0, n)
    if ties:  # whole days: many requests closed and open at the same time
        days = np.floor(days)
    return pd.DataFrame({"days": days, "closed": rng.random(n) < closed_share})


@pytest.mark.parametrize("case", range(40))
def test_fast_bootstrap_equals_the_reference_exactly(case, monkeypatch):
    monkeypatch.delenv(cmp.NO_CACHE_ENV, raising=False)
    rng = np.random.default_rng(1000 + case)
    sizes = [0, 1, 3, 25, 140, 900]
    now = waits(
        rng, sizes[case % 6] if case < 12 else int(rng.integers(5, 400)), case % 2 == 0, 0.5 + 0.5 * rng.random()
    )
    before = waits(rng, sizes[(case + 3) % 6] if case < 12 else int(rng.integers(5, 400)), case % 3 == 0, 0.9)
    replicates, level, seed = (60, 0.95, case) if case % 4 else (200, 1 - 0.05 / 17, 311)
    fast = cmp.bootstrap_quantile_differences(now, before, replicates, level, seed, (0.5, 0.9))
    for p in (0.5, 0.9):
        assert fast[p] == cmp.bootstrap_reference(now, before, replicates, level, seed, p)
        assert cmp.bootstrap_median_difference(now, before, replicates, level, seed, p) == fast[p]


def test_replicate_quantiles_equal_weighted_kaplan_meier_medians():
    rng = np.random.default_rng(7)
    frame = waits(rng, 300, ties=True, closed_share=0.7)
    data = cmp._Sorted(frame)
    draws = rng.integers(0, len(data.days), (50, len(data.days)))
    counts = np.stack([np.bincount(row, minlength=len(data.days)).astype(float) for row in draws])
    found = data.quantiles(draws, (0.5, 0.75, 0.9))
    for p in (0.5, 0.75, 0.9):
        assert found[p] == data.medians(counts, p)
    assert any(v is not None for v in found[0.9]) and len(set(found[0.5])) > 3  # not a degenerate case


def test_the_plain_path_is_the_reference(monkeypatch):
    rng = np.random.default_rng(3)
    now, before = waits(rng, 200, True, 0.8), waits(rng, 180, False, 0.8)
    called = []
    reference = cmp.bootstrap_reference
    monkeypatch.setattr(cmp, "bootstrap_reference", lambda *a, **k: called.append(a[-1]) or reference(*a, **k))
    monkeypatch.setenv(cmp.NO_CACHE_ENV, "1")
    plain = cmp.bootstrap_quantile_differences(now, before, 100, 0.95, 5, (0.5, 0.9))
    assert called == [0.5, 0.9]
    monkeypatch.delenv(cmp.NO_CACHE_ENV)
    assert cmp.bootstrap_quantile_differences(now, before, 100, 0.95, 5, (0.5, 0.9)) == plain
    assert len(called) == 2  # the fast path never calls the reference
