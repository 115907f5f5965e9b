"""Checks shared by the import tests (importable as `import_checks`: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

from citykit.data import registry


def nothing_left(home: Path, name: str) -> None:
    """A failed import leaves no registered dataset, no dataset folder and no staging files."""
    assert name not in registry.all_datasets()
    imported = home / "imported"
    assert not (imported / name).exists()
    assert not imported.exists() or not any(imported.glob(".staging-*"))
