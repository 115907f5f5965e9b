"""Figures a director can trust (issue 12), checked on running reports.

- every production report and module 04 run on the real samples with no period given: the period
  is the latest complete one before the dataset's as-of date, in the manifest and the page;
- a report runs under MPLBACKEND=Agg and still draws its figures;
- the backlog on report 12's page (totals and age buckets, citywide and for one neighborhood) equals
  DuckDB's count on the published parquet under metrics.yml's backlog rule;
- a partial period is labelled "partial (to DATE)" on the page and in the manifest;
- the batched bootstrap's Kaplan-Meier medians equal statsmodels' on repeated rows, and
  compare_periods is quick enough for a report.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import duckdb
import nbformat
import numpy as np
import pandas as pd
import pytest
from notebook_helpers import import_real_sample, table_rows

from citykit.data import registry
from citykit.reports.run import run_report
from citykit.standards import load_metrics

pytestmark = pytest.mark.slow

MODULES = ["04-time-to-close", "12-service-performance", "13-equity-report", "14-quality-scorecard"]


def _default_kind(module: str) -> str | None:
    """course.yml's period default, "latest month|quarter|year" -> the kind; None: all the data."""
    from citykit.lessons.course import find_module

    default = next(p.default for p in find_module(module).parameters if p.type == "period")
    found = re.fullmatch(r"latest (month|quarter|year)", str(default or ""))
    return found[1] if found else None


