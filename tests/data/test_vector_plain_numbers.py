"""The importer's fast path for numbers takes exactly the plain decimal spellings: what the regex
^-?[0-9]+(\\.[0-9]+)?$ (Python's re, ASCII digits) matches, up to 18 characters without a dot and
40 with one, "-0" aside; every other value goes to pandas, so none is read differently."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from citykit.data.importers import vector

PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ALPHABET = [*"0123456789.-+ e", "٣", "é", "\n", "00", "-0", ".5"]


def expected(value: str | None) -> bool:
    if value is None or not PLAIN.fullmatch(value):
        return False
    if re.fullmatch(r"-0+", value):
        return False
    return len(value) <= (40 if "." in value else 18)


def test_plain_spellings_are_exactly_the_regex_ones():
    rng = np.random.default_rng(21)
    values = ["", "-", ".", "-.", "1", "-1", "1.", ".1", "-.1", "1.5", "-1.5", "1.2.3", "1-2", "--1", "+1", "1e5",
              " 1", "٣", "12345678901234567890", "123456789012345678", "1234567890123456789", "0." + "1" * 38,
              "0." + "1" * 37, "-0", "-00", "-0.0", "-0.5", "40.7128", "-73.95671272407622", None]  # fmt: skip
    for _ in range(20_000):
        k = int(rng.integers(0, 8))
        values.append("".join(rng.choice(ALPHABET, k)) if rng.random() > 0.02 else None)
    column = pa.array(values, pa.string())
    for array in (column, column.slice(7), column.slice(3, 500)):  # offsets that do not start at 0
        plain, _ = vector._plain_numbers(array)
        assert plain.tolist() == [expected(v) for v in array.to_pylist()]
    numbers = vector.numbers(column)
    for value, got in zip(values, numbers, strict=True):
        if expected(value):
            assert got == float(value)
