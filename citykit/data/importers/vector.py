"""Column operations on Arrow arrays, with exactly the meaning the importer's pandas code gives them.

pandas' arrow-backed strings already run on Arrow's kernels (`str.strip` is `utf8_trim_whitespace`,
`isin` is `is_in`, `str.len` is `utf8_length`), so those are called directly. The two slow pandas
steps, reading numbers (`pd.to_numeric`) and timestamps (`pd.to_datetime` with a format), take a
fast path for the plain spellings that cover almost every value of a real export (`40.7128`,
`03/01/2024 09:30:15 AM`, `2024-03-01 09:30:15`), computed here from the digits and checked
field by field; every other value (other spellings, impossible dates such as 02/30/2024, words)
goes through the original pandas call, so no value is read differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

US_CLOCK = "%m/%d/%Y %I:%M:%S %p"  # 03/01/2024 09:30:15 AM
ISO = "ISO8601"
ISO_SECONDS = "%Y-%m-%d %H:%M:%S"
FAST_FORMATS = (US_CLOCK, ISO, ISO_SECONDS)  # spellings with a fast path; their plain forms never overlap
# Plain decimals (40.7128, -73.95671272407622, 3): pandas (fast_float since 3.0) and Arrow both read
# them correctly rounded, so identically. Whole numbers longer than MAX_PLAIN_INTEGER characters
# (past int64) and "-0" (0 or -0.0, depending on the other values) take pandas' own path.
PLAIN_NUMBER = r"^-?\d+(\.\d+)?$"
MAX_PLAIN_NUMBER = 40  # characters
MAX_PLAIN_INTEGER = 18
NEGATIVE_ZERO = r"^-0+$"
EXACT_INTEGER = 2.0**53  # districts read from a float are exact below this


def strings(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous string array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.cast(pa.string()) if column.type != pa.string() else column


def null_strings(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def strip(column: pa.Array) -> pa.Array:
    """`Series.str.strip()` of arrow-backed strings (nulls stay null)."""
    return pc.utf8_trim_whitespace(column)


def text(column: pa.Array) -> pa.Array:
    """`.astype("string").str.strip().replace("", pd.NA)`: trimmed, empty text null."""
    trimmed = pc.utf8_trim_whitespace(column)
    empty = pc.equal(trimmed, "")
    if not pc.any(empty).as_py():
        return trimmed
    return pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)


def mask(values: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def is_null(column: pa.Array) -> np.ndarray:
    return pc.is_null(column).to_numpy(zero_copy_only=False)


def isin(column: pa.Array, values: Iterable[Any]) -> np.ndarray:
    """`Series.isin(values)` of strings: only string values count; null is never in."""
    wanted = [v for v in values if isinstance(v, str)]
    if not wanted:
        return np.zeros(len(column), dtype=bool)
    return mask(pc.is_in(column, value_set=pa.array(wanted, pa.string())))


def lookup(column: pa.Array, table: Mapping[str, str]) -> pa.Array:
    """`Series.map(dict)`: the value for each key, null where the text is not a key."""
    keys = [k for k in table if isinstance(k, str)]
    if not keys:
        return null_strings(len(column))
    where = pc.index_in(column, value_set=pa.array(keys, pa.string()))
    return pc.take(pa.array([table[k] for k in keys], pa.string()), where)


def fill(column: pa.Array, value: str) -> pa.Array:
    return pc.fill_null(column, pa.scalar(value, pa.string()))


def counts(column: pa.Array) -> dict[Any, int]:
    """Value -> rows for the non-null values, in the order each value first appears (as
    `Counter.update(values.tolist())` would insert them)."""
    if len(column) == 0:
        return {}
    found = pc.value_counts(column.drop_null() if column.null_count else column)
    return dict(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True))


def where_strings(condition: np.ndarray, values: pa.Array) -> pa.Array:
    """Rows of `values` where `condition`."""
    return values.filter(pa.array(condition, pa.bool_()))


# --- numbers ---------------------------------------------------------------------------------


def _plain_numbers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Rows spelled as plain decimals short enough to read identically everywhere, and their values."""
    length = pc.utf8_length(column)
    short = pc.if_else(pc.match_substring(column, "."), pc.less_equal(length, MAX_PLAIN_NUMBER),
                       pc.less_equal(length, MAX_PLAIN_INTEGER))  # fmt: skip
    plain = mask(pc.and_(pc.match_substring_regex(column, PLAIN_NUMBER), short))
    maybe_zero = mask(pc.starts_with(column, "-0"))
    if maybe_zero.any():
        plain[maybe_zero] &= ~mask(pc.match_substring_regex(column.filter(pa.array(maybe_zero)), NEGATIVE_ZERO))
    values = np.full(len(column), np.nan)
    if plain.any():
        values[plain] = pc.cast(column.filter(pa.array(plain)), pa.float64()).to_numpy(zero_copy_only=False)
    return plain, values


