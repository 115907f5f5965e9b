"""Shared pytest fixtures (other test modules may add theirs here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citykit.data import registry

REPO = Path(__file__).resolve().parent.parent
# The repository is the course every test reads, wherever a test or its kernels run.
os.environ["CITYKIT_COURSE"] = str(REPO)


@pytest.fixture(scope="session")
def riverton_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Riverton at small scale (~5% of default, seed 311) built into a temporary CITYKIT_HOME.

    Returns that home: `home / "published" / "riverton"` holds the published tables and
    build.json, `home / "raw" / "riverton"` the raw export. CITYKIT_HOME points at it only while
    building, so the rest of the session (and the `riverton` fixture) keeps the repository's
    datasets; a test that needs registry paths into it can
    `monkeypatch.setenv("CITYKIT_HOME", str(riverton_small))`.
    """
    from citykit.data.generate import build

    home = tmp_path_factory.mktemp("citykit_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKIT_HOME", str(home))
        build(seed=311, scale="small")
    return home


@pytest.fixture(scope="session")
def riverton() -> registry.Dataset:
    """The default-scale Riverton in the repository's datasets/ (built once; a no-op when current)."""
    from citykit.data.generate import build

    build(seed=311, scale="default")
    return registry.get("riverton")


@pytest.fixture(scope="module")
def course(
    tmp_path_factory: pytest.TempPathFactory, riverton: registry.Dataset, request: pytest.FixtureRequest
) -> Path:
    """A copy of the course holding the test file's `MODULE`, its student version generated;
    shared by that file's tests."""
    from notebook_helpers import graded_course

    return graded_course(tmp_path_factory.mktemp("course"), request.module.MODULE)


@pytest.fixture(scope="session")
def graded_course_of(tmp_path_factory: pytest.TempPathFactory, riverton: registry.Dataset):
    """`graded_course_of(module)`: a copy of the course holding that module, its student version
    generated; built once per worker and module (a module's tests share an xdist group)."""
    from notebook_helpers import graded_course

    built: dict[str, Path] = {}

    def get(module: str) -> Path:
        if module not in built:
            built[module] = graded_course(tmp_path_factory.mktemp(f"course-{module[:2]}"), module)
        return built[module]

    return get


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` distributes by xdist group: a test without one is grouped with its file, so a
    file's module-scoped fixtures are built once, as with --dist loadfile."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_group_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker with --dist loadgroup, give each test's id its group suffix (`nodeid@group`),
    which is all the scheduler sees. xdist 3.8 writes it to `item._nodeid`, which pytest 9 no longer
    reads (pytest-xdist issue 1386): every test was then scheduled alone, so both workers built the
    same module fixtures (a sandbox run, a wheel venv, a graded course) and the hub tests waited on
    each other's lock. Does nothing where the id already carries the suffix (a fixed xdist)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})  # fmt: skip
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            from _pytest.nodeid import NodeId  # pytest 9's structured id: str() is the parsed text

            item._id = NodeId.parse(item.nodeid + suffix)
