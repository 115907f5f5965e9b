"""Importers: every source's layout on small files written here (headers from the portals'
published column lists, facts.md), each flag class counted on planted rows, every bad input from
issue 7 (a clear error leaving nothing behind, or a correct import), and re-import by request id."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from import_checks import nothing_left

import citykit
from citykit import paths
from citykit.cli import main
from citykit.data import registry
from citykit.data.importers import REPORT_FILE, import_requests, imported_dir
from citykit.errors import CitykitError

pytestmark = pytest.mark.usefixtures("home")  # each test imports into its own CITYKIT_HOME

US = "%m/%d/%Y %I:%M:%S %p"
ISO = "%Y-%m-%d %H:%M:%S"

# Per source: its headers (as the portals publish them), date format, and raw values to use.
LAYOUTS = {
    "nyc311": dict(
        header=[
            "Unique Key",
            "Created Date",
            "Closed Date",
            "Agency",
            "Agency Name",
            "Complaint Type",
            "Descriptor",
            "Location Type",
            "Incident Zip",
            "Incident Address",
            "City",
            "Status",
            "Due Date",
            "Resolution Description",
            "Community Board",
            "Borough",
            "Open Data Channel Type",
            "Latitude",
            "Longitude",
        ],
        fields=dict(
            id="Unique Key",
            created="Created Date",
            closed="Closed Date",
            agency="Agency",
            type="Complaint Type",
            status="Status",
            channel="Open Data Channel Type",
            nbhd="Community Board",
            lat="Latitude",
            lon="Longitude",
            address="Incident Address",
            zip="Incident Zip",
        ),
        fmt=US,
        status=("Closed", "Closed"),
        channel=("ONLINE", "Web"),
        point=(40.7128, -74.0060),
    ),
    "chicago311": dict(
        header=[
            "SR_NUMBER",
            "SR_TYPE",
            "SR_SHORT_CODE",
            "OWNER_DEPARTMENT",
            "STATUS",
            "ORIGIN",
            "CREATED_DATE",
            "LAST_MODIFIED_DATE",
            "CLOSED_DATE",
            "DUPLICATE",
            "LEGACY_RECORD",
            "PARENT_SR_NUMBER",
            "COMMUNITY_AREA",
            "WARD",
            "LATITUDE",
            "LONGITUDE",
        ],
        fields=dict(
            id="SR_NUMBER",
            created="CREATED_DATE",
            closed="CLOSED_DATE",
            agency="OWNER_DEPARTMENT",
            type="SR_TYPE",
            status="STATUS",
            channel="ORIGIN",
            nbhd="COMMUNITY_AREA",
            district="WARD",
            lat="LATITUDE",
            lon="LONGITUDE",
        ),
        fmt=US,
        status=("Completed", "Closed"),
        channel=("Internet", "Web"),
        point=(41.8781, -87.6298),
    ),
    "la_myla311": dict(
        header=[
            "SRNumber",
            "CreatedDate",
            "UpdatedDate",
            "ActionTaken",
            "Owner",
            "RequestType",
            "Status",
            "RequestSource",
            "ServiceDate",
            "ClosedDate",
            "Address",
            "ZipCode",
            "Latitude",
            "Longitude",
            "CD",
            "NCName",
            "PolicePrecinct",
        ],
        fields=dict(
            id="SRNumber",
            created="CreatedDate",
            closed="ClosedDate",
            agency="Owner",
            type="RequestType",
            status="Status",
            channel="RequestSource",
            nbhd="NCName",
            district="CD",
            lat="Latitude",
            lon="Longitude",
            address="Address",
            zip="ZipCode",
        ),
        fmt=US,
        status=("Closed", "Closed"),
        channel=("Mobile App", "App"),
        point=(34.0522, -118.2437),
    ),
    "boston311": dict(
        header=[
            "case_enquiry_id",
            "open_dt",
            "sla_target_dt",
            "closed_dt",
            "on_time",
            "case_status",
            "closure_reason",
            "case_title",
            "subject",
            "reason",
            "type",
            "queue",
            "department",
            "location",
            "neighborhood",
            "city_council_district",
            "location_zipcode",
            "latitude",
            "longitude",
            "source",
        ],
        fields=dict(
            id="case_enquiry_id",
            created="open_dt",
            closed="closed_dt",
            agency="department",
            type="type",
            status="case_status",
            channel="source",
            nbhd="neighborhood",
            district="city_council_district",
            lat="latitude",
            lon="longitude",
            address="location",
            zip="location_zipcode",
        ),
        fmt=ISO,
        status=("Closed", "Closed"),
        channel=("Constituent Call", "Phone"),
        point=(42.3601, -71.0589),
    ),
    "baltimore": dict(
        header=[
            "SRRecordID",
            "ServiceRequestNum",
            "SRType",
            "MethodReceived",
            "CreatedDate",
            "SRStatus",
            "StatusDate",
            "DueDate",
            "CloseDate",
            "Agency",
            "Address",
            "ZipCode",
            "Neighborhood",
            "CouncilDistrict",
            "PoliceDistrict",
            "Latitude",
            "Longitude",
        ],
        fields=dict(
            id="ServiceRequestNum",
            created="CreatedDate",
            closed="CloseDate",
            agency="Agency",
            type="SRType",
            status="SRStatus",
            channel="MethodReceived",
            nbhd="Neighborhood",
            district="CouncilDistrict",
            lat="Latitude",
            lon="Longitude",
            address="Address",
            zip="ZipCode",
        ),
        fmt=US,
        status=("Closed", "Closed"),
        channel=("API", "App"),
        point=(39.2904, -76.6122),
    ),
    "sf311_portal": dict(
        header=[
            "service_request_id",
            "requested_datetime",
            "closed_date",
            "updated_datetime",
            "status_description",
            "status_notes",
            "agency_responsible",
            "service_name",
            "service_subtype",
            "service_details",
            "address",
            "supervisor_district",
            "analysis_neighborhood",
            "police_district",
            "source",
            "lat",
            "long",
        ],
        fields=dict(
            id="service_request_id",
            created="requested_datetime",
            closed="closed_date",
            agency="agency_responsible",
            type="service_name",
            status="status_description",
            channel="source",
            nbhd="analysis_neighborhood",
            district="supervisor_district",
            lat="lat",
            lon="long",
            address="address",
        ),
        fmt=US,
        status=("Closed", "Closed"),
        channel=("Mobile/Open311", "App"),
        point=(37.7749, -122.4194),
    ),
    "sf311_warehouse": dict(
        header=[
            "unique_key",
            "created_date",
            "closed_date",
            "resolution_action_updated_date",
            "status",
            "status_notes",
            "agency_name",
            "category",
            "complaint_type",
            "descriptor",
            "incident_address",
            "supervisor_district",
            "neighborhood",
            "location",
            "source",
            "media_url",
            "latitude",
            "longitude",
            "police_district",
        ],
        fields=dict(
            id="unique_key",
            created="created_date",
            closed="closed_date",
            agency="agency_name",
            type="category",
            status="status",
            channel="source",
            nbhd="neighborhood",
            district="supervisor_district",
            lat="latitude",
            lon="longitude",
            address="incident_address",
        ),
        fmt="%Y-%m-%d %H:%M:%S+00:00",
        status=("Closed", "Closed"),
        channel=("Twitter", "Social"),
        point=(37.7749, -122.4194),
    ),
}


def base_row(source: str, i: int, **overrides) -> dict[str, str]:
    """One clean request in `source`'s layout: created i days after 2024-03-01 09:30:15, closed 5 hours later."""
    layout = LAYOUTS[source]
    f, fmt = layout["fields"], layout["fmt"]
    created = dt.datetime(2024, 3, 1, 9, 30, 15) + dt.timedelta(days=i)
    row = {h: "" for h in layout["header"]}
    lat, lon = layout["point"]
    values = dict(
        id=f"R{i:04d}", created=created.strftime(fmt), closed=(created + dt.timedelta(hours=5)).strftime(fmt),
        agency="Streets", type="Pothole", status=layout["status"][0], channel=layout["channel"][0],
        nbhd="Northside", district="3", lat=f"{lat + i * 1e-4:.6f}", lon=f"{lon:.6f}", address=f"{i} Main St", zip="12345",
    )  # fmt: skip
    values.update(overrides)
    for key, value in values.items():
        if key in f:
            row[f[key]] = value
    return row


