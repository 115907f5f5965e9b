"""k-anonymity, sensitive coordinates, small-cell suppression and its audit (citykit.standards: kanonymity, sensitive, suppression; citykit.privacy)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from citykit.errors import CitykitError
from citykit.standards import equity, kanonymity, load_disaggregation, sensitive, suppression

CATEGORIES = ["aian", "asian", "black", "hispanic", "mena", "nhpi", "white"]
RACE_COLS = [f"race_{c}" for c in CATEGORIES] + ["race_not_reported", "race_declined"]
QI = ["neighborhood", "council_district", "gender", "language", *RACE_COLS]  # the standard's, as in these frames
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
GENDERS = ["Woman", "Man", "Nonbinary", "Another gender", "Declined"]


def person(
    i: int, neighborhood: str, district: int, age: str, gender: str, races: list[str], language: str = "English"
) -> dict:
    row = {
        "application_id": i,
        "neighborhood": neighborhood,
        "council_district": district,
        "age_band": age,  # not a quasi-identifier in the rows any more (aggregate tables only): never touched
        "gender": gender,
        "language": language,
    }
    for col in RACE_COLS:
        row[col] = col.removeprefix("race_") in races
    return row


def applications(n: int, seed: int, neighborhoods: int = 30) -> pd.DataFrame:
    """Random person-level rows shaped like program_applications (independent of the generator)."""
    rng = np.random.default_rng(seed)
    nb = rng.integers(0, neighborhoods, n)
    df = pd.DataFrame(
        {
            "application_id": np.arange(n),
            "neighborhood": [f"Neighborhood {i}" for i in nb],
            "council_district": nb % 8 + 1,
            "age_band": rng.choice(AGE_BANDS, n, p=[0.15, 0.25, 0.2, 0.15, 0.15, 0.1]),
            "gender": rng.choice(GENDERS, n, p=[0.5, 0.43, 0.03, 0.02, 0.02]),
            "language": rng.choice(["English", "Spanish", "Arabic"], n, p=[0.85, 0.12, 0.03]),
        }
    )
    p = [0.01, 0.12, 0.2, 0.25, 0.03, 0.01, 0.38]
    first = rng.choice(7, n, p=p)
    second = np.where(rng.random(n) < 0.1, rng.choice(7, n, p=p), -1)
    missing = rng.random(n)
    for i, code in enumerate(CATEGORIES):
        df[f"race_{code}"] = ((first == i) | (second == i)) & (missing >= 0.06)
    df["race_not_reported"] = missing < 0.03
    df["race_declined"] = (missing >= 0.03) & (missing < 0.06)
    return df


def group_sizes(df: pd.DataFrame) -> pd.Series:
    """Equivalence-class size per row, by a plain string key (independent of the module's groupby)."""
    key = df[QI].astype("string").fillna("<null>").agg("|".join, axis=1)
    return key.map(key.value_counts())


# -- k-anonymity -------------------------------------------------------------------------------


def test_every_class_reaches_k_and_suppressed_rows_are_counted():
    df = applications(6000, seed=3)
    before = df.copy()
    out, report = kanonymity.k_anonymize(df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert report.k == 5
    assert group_sizes(out).min() >= 5
    assert report.smallest_class == group_sizes(out).min()
    assert report.rows_in == 6000
    assert report.rows_out == len(out)
    assert report.suppressed == 6000 - len(out)
    assert set(out["application_id"]) <= set(df["application_id"])
    assert sum(report.generalised.values()) > 0  # this data needs generalising


def test_rows_in_large_classes_are_untouched():
    df = applications(6000, seed=4)
    big = df.loc[group_sizes(df) >= 5]
    out, _ = kanonymity.k_anonymize(df)
    kept = out.set_index("application_id").loc[big["application_id"], QI]
    expected = big.set_index("application_id")[QI]
    assert (kept.astype("string").fillna("<null>") == expected.astype("string")).all().all()


def test_generalisation_order_geography_first_race_last():
    df = applications(4000, seed=5, neighborhoods=60)
    out, report = kanonymity.k_anonymize(df)
    merged = out.merge(df, on="application_id", suffixes=("", "_orig"))
    race_touched = merged[[f"race_{c}" for c in CATEGORIES]].isna().any(axis=1)
    gender_touched = merged["gender"].astype("string").fillna("<null>") != merged["gender_orig"]
    language_touched = merged["language"].isna()
    citywide = merged["neighborhood"].isna() & merged["council_district"].isna()
    # a later dimension is only touched once every earlier one is fully generalised
    assert citywide[gender_touched].all()
    assert merged.loc[language_touched, "gender"].isna().all() and citywide[language_touched].all()
    assert merged.loc[race_touched, ["gender", "language"]].isna().all().all()
    assert citywide[race_touched].all()
    assert (merged["age_band"] == merged["age_band_orig"]).all()  # not a quasi-identifier: never generalised
    # neighborhood is dropped before the district
    assert not (merged["neighborhood"].notna() & merged["council_district"].isna()).any()
    assert report.generalised["neighborhood_to_district"] > 0
    assert list(report.generalised) == [
        "neighborhood_to_district",
        "district_to_citywide",
        "gender_merge_nonbinary_another",
        "gender_not_shown",
        "language_not_shown",
        "race_combinations_to_multiracial",
    ]


def test_small_groups_merge_into_their_district():
    rows = [person(i, "Elm", 1, "25-34", "Woman", ["asian"]) for i in range(4)]
    rows.append(person(4, "Oak", 1, "25-34", "Woman", ["asian"]))
    rows += [person(10 + i, "Elm", 1, "35-44", "Man", ["white"]) for i in range(6)]
    out, report = kanonymity.k_anonymize(pd.DataFrame(rows))
    assert report.suppressed == 0 and report.rows_out == 11
    assert report.generalised["neighborhood_to_district"] == 5
    assert sum(report.generalised.values()) == 5
    moved = out[out["age_band"] == "25-34"]
    assert moved["neighborhood"].isna().all() and (moved["council_district"] == 1).all()
    assert (out.loc[out["age_band"] == "35-44", "neighborhood"] == "Elm").all()


def test_outcome_rule_reads_only_decided_members():
    """Standard 1.4.2: a group of at most 20 whose decided members (not Pending, not null) share one
    outcome, or are none, is too small; expected rows worked out by hand from the construction."""

    def group(first_id: int, neighborhood: str, district: int, gender: str, outcomes: list) -> list[dict]:
        rows = [person(first_id + i, neighborhood, district, "25-34", gender, ["black"]) for i in range(len(outcomes))]
        return [row | {"outcome": outcome} for row, outcome in zip(rows, outcomes, strict=True)]

    rows = (
        group(0, "Elm", 1, "Woman", ["Denied"] + ["Pending"] * 6)  # uniform: alone in its neighborhood...
        + group(100, "Birch", 1, "Woman", ["Approved"] + ["Pending"] * 5)  # ...as is this; district 1 mixes them
        + group(200, "Oak", 3, "Woman", ["Approved", "Denied"] + ["Pending"] * 5)  # two decided outcomes: kept
        + group(300, "Cedar", 2, "Woman", ["Approved"] * 2 + ["Pending"] * 5)  # uniform everywhere: dropped
        + group(400, "Dale", 4, "Man", ["Pending"] * 5 + [None])  # nobody decided: dropped
    )
    df = pd.DataFrame(rows)
    out, report = kanonymity.k_anonymize(df)
    ids = set(out["application_id"])
    assert ids == set(range(7)) | set(range(100, 106)) | set(range(200, 207))
    assert report.suppressed == 13 and report.rows_out == 20
    merged = out[out["application_id"] < 200]
    assert merged["neighborhood"].isna().all() and (merged["council_district"] == 1).all()
    oak = out[out["application_id"] >= 200]
    assert (oak["neighborhood"] == "Oak").all() and (oak["gender"] == "Woman").all()
    assert report.generalised["neighborhood_to_district"] == 13 + 7 + 6  # Elm, Birch, Cedar, Dale
    # and the published result, grouped by a plain key: no group of <= 20 with one decided outcome
    key = out[QI].astype("string").fillna("<null>").agg("|".join, axis=1)
    decided = out["outcome"].where(out["outcome"] != "Pending")
    assert (decided.groupby(key).nunique() >= 2).all()


def test_rare_combinations_become_multiracial_and_lone_rows_are_suppressed():
    combos = [["asian", "white"], ["black", "white"], ["hispanic", "white"], ["aian", "black"], ["asian", "nhpi"]]
    rows = [person(i, f"N{i}", i + 1, AGE_BANDS[i], "Woman", races) for i, races in enumerate(combos)]
    rows.append(person(99, "N9", 9, "65+", "Man", ["mena"]))  # alone with a single category: dropped
    out, report = kanonymity.k_anonymize(pd.DataFrame(rows))
    assert report.suppressed == 1 and 99 not in set(out["application_id"])
    assert report.generalised["race_combinations_to_multiracial"] == 5
    seven = [f"race_{c}" for c in CATEGORIES]
    assert out[seven].isna().all().all()
    assert (~out["race_not_reported"]).all() and (~out["race_declined"]).all()
    # every earlier step ran first: geography, gender and language are all generalised away
    assert out[["neighborhood", "council_district", "gender", "language"]].isna().all().all()
    assert report.smallest_class == 5


def test_explicit_quasi_identifiers_and_k():
    df = applications(2000, seed=6)
    out, report = kanonymity.k_anonymize(df, quasi_identifiers=["neighborhood", "council_district", "age_band"], k=20)
    sizes = out.groupby(["neighborhood", "council_district", "age_band"], dropna=False).size()
    assert sizes.min() >= 20
    assert report.generalised["gender_not_shown"] == 0
    assert out["gender"].notna().all()
    with pytest.raises(CitykitError, match="not in the table"):
        kanonymity.k_anonymize(df, quasi_identifiers=["ward"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 400), seed=st.integers(0, 10_000), k=st.integers(2, 8))
def test_k_anonymity_property(n, seed, k):
    df = applications(n, seed=seed, neighborhoods=12)
    out, report = kanonymity.k_anonymize(df, k=k)
    if len(out):
        assert group_sizes(out).min() >= k
    assert report.rows_out + report.suppressed == n == report.rows_in


def test_forty_thousand_rows_in_a_couple_of_seconds():
    df = applications(40_000, seed=7, neighborhoods=40)
    started = time.perf_counter()
    out, _report = kanonymity.k_anonymize(df)
    elapsed = time.perf_counter() - started
    assert group_sizes(out).min() >= 5
    assert elapsed < 5, f"k_anonymize took {elapsed:.1f} s for 40,000 rows"


def test_sensitive_request_types_lose_coordinates():
    requests = pd.DataFrame(
        {
            "request_type": ["Welfare Check", "Pothole", "Homeless Encampment", "Graffiti"],
            "neighborhood": ["A", "B", "C", "D"],
            "latitude": [1.0, 2.0, 3.0, 4.0],
            "longitude": [5.0, 6.0, 7.0, 8.0],
        }
    )
    out, blanked = sensitive.blank_sensitive_coordinates(requests)
    assert blanked == 2
    assert out.loc[[0, 2], ["latitude", "longitude"]].isna().all().all()
    assert out.loc[[1, 3], "latitude"].tolist() == [2.0, 4.0]
    assert out["neighborhood"].tolist() == ["A", "B", "C", "D"]


# -- small-cell suppression and the audit ------------------------------------------------------


def reader_bounds(marks: np.ndarray, outcome_columns: int = 0):
    """What a reader knows of each hidden entry from its printed mark (the standard's meaning):
    "≤10" is 1 to 10; "†" is above 10, except an outcome (the first `outcome_columns` columns) in a
    row whose size (last column) is hidden, which may be anything from 0."""

    def bounds(i, j):
        if marks[i, j] == "≤10":
            return (1, 10)
        if marks[i, j] == "‡":  # a row withheld whole: any number, 0 included
            return (0, None)
        if j < outcome_columns and marks[i, -1] != "":
            return (0, None)
        return (11, None)

    return bounds


def independent_ranges(
    values: np.ndarray, suppressed: np.ndarray, bounds_of=None
) -> list[tuple[int, int, float, float]]:
    """Min/max of each suppressed entry of a (rows+1)×(cols+1) grid with totals, written from
    scratch: one LP variable per grid entry, published entries fixed by their bounds, hidden ones
    bounded by `bounds_of(i, j)` (default: at least 1)."""
    r, c = values.shape
    n = r * c
    var = lambda i, j: i * c + j  # noqa: E731
    a_eq, b_eq = [], []
    for i in range(r):  # each row: interior entries sum to the last column
        row = np.zeros(n)
        row[[var(i, j) for j in range(c - 1)]] = 1
        row[var(i, c - 1)] = -1
        a_eq.append(row), b_eq.append(0)
    for j in range(c):  # each column: interior entries sum to the last row
        col = np.zeros(n)
        col[[var(i, j) for i in range(r - 1)]] = 1
        col[var(r - 1, j)] = -1
        a_eq.append(col), b_eq.append(0)
    bounds_of = bounds_of or (lambda i, j: (1, None))
    bounds = [bounds_of(i, j) if suppressed[i, j] else (values[i, j], values[i, j]) for i in range(r) for j in range(c)]
    ranges = []
    for i, j in zip(*np.nonzero(suppressed)):
        objective = np.zeros(n)
        objective[var(i, j)] = 1
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds)
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds)
        assert low.status == 0
        ranges.append((i, j, low.fun, -high.fun if high.status == 0 else np.inf))
    return ranges


