"""Every teaching module as a lesson, a graded submission and a report: one parametrized suite.

Each module is described once in `MODULES` (its parameters, the mistakes learners make with the advice
the visible tests must give, what its report shows). Every test of a module runs on one xdist worker
(`xdist_group`), so its graded course copy is built once. Tests that only one module needs are in
`test_module_specifics.py`; the production reports (12-14) are in `tests/reports/test_report_notebooks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from notebook_helpers import (
    check_conventions,
    check_full_marks_and_blank,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    import_real_sample,
)

pytestmark = pytest.mark.slow

LESSON_ONLY = ("YOUR", "Exercise")  # text of lesson cells that a report never shows


@dataclass(frozen=True)
class Mistakes:
    """Edits to the solution (solution grade_id -> (old, new)) and the words each failing visible
    test's message must contain (test grade_id -> words); no other test may fail."""

    edits: dict[str, tuple[str, str]]
    advice: dict[str, str]
    student: str = "mistaken"


@dataclass(frozen=True)
class Module:
    parameters: tuple[str, ...]
    mistakes: tuple[Mistakes, ...]
    runs: tuple[tuple[dict, tuple[str, ...]], ...]  # report parameters, and words the page shows
    real_samples: bool = True  # runs on both real 311 samples with no period given
    extra_runs: tuple = field(default=())


DEFAULT_RUNS_WITH = {"period": "2024-Q3", "neighborhood": "Millbrook"}