def write_csv(
    path: Path, header: list[str], rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(fh, fieldnames=header, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def export(tmp_path: Path, source: str, rows: list[dict[str, str]], name: str = "export.csv", **kw) -> Path:
    return write_csv(tmp_path / name, LAYOUTS[source]["header"], rows, **kw)


# --- every source -----------------------------------------------------------------------------------


def test_every_mapping_file_has_a_layout_here():
    assert {p.stem for p in paths.resource("mappings").glob("*.yml")} == set(LAYOUTS)


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_each_source_is_recognised_and_imported(tmp_path, source):
    rows = [base_row(source, i) for i in range(5)]
    path = export(tmp_path, source, rows)
    result = import_requests("auto", path, name="city")
    assert result.source == source
    df = citykit.load("service_requests", "city")
    assert len(df) == 5
    expected_created = [pd.Timestamp(2024, 3, 1 + i, 9, 30, 15) for i in range(5)]
    assert sorted(df["created_at"]) == expected_created  # city-local clock kept, whatever the format
    assert (df["closed_at"] - df["created_at"]).eq(pd.Timedelta(hours=5)).all()
    assert set(df["status"]) == {LAYOUTS[source]["status"][1]}
    assert set(df["channel"]) == {LAYOUTS[source]["channel"][1]}
    assert registry.get("city").as_of == dt.date(2024, 3, 5)  # newest timestamp: R0004 closed 2024-03-05 14:30


# --- flags, counted on planted rows ----------------------------------------------------------------


def planted_baltimore(tmp_path: Path) -> tuple[Path, dict[str, set[str]]]:
    """40 Baltimore rows with defects planted on known ids; returns the file and the ids per defect."""
    rows = [base_row("baltimore", i, type="SW-Dirty Alley") for i in range(40)]
    planted = {
        "zero": {"R0001", "R0002"},
        "placeholder_point": {"R0003", "R0004", "R0005"},
        "outside": {"R0006"},
        "placeholder_date": {"R0007"},
        "before_created": {"R0008", "R0009"},
        "variant": {"R0010", "R0011"},
        "no_neighborhood": {"R0012"},
        "zip_junk": {"R0013", "R0014"},
        "duplicate_status": {"R0015", "R0016"},
        "sensitive": {"R0017"},
    }
    by_id = {r["ServiceRequestNum"]: r for r in rows}
    for rid in planted["zero"]:
        by_id[rid].update(Latitude="0", Longitude="0")
    for rid in planted["placeholder_point"]:
        by_id[rid].update(Latitude="39", Longitude="-77")
    by_id["R0006"].update(Latitude="40.5000", Longitude="-75.1000")
    by_id["R0007"]["CloseDate"] = "01/01/1900 12:00:00 AM"
    for rid in planted["before_created"]:
        by_id[rid]["CloseDate"] = "02/01/2024 08:00:00 AM"
    by_id["R0010"]["SRType"] = "SW-Dirty  Alley"
    by_id["R0011"]["SRType"] = "sw-dirty alley"
    by_id["R0012"]["Neighborhood"] = ""
    by_id["R0013"]["ZipCode"] = "2122321223"
    by_id["R0014"]["ZipCode"] = "0"
    by_id["R0015"]["SRStatus"] = "Closed (Duplicate)"
    by_id["R0016"]["SRStatus"] = "Open (Duplicate)"
    by_id["R0016"]["CloseDate"] = ""
    by_id["R0017"]["SRType"] = "MOHS-Homeless Outreach"
    rows.append(dict(by_id["R0020"]))  # the same request id twice
    return export(tmp_path, "baltimore", rows), planted


def ids(df: pd.DataFrame, column: str) -> set[str]:
    return set(df.loc[df[column].astype(bool), "request_id"])


def test_each_flag_class_is_counted_on_the_planted_rows(tmp_path):
    path, planted = planted_baltimore(tmp_path)
    result = import_requests("baltimore", path, name="planted")
    df = citykit.load("service_requests", "planted")
    assert len(df) == 40  # the repeated id is kept once
    assert ids(df, "flag_placeholder_coords") == planted["zero"] | planted["placeholder_point"] | planted["outside"]
    assert ids(df, "flag_placeholder_date") == planted["placeholder_date"]
    assert ids(df, "flag_closed_before_created") == planted["before_created"]
    assert ids(df, "flag_type_variant") == planted["variant"]
    assert ids(df, "flag_missing_neighborhood") == planted["no_neighborhood"]
    assert ids(df, "is_duplicate") == planted["duplicate_status"]
    assert df.loc[df.request_id == "R0016", "status"].item() == "Open"
    assert set(df["request_type"]) == {"SW-Dirty Alley", "MOHS-Homeless Outreach"}  # variants under the standard name
    # counted in the result and the saved report
    f = result.findings
    assert (f.zero_coords, f.placeholder_points["39,-77"], f.outside_city) == (2, 3, 1)
    assert sum(f.zip_junk.values()) == 2
    assert result.flags == {
        "flag_closed_before_created": 2, "flag_placeholder_date": 1, "flag_placeholder_coords": 6,
        "flag_type_variant": 2, "flag_missing_neighborhood": 1,
    }  # fmt: skip
    report = (imported_dir("planted") / REPORT_FILE).read_text()
    assert "| flag_placeholder_coords | 6 |" in report
    assert "Rows repeating a request id: 1" in report
    assert "ZIP codes that are not 5-digit ZIPs: 2 of" in report


def test_anonymized_like_the_bundled_city_and_raw_file_untouched(tmp_path):
    path, _ = planted_baltimore(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    import_requests("baltimore", path, name="anon")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    df = pd.read_parquet(imported_dir("anon") / "service_requests.parquet")
    assert not {"Address", "ZipCode", "address", "incident_address"} & set(df.columns)
    located = df.dropna(subset=["latitude"])
    assert np.allclose(located["latitude"], located["latitude"].round(3))
    assert df.loc[df.request_type == "MOHS-Homeless Outreach", ["latitude", "longitude"]].isna().all(axis=None)
    text = "\n".join(p.read_text(errors="ignore") for p in imported_dir("anon").glob("*.[mj]*"))
    assert "Main St" not in text


# --- bad input --------------------------------------------------------------------------------------


def test_empty_file(tmp_path, home):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(CitykitError, match="is empty"):
        import_requests("auto", path, name="bad")
    nothing_left(home, "bad")


def test_header_only(tmp_path, home):
    path = export(tmp_path, "baltimore", [])
    with pytest.raises(CitykitError, match="header but no rows"):
        import_requests("baltimore", path, name="bad")
    nothing_left(home, "bad")


def test_semicolon_delimiter_is_detected(tmp_path):
    rows = [base_row("boston311", i) for i in range(4)]
    path = export(tmp_path, "boston311", rows, delimiter=";")
    assert import_requests("auto", path, name="semi").rows == 4


def test_a_layout_that_splits_wrong_names_the_columns_it_needs(tmp_path, home, capsys):
    path = tmp_path / "wrong.csv"
    path.write_text("SRNumber CreatedDate Status\nA 01/01/2024 Open\n")
    assert main(["data", "import", "auto", str(path), "--name", "bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "matches no known source" in err and "--mapping FILE" in err
    assert "ServiceRequestNum" in err  # lists what the sources need
    nothing_left(home, "bad")


def test_latin1_bytes_are_read(tmp_path):
    rows = [base_row("baltimore", i, nbhd="Cañon Heights") for i in range(3)]
    path = export(tmp_path, "baltimore", rows, encoding="latin-1")
    result = import_requests("baltimore", path, name="latin")
    assert set(citykit.load("service_requests", "latin")["neighborhood"]) == {"Cañon Heights"}
    assert "latin-1" in result.report


def test_truncated_last_line_is_skipped_and_reported(tmp_path):
    path = export(tmp_path, "baltimore", [base_row("baltimore", i) for i in range(5)])
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",") - 40])  # cut the last record short, no newline
    result = import_requests("baltimore", path, name="cut")
    assert result.rows == 4
    assert "Malformed rows skipped: 1" in result.report


def test_mostly_malformed_rows_are_an_error(tmp_path, home):
    path = export(tmp_path, "baltimore", [base_row("baltimore", i) for i in range(5)])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [line.rsplit(",", 3)[0] for line in lines[1:]]) + "\n")
    with pytest.raises(CitykitError, match="do not split into the header's columns"):
        import_requests("baltimore", path, name="bad")
    nothing_left(home, "bad")