count_values = st.one_of(st.just(0), st.integers(1, 10), st.integers(11, 60), st.integers(61, 500))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.integers(1, 6).flatmap(
        lambda r: st.integers(1, 5).flatmap(
            lambda c: st.lists(st.lists(count_values, min_size=c, max_size=c), min_size=r, max_size=r)
        )
    )
)
def test_suppression_property(cells):
    counts = pd.DataFrame(cells, columns=[f"c{j}" for j in range(len(cells[0]))])
    table = suppression.suppress(suppression.count_table(counts))[0]
    values = table.values.to_numpy()
    suppressed = table.suppressed.to_numpy()
    # nothing from 1 to 10 is published (margins included); zeros stay shown
    assert not (~suppressed & (values >= 1) & (values <= 10)).any()
    withheld = table.withheld_mask().to_numpy()  # rows withheld whole ("‡"), zeros included: the last resort
    assert not (suppressed & ~withheld & (values == 0)).any()
    # totals are the real totals
    assert (values[:-1, -1] == np.asarray(cells).sum(axis=1)).all()
    # the primary mark sits only on counts from 1 to 10, and every such hidden count carries it
    marks = table.marks().to_numpy()
    assert not ((marks == "≤10") & ~((values >= 1) & (values <= 10))).any()
    assert ((marks == "≤10") == (suppressed & ~withheld & (values >= 1) & (values <= 10))).all()
    assert ((marks == "‡") == withheld).all()
    # an independent LP, reading the marks as a reader would, cannot narrow a "≤10" count below 5
    for i, j, low, high in independent_ranges(values, suppressed, reader_bounds(marks)):
        assert low - 1e-6 <= values[i, j] <= high + 1e-6
        if values[i, j] <= 10:
            assert high - low >= 5 - 1e-6, f"entry ({i}, {j}) = {values[i, j]} pinned to [{low}, {high}]"
    # and the module's own audit agrees
    assert suppression.audit(table).passed


