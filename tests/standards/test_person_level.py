"""People in the published applications stay anonymous (issue 20): every column classed, every
quasi-identifier under k-anonymity with the outcome rule, fresh ids, whole-month periods.

Expected values come from DuckDB SQL or pandas written here, on the published files and the raw
export, never from the publisher's own report."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import shutil
import stat

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

import citykit
from citykit import paths, standards
from citykit.data import anonymize
from citykit.data.columns import PROGRAM_APPLICATIONS, SERVICE_REQUESTS, TABLE_COLUMNS
from citykit.errors import CitykitError
from citykit.standards.coarsening import check_whole_units
from citykit.standards.pseudonyms import dataset_key, key_file, pseudonymise
from citykit.standards.reader import identifier_columns, personal_columns

K = 5
UNIFORM_MAX = 20  # the standard's outcome rule: a group of at most 20 sharing one outcome
RACE = [
    "race_aian", "race_asian", "race_black", "race_hispanic", "race_mena", "race_nhpi", "race_white",
    "race_not_reported", "race_declined",
]  # fmt: skip
QUASI = ["submitted_at", "neighborhood", "council_district", "gender", *RACE, "language"]


# -- the one table of columns ---------------------------------------------------------------------


def test_every_published_person_level_column_is_classified():
    std = standards.load_disaggregation()
    person_level = {t for t, spec in std.columns.items() if spec.person_level}
    assert "program_applications" in person_level
    for table in person_level:
        spec = std.columns[table]
        unclassified = [c for c in TABLE_COLUMNS[table] if spec.entry(c) is None]
        assert not unclassified, f"{table}: published columns without a privacy class: {unclassified}"
        not_in_rows = [c for c in TABLE_COLUMNS[table] if not spec.entry(c).in_rows]
        assert not not_in_rows, f"{table} publishes {not_in_rows}, which the standard keeps out of its rows"
    # and the standard publishes in the rows exactly the contract's columns
    spec = std.columns["program_applications"]
    assert spec.names(publish=("person_level", "coarsened", "pseudonymised")) == list(PROGRAM_APPLICATIONS)
    for entry in spec.columns:
        assert entry.klass in ("identifier", "quasi_identifier", "sensitive", "safe") and len(entry.reason) > 10


def test_every_raw_column_of_the_bundled_export_is_classified(riverton):
    raw = pd.read_csv(paths.citykit_home() / "raw" / "riverton" / "program_applications.csv", nrows=5)
    spec = standards.load_disaggregation().columns["program_applications"]
    assert [c for c in raw.columns if spec.entry(c) is None] == []
    requests = pd.read_csv(paths.citykit_home() / "raw" / "riverton" / "service_requests.csv", nrows=5)
    personal = set(personal_columns()["service_requests"])
    assert personal and personal <= set(requests.columns) and not personal & set(SERVICE_REQUESTS)


def test_the_importers_personal_list_reads_the_table():
    listed = personal_columns()
    assert set(listed["program_applications"]) == {"applicant_name", "phone", "email", "address", "date_of_birth"}
    assert "application_id" in identifier_columns()["program_applications"]
    assert dict(anonymize.PERSONAL_COLUMNS) == listed


def test_an_unclassified_column_is_an_error_not_a_publication(tmp_path, monkeypatch):
    folder = tmp_path / "standards"
    folder.mkdir()
    for name in ("disaggregation.yml", "disaggregation.schema.json", "metrics.yml"):
        shutil.copy(paths.standards_dir() / name, folder)
    content = yaml.safe_load((folder / "disaggregation.yml").read_text(encoding="utf-8"))
    del content["privacy"]["columns"]["program_applications"]["columns"]["program"]
    (folder / "disaggregation.yml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(paths, "standards_dir", lambda: folder)
    raw = pd.DataFrame({c: ["x"] for c in PROGRAM_APPLICATIONS}).assign(
        submitted_at=pd.Timestamp("2025-03-04 10:00"), decided_at=pd.NaT
    )
    with pytest.raises(CitykitError, match="does not publish program"):
        anonymize.publish_applications(raw, key=b"k" * 32, dataset="test")


# -- the published applications -------------------------------------------------------------------


def published(table: str = "program_applications") -> str:
    return str(paths.citykit_home() / "published" / "riverton" / f"{table}.parquet")


def test_no_equivalence_class_below_k_and_no_small_group_shares_one_outcome(riverton):
    # the outcome rule reads decided members only (standard 1.4.2): Pending and null are no decision,
    # so 1 Denied + 6 Pending shares one outcome (count(DISTINCT) skips the NULLs of FILTER)
    columns = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in QUASI)
    classes = duckdb.sql(
        "SELECT count(*) AS n, count(DISTINCT outcome) FILTER (WHERE outcome <> 'Pending') AS decided "
        f"FROM read_parquet(?) GROUP BY {columns}",
        params=[published()],
    ).df()  # GROUP BY keeps NULL as its own value, as a reader would
    assert classes["n"].sum() > 30_000
    assert classes["n"].min() >= K
    uniform_small = classes[(classes["n"] <= UNIFORM_MAX) & (classes["decided"] <= 1)]
    assert uniform_small.empty, f"{len(uniform_small)} groups of {UNIFORM_MAX} or fewer share one decided outcome"
    # the same with pandas: a decided outcome per class, Pending left out
    apps = pd.read_parquet(published(), columns=[*QUASI, "outcome"])
    key = apps[QUASI].astype("string").fillna("<null>").agg("|".join, axis=1)
    per_class = apps["outcome"].where(apps["outcome"] != "Pending").groupby(key).agg(["size", "nunique"])
    assert not ((per_class["size"] <= UNIFORM_MAX) & (per_class["nunique"] <= 1)).any()


def test_times_are_months_and_decision_dates_are_gone(riverton):
    apps = pd.read_parquet(published())
    assert (apps["submitted_at"] == apps["submitted_at"].dt.to_period("M").dt.start_time).all()
    assert not {"decided_at", "days_to_decision", "age_band", "household_size", "income_band"} & set(apps.columns)
    unique = duckdb.sql(
        "SELECT avg(CASE WHEN n = 1 THEN 1 ELSE 0 END) FROM (SELECT count(*) OVER (PARTITION BY neighborhood, "
        "submitted_at) AS n FROM read_parquet(?))",
        params=[published()],
    ).fetchone()[0]
    assert unique == 0  # neighborhood and day of submission made 11% of rows unique before


def test_no_published_id_is_or_plainly_hashes_a_raw_id(riverton):
    home = paths.citykit_home()
    raw = pd.read_csv(home / "raw" / "riverton" / "program_applications.csv", usecols=["application_id"])
    raw_ids = raw["application_id"].astype(str)
    apps = pd.read_parquet(published(), columns=["application_id"])["application_id"]
    assert apps.str.fullmatch(r"A-[0-9a-f]{10,}").all() and apps.is_unique
    assert not set(apps) & set(raw_ids)
    # the keyed hash, recomputed here with the dataset's key and this export's edition, gives exactly the published ids
    key = dataset_key("riverton")
    scope = "riverton\x1e" + anonymize.edition(anonymize._applications(home / "raw" / "riverton"))
    keyed = {
        "A-" + hmac.new(key, f"{scope}\x1fprogram_applications\x1f{r}".encode(), hashlib.sha256).hexdigest()[:10]: r
        for r in raw_ids
    }
    assert set(apps) <= set(keyed)
    # and no published id is its raw id's unkeyed md5, sha1 or sha256 (any end of it)
    for published_id in apps:
        raw_id, digits = keyed[published_id], published_id[2:]
        for algorithm in ("md5", "sha1", "sha256"):
            digest = hashlib.new(algorithm, raw_id.encode()).hexdigest()
            assert digits not in digest, (algorithm, raw_id)
        assert digits not in raw_id.lower()
    requests = pd.read_parquet(published("service_requests"), columns=["request_id", "parent_request_id"])
    raw_requests = pd.read_csv(home / "raw" / "riverton" / "service_requests.csv", usecols=["request_id"])
    assert not set(requests["request_id"]) & set(raw_requests["request_id"])
    assert requests["parent_request_id"].dropna().isin(requests["request_id"]).all()  # duplicates keep their parent


def test_the_key_stays_private_and_out_of_everything_published(riverton):
    path = key_file("riverton")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    published_folder = paths.citykit_home() / "published"
    assert published_folder not in path.parents
    secret = path.read_text(encoding="ascii").strip()
    for file in (published_folder / "riverton").iterdir():
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file.name


def test_ids_are_stable_for_one_key_and_differ_for_another(tmp_path):
    raw = pd.Series(["RA-000001", "RA-000002", None, "RA-000001"])
    key = dataset_key("town", tmp_path)
    first = pseudonymise(raw, key, "town", "program_applications")
    again = pseudonymise(raw, dataset_key("town", tmp_path), "town", "program_applications")
    assert first.tolist() == again.tolist() and first[0] == first[3] and pd.isna(first[2])
    other = pseudonymise(raw, dataset_key("town", tmp_path / "elsewhere"), "town", "program_applications")
    assert not set(other.dropna()) & set(first.dropna())
    assert stat.S_IMODE(key_file("town", tmp_path).stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file("town", tmp_path).parent.stat().st_mode) == 0o700


def test_colliding_ids_get_longer_not_shared(tmp_path, monkeypatch):
    std = standards.load_disaggregation()
    short = std.__class__(**{**std.__dict__, "pseudonym_digits": {"program_applications": 8}})
    many = pd.Series([f"RA-{i:07d}" for i in range(200_000)])
    ids = pseudonymise(many, dataset_key("town", tmp_path), "town", "program_applications", standard=short)
    assert ids.is_unique  # 8 hex digits would collide about 5 times in 200,000 ids


# -- the aggregate table ---------------------------------------------------------------------------


def test_aggregate_table_counts_every_raw_application_and_hides_small_counts(riverton):
    home = paths.citykit_home()
    raw = pd.read_csv(home / "raw" / "riverton" / "program_applications.csv", parse_dates=["submitted_at"])
    agg = pd.read_parquet(published("program_applications_aggregates"))
    assert set(agg["column"]) == {"age_band", "household_size", "income_band", "days_to_decision"}
    counts = agg[["applications", "approved", "denied", "withdrawn", "pending"]]
    shown = counts.stack().dropna()
    assert not ((shown >= 1) & (shown <= 10)).any()
    totals = agg[agg["value"] == "Total"].set_index(["column", "year"])["applications"]
    by_year = raw.groupby(raw["submitted_at"].dt.year).size()
    for (column, year), total in totals.items():
        assert total == by_year[year], (column, year)
    bands = agg[(agg["column"] == "age_band") & (agg["year"] == 2025) & (agg["value"] == "25-34")].iloc[0]
    expected = raw[(raw["submitted_at"].dt.year == 2025) & (raw["age_band"] == "25-34")]
    assert bands["applications"] == len(expected)
    assert bands["approved"] == (expected["outcome"] == "Approved").sum()
    # days to decision come from the exact times (whole days, rounded down), not from the published months
    decided = pd.to_datetime(raw["decided_at"])
    days = ((decided - raw["submitted_at"]).dt.total_seconds() // 86_400).where(decided.notna())
    quick = raw[(raw["submitted_at"].dt.year == 2025) & (days >= 0) & (days <= 13)]
    row = agg[(agg["column"] == "days_to_decision") & (agg["year"] == 2025) & (agg["value"] == "0-13 days")].iloc[0]
    assert row["applications"] == len(quick) > 0


def test_build_records_what_the_rules_cost(riverton):
    info = json.loads((paths.citykit_home() / "published" / "riverton" / "build.json").read_text(encoding="utf-8"))
    kanon = info["k_anonymity"]
    assert kanon["outcome_rule"] == {"column": "outcome", "uniform_max": UNIFORM_MAX}
    assert "submitted_at" in kanon["quasi_identifiers"] and "language" in kanon["quasi_identifiers"]
    assert kanon["rows_in"] - kanon["suppressed"] == info["rows"]["program_applications"]
    assert info["aggregates"]["file"] == "program_applications_aggregates.parquet"


# -- periods on applications are whole months -----------------------------------------------------


@pytest.mark.parametrize("period", ["2025-01-15/2025-02-14", "2025-01-01/2025-01-30", "2025-03-02/2025-03-31"])
def test_a_range_of_days_on_applications_is_one_clear_error(riverton, period):
    with pytest.raises(CitykitError, match="published by month") as info:
        citykit.load("program_applications", dataset="riverton", period=period)
    assert "\n" not in str(info.value) and period in str(info.value)
    with pytest.raises(CitykitError, match="published by month"):
        citykit.connect("riverton", period=period, tables=("program_applications",)).close()


def test_whole_months_quarters_and_years_select_applications(riverton):
    whole = citykit.load("program_applications", dataset="riverton", period="2025-01-01/2025-11-30")
    months = duckdb.sql(
        "SELECT count(*) FROM read_parquet(?) WHERE submitted_at >= DATE '2025-01-01' AND submitted_at < "
        "DATE '2025-12-01'",
        params=[published()],
    ).fetchone()[0]
    assert len(whole) == months > 0
    assert len(citykit.load("program_applications", dataset="riverton", period="2025-Q4")) > 0
    citykit.load("service_requests", dataset="riverton", period="2025-01-15/2025-01-20", columns=["request_id"])


def test_the_unit_comes_from_the_standard():
    import datetime as dt

    check_whole_units("service_requests", "created_at", dt.date(2025, 1, 15), dt.date(2025, 1, 20))  # not coarsened
    check_whole_units("program_applications", "submitted_at", dt.date(2025, 2, 1), dt.date(2025, 5, 1))
    with pytest.raises(CitykitError, match="published by month"):
        check_whole_units("program_applications", "submitted_at", dt.date(2025, 2, 1), dt.date(2025, 2, 15))


def test_data_dictionary_shows_each_person_level_columns_privacy_class():
    text = (paths.curriculum_dir() / "guides" / "data-dictionary.md").read_text(encoding="utf-8")
    section = text.split("## program_applications\n", 1)[1].split("\n## ", 1)[0]
    assert "| column | type | unit | rules | privacy | meaning |" in section
    spec = standards.load_disaggregation().columns["program_applications"]
    for column in PROGRAM_APPLICATIONS:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{column}` |"))
        assert f"| {spec.entry(column).label} |" in row, column
    for entry in spec.columns:  # what is not in the rows is listed with its class and reason
        if not entry.in_rows:
            assert f"- `{entry.column}`: {entry.label}." in section


def test_key_file_name_is_checked():
    with pytest.raises(CitykitError):
        key_file("../escape")
    assert os.sep not in key_file("riverton").name


def test_two_editions_of_the_applications_cannot_be_joined_by_id(riverton_small):
    """walk-20 #4: a September export and the full December export, published under one key, were joined on
    their (stable) ids, and the finer value of each column made applicants unique with their outcome. Each
    export now publishes its own ids: none is shared, so no row of one can be found in the other by id; the
    same export, its rows shuffled, publishes the same ids again."""
    raw = anonymize._applications(riverton_small / "raw" / "riverton")
    raw = raw.drop(columns=["age_band", "household_size", "income_band"])  # aggregate-only: not what is tested
    cut = pd.Timestamp("2025-10-01")
    september = raw[raw["submitted_at"] < cut].copy()
    later = september["decided_at"] >= cut  # decided after the snapshot: still pending then
    september.loc[later, ["decided_at", "outcome"]] = [pd.NaT, "Pending"]
    key = b"k" * 32
    first = anonymize.publish_applications(september, key=key, dataset="town")[0]
    full = anonymize.publish_applications(raw, key=key, dataset="town")[0]
    again = anonymize.publish_applications(raw.sample(frac=1, random_state=7), key=key, dataset="town")[0]
    assert sorted(again["application_id"]) == sorted(full["application_id"])
    joined = first.merge(full, on="application_id", suffixes=("_sep", "_dec"))
    assert len(first) > 100 and len(joined) == 0, f"{len(joined)} rows of September found in December by id"
    quasi = ["submitted_at", "neighborhood", "council_district", "gender", "language"]
    for table in (first, full):  # and each publication alone is k-anonymous (k = 5) over its quasi-identifiers
        columns = quasi + [c for c in table.columns if c.startswith("race_")]
        assert table.groupby(columns, dropna=False).size().min() >= 5


def small_counts_pinned(agg: pd.DataFrame) -> tuple[int, list[str]]:
    """LP over an aggregate file as published (scipy): per year, one variable per (column, value, outcome); shown
    counts fixed, rows and Total rows adding up, the Total rows of a year's tables equal (the same applications),
    "≤10" from 1 to 10, anything else from 0. Returns how many "≤10" there are and those ranging under 5."""
    from scipy.optimize import linprog

    outcomes = ["approved", "denied", "withdrawn", "pending"]
    small, pinned = 0, []
    for year, frame in agg.groupby("year"):
        cells = [
            (c, v, o) for c, v in frame[["column", "value"]].itertuples(index=False) if v != "Total" for o in outcomes
        ]
        index = {cell: i for i, cell in enumerate(cells)}
        columns = list(frame["column"].unique())

        def vec(column, value, chosen, index=index):
            out = np.zeros(len(index))
            for (c, v, o), i in index.items():
                if c == column and (value == "Total" or v == value) and o in chosen:
                    out[i] = 1
            return out

        a_eq, b_eq, a_ub, b_ub, marked = [], [], [], [], []
        for row in frame.itertuples(index=False):
            marks = dict(part.rsplit(" ", 1) for part in row.hidden.split("; ") if part)
            for name in ["applications", *outcomes]:
                v = vec(row.column, row.value, outcomes if name == "applications" else [name])
                shown = getattr(row, name)
                if not pd.isna(shown):
                    a_eq.append(v), b_eq.append(int(shown))
                elif marks.get(name) == "≤10":
                    a_ub += [-v, v]
                    b_ub += [-1, 10]
                    marked.append((row.column, row.value, name, v))
        for a, b in itertools.pairwise(columns):  # the same applications in every table of the year
            for o in outcomes:
                a_eq.append(vec(a, "Total", [o]) - vec(b, "Total", [o])), b_eq.append(0)
        for column, value, name, v in marked:
            small += 1
            low = linprog(v, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(0, None))
            high = linprog(-v, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(0, None))
            assert low.status == 0 and high.status == 0
            if -high.fun - low.fun < 5 - 1e-6:
                pinned.append(f"{year} {column} {value} {name}: [{low.fun:g}, {-high.fun:g}]")
    return small, pinned


def test_the_aggregate_tables_of_a_year_pin_no_small_count(riverton_small):
    """walk-20 #15: one year's days-to-decision table hid its Total row's pending while the age, household and
    income tables of the same year printed the same Total, which pinned a "≤10" (on the tiny city, 9-9). Here 200
    applications of the small city (where the per-table suppression pinned 14 counts): no "≤10" is narrowed."""
    raw = anonymize._applications(riverton_small / "raw" / "riverton").sample(n=200, random_state=1)
    aggregates = anonymize.publish_applications(raw, key=b"k" * 32, dataset="town")[1]
    small, pinned = small_counts_pinned(aggregates)
    assert small and not pinned, pinned
