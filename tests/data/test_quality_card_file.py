"""A parquet dataset's scorecard is kept beside its tables for the next process (scoring 6 million
requests takes 12 s and 2.6 GB), and counts only while the tables and standards are unchanged."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from citykit.data import quality


@pytest.fixture
def home(riverton_small, tmp_path, monkeypatch):
    home = tmp_path / "home"
    folder = home / "published" / "riverton"
    folder.mkdir(parents=True)
    for path in (riverton_small / "published" / "riverton").iterdir():
        if path.suffix in (".parquet", ".geojson", ".json") and path.name != quality.CARD_FILE:
            shutil.copy2(path, folder / path.name)
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    quality._check_dataset_version.cache_clear()
    yield folder
    quality._check_dataset_version.cache_clear()


def _scored_again(monkeypatch):
    calls = []
    real = quality._check_dataset
    monkeypatch.setattr(quality, "_check_dataset", lambda name: calls.append(name) or real(name))
    return calls


def test_the_saved_scorecard_is_read_by_the_next_process(home, monkeypatch):
    first = quality.check_dataset("riverton")
    saved = json.loads((home / quality.CARD_FILE).read_text(encoding="utf-8"))
    assert len(saved["checks"]) == len(first.checks) > 10
    quality._check_dataset_version.cache_clear()  # as a new process would start
    calls = _scored_again(monkeypatch)
    again = quality.check_dataset("riverton")
    assert calls == []  # read from the file, not scored
    assert again.checks == first.checks and again.dataset == first.dataset and again.as_of == first.as_of
    assert again.to_frame().equals(first.to_frame()) and again.summary() == first.summary()


def test_a_changed_table_or_standard_is_scored_again(home, monkeypatch, tmp_path):
    first = quality.check_dataset("riverton")
    requests = home / "service_requests.parquet"
    changed = tmp_path / "changed.parquet"
    duckdb.execute(  # every request loses its neighborhood
        f"COPY (SELECT * REPLACE (NULL::VARCHAR AS neighborhood) FROM read_parquet($src)) TO '{changed.as_posix()}'",
        {"src": requests.as_posix()},
    )
    shutil.move(changed, requests)
    quality._check_dataset_version.cache_clear()
    calls = _scored_again(monkeypatch)
    again = quality.check_dataset("riverton")
    assert calls == ["riverton"]
    assert again.get("missing_neighborhood").share == 1.0 != first.get("missing_neighborhood").share

    gates = tmp_path / "quality.yml"  # the same data under other gates: scored again
    gates.write_text(quality.quality_file().read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    monkeypatch.setattr(quality, "quality_file", lambda: gates)
    quality._check_dataset_version.cache_clear()
    quality.check_dataset("riverton")
    assert calls == ["riverton", "riverton"]


def test_a_damaged_or_foreign_file_is_ignored(home, monkeypatch):
    first = quality.check_dataset("riverton")
    card = home / quality.CARD_FILE
    saved = json.loads(card.read_text(encoding="utf-8"))
    saved["checks"][0]["failing"] = 10**9  # a file whose key does not match is never believed
    saved["key"] = "0" * 64
    card.write_text(json.dumps(saved), encoding="utf-8")
    quality._check_dataset_version.cache_clear()
    assert quality.check_dataset("riverton").checks == first.checks
    card.write_text("{not json", encoding="utf-8")
    quality._check_dataset_version.cache_clear()
    assert quality.check_dataset("riverton").checks == first.checks
