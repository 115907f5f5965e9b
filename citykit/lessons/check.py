"""Friendly checks for visible tests: when an answer is wrong, say which likely mistake it matches.

A visible test computes the *mistaken* alternatives on the same data (the mean instead of the median,
open requests left in, ...) and passes them as `mistakes`; a failing check raises `AssertionError`
with plain-language advice, e.g. "You got 4.2 days; that is the mean. Medians resist ...".

    check.not_mistaken(answer, name="median days to close", unit="days",
                       mistakes={"mean": closed["days"].mean()})

Values may be numbers, pandas Series or DataFrames (compared label by label).

Checks fail kindly: the kind and shape of an answer come first, with what to do ("should be a list ...:
add .tolist()", "one True/False value per row ...: add .sum()", "a Ratio ...: take its .estimate");
numbers are written for people (227,305, never 5e+05; `unit="share"` says 0.79 (79.0%)); pandas' own
errors never reach the learner. A visible test compares the answer with the value computed on the
learner's own data, `close_to(..., reveal=False, hint=...)` (or `shares(...)` for shares of a whole),
so a wrong answer fails with advice but the expected value is not shown. Each module's catalogue of
mistakes (curriculum/mistakes/NN-slug.yml, tests/lessons/test_mistakes.py) holds the checks to that.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from citykit.errors import CitykitError
from citykit.standards import load_disaggregation

__all__ = [
    "ADVICE",
    "CheckFailed",
    "chart_is_labelled",
    "close_to",
    "frame_has_columns",
    "in_range",
    "is_kind",
    "is_list_of",
    "is_number",
    "not_mistaken",
    "number",
    "same_columns",
    "same_index",
    "same_order",
    "share",
    "shares",
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


# -- numbers and kinds, said for people -------------------------------------------------------------


def number(value: Any) -> str:
    """A number as a person writes it: 227,305; 3.25; 0.0012; never scientific notation."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if math.isnan(x):
        return "missing (NaN)"
    if math.isinf(x):
        return "infinite" if x > 0 else "minus infinite"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    if abs(x) >= 0.001:
        return f"{x:.4g}"
    decimals = min(15, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}".rstrip("0")


def share(value: Any) -> str:
    """A share between 0 and 1 as a percentage for people: 0.79 -> 79.0%."""
    try:
        return f"{float(value):.1%}"
    except (TypeError, ValueError):
        return repr(value)


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return f"a {type(value).__name__} of {_many(len(value), 'row')}"
    if unit == "share":  # a share is said both ways: 0.7913 (79.1%)
        text = number(value)
        return f"{text} ({share(value)})" if _is_number(value) and 0 <= float(value) <= 1 else text
    return f"{number(value)} {unit}".rstrip()


def _many(count: int, word: str) -> str:
    """'1 row', '2,048 rows'."""
    return f"{count:,} {word}{'s' * (count != 1)}"


def _article(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def _kind_name(value: Any) -> str:
    """What a value is, in the words the lessons use (a Series, a list, a number, text...)."""
    if value is None:
        return "None (nothing)"
    if isinstance(value, (bool, np.bool_)):
        return f"True/False ({value})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"the number {number(value)}"
    if isinstance(value, pd.DataFrame):
        return f"a DataFrame of {_many(len(value), 'row')} and {_many(len(value.columns), 'column')}"
    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value):
            return f"a Series of {_many(len(value), 'True/False value')}"
        return f"a Series of {_many(len(value), 'value')}"
    if isinstance(value, pd.Index):
        return f"an Index of {_many(len(value), 'label')}" if len(value) else "an empty Index"
    if isinstance(value, (list, tuple, set, dict)):
        word = type(value).__name__
        return f"an empty {word}" if not value else f"a {word} of {_many(len(value), 'item')}"
    if hasattr(value, "estimate") and hasattr(value, "low"):
        return f"a {type(value).__name__} result (estimate, low, high)"
    if isinstance(value, (np.dtype, pd.api.extensions.ExtensionDtype)):
        return f"a column type ({value})"
    return _article(type(value).__name__)


def _is_number(value: Any) -> bool:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _rows_of_table(answer: Any) -> bool:
    """A Series with one value per row of a table (labels 0, 1, 2...), not one per group."""
    return isinstance(answer, pd.Series) and pd.api.types.is_integer_dtype(answer.index.dtype)


