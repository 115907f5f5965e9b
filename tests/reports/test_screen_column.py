"""The "Beyond the standard's screen" column of a comparison (privacy walk 20b, F4): a group with no ratio (its
counts hidden, or no one in it) reads "Not compared", never "No" (a verdict on a ratio nobody computed); a compared
group reads Yes or No by the standard's rule, recomputed here from the counts with scipy (Katz log ratio and Wald
test for groups of 30 or more, Holm by hand), the thresholds read from the standard's YAML."""

from __future__ import annotations

import csv
import io
import math

import pandas as pd
import yaml
from scipy.stats import norm

from citykit import equity, paths
from citykit.reports import tables

# gender -> (decided applicants, approved); Man is the standard's reference group for gender
GROUPS = {
    "Woman": (200, 80),  # 0.40 / 0.80 = 0.50: beyond 0.8, and far from chance
    "Man": (400, 320),
    "Nonbinary": (0, 0),  # no one: a row of 0, no ratio
    "Another gender": (6, 3),  # 1 to 10 people: hidden, no ratio
    "Declined": (120, 93),  # 0.775 / 0.80 = 0.97: inside the screen
    "Not shown (privacy)": (24, 15),  # the smallest shown group: hidden too, so the small one cannot be worked out
}


def _rows() -> pd.DataFrame:
    rows = [{"gender": g, "approved": i < a} for g, (n, a) in GROUPS.items() for i in range(n)]
    return pd.DataFrame(rows)


def _standard() -> dict:
    path = paths.course_root() / "curriculum" / "standards" / "disaggregation.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["disparity"]


def _expected(compared: list[str]) -> dict[str, str]:
    """Yes / No for each compared group: ratio at or beyond the thresholds and Holm-corrected p < alpha."""
    rules = _standard()
    b, n_b = GROUPS["Man"][1], GROUPS["Man"][0]
    ratio, p = {}, {}
    for g in compared:
        n_a, a = GROUPS[g]
        assert min(n_a, n_b) >= 30 and 0 < a < n_a  # Katz log interval and Wald test, no empty cell
        ratio[g] = (a / n_a) / (b / n_b)
        se = math.sqrt(1 / a - 1 / n_a + 1 / b - 1 / n_b)
        p[g] = 2 * norm.sf(abs(math.log(ratio[g])) / se)
    holm, running = {}, 0.0
    for rank, g in enumerate(sorted(p, key=p.get)):  # step-down, made monotone
        running = max(running, min(1.0, (len(p) - rank) * p[g]))
        holm[g] = running
    below, above, alpha = (rules["notable"][k] for k in ("ratio_below", "ratio_above", "alpha"))
    return {g: "Yes" if (ratio[g] <= below or ratio[g] >= above) and holm[g] < alpha else "No" for g in compared}


def test_a_group_with_no_ratio_is_not_compared_and_a_compared_group_gets_its_verdict():
    table = equity.disaggregate(_rows(), by=["gender"], measure="approved", per=100, title="By gender")
    comparison = equity.disparities(table, reference="Man")
    _, record = tables.disaggregated_record(comparison, "approval ratios by gender")
    rows = list(csv.reader(io.StringIO(record["csv"])))
    head, body = rows[0], {row[0]: row for row in rows[1:]}
    screen = head.index("Beyond the standard's screen")
    ratio = head.index("Ratio to the reference group")
    assert set(body) >= set(GROUPS), body  # the zero row is published
    hidden = {g for g in GROUPS if body[g][ratio] == ""}
    # what this test is about: a group of no one, a hidden group and its complementary cell are not compared
    assert hidden == {"Nonbinary", "Another gender", "Not shown (privacy)"}, body
    for g in hidden:
        assert body[g][screen] == "Not compared", body[g]
    assert body["Man"][screen] == "" and body["Man"][ratio] == "reference group"
    expected = _expected(["Woman", "Declined"])
    assert expected == {"Woman": "Yes", "Declined": "No"}  # the data give one of each
    for g, verdict in expected.items():
        assert body[g][screen] == verdict, body[g]
        assert float(body[g][ratio]) == round((GROUPS[g][1] / GROUPS[g][0]) / (320 / 400), 2)
    page = tables.table_html(record)
    assert ">Not compared<" in page and page.count(">No<") == 1  # only Declined reads No on the page
