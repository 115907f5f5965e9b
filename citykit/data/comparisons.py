"""Statistics for fair comparisons between periods (rules: `metrics.yml` `comparisons`).

- `km_quantiles`: the median and 90th percentile wait, counting open requests as still waiting
  (Kaplan-Meier, open requests censored). The curve is statsmodels' `SurvfuncRight`; the quantile
  rule is pinned here (smallest t with S(t) <= 1 - p; statsmodels' own `quantile` uses S(t) < 1 - p).
- `waits`: durations and closed/open marks as they stood at a cut-off (equal follow-up).
- `laney_limits`: Laney p' and u' control limits from past periods (written here: no library we use
  has them), and `judge` the change against them and the minimum practical change.
- `bootstrap_median_difference`: an interval for the difference of two Kaplan-Meier medians from
  the bootstrap standard error, Bonferroni-corrected for the number of comparisons (the resampled
  curves are a weighted Kaplan-Meier product written with numpy for speed, as statsmodels would
  re-sort every replicate; a test checks it against statsmodels with unit and integer weights).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citykit.standards.reader import load_metrics

DAY = pd.Timedelta(days=1)
TOLERANCE = 1e-10  # S(t) at exactly 1 - p, computed as a product of fractions
BATCH_CELLS = 4_000_000  # bootstrap replicates x requests computed at once (bounds the memory, ~32 MB an array)
NO_CACHE_ENV = (
    "CITYKIT_NO_CACHE"  # set: no kernel caches (rows re-read by every query, a new DuckDB per load), to check them
)


def rules() -> dict[str, Any]:
    """`metrics.yml` `comparisons`, with `min_closed_to_compare` from `time_to_close`."""
    metrics = load_metrics()
    found = dict(metrics["comparisons"])
    found["min_closed_to_compare"] = int(metrics["time_to_close"]["min_closed_to_compare"])
    return found


# ------------------------------------------------------------------ waits and Kaplan-Meier


def waits(frame: pd.DataFrame, at: dt.datetime | pd.Timestamp) -> pd.DataFrame:
    """Each request's wait in days and whether it had closed, as things stood at `at`.

    frame: created_at, closed_at (requests already filtered under the metric rules). A request
    closed after `at` was open at `at`: its wait is censored there.
    """
    at = pd.Timestamp(at)
    created = pd.to_datetime(frame["created_at"])
    closed = pd.to_datetime(frame["closed_at"])
    done = closed.notna() & (closed <= at)
    end = closed.where(done, at)
    days = ((end - created) / DAY).clip(lower=0).astype(float)
    return pd.DataFrame({"days": days.to_numpy(), "closed": done.to_numpy()}, index=frame.index)


def km_curve(days: np.ndarray, closed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier curve (times, share still waiting after each) from statsmodels."""
    from statsmodels.duration.survfunc import SurvfuncRight

    days, closed = np.asarray(days, float), np.asarray(closed, bool)
    if len(days) == 0 or not closed.any():
        return np.array([]), np.array([])
    curve = SurvfuncRight(days, closed.astype(int))
    return np.asarray(curve.surv_times, float), np.asarray(curve.surv_prob, float)


def quantile_from_curve(times: np.ndarray, surv: np.ndarray, p: float) -> float | None:
    """Smallest time with S(t) <= 1 - p; None ("not yet estimable") when the curve never gets there."""
    reached = np.flatnonzero(surv <= 1 - p + TOLERANCE)
    return float(times[reached[0]]) if len(reached) else None


def km_quantiles(days, closed, probs=(0.5, 0.9)) -> dict[float, float | None]:
    """Kaplan-Meier quantiles of the wait: {0.5: median, 0.9: 90th percentile} (None: not yet estimable)."""
    times, surv = km_curve(days, closed)
    return {p: quantile_from_curve(times, surv, p) for p in probs}


