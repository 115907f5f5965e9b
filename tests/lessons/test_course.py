"""course.yml and the notebooks/ folders agree: order, unique slugs, objectives for every test cell."""

import json

import yaml

from citykit import paths
from citykit.lessons.course import load_course, module_folders


def _raw_slugs() -> list[str]:
    return [m["slug"] for m in yaml.safe_load(paths.course_file().read_text())["modules"]]


def test_course_order_matches_folder_numbers():
    numbers = module_folders()
    slugs = _raw_slugs()
    assert len(slugs) == len(set(slugs)), "slugs in course.yml must be unique"
    assert sorted(slugs) == sorted(numbers), "every NN-slug folder needs a course.yml entry and vice versa"
    assert slugs == sorted(slugs, key=numbers.__getitem__), "course.yml lists modules out of folder order"


def test_every_module_has_its_notebook_and_objectives():
    for module in load_course():
        assert module.notebook.exists(), module.notebook
        assert module.objectives, f"{module.slug} states no objectives"
        assert 30 <= module.minutes <= 120, f"{module.slug}: {module.minutes} minutes"


def test_every_graded_cell_assesses_a_stated_objective():
    for module in load_course():
        notebook = json.loads(module.notebook.read_text())
        grade_ids = {
            cell["metadata"]["nbgrader"]["grade_id"]
            for cell in notebook["cells"]
            if cell["metadata"].get("nbgrader", {}).get("grade")
        }
        assert grade_ids, f"{module.slug} has no graded cells"
        unmapped = grade_ids - set(module.assessments)
        assert not unmapped, (
            f"{module.slug}: graded cells {sorted(unmapped)} are not mapped to objectives in course.yml"
        )
        unknown = set(module.assessments.values()) - set(module.objectives)
        assert not unknown, f"{module.slug}: assessments name unknown objectives {sorted(unknown)}"


def test_a_module_is_found_by_the_number_report_list_shows():
    import pytest

    from citykit.errors import CitykitError
    from citykit.lessons.course import find_module

    for module in load_course():
        prefix = module.folder_name.split("-", 1)[0]  # "04" of 04-time-to-close
        assert find_module(prefix) == module and find_module(str(int(prefix))) == module
    with pytest.raises(CitykitError, match="unknown module '99'"):
        find_module("99")
