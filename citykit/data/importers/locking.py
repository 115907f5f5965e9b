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

EARLIEST = dt.date(1990, 1, 1)  # the plausible range of an as-of or extract date: 1990 to a year from today
AHEAD = dt.timedelta(days=366)
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


def check_dates(file: Path | str, as_of: dt.date | str | None, extract_date: dt.date | str | None) -> None:
    """Refuse (one line) an --as-of or --extract-date outside 1990 to a year from today, and an as-of
    after the extract date (given, or the file's own modification date)."""
    latest = dt.date.today() + AHEAD
    dates = {}
    for option, value in (("--as-of", as_of), ("--extract-date", extract_date)):
        date = pipeline._date_option(option, value)
        if date is not None and not EARLIEST <= date <= latest:
            raise CitykitError(f"{option} {date} is not plausible: give a date from {EARLIEST} to {latest}")
        dates[option] = date
    extract = dates["--extract-date"]
    if extract is None and dates["--as-of"] is not None:
        try:
            extract = dt.date.fromtimestamp(Path(file).stat().st_mtime)
        except OSError:
            return  # the import says the file is missing
    if dates["--as-of"] is not None and dates["--as-of"] > extract:
        given = "" if dates["--extract-date"] else " (the file's modification date; give --extract-date)"
        raise CitykitError(
            f"--as-of {dates['--as-of']} is after the extract date {extract}{given}: the data cannot know that day"
        )


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
    check_dates(file, as_of, extract_date)
    arguments = {"name": name, "as_of": as_of, "mapping_file": mapping_file, "progress": progress}
    target = dataset_name(source, file, name, mapping_file)
    if target is None or not pipeline.NAME_PATTERN.match(target):
        return pipeline.import_requests(source, file, extract_date=extract_date, **arguments)
    with locked(paths.citykit_home() / IMPORTED / target, timeout=LOCK_TIMEOUT):
        return pipeline.import_requests(source, file, extract_date=extract_date, **arguments)
