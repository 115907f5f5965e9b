"""environment.yml (conda) lists the same dependencies as pyproject.toml (pip)."""

import re
import tomllib

import yaml

from citykit import paths

CONDA_NAMES = {"duckdb": "python-duckdb"}  # where conda-forge spells a package differently


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, requirement
    return match[1].lower(), match[3].replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((paths.course_root() / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    wanted = {CONDA_NAMES.get(name, name): spec for name, spec in wanted.items()}

    env = yaml.safe_load((paths.course_root() / "environment.yml").read_text())
    listed = dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip")))
    listed.update(dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and d.startswith("python-")))

    assert listed == wanted, "environment.yml and pyproject.toml disagree; edit both together"


def test_python_versions_agree():
    project = tomllib.loads((paths.course_root() / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((paths.course_root() / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and re.match(r"python[<>=]", d))
    assert python.removeprefix("python") == project["requires-python"]