MODULES: dict[str, Module] = {
    "00-values-to-questions": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "total": ("len(requests)", "len(requests.columns)"),
                    "by-neighborhood": (".value_counts()", ".value_counts(normalize=True)"),
                    "open-share": ('requests["status"].isin(OPEN_STATUSES)', 'requests["status"].eq("Open")'),
                },
                advice={
                    "count-requests": "that is the number of columns",
                    "requests-by-neighborhood": "those are shares",
                    "share-still-open": "counts only status 'Open'",
                },
            ),
            Mistakes(
                {"total": ("len(requests)", "requests.shape")}, {"count-requests": "that is requests.shape"}, "shape"
            ),
        ),
        (({}, ("Still waiting at the as-of date",)), (DEFAULT_RUNS_WITH, ("Still waiting at the as-of date",))),
    ),
    "01-loading-data": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "shape": ("n_rows, n_columns = requests.shape", "n_columns, n_rows = requests.shape"),
                    "channels": (".value_counts(normalize=True)", ".value_counts()"),
                    "missing": ('requests["closed_at"].isna().sum()', 'requests["closed_at"].count()'),
                },
                advice={
                    "shape-and-types": "are swapped",
                    "channel-shares": "those are counts",
                    "missing-close-times": "counts the close times that are present",
                },
            ),
        ),
        (
            ({}, ("without a close time at the as-of date",)),
            (DEFAULT_RUNS_WITH, ("without a close time at the as-of date",)),
        ),
    ),
    "02-selecting-and-filtering": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "top-five": (".head(5)", ".tail(5)"),
                    "online-here": (') & requests["channel"]', ') | requests["channel"]'),
                    "weekend": (
                        '(requests["created_at"].dt.day_of_week >= 5)',
                        'requests["created_at"].dt.day_of_week.isin([6, 7])',
                    ),
                    "agency-channel": ('here = requests[requests["neighborhood"] == place]', "here = requests"),
                },
                advice={
                    "top-request-types": "the five least common",
                    "combine-conditions": "Combine the two masks with & (and), not | (or)",
                    "weekend-requests": "Monday is 0 in pandas",
                    "agency-by-channel": "that counts the whole city",
                },
            ),
        ),
        (
            ({}, ("Requests by agency and channel",)),
            (DEFAULT_RUNS_WITH, ("Requests by agency and channel", "Millbrook")),
        ),
    ),
    "03-data-quality": Module(
        ("dataset", "period"),
        (
            Mistakes(
                edits={
                    "missing-share": ("requests.isna().mean()", "requests.isna().sum()"),
                    "closed-before": (" & real_close).sum()", ").sum()"),
                    "zero-share": (
                        'located = requests[requests["latitude"].notna() & requests["longitude"].notna()]',
                        "located = requests",
                    ),
                },
                advice={
                    "completeness": "those are counts of missing values",
                    "consistency": "that includes placeholder close dates",
                    "validity": "that divides by every request",
                },
            ),
        ),
        # staleness is left out for a past period, so the gates pass
        (
            ({}, ("The quality scorecard", "quality gates pass")),
            ({"period": "2024-Q3"}, ("The quality scorecard", "quality gates pass")),
        ),
    ),
    "04-time-to-close": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={"median-by-type": ('["days_to_close"].median()', '["days_to_close"].mean()')},
                advice={"median-days-to-close": "that is the mean"},
            ),
        ),
        (({}, ("Median days to close",)), (DEFAULT_RUNS_WITH, ("Median days to close", "Millbrook"))),
        real_samples=False,  # checked against SQL in test_module_specifics.py
    ),
    "05-performance-measures": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "agency-table": (
                        'median_days=("days_to_close", "median")',
                        'median_days=("days_to_close", "mean")',
                    ),
                    # open requests counted as missed: the share over every request that is not cancelled
                    "sla-by-type": (
                        'has_target = closed[closed["target"].notna()]',
                        'target = requests["due_at"].fillna(requests["created_at"]'
                        ' + pd.to_timedelta(requests["request_type"].map(SLA_DAYS), unit="D"))\n'
                        'has_target = requests[target.notna() & requests["status"].ne("Cancelled")]'
                        ".assign(target=target)",
                    ),
                    "open-by-agency": (
                        'every_request["status"].isin(OPEN_STATUSES)',
                        'every_request["status"].eq("Open")',
                    ),
                },
                advice={
                    "agency-summary": "those are means",
                    "sla-share-by-type": "counts open requests as missed",
                    "open-beside-closed": "counts only status 'Open'",
                },
            ),
            Mistakes(
                {
                    "agency-table": (
                        'closed.groupby("agency").agg(',
                        'requests.assign(days_to_close=0.0).groupby("agency").agg(',
                    )
                },
                {"agency-summary": "counts every request"},
                "counted-all",
            ),
            Mistakes(  # metrics.yml: the backlog is every request open at the as-of date, whatever its creation date
                {
                    "open-by-agency": (
                        'is_open = every_request["status"].isin(OPEN_STATUSES) & ~every_request["is_duplicate"]\n'
                        "open_by_agency = (\n    every_request[is_open]",
                        'is_open = requests["status"].isin(OPEN_STATUSES) & ~requests["is_duplicate"]\n'
                        "open_by_agency = (\n    requests[is_open]",
                    )
                },
                {"open-beside-closed": "whatever its creation date"},
                "period-only",
            ),
        ),
        (({}, ("Department scorecard",)), (DEFAULT_RUNS_WITH, ("Department scorecard",))),
    ),
    "06-rates-per-resident": Module(
        ("dataset", "period", "request_type"),
        (
            Mistakes(
                edits={
                    "count-requests": ('requests.loc[~requests["is_duplicate"]]', "requests"),
                    "rates-table": (' / rates["population"] * 1000', ' / rates["population"]'),
                    "citywide": (
                        '(~requests["is_duplicate"]).sum()',
                        '(requests["neighborhood"].notna() & ~requests["is_duplicate"]).sum()',
                    ),
                },
                advice={
                    "count-by-neighborhood": "counts duplicate requests too",
                    "rate-per-1000": "requests per resident",
                    "citywide-rate": "leaves out requests with no neighborhood",
                },
            ),
            Mistakes(
                {
                    "rates-table": (
                        'rates["per_1000"] = rates["requests"] / rates["population"] * 1000',
                        'rates["per_1000"] = rates["requests"] / neighborhoods.set_index("neighborhood")["households"] * 1000',
                    ),
                    "citywide": (
                        '(~requests["is_duplicate"]).sum() / neighborhoods["population"].sum() * 1000',
                        '(requests_by_neighborhood / neighborhoods.set_index("neighborhood")["population"]).mean() * 1000',
                    ),
                },
                {"rate-per-1000": "divides by households", "citywide-rate": "average of the neighborhood rates"},
                "denominators",
            ),
        ),
        (
            ({}, ("Requests per 1,000 residents",)),
            ({"period": "2024-07", "request_type": "Illegal Dumping"}, ("Requests per 1,000 residents",)),
        ),
        real_samples=False,  # without population: tested in test_module_specifics.py
    ),
    "07-disaggregation": Module(
        ("dataset", "period"),
        (
            Mistakes(
                edits={
                    "race-counts": (
                        "alone_counts = equity.race_alone(applications)",
                        "alone_counts = equity.race_alone_or_in_combination(applications)",
                    ),
                    "suppressed-table": (
                        "published = equity.suppress(counts).shown",
                        "from citykit import privacy\npublished = privacy.count_table(counts).values",
                    ),
                    "approval-ratio": (
                        "equity.proportion_ratio(a.sum(), len(a), b.sum(), len(b))",
                        "equity.proportion_ratio(b.sum(), len(b), a.sum(), len(a))",
                    ),
                },
                advice={
                    "alone-vs-combination": "counts a person in every category they selected",
                    "suppress-small-cells": "publishing unsuppressed small cells",
                    "rate-ratio-interval": "Put the group's rate on top",
                },
            ),
            Mistakes(
                {
                    "suppressed-table": (
                        "published = equity.suppress(counts).shown",
                        "from citykit import privacy\npublished = privacy.primary_suppression(privacy.count_table(counts)).shown",
                    ),
                    "approval-ratio": (
                        "group_of = equity.race_alone(decided)\n"
                        'a = decided.loc[group_of.eq(GROUP), "approved"]\n'
                        'b = decided.loc[group_of.eq(REFERENCE), "approved"]\n',
                        "group_of = equity.race_alone(applications)\n"
                        'a = applications.loc[group_of.eq(GROUP), "outcome"].eq("Approved")\n'
                        'b = applications.loc[group_of.eq(REFERENCE), "outcome"].eq("Approved")\n',
                    ),
                },
                {"suppress-small-cells": "primary suppression only", "rate-ratio-interval": "withdrawn and pending"},
                "primary-only",
            ),
            Mistakes(
                {
                    "approval-ratio": (
                        "equity.proportion_ratio(a.sum(), len(a), b.sum(), len(b))",
                        "equity.proportion_ratio(a.mean(), len(a), b.mean(), len(b))",
                    )
                },
                {"rate-ratio-interval": "you passed rates or shares for counts"},
                "rates-for-counts",
            ),
            Mistakes(
                {
                    "approval-ratio": (
                        "equity.proportion_ratio(a.sum(), len(a), b.sum(), len(b))",
                        "equity.rate_ratio(a.sum(), len(a), b.sum(), len(b))",
                    )
                },
                {"rate-ratio-interval": "Poisson rate-ratio interval"},
                "poisson-interval",
            ),
        ),
        tuple(
            (
                p,
                (
                    "Suppression audit: <strong>passed</strong>",
                    "alone or in combination (per 100",
                    "Approval rate by gender",
                    "Neighborhood figures leave out people whose neighborhood was generalised away",
                ),
            )
            for p in ({}, {"period": "2024-Q2"})
        ),
        real_samples=False,  # without program records: tested in test_module_specifics.py
    ),
    "08-when-averages-mislead": Module(
        ("dataset", "period", "request_type"),
        (
            Mistakes(
                edits={
                    "terciles": ("pd.qcut(", "pd.cut("),
                    "tercile-medians": ('["days_to_close"].median()', '["days_to_close"].mean()'),
                    "mix-adjusted": (
                        "adjusted_share = shares.mul(weights, axis=0).sum()[TERCILES]",
                        'adjusted_share = rows.groupby("tercile")["met_target"].mean()[TERCILES].astype(float)',
                    ),
                },
                advice={
                    "income-terciles": "bands of equal width",
                    "hidden-by-average": "that is the mean",
                    "mix-adjusted-share": "crude share within target",
                },
            ),
            Mistakes(
                {
                    "tercile-medians": (
                        'of_type = closed[closed["request_type"].eq(request_type)]',
                        "of_type = closed",
                    ),
                    "mix-adjusted": (
                        "adjusted_share = shares.mul(weights, axis=0).sum()[TERCILES]",
                        "adjusted_share = shares.mean()[TERCILES]",
                    ),
                },
                {"hidden-by-average": "takes every request type", "mix-adjusted-share": "equal weights"},
                "unweighted",
            ),
        ),
        (
            ({}, ("mix-adjusted share within target",)),
            ({"period": "2024-Q4", "request_type": "Pothole"}, ("mix-adjusted share within target",)),
        ),
        real_samples=False,  # without incomes: tested in test_module_specifics.py
    ),
    "09-charts-people-can-read": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "by-agency": (
                        '.groupby("agency").size().sort_values(ascending=False)',
                        '.groupby("agency").size()',
                    ),
                    "agency-chart": ('ax.set_title(f"Requests by agency, {scope}")\n', ""),
                    "channel-palette": (
                        "dict(zip(channels, OKABE_ITO))",
                        'dict(zip(channels, ["red", "green", "blue", "orange", "purple", "brown", "pink"]))',
                    ),
                },
                advice={
                    "sorted-bars": "that is sorted by the agencies' names",
                    # the alphabetical order also puts the wrong agency first in the alt text
                    "alt-text": "name the agency with the most requests",
                    "labelled-chart": "has no title",
                    "accessible-colors": "red and green look alike",
                },
            ),
            Mistakes(
                {
                    "alt": (
                        'alt_text = (f"Bar chart',
                        'alt_text = "Bar chart of requests by agency."\n_unused = (f"Bar chart',
                    )
                },
                {"alt-text": "says what the chart is but not what it shows"},
                "generic-alt",
            ),
        ),
        # the figures carry alt text: the learner's for the agency chart, the module's for the channels
        tuple(
            (
                p,
                (
                    "How residents reach the city",
                    'alt="Bar chart of the number of 311 requests by agency',
                    'alt="Bar chart of the share of requests by channel',
                ),
            )
            for p in ({}, DEFAULT_RUNS_WITH)
        ),
    ),
    "10-caveats-and-strategy": Module(
        ("dataset", "period"),
        (
            Mistakes(
                edits={
                    "sla-intervals": ('method="wilson")', 'method="normal")'),
                    "applications-rate": ('["households"] * 1000', '["population"] * 1000'),
                    "caveats-table": ('caveats["rows"] / len(requests)', 'caveats["rows"] / len(requests) * 100'),
                },
                advice={
                    "wilson-intervals": "normal-approximation (Wald) interval",
                    "right-denominator": "divide by households",
                    "caveat-table": "looks like a percentage",
                },
            ),
            Mistakes(
                {
                    "sla-intervals": ("alpha=0.05", "alpha=0.10"),
                    "caveats-table": ('caveats["rows"] / len(requests)', 'caveats["rows"] / caveats["rows"].sum()'),
                },
                {"wilson-intervals": "90% interval", "caveat-table": "divides by the number of flags"},
                "bases",
            ),
        ),
        tuple((p, ("flag_placeholder_coords", "95% Wilson")) for p in ({}, {"period": "2024-03"})),
        real_samples=False,  # without households or applications: tested in test_module_specifics.py
    ),
    "11-capstone": Module(
        ("dataset", "period", "neighborhood"),
        (
            Mistakes(
                edits={
                    "gate-check": (
                        "gates_pass = bool(card.passed)",
                        "gates_pass = all(c.failing == 0 for c in card.checks)",
                    ),
                    "summary-fn": ('"median_days": days.median()', '"median_days": days.mean()'),
                    "apply-summary": (").T[SUMMARY]", ")"),
                },
                advice={
                    "quality-gates": "asks every check to find nothing",
                    "summary-function": "that is the mean",
                    "by-neighborhood": "transpose it",
                },
            ),
            Mistakes(
                {
                    "summary-fn": ('counted["status"].isin(OPEN_STATUSES)', 'counted["status"].eq("Open")'),
                    "apply-summary": ("performance_summary(group)", "performance_summary(requests)"),
                },
                {"summary-function": "counts only status 'Open'", "by-neighborhood": "citywide median in every row"},
                "citywide",
            ),
        ),
        (
            ({}, ("Data quality: all gates pass",)),
            ({"neighborhood": "Millbrook", "period": "2025-07"}, ("Data quality: all gates pass",)),
        ),
        real_samples=False,  # states its quality: tested in test_module_specifics.py
    ),
}