def test_single_small_cell_gets_a_complement_and_audit_ranges_match_by_hand():
    counts = pd.DataFrame({"a": [5, 40], "b": [30, 50]}, index=["x", "y"])
    table = suppression.suppress(suppression.count_table(counts))[0]
    # 5 alone would be recovered from its row total 35: its row, column and the opposite cell hide too
    assert table.suppressed.loc["x", "a"]
    assert table.suppressed.loc[["x", "y"], ["a", "b"]].to_numpy().all()
    report = suppression.audit(table)
    assert report.passed
    cell = report.cells.set_index(["row", "column"]).loc[("x", "a")]
    # x_a + x_b = 35, y_a + y_b = 90, x_a + y_a = 45, x_b + y_b = 80; x_a "≤10" is 1 to 10, the
    # others "†" are above 10: x_a ∈ [1, 10], all its mark allows
    assert cell["low"] == pytest.approx(1) and cell["high"] == pytest.approx(10)
    assert table.marks().loc["x", "a"] == "≤10" and table.marks().loc["y", "b"] == "†"


def test_audit_flags_a_pinned_cell():
    counts = pd.DataFrame({"a": [5, 40], "b": [30, 50]}, index=["x", "y"])
    table = suppression.primary_suppression(suppression.count_table(counts))
    report = suppression.audit(table)
    assert not report.passed
    exposed = report.exposed.iloc[0]
    assert (exposed["row"], exposed["column"], exposed["low"], exposed["high"]) == ("x", "a", 5, 5)
    assert exposed["mark"] == "≤10" and exposed["sensitive"]
    assert "different reports" in str(report)


