"""Small-cell suppression of count tables of people, and its audit.

    tables = suppress([count_table(by_race, "alone")], relations)   # primary + complementary
    audit(tables, relations).passed                                  # each hidden count ranges widely

Counts from the standard's `min_suppressed` to `max_suppressed` are suppressed (zeros shown), then
complementary entries until no suppressed entry can be narrowed, by linear programmes over every
table published with it, to a range below the standard's `min_feasible_range`. The thresholds come
from `curriculum/standards/disaggregation.yml` (`citykit.standards.load_disaggregation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from citykit.errors import CitykitError, WorkFailed
from citykit.standards.reader import DisaggregationStandard, load_disaggregation

TOTAL = "Total"


@dataclass
class PublishedTable:
    """A table of counts of people as published: interior cells plus a `Total` row and column.

    `values` holds the counts with margins (last row and last column labelled "Total");
    `suppressed` is a boolean frame of the same shape. `rows_add_up` says the interior rows sum
    to the Total row (False for "alone or in combination" rows, which overlap); `columns_add_up`
    likewise for columns and the Total column.
    """

    name: str
    values: pd.DataFrame
    suppressed: pd.DataFrame
    rows_add_up: bool = True
    columns_add_up: bool = True

    @property
    def shown(self) -> pd.DataFrame:
        """The values as published: suppressed entries are <NA>."""
        return self.values.astype("Int64").mask(self.suppressed)


@dataclass(frozen=True)
class Relation:
    """A linear relation between published entries of tables published together:
    sum(coef * entry) `sense` rhs, with entries named (table name, row label, column label)."""

    terms: tuple[tuple[float, str, object, object], ...]
    sense: str = "=="  # "==", "<=" or ">="
    rhs: float = 0.0


@dataclass(frozen=True)
class AuditReport:
    """For every suppressed entry, the range of values consistent with everything published."""

    cells: pd.DataFrame  # table, row, column, value, low, high, width, protected
    min_feasible_range: float
    not_covered: str
    linear_programs: int

    @property
    def passed(self) -> bool:
        return bool(self.cells["protected"].all()) if len(self.cells) else True

    @property
    def exposed(self) -> pd.DataFrame:
        return self.cells.loc[~self.cells["protected"]]

    def __str__(self) -> str:
        verdict = "passed" if self.passed else f"FAILED for {len(self.exposed)} entries"
        return (
            f"suppression audit {verdict}: {len(self.cells)} suppressed entries, each must range over "
            f"at least {self.min_feasible_range:g} ({self.linear_programs} linear programmes). "
            f"Not covered: {self.not_covered}"
        )


def count_table(
    counts: pd.DataFrame,
    name: str = "table",
    *,
    total_row: pd.Series | None = None,
    rows_add_up: bool = True,
) -> PublishedTable:
    """A `PublishedTable` from interior counts, with the Total column (row sums) and Total row.

    The Total row is the column sums, or `total_row` (indexed by the columns; its Total is the
    grand total) when the rows overlap (`rows_add_up=False`, e.g. "alone or in combination").
    """
    if counts.isna().any().any():
        raise CitykitError(f"table {name!r} has missing counts; fill zeros explicitly")
    values = counts.astype("int64").copy()
    values[TOTAL] = values.sum(axis=1)
    if total_row is None:
        if not rows_add_up:
            raise CitykitError(f"table {name!r}: rows overlap, so give total_row (the people counted)")
        bottom = values.sum(axis=0)
    else:
        bottom = pd.Series(total_row, dtype="int64").reindex(values.columns)
        if bottom.isna().any():
            bottom[TOTAL] = bottom.drop(TOTAL).sum()
    values.loc[TOTAL] = bottom.astype("int64")
    values = values.astype("int64")
    return PublishedTable(name, values, pd.DataFrame(False, index=values.index, columns=values.columns), rows_add_up)


def primary_suppression(table: PublishedTable, *, standard: DisaggregationStandard | None = None) -> PublishedTable:
    """Suppress every entry (margins included) from 1 to 10; zeros stay shown."""
    rules = (standard or load_disaggregation()).small_cells
    small = (table.values >= rules.min_suppressed) & (table.values <= rules.max_suppressed)
    return PublishedTable(table.name, table.values, table.suppressed | small, table.rows_add_up, table.columns_add_up)


def suppress(
    tables: PublishedTable | list[PublishedTable],
    relations: Iterable[Relation] = (),
    *,
    standard: DisaggregationStandard | None = None,
) -> list[PublishedTable]:
    """Primary plus complementary suppression of tables published together.

    Counts 1–10 are suppressed (zeros shown). Then, while a suppressed entry's feasible range
    (by `audit`) is narrower than the standard's `min_feasible_range`, the smallest non-zero
    published entry in its row or column (else in its table, else anywhere) is suppressed too.
    Suppressing more only widens ranges, so entries once protected are not re-checked.
    """
    std = standard or load_disaggregation()
    group = [tables] if isinstance(tables, PublishedTable) else list(tables)
    group = [primary_suppression(t, standard=std) for t in group]
    relations = tuple(relations)
    if not std.small_cells.complementary:
        return group
    _protect_lone_suppressions(group)
    protected: set[tuple[str, object, object]] = set()
    by_name = {t.name: t for t in group}
    for _ in range(sum(t.values.size for t in group) + 1):
        cells, _programs = _ranges(group, relations, std, skip=protected, quick=True)
        protected |= {(c.table, c.row, c.column) for c in cells.itertuples() if c.protected}
        exposed = cells.loc[~cells["protected"]]
        if exposed.empty:
            return group
        chosen: set[tuple[str, object, object]] = set()
        for cell in exposed.itertuples():
            pick = _complement(group, cell.table, cell.row, cell.column, chosen)
            if pick is not None:
                chosen.add(pick)
        if not chosen:
            break
        for table_name, row, column in chosen:
            by_name[table_name].suppressed.loc[row, column] = True
    raise WorkFailed("complementary suppression could not protect every suppressed entry")  # pragma: no cover


def audit(
    tables: PublishedTable | list[PublishedTable],
    relations: Iterable[Relation] = (),
    *,
    standard: DisaggregationStandard | None = None,
) -> AuditReport:
    """Range of every suppressed entry given all published entries of the tables published together.

    Each suppressed entry's minimum and maximum come from linear programmes
    (`scipy.optimize.linprog`, HiGHS) over: each table's additive rows and columns against their
    totals, the `relations` linking tables (a table and its subtotals; "alone" beside "alone or in
    combination"), and bounds — a suppressed entry is at least 1, since zeros are always shown
    (at least 0 if the standard shows no zeros). An entry is protected when max − min ≥ the
    standard's `min_feasible_range`. Tables published in other reports or months are not covered.
    """
    std = standard or load_disaggregation()
    group = [tables] if isinstance(tables, PublishedTable) else list(tables)
    cells, programs = _ranges(group, tuple(relations), std)
    rules = std.small_cells
    return AuditReport(cells, rules.min_feasible_range, rules.audit_not_covered, programs)


AUDIT_COLUMNS = ["table", "row", "column", "value", "low", "high", "width", "protected"]


def _ranges(
    group: list[PublishedTable],
    relations: tuple[Relation, ...],
    std: DisaggregationStandard,
    *,
    skip: set | frozenset = frozenset(),
    quick: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Min and max of each suppressed entry not in `skip`. `quick` stops once the verdict is known
    (max unbounded: protected; max − lower bound too small: exposed), leaving `low` approximate."""
    from scipy.optimize import linprog

    rules = std.small_cells
    index: dict[tuple[str, object, object], int] = {}
    for t in group:
        for row, column in zip(*np.nonzero(t.suppressed.to_numpy())):
            index[(t.name, t.values.index[row], t.values.columns[column])] = len(index)
    if not index:
        return pd.DataFrame(columns=AUDIT_COLUMNS), 0

    eq_rows, eq_rhs, ub_rows, ub_rhs = [], [], [], []
    for terms, sense, rhs in _constraints(group, relations):
        coefs = np.zeros(len(index))
        constant = 0.0
        for coef, key, value in terms:
            if key in index:
                coefs[index[key]] += coef
            else:
                constant += coef * value
        if not coefs.any():
            continue
        target = rhs - constant
        if sense == "==":
            eq_rows.append(coefs), eq_rhs.append(target)
        elif sense == "<=":
            ub_rows.append(coefs), ub_rhs.append(target)
        else:
            ub_rows.append(-coefs), ub_rhs.append(-target)
    lower = float(rules.min_suppressed) if rules.show_zeros else 0.0
    problem = {
        "A_eq": np.array(eq_rows) if eq_rows else None,
        "b_eq": np.array(eq_rhs) if eq_rows else None,
        "A_ub": np.array(ub_rows) if ub_rows else None,
        "b_ub": np.array(ub_rhs) if ub_rows else None,
        "bounds": [(lower, None)] * len(index),
        "method": "highs",
    }
    threshold = rules.min_feasible_range - 1e-9
    by_name = {t.name: t for t in group}
    records = []
    programs = 0

    def solve(sign: float, i: int) -> float | None:
        objective = np.zeros(len(index))
        objective[i] = sign
        result = linprog(objective, **problem)
        if result.status == 2:  # pragma: no cover - published data is consistent by construction
            raise WorkFailed(f"published entries of {', '.join(by_name)} are inconsistent (no feasible values)")
        return sign * result.fun if result.status == 0 else None  # None: unbounded

    for key, i in index.items():
        if key in skip:
            continue
        high = solve(-1.0, i)
        programs += 1
        high = np.inf if high is None else high
        if quick and (high == np.inf or high - lower < threshold):
            low = lower
        else:
            low = solve(1.0, i)
            programs += 1
            low = lower if low is None else low
        width = high - low
        value = int(by_name[key[0]].values.loc[key[1], key[2]])
        records.append((*key, value, low, high, width, bool(width >= threshold)))
    return pd.DataFrame.from_records(records, columns=AUDIT_COLUMNS), programs


def subtotal_relations(
    detail: PublishedTable, subtotals: PublishedTable, groups: dict[object, list[object]]
) -> list[Relation]:
    """Relations saying each subtotal row is the sum of its detail rows, column by column."""
    relations = []
    for sub_row, detail_rows in groups.items():
        for column in subtotals.values.columns:
            terms = [(1.0, subtotals.name, sub_row, column)] + [(-1.0, detail.name, r, column) for r in detail_rows]
            relations.append(Relation(tuple(terms)))
    return relations


def combination_relations(
    alone: PublishedTable, in_combination: PublishedTable, categories: list[object], multiracial: object
) -> list[Relation]:
    """Relations between an "alone" table and an "alone or in combination" table (race on rows).

    Per column: each category in combination ≥ alone; the extra counts (in combination − alone)
    come from the Multiracial and/or Multiethnic people whose categories are known, each counted
    in 2 to len(categories) categories. People whose categories k-anonymity generalised away sit
    in the in-combination table's multiracial row (if any) and add nothing to the categories:
    2·(M_alone − M_comb) ≤ Σ extra ≤ len(categories)·(M_alone − M_comb).
    """
    present = [c for c in categories if c in alone.values.index and c in in_combination.values.index]
    has_generalised = multiracial in in_combination.values.index
    relations = []
    for column in alone.values.columns:
        extra: list[tuple[float, str, object, object]] = []
        for category in present:
            pair = ((1.0, in_combination.name, category, column), (-1.0, alone.name, category, column))
            relations.append(Relation(pair, ">=", 0.0))
            extra.extend(pair)
        if multiracial not in alone.values.index:
            continue
        for factor, sense in ((2.0, ">="), (float(len(categories)), "<=")):
            terms = [*extra, (-factor, alone.name, multiracial, column)]
            if has_generalised:
                terms.append((factor, in_combination.name, multiracial, column))
            relations.append(Relation(tuple(terms), sense, 0.0))
    return relations


def _constraints(group: list[PublishedTable], relations: Iterable[Relation]):
    """Yield (terms, sense, rhs); each term is (coef, key, published value)."""
    for t in group:
        values = t.values
        name = t.name
        inner_rows = [r for r in values.index if r != TOTAL]
        inner_cols = [c for c in values.columns if c != TOTAL]
        if t.columns_add_up:
            for row in values.index:
                terms = [(1.0, (name, row, c), values.at[row, c]) for c in inner_cols]
                terms.append((-1.0, (name, row, TOTAL), values.at[row, TOTAL]))
                yield terms, "==", 0.0
        if t.rows_add_up:
            for column in values.columns:
                terms = [(1.0, (name, r, column), values.at[r, column]) for r in inner_rows]
                terms.append((-1.0, (name, TOTAL, column), values.at[TOTAL, column]))
                yield terms, "==", 0.0
    by_name = {t.name: t for t in group}
    for relation in relations:
        terms = []
        for coef, table_name, row, column in relation.terms:
            if table_name not in by_name:
                raise CitykitError(f"relation names table {table_name!r}, which is not published with it")
            terms.append((coef, (table_name, row, column), by_name[table_name].values.at[row, column]))
        yield terms, relation.sense, relation.rhs


def _protect_lone_suppressions(group: list[PublishedTable]) -> None:
    """Cheap first pass: an additive row or column with one suppressed entry gives it away."""
    changed = True
    while changed:
        changed = False
        for t in group:
            lines = []
            if t.columns_add_up:
                lines += [("row", r) for r in t.values.index]
            if t.rows_add_up:
                lines += [("column", c) for c in t.values.columns]
            for axis, label in lines:
                mask = t.suppressed.loc[label] if axis == "row" else t.suppressed[label]
                if int(mask.sum()) == 1:
                    values = t.values.loc[label] if axis == "row" else t.values[label]
                    candidates = values[(~mask) & (values > 0)]
                    if len(candidates):
                        other = candidates.idxmin()
                        row, column = (label, other) if axis == "row" else (other, label)
                        t.suppressed.loc[row, column] = True
                        changed = True


def _complement(
    group: list[PublishedTable], table_name: str, row: object, column: object, taken: set
) -> tuple[str, object, object] | None:
    """The entry to suppress next to an exposed one: the smallest published non-zero entry in its
    row or column (interior before margins), else in its table, else in any table published with it."""
    ordered = sorted(group, key=lambda t: t.name != table_name)
    ranked = []
    for t in ordered:
        shown = t.values.where(~t.suppressed & (t.values > 0)).stack().dropna()
        for (r, c), value in shown.items():
            if (t.name, r, c) in taken:
                continue
            in_line = t.name == table_name and (r == row or c == column)
            ranked.append(((t.name != table_name, not in_line, value, r == TOTAL or c == TOTAL), (t.name, r, c)))
    if not ranked:
        return None
    return min(ranked, key=lambda item: item[0])[1]
