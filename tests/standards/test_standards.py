"""The published standard validates, loads into typed rules, and fails clearly when malformed."""

from __future__ import annotations

import json
import re
import shutil

import jsonschema
import pytest
import yaml

from citykit import paths, standards
from citykit.data.columns import RACE_ETHNICITY
from citykit.errors import CitykitError

STANDARD = paths.standards_dir() / "disaggregation.yml"
SCHEMA = paths.standards_dir() / "disaggregation.schema.json"


def test_published_standard_validates_against_its_schema():
    content = yaml.safe_load(STANDARD.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(content)) == []


def test_loaded_rules_match_the_brief():
    std = standards.load_disaggregation()
    assert std.version.count(".") == 2
    assert [c.code for c in std.race_categories] == list(RACE_ETHNICITY)  # same codes as the columns
    assert [c.label for c in std.race_categories] == list(RACE_ETHNICITY.values())
    assert std.multiracial.label == "Multiracial and/or Multiethnic"
    assert std.not_reported.code != std.declined.code
    assert std.k_anonymity.k == 5
    steps = [s.step for s in std.k_anonymity.steps]
    assert steps[0] == "neighborhood_to_district" and steps[-1].startswith("race")
    assert std.sensitive_request_types == ("Homeless Encampment", "Welfare Check", "Housing Code Violation")
    assert std.age_bands == ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
    assert std.genders == ("Woman", "Man", "Nonbinary", "Another gender", "Declined")
    small = std.small_cells
    assert (small.min_suppressed, small.max_suppressed, small.show_zeros) == (1, 10, True)
    assert small.unstable_max_events == 20
    assert "different reports" in small.audit_not_covered
    assert std.disparity.correction in {"holm", "fdr_bh"}
    assert "{method_label}" in std.disparity.correction_footnote
    assert "more than 100%" in std.presentation_footnotes["alone_or_in_combination"]


def test_loading_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    folder = copy_standards(tmp_path, monkeypatch)
    first = standards.load_disaggregation()
    assert standards.load_disaggregation() is first
    text = (
        (folder / "disaggregation.yml")
        .read_text(encoding="utf-8")
        .replace(f'\nversion: "{first.version}"', '\nversion: "9.9.9"')
    )
    (folder / "disaggregation.yml").write_text(text, encoding="utf-8")
    import os

    os.utime(folder / "disaggregation.yml", ns=(1, first.path.stat().st_mtime_ns + 10**9))
    assert standards.load_disaggregation().version == "9.9.9"


def copy_standards(tmp_path, monkeypatch):
    folder = tmp_path / "standards"
    folder.mkdir()
    shutil.copy(STANDARD, folder)
    shutil.copy(SCHEMA, folder)
    monkeypatch.setattr(paths, "standards_dir", lambda: folder)
    return folder


def break_standard(tmp_path, monkeypatch, edit):
    folder = copy_standards(tmp_path, monkeypatch)
    content = yaml.safe_load(STANDARD.read_text(encoding="utf-8"))
    edit(content)
    (folder / "disaggregation.yml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["privacy"]["k_anonymity"].__setitem__("k", "five"),
            r"privacy\.k_anonymity\.k: 'five' is not of type 'integer'",
        ),
        (lambda c: c["privacy"].pop("sensitive_request_types"), r"privacy: 'sensitive_request_types' is required"),
        (lambda c: c.__setitem__("colour", "blue"), r"colour.*remove it or check its spelling"),
        (
            lambda c: c["disparity"]["multiple_comparisons"].__setitem__("method", "bonferonni"),
            r"disparity\.multiple_comparisons\.method",
        ),
        (lambda c: c["privacy"]["small_cells"].__setitem__("max_suppressed", 0), r"max_suppressed"),
        (
            lambda c: c["disparity"]["reference_group"].__setitem__("race_ethnicity", "martian"),
            r"reference_group\.race_ethnicity: 'martian'",
        ),
        (
            lambda c: c["privacy"]["k_anonymity"]["generalisation_order"][0].__setitem__("columns", ["ward"]),
            r"generalisation_order\.0: .*'ward'",
        ),
        (
            lambda c: c["race_ethnicity"]["mappings"]["census_style"].__setitem__("Klingon", "klingon"),
            r"maps to unknown code 'klingon'",
        ),
    ],
)
def test_malformed_standard_fails_with_one_clear_line(tmp_path, monkeypatch, edit, message):
    break_standard(tmp_path, monkeypatch, edit)
    with pytest.raises(CitykitError, match=message) as info:
        standards.load_disaggregation()
    text = str(info.value)
    assert "\n" not in text
    assert "disaggregation.yml" in text


