"""The `hub_cohort` fixture: a cohort set up on this machine with real accounts (see hubtest.py)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import REPO, free_ports, proxy_command, runnable_python, scrub, write_roster

from citykit.hub import lifecycle, service
from citykit.hub.state import HubState, load_state


@pytest.fixture
def hub_cohort(riverton) -> Iterator:
    """`make(learners, instructors, **setup options) -> HubState`: a cohort set up on this machine
    (not started); stopped, torn down and scrubbed at the end."""
    tag = secrets.token_hex(2)
    prefix, cohort = f"ckt{tag}-", f"hubt{tag}"
    base = Path(tempfile.mkdtemp(prefix="citykit-hub-test-", dir="/tmp"))
    base.chmod(0o755)
    made: list[HubState] = []
    with runnable_python() as python:

        def make(learners, instructors, **options) -> HubState:
            roster = write_roster(base / "roster.csv", learners, instructors)
            options = {"port": free_ports(), "proxy_command": proxy_command(), "python": python, **options}
            lifecycle.setup(cohort, roster, prefix=base / "srv", account_prefix=prefix, source=REPO, **options)
            state = load_state(cohort, base / "srv")
            made.append(state)
            return state

        try:
            yield make
        finally:
            for state in made:
                with contextlib.suppress(Exception):
                    service.stop(load_state(state.cohort, state.path.parent))
                with contextlib.suppress(Exception):
                    lifecycle.teardown(load_state(state.cohort, state.path.parent))
            scrub(prefix, cohort)
            shutil.rmtree(base, ignore_errors=True)
