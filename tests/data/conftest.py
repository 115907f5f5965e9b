"""Fixtures of the tests that import 311 exports."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh CITYKIT_HOME for the test: its imports go there (`pytestmark = pytest.mark.usefixtures("home")`)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    return home
