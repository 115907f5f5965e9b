"""The two real samples in ../shared/realdata import, load and score; every count is checked
against plain pandas on the raw file (skipped when the folder is absent, as on a user's machine)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

import citykit
from citykit import paths
from citykit.data import registry
from citykit.data.importers import import_requests
from citykit.data.quality import check_dataset, scorecard

REALDATA = paths.course_root().parent / "shared" / "realdata"
SF = REALDATA / "san_francisco" / "311_service_requests.csv"
BALTIMORE = REALDATA / "baltimore" / "311_sample.csv"
pytestmark = pytest.mark.skipif(not REALDATA.exists(), reason="real samples absent (../shared/realdata)")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both samples imported (source recognised from the header) into one temporary home."""
    home = tmp_path_factory.mktemp("realdata_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKIT_HOME", str(home))
        hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (SF, BALTIMORE)}
        results = {
            "sf": import_requests("auto", SF, name="sf"),
            "baltimore": import_requests("auto", BALTIMORE, name="baltimore"),
        }
        yield results, hashes, mp


def raw(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def test_sources_are_recognised_and_raw_files_unchanged(imported):
    results, hashes, _ = imported
    assert results["sf"].source == "sf311_warehouse"
    assert results["baltimore"].source == "baltimore"
    for path, digest in hashes.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_san_francisco_counts_match_the_raw_file(imported):
    results, _, _ = imported
    df = citykit.load("service_requests", "sf")
    r = raw(SF)
    assert len(df) == len(r) == 10_000  # 10,510 physical lines: quoted line breaks kept in their records
    zero = r["latitude"].astype(float).eq(0) & r["longitude"].astype(float).eq(0)
    assert results["sf"].findings.zero_coords == int(zero.sum())
    flagged = set(df.loc[df.flag_placeholder_coords, "request_id"])
    assert set(r.loc[zero, "unique_key"]) <= flagged
    # Closed before created, on the clock times as written (the +00:00 is a label)
    created = pd.to_datetime(r["created_date"].str[:19])
    closed = pd.to_datetime(r["closed_date"].str[:19])
    assert int(df["flag_closed_before_created"].sum()) == int((closed < created).sum())
    assert int(df["flag_missing_neighborhood"].sum()) == int(r["neighborhood"].isna().sum())
    assert registry.get("sf").as_of == max(created.max(), closed.max()).date()
    assert set(df["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")) == set(r["created_date"].str[:19])
    # complaint_type (published as descriptor) spellings that differ only in case or spacing are
    # reported: after collapsing spaces, every spelling but the most common of its group
    collapsed = r["complaint_type"].str.split().str.join(" ")
    counts = collapsed.value_counts()
    top = counts.groupby(counts.index.str.lower().str.replace(r"[^0-9a-z]", "", regex=True)).idxmax()
    standard = collapsed.str.lower().str.replace(r"[^0-9a-z]", "", regex=True).map(top)
    expected = set(r.loc[r["complaint_type"] != standard, "complaint_type"])
    assert set(results["sf"].findings.descriptor_variants) == expected == {"Other", "MUNI  -"}


def test_baltimore_counts_match_the_raw_file(imported):
    results, _, _ = imported
    df = citykit.load("service_requests", "baltimore")
    r = raw(BALTIMORE)
    assert len(df) == len(r)
    dup = r["SRStatus"].str.contains("(Duplicate)", regex=False)
    assert set(df.loc[df.is_duplicate, "request_id"]) == set(r.loc[dup, "ServiceRequestNum"])
    at_point = r["Latitude"].astype(float).eq(39) & r["Longitude"].astype(float).eq(-77)
    assert results["baltimore"].findings.placeholder_points["39,-77"] == int(at_point.sum())
    assert set(r.loc[at_point, "ServiceRequestNum"]) <= set(df.loc[df.flag_placeholder_coords, "request_id"])
    zips = r["ZipCode"].dropna()
    assert sum(results["baltimore"].findings.zip_junk.values()) == int((~zips.str.fullmatch(r"\d{5}")).sum())
    created = pd.to_datetime(r["CreatedDate"], format="%m/%d/%Y %I:%M:%S %p")
    closed = pd.to_datetime(r["CloseDate"], format="%m/%d/%Y %I:%M:%S %p")
    assert int(df["flag_closed_before_created"].sum()) == int((closed < created).sum())
    # median days to close by type, as the metric defines it, equals plain pandas on the raw file
    # closed and not a duplicate: "Closed" and "Closed (Transferred)" (closed here, handed on)
    keep = r["SRStatus"].isin(["Closed", "Closed (Transferred)"]) & closed.ge(created)
    expected = (
        ((closed - created)[keep] / pd.Timedelta(days=1))
        .groupby(r.loc[keep, "SRType"].str.split().str.join(" "))
        .median()
    )
    ok = df.status.eq("Closed") & ~df.is_duplicate & ~df.flag_closed_before_created & ~df.flag_placeholder_date
    got = ((df.closed_at - df.created_at)[ok] / pd.Timedelta(days=1)).groupby(df.loc[ok, "request_type"]).median()
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


def test_load_filters_and_scorecards_run_on_both_samples(imported):
    _, _, _mp = imported
    for name in ("sf", "baltimore"):
        ds = registry.get(name)
        year = str(ds.as_of.year)
        df = citykit.load("service_requests", name, period=year)
        assert len(df) and df["created_at"].dt.year.eq(int(year)).all()
        card = scorecard(citykit.load("service_requests", name), "service_requests", ds.as_of)
        assert card.get("created_in_future").failing == 0  # the as-of covers every timestamp
        assert check_dataset(name).checks
