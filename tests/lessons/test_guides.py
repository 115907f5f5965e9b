"""The guides in curriculum/guides/: the data dictionary is the generated text, and every citykit
command the guides show parses with the CLI as it is."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from citykit import paths
from citykit.cli import build_parser
from citykit.data.columns import TABLE_COLUMNS
from citykit.lessons.course import data_dictionary_markdown, datapackage_file, load_course

GUIDES = paths.curriculum_dir() / "guides"
NAMES = ("learner.md", "instructor.md", "analyst.md", "glossary.md", "data-dictionary.md")


def _guide(name: str) -> str:
    return (GUIDES / name).read_text(encoding="utf-8")


def test_every_guide_exists():
    for name in NAMES:
        assert _guide(name).startswith("# "), f"{name} needs a title"


def test_committed_data_dictionary_is_the_generated_text():
    assert _guide("data-dictionary.md") == data_dictionary_markdown(), (
        "curriculum/guides/data-dictionary.md is stale: regenerate it with citykit.course.data_dictionary_markdown()"
    )


def test_data_dictionary_describes_every_canonical_column_with_its_meaning():
    text = data_dictionary_markdown()
    package = json.loads(datapackage_file().read_text(encoding="utf-8"))
    for resource in package["resources"]:
        assert f"## {resource['name']}" in text
    for table, columns in TABLE_COLUMNS.items():
        section = text.split(f"## {table}\n", 1)[1].split("\n## ", 1)[0]
        rows = dict(re.findall(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", section, re.M))
        assert set(columns) <= set(rows), f"{table}: {sorted(set(columns) - set(rows))} not described"
        assert all(meaning.strip() for meaning in rows.values())


def test_data_dictionary_follows_the_package(tmp_path):
    """Generated from the file given: a changed description shows up in the text."""
    package = json.loads(datapackage_file().read_text(encoding="utf-8"))
    package["resources"][0]["schema"]["fields"][0]["description"] = "A changed | description."
    changed = tmp_path / "datapackage.json"
    changed.write_text(json.dumps(package), encoding="utf-8")
    assert "| A changed \\| description. |" in data_dictionary_markdown(changed)


def _commands(text: str) -> list[str]:
    """`citykit ...` command lines inside the guide's code blocks (comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [re.sub(r"^(\.venv/bin/)?citykit ", "", line) for line in lines if re.match(r"(\.venv/bin/)?citykit ", line)]


@pytest.mark.parametrize("name", ["learner.md", "instructor.md", "analyst.md"])
def test_every_command_in_a_guide_parses(name):
    commands = _commands(_guide(name))
    assert len(commands) >= (2 if name == "learner.md" else 3)
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command))
        except SystemExit:
            pytest.fail(f"{name}: `citykit {command}` does not parse with citykit/cli.py")


def test_guides_name_modules_that_exist():
    slugs = {m.slug for m in load_course()}
    for name in ("instructor.md", "analyst.md"):
        for command in _commands(_guide(name)):
            words = shlex.split(command)
            runs_a_module = words[0] == "report" and words[1] in ("run", "batch", "params")
            if runs_a_module and not words[2].endswith(".ipynb"):
                assert words[2] in slugs, f"{name}: no module {words[2]!r}"
            if words[0] == "grade" and len(words) > 2 and not words[2].startswith("-"):
                assert words[2] in slugs, f"{name}: no module {words[2]!r}"


def test_glossary_is_alphabetical_and_covers_the_course_words():
    terms = re.findall(r"^\*\*(.+?)\*\* —", _guide("glossary.md"), re.M)
    for section in re.split(r"^## ", _guide("glossary.md"), flags=re.M):  # each section in alphabetical order
        listed = re.findall(r"^\*\*(.+?)\*\* —", section, re.M)
        assert listed == sorted(listed, key=str.casefold), "keep each part of the glossary in alphabetical order"
    assert len(terms) == len(set(terms))
    words = " ".join(terms).casefold()
    for needed in (
        "as-of date",
        "median",
        "flag",
        "k-anonymity",
        "alt text",
        "service-level target",
        "production-run contract",
        "disaggregation",
        "data quality dimensions",
    ):
        assert needed in words, f"the glossary lacks {needed!r}"