def _number_advice(answer: Any, name: str) -> str | None:
    """Why `answer` is not one number, and what to do; None when it is one."""
    if _is_number(answer):
        return None
    have = f"Your {name} should be one number, but it is {_kind_name(answer)}"
    if hasattr(answer, "estimate") and hasattr(answer, "low"):
        return f"Your {name} is {_kind_name(answer)}; {ADVICE['ratio_object']}"
    if isinstance(answer, pd.Series) and pd.api.types.is_bool_dtype(answer):
        return f"Your {name} is {_kind_name(answer)}; {ADVICE['not_summed']}"
    if isinstance(answer, (pd.Series, pd.DataFrame, pd.Index, list)):
        return f"{have}: add it up with .sum(), take .mean() for a share, or count its rows with len(...)."
    if isinstance(answer, tuple):
        return f"{have}. If it is a .shape, (rows, columns), take the rows with len(...) or .shape[0]."
    if isinstance(answer, str):
        return f"{have}. Compute it from the data, without quotes."
    if isinstance(answer, (bool, np.bool_)):
        return f"{have}. Count the True values of a column with .sum(), or take .mean() for a share."
    if answer is None:
        return f"{have}. Did the cell assign it, with a line like {name} = ...?"
    return f"{have}."


def _series_advice(answer: Any, expected: pd.Series, name: str) -> str | None:
    """Why `answer` is not a Series comparable with `expected`, and what to do; None when it is."""
    if isinstance(answer, pd.Series):
        if _rows_of_table(answer) and not _rows_of_table(expected):
            if pd.api.types.is_bool_dtype(answer):
                return f"Your {name} is {_kind_name(answer)}; {ADVICE['not_summed']}"
            return f"Your {name} is {_kind_name(answer)}; {ADVICE['not_counted']}"
        return None
    have = f"Your {name} should be a Series (one value per label, as .value_counts() gives), but it is {_kind_name(answer)}"
    if isinstance(answer, pd.DataFrame):
        return f"{have}: select one column with frame['column'], or use .squeeze() if it has only one."
    if _is_number(answer):
        return f"{have}: keep one value per label (for example with .value_counts() or .groupby(...).size())."
    if isinstance(answer, (list, dict, pd.Index)):
        return f"{have}: make it with pandas (for example .value_counts()) so each value keeps its label."
    return f"{have}."


def _frame_advice(answer: Any, name: str) -> str | None:
    if isinstance(answer, pd.DataFrame):
        return None
    have = f"Your {name} should be a DataFrame (a table), but it is {_kind_name(answer)}"
    if isinstance(answer, pd.Series):
        return f"{have}: make it a table with .to_frame(), or with .unstack() for counts by two columns."
    return f"{have}."


def _list_advice(answer: Any, name: str) -> str | None:
    if isinstance(answer, list):
        return None
    have = f"Your {name} should be a list, but it is {_kind_name(answer)}"
    if isinstance(answer, (pd.Index, pd.Series, np.ndarray)):
        return f"{have}: add .tolist() (or wrap it in list(...))."
    if isinstance(answer, (tuple, set)):
        return f"{have}: wrap it in list(...)."
    if isinstance(answer, str):
        return f"{have}: put it in square brackets, [{answer!r}]."
    return f"{have}."


def _kind_problem(answer: Any, expected: Any, name: str) -> str | None:
    """A message when `answer` is not the kind of value `expected` is (checked before any value)."""
    if isinstance(expected, pd.DataFrame):
        return _frame_advice(answer, name)
    if isinstance(expected, pd.Series):
        return _series_advice(answer, expected, name)
    if isinstance(expected, list):
        return _list_advice(answer, name)
    if _is_number(expected):
        return _number_advice(answer, name)
    return None


def _as_float_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype="float64")


def _aligned(answer: Any, other: Any) -> Any:
    """`answer` in the order of `other`'s labels (rows, and columns of a table); None when the two
    do not hold the same labels. Numbers and lists are returned as they are."""
    if not isinstance(other, (pd.Series, pd.DataFrame)) and not isinstance(answer, (pd.Series, pd.DataFrame)):
        return answer
    if type(answer) is not type(other):
        return None
    if isinstance(other, pd.DataFrame) and set(answer.columns) != set(other.columns):
        return None
    if len(answer.index) != len(other.index) or set(answer.index) != set(other.index):
        return None
    if not answer.index.is_unique:
        return None
    answer = answer.loc[list(other.index)]
    return answer[list(other.columns)] if isinstance(other, pd.DataFrame) else answer


def _matches(answer: Any, other: Any, rel: float, abs_: float) -> bool:
    """True when `answer` equals `other` within tolerance (label by label for pandas objects)."""
    try:
        answer = _aligned(answer, other)
        if answer is None:
            return False
        try:
            a, b = _as_float_array(answer), _as_float_array(other)
        except (TypeError, ValueError):
            return bool(np.all(np.asarray(answer, dtype=object) == np.asarray(other, dtype=object)))
        if a.shape != b.shape:
            return False
        return bool(np.allclose(a, b, rtol=rel, atol=abs_, equal_nan=True))
    except Exception:  # pandas refuses to compare them: then they are not the same
        return False


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