def test_duplicate_column_names(tmp_path, home):
    header = LAYOUTS["baltimore"]["header"]
    rows = [list(base_row("baltimore", i).values()) for i in range(3)]
    unused = tmp_path / "unused.csv"  # a repeated column the mapping does not read: fine
    with unused.open("w", newline="") as fh:
        csv.writer(fh).writerows([[*header, "PoliceDistrict"], *[[*r, "X"] for r in rows]])
    assert import_requests("baltimore", unused, name="dupok").rows == 3
    used = tmp_path / "used.csv"  # a repeated column it needs: ambiguous
    with used.open("w", newline="") as fh:
        csv.writer(fh).writerows([[*header, "SRType"], *[[*r, "Other"] for r in rows]])
    with pytest.raises(CitykitError, match="SRType more than once"):
        import_requests("baltimore", used, name="bad")
    nothing_left(home, "bad")


def test_quoted_line_breaks_stay_in_one_record(tmp_path):
    rows = [base_row("sf311_warehouse", i) for i in range(4)]
    rows[1]["status_notes"] = "called back,\nno answer\r\nclosed"
    rows[2]["incident_address"] = 'Intersection of "1ST ST"\nand FOLSOM'
    path = export(tmp_path, "sf311_warehouse", rows)
    assert path.read_text().count("\n") > 6
    assert import_requests("auto", path, name="notes").rows == 4