class _Sorted:
    """One period's waits sorted once (closed before open at ties), for weighted Kaplan-Meier medians."""

    def __init__(self, frame: pd.DataFrame) -> None:
        days, closed = frame["days"].to_numpy(float), frame["closed"].to_numpy(bool)
        order = np.lexsort((~closed, days))
        self.days, self.closed = days[order], closed[order].astype(float)
        self.first = np.r_[True, self.days[1:] != self.days[:-1]] if len(days) else np.array([], bool)
        self.group = np.cumsum(self.first) - 1
        self.times = self.days[self.first]
        # for the bootstrap (`quantiles`): S(t) can only drop at a distinct time where a request closed.
        # Each request's slot among 3 per such time (waiting before it, closed at it, open at it) + 1 after the last
        events = np.unique(self.group[self.closed > 0])
        self.event_times = self.times[events]
        k = np.searchsorted(events, self.group)
        at = (
            (k < len(events)) & (events[np.minimum(k, max(len(events) - 1, 0))] == self.group) if len(events) else k < 0
        )
        self.slot = np.where(at, 3 * k + np.where(self.closed > 0, 1, 2), 3 * k)

    def median(self, weights: np.ndarray, p: float = 0.5) -> float | None:
        """The Kaplan-Meier median (or p-quantile) with frequency weights: the product over distinct
        times of (1 - closed there / still waiting there)."""
        return self.medians(np.asarray(weights, float)[None, :], p)[0]

    def medians(self, weights: np.ndarray, p: float = 0.5) -> list[float | None]:
        """One Kaplan-Meier median (or p-quantile) per row of `weights` (replicates x requests, in sorted order),
        computed for all rows at once: events = closed weights summed within each distinct time
        (contiguous, as the rows are sorted), at risk = all weight less the weight of earlier times."""
        if weights.shape[1] == 0:
            return [None] * len(weights)
        starts = np.flatnonzero(self.first)
        here = np.add.reduceat(weights, starts, axis=1)  # weight at each distinct time
        events = np.add.reduceat(weights * self.closed, starts, axis=1)
        at_risk = weights.sum(axis=1, keepdims=True) - (np.cumsum(here, axis=1) - here)  # waiting at t or later
        hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
        surv = np.cumprod(1.0 - hazard, axis=1)  # a time without events multiplies by 1
        reached = surv <= 1 - p + TOLERANCE
        found = reached.any(axis=1)
        first = reached.argmax(axis=1)
        return [float(self.times[i]) if ok else None for i, ok in zip(first, found, strict=True)]

    def quantiles(self, draws: np.ndarray, probs: tuple[float, ...]) -> dict[float, list[float | None]]:
        """The Kaplan-Meier p-quantiles of bootstrap replicates, one row of `draws` (indices into the
        sorted requests, each row drawn with replacement) per replicate: the same numbers `medians`
        gives for the rows' resampling counts, with less work. At-risk and event counts are integers
        (exact in any order); the product runs only over times where a request closed, which leaves it
        unchanged, as a time without events multiplies it by exactly 1 and the quantile is always
        reached at a time with events."""
        size, n = draws.shape
        count = len(self.event_times)
        if count == 0 or n == 0:
            return {p: [None] * size for p in probs}
        width = 3 * count + 1
        codes = self.slot[draws]
        codes += (np.arange(size, dtype=codes.dtype) * width)[:, None]
        slots = np.bincount(codes.ravel(), minlength=size * width).reshape(size, width)
        del codes
        events = slots[:, 1 : 3 * count : 3].astype(float)  # closed at each time with events
        np.cumsum(slots, axis=1, out=slots)
        at_risk = (n - slots[:, 0 : 3 * count : 3]).astype(float)  # n less those counted before the time
        del slots
        hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
        surv = np.cumprod(1.0 - hazard, axis=1)
        found = {}
        for p in probs:
            reached = surv <= 1 - p + TOLERANCE
            first = reached.argmax(axis=1)
            ok = reached.any(axis=1)
            found[p] = [float(self.event_times[i]) if hit else None for i, hit in zip(first, ok, strict=True)]
        return found


def bootstrap_median_difference(
    current: pd.DataFrame, previous: pd.DataFrame, replicates: int, level: float, seed: int, p: float = 0.5
) -> tuple[float | None, float | None]:
    """Interval at `level` for median(current) - median(previous) (or of the p-quantiles, p=0.9 for
    the 90th percentile): the point difference plus or
    minus the normal quantile times the bootstrap standard error (requests resampled within each
    period), which stays usable at the extreme levels a Bonferroni correction asks for.
    (None, None) when over 5% of the replicates' medians are not estimable."""
    return bootstrap_quantile_differences(current, previous, replicates, level, seed, (p,))[p]


