"""A course folder: found from the working directory, made by `citykit init`, upgraded without
losing a city's edits; its standards win over the kit's."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from citykit import paths
from citykit.cli import main
from citykit.course_folder import NEW_SUFFIX, STATE_FILE, init_course, kit_files
from citykit.errors import CitykitError
from citykit.standards import load_metrics


@pytest.fixture
def no_course_env(monkeypatch):
    monkeypatch.delenv("CITYKIT_COURSE", raising=False)
    monkeypatch.delenv("CITYKIT_HOME", raising=False)


def test_outside_a_course_commands_say_citykit_init(tmp_path, monkeypatch, capsys, no_course_env):
    monkeypatch.chdir(tmp_path)
    assert paths.find_course() is None
    assert main(["course", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert "citykit init" in err and len(err.splitlines()) == 1


def test_the_course_is_found_from_any_folder_inside_it(tmp_path, monkeypatch, no_course_env):
    made = init_course(tmp_path / "course")
    inner = tmp_path / "course" / "notebooks" / "04-time-to-close"
    monkeypatch.chdir(inner)
    assert paths.course_root() == made.folder
    assert paths.citykit_home() == made.folder / "datasets"
    monkeypatch.setenv("CITYKIT_COURSE", str(tmp_path))  # not a course folder
    with pytest.raises(CitykitError, match="not a course folder"):
        paths.course_root()


def test_init_copies_the_kits_course_and_records_it(tmp_path, no_course_env):
    made = init_course(tmp_path / "course")
    mask = os.umask(0o022)
    os.umask(mask)
    assert made.folder.stat().st_mode & 0o777 == 0o777 & ~mask  # shared like any folder, not private
    kit = kit_files()
    assert {"curriculum/course.yml", "curriculum/standards/metrics.yml", "grading/nbgrader_config.py"} <= set(kit)
    assert any(name.startswith("notebooks/") for name in kit)
    for name, source in kit.items():
        assert (made.folder / name).read_bytes() == source.read_bytes(), name
    state = json.loads((made.folder / STATE_FILE).read_text())
    assert set(state["files"]) == set(kit)
    assert (made.folder / "datasets").is_dir() and "datasets/" in (made.folder / ".gitignore").read_text()


def test_init_refuses_a_course_or_a_non_empty_folder_and_leaves_nothing_behind(tmp_path, no_course_env):
    init_course(tmp_path / "course")
    with pytest.raises(CitykitError, match="--upgrade"):
        init_course(tmp_path / "course")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(CitykitError, match="not empty"):
        init_course(busy)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "course"]  # no staging folder left
    with pytest.raises(CitykitError, match="kit's own course"):
        init_course(paths.kit_course())


def test_upgrade_replaces_untouched_files_and_keeps_edited_ones(tmp_path, monkeypatch, no_course_env):
    kit = tmp_path / "kit"
    shutil.copytree(paths.kit_course() / "curriculum", kit / "curriculum")
    shutil.copytree(
        paths.kit_course() / "grading",
        kit / "grading",
        ignore=shutil.ignore_patterns(
            "release",
            "submitted",
            "autograded",
            "feedback",
            "gradebook.db",
            "cohorts",
            "export",
            "dashboard",
            "exchange",
        ),
    )
    monkeypatch.setattr(paths, "kit_course", lambda: kit)
    course = init_course(tmp_path / "course").folder

    edited = course / "curriculum" / "standards" / "metrics.yml"
    edited.write_text(edited.read_text().replace("Pothole: 5", "Pothole: 4"))  # the city's own target
    # a newer kit: both files change, and a guide is new
    for name in ("curriculum/standards/metrics.yml", "curriculum/course.yml"):
        (kit / name).write_text((kit / name).read_text() + "\n# newer kit\n")
    (kit / "curriculum" / "guides" / "new-guide.md").write_text("# New\n")

    result = init_course(course, upgrade=True)
    assert result.replaced == ["curriculum/course.yml"] and result.kept == ["curriculum/standards/metrics.yml"]
    assert result.copied == ["curriculum/guides/new-guide.md"]
    assert (course / "curriculum" / "course.yml").read_text().endswith("# newer kit\n")
    assert "Pothole: 4" in edited.read_text()
    assert (edited.parent / f"metrics.yml{NEW_SUFFIX}").read_text().endswith("# newer kit\n")
    again = init_course(course, upgrade=True)  # a second run has nothing new to offer: no merge asked again
    assert not again.replaced and not again.kept and not again.copied
    assert again.local == ["curriculum/standards/metrics.yml"] and "merge by hand" not in again.summary()
    assert "Pothole: 4" in edited.read_text()


def test_a_courses_own_standard_wins_over_the_kits(tmp_path, monkeypatch, no_course_env):
    course = init_course(tmp_path / "course").folder
    monkeypatch.chdir(course)
    kit_target = yaml.safe_load((paths.kit_standards_dir() / "metrics.yml").read_text())["sla_days"]["Pothole"]
    assert load_metrics()["sla_days"]["Pothole"] == kit_target
    own = course / "curriculum" / "standards" / "metrics.yml"
    own.write_text(own.read_text().replace(f"Pothole: {kit_target}", f"Pothole: {kit_target + 2}"))
    assert load_metrics()["sla_days"]["Pothole"] == kit_target + 2
    own.unlink()  # no copy of its own: the kit's applies
    assert load_metrics()["sla_days"]["Pothole"] == kit_target


def test_an_edited_target_makes_reports_refuse_a_city_built_under_the_old_one(
    riverton_small, tmp_path, monkeypatch, no_course_env
):
    """The bundled city's due dates come from metrics.yml when it is built: a report on it after an
    edit would silently use the old targets, so it stops first and names the rebuild."""
    from citykit.reports.run import prepare

    course = init_course(tmp_path / "course").folder
    monkeypatch.chdir(course)
    monkeypatch.setenv("CITYKIT_HOME", str(riverton_small))
    prepare("time-to-close", {"period": "2025-Q4"})  # built under these very standards: runs
    own = course / "curriculum" / "standards" / "metrics.yml"
    own.write_text(own.read_text().replace("Pothole: 5", "Pothole: 2"))
    with pytest.raises(CitykitError, match=r"rebuild it with `citykit data build`"):
        prepare("time-to-close", {"period": "2025-Q4"})