def _context(column: pa.Array, plain: np.ndarray) -> list[str]:
    """Stand-ins for the plain values, so that pandas types the rest as it would beside them
    (an integer-only column reads "-0" as 0, a column with decimals as -0.0)."""
    if not plain.any():
        return []
    chosen = column.filter(pa.array(plain))
    reps = []
    if mask(pc.match_substring(chosen, ".")).any():
        reps.append("0.5")
    integers = pc.invert(pc.match_substring(chosen, "."))
    if mask(integers).any():
        reps.append("1")
        if mask(pc.and_(integers, pc.starts_with(chosen, "-"))).any():
            reps.append("-1")
    return reps


def _to_numeric(values: list[str], reps: list[str]) -> pd.Series:
    """The original call on the values not read by the fast path (with the stand-ins after them)."""
    series = pd.Series(values + reps, dtype="string")
    return pd.to_numeric(series, errors="coerce").iloc[: len(values)]


def numbers(column: pa.Array) -> np.ndarray:
    """`pd.to_numeric(text, errors="coerce").astype("float64")` of trimmed text (nulls NaN)."""
    plain, values = _plain_numbers(column)
    rest = ~plain & ~is_null(column)
    if rest.any():
        original = _to_numeric(column.filter(pa.array(rest)).to_pylist(), _context(column, plain))
        values[rest] = original.astype("float64").to_numpy()
    return values


