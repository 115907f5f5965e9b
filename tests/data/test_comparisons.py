"""Fair comparisons: Kaplan-Meier quantiles, equal follow-up, noise rules, the backlog.

Each statistic is checked against an independent implementation (scipy's Kaplan-Meier `ecdf`,
statsmodels) or a published worked example, and the backlog against DuckDB SQL on the parquet.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from citykit.data import comparisons as cmp
from citykit.data import registry
from citykit.data.backlog import backlog
from citykit.data.changes import compare_periods
from citykit.standards.reader import load_metrics


def scipy_quantile(days, closed, p):
    """The pinned rule (smallest t with S(t) <= 1 - p) read off scipy's Kaplan-Meier estimate."""
    data = sps.CensoredData(uncensored=days[closed], right=days[~closed])
    sf = sps.ecdf(data).sf
    reached = np.flatnonzero(sf.probabilities <= 1 - p + 1e-10)
    return float(sf.quantiles[reached[0]]) if len(reached) else None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_km_quantiles_match_scipy(seed):
    rng = np.random.default_rng(seed)
    n = 400
    days = np.round(rng.lognormal(1.0, 1.2, n), 4)
    censor = rng.uniform(0, 40, n)
    closed = days <= censor
    days = np.where(closed, days, np.round(censor, 4))
    found = cmp.km_quantiles(days, closed)
    for p in (0.5, 0.9):
        expected = scipy_quantile(days, closed, p)
        assert (found[p] is None) == (expected is None)
        if expected is not None:
            assert found[p] == pytest.approx(expected)


def test_km_median_of_a_published_example():
    """Freireich et al. (1963) 6-MP remission trial, as tabulated by Gehan (1965) and in Kleinbaum &
    Klein's Survival Analysis: median remission 23 weeks on 6-MP (with censoring), 8 on placebo."""
    treated_events = [6, 6, 6, 7, 10, 13, 16, 22, 23]
    treated_censored = [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
    days = np.array(treated_events + treated_censored, float)
    closed = np.array([True] * len(treated_events) + [False] * len(treated_censored))
    assert cmp.km_quantiles(days, closed)[0.5] == 23
    assert cmp.km_quantiles(days, closed)[0.9] is None  # the curve never falls to 0.1: not yet estimable
    placebo = np.array([1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23], float)
    assert cmp.km_quantiles(placebo, np.ones(len(placebo), bool))[0.5] == 8


def test_pinned_rule_at_an_exact_half():
    """S(t) exactly 0.5 at t=2: the pinned rule gives 2 (statsmodels' own strict rule would give 3)."""
    days, closed = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4, bool)
    assert cmp.km_quantiles(days, closed)[0.5] == 2.0
    assert scipy_quantile(days, closed, 0.5) == 2.0


def weighted_km_median(frame: pd.DataFrame, weights: np.ndarray) -> float | None:
    """The bootstrap's own Kaplan-Meier median (`_Sorted.median`), weights given in the frame's order."""
    order = np.lexsort((~frame["closed"].to_numpy(bool), frame["days"].to_numpy(float)))
    return cmp._Sorted(frame).median(np.asarray(weights, float)[order])


def test_the_bootstraps_km_median_equals_statsmodels_on_repeated_rows():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"days": np.round(rng.exponential(3, 300), 2), "closed": rng.random(300) < 0.8})
    weights = rng.integers(0, 4, 300)
    repeated = frame.loc[frame.index.repeat(weights)]
    expected = cmp.km_quantiles(repeated["days"].to_numpy(), repeated["closed"].to_numpy())[0.5]
    assert weighted_km_median(frame, weights) == pytest.approx(expected)
    expected = cmp.km_quantiles(frame["days"], frame["closed"])[0.5]
    assert weighted_km_median(frame, np.ones(len(frame))) == pytest.approx(expected)


def test_waits_as_they_stood_at_a_cut_off():
    frame = pd.DataFrame({
        "created_at": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-01"]),
        "closed_at": pd.to_datetime(["2025-01-03", "2025-01-20", None]),
    })  # fmt: skip
    w = cmp.waits(frame, pd.Timestamp("2025-01-10"))
    assert w["closed"].tolist() == [True, False, False]  # closed after the cut-off: open at it
    assert w["days"].tolist() == [2.0, 9.0, 9.0]


def test_laney_limits_allow_for_overdispersion():
    """In-control periods whose true share varies between periods (beta-binomial): the plain p chart
    flags many of them, Laney's p' chart about as few as 3-sigma limits should."""
    rng = np.random.default_rng(11)
    n = 5000
    alarms_p, alarms_laney = 0, 0
    trials = 300
    for _ in range(trials):
        shares = rng.beta(80 * 8, 20 * 8, 9)  # mean 0.8, between-period sd about 0.014
        on_time = rng.binomial(n, shares)
        limits = cmp.laney_limits(on_time[:8], [n] * 8, n, "p")
        centre = on_time[:8].sum() / (8 * n)
        plain = 3 * np.sqrt(centre * (1 - centre) / n)
        current = on_time[8] / n
        alarms_laney += not (limits.low <= current <= limits.high)
        alarms_p += abs(current - centre) > plain
        assert limits.sigma_z > 0
    assert alarms_p / trials > 0.2
    assert alarms_laney / trials < 0.05


def test_rank_with_minimum_puts_thin_medians_last():
    table = pd.DataFrame({"median": [86.7, 3.0, 5.0], "closed": [1, 40, 25]}, index=["SFPD", "A", "B"])
    ranked = cmp.rank_with_minimum(table, "median", "closed", 20, "too few to compare")
    assert ranked.index.tolist() == ["B", "A", "SFPD"]
    assert ranked.loc["SFPD", "note"] == "too few to compare"


