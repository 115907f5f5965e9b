"""The issue's December attack, end to end (issue 20): `report batch equity-report --over period` for
one neighborhood with the year, January to November and December. The batch is audited as one release
through its ledger: the three pages' race and ethnicity tables, read back from their CSVs, never give
December's White applicants away; each page carries the disclosure-risk line and its manifest the
ledger state it was audited against."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from citykit.reports.batch import run_batch

VALUES = ["2025", "2025-01-01/2025-11-30", "2025-12"]


def decided_white(table: str, neighborhood: str, start: str, end: str) -> int:
    """White-alone decided applicants, by SQL on the published file (independent of citykit.equity)."""
    others = " AND ".join(
        f"NOT coalesce({c}, false)" for c in ("race_aian", "race_asian", "race_black", "race_hispanic", "race_mena",
                                               "race_nhpi", "race_not_reported", "race_declined")
    )  # fmt: skip
    return duckdb.execute(
        f"SELECT count(*) FROM read_parquet(?) WHERE neighborhood = ? AND outcome IN ('Approved', 'Denied') "
        f"AND submitted_at >= CAST(? AS DATE) AND submitted_at < CAST(? AS DATE) AND race_white AND {others}",
        [table, neighborhood, start, end],
    ).fetchone()[0]


@pytest.mark.slow
def test_a_batch_over_overlapping_periods_gives_no_hidden_count_away(riverton, tmp_path):
    table = riverton.table_path("program_applications").as_posix()
    # the neighborhood whose December has the fewest White decided applicants (at least one)
    hoods = duckdb.execute(
        "SELECT DISTINCT neighborhood FROM read_parquet(?) WHERE neighborhood IS NOT NULL", [table]
    ).fetchall()
    december = {h: decided_white(table, h, "2025-12-01", "2026-01-01") for (h,) in hoods}
    hood = min((n, h) for h, n in december.items() if n >= 1)[1]
    year, first = (
        decided_white(table, hood, "2025-01-01", "2026-01-01"),
        decided_white(table, hood, "2025-01-01", "2025-12-01"),
    )
    assert 1 <= year - first <= 10 < first  # the attack is there to be made

    result = run_batch("equity-report", "period", VALUES, {"neighborhood": hood}, out=tmp_path / "b", workers=2,
                       progress=False)  # fmt: skip
    assert not result.failed, result.summary()
    shown = {}
    for run in result.runs:
        csv = next((run.out / "tables").glob("*approval-rate-by-race-alone*.csv"))
        frame = pd.read_csv(csv, dtype=str).set_index("Race and ethnicity (alone)")
        shown[run.value] = frame.at["White", "Number"]
        manifest = json.loads((run.out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["ledger"]["audited_against"]["digest"] and manifest["ledger"]["tables"] >= 1
        assert "Disclosure risk:" in run.html.read_text(encoding="utf-8")
    number = lambda text: int(text.replace(",", "")) if text.replace(",", "").isdigit() else None  # noqa: E731
    values = {k: number(v) for k, v in shown.items()}
    assert values["2025-12"] is None  # December's small count is hidden
    assert None in (values["2025"], values["2025-01-01/2025-11-30"]), (
        f"the year ({shown['2025']}) and January-November ({shown['2025-01-01/2025-11-30']}) give December away"
    )
    index = json.loads((tmp_path / "b" / ".citykit-ledger" / "riverton.json").read_text(encoding="utf-8"))
    assert len(index["releases"]) == 3 and len({r["batch"] for r in index["releases"]}) == 1
    assert all(r["status"] == "published" for r in index["releases"])


def test_a_manifest_names_no_ledger_file_that_was_never_written(tmp_path):
    """A run that records no table of people (module 12) writes no ledger file: its manifest says so
    plainly instead of naming the missing file; once the ledger exists, the manifest names it."""
    from citykit.reports import ledger

    empty = tmp_path / "empty"
    summary = ledger.finish(ledger.begin(empty, "riverton", "service-performance", {}), succeeded=True)
    assert not (empty / "riverton.json").exists()
    assert summary["ledger"] is None and summary["audited_against"]["file"] is None
    assert "no tables of people recorded" in summary["note"] and summary["risk"] == ""
    assert json.loads(json.dumps(summary))["ledger"] is None  # what the manifest holds
    kept = tmp_path / "kept"
    ledger.Ledger(kept, "riverton").write({"version": ledger.INDEX_VERSION, "dataset": "riverton", "releases": []})
    summary = ledger.finish(ledger.begin(kept, "riverton", "service-performance", {}), succeeded=True)
    assert summary["ledger"] == summary["audited_against"]["file"] == str(kept / "riverton.json")
    assert (kept / "riverton.json").exists() and "note" not in summary