def test_invalid_yaml_and_missing_file(tmp_path, monkeypatch):
    folder = copy_standards(tmp_path, monkeypatch)
    (folder / "disaggregation.yml").write_text("version: [1.0\n", encoding="utf-8")
    with pytest.raises(CitykitError, match="not valid YAML at line"):
        standards.load_disaggregation()
    (folder / "disaggregation.yml").unlink()
    assert (
        standards.load_disaggregation().path.parent == paths.kit_standards_dir()
    )  # the kit's, when the course has none
    monkeypatch.setattr(paths, "kit_standards_dir", lambda: tmp_path / "no-kit")
    with pytest.raises(CitykitError, match="standard not found"):
        standards.load_disaggregation()


def test_every_rule_names_a_public_source():
    text = STANDARD.read_text(encoding="utf-8")
    for source in ("[SPD15]", "[DataSF]", "[ARDS]", "[CHHS]", "[WISQARS]", "[EPI]"):
        assert text.count(source) >= 2, f"{source} is defined but never cited"


def test_every_method_names_its_kind_and_its_public_sources():
    """Issue 20: the standard's text says, for each method, whether it is about counts, proportions or rates and
    which public sources it follows (each a tag explained in the header's list of sources), and which columns
    of people are published only in aggregate. Read from the YAML text here, not through the reader."""
    text = STANDARD.read_text(encoding="utf-8")
    explained = set(re.findall(r"^#   \[([A-Za-z0-9]+)\] ", text, flags=re.MULTILINE))
    content = yaml.safe_load(text)
    privacy, disparity = content["privacy"], content["disparity"]
    methods = {
        **{f"privacy.{name}": privacy[name] for name in ("small_cells", "outcome_disclosure", "complementary_suppression",
                                                          "releases", "unstable_rates", "k_anonymity")},
        **{f"disparity.measures.{name}": spec for name, spec in disparity["measures"].items()},
    }  # fmt: skip
    for name, spec in methods.items():
        assert spec.get("kind") in ("count", "proportion", "rate"), name
    for name, spec in {**methods, "disparity.notable": disparity["notable"],
                       "disparity.multiple_comparisons": disparity["multiple_comparisons"]}.items():  # fmt: skip
        tags = re.findall(r"\[([A-Za-z0-9]+)\]", spec.get("source", ""))
        assert tags and set(tags) <= explained, (name, tags, sorted(explained))
    assert disparity["measures"]["rate_ratio"]["kind"] == "rate"
    assert disparity["measures"]["proportion_ratio"]["kind"] == "proportion"
    aggregate_only = {
        column
        for column, spec in privacy["columns"]["program_applications"]["columns"].items()
        if spec["publish"] == "aggregate_only"
    }
    assert aggregate_only == {"age_band", "household_size", "income_band", "days_to_decision"}
    summary = " ".join(content["summary"].split())
    assert "published only in aggregate tables" in summary
    assert all(column.replace("_", " ") in summary for column in aggregate_only)


def test_the_standard_says_who_sees_the_rows_and_who_sees_the_pages():
    """walk-20 #10: the person-level rows hold every cell the pages hide; the standard says they are the staff
    tier, never an open-data release, and that a page's risk line speaks of the pages."""
    content = yaml.safe_load(STANDARD.read_text(encoding="utf-8"))
    scope = " ".join(content["privacy"]["scope"].split())
    assert "staff tier" in scope and "never put on an open-data portal" in scope
    assert "what can be worked out from the published pages, not from the rows" in scope