# --- the backlog: every request open at the as-of date, checked with DuckDB ------------------------


def duckdb_backlog(ds, neighborhood=None):
    path = ds.table_path("service_requests").as_posix()
    now = f"TIMESTAMP '{ds.as_of + dt.timedelta(days=1)}'"
    place = "" if neighborhood is None else f"AND neighborhood = '{neighborhood}'"
    age = f"date_diff('day', created_at, {now}) - CASE WHEN created_at::TIME > TIME '00:00:00' THEN 1 ELSE 0 END"
    return duckdb.sql(f"""
        SELECT count(*), count(*) FILTER (WHERE age > 90), count(*) FILTER (WHERE age > 365),
               count(*) FILTER (WHERE age <= 7)
        FROM (SELECT {age} AS age FROM read_parquet('{path}')
              WHERE status IN ('Open', 'In Progress') AND NOT is_duplicate AND created_at < {now} {place})
    """).fetchone()


def split(series):
    labels = list(series.index)
    over_90 = int(
        series[[label for label, b in zip(labels, load_metrics()["backlog"]["buckets"]) if b["min"] > 90]].sum()
    )
    over_365 = int(
        series[[label for label, b in zip(labels, load_metrics()["backlog"]["buckets"]) if b["min"] > 365]].sum()
    )
    return int(series.sum()), over_90, over_365, int(series.iloc[0])


def test_backlog_citywide_is_every_open_request(riverton):
    assert split(backlog("riverton")) == duckdb_backlog(riverton)


def test_backlog_of_one_neighborhood(riverton):
    path = riverton.table_path("service_requests").as_posix()
    hood = duckdb.sql(f"SELECT neighborhood FROM read_parquet('{path}') WHERE neighborhood IS NOT NULL "
                      "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]  # fmt: skip
    assert split(backlog("riverton", neighborhood=hood)) == duckdb_backlog(riverton, hood)


def test_opened_in_period_is_not_the_backlog(riverton):
    whole, q4 = backlog("riverton"), backlog("riverton", created_in=f"{riverton.as_of.year}-Q4")
    assert q4.sum() < whole.sum()
    assert q4.iloc[-1] == 0 < whole.iloc[-1]  # nothing created in the quarter can be a year old


# --- a city whose true performance never changes --------------------------------------------------


@pytest.fixture
def constant_city(tmp_path, monkeypatch):
    """Two years of requests at a constant rate with one wait distribution (lognormal, median 3 days),
    due 5 days after creation; the export stops on 31 December 2025, so recent slow requests are open."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path))
    rng = np.random.default_rng(2025)
    start, end = pd.Timestamp("2024-01-01"), pd.Timestamp("2026-01-01")
    n = 60_000
    created = start + pd.to_timedelta(np.sort(rng.uniform(0, (end - start).days, n)), unit="D")
    wait = pd.to_timedelta(rng.lognormal(np.log(3.0), 1.3, n), unit="D")
    closed = created + wait
    is_open = closed >= end
    frame = pd.DataFrame({
        "request_id": [f"C{i}" for i in range(n)], "created_at": created,
        "closed_at": pd.Series(closed).where(~is_open), "due_at": created + pd.Timedelta(days=5),
        "status": np.where(is_open, "Open", "Closed"), "request_type": rng.choice(["Pothole", "Graffiti Removal"], n),
        "neighborhood": "Centre", "is_duplicate": False, "flag_closed_before_created": False,
        "flag_placeholder_date": False,
    })  # fmt: skip
    folder = tmp_path / "constant"
    folder.mkdir()
    frame.to_parquet(folder / "service_requests.parquet")
    registry.register(registry.Dataset("constant", dt.date(2025, 12, 31), location="constant",
                                       tables=("service_requests",)))  # fmt: skip
    return folder / "service_requests.parquet"


def test_constant_performance_reports_no_change(constant_city):
    path = constant_city.as_posix()
    # the closed-only route with unequal follow-up, in DuckDB: Q4 looks faster than Q3, an artifact
    naive = dict(duckdb.sql(f"""
        SELECT CASE WHEN created_at >= TIMESTAMP '2025-10-01' THEN 'q4' ELSE 'q3' END AS q,
               median(epoch(closed_at - created_at) / 86400)
        FROM read_parquet('{path}') WHERE created_at >= TIMESTAMP '2025-07-01' AND closed_at IS NOT NULL GROUP BY 1
    """).fetchall())  # fmt: skip
    assert naive["q4"] < 0.9 * naive["q3"]
    result = compare_periods("constant", "2025-Q4")
    for name in ("volume", "median", "on_time"):
        assert not result.verdicts[name].changed, (name, result.verdicts[name])
    assert result.current.median == pytest.approx(result.previous.median, rel=0.08)
    assert result.current.median == pytest.approx(3.0, rel=0.1)
    assert result.current.share == pytest.approx(result.previous.share, abs=0.02)
    assert "within normal variation" in result.markdown()


def test_a_real_change_is_called_a_change(constant_city):
    frame = pd.read_parquet(constant_city)
    q4 = frame["created_at"] >= pd.Timestamp("2025-10-01")
    extra = frame[q4].sample(frac=0.5, random_state=1).assign(request_id=lambda f: f["request_id"] + "x")
    pd.concat([frame, extra]).to_parquet(constant_city)  # half as many again in Q4
    assert compare_periods("constant", "2025-Q4").verdicts["volume"].changed