class CheckFailed(AssertionError):
    """A visible check's verdict: an AssertionError (so nbgrader and the grader see a failed cell)
    that a notebook shows as its message alone, without the check's own source and frames."""

    def __init__(self, *args: Any) -> None:
        _short_tracebacks()
        super().__init__(*args)


CheckFailed.__name__ = "AssertionError"  # what learners, nbgrader and feedback see: "AssertionError: Your ..."


def _show_message_only(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset, exception_only=True)


def _short_tracebacks() -> None:
    """In IPython, a failed check (and a citykit one-line error raised later in the notebook) is shown
    as its message only: a learner reads the advice, not the check's code. Called when a check runs,
    never at import; outside IPython it does nothing."""
    try:
        from IPython import get_ipython  # lazy: only inside a kernel
    except ImportError:  # pragma: no cover - IPython is part of the stack
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "CustomTB", None) is not _show_message_only:
        shell.set_custom_exc((CheckFailed, CitykitError), _show_message_only)


def _kindly(check):
    """A check that never lets pandas' or numpy's own errors reach a learner: anything but an
    AssertionError becomes a plain sentence about what the answer is."""

    @functools.wraps(check)
    def wrapped(answer: Any = None, *args: Any, **kwargs: Any) -> None:
        _short_tracebacks()
        try:
            return check(answer, *args, **kwargs)
        except AssertionError:
            raise
        except Exception:
            name = kwargs.get("name") or "answer"
            raise CheckFailed(
                f"Your {name} is {_kind_name(answer)}, which cannot be compared with the expected answer; "
                "check what the exercise asks for (one number, a Series by label, a table)."
            ) from None

    return wrapped


ADVICE_ROUNDED = (
    "Keep it as computed and round only when you display it "
    "(for example with round(x, 3), or .round(3) for a Series or a table, in a display cell)."
)


def _rounded(answer: Any, expected: Any) -> bool:
    """True when `answer` is `expected` rounded to 0-4 decimals, label by label for pandas objects
    (called once they differ; wrong labels get the label advice, not this one)."""
    try:
        answer = _aligned(answer, expected)
        if answer is None:
            return False
        got, want = _as_float_array(answer), _as_float_array(expected)
    except Exception:
        return False
    if got.shape != want.shape or not np.isfinite(want).all():
        return False
    return any(np.allclose(got, np.round(want, d), rtol=0, atol=1e-12) for d in range(5))


def _kind_mistake_or_rounding(
    answer: Any, expected: Any, *, name: str, unit: str, mistakes: Mistakes | None, rel: float, abs_: float
) -> bool:
    """What every comparing check says first: True when `answer` equals `expected`; a failure, with
    what to do, when it is the wrong kind of value, a catalogued mistake, or `expected` rounded;
    False when it differs otherwise (the check says how)."""
    problem = _kind_problem(answer, expected, name)
    if problem is not None:
        raise CheckFailed(problem)
    if _matches(answer, expected, rel, abs_):
        return True
    advice = _diagnose(answer, mistakes, rel, abs_)
    if advice is not None:
        raise CheckFailed(f"Your {name} is {_fmt(answer, unit)}; {advice}")
    if _rounded(answer, expected):
        raise CheckFailed(f"Your {name} is rounded. {ADVICE_ROUNDED}")
    return False


@_kindly
def not_mistaken(
    answer: Any, *, name: str, mistakes: Mistakes, unit: str = "", rel: float = 1e-6, abs_: float = 1e-9
) -> None:
    """Fail, naming the mistake, when `answer` equals one of the mistaken alternatives. `unit` is said
    after the number ("days"); unit="share" says a share both ways, 0.79 (79.0%)."""
    advice = _diagnose(answer, mistakes, rel, abs_)
    if advice is not None:
        raise CheckFailed(f"Your {name} is {_fmt(answer, unit)}; {advice}")


