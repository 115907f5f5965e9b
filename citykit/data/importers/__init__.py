"""Real 311 exports in, canonical anonymized tables out: `citykit data import SOURCE FILE`.

One declarative mapping per source (`citykit/resources/mappings/<source>.yml`: column map, status map,
timestamp formats and time zone, channel map, category clean-up, city bounds). The engine:

1. reads the header (encoding, delimiter, duplicate names) and recognises the source (`auto`);
2. streams the file in record batches (pyarrow.csv), maps each batch to the canonical columns,
   flags defects with the publisher's own `flag_requests` and blanks sensitive coordinates, and
   writes a staging parquet file incrementally (a 2 GB export never sits in memory);
3. with DuckDB, keeps one row per request id (the last in the file) and, when the dataset already
   exists, merges the new export into it by request id;
4. validates the result against the canonical schema, scores it, and only then moves it into
   `$CITYKIT_HOME/imported/<name>/` and registers it. Any failure leaves the previous state.

The raw file is only ever opened for reading. Personal, address and free-text columns are never
read into the tables (the address is read only as a hash, to count repeated requests).

Modules: `mapping` (the declarative mapping, recognising a source), `reader` (header, encoding,
batches, malformed rows), `canonical` (a batch as canonical columns, what it holds), `merge`
(DuckDB merge by request id, publishing and registering), `report` (the import report),
`pipeline` (`import_requests`: the steps in order).
"""

from citykit.data.importers.canonical import parse_timestamps
from citykit.data.importers.mapping import Mapping, detect_source, load_mapping, mapping_files
from citykit.data.importers.merge import IMPORTED, MANIFEST_FILE, imported_dir
from citykit.data.importers.pipeline import import_requests
from citykit.data.importers.report import REPORT_FILE, ImportResult

__all__ = [
    "IMPORTED",
    "MANIFEST_FILE",
    "REPORT_FILE",
    "ImportResult",
    "Mapping",
    "detect_source",
    "import_requests",
    "imported_dir",
    "load_mapping",
    "mapping_files",
    "parse_timestamps",
]