def districts(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Council districts as the importer reads them: a whole number of 1 or more, else empty.

    Returns the Int64 values (null where invalid) and which rows held text that is not a district
    (`pd.to_numeric`, then `ge(1) & mod(1).eq(0)`, then `.astype("Int64")`)."""
    n = len(column)
    plain, values = _plain_numbers(column)
    plain &= np.abs(values) < EXACT_INTEGER  # NaN compares False: not plain
    given = ~is_null(column)
    valid = plain & (values >= 1) & (np.mod(values, 1) == 0)
    out = np.zeros(n, dtype=np.int64)
    out[valid] = values[valid].astype(np.int64)
    rest = given & ~plain
    if rest.any():
        district = _to_numeric(column.filter(pa.array(rest)).to_pylist(), _context(column, plain))
        ok = (district.notna() & district.ge(1) & district.mod(1).eq(0)).to_numpy(dtype=bool, na_value=False)
        ints = district.where(ok).astype("Int64")
        valid[rest] = ok
        out[np.flatnonzero(rest)[ok]] = ints[ok].to_numpy(dtype=np.int64)
    return pa.array(out, pa.int64(), mask=~valid), given & ~valid


# --- timestamps ------------------------------------------------------------------------------

OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def _bytes(column: pa.Array, rows: np.ndarray, width: int) -> np.ndarray:
    """The UTF-8 bytes of `rows` (each exactly `width` bytes long) as a (rows, width) matrix."""
    _validity, offsets, data = column.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int32, count=len(column) + 1, offset=4 * column.offset)
    data = np.frombuffer(data, dtype=np.uint8)
    first, last = int(offsets[0]), int(offsets[-1])
    if (last - first) == width * len(rows):  # every value has this width (nulls have none): one reshape
        return data[first:last].reshape(len(rows), width)
    return data[offsets[rows][:, None] + np.arange(width)]


def _number(m: np.ndarray, first: int, last: int) -> np.ndarray:
    """The decimal number in byte columns first..last (digits already checked)."""
    out = np.zeros(len(m), dtype=np.int64)
    for i in range(first, last + 1):
        out = out * 10 + (m[:, i].astype(np.int64) - 48)
    return out


def _digits(m: np.ndarray, columns: Iterable[int]) -> np.ndarray:
    part = m[:, list(columns)]
    return ((part >= 48) & (part <= 57)).all(axis=1)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)[np.clip(month, 0, 12)]
    return days + ((month == 2) & leap)


def _stamp(year, month, day, hour, minute, second, ok) -> np.ndarray:
    """datetime64[us] from fields (rows not `ok` are NaT); `ok` also requires valid fields."""
    ok = ok & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(year, month))
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    out = np.full(len(year), np.datetime64("NaT"), dtype="datetime64[us]")
    if ok.any():
        months = ((year[ok] - 1970) * 12 + month[ok] - 1).astype("datetime64[M]")
        seconds = (hour[ok] * 3600 + minute[ok] * 60 + second[ok]).astype("timedelta64[s]")
        out[ok] = months.astype("datetime64[D]") + (day[ok] - 1).astype("timedelta64[D]") + seconds
    return out


def _us_clock(m: np.ndarray) -> np.ndarray:
    """MM/DD/YYYY hh:mm:ss AM|PM (22 bytes)."""
    ok = _digits(m, (0, 1, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15, 17, 18))
    ok &= (m[:, 2] == 47) & (m[:, 5] == 47) & (m[:, 10] == 32) & (m[:, 13] == 58) & (m[:, 16] == 58)
    ok &= (m[:, 19] == 32) & ((m[:, 20] == 65) | (m[:, 20] == 80)) & (m[:, 21] == 77)
    hour12 = _number(m, 11, 12)
    ok &= (hour12 >= 1) & (hour12 <= 12)
    hour = hour12 % 12 + np.where(m[:, 20] == 80, 12, 0)
    return _stamp(
        _number(m, 6, 9), _number(m, 0, 1), _number(m, 3, 4), hour, _number(m, 14, 15), _number(m, 17, 18), ok
    )


def _iso_seconds(m: np.ndarray, t_allowed: bool) -> np.ndarray:
    """YYYY-MM-DD hh:mm:ss (19 bytes; a T between date and time too for ISO 8601)."""
    ok = _digits(m, (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18))
    ok &= (m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 13] == 58) & (m[:, 16] == 58)
    ok &= (m[:, 10] == 32) | ((m[:, 10] == 84) if t_allowed else False)
    return _stamp(_number(m, 0, 3), _number(m, 5, 6), _number(m, 8, 9), _number(m, 11, 12), _number(m, 14, 15),
                  _number(m, 17, 18), ok)  # fmt: skip


def _iso_date(m: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD (10 bytes): midnight."""
    ok = _digits(m, (0, 1, 2, 3, 5, 6, 8, 9)) & (m[:, 4] == 45) & (m[:, 7] == 45)
    zero = np.zeros(len(m), dtype=np.int64)
    return _stamp(_number(m, 0, 3), _number(m, 5, 6), _number(m, 8, 9), zero, zero, zero, ok)


# format -> (byte width, reader) of its plain spellings
_FAST = {
    US_CLOCK: ((22, _us_clock),),
    ISO: ((19, lambda m: _iso_seconds(m, True)), (10, _iso_date)),
    ISO_SECONDS: ((19, lambda m: _iso_seconds(m, False)),),
}


def _fast_timestamps(column: pa.Array, formats: tuple[str, ...]) -> np.ndarray:
    """The plain spellings of the mapping's formats read from their digits (NaT elsewhere)."""
    out = np.full(len(column), np.datetime64("NaT"), dtype="datetime64[us]")
    if not formats or any(f not in _FAST for f in formats):
        return out  # a format without a fast path: pandas reads every value, in the mapping's order
    lengths = pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
    for fmt in formats:
        for width, read in _FAST[fmt]:
            rows = np.flatnonzero((lengths == width) & np.isnat(out))
            if len(rows):
                out[rows] = read(_bytes(column, rows, width))
    return out


def timestamps(
    column: pa.Array, formats: tuple[str, ...], utc_offset: str, timezone: str, trimmed: bool = False
) -> np.ndarray:
    """Export timestamps (text, nulls allowed; `trimmed`: already trimmed) as naive city-local
    datetime64[us], NaT where unreadable: the meaning of `canonical.parse_timestamps`."""
    if not trimmed:
        column = pc.utf8_trim_whitespace(column)
    out = np.full(len(column), np.datetime64("NaT"), dtype="datetime64[us]")
    if utc_offset == "ignore":  # a plain spelling has no offset to drop: read before the regex runs
        out = _fast_timestamps(column, formats)
    rest = np.isnat(out) & ~is_null(column)
    if rest.any():
        text = column.filter(pa.array(rest))
        if utc_offset == "ignore":
            text = pc.replace_substring_regex(text, OFFSET_SUFFIX.pattern, "")
            read = _fast_timestamps(text, formats)
        else:  # real UTC offsets, converted: pandas reads every value
            read = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
        left = np.isnat(read) & ~is_null(text)
        if left.any():
            strings = pd.Series(text.filter(pa.array(left)).to_pandas(), dtype="string")
            read[left] = _pandas_timestamps(strings, formats, utc_offset, timezone).to_numpy()
        out[rest] = read
    return out


def _pandas_timestamps(text: pd.Series, formats: tuple[str, ...], utc_offset: str, timezone: str) -> pd.Series:
    """The original reading, format by format, for the values the fast path does not take. A value
    that keeps a time zone (an offset the mapping does not strip, such as +00) is unreadable."""
    convert = utc_offset == "convert"
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    for fmt in formats:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        try:
            parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=convert)
            if convert:
                parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
            out[todo] = parsed.astype("datetime64[us]")
        except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError, TypeError):  # one value at a time
            out[todo] = pd.Series([_one_timestamp(v, fmt, convert, timezone) for v in text[todo]],
                                  index=text.index[todo], dtype="datetime64[us]")  # fmt: skip
    return out


def _one_timestamp(value: str, fmt: str, convert: bool, timezone: str) -> Any:
    try:
        parsed = pd.to_datetime(value, format=fmt, utc=convert)
        if convert:
            parsed = parsed.tz_convert(timezone).tz_localize(None)
        stamp = pd.Timestamp(parsed)
        return pd.NaT if stamp.tzinfo is not None else stamp.as_unit("us")
    except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError, TypeError):
        return pd.NaT


def stamps_array(values: np.ndarray) -> pa.Array:
    """datetime64[us] (NaT) as an Arrow timestamp array (null)."""
    return pa.array(values, pa.timestamp("us"), mask=np.isnat(values))