def test_unmapped_status_is_an_error_that_names_it(tmp_path, home):
    rows = [base_row("baltimore", i) for i in range(3)]
    rows[2]["SRStatus"] = "Escalated"
    with pytest.raises(CitykitError, match=r"'Escalated' \(1 rows\).*--mapping FILE"):
        import_requests("baltimore", export(tmp_path, "baltimore", rows), name="bad")
    nothing_left(home, "bad")


def test_unreadable_dates_are_an_error(tmp_path, home):
    rows = [base_row("baltimore", i, created="2024-13-45 25:00") for i in range(3)]
    with pytest.raises(CitykitError, match="created dates are not in the formats"):
        import_requests("baltimore", export(tmp_path, "baltimore", rows), name="bad")
    nothing_left(home, "bad")


def test_custom_mapping_file(tmp_path):
    spec = yaml.safe_load((paths.resource("mappings") / "baltimore.yml").read_text())
    spec["columns"]["request_id"] = "Ticket"
    spec["source"] = "mytown"
    mapping = tmp_path / "mytown.yml"
    mapping.write_text(yaml.safe_dump(spec))
    header = ["Ticket" if h == "ServiceRequestNum" else h for h in LAYOUTS["baltimore"]["header"]]
    rows = [
        {("Ticket" if k == "ServiceRequestNum" else k): v for k, v in base_row("baltimore", i).items()}
        for i in range(3)
    ]
    path = write_csv(tmp_path / "mytown.csv", header, rows)
    result = import_requests("auto", path, mapping_file=mapping)
    assert (result.name, result.rows) == ("mytown", 3)