def in_group(module: str, *values, **kwargs) -> pytest.param:
    """A parameter set of `module`'s tests, on the xdist worker that holds its graded course."""
    return pytest.param(module, *values, marks=pytest.mark.xdist_group(module), **kwargs)


@pytest.mark.parametrize("module", [in_group(m, id=m) for m in MODULES])
def test_source_notebook_follows_the_conventions(module):
    check_conventions(module, MODULES[module].parameters)


@pytest.mark.parametrize("module", [in_group(m, id=m) for m in MODULES])
def test_student_version_has_no_solutions_or_hidden_tests(graded_course_of, module):
    check_student_version(graded_course_of(module), module)


@pytest.mark.parametrize("module", [in_group(m, id=m) for m in MODULES])
def test_solution_gets_every_autograded_point_and_a_blank_gets_none(graded_course_of, module):
    check_full_marks_and_blank(graded_course_of(module), module)


@pytest.mark.parametrize(
    ("module", "mistakes"),
    [in_group(m, k, id=f"{m}-{k.student}") for m, spec in MODULES.items() for k in spec.mistakes],
)
def test_catalogued_mistakes_fail_visible_tests_that_name_them(graded_course_of, tmp_path, module, mistakes):
    check_named_mistakes(graded_course_of(module), module, tmp_path, mistakes.edits, mistakes.advice, mistakes.student)


@pytest.mark.parametrize(
    ("module", "parameters", "shows"),
    [
        in_group(m, p, s, id=f"{m}-{'-'.join(p.values()) or 'defaults'}")
        for m, spec in MODULES.items()
        for p, s in spec.runs
    ],
)
def test_runs_as_a_report_without_code(riverton, tmp_path, module, parameters, shows):
    html = check_production_run(module, parameters, tmp_path)
    for words in shows:
        assert words in html, f"{module}: the report does not show {words!r}"
    for words in LESSON_ONLY:
        assert words not in html, f"{module}: the report shows lesson text {words!r}"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("module", "sample"),
    [in_group(m, s, id=f"{m}-{s}") for m, spec in MODULES.items() if spec.real_samples for s in ("sf", "baltimore")],
)
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, module, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(module, {"dataset": name, "period": None}, tmp_path / "out")
