"""Issue 16, findings 3, 4 and 6: imports that are honest, whatever the input.

A date outside the plausible range is flagged and never becomes the as-of date (the year 9999 is a
flag, not a crash); a mapping cannot publish a column the standard calls personal (by its name, or
by its values when renamed); the import report lists what was actually written; text is capped; and
paths reach SQL as parameters (a CITYKIT_HOME under a folder named o'brien works end to end).

Expected values are computed here from the raw CSV with plain pandas or pyarrow, never taken from
the importer's own output. Tiny files (about 20 rows) keep it fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from import_checks import nothing_left

import citykit
from citykit import paths
from citykit.cli import main
from citykit.data import registry
from citykit.data.importers import REPORT_FILE, import_requests, imported_dir
from citykit.data.quality import check_dataset
from citykit.data.query import build_query, quote_identifier
from citykit.errors import CitykitError

pytestmark = pytest.mark.usefixtures("home")  # each test imports into its own CITYKIT_HOME

# The SF311 warehouse copy's header, as in ../shared/realdata (facts.md: 311 schemas).
HEADER = [
    "unique_key", "created_date", "closed_date", "resolution_action_updated_date", "status", "status_notes",
    "agency_name", "category", "complaint_type", "descriptor", "incident_address", "supervisor_district",
    "neighborhood", "location", "source", "media_url", "latitude", "longitude", "police_district",
]  # fmt: skip
STAMP = "%Y-%m-%d %H:%M:%S+00:00"
PERSONAL = {
    "status_notes": "Closed by Bob Smithers, call 415-555-0123 or bob.smithers@example.org",
    "incident_address": "{i} Valencia St",
}


def row(i: int, **overrides: str) -> dict[str, str]:
    """A clean 2017 request: created 2017-03-(i+1) 10:00, closed a day later."""
    created = dt.datetime(2017, 3, 1, 10) + dt.timedelta(days=i)
    values = {h: "" for h in HEADER}
    values.update(
        unique_key=f"K{i:03d}", created_date=created.strftime(STAMP),
        closed_date=(created + dt.timedelta(days=1)).strftime(STAMP), status="Closed",
        status_notes=PERSONAL["status_notes"], agency_name="DPW Ops", category="Street and Sidewalk Cleaning",
        complaint_type="Litter", descriptor="Bulky Items", incident_address=PERSONAL["incident_address"].format(i=i),
        supervisor_district="9", neighborhood="Mission", source="Phone", latitude=f"{37.76 + i * 1e-4:.6f}",
        longitude="-122.420000", location="(37.76, -122.42)", media_url="http://example.org/p.jpg",
    )  # fmt: skip
    values.update(overrides)
    return values


def write(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER, mtime: dt.datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def raw(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def custom_mapping(tmp_path: Path, columns: dict[str, str], drop_lists: bool = False) -> Path:
    """A copy of the bundled sf311_warehouse mapping with some columns remapped; `drop_lists`: its
    personal and defect lists removed too (detection must not rely on the mapping's own word)."""
    spec = yaml.safe_load((paths.resource("mappings") / "sf311_warehouse.yml").read_text())
    spec["columns"].update(columns)
    spec["source"] = "mytown"
    if drop_lists:
        spec.pop("personal_columns", None)
        spec.pop("defects", None)
    path = tmp_path / "mytown.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# --- finding 3: one bad date never moves the as-of date ------------------------------------------------


@pytest.mark.parametrize("mtime", [dt.datetime(2018, 1, 5, 12), None], ids=["file-dated-2018", "file-dated-today"])
def test_a_2099_date_is_flagged_and_the_as_of_stays_in_2017(tmp_path, capsys, mtime):
    rows = [row(i) for i in range(20)]
    rows.append(row(20, unique_key="FUTURE", created_date="2099-01-01 00:00:00+00:00", closed_date="", status="Open"))
    path = write(tmp_path / "sf2017.csv", rows, mtime=mtime)
    assert main(["data", "import", "sf311_warehouse", str(path), "--name", "sf2017"]) == 0

    r = raw(path)  # expected as-of: the newest created or closed date of the other rows (plain pandas)
    stamps = pd.concat([r["created_date"], r["closed_date"]]).dropna().str[:19].map(pd.Timestamp)
    expected = stamps[stamps.dt.year < 2099].max().date()
    assert expected.year == 2017
    ds = registry.get("sf2017")
    assert ds.as_of == expected and ds.as_of_inferred

    df = citykit.load("service_requests", "sf2017")
    flagged = set(df.loc[df["flag_placeholder_date"], "request_id"])
    assert flagged == {"FUTURE"}  # only the implausible row
    assert df.loc[df.request_id == "FUTURE", "created_at"].item() == pd.Timestamp(2099, 1, 1)  # kept, flagged
    report = (imported_dir("sf2017") / REPORT_FILE).read_text()
    assert "Plausible dates: 1990-01-01 to " in report and "created_at 1 (e.g. 2099-01-01 00:00:00)" in report

    # data check: the created_in_future gate reports the 2099 row instead of passing
    card = check_dataset("sf2017")
    check = card.get("created_in_future")
    assert (check.failing, check.examples, check.gate_failed) == (1, ("FUTURE",), True)
    capsys.readouterr()
    assert main(["data", "check", "sf2017"]) == 1
    assert "created_in_future" in capsys.readouterr().err


def test_rows_dated_9999_are_flagged_not_a_crash(tmp_path):
    rows = [row(i) for i in range(10)]
    rows += [row(10 + k, unique_key=f"Y{k}", created_date="9999-01-01 00:00:00+00:00", closed_date="", status="Open")
             for k in range(3)]  # fmt: skip
    rows.append(row(13, unique_key="C9999", closed_date="9999-12-31 23:59:59+00:00"))
    path = write(tmp_path / "sf9999.csv", rows)
    assert main(["data", "import", "sf311_warehouse", str(path), "--name", "sf9999"]) == 0

    df = citykit.load("service_requests", "sf9999")
    assert len(df) == len(raw(path)) == 14  # nothing lost
    odd = {"Y0", "Y1", "Y2", "C9999"}
    assert set(df.loc[df["flag_placeholder_date"], "request_id"]) == odd
    # the year 9999 is kept out of the published timestamps: every value fits nanoseconds
    for column in ("created_at", "closed_at", "due_at"):
        assert df[column].dropna().lt(pd.Timestamp("2262-01-01")).all()
        df[column].astype("datetime64[ns]")  # would raise OutOfBoundsDatetime for 9999
    created = df.set_index("request_id")["created_at"]
    assert created[["Y0", "Y1", "Y2"]].eq(pd.Timestamp(1900, 1, 1)).all()  # the placeholder for "no real date"
    assert pd.isna(df.loc[df.request_id == "C9999", "closed_at"].item())
    r = raw(path)
    real = pd.concat([r["created_date"], r["closed_date"]]).dropna().str[:19]
    expected = max(pd.Timestamp(v) for v in real if not v.startswith("9999")).date()
    assert registry.get("sf9999").as_of == expected
    report = (imported_dir("sf9999") / REPORT_FILE).read_text()
    assert "created_at 3 (e.g. 9999-01-01 00:00:00)" in report and "closed_at 1" in report
    assert "cannot hold, are not published (created_at 3, closed_at 1)" in report
    assert check_dataset("sf9999").get("placeholder_date").failing == 3  # scored from the values (1900)


# --- finding 4: personal columns are never published -------------------------------------------------


@pytest.mark.parametrize("drop_lists", [False, True], ids=["mapping-lists-them", "lists-removed"])
@pytest.mark.parametrize(
    "columns, column",
    [({"descriptor": "status_notes"}, "status_notes"), ({"neighborhood": "incident_address"}, "incident_address")],
)
def test_a_mapping_cannot_publish_a_personal_column_by_name(tmp_path, home, capsys, columns, column, drop_lists):
    path = write(tmp_path / "x.csv", [row(i) for i in range(5)])
    mapping = custom_mapping(tmp_path, columns, drop_lists)
    assert main(["data", "import", "auto", str(path), "--mapping", str(mapping), "--name", "leak"]) == 2
    err = one_line_error(capsys)
    assert f"{next(iter(columns))} would publish the column {column!r}" in err and "personal" in err
    nothing_left(home, "leak")


@pytest.mark.parametrize(
    "values, what",
    [
        (lambda i: f"{100 + i} Valencia St", "street addresses"),
        (lambda i: f"resident{i}@example.org", "e-mail addresses"),
        (lambda i: f"(415) 555-01{i:02d}", "phone numbers"),
        (lambda i: f"Crew {i} spoke with the resident, who was upset about it", "free text"),
        (
            lambda i: ("Apt {i}B, {n} Oak Ave", "Unit {i}, {n} Elm St", "Suite {n}, Main Blvd")[i % 3].format(
                i=i, n=10 + i
            ),
            "street addresses",
        ),
        (
            lambda i: ("Maria Gonzalez", "John Smith", "Pierre Dubois", "Anna Maria Rossi", "Hans Becker")[i % 5],
            "people's names",
        ),
    ],
    ids=["addresses", "emails", "phones", "notes", "units", "names"],
)
def test_a_renamed_personal_column_is_refused_by_its_values(tmp_path, home, capsys, values, what):
    header = [*HEADER, "zone_code"]  # an innocent name, personal values
    rows = [row(i, zone_code=values(i)) for i in range(24)]
    path = write(tmp_path / "x.csv", rows, header)
    mapping = custom_mapping(tmp_path, {"neighborhood": "zone_code"}, drop_lists=True)
    with pytest.raises(CitykitError, match=f"'zone_code'.*24 of 24 sampled values (look like|are) {what}"):
        import_requests("auto", path, mapping_file=mapping, name="leak")
    nothing_left(home, "leak")
    # the same values in a column nobody maps are simply not imported, and the report calls them personal
    assert import_requests("sf311_warehouse", path, name="fine").rows == 24
    report = (imported_dir("fine") / REPORT_FILE).read_text()
    assert "zone_code" in next(x for x in report.splitlines() if x.startswith("- Of those, personal"))


def _standard_identifiers(path: Path) -> list[str]:
    """Every column a standard file's privacy.columns classes identifier and never published (YAML read here)."""
    tables = yaml.safe_load(path.read_text(encoding="utf-8"))["privacy"]["columns"]
    return sorted(
        name
        for table in tables.values()
        for name, spec in table["columns"].items()
        if spec["class"] == "identifier" and spec["publish"] == "never"
    )


def test_a_column_the_standard_classes_as_identifier_is_never_published(tmp_path, home):
    """Issue 20: the importers' personal columns come from the standard's privacy.columns table. Each of its
    never-published identifiers (date_of_birth too, which no name pattern or bundled mapping lists), mapped to
    the descriptor under its own name with harmless-looking values, is refused and nothing is written."""
    names = _standard_identifiers(paths.standards_dir() / "disaggregation.yml")
    assert {"date_of_birth", "caller_name", "notes"} <= set(names)
    for name in names:
        header = HEADER if name in HEADER else [*HEADER, name]
        path = write(tmp_path / f"{name}.csv", [row(i, **{name: f"V{i:04d}"}) for i in range(5)], header)
        mapping = custom_mapping(tmp_path, {"descriptor": name}, drop_lists=True)
        with pytest.raises(CitykitError, match=f"descriptor would publish the column '{name}'.*identifier"):
            import_requests("auto", path, mapping_file=mapping, name="leak")
        nothing_left(home, "leak")


def test_a_column_added_to_the_standard_is_refused_by_the_next_import(tmp_path, home, monkeypatch):
    """A column the standard does not name is imported; classed identifier in a temporary copy of the standard,
    the same import is refused: the importer reads the standard, not a list of its own."""
    import shutil

    path = write(tmp_path / "x.csv", [row(i, badge_number=f"BN{i:05d}") for i in range(6)], [*HEADER, "badge_number"])
    mapping = custom_mapping(tmp_path, {"descriptor": "badge_number"}, drop_lists=True)
    import_requests("auto", path, mapping_file=mapping, name="before")
    assert "BN00003" in published_text(imported_dir("before"))  # published: nothing says it is personal

    folder = tmp_path / "standards"
    folder.mkdir()
    for file in paths.standards_dir().iterdir():
        if file.is_file():
            shutil.copy(file, folder)
    content = yaml.safe_load((folder / "disaggregation.yml").read_text(encoding="utf-8"))
    content["privacy"]["columns"]["service_requests"]["columns"]["badge_number"] = {
        "class": "identifier", "publish": "never", "reason": "The inspector's badge: it names the inspector."
    }  # fmt: skip
    (folder / "disaggregation.yml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(paths, "standards_dir", lambda: folder)
    assert "badge_number" in _standard_identifiers(folder / "disaggregation.yml")
    with pytest.raises(CitykitError, match=r"descriptor would publish the column 'badge_number'.*identifier"):
        import_requests("auto", path, mapping_file=mapping, name="after")
    nothing_left(home, "after")


def published_text(folder: Path) -> str:
    """Every value of every published file, as text (parquet read with pyarrow, not the importer)."""
    parts = []
    for file in folder.iterdir():
        if file.suffix == ".parquet":
            table = pq.read_table(file)
            parts += [str(v) for column in table.columns for v in column.to_pylist()]
            parts += table.column_names
        else:
            parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_place_names_are_not_people(tmp_path):
    """Neighborhood names that start with a given name (Glen, Victoria, Lincoln) are not refused."""
    from citykit.data.city import NAMES
    from citykit.data.importers.personal import content_reason

    places = pd.Series([*NAMES, "Glen Park", "Victoria Park", "Lincoln Heights", "Morgan State University"])
    assert content_reason(places) is None


def test_no_personal_text_in_the_published_data(tmp_path):
    path = write(tmp_path / "x.csv", [row(i) for i in range(12)])
    import_requests("sf311_warehouse", path, name="clean")
    text = published_text(imported_dir("clean"))
    for needle in ("Smithers", "415-555", "@example.org", "Valencia", "example.org/p.jpg"):
        assert needle not in text
    assert "Litter" in text  # the published descriptor is there: the scan reads values


def test_the_import_report_lists_what_was_written(tmp_path):
    """The report's column lines equal the written file's columns (pyarrow) and the mapping applied."""
    path = write(tmp_path / "x.csv", [row(i) for i in range(6)])
    mapping = custom_mapping(tmp_path, {"descriptor": "descriptor"})  # not the bundled complaint_type
    import_requests("auto", path, mapping_file=mapping, name="mytown")
    report = (imported_dir("mytown") / REPORT_FILE).read_text()
    written = pq.read_schema(imported_dir("mytown") / "service_requests.parquet").names
    spec = yaml.safe_load(mapping.read_text())["columns"]
    expected = [f"{c} <- {spec[c]!r}" for c in written if c in spec]
    line = next(x for x in report.splitlines() if x.startswith("- Published columns"))
    shown = re.findall(r"(\w+) <- '([^']*)'", line)
    assert [f"{c} <- {s!r}" for c, s in shown] == expected
    assert "descriptor <- 'descriptor'" in line  # the mapping actually applied
    unpublished = next(x for x in report.splitlines() if x.startswith("- Not published"))
    left = [h for h in HEADER if h not in {spec[c] for c in written if c in spec}]
    assert unpublished.startswith(f"- Not published: {', '.join(left)}")
    assert "complaint_type" in left
    personal = next(x for x in report.splitlines() if x.startswith("- Of those, personal"))
    assert all(c in personal for c in ("status_notes", "incident_address", "media_url"))


def test_text_is_capped_and_the_report_says_so(tmp_path):
    huge = "x" * (5 << 20)  # a 5 MB descriptor
    long_ids = ["L" * 250 + "a", "L" * 250 + "b"]  # differ only after the cap
    rows = [row(i) for i in range(4)]
    rows += [row(4, complaint_type=huge), row(5, unique_key=long_ids[0]), row(6, unique_key=long_ids[1])]
    path = write(tmp_path / "big.csv", rows)
    result = import_requests("sf311_warehouse", path, name="big")
    df = citykit.load("service_requests", "big")
    assert len(df) == 7
    assert df["descriptor"].str.len().max() == 200
    assert df.loc[df.descriptor.str.startswith("xxx"), "descriptor"].item() == "x" * 199 + "…"
    long = df.loc[df.request_id.str.startswith("LLL"), "request_id"]
    assert len(long) == 2 and long.nunique() == 2 and long.str.len().eq(200).all()  # still distinct
    assert "Text capped at 200 characters" in result.report and "3 values cut (request_id 2, descriptor 1)" in (
        result.report
    )
    assert len(result.report) < 20_000  # the 5 MB value is not echoed


# --- finding 6: paths and values reach SQL as parameters ------------------------------------------------


def test_a_home_under_a_folder_named_obrien_works_end_to_end(tmp_path, monkeypatch, capsys):
    obrien = tmp_path / "o'brien"
    monkeypatch.setenv("CITYKIT_HOME", str(obrien / "home"))
    path = write(obrien / "it's.csv", [row(i) for i in range(6)])
    assert main(["data", "import", "sf311_warehouse", str(path), "--name", "ob"]) == 0
    newer = write(obrien / "newer.csv", [row(i) for i in range(4, 9)])
    assert main(["data", "import", "sf311_warehouse", str(newer), "--name", "ob"]) == 0  # merge with the previous
    df = citykit.load("service_requests", "ob", period="2017-03", neighborhood="Mission", columns=["request_id"])
    assert sorted(df["request_id"]) == [f"K{i:03d}" for i in range(9)]
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr()
    assert "ob" in listing.out and "Error" not in listing.err
    assert main(["data", "check", "ob"]) in (0, 1)  # a verdict, not a ParserException
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(CitykitError, match="no service_requests in period 2016-01"):  # the empty-period query
        citykit.load("service_requests", "ob", period="2016-01")


def test_identifiers_are_quoted_not_pasted():
    assert quote_identifier('we"ird') == '"we""ird"'
    with pytest.raises(CitykitError):
        quote_identifier("")
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("we""ird" INTEGER, "created_at" TIMESTAMP)')
    con.execute("INSERT INTO t VALUES (1, TIMESTAMP '2024-01-05'), (2, TIMESTAMP '2024-02-05')")
    query = build_query("service_requests", ['we"ird', "created_at"], period="2024-01", columns=['we"ird'])
    assert con.execute(query.sql("t"), query.params).fetchall() == [(1,)]


def test_request_ids_shaped_like_phone_numbers_are_ids(tmp_path):
    """Ids are sniffed for e-mails and addresses only: 311-555-0001 is a ticket number in some cities."""
    path = write(tmp_path / "x.csv", [row(i, unique_key=f"311-555-{i:04d}") for i in range(6)])
    assert import_requests("sf311_warehouse", path, name="ids").rows == 6


@pytest.mark.parametrize("content", ["- a\n- b\n", "unique_key,created_date\nK1,2017-03-01\n", "\x00\xff\xfe"])
def test_a_mapping_that_is_not_a_mapping_is_one_line(tmp_path, capsys, content):
    """QA walk: --mapping pointing at a YAML list or at a CSV file gave a traceback."""
    path = write(tmp_path / "x.csv", [row(i) for i in range(3)])
    mapping = tmp_path / "m.csv"
    mapping.write_bytes(content.encode("latin-1"))
    assert main(["data", "import", "auto", str(path), "--mapping", str(mapping), "--name", "m"]) == 2
    assert one_line_error(capsys).startswith("citykit: mapping m.csv")


@pytest.mark.parametrize(
    "options, says",
    [
        (["--as-of", "9999-12-31"], "not plausible"),
        (["--extract-date", "1850-01-01"], "not plausible"),
        (["--as-of", "2017-05-01", "--extract-date", "2017-04-01"], "after the extract date"),
    ],
)
def test_implausible_as_of_and_extract_dates_are_one_line(tmp_path, home, capsys, options, says):
    """QA walk: --as-of 9999-12-31 was an OverflowError; an as-of after the extract date was accepted."""
    path = write(tmp_path / "x.csv", [row(i) for i in range(3)])
    assert main(["data", "import", "sf311_warehouse", str(path), "--name", "d", *options]) == 2
    assert says in one_line_error(capsys)
    nothing_left(home, "d")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_export_is_named_as_such(tmp_path, home, capsys, encoding):
    """QA walk: a UTF-16 CSV (Excel's "Unicode text") was blamed on its date formats."""
    path = write(tmp_path / "x.csv", [row(i) for i in range(3)])
    path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))
    assert main(["data", "import", "auto", str(path), "--name", "u"]) == 2
    assert "x.csv is UTF-16 text" in one_line_error(capsys)
    nothing_left(home, "u")


def test_a_citykit_home_that_is_a_file_says_so(tmp_path, monkeypatch, capsys):
    """QA walk: CITYKIT_HOME pointing at a file advised `citykit data build`."""
    (tmp_path / "homefile").write_text("x")
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "homefile"))
    assert main(["data", "check", "riverton"]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)


def test_a_postgres_dataset_without_its_url_says_so(monkeypatch):
    """QA walk: a PostgreSQL dataset with CITY_DB_URL unset advised `citykit data build`."""
    from citykit.reports.params import check_dataset

    monkeypatch.delenv("CITY_DB_URL_QA", raising=False)
    registry.register(
        registry.Dataset(name="pgqa", as_of=dt.date(2024, 3, 3), kind="postgres", location="CITY_DB_URL_QA")
    )
    with pytest.raises(
        CitykitError, match="PostgreSQL database and the environment variable CITY_DB_URL_QA is not set"
    ):
        check_dataset("pgqa")