# --- re-import --------------------------------------------------------------------------------------


def test_reimport_updates_by_request_id_and_moves_the_as_of(tmp_path):
    first = [base_row("baltimore", i, status="Open", closed="") for i in range(6)]
    import_requests("baltimore", export(tmp_path, "baltimore", first, name="jan.csv"))
    assert registry.get("baltimore").as_of == dt.date(2024, 3, 6)
    newer = [base_row("baltimore", i) for i in range(4, 10)]  # R0004-5 now closed, R0006-9 new
    result = import_requests("baltimore", export(tmp_path, "baltimore", newer, name="feb.csv"))
    assert (result.added, result.updated, result.rows) == (4, 2, 10)
    df = citykit.load("service_requests", "baltimore").set_index("request_id")
    assert df.index.is_unique and len(df) == 10
    assert df.loc[["R0004", "R0005"], "status"].eq("Closed").all()
    assert df.loc[["R0000", "R0003"], "status"].eq("Open").all()
    assert registry.get("baltimore").as_of == dt.date(2024, 3, 10)
    again = import_requests("baltimore", export(tmp_path, "baltimore", newer, name="feb.csv"))
    assert (again.added, again.updated, again.rows) == (0, 6, 10)
    assert len(citykit.load("service_requests", "baltimore")) == 10


def test_a_failed_reimport_keeps_the_previous_dataset(tmp_path):
    import_requests("baltimore", export(tmp_path, "baltimore", [base_row("baltimore", i) for i in range(3)]))
    broken = [base_row("baltimore", i, status="Escalated") for i in range(3, 6)]
    with pytest.raises(CitykitError):
        import_requests("baltimore", export(tmp_path, "baltimore", broken, name="b.csv"))
    assert len(citykit.load("service_requests", "baltimore")) == 3


