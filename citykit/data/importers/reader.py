"""Reading an export: its header (encoding, delimiter, duplicate names), then the chosen columns
streamed in record batches, counting the rows that do not split into the header's fields."""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from citykit.errors import CitykitError

BLOCK_SIZE = 8 << 20  # bytes of CSV per record batch (about 40,000 rows of a typical export)
DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class Header:
    columns: list[str]  # as written (duplicates kept)
    names: list[str]  # unique names given to pyarrow ("X", "X.2" for a repeated "X")
    delimiter: str
    encoding: str


def read_header(path: Path) -> Header:
    """The header row, its delimiter and encoding; empty or unreadable files raise `CitykitError`."""
    path = Path(path)
    if not path.is_file():
        raise CitykitError(f"{path} is not a file")
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    if not head.strip():
        raise CitykitError(f"{path.name} is empty: export the data again (no header, no rows)")
    wide = _wide_encoding(head)
    if wide:
        raise CitykitError(
            f"{path.name} is {wide} text, not UTF-8 or latin-1: save it again as CSV UTF-8 "
            f"(or convert it: iconv -f {wide} -t UTF-8 {path.name} > converted.csv)"
        )
    encoding = _encoding(path)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = max(DELIMITERS, key=lambda d: first.count(d)) if any(d in first for d in DELIMITERS) else ","
    columns = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    columns = [c.strip() for c in columns]
    names, seen = [], Counter()
    for column in columns:
        seen[column] += 1
        names.append(column if seen[column] == 1 else f"{column}.{seen[column]}")
    return Header(columns, names, delimiter, encoding)


def _wide_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 (as Excel's "Unicode text" saves), by its byte-order mark or, without one, by
    the zero bytes between ASCII letters; None for anything else."""
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):  # fmt: skip
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if len(sample) >= 8 and sample.count(0) >= 0.4 * len(sample):
        return "UTF-16"
    return None


def _encoding(path: Path) -> str:
    """utf-8 when every byte decodes as UTF-8, else latin-1 (Windows exports); checked in 16 MB steps."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(16 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


@dataclass
class Malformed:
    """Rows pyarrow could not split into the header's fields (e.g. a truncated last line)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def handler(self, row: Any) -> str:
        self.count += 1
        if len(self.examples) < 3:
            where = f"row {row.number}" if row.number is not None else "a row"
            self.examples.append(f"{where}: {row.actual_columns} fields, expected {row.expected_columns}")
        return "skip"


def stream(path: Path, header: Header, columns: Sequence[str], malformed: Malformed) -> Iterator[pd.DataFrame]:
    """The chosen columns of the file as pandas batches of strings (missing values NaN)."""
    for batch in batches(path, header, columns, malformed):
        yield batch.to_pandas()


def batches(path: Path, header: Header, columns: Sequence[str], malformed: Malformed) -> Iterator[pa.RecordBatch]:
    """The chosen columns of the file as Arrow record batches of strings (an empty field null)."""
    read = pacsv.ReadOptions(column_names=header.names, skip_rows=1, encoding=header.encoding, block_size=BLOCK_SIZE)
    parse = pacsv.ParseOptions(
        delimiter=header.delimiter, newlines_in_values=True, invalid_row_handler=malformed.handler
    )
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in columns},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        raise CitykitError(f"{path.name} cannot be read as CSV: {message}") from None