def test_only_zero_neighbours_means_the_margin_is_suppressed():
    counts = pd.DataFrame({"a": [0, 120], "b": [7, 80], "c": [0, 60]}, index=["x", "y"])
    table = suppression.suppress(suppression.count_table(counts))[0]
    assert table.suppressed.loc["x", "b"] and table.suppressed.loc["x", "Total"]  # row total 7 is small itself
    assert not table.suppressed.loc["x", "a"] and not table.suppressed.loc["x", "c"]  # zeros shown
    assert suppression.audit(table).passed


def test_subtotal_tables_are_suppressed_and_audited_together():
    detail = suppression.count_table(
        pd.DataFrame({"yes": [4, 60, 35, 70], "no": [50, 45, 40, 90]}, index=["n1", "n2", "n3", "n4"]), "detail"
    )
    subtotal = suppression.count_table(
        pd.DataFrame({"yes": [64, 105], "no": [95, 130]}, index=["d1", "d2"]), "districts"
    )
    relations = suppression.subtotal_relations(detail, subtotal, {"d1": ["n1", "n2"], "d2": ["n3", "n4"]})
    # suppressing only within the detail table (its cheapest partner, n3, is in the other district)
    # leaves n1 recoverable from the district subtotal
    alone = suppression.suppress(suppression.count_table(detail.values.drop(index="Total", columns="Total"), "detail"))[
        0
    ]
    linked_audit = suppression.audit([alone, suppression.primary_suppression(subtotal)], relations)
    assert not linked_audit.passed
    together = suppression.suppress([detail, subtotal], relations)
    assert suppression.audit(together, relations).passed
    assert together[0].suppressed.loc["n1", "yes"]


