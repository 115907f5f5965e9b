"""What a built synthetic city records about how it was built (`build.json`), and whether the
course's standards still match it.

The bundled city's due dates come from `metrics.yml`'s service-level targets and its anonymisation
from `disaggregation.yml`, both read when it is built. A city that edits either must rebuild, or its
reports would silently use the old rules: `check_current` says so before a report runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from citykit import paths
from citykit.data.registry import Dataset
from citykit.errors import CitykitError

BUILD_FILE = "build.json"
BUILT_FROM = ("metrics.yml", "disaggregation.yml")  # the standards a build reads


def standards_digest() -> str:
    """A hash of the standards a build reads, as the course has them now."""
    digest = hashlib.sha256()
    for name in BUILT_FROM:
        digest.update(name.encode() + b"\0" + paths.standard_file(name).read_bytes())
    return digest.hexdigest()[:16]


def data_fingerprint(folder: Path) -> str:
    """A hash of a dataset's published files: differs whenever the data do (a small and a default
    build of the same code share the generator's `fingerprint`, never this one)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.parquet")):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_current(dataset: Dataset) -> None:
    """Raise (one line, naming the command) when a built synthetic dataset was built under other
    standards than the course's now; datasets from imports are never rebuilt and pass."""
    if not dataset.synthetic or dataset.kind != "parquet":
        return
    build = dataset.folder / BUILD_FILE
    if not build.is_file():
        return
    built_with = json.loads(build.read_text(encoding="utf-8")).get("standards")
    if built_with and built_with != standards_digest():
        scale = " --scale large" if dataset.name.endswith("_large") else ""
        raise CitykitError(
            f"dataset {dataset.name!r} was built under other standards than curriculum/standards/ sets now "
            f"({' or '.join(BUILT_FROM)} changed since): rebuild it with `citykit data build{scale}`"
        )
