"""Friendly checks for visible tests: when an answer is wrong, say which likely mistake it matches.

A visible test computes the *mistaken* alternatives on the same data (the mean instead of the median,
open requests left in, ...) and passes them as `mistakes`; a failing check raises `AssertionError`
with plain-language advice, e.g. "You got 4.2 days; that is the mean. Medians resist ...".

    check.not_mistaken(answer, name="median days to close", unit="days",
                       mistakes={"mean": closed["days"].mean()})

Values may be numbers, pandas Series or DataFrames (compared label by label).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from citykit.standards import load_disaggregation

__all__ = [
    "ADVICE",
    "chart_is_labelled",
    "close_to",
    "frame_has_columns",
    "in_range",
    "is_kind",
    "not_mistaken",
    "same_index",
    "same_order",
]

# Advice for mistakes that recur across modules; a test may pass its own as (value, advice). Each says
# what the answer is and what to do instead. Catalogues (curriculum/mistakes/*.yml) quote these words.
ADVICE: dict[str, str] = {
    # which rows
    "mean": "that is the mean. Medians resist a few requests open for a year, so use .median().",
    "open_included": (
        "that includes requests that are still open (no closed_at). Time to close is measured on closed requests only."
    ),
    "duplicates_included": "that keeps duplicate requests. Drop rows where is_duplicate is true.",
    "cancelled_included": "that keeps cancelled requests. Keep only rows with status 'Closed'.",
    "flagged_included": (
        "that keeps rows flagged as defective (closed before created, placeholder close dates). "
        "Drop rows where those flag columns are true."
    ),
    "all_requests": "that uses every request. Check which rows the question asks for.",
    "wrong_population": (
        "that counts the wrong rows (the population). Check which rows the question asks for: "
        "closed or open, one request type, duplicates and flagged rows left out or not."
    ),
    "wrong_denominator": (
        "that divides by the wrong total (the denominator). A share is the rows that meet the condition "
        "divided by the rows the question is about, and those rows only."
    ),
    "shares_do_not_add_up": (
        "those shares do not add up to 1, so the denominator is wrong. Divide each count by the total of "
        "the same rows, or use .value_counts(normalize=True)."
    ),
    # which period and place
    "wrong_period": (
        "that is for another period. Use the notebook's period parameter (period=period), not a date written by hand."
    ),
    "wrong_neighborhood": (
        "that is for another neighborhood, or one neighborhood instead of the whole city. Use the notebook's "
        "neighborhood parameter (neighborhood=neighborhood); None means every neighborhood."
    ),
    "example_parameters": (
        "that uses the example's values (a quarter and one neighborhood). Use the parameters at the top of the "
        "notebook instead: period=period, neighborhood=neighborhood."
    ),
    "wall_clock": (
        "that measures age from today's date. Use the notebook's NOW (the dataset's as-of date) so the answer "
        "does not drift."
    ),
    # shape and kind of the answer
    "not_summed": (
        "that is one True/False value per row, not a number. Add .sum() to count the True values "
        "(or .mean() for a share)."
    ),
    "not_counted": ("that is the column itself, one value per row. Count each value with .value_counts()."),
    "constant": (
        "that is a number typed by hand. Compute it from the data (for example with len(...) or .sum()) so it "
        "stays right for another period or city."
    ),
    "ratio_object": (
        "that is a Ratio (the result of a ratio function), not a number. Take its .estimate, "
        "and .low and .high for the interval."
    ),
    # units
    "percent": "that looks like a percentage. Give a share between 0 and 1 (do not multiply by 100).",
    "hours": "that looks like hours. Divide the durations by pd.Timedelta(days=1) to get days.",
    "seconds": "that looks like seconds. Divide the durations by pd.Timedelta(days=1) to get days.",
    "whole_days": (
        "that counts whole days (.dt.days drops the hours). Divide the durations by pd.Timedelta(days=1) "
        "to keep fractions of a day."
    ),
    "per_resident": "that is per resident. Multiply by 1,000 for a rate per 1,000 residents.",
    "off_by_unit": ("that is off by a unit (×100, ×1,000, ×24...). Check the unit the exercise asks for."),
    # counts, rates and groups of people
    "rates_for_counts": (
        "you passed rates or shares for counts. Pass the number of events and the size of each group "
        "(whole numbers): a.sum() and len(a), not a.mean()."
    ),
    "alone_vs_combination": (
        "that counts a person in every category they selected (alone or in combination), so groups add up to "
        "more than the total. For groups that add up to the total, use equity.race_alone."
    ),
}

Mistakes = Mapping[str, Any]  # name -> value, (value, advice), or None (skipped)


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return f"a {type(value).__name__} of {len(value)} rows"
    try:
        text = f"{float(value):,.4g}"
    except (TypeError, ValueError):
        text = repr(value)
    return f"{text} {unit}".rstrip()


def _as_float_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype="float64")


def _matches(answer: Any, other: Any, rel: float, abs_: float) -> bool:
    """True when `answer` equals `other` within tolerance (label by label for pandas objects)."""
    if isinstance(other, (pd.Series, pd.DataFrame)) or isinstance(answer, (pd.Series, pd.DataFrame)):
        if type(answer) is not type(other):
            return False
        if isinstance(other, pd.DataFrame) and set(answer.columns) != set(other.columns):
            return False
        if set(answer.index) != set(other.index):
            return False
        answer = answer.loc[other.index]
        if isinstance(other, pd.DataFrame):
            answer = answer[other.columns]
    try:
        a, b = _as_float_array(answer), _as_float_array(other)
    except (TypeError, ValueError):
        return bool(answer == other)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=rel, atol=abs_, equal_nan=True))


def _mistake(entry: Any, key: str) -> tuple[Any, str]:
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
        return entry
    return entry, ADVICE.get(key, f"that matches a common mistake ({key.replace('_', ' ')}).")


def _diagnose(answer: Any, mistakes: Mistakes | None, rel: float, abs_: float) -> str | None:
    for key, entry in (mistakes or {}).items():
        if entry is None:  # a test passes None when the data cannot tell this mistake apart
            continue
        value, advice = _mistake(entry, key)
        if _matches(answer, value, rel, abs_):
            return advice
    return None


def not_mistaken(
    answer: Any, *, name: str, mistakes: Mistakes, unit: str = "", rel: float = 1e-6, abs_: float = 1e-9
) -> None:
    """Fail, naming the mistake, when `answer` equals one of the mistaken alternatives."""
    advice = _diagnose(answer, mistakes, rel, abs_)
    if advice is not None:
        raise AssertionError(f"Your {name} is {_fmt(answer, unit)}; {advice}")


def close_to(
    answer: Any,
    expected: Any,
    *,
    name: str,
    unit: str = "",
    mistakes: Mistakes | None = None,
    rel: float = 1e-6,
    abs_: float = 1e-9,
) -> None:
    """Fail unless `answer` equals `expected` within tolerance; name the mistake when one matches."""
    if _matches(answer, expected, rel, abs_):
        return
    advice = _diagnose(answer, mistakes, rel, abs_)
    if advice is not None:
        raise AssertionError(f"Your {name} is {_fmt(answer, unit)}; {advice}")
    if isinstance(expected, (pd.Series, pd.DataFrame)):
        same_index(answer, expected, name=name)
        raise AssertionError(f"Your {name} has the right labels but some values differ from the expected ones.")
    raise AssertionError(f"Your {name} is {_fmt(answer, unit)}; expected about {_fmt(expected, unit)}.")


def is_kind(answer: Any, kind: type | tuple[type, ...], *, name: str) -> None:
    """Fail with the type found when `answer` is not an instance of `kind` (e.g. pd.Series)."""
    if not isinstance(answer, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise AssertionError(f"Your {name} should be a {wanted}, but it is a {type(answer).__name__}.")


def in_range(answer: Any, low: float, high: float, *, name: str, unit: str = "", advice: str = "") -> None:
    """Fail when a number (or any value of a Series) lies outside [low, high]."""
    values = _as_float_array(answer).ravel()
    outside = values[(values < low) | (values > high) | np.isnan(values)]
    if outside.size:
        what = "is" if np.ndim(answer) == 0 else "has a value"
        hint = f"; {advice}" if advice else "."
        raise AssertionError(
            f"Your {name} {what} {_fmt(outside[0], unit)}, outside the possible range {low:g} to {high:g}{hint}"
        )


def frame_has_columns(frame: Any, columns: Iterable[str], *, name: str = "table") -> None:
    """Fail listing the missing columns when `frame` lacks any of `columns`."""
    is_kind(frame, pd.DataFrame, name=name)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AssertionError(
            f"Your {name} is missing the column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, frame.columns))}."
        )


def same_index(answer: Any, expected: Any, *, name: str, show: int = 3) -> None:
    """Fail naming missing and unexpected labels when the two objects' labels differ."""
    is_kind(answer, (pd.Series, pd.DataFrame), name=name)
    have, want = list(answer.index), list(expected.index)
    missing = [label for label in want if label not in set(have)]
    extra = [label for label in have if label not in set(want)]
    if not missing and not extra and len(have) == len(want):
        return
    parts = []
    if missing:
        parts.append(f"it lacks {', '.join(map(repr, missing[:show]))}{' ...' if len(missing) > show else ''}")
    if extra:
        parts.append(f"it has unexpected {', '.join(map(repr, extra[:show]))}{' ...' if len(extra) > show else ''}")
    if not parts:
        parts.append("some labels are repeated")
    raise AssertionError(f"Your {name} does not have the expected rows: {'; '.join(parts)}.")