def test_a_24_by_8_table_is_protected():
    rng = np.random.default_rng(0)
    cells = rng.choice([0, 1, 3, 7, 12, 40, 200], size=(24, 8), p=[0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    started = time.perf_counter()
    table = suppression.suppress(suppression.count_table(pd.DataFrame(cells)))[0]
    elapsed = time.perf_counter() - started
    values, suppressed = table.values.to_numpy(), table.suppressed.to_numpy()
    assert not (~suppressed & (values >= 1) & (values <= 10)).any()
    marks = table.marks().to_numpy()
    ranges = independent_ranges(values, suppressed, reader_bounds(marks))
    assert all(high - low >= 5 - 1e-6 for i, j, low, high in ranges if values[i, j] <= 10)
    assert elapsed < 30, f"suppressing a 24×8 table took {elapsed:.1f} s"


def test_notebooks_reach_every_privacy_method_through_citykit_privacy():
    import citykit

    exposed = {name: getattr(citykit.privacy, name) for name in citykit.privacy.__all__}
    assert exposed["count_table"] is suppression.count_table
    assert exposed["PublishedTable"] is suppression.PublishedTable
    assert exposed["primary_suppression"] is suppression.primary_suppression
    assert exposed["k_anonymize"] is kanonymity.k_anonymize
    assert exposed["blank_sensitive_coordinates"] is sensitive.blank_sensitive_coordinates
    public = {
        n
        for module in (kanonymity, sensitive, suppression)
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    }
    plumbing = {"set_release_reviewer", "ReleaseRequest", "reviewing"}  # the release ledger's hook, not for notebooks
    assert public - plumbing <= set(exposed)


# -- outcomes of small groups (attribute disclosure) -------------------------------------------


outcome_rows = st.lists(
    st.tuples(st.one_of(st.integers(0, 12), st.integers(0, 80)), st.one_of(st.integers(0, 12), st.integers(0, 80))),
    min_size=1,
    max_size=6,
).filter(lambda rows: sum(a + b for a, b in rows) > 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(outcome_rows)
def test_no_outcome_of_a_hidden_or_uniform_small_group_can_be_read_or_derived(rows):
    counts = pd.DataFrame(rows, columns=["approved", "denied"], index=[f"g{i}" for i in range(len(rows))])
    table = suppression.suppress(suppression.count_table(counts, outcome_columns=["approved", "denied"]))[0]
    values, hidden = table.values.to_numpy(), table.suppressed.to_numpy()
    marks = table.marks().to_numpy()
    size = values[:, -1]
    # read: nothing from 1 to 10 shown; no outcome (not even 0) beside a hidden size; a group of at
    # most 20 who all share one outcome is hidden whole; the primary mark only on 1 to 10
    assert not (~hidden & (values >= 1) & (values <= 10)).any()
    for i in range(len(values)):
        if hidden[i, -1]:
            assert hidden[i, :2].all(), f"row {i}: an outcome is shown beside a hidden group size"
        if 0 < size[i] <= 20 and (values[i, 0] == size[i] or values[i, 1] == size[i]):
            assert hidden[i].all(), f"row {i}: a small group with one outcome for everyone is shown"
    assert not ((marks == "≤10") & ~((values >= 1) & (values <= 10))).any()
    # the mark of an outcome beside a hidden size does not depend on its value
    for i in range(len(values)):
        if hidden[i, -1]:
            assert set(marks[i, :2]) in ({"†"}, {"‡"})  # "‡": the row withheld whole
    # derived: an independent LP reading the marks cannot show that everyone in a protected group
    # had one outcome (each outcome can still be at least 1) nor pin a small count
    ranges = {(i, j): (low, high) for i, j, low, high in independent_ranges(values, hidden, reader_bounds(marks, 2))}
    for i in range(len(values)):
        if hidden[i, -1]:
            for j in (0, 1):
                assert ranges[(i, j)][1] >= 1 - 1e-6, f"row {i}: outcome {j} is derivably 0"
    for (i, j), (low, high) in ranges.items():
        if values[i, j] <= 10:
            assert high - low >= 5 - 1e-6, f"entry ({i}, {j}) = {values[i, j]} pinned to [{low}, {high}]"
    assert suppression.audit(table).passed


def test_millbrook_style_one_person_all_denied_is_not_published():
    counts = pd.DataFrame({"approved": [0, 57, 18], "denied": [1, 27, 40]}, index=["MENA", "Hispanic", "White"])
    table = suppression.suppress(suppression.count_table(counts, outcome_columns=["approved", "denied"]))[0]
    shown = table.shown
    assert shown.loc["MENA"].isna().all(), "the group of one and its outcome are hidden"
    assert table.marks().loc["MENA", "approved"] == "†" and table.marks().loc["MENA", "Total"] == "≤10"


def test_a_small_row_whose_decided_members_share_one_outcome_is_hidden_whole():
    """Standard 1.4.2: pending is no decision. 12 denied + 6 pending (size 18) tells a reader, once
    the zeros of approved and withdrawn are shown, that every decided applicant was denied."""
    counts = pd.DataFrame(
        {"approved": [0, 14, 0, 300, 250], "denied": [12, 3, 0, 100, 80], "withdrawn": [0, 0, 0, 50, 40],
         "pending": [6, 2, 15, 20, 30]},
        index=["one decided outcome", "two decided outcomes", "all pending", "big", "bigger"],
    )  # fmt: skip
    columns = ["approved", "denied", "withdrawn", "pending"]
    table = suppression.count_table(counts, outcome_columns=columns)
    primary = suppression.primary_suppression(table).suppressed
    assert primary.loc["one decided outcome"].all() and primary.loc["all pending"].all()
    two = primary.loc["two decided outcomes"]
    assert not two["Total"] and not two["approved"] and not two["withdrawn"]  # only its small counts
    assert two["denied"] and two["pending"]
    published = suppression.suppress(table)[0]  # (complementary suppression may hide more rows)
    assert published.shown.loc["one decided outcome"].isna().all()
    assert published.shown.loc["big"].notna().all()
    assert suppression.audit(published).passed


def test_attribute_disclosure_rule_is_stated_once_in_the_standard():
    from citykit import paths

    text = paths.standard_file("disaggregation.yml").read_text(encoding="utf-8")
    assert text.count("No outcome count, rate or zero is published") == 1
    from citykit.standards import load_disaggregation

    std = load_disaggregation()
    assert std.small_cells.outcome_rule.startswith("No outcome count, rate or zero is published")
    assert str(std.small_cells.uniform_outcome_max_n) in std.small_cells.outcome_rule


# -- the two SPD-15 presentations on one page (standard 1.2.0) ---------------------------------

CODES = ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")


def _people(draw_rows) -> pd.DataFrame:
    """Applicants from (categories selected, generalised, declined, approved) tuples."""
    records = []
    for selected, generalised, declined, approved in draw_rows:
        row = {f"race_{c}": (None if generalised else (c in selected)) for c in CODES}
        row["race_declined"] = bool(declined and not selected and not generalised)
        row["race_not_reported"] = not selected and not generalised and not declined
        row["approved"] = approved
        records.append(row)
    frame = pd.DataFrame(records)
    for c in CODES:
        frame[f"race_{c}"] = frame[f"race_{c}"].astype("boolean")
    return frame


def independent_pair_audit(
    people: pd.DataFrame, alone, combined
) -> list[tuple[str, str, str, int, float, float, float]]:
    """Every hidden count of the two published tables (and of the groups pooled into Other groups),
    with the range a reader can work out, written from scratch with scipy's linprog: one variable
    per count of each table (rows × approved, denied, total) and per pooled group, each printed count
    fixed, each hidden one bounded by its mark; rows add up, the alone table's groups add up to its
    Total, the in-combination table's Total is the alone one's; Not reported and Declined are equal
    in both; each category alone ≤ in combination; each Multiracial person with known categories adds
    2 to 7 selections. Returns (table, row, column, value, low, high, mark floor) per hidden count."""
    from scipy.optimize import linprog

    std = load_disaggregation()
    labels = [c.label for c in std.race_categories]
    multi, unknown = std.multiracial.label, [std.not_reported.label, std.declined.label]
    alone_groups = equity.race_alone(people).astype(str)
    variables: dict[tuple, int] = {}
    bounds: list[tuple] = []
    truth: dict[tuple, int] = {}
    floor: dict[tuple, float] = {}

    def add(key, value, shown, mark, hidden_size):
        variables[key] = len(variables)
        truth[key] = int(value)
        if shown:
            bounds.append((value, value))
        elif mark == "≤10":
            bounds.append((1, 10))
        elif hidden_size or key[0] == "pooled" or mark == std.small_cells.withheld_display:  # "‡": any number
            bounds.append((0, None))
        else:
            bounds.append((11, None))
        floor[key] = bounds[-1][0]

    for name, table in (("alone", alone), ("comb", combined)):
        d = table.data.assign(g=table.data[table.by[0]].astype(str))
        for _, row in d.iterrows():
            # the true counts, from the people (not from the table under test)
            if name == "alone":
                members = table.pools.get(row["g"], [row["g"]])
                mask = alone_groups.isin(members)
            elif row["g"] in labels:
                mask = people[f"race_{CODES[labels.index(row['g'])]}"].fillna(False).astype(bool)
            else:
                mask = alone_groups.eq(row["g"]) & ~people[[f"race_{c}" for c in CODES]].fillna(False).any(axis=1)
            n, a = int(mask.sum()), int(people.loc[mask, "approved"].sum())
            add((name, row["g"], "n"), n, not row["n_suppressed"], row["n_mark"], False)
            add((name, row["g"], "a"), a, not row["events_suppressed"], row["events_mark"], row["n_suppressed"])
            denied_shown = not row["n_suppressed"] and not row["events_suppressed"]
            add((name, row["g"], "d"), n - a, denied_shown, "", True)  # denials are not printed: n − approved
        grid = next(t for t in alone.tables if t.name == "alone")  # the Total row, printed or marked
        marks = grid.marks()
        for col, grid_col, value in (
            ("n", "Total", len(people)),
            ("a", "events", int(people["approved"].sum())),
            ("d", "no events", int((~people["approved"]).sum())),
        ):
            hidden = bool(grid.suppressed.at["Total", grid_col])
            # an outcome beside a hidden Total size may be 0, whatever its mark (as in any row)
            size_hidden = col != "n" and bool(grid.suppressed.at["Total", "Total"])
            add((name, "Total", col), value, not hidden, marks.at["Total", grid_col], size_hidden)
    for _pool, members in alone.pools.items():
        for m in members:
            mask = alone_groups.eq(m)
            n, a = int(mask.sum()), int(people.loc[mask, "approved"].sum())
            for col, value in (("n", n), ("a", a), ("d", n - a)):
                add(("pooled", m, col), value, False, "", True)
    a_eq, b_eq, a_ub, b_ub = [], [], [], []

    def row_of(terms):
        r = np.zeros(len(variables))
        for coef, key in terms:
            r[variables[key]] += coef
        return r

    groups = {name: sorted({k[1] for k in variables if k[0] == name}) for name in ("alone", "comb", "pooled")}
    for name in groups:
        for g in groups[name]:
            a_eq.append(row_of([(1, (name, g, "a")), (1, (name, g, "d")), (-1, (name, g, "n"))])), b_eq.append(0)
    for col in ("n", "a", "d"):
        inner = [g for g in groups["alone"] if g != "Total"]
        a_eq.append(row_of([(1, ("alone", g, col)) for g in inner] + [(-1, ("alone", "Total", col))])), b_eq.append(0)
        for pool, members in alone.pools.items():
            a_eq.append(row_of([(1, ("alone", pool, col))] + [(-1, ("pooled", m, col)) for m in members]))
            b_eq.append(0)
        for g in unknown:
            if g in groups["alone"] and g in groups["comb"]:
                a_eq.append(row_of([(1, ("alone", g, col)), (-1, ("comb", g, col))])), b_eq.append(0)

        def alone_key(g, col=col):
            return ("alone", g, col) if g in groups["alone"] else ("pooled", g, col)

        cats = [g for g in labels if g in groups["comb"]]
        for g in cats:
            a_ub.append(row_of([(1, alone_key(g)), (-1, ("comb", g, col))])), b_ub.append(0)
        extra = [(1, ("comb", g, col)) for g in cats] + [(-1, alone_key(g)) for g in cats]
        generalised = [(1, ("comb", multi, col))] if multi in groups["comb"] else []
        m_alone = alone_key(multi)
        for k, sign in ((2, 1), (7, -1)):  # 2·X ≤ Σ extra ≤ 7·X, X = M_alone − M_generalised
            terms = [(-sign * c, key) for c, key in extra] + [(sign * k, m_alone)]
            terms += [(-sign * k * c, key) for c, key in generalised]
            a_ub.append(row_of(terms)), b_ub.append(0)
    problem = dict(A_eq=np.array(a_eq), b_eq=b_eq, A_ub=np.array(a_ub), b_ub=b_ub, bounds=bounds, method="highs")
    results = []
    for key, i in variables.items():
        if bounds[i][0] == bounds[i][1]:
            continue
        objective = np.zeros(len(variables))
        objective[i] = 1
        low = linprog(objective, **problem)
        high = linprog(-objective, **problem)
        assert low.status == 0, f"the published tables are inconsistent: {low.message}"
        results.append((*key, truth[key], low.fun, -high.fun if high.status == 0 else np.inf, floor[key]))
    return results


applicant = st.tuples(
    st.one_of(
        st.just(()),
        st.sampled_from(CODES).map(lambda c: (c,)),
        st.lists(st.sampled_from(CODES), min_size=2, max_size=3, unique=True).map(tuple),
    ),
    st.sampled_from([False] * 5 + [True]),  # categories generalised away by k-anonymity (rare)
    st.booleans(),
    st.booleans(),
)


# (a) every cell hidden and the audit still fails (nine people: the marks give them away): rows withheld
CASE_A = [
    (("aian",), False, True, False),
    (("black", "aian", "hispanic"), False, True, True),
    (("white",), False, True, False),
    ((), False, True, False),
    ((), False, True, False),
    ((), False, False, True),
    (("hispanic", "asian", "aian"), False, True, True),
    (("hispanic",), True, True, True),
    (("mena",), True, True, True),
]
# (b) the independent LP pinned alone Declined n at 2 (pooled)
CASE_B = [
    ((), False, False, False),
    (("aian", "asian"), False, False, False),
    ((), False, False, False),
    ((), False, False, False),
    ((), False, True, False),
    ((), True, True, False),
    (("mena",), False, False, False),
    (("hispanic",), False, False, False),
    ((), False, True, False),
    (("hispanic", "mena"), False, True, False),
    (("mena", "asian"), False, True, False),
]
# (c) the independent model was infeasible: it read "†" on the Total row's outcomes as above 10
CASE_C = [((), False, False, False)] * 5


@example(CASE_A, False)
@example(CASE_B, True)
@example(CASE_C, False)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(applicant, min_size=5, max_size=120), st.booleans())
def test_alone_and_in_combination_tables_protect_each_other(rows, pool):
    """Property: published together, the "alone" table (pooled or not) and the "alone or in
    combination" table leave every hidden count from 0 to 10 unknown to a reader who combines them
    (an independent LP), never print a number the other hides, and never pin a count at the end of
    its range ("at least 9" when it is 9)."""
    people = _people(rows)
    alone = equity.disaggregate(
        people, by=["race_alone"], measure="approved", collapse="small_groups_to_other" if pool else None
    )
    combined = equity.disaggregate(people, by=["race_in_combination"], measure="approved", alongside=alone)
    assert alone.audit().passed
    for table, group, column, value, low, high, floor in independent_pair_audit(people, alone, combined):
        if value <= 10:
            assert high - low >= 5 - 1e-6, f"{table} {group} {column} = {value} ranges only {low}..{high}"
            assert not (abs(low - value) < 1e-6 and low > max(floor, 1) + 1e-6), (
                f"{table} {group} {column} pinned at {low}"
            )
            assert not (abs(high - value) < 1e-6 and high < (10 if floor == 1 else np.inf)), (
                f"{table} {group} {column} pinned at {high}"
            )
    a = alone.data.set_index(alone.data["race_alone"].astype(str))
    c = combined.data.set_index(combined.data["race_in_combination"].astype(str))
    for g in (
        "Not reported",
        "Declined",
        *(
            [x.label for x in load_disaggregation().race_categories]
            if "Multiracial and/or Multiethnic" in a.index
            and not a.loc["Multiracial and/or Multiethnic", "n_suppressed"]
            and a.loc["Multiracial and/or Multiethnic", "n"] == 0
            else []
        ),
    ):
        if g in a.index and g in c.index:
            for col in ("n_suppressed", "events_suppressed"):
                assert a.loc[g, col] == c.loc[g, col], f"{g}: {col} differs between the two tables"


def test_not_reported_and_declined_are_never_pooled_and_a_pool_needs_two_groups():
    rows = [(("nhpi",), False, False, True)] * 6 + [(("white",), False, False, True)] * 30
    rows += [((), False, False, True)] * 4 + [((), False, True, False)] * 3  # Not reported, Declined
    people = _people(rows)
    table = equity.disaggregate(people, by=["race_alone"], measure="approved", collapse="small_groups_to_other")
    assert table.pools == {}  # NHPI alone: a pool of one group is no pool
    groups = set(table.data["race_alone"].astype(str))
    assert {
        "Not reported",
        "Declined",
        "Native Hawaiian or Pacific Islander",
    } <= groups and "Other groups" not in groups
    assert (table.data.set_index(table.data["race_alone"].astype(str)).loc["Asian", "n"]) == 0  # zero rows shown
    rows += [(("asian",), False, False, False)] * 5
    table = equity.disaggregate(_people(rows), by=["race_alone"], measure="approved", collapse="small_groups_to_other")
    assert table.pools == {"Other groups": ["Asian", "Native Hawaiian or Pacific Islander"]}
    pool_note = next(note for note in table.footnotes if '"Other groups" pools' in note)
    assert "Asian" in pool_note and "11" not in pool_note  # the pool's size is shown (or hidden) in the table only