@_kindly
def close_to(
    answer: Any,
    expected: Any,
    *,
    name: str,
    unit: str = "",
    mistakes: Mistakes | None = None,
    rel: float = 1e-6,
    abs_: float = 1e-9,
    reveal: bool = True,
    hint: str = "",
) -> None:
    """Fail unless `answer` equals `expected` within tolerance: first its kind (a number, a Series, a
    list...), with what to do; then a catalogued mistake that matches, with its advice; else the
    expected value (`reveal=False`, for visible tests: say only that it differs, and `hint`)."""
    if _kind_mistake_or_rounding(answer, expected, name=name, unit=unit, mistakes=mistakes, rel=rel, abs_=abs_):
        return
    if isinstance(expected, (pd.Series, pd.DataFrame)):
        same_index(answer, expected, name=name)
        if isinstance(expected, pd.DataFrame):
            same_columns(answer, expected, name=name)
        raise CheckFailed(
            f"Your {name} has the right labels but some values differ from the expected ones."
            + (f" {hint}" if hint else "")
        )
    if not reveal:
        raise CheckFailed(
            f"Your {name} is {_fmt(answer, unit)}, which is not what the data give. "
            + (hint or "Check which rows you counted, and the denominator of any share.")
        )
    raise CheckFailed(f"Your {name} is {_fmt(answer, unit)}; expected about {_fmt(expected, unit)}.")


@_kindly
def shares(
    answer: Any,
    expected: pd.Series,
    *,
    name: str,
    mistakes: Mistakes | None = None,
    hint: str = "",
    rel: float = 1e-6,
    abs_: float = 1e-9,
) -> None:
    """Fail unless `answer` holds the shares of a whole (`expected`, label by label, adding up to 1),
    without revealing them: its kind first, then a catalogued mistake, rounded shares, wrong labels,
    then counts, percentages and shares that do not add up to 1 (a wrong denominator), each with its advice."""
    if _kind_mistake_or_rounding(answer, expected, name=name, unit="", mistakes=mistakes, rel=rel, abs_=abs_):
        return
    same_index(answer, expected, name=name)
    values = _as_float_array(answer.loc[list(expected.index)])
    total = float(np.nansum(values))
    if np.nanmax(values) > 1:
        if 99 <= total <= 101:
            raise CheckFailed(f"Your {name} adds up to {number(total)}; {ADVICE['percent']}")
        raise CheckFailed(
            f"Your {name} adds up to {number(total)}, so these are not shares but perhaps counts. Divide each "
            "count by the total of the same rows, or use .value_counts(normalize=True)."
        )
    if abs(total - 1) > 1e-6:
        raise CheckFailed(f"Your {name} adds up to {number(total)}; {ADVICE['shares_do_not_add_up']}")
    raise CheckFailed(
        f"Your {name} has the right labels but some shares differ from the data's." + (f" {hint}" if hint else "")
    )


def is_kind(answer: Any, kind: type | tuple[type, ...], *, name: str) -> None:
    """Fail with the type found, and how to get the wanted one, when `answer` is not an instance of
    `kind` (e.g. pd.Series)."""
    if isinstance(answer, kind):
        return
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for wanted, advice in ((list, _list_advice), (pd.DataFrame, _frame_advice)):
        if kinds == (wanted,):
            raise CheckFailed(advice(answer, name))
    if kinds == (pd.Series,):
        raise CheckFailed(_series_advice(answer, pd.Series(dtype=float), name))
    wanted = " or ".join(_article(k.__name__) for k in kinds)
    raise CheckFailed(f"Your {name} should be {wanted}, but it is {_kind_name(answer)}.")


def is_number(answer: Any, *, name: str, whole: bool = False) -> None:
    """Fail, saying what to do, unless `answer` is one number (a whole one with `whole=True`)."""
    problem = _number_advice(answer, name)
    if problem:
        raise CheckFailed(problem)
    if whole and float(answer) != int(float(answer)):
        raise CheckFailed(f"Your {name} is {number(answer)}; it should be a whole number (a count).")


def is_list_of(
    answer: Any, *, name: str, like: Iterable[str] = (), among: Iterable[str] | None = None, what: str = "names"
) -> None:
    """Fail, saying what to do, unless `answer` is a non-empty list of text; with `among`, every item
    must be one of them. `like` shows an example in the message: "like ['created_at', ...]"."""
    example = list(like)
    shape = f"a list of {what}" + (f", like [{example[0]!r}, ...]" if example else "")
    if not isinstance(answer, list):
        advice = _list_advice(answer, name)
        raise CheckFailed(advice.replace("should be a list", f"should be {shape}", 1))
    if not answer:
        raise CheckFailed(f"Your {name} should be {shape}; you have an empty list.")
    not_text = [item for item in answer if not isinstance(item, str)]
    if not_text:
        raise CheckFailed(
            f"Your {name} should be {shape}, but it holds {_kind_name(not_text[0])}; "
            "put the names as text, like list(frame.columns)."
        )
    if among is not None:
        allowed = list(among)
        unknown = [item for item in answer if item not in allowed]
        if unknown:
            raise CheckFailed(f"Your {name} has {unknown[0]!r}, which is not one of the {what} it can hold.")