def bootstrap_quantile_differences(
    current: pd.DataFrame, previous: pd.DataFrame, replicates: int, level: float, seed: int,
    probs: tuple[float, ...] = (0.5,),
) -> dict[float, tuple[float | None, float | None]]:  # fmt: skip
    """`bootstrap_median_difference` for several p at once, from one set of draws: each p's interval
    is the one a call for that p alone gives (same seed, same draws), without drawing twice."""
    from scipy.stats import norm

    sets = [_Sorted(current), _Sorted(previous)]
    out: dict[float, tuple[float | None, float | None]] = {p: (None, None) for p in probs}
    points = {p: [s.median(np.ones(len(s.days)), p) for s in sets] for p in probs}
    live = tuple(p for p in probs if None not in points[p])
    if not live:
        return out
    rng = np.random.default_rng(seed)
    # each replicate's resampled requests, drawn replicate by replicate (current, then previous) as a
    # plain loop would draw them; the quantiles of a batch of replicates computed at once
    medians: dict[float, list[list[float | None]]] = {p: [[], []] for p in live}
    batch = max(1, BATCH_CELLS // max(len(sets[0].days), len(sets[1].days), 1))
    for lo in range(0, replicates, batch):
        size = min(batch, replicates - lo)
        draws = [np.empty((size, len(s.days)), np.intp) for s in sets]
        for r in range(size):
            for s, d in zip(sets, draws, strict=True):
                d[r] = rng.integers(0, len(s.days), len(s.days))
        for k, (s, d) in enumerate(zip(sets, draws, strict=True)):
            for p, found in s.quantiles(d, live).items():
                medians[p][k] += found
        del draws
    for p in live:
        draws_p = [a - b for a, b in zip(*medians[p], strict=True) if a is not None and b is not None]
        if len(draws_p) < 2 or replicates - len(draws_p) > 0.05 * replicates:
            continue
        half = norm.ppf(1 - (1 - level) / 2) * float(np.std(draws_p, ddof=1))
        difference = points[p][0] - points[p][1]
        out[p] = (difference - half, difference + half)
    return out


# ------------------------------------------------------------------ on time, with the type mix held


def mix_adjusted_share(previous: pd.DataFrame, current: pd.DataFrame) -> float | None:
    """The previous period's on-time share at the current period's mix of types.

    Each frame: indexed by request type, columns `due` and `on_time` (counts). Weights: the current
    period's due requests of each type, over the types due in both periods (direct standardization).
    """
    both = previous.index[previous["due"] > 0].intersection(current.index[current["due"] > 0])
    if not len(both):
        return None
    weights = current.loc[both, "due"].astype(float)
    shares = previous.loc[both, "on_time"] / previous.loc[both, "due"]
    return float((weights * shares).sum() / weights.sum())


# ------------------------------------------------------------------ noise: Laney p' and u' charts


@dataclass(frozen=True)
class Limits:
    centre: float  # the past periods' pooled rate or share
    low: float
    high: float
    sigma_z: float  # Laney's between-period spread; 1 means plain binomial or Poisson noise


def laney_limits(events, sizes, current_size: float, kind: str, sigma: float = 3.0) -> Limits:
    """Control limits for a new period of size `current_size`, from past periods' events and sizes.

    kind "p": shares (events of sizes trials); kind "u": rates (events per unit of size, e.g. per day).
    Laney (2002): z_i = (x_i - centre) / sd_i with the plain binomial / Poisson sd; sigma_z = the
    average moving range of z / 1.128; limits = centre +/- sigma * sd_current * sigma_z.
    """
    events, sizes = np.asarray(events, float), np.asarray(sizes, float)
    keep = sizes > 0
    events, sizes = events[keep], sizes[keep]
    centre = events.sum() / sizes.sum()
    rates = events / sizes
    if kind == "p":
        spread = centre * (1 - centre)
        low_bound, high_bound = 0.0, 1.0
    elif kind == "u":
        spread = centre
        low_bound, high_bound = 0.0, math.inf
    else:
        raise ValueError(f"kind must be 'p' or 'u', not {kind!r}")
    if spread <= 0 or len(rates) < 2:
        return Limits(centre, centre, centre, 1.0)
    z = (rates - centre) / np.sqrt(spread / sizes)
    sigma_z = float(np.mean(np.abs(np.diff(z))) / 1.128)
    half = sigma * math.sqrt(spread / current_size) * sigma_z
    return Limits(centre, max(low_bound, centre - half), min(high_bound, centre + half), sigma_z)


@dataclass(frozen=True)
class Verdict:
    changed: bool
    reason: str  # what decided it, in plain words


def judge(current: float, previous: float, limits: Limits | None, min_change: float, *, relative: bool,
          within: str, min_absolute: float = 0.0, history: int = 0, min_history: int = 0) -> Verdict:  # fmt: skip
    """A change only when the current value is outside the control limits AND the change from the
    previous value is at least the minimum practical change."""
    if limits is None or history < min_history:
        return Verdict(False, f"too little history to judge ({history} past periods, {min_history} needed)")
    size = abs(current - previous)
    practical = (size >= min_change * abs(previous) if relative else size >= min_change) and size >= min_absolute
    outside = current < limits.low or current > limits.high
    if outside and practical:
        return Verdict(True, "beyond the control limits of past periods and the minimum practical change")
    return Verdict(False, within)


def share_verdict(current: float, previous: float, events: list[float], sizes: list[float], size: float) -> Verdict:
    """The rule for a share (metrics.yml `comparisons.noise`): Laney p' limits from past periods'
    `events` out of `sizes` (oldest first; `size` is the current period's) and the minimum practical
    change in points. The service report's on-time tile and the quality comparison both use it."""
    noise = rules()["noise"]
    limits = laney_limits(events, sizes, size, "p", noise["sigma"]) if len(events) >= 2 else None
    return judge(current, previous, limits, noise["min_change"]["share_points"], relative=False,
                 within=noise["within_label"], history=len(events), min_history=int(noise["min_history"]))  # fmt: skip


def rank_with_minimum(table: pd.DataFrame, value: str, count: str, minimum: int, label: str,
                      ascending: bool = False) -> pd.DataFrame:  # fmt: skip
    """Rows sorted by `value`, those resting on fewer than `minimum` `count` last and marked `label`
    in a `note` column (their value is kept, never used to rank)."""
    enough = table[count] >= minimum
    ranked = pd.concat([table[enough].sort_values(value, ascending=ascending),
                        table[~enough].sort_values(count, ascending=False)])  # fmt: skip
    return ranked.assign(note=np.where(ranked[count] >= minimum, "", label))
