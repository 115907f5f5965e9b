"""k-anonymity for person-level rows under the disaggregation standard.

    published, report = k_anonymize(applications)   # every quasi-identifier group has >= k rows

The quasi-identifiers (every column `privacy.columns` classes quasi_identifier and publishes in the
rows), k, the outcome rule (`privacy.outcome_disclosure`) and the order of the generalisation steps
come from `curriculum/standards/disaggregation.yml` (`citykit.standards.load_disaggregation`);
nothing here hard-codes a rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from citykit.errors import CitykitError
from citykit.standards.reader import DisaggregationStandard, GeneralisationStep, load_disaggregation

RACE_ALIAS = "race"  # in the standard's quasi-identifiers: every race_* indicator column


@dataclass(frozen=True)
class KAnonymityReport:
    """What `k_anonymize` did: rows in and out, rows generalised per step, rows suppressed."""

    k: int
    quasi_identifiers: tuple[str, ...]
    rows_in: int
    rows_out: int
    generalised: dict[str, int]  # step name -> rows changed by it, in the standard's order
    suppressed: int
    smallest_class: int | None  # smallest equivalence class after (None when no rows remain)
    standard_version: str
    outcome: str | None = None  # the sensitive column the outcome rule reads (None: not applied)
    uniform_max: int = 0  # a class of at most this many rows whose decided rows share one outcome is too small

    def __str__(self) -> str:
        steps = ", ".join(f"{name} {n:,}" for name, n in self.generalised.items() if n) or "none"
        rule = (
            f", no group of {self.uniform_max} or fewer whose decided rows share one {self.outcome}"
            if self.outcome and self.uniform_max
            else ""
        )
        return (
            f"k-anonymity (k={self.k}{rule}, standard {self.standard_version}): {self.rows_in:,} rows in, "
            f"{self.rows_out:,} out; generalised: {steps}; suppressed {self.suppressed:,}; "
            f"smallest group {self.smallest_class}"
        )


def race_columns(standard: DisaggregationStandard | None = None) -> list[str]:
    """The multi-select indicator columns: seven SPD-15 categories, then not reported, declined."""
    std = standard or load_disaggregation()
    codes = [c.code for c in std.race_categories] + [std.not_reported.code, std.declined.code]
    return [f"race_{code}" for code in codes]


def k_anonymize(
    df: pd.DataFrame,
    quasi_identifiers: list[str] | None = None,
    k: int | None = None,
    *,
    outcome: str | None = "outcome",
    standard: DisaggregationStandard | None = None,
) -> tuple[pd.DataFrame, KAnonymityReport]:
    """Generalise, then suppress, person-level rows until every quasi-identifier group has ≥ k rows
    and no small group's decided rows share one outcome.

    `quasi_identifiers` defaults to the standard's (`privacy.columns`: for program applications
    `submitted_at, neighborhood, council_district, gender, race, language`), keeping those present
    in `df`; `race` stands for the race_* indicator columns. `k` defaults to the standard's (5).
    `outcome` names the sensitive column of the outcome rule (`privacy.outcome_disclosure`): a
    group of at most `uniform_outcome_max_n` (20) rows whose decided members (outcome neither null
    nor one of the standard's `undecided`, Pending) share one outcome, or are none, is too small
    too: 1 Denied + 6 Pending is, 1 Approved + 1 Denied + 5 Pending is not (None, or a column not
    in `df`, turns the rule off). The standard's generalisation steps
    run in order, and each step changes only the rows whose group is still too small (local
    recoding):

    1. neighborhood -> council district: `neighborhood` set to null, `council_district` kept;
    2. district -> citywide: `neighborhood` and `council_district` both null;
    3. gender: Nonbinary and Another gender -> "Nonbinary or another gender"; 4. gender -> null;
    5. language -> null;
    6. race: a person with two or more categories becomes Multiracial and/or Multiethnic — the
       seven SPD-15 indicators set to <NA>, race_not_reported and race_declined False. Single
       categories are never merged (kept intact as long as possible).

    Rows still in a group too small are dropped and counted as suppressed. When the race step
    changes any row, the seven indicator columns become pandas' nullable "boolean" dtype (other
    dtypes are kept; a nulled integer district becomes "Int64"). The input is not modified.
    """
    std = standard or load_disaggregation()
    k = std.k_anonymity.k if k is None else int(k)
    if k < 1:
        raise CitykitError(f"k must be at least 1, got {k}")
    qi_columns = _quasi_identifier_columns(df, quasi_identifiers, std)
    outcome = outcome if outcome is not None and outcome in df.columns else None
    uniform_max = std.small_cells.uniform_outcome_max_n if outcome is not None else 0
    undecided = std.small_cells.undecided_outcomes

    out = df.copy()
    generalised: dict[str, int] = {}
    for step in std.k_anonymity.steps:
        small = _too_small(out, qi_columns, k, outcome, uniform_max, undecided)
        generalised[step.step] = _apply_step(out, step, small, qi_columns, std) if small.any() else 0

    keep = ~_too_small(out, qi_columns, k, outcome, uniform_max, undecided)
    sizes = _class_sizes(out, qi_columns)
    out = out.loc[keep]
    report = KAnonymityReport(
        k=k,
        quasi_identifiers=tuple(qi_columns),
        rows_in=len(df),
        rows_out=len(out),
        generalised=generalised,
        suppressed=int((~keep).sum()),
        smallest_class=int(sizes[keep].min()) if keep.any() else None,
        standard_version=std.version,
        outcome=outcome,
        uniform_max=uniform_max,
    )
    return out, report


def _quasi_identifier_columns(df: pd.DataFrame, requested: list[str] | None, std: DisaggregationStandard) -> list[str]:
    def expand(names: Iterable[str]) -> list[str]:
        cols: list[str] = []
        for name in names:
            cols.extend(race_columns(std) if name == RACE_ALIAS else [name])
        return cols

    if requested is None:
        columns = [c for c in expand(std.k_anonymity.quasi_identifiers) if c in df.columns]
        if not columns:
            raise CitykitError(
                "none of the standard's quasi-identifiers are in the table "
                f"({', '.join(std.k_anonymity.quasi_identifiers)})"
            )
        return columns
    columns = expand(requested)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CitykitError(f"quasi-identifier columns not in the table: {', '.join(missing)}")
    return list(dict.fromkeys(columns))


def _too_small(
    df: pd.DataFrame, columns: list[str], k: int, outcome: str | None, uniform_max: int, undecided: Iterable[str] = ()
) -> np.ndarray:
    """Rows whose equivalence class has fewer than k rows, or at most `uniform_max` rows whose
    decided members share one `outcome` or are none (the outcome rule: whoever knows a member was
    decided would know the outcome). A null `outcome`, or one of `undecided` (e.g. Pending,
    compared ignoring case), is no decision: 1 Denied + 6 Pending is uniform, 1 Approved +
    1 Denied + 5 Pending is not."""
    sizes = _class_sizes(df, columns)
    small = sizes < k
    if outcome is None or uniform_max <= 0 or df.empty:
        return small
    codes = df.groupby(columns, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    values = df[outcome].astype(object)
    decided = values.notna() & ~values.astype(str).str.casefold().isin({u.casefold() for u in undecided})
    kinds_of = pd.factorize(values[decided])[0]  # decided rows only
    pairs = np.unique(np.stack([codes[decided.to_numpy()], kinds_of]), axis=1)[0]  # one per (class, decided outcome)
    kinds = np.bincount(pairs, minlength=codes.max() + 1)[codes]
    return small | ((sizes <= uniform_max) & (kinds <= 1))


def _class_sizes(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Size of each row's equivalence class (nulls form their own group)."""
    if df.empty:
        return np.zeros(0, dtype=np.int64)
    codes = df.groupby(columns, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    return np.bincount(codes)[codes]


def _apply_step(
    df: pd.DataFrame, step: GeneralisationStep, small: np.ndarray, qi: list[str], std: DisaggregationStandard
) -> int:
    """Generalise the rows flagged `small` in place; return how many rows changed."""
    if step.kind == "set_null":
        columns = [c for c in step.columns if c in qi]
        if not columns:
            return 0
        changed = small & df[columns].notna().any(axis=1).to_numpy()
        for col in columns:
            if pd.api.types.is_integer_dtype(df[col]) and not isinstance(df[col].dtype, pd.ArrowDtype):
                df[col] = df[col].astype("Int64")  # keep whole numbers (e.g. district) when nulled
        df.loc[changed, columns] = None
        return int(changed.sum())
    if step.kind == "map":
        if step.column not in qi:
            return 0
        values = df[step.column]
        changed = small & values.isin(list(step.mapping)).to_numpy()
        df.loc[changed, step.column] = values[changed].map(step.mapping)
        return int(changed.sum())
    if step.kind == "multiracial":
        categories = [f"race_{c.code}" for c in std.race_categories]
        if not all(c in qi for c in categories):
            return 0
        selected = df[categories].fillna(False).astype(bool).sum(axis=1).to_numpy()
        changed = small & (selected >= 2)
        if not changed.any():
            return 0
        for col in categories:
            df[col] = df[col].astype("boolean")  # nullable: <NA> marks "one of several, not shown"
        df.loc[changed, categories] = pd.NA
        for col in (f"race_{std.not_reported.code}", f"race_{std.declined.code}"):
            if col in df.columns:
                df.loc[changed, col] = False
        return int(changed.sum())
    raise CitykitError(f"unknown generalisation kind {step.kind!r} in step {step.step!r}")