def _latest_complete(kind: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the latest whole month/quarter/year ending on or before `as_of` (written
    here by walking back from the day after the as-of date, not with citykit.data.periods)."""
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    after = as_of + dt.timedelta(days=1)
    month = after.month
    while (month - 1) % months:
        month -= 1
    end = dt.date(after.year, month, 1)  # where the unit holding `after` starts
    start_month, start_year = end.month - months, end.year
    while start_month < 1:
        start_month += 12
        start_year -= 1
    return dt.date(start_year, start_month, 1), end - dt.timedelta(days=1)


def _page_and_manifest(result) -> tuple[str, dict]:
    page = result.html.read_text(encoding="utf-8")
    return page, json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))


def _no_errors(result) -> None:
    executed = nbformat.read(result.notebook, as_version=4)
    errors = [o.get("evalue") for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors


# ------------------------------------------------------------------ default periods on real data


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
@pytest.mark.parametrize("module", MODULES)
def test_with_no_period_given_a_report_covers_the_latest_complete_period(module, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    as_of = registry.get(name).as_of
    result = run_report(module, {"dataset": name}, tmp_path / "out")
    _no_errors(result)
    page, manifest = _page_and_manifest(result)
    kind = _default_kind(module)
    assert kind is not None or module == "14-quality-scorecard"
    if kind is None:  # the scorecard covers all the data unless told
        assert manifest["period"] is None
        return
    first, last = _latest_complete(kind, as_of)
    period = manifest["period"]
    assert (period["start"], period["last_day"], period["partial"]) == (first.isoformat(), last.isoformat(), False)
    assert last <= as_of < last + dt.timedelta(days=370)
    assert f"<strong>Period:</strong> {period['label']}: {first.day} {first:%B %Y} to {last.day} {last:%B %Y}" in page
    assert "partial" not in page.split("<strong>Generated:")[0]


# ------------------------------------------------------------------ MPLBACKEND=Agg


def test_a_report_under_mplbackend_agg_still_draws_its_figures(riverton, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    result = run_report("time-to-close", {"period": "2025-Q4"}, tmp_path)
    _no_errors(result)
    page, _ = _page_and_manifest(result)
    assert page.count("data:image/png;base64") >= 1


# ------------------------------------------------------------------ the backlog on report 12's page


def _backlog_in_duckdb(riverton, neighborhood: str | None) -> pd.Series:
    """metrics.yml's backlog on the published parquet: open status, not a duplicate, any creation
    date, aged in whole days at midnight after the as-of date, by bucket (inclusive bounds)."""
    rules = load_metrics()
    statuses = ", ".join(f"'{s}'" for s in rules["time_to_close"]["open_statuses"])
    now = pd.Timestamp(riverton.as_of) + pd.Timedelta(days=1)
    ages = duckdb.execute(
        f"SELECT CAST(floor(epoch(CAST(? AS TIMESTAMP) - created_at) / 86400) AS INTEGER) AS age "
        f"FROM read_parquet('{riverton.table_path('service_requests').as_posix()}') "
        f"WHERE status IN ({statuses}) AND NOT is_duplicate AND (CAST(? AS VARCHAR) IS NULL OR neighborhood = ?)",
        [now.to_pydatetime(), neighborhood, neighborhood],
    ).df()["age"]  # fmt: skip
    counts = {}
    for b in rules["backlog"]["buckets"]:
        inside = ages >= b["min"]
        if b["max"] is not None:
            inside &= ages <= b["max"]
        counts[b["label"]] = int(inside.sum())
    return pd.Series(counts)


@pytest.mark.parametrize("neighborhood", [None, "Millbrook"])
def test_the_backlog_on_the_page_is_every_request_open_at_the_as_of_date(riverton, tmp_path, neighborhood):
    params = {"period": "2025-Q4"} | ({"neighborhood": neighborhood} if neighborhood else {})
    result = run_report("service-performance", params, tmp_path)
    page, _ = _page_and_manifest(result)
    expected = _backlog_in_duckdb(riverton, neighborhood)
    assert expected.sum() > 0 and expected.iloc[-1] > 0  # requests created before 2025 are still open
    for label, count in expected.items():
        rows = table_rows(page, html.escape(label))
        assert rows and rows[0][0] == f"{count:,}", (label, rows)  # a count for people: 2,525
    old = int(expected[[b["label"] for b in load_metrics()["backlog"]["buckets"] if b["min"] > 90]].sum())
    text = re.sub(r"<[^>]+>", "", page)
    assert f"{int(expected.sum()):,} requests open, whatever their creation date" in text
    assert f"{old:,} of them open for more than 90 days" in text
    assert load_metrics()["backlog"]["opened_in_period_label"] in text


# ------------------------------------------------------------------ a partial period


def test_a_partial_period_is_labelled_on_the_page_and_in_the_manifest(riverton, tmp_path):
    as_of = riverton.as_of
    start = dt.date(as_of.year, as_of.month, 1)
    last = (pd.Timestamp(start) + pd.DateOffset(months=2) - pd.Timedelta(days=1)).date()  # runs past the as-of date
    period = f"{start}/{last}"
    result = run_report("service-performance", {"period": period}, tmp_path)
    _no_errors(result)
    page, manifest = _page_and_manifest(result)
    label = f"partial (to {as_of.day} {as_of:%B %Y})"
    assert manifest["period"]["partial"] is True and manifest["period"]["last_day"] == as_of.isoformat()
    assert manifest["period"]["title"] == f"{period}, {label}"
    header = page.split("<strong>Generated:")[0]
    assert f"{period}, {label}" in header and "same days of it" in header
    assert "this period is partial" in page  # what changed compares the same days of the period before


# ------------------------------------------------------------------ the comparison's statistics


def test_batched_bootstrap_medians_equal_statsmodels_on_repeated_rows():
    from statsmodels.duration.survfunc import SurvfuncRight

    from citykit.data import comparisons as cmp

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"days": np.round(rng.exponential(4, 300), 1), "closed": rng.random(300) < 0.7})
    data = cmp._Sorted(frame)
    weights = np.stack([np.bincount(rng.integers(0, 300, 300), minlength=300) for _ in range(25)]).astype(float)
    got = data.medians(weights)
    for row, median in zip(weights, got, strict=True):
        repeat = row.astype(int)
        curve = SurvfuncRight(np.repeat(data.days, repeat), np.repeat(data.closed, repeat).astype(int))
        surv, times = np.asarray(curve.surv_prob), np.asarray(curve.surv_times)
        reached = np.flatnonzero(surv <= 0.5 + 1e-10)
        assert median == (pytest.approx(times[reached[0]]) if len(reached) else None)


def test_compare_periods_gives_a_verdict_for_the_median(riverton):
    """(Its speed is measured by benchmarks/bench_reports.py, not asserted here.)"""
    from citykit.data.changes import compare_periods

    result = compare_periods("riverton", "2025-Q4")
    assert result.current.median is not None and result.verdicts["median"].reason
