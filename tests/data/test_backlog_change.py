"""Key figures of the service report beyond `compare_periods`' own: the backlog over 90 days now and
at the comparison cut-off (checked against DuckDB SQL written here from metrics.yml's words), and the
90th percentile's verdict (the bootstrap's weighted Kaplan-Meier p-quantile against scipy's)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import citykit
from citykit.data import comparisons as cmp


def _old_open(path: str, at: pd.Timestamp, neighborhood: str | None = None) -> int:
    """Requests open at `at` for 91 whole days or more: not duplicates, created before `at`, status
    Open or In Progress, or closed after `at` unless cancelled."""
    where = "" if neighborhood is None else " AND neighborhood = $hood"
    params = {"path": path, "at": at.to_pydatetime(), **({"hood": neighborhood} if neighborhood else {})}
    return duckdb.execute(
        "SELECT count(*) FROM read_parquet($path) WHERE NOT is_duplicate AND created_at < $at "
        "AND created_at <= $at - INTERVAL 91 DAY "
        "AND (status IN ('Open', 'In Progress') OR (closed_at > $at AND status <> 'Cancelled'))" + where,
        params,
    ).fetchone()[0]


@pytest.mark.parametrize("neighborhood", [None, "Millbrook"])
def test_backlog_over_90_days_now_and_at_the_cutoff(riverton, neighborhood):
    path = riverton.table_path("service_requests").as_posix()
    change = citykit.compare_backlog("riverton", "2025-Q3", neighborhood=neighborhood)
    now = pd.Timestamp(riverton.now)
    # the previous quarter as it stood as long after its end as Q3 has had: 1 Jul + (1 Jan - 1 Oct)
    cutoff = pd.Timestamp("2025-07-01") + (now - pd.Timestamp("2025-10-01"))
    assert change.cutoff == cutoff.to_pydatetime()
    assert change.now == _old_open(path, now, neighborhood) > 0
    assert change.before == _old_open(path, cutoff, neighborhood) > 0
    ages = citykit.backlog("riverton", neighborhood=neighborhood)
    assert change.now == int(ages[["91-365 days", "over 365 days"]].sum())
    assert change.history >= 4 and change.verdict.reason


def test_a_jump_in_the_old_backlog_is_a_change(riverton, tmp_path, monkeypatch):
    """Reopen 1,500 requests created from mid-July to September 2025: over 90 days old now, under 90
    at the previous quarter's cut-off, so the old backlog jumps against it and the rule says so."""
    assert not citykit.compare_backlog("riverton", "2025-Q4").verdict.changed  # the city as built: steady
    now = pd.Timestamp(riverton.now)
    built = _old_open(riverton.table_path("service_requests").as_posix(), now)
    home = tmp_path / "home"
    folder = home / riverton.location
    folder.mkdir(parents=True)
    for table in riverton.tables:
        (folder / f"{table}.parquet").symlink_to(riverton.table_path(table))
    requests = folder / "service_requests.parquet"
    requests.unlink()
    chosen = (
        "request_id IN (SELECT request_id FROM read_parquet($src) WHERE status = 'Closed' AND NOT is_duplicate "
        "AND created_at >= DATE '2025-07-15' AND created_at < DATE '2025-10-01' ORDER BY request_id LIMIT 1500)"
    )
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN {chosen} THEN 'Open' ELSE status END AS status, "
        f"CASE WHEN {chosen} THEN NULL ELSE closed_at END AS closed_at) FROM read_parquet($src)) "
        f"TO '{requests.as_posix()}' (FORMAT parquet)",
        {"src": riverton.table_path("service_requests").as_posix()},
    )
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    moved = citykit.compare_backlog("riverton", "2025-Q4")
    assert moved.now == _old_open(requests.as_posix(), now) == built + 1500
    assert moved.verdict.changed, moved


def scipy_quantile(days, closed, p):
    data = sps.CensoredData(uncensored=days[closed], right=days[~closed])
    sf = sps.ecdf(data).sf
    reached = np.flatnonzero(sf.probabilities <= 1 - p + 1e-10)
    return float(sf.quantiles[reached[0]]) if len(reached) else None


@pytest.mark.parametrize("seed", [5, 6])
def test_the_bootstraps_weighted_p90_equals_scipy_on_repeated_rows(seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"days": np.round(rng.exponential(3, 300), 2), "closed": rng.random(300) < 0.9})
    weights = rng.integers(0, 4, 300)
    repeated = frame.loc[frame.index.repeat(weights)]
    order = np.lexsort((~frame["closed"].to_numpy(bool), frame["days"].to_numpy(float)))
    got = cmp._Sorted(frame).median(np.asarray(weights, float)[order], p=0.9)
    assert got == pytest.approx(scipy_quantile(repeated["days"].to_numpy(), repeated["closed"].to_numpy(), 0.9))


def test_the_p90_interval_finds_a_doubled_tail_and_not_a_same_one():
    rng = np.random.default_rng(11)
    before = pd.DataFrame({"days": rng.exponential(4, 3000), "closed": np.ones(3000, bool)})
    same = pd.DataFrame({"days": rng.exponential(4, 3000), "closed": np.ones(3000, bool)})
    doubled = pd.DataFrame({"days": rng.exponential(8, 3000), "closed": np.ones(3000, bool)})
    low, high = cmp.bootstrap_median_difference(doubled, before, 200, 0.95, 1, p=0.9)
    assert low > 0  # the 90th percentile of an exponential with twice the mean is twice as long
    low, high = cmp.bootstrap_median_difference(same, before, 200, 0.95, 1, p=0.9)
    assert low < 0 < high


def test_the_scorecard_is_kept_per_version_of_the_files(riverton_small, tmp_path, monkeypatch):
    """A batch scores a dataset once (check_dataset is cached), yet a changed file is scored again."""
    home = tmp_path / "home"
    folder = home / "published" / "riverton"
    folder.mkdir(parents=True)
    for path in (riverton_small / "published" / "riverton").iterdir():
        (folder / path.name).symlink_to(path)
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    first = citykit.quality.check_dataset("riverton")
    assert citykit.quality.check_dataset("riverton").to_frame().equals(first.to_frame())
    requests = folder / "service_requests.parquet"
    source = requests.resolve()
    requests.unlink()
    duckdb.execute(  # every request loses its neighborhood
        f"COPY (SELECT * REPLACE (NULL::VARCHAR AS neighborhood) FROM read_parquet($src)) TO '{requests.as_posix()}'",
        {"src": source.as_posix()},
    )
    again = citykit.quality.check_dataset("riverton")
    assert again.get("missing_neighborhood").share == 1.0 != first.get("missing_neighborhood").share
