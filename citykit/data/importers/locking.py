"""One import or update of a dataset at a time: `import_requests` under the dataset's lock.

Two `citykit data import ... --name same` at once would each merge its export into the same
previous state and publish; the second publish would drop the first one's rows. The lock
(`$CITYKIT_HOME/imported/.<name>.lock`, an OS lock released even on `kill -9`) makes the second
wait until the first has published, so it merges into the first one's result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from citykit import paths
from citykit.data.importers import pipeline
from citykit.data.importers.mapping import detect_source, load_mapping
from citykit.data.importers.merge import IMPORTED
from citykit.data.importers.reader import read_header
from citykit.data.importers.report import ImportResult
from citykit.errors import CitykitError
from citykit.files import locked

LOCK_TIMEOUT = -1  # wait as long as the other import takes: the lock dies with its holder


def dataset_name(source: str, file: Path | str, name: str | None, mapping_file: Path | str | None) -> str | None:
    """The dataset an import writes (its `name`, or the source's name), or None when the input is
    bad (the import itself then says why)."""
    if name:
        return name if pipeline.NAME_PATTERN.match(name) else None
    try:
        if mapping_file is not None:
            return load_mapping(Path(mapping_file)).source
        if source == "auto":
            return detect_source(read_header(Path(file)).columns).source
        return load_mapping(source).source
    except CitykitError:
        return None


def import_requests(
    source: str,
    file: Path | str,
    name: str | None = None,
    as_of: dt.date | str | None = None,
    mapping_file: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
    extract_date: dt.date | str | None = None,
) -> ImportResult:
    """`pipeline.import_requests` (same arguments) holding the dataset's exclusive lock throughout."""
    arguments = {"name": name, "as_of": as_of, "mapping_file": mapping_file, "progress": progress}
    target = dataset_name(source, file, name, mapping_file)
    if target is None or not pipeline.NAME_PATTERN.match(target):
        return pipeline.import_requests(source, file, extract_date=extract_date, **arguments)
    with locked(paths.citykit_home() / IMPORTED / target, timeout=LOCK_TIMEOUT):
        return pipeline.import_requests(source, file, extract_date=extract_date, **arguments)
