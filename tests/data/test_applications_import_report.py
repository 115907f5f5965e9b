"""The applications import writes its part of the dataset's import report (issue 20, first privacy walk):
rows read and published, the personal columns dropped (named), the columns not imported, the rows with
values it could not use, the fresh ids, the k-anonymity result and the as-of date. Every count is checked
against pandas on the export itself, never against the import's own figures."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

import citykit
from citykit.cli import main
from citykit.data import registry
from citykit.data.importers import import_requests
from citykit.data.importers.report import write_report_section

BALTIMORE = ("ServiceRequestNum,SRType,MethodReceived,CreatedDate,SRStatus,CloseDate,Agency,Neighborhood,"
             "CouncilDistrict,Latitude,Longitude")  # fmt: skip
NAMES = ["Canton", "Dorchester", "Belair-Edison"]
PERSONAL = ["Applicant Name", "Phone", "Email", "Home Address", "Caseworker Notes"]
N = 150


@pytest.fixture
def town(tmp_path, monkeypatch) -> str:
    """An imported 311 dataset (its import report written) to attach the applications to."""
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    lines = [BALTIMORE] + [
        f"R{i},Pothole,Phone,03/0{i + 1}/2024 09:00:00 AM,Closed,03/0{i + 2}/2024 09:00:00 AM,Streets,{h},1,39.29,-76.61"
        for i, h in enumerate(NAMES)
    ]
    (tmp_path / "export.csv").write_text("\n".join(lines) + "\n")
    import_requests("baltimore", tmp_path / "export.csv", name="town")
    return "town"


def export(tmp_path) -> pd.DataFrame:
    """A program's export with personal columns, an unmapped ordinary one, and a few defects."""
    rng = np.random.default_rng(11)
    raw = pd.DataFrame({
        "App No": [f"A{i:04d}" for i in range(N)],
        "Applicant Name": [f"Maria Lopez {i}" for i in range(N)],
        "Phone": [f"(410) 555-{i:04d}" for i in range(N)],
        "Email": [f"person{i}@example.org" for i in range(N)],
        "Home Address": [f"{100 + i} Main St" for i in range(N)],
        "Caseworker Notes": ["called twice about the missing pay stubs, will send them next week"] * N,
        "Intake Office": rng.choice(["North", "South"], N),  # not personal, not mapped
        "Submitted": pd.date_range("2024-01-01", periods=N, freq="D").strftime("%Y-%m-%d"),
        "Decided": pd.date_range("2024-01-20", periods=N, freq="D").strftime("%Y-%m-%d"),
        "Decision": rng.choice(["APPROVED", "DENIED", "PENDING"], N),
        "Area": rng.choice(NAMES, N),
        "District": rng.choice(["1", "2"], N),
        "Sex": rng.choice(["F", "M", "X"], N, p=[0.5, 0.45, 0.05]),
        "Race": rng.choice(["White", "Black or African American", "Asian;White", "Declined"], N),
        "HH": rng.integers(1, 6, N).astype(str),
        "Language": rng.choice(["English", "Spanish"], N),
    })  # fmt: skip
    raw.loc[[3, 40], "Decided"] = "soon"  # unreadable
    raw.loc[[5, 6, 7], "HH"] = ""  # not recorded
    raw.loc[9, "HH"] = "three"
    raw.loc[[11, 12], "District"] = "n/a"
    raw.loc[20, "Sex"] = "Unknown"  # not in gender_map nor the standard
    raw.loc[31, "App No"] = raw.loc[30, "App No"]  # a repeated id
    raw.loc[[50, 51], "Area"] = ""
    raw.to_csv(tmp_path / "apps.csv", index=False)
    spec = {
        "program": "Rental assistance",
        "columns": {"application_id": "App No", "submitted_at": "Submitted", "decided_at": "Decided",
                    "outcome": "Decision", "neighborhood": "Area", "council_district": "District", "gender": "Sex",
                    "race": "Race", "household_size": "HH", "language": "Language"},
        "timestamp_formats": ["%Y-%m-%d"],
        "outcome_map": {"APPROVED": "Approved", "DENIED": "Denied", "PENDING": "Pending"},
        "gender_map": {"F": "Woman", "M": "Man", "X": "Nonbinary"},
        "race_mapping": "census_style",
    }  # fmt: skip
    (tmp_path / "apps.yml").write_text(yaml.safe_dump(spec))
    return spec


