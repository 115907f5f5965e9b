"""The fast bootstrap (`bootstrap_quantile_differences`, `_Sorted.quantiles`) gives exactly the
intervals of the bootstrap as first written (`reference` below: resampling counts per replicate
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
def test_fast_bootstrap_equals_the_reference_exactly(case):
    rng = np.random.default_rng(1000 + case)
    sizes = [0, 1, 3, 25, 140, 900]
    now = waits(
        rng, sizes[case % 6] if case < 12 else int(rng.integers(5, 400)), case % 2 == 0, 0.5 + 0.5 * rng.random()
    )
    before = waits(rng, sizes[(case + 3) % 6] if case < 12 else int(rng.integers(5, 400)), case % 3 == 0, 0.9)
    replicates, level, seed = (60, 0.95, case) if case % 4 else (200, 1 - 0.05 / 17, 311)
    fast = cmp.bootstrap_quantile_differences(now, before, replicates, level, seed, (0.5, 0.9))
    for p in (0.5, 0.9):
        assert fast[p] == reference(now, before, replicates, level, seed, p)
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


def reference(
    current: pd.DataFrame, previous: pd.DataFrame, replicates: int, level: float, seed: int, p: float = 0.5
) -> tuple[float | None, float | None]:
    """The bootstrap as first written in citykit (resampling counts per replicate, `_Sorted.medians`),
    kept here as the reference the fast one must match exactly."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    sets = [cmp._Sorted(current), cmp._Sorted(previous)]
    point = [s.median(np.ones(len(s.days)), p) for s in sets]
    if None in point:
        return None, None
    medians: list[list[float | None]] = [[], []]
    batch = max(1, cmp.BATCH_CELLS // max(len(sets[0].days), len(sets[1].days), 1))
    for lo in range(0, replicates, batch):
        size = min(batch, replicates - lo)
        counts = [np.empty((size, len(s.days))) for s in sets]
        for r in range(size):
            for s, c in zip(sets, counts, strict=True):
                c[r] = np.bincount(rng.integers(0, len(s.days), len(s.days)), minlength=len(s.days))
        for k, (s, c) in enumerate(zip(sets, counts, strict=True)):
            medians[k] += s.medians(c, p)
    draws = [a - b for a, b in zip(*medians, strict=True) if a is not None and b is not None]
    failed = replicates - len(draws)
    if len(draws) < 2 or failed > 0.05 * replicates:
        return None, None
    half = norm.ppf(1 - (1 - level) / 2) * float(np.std(draws, ddof=1))
    difference = point[0] - point[1]
    return difference - half, difference + half