def _outside_advice(value: float, low: float, high: float, advice: str) -> str:
    """The advice for a value outside [low, high]: the percent advice only for what looks like one."""
    if advice != ADVICE["percent"]:
        return advice
    if high <= 1 and 1 < value <= 100:
        return advice
    if high <= 1 and value > 100:
        return (
            "that is far above 1, so it is not a share: perhaps a count. A share is a count divided by the "
            "number of rows (or the .mean() of a True/False column)."
        )
    if value < 0:
        return "a share cannot be negative; check the subtraction or the columns used."
    return ""


@_kindly
def in_range(answer: Any, low: float, high: float, *, name: str, unit: str = "", advice: str = "") -> None:
    """Fail when a number (or any value of a Series) lies outside [low, high]."""
    if isinstance(answer, (pd.Series, pd.DataFrame)) and pd.api.types.is_bool_dtype(np.asarray(answer)):
        raise CheckFailed(f"Your {name} is {_kind_name(answer)}; {ADVICE['not_summed']}")
    try:
        values = _as_float_array(answer).ravel()
    except (TypeError, ValueError):
        raise CheckFailed(f"Your {name} should be a number or numbers, but it is {_kind_name(answer)}.") from None
    outside = values[(values < low) | (values > high) | np.isnan(values)]
    if outside.size:
        what = "is" if np.ndim(answer) == 0 else "has a value"
        said = _outside_advice(float(outside[0]), low, high, advice)
        hint = f"; {said}" if said else "."
        raise CheckFailed(
            f"Your {name} {what} {_fmt(outside[0], unit)}, outside the possible range {number(low)} to "
            f"{number(high)}{hint}"
        )


def frame_has_columns(frame: Any, columns: Iterable[str], *, name: str = "table") -> None:
    """Fail listing the missing columns when `frame` lacks any of `columns`."""
    is_kind(frame, pd.DataFrame, name=name)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CheckFailed(
            f"Your {name} is missing the column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, frame.columns))}."
        )


def same_index(answer: Any, expected: Any, *, name: str, show: int = 3) -> None:
    """Fail naming missing and unexpected labels when the two objects' labels differ."""
    if not isinstance(answer, (pd.Series, pd.DataFrame)):  # labels only: a Series or a table will do
        raise CheckFailed(
            _series_advice(answer, pd.Series(dtype=float), name).replace(
                "should be a Series", "should be a Series or a table", 1
            )
        )
    if isinstance(answer, pd.Series):  # one value per row where one per label was expected
        problem = _series_advice(answer, pd.Series(0, index=expected.index), name)
        if problem:
            raise CheckFailed(problem)
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
    raise CheckFailed(f"Your {name} does not have the expected rows: {'; '.join(parts)}.")


def same_columns(answer: Any, expected: pd.DataFrame, *, name: str, show: int = 3) -> None:
    """Fail naming missing and unexpected columns when two tables' columns differ."""
    is_kind(answer, pd.DataFrame, name=name)
    have, want = list(answer.columns), list(expected.columns)
    missing = [c for c in want if c not in set(have)]
    extra = [c for c in have if c not in set(want)]
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"it lacks {', '.join(map(repr, missing[:show]))}{' ...' if len(missing) > show else ''}")
    if extra:
        parts.append(f"it has unexpected {', '.join(map(repr, extra[:show]))}{' ...' if len(extra) > show else ''}")
    raise CheckFailed(f"Your {name} does not have the expected columns: {'; '.join(parts)}.")


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
            raise CheckFailed(f"Your {name} is in the wrong order; {advice}")
    raise CheckFailed(
        f"Your {name} is in the wrong order: expected {', '.join(map(repr, list(expected.index)[:3]))} first."
    )


def chart_is_labelled(ax: Any, *, name: str = "chart") -> None:
    """Fail naming what is missing when a matplotlib Axes has no title or no axis labels
    (a chart without them cannot be read on its own, or by a screen reader's alt text)."""
    if not hasattr(ax, "get_title") or not hasattr(ax, "get_xlabel"):
        raise CheckFailed(f"Your {name} should be a matplotlib Axes (the ax of fig, ax = plt.subplots()).")
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
        raise CheckFailed(
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
        raise CheckFailed(
            f"Your {name} shows {int(values.at[row, column])} people in ({row!r}, {column!r}); publishing "
            f"unsuppressed small cells ({low} to {high} people) can identify someone. Hide them (missing "
            f"values), and the cells that would give them away, with citykit.equity.suppress."
        )