def line(report: str, start: str) -> str:
    found = [x for x in report.splitlines() if x.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def count(report: str, finding: str) -> int:
    """The rows of a finding in the report's findings table (0 when the table does not list it)."""
    rows = [x for x in report.splitlines() if x.startswith("| ") and finding in x]
    return int(rows[0].split("|")[2].replace(",", "")) if rows else 0


def test_the_applications_import_writes_its_report(tmp_path, town):
    spec = export(tmp_path)
    assert main(["data", "import-applications", str(tmp_path / "apps.csv"), "--mapping", str(tmp_path / "apps.yml"),
                 "--name", town]) == 0  # fmt: skip
    folder = registry.get(town).folder
    text = (folder / "import_report.md").read_text(encoding="utf-8")
    assert text.startswith("# Import report: town")  # the 311 import's report is kept, the section follows it
    section = text[text.index("## Program applications") :]

    csv = pd.read_csv(tmp_path / "apps.csv", dtype=str, keep_default_na=False, na_values=[""])
    published = citykit.load("program_applications", town)
    assert re.search(rf"Rows read: {len(csv):,}; rows published: {len(published):,}", section)
    personal = line(section, "- Of those, personal")
    for column in PERSONAL:
        assert f"{column} (" in personal
    assert "Intake Office" not in personal
    not_imported = line(section, "- Columns not imported")
    assert set(re.sub(r"^.*?: ", "", not_imported).split(", ")) == set(csv.columns) - set(spec["columns"].values())

    # the rows with a value the import could not use, counted by pandas on the export
    hh = pd.to_numeric(csv["HH"], errors="coerce")
    district = pd.to_numeric(csv["District"], errors="coerce")
    decided = pd.to_datetime(csv["Decided"], format="%Y-%m-%d", errors="coerce")
    assert count(section, "household size empty or not a number") == hh.isna().sum() == 4
    assert count(section, "council district not a number") == (csv["District"].notna() & district.isna()).sum() == 2
    assert count(section, "decided date not readable") == (csv["Decided"].notna() & decided.isna()).sum() == 2
    assert count(section, "gender not one of the standard's") == (~csv["Sex"].isin(spec["gender_map"])).sum() == 1
    assert count(section, "application id repeated") == csv["App No"].duplicated(keep=False).sum() == 2
    assert count(section, "no neighborhood") == csv["Area"].isna().sum() == 2
    as_of = registry.get(town).as_of
    after = (pd.to_datetime(csv["Submitted"]).dt.date > as_of).sum()
    assert count(section, "submitted after the dataset's as-of date") == after > 0
    assert f"As-of date: {as_of}" in section

    # fresh ids, and the k-anonymity result from the published rows themselves
    assert not set(published["application_id"]) & set(csv["App No"])
    assert f"Ids made fresh: {published['application_id'].notna().sum():,} application ids" in section
    assert ", 0 equal to an export id" in section
    assert f"rows suppressed (dropped): {len(csv) - len(published):,}" in section
    quasi = ["submitted_at", "neighborhood", "council_district", "gender", "language"]
    quasi += [c for c in published.columns if c.startswith("race_")]
    smallest = published.groupby(quasi, dropna=False).size().min()
    assert f"smallest group published: {smallest}" in section and smallest >= 5

    # importing again replaces the section (written the same way): one applications section, the 311 report first
    write_report_section(folder, "## Program applications\n\n- again\n")
    again = (folder / "import_report.md").read_text(encoding="utf-8")
    assert again.count("## Program applications") == 1 and again.endswith("- again\n")
    assert again.startswith(text[: text.index("## Program applications")].rstrip())
    # re-importing the 311 export rewrites its report and keeps the applications' part, as it keeps their table
    import_requests("baltimore", tmp_path / "export.csv", name=town)
    after = (folder / "import_report.md").read_text(encoding="utf-8")
    assert after.startswith("# Import report: town") and after.count("## Program applications") == 1
    assert after.endswith("\n\n## Program applications\n\n- again\n")