def same_order(answer: Any, expected: Any, *, name: str, mistakes: Mistakes | None = None) -> None:
    """Fail unless a Series' labels come in the expected order; name a mistaken order when one
    matches (e.g. `{"alphabetical": (expected.sort_index(), "that is sorted by name ...")}`)."""
    is_kind(answer, pd.Series, name=name)
    have = list(answer.index)
    if have == list(expected.index):
        return
    for key, entry in (mistakes or {}).items():
        if entry is None:
            continue
        value, advice = _mistake(entry, key)
        if have == list(value.index):
            raise AssertionError(f"Your {name} is in the wrong order; {advice}")
    raise AssertionError(
        f"Your {name} is in the wrong order: expected {', '.join(map(repr, list(expected.index)[:3]))} first."
    )


def chart_is_labelled(ax: Any, *, name: str = "chart") -> None:
    """Fail naming what is missing when a matplotlib Axes has no title or no axis labels
    (a chart without them cannot be read on its own, or by a screen reader's alt text)."""
    if not hasattr(ax, "get_title") or not hasattr(ax, "get_xlabel"):
        raise AssertionError(f"Your {name} should be a matplotlib Axes (the ax of fig, ax = plt.subplots()).")
    missing = [
        what
        for what, text in (
            ("a title", ax.get_title()),
            ("an x-axis label", ax.get_xlabel()),
            ("a y-axis label", ax.get_ylabel()),
        )
        if not str(text).strip()
    ]
    if missing:
        raise AssertionError(
            f"Your {name} has no {' and no '.join(m.split(' ', 1)[1] for m in missing)}; "
            "give it ax.set_title(...), ax.set_xlabel(...) and ax.set_ylabel(...) so it reads on its own."
        )


def _interior(table: pd.DataFrame, total: str = "Total") -> pd.DataFrame:
    return table.drop(index=total, columns=total, errors="ignore")


def small_cells_hidden(table: Any, *, name: str, low: int | None = None, high: int | None = None) -> None:
    """Fail when a published table of people shows a count from `low` to `high` (the standard's
    small-cell range, 1 to 10, by default); hidden entries are missing values."""
    if low is None or high is None:
        rules = load_disaggregation().small_cells
        low, high = rules.min_suppressed, rules.max_suppressed
    is_kind(table, pd.DataFrame, name=name)
    values = table.apply(pd.to_numeric, errors="coerce")
    small = (values.ge(low) & values.le(high)).fillna(False).astype(bool)
    if small.to_numpy().any():
        row, column = small.stack().loc[lambda cells: cells].index[0]
        raise AssertionError(
            f"Your {name} shows {int(values.at[row, column])} people in ({row!r}, {column!r}); publishing "
            f"unsuppressed small cells ({low} to {high} people) can identify someone. Hide them (missing "
            f"values), and the cells that would give them away, with citykit.equity.suppress."
        )
