"""Ratios that fit the measure: a ratio of two proportions (Katz log, Koopman score) and a ratio of
two Poisson rates, each checked against an independent implementation, never the same formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import binomtest, chi2, norm
from statsmodels.stats.contingency_tables import Table2x2

from citykit.errors import CitykitError
from citykit.standards import equity


@st.composite
def two_by_two(draw, max_n=400):
    """Random 2×2 tables with zeros, full groups and tiny groups."""
    n_a = draw(st.one_of(st.integers(1, 5), st.integers(1, max_n)))
    n_b = draw(st.one_of(st.integers(1, 5), st.integers(1, max_n)))
    a = draw(st.one_of(st.just(0), st.just(n_a), st.integers(0, n_a)))
    b = draw(st.one_of(st.just(0), st.just(n_b), st.integers(0, n_b)))
    return a, n_a, b, n_b


@settings(max_examples=300, deadline=None)
@given(two_by_two())
def test_katz_ratio_matches_statsmodels_table2x2_including_empty_cells(table):
    a, n_a, b, n_b = table
    result = equity.proportion_ratio(a, n_a, b, n_b, method="log")
    if a == 0 and b == 0:
        assert math.isnan(result.estimate) and math.isnan(result.low)
        return
    # Table2x2 puts 0.5 in empty cells (shift_zeros), its own code path for the log interval
    reference = Table2x2(np.array([[a, n_a - a], [b, n_b - b]], dtype=float))
    low, high = reference.riskratio_confint(alpha=0.05)
    assert result.estimate == pytest.approx(reference.riskratio, rel=1e-9)
    assert (result.low, result.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert result.p_value == pytest.approx(reference.log_riskratio_pvalue(), rel=1e-7, abs=1e-12)
    assert result.corrected == (0 in (a, n_a - a, b, n_b - b))


def test_the_issue_example_700_of_1000_against_750_of_1000():
    result = equity.proportion_ratio(700, 1000, 750, 1000)
    reference = Table2x2(np.array([[700, 300], [750, 250]]))
    low, high = reference.riskratio_confint()
    assert (round(low, 3), round(high, 3)) == (0.884, 0.985)
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    assert result.p_value < 0.05  # the Poisson interval for two counts said 0.84-1.03, p = 0.19
    poisson = equity.rate_ratio(700, 1000, 750, 1000)
    assert poisson.low < 0.85 and poisson.high > 1.0


def koopman_by_inversion(a, n_a, b, n_b, confidence=0.95):
    """Koopman's score interval from its definition: the ratios θ whose Pearson chi-square, with
    the 2×2 table fitted by maximum likelihood under p_a = θ·p_b (found numerically), stays below
    the chi-square quantile. Written from scratch with scipy; no closed form."""
    critical = chi2.ppf(confidence, 1)

    def statistic(theta):
        def negative_loglik(p_b):
            p_a = theta * p_b
            eps = 1e-300
            return -(
                a * math.log(p_a + eps)
                + (n_a - a) * math.log(1 - p_a + eps)
                + b * math.log(p_b + eps)
                + (n_b - b) * math.log(1 - p_b + eps)
            )

        upper = min(1.0, 1.0 / theta)
        p_b = minimize_scalar(
            negative_loglik, bounds=(1e-12, upper - 1e-12), method="bounded", options={"xatol": 1e-14}
        ).x
        p_a = theta * p_b
        observed = [a, n_a - a, b, n_b - b]
        expected = [n_a * p_a, n_a * (1 - p_a), n_b * p_b, n_b * (1 - p_b)]
        return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=False) if e > 0) - critical

    estimate = (a / n_a) / (b / n_b)
    low = brentq(statistic, estimate * 1e-4 if a else 1e-9, estimate * (1 - 1e-9), xtol=1e-12) if a else 0.0
    high = brentq(statistic, estimate * (1 + 1e-9), estimate * 1e4, xtol=1e-12)
    return low, high


@st.composite
def inner_two_by_two(draw, max_n=60):
    """Tables without empty cells (a bounded score interval), tiny groups included."""
    n_a, n_b = draw(st.integers(2, max_n)), draw(st.integers(2, max_n))
    return draw(st.integers(1, n_a - 1)), n_a, draw(st.integers(1, n_b - 1)), n_b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inner_two_by_two())
def test_koopman_score_interval_matches_an_inversion_written_from_its_definition(table):
    a, n_a, b, n_b = table
    result = equity.proportion_ratio(a, n_a, b, n_b, method="score")
    low, high = koopman_by_inversion(a, n_a, b, n_b)
    assert result.method == "score"
    assert result.low == pytest.approx(low, rel=1e-4, abs=1e-7)
    assert result.high == pytest.approx(high, rel=1e-4)


def test_small_groups_use_the_standards_small_group_method():
    std = equity.load_disaggregation().disparity
    assert std.small_group_method == "score" and std.small_group_below > 0
    assert equity.proportion_ratio(3, std.small_group_below - 1, 40, 90).method == "score"
    assert equity.proportion_ratio(30, std.small_group_below, 40, 90).method == "log"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.floats(1, 1e6), st.integers(0, 3000), st.floats(1, 1e6))
def test_rate_ratio_matches_an_independent_poisson_computation(a, exposure_a, b, exposure_b):
    result = equity.rate_ratio(a, exposure_a, b, exposure_b)
    if a == 0 and b == 0:
        assert math.isnan(result.estimate)
        return
    a_, b_ = (a + 0.5, b + 0.5) if 0 in (a, b) else (a, b)
    log_rr = math.log((a_ / exposure_a) / (b_ / exposure_b))
    se = math.sqrt(1 / a_ + 1 / b_)
    z = norm.ppf(0.975)
    assert result.estimate == pytest.approx(math.exp(log_rr), rel=1e-9)
    assert result.low == pytest.approx(math.exp(log_rr - z * se), rel=1e-9)
    assert result.high == pytest.approx(math.exp(log_rr + z * se), rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(log_rr) / se), rel=1e-6, abs=1e-300)


@pytest.mark.parametrize(("a", "exposure_a", "b", "exposure_b"), [(300, 10_000, 200, 12_000), (1200, 5e5, 1500, 4e5)])
def test_rate_ratio_agrees_with_the_exact_conditional_binomial_for_large_counts(a, exposure_a, b, exposure_b):
    # given a + b events, a is binomial with p = λa·Ea / (λa·Ea + λb·Eb); invert scipy's exact interval
    result = equity.rate_ratio(a, exposure_a, b, exposure_b)
    ci = binomtest(a, a + b).proportion_ci(confidence_level=0.95, method="exact")
    to_ratio = lambda p: p / (1 - p) * exposure_b / exposure_a  # noqa: E731
    assert result.low == pytest.approx(to_ratio(ci.low), rel=0.02)
    assert result.high == pytest.approx(to_ratio(ci.high), rel=0.02)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: equity.rate_ratio(0.7, 1, 0.75, 1), "got 0.7"),
        (lambda: equity.proportion_ratio(0.7, 1, 0.75, 1), "got 0.7"),
        (lambda: equity.proportion_ratio(12, 10, 5, 10), "a = 12 is more than its group of 10"),
        (lambda: equity.proportion_ratio(-1, 10, 5, 10), "got -1"),
        (lambda: equity.rate_ratio(3, -5, 4, 10), "got -5"),
    ],
)
def test_inputs_are_validated_with_one_line_saying_what_was_passed(call, message):
    with pytest.raises(CitykitError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_disparities_pick_the_ratio_by_the_declared_kind_and_show_the_adverse_ratio():
    rng = np.random.default_rng(4)
    n = 3000
    group = rng.choice(["White", "Black or African American", "Asian"], n, p=[0.5, 0.35, 0.15])
    approved = rng.random(n) < np.where(group == "Black or African American", 0.62, 0.72)
    df = pd.DataFrame({"group": group, "approved": approved})
    table = equity.disaggregate(df, by=["group"], measure="approved")
    result = equity.disparities(table, reference="White").data.set_index("group")
    counts = df.groupby("group")["approved"].agg(["sum", "size"])
    black, white = counts.loc["Black or African American"], counts.loc["White"]
    favourable = Table2x2(
        np.array([[black["sum"], black["size"] - black["sum"]], [white["sum"], white["size"] - white["sum"]]])
    )
    adverse = Table2x2(
        np.array([[black["size"] - black["sum"], black["sum"]], [white["size"] - white["sum"], white["sum"]]])
    )
    row = result.loc["Black or African American"]
    assert row["ratio_kind"] == "proportion"
    assert (row["rr_low"], row["rr_high"]) == tuple(pytest.approx(v) for v in favourable.riskratio_confint())
    assert (row["adverse_low"], row["adverse_high"]) == tuple(pytest.approx(v) for v in adverse.riskratio_confint())
    assert row["adverse_ratio"] > 1 > row["rate_ratio"]
    # requests per resident: a rate over exposure, compared as Poisson counts
    requests = pd.DataFrame({"neighborhood": ["A"] * 300 + ["B"] * 500, "flag": [True] * 800})
    rates = equity.disaggregate(
        requests, by=["neighborhood"], measure="flag", denominator={"A": 10_000, "B": 12_000}, people=False
    )
    by_rate = equity.disparities(rates, reference="B").data.set_index("neighborhood")
    assert by_rate.loc["A", "ratio_kind"] == "rate"
    assert by_rate.loc["A", "rr_low"] == pytest.approx(equity.rate_ratio(300, 10_000, 500, 12_000).low)