def test_another_source_cannot_overwrite_a_dataset(tmp_path):
    import_requests(
        "baltimore", export(tmp_path, "baltimore", [base_row("baltimore", i) for i in range(2)]), name="town"
    )
    with pytest.raises(CitykitError, match="can only update a boston311 dataset"):
        import_requests(
            "boston311", export(tmp_path, "boston311", [base_row("boston311", 0)], name="b.csv"), name="town"
        )


def test_bundled_dataset_names_are_refused(tmp_path):
    with pytest.raises(CitykitError, match="bundled dataset"):
        import_requests("baltimore", export(tmp_path, "baltimore", [base_row("baltimore", 0)]), name="riverton")


def test_cli_import_prints_the_report_and_given_as_of(tmp_path, capsys):
    path = export(tmp_path, "chicago311", [base_row("chicago311", i) for i in range(3)])
    assert main(["data", "import", "chicago311", str(path), "--name", "chi", "--as-of", "2024-04-30"]) == 0
    out = capsys.readouterr().out
    assert "# Import report: chi" in out and "As-of date: 2024-04-30" in out
    assert registry.get("chi").as_of == dt.date(2024, 4, 30)


@pytest.mark.parametrize(
    "change, says",
    [
        ({"columns": {"request_id": "ID"}}, "needs columns for created_at"),
        ({"status_map": {"Open": "Opened"}}, "status_map values must be one of"),
        ({"channel_default": "Fax"}, "channel values must be one of"),
    ],
)
def test_a_broken_mapping_says_what_is_wrong(tmp_path, change, says):
    spec = {**yaml.safe_load((paths.resource("mappings") / "baltimore.yml").read_text()), **change}
    (tmp_path / "m.yml").write_text(yaml.safe_dump(spec))
    path = export(tmp_path, "baltimore", [base_row("baltimore", 0)])
    with pytest.raises(CitykitError, match=says):
        import_requests("auto", path, mapping_file=tmp_path / "m.yml")


def test_a_bad_as_of_is_bad_input(tmp_path):
    with pytest.raises(CitykitError, match="not a date"):
        import_requests("baltimore", export(tmp_path, "baltimore", [base_row("baltimore", 0)]), as_of="March")


# --- two dates: the extract date (timeliness) and the analysis "now" (as-of) ---------------------


def test_an_implausible_date_never_becomes_the_as_of_or_the_extract_date(tmp_path):
    future = base_row("baltimore", 7, created="01/01/2099 10:00:00 AM", closed="", status="Open")
    rows = [base_row("baltimore", i) for i in range(6)] + [future]
    result = import_requests("baltimore", export(tmp_path, "baltimore", rows), extract_date="2024-03-20")
    ds = registry.get("baltimore")
    assert ds.as_of == dt.date(2024, 3, 6) and ds.as_of_inferred  # R0005 closed 2024-03-06 14:30
    assert ds.extract_date == dt.date(2024, 3, 20)
    assert result.after_extract == 1
    assert "inferred" in result.report and "given with --extract-date" in result.report


def test_a_stale_export_fails_timeliness(tmp_path):
    from citykit.data.quality import check_dataset

    rows = [base_row("baltimore", i) for i in range(6)]
    path = export(tmp_path, "baltimore", rows)
    stamp = dt.datetime(2024, 9, 30, 12).timestamp()
    os.utime(path, (stamp, stamp))  # no --extract-date: the file's own date, and the report says so
    result = import_requests("baltimore", path)
    assert "the file's own modification date" in result.report
    card = check_dataset("baltimore")
    staleness = card.get("staleness_days")
    assert staleness.measured > 200 and staleness.gate_failed
    fresh = import_requests("baltimore", export(tmp_path, "baltimore", rows, name="b.csv"), name="fresh",
                            extract_date="2024-03-07")  # fmt: skip
    assert fresh.as_of == dt.date(2024, 3, 6)
    assert not check_dataset("fresh").get("staleness_days").gate_failed


def test_data_list_shows_the_range_of_unflagged_requests(tmp_path):
    from citykit.data.inventory import summarize

    future = base_row("baltimore", 7, created="01/01/2099 10:00:00 AM", closed="", status="Open")
    rows = [base_row("baltimore", i) for i in range(6)] + [future]
    import_requests("baltimore", export(tmp_path, "baltimore", rows), extract_date="2024-03-20")
    listed = summarize("baltimore", score=False)
    assert (listed.first_request, listed.last_request) == ("2024-03-01", "2024-03-06")  # not 2099-01-01
