"""Small-cell suppression of count tables of people, and its audit.

    tables = suppress([count_table(by_race, "alone")], relations)   # primary + complementary
    audit(tables, relations).passed                                  # each hidden count ranges widely

Counts from the standard's `min_suppressed` to `max_suppressed` are suppressed (zeros shown), then
complementary entries until no hidden small count can be narrowed, by linear programmes over every
table published with it, beyond what its mark says. The thresholds come from
`curriculum/standards/disaggregation.yml` (`citykit.standards.load_disaggregation`).

Tables of outcomes (`outcome_columns`: each row is a group, each such column one outcome, the Total
column the group's size) follow the standard's attribute-disclosure rule
(`privacy.outcome_disclosure`): no outcome, not even a zero, of a group whose size is hidden, and a
small group whose decided members all share one outcome (Pending is no decision) is hidden whole.

Two marks (`marks`): the primary one ("≤10") only on counts from 1 to 10, the complementary one
("†") on every other hidden cell. The audit reads them as a reader would: "≤10" is 1 to 10, "†" is
above 10, except an outcome beside a hidden group size, which may be 0.

Complementary cells are chosen to hide the fewest people (`scipy.optimize.milp`: every additive line
holding a hidden cell needs a second one; re-solved with a cut while the audit finds an exposed
cell), then each complementary cell the audit does not need is shown again. Written here because no
library at hand does cell suppression; the audit is the standard LP range computation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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
    outcome_columns: tuple = ()  # interior columns that are outcomes of the row's group (Total = its size)
    published: bool = True  # False: counts a reader does not see but that must stay unknown (pooled groups)
    withheld: pd.DataFrame | None = None  # cells of rows withheld whole (any number, 0 included); within suppressed

    def withheld_mask(self) -> pd.DataFrame:
        """Boolean frame: cells of rows withheld whole (the last resort of `suppress`)."""
        if self.withheld is None:
            return pd.DataFrame(False, index=self.values.index, columns=self.values.columns)
        return self.withheld

    @property
    def shown(self) -> pd.DataFrame:
        """The values as published: suppressed entries are <NA>."""
        return self.values.astype("Int64").mask(self.suppressed)

    def outcome_of_hidden_group(self) -> pd.DataFrame:
        """Boolean frame: outcome cells whose row's Total (the group's size) is hidden."""
        flags = pd.DataFrame(False, index=self.values.index, columns=self.values.columns)
        if self.outcome_columns and TOTAL in self.values.columns:
            hidden_size = self.suppressed[TOTAL].to_numpy()
            for column in self.outcome_columns:
                flags[column] = hidden_size
        return flags

    def marks(self, standard: DisaggregationStandard | None = None) -> pd.DataFrame:
        """The mark each hidden cell carries ("" where shown): the primary mark ("≤10") on a count
        from 1 to 10, the complementary mark ("†") on every other hidden cell and on every outcome
        of a group whose size is hidden (whatever its value, so the mark gives nothing away)."""
        rules = (standard or load_disaggregation()).small_cells
        marks = pd.DataFrame("", index=self.values.index, columns=self.values.columns)
        if not self.published:
            return marks
        small = (self.values >= rules.min_suppressed) & (self.values <= rules.max_suppressed)
        primary = self.suppressed & small & ~self.outcome_of_hidden_group()
        marks = marks.mask(self.suppressed, rules.complementary_display)
        marks = marks.mask(primary, rules.display)
        return marks.mask(self.withheld_mask(), rules.withheld_display)


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
        sensitive = int(self.cells["sensitive"].sum()) if len(self.cells) else 0
        return (
            f"suppression audit {verdict}: {len(self.cells)} hidden entries, {sensitive} of them counts from 0 to "
            f"10 that must each range over at least {self.min_feasible_range:g} given the marks and totals "
            f"({self.linear_programs} linear programmes). Not covered: {self.not_covered}"
        )


def count_table(
    counts: pd.DataFrame,
    name: str = "table",
    *,
    total_row: pd.Series | None = None,
    rows_add_up: bool = True,
    outcome_columns: Iterable = (),
) -> PublishedTable:
    """A `PublishedTable` from interior counts, with the Total column (row sums) and Total row.

    The Total row is the column sums, or `total_row` (indexed by the columns; its Total is the
    grand total) when the rows overlap (`rows_add_up=False`, e.g. "alone or in combination").
    `outcome_columns`: the columns are the outcomes of each row's group (e.g. approved, denied),
    so the attribute-disclosure rule applies.
    """
    outcome_columns = tuple(outcome_columns)
    unknown = [c for c in outcome_columns if c not in counts.columns]
    if unknown:
        raise CitykitError(f"table {name!r}: outcome columns {unknown} are not among its columns")
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
    hidden = pd.DataFrame(False, index=values.index, columns=values.columns)
    return PublishedTable(name, values, hidden, rows_add_up, True, outcome_columns)


def unpublished_table(counts: pd.DataFrame, name: str) -> PublishedTable:
    """Counts that are not published but must stay unknown, e.g. the groups pooled into "Other
    groups": each row's cells add up to its Total; every cell is a variable of the audit, from 0 up
    (no mark tells a reader anything), and must range as widely as a hidden small count if it is
    from 0 to 10. `combination_relations(..., members=...)` links them to the published tables."""
    if counts.isna().any().any():
        raise CitykitError(f"table {name!r} has missing counts; fill zeros explicitly")
    values = counts.astype("int64").copy()
    values[TOTAL] = values.sum(axis=1)
    hidden = pd.DataFrame(True, index=values.index, columns=values.columns)
    return PublishedTable(name, values, hidden, rows_add_up=False, columns_add_up=True, published=False)


def primary_suppression(table: PublishedTable, *, standard: DisaggregationStandard | None = None) -> PublishedTable:
    """Suppress every entry (margins included) from 1 to 10; zeros stay shown. In a table of
    outcomes, also the attribute-disclosure rule: every outcome of a group whose size is hidden
    (zeros included), and the whole row of a group of at most `uniform_outcome_max_n` people whose
    decided members share one outcome or are none (an outcome column named in the standard's
    `undecided`, e.g. pending, compared ignoring case, is no decision: 1 denied + 6 pending is
    hidden, 1 approved + 1 denied + 5 pending is not)."""
    rules = (standard or load_disaggregation()).small_cells
    if not table.published:
        return table
    small = (table.values >= rules.min_suppressed) & (table.values <= rules.max_suppressed)
    suppressed = table.suppressed | small
    if table.outcome_columns:
        size = table.values[TOTAL]
        outcomes = table.values[list(table.outcome_columns)]
        undecided = {u.casefold() for u in rules.undecided_outcomes}
        decided = outcomes[[c for c in table.outcome_columns if str(c).casefold() not in undecided]]
        kinds = decided.gt(0).sum(axis=1)  # decided outcomes present in the group
        uniform = (size > 0) & (size <= rules.uniform_outcome_max_n) & (kinds <= 1)
        suppressed.loc[uniform, :] = True
    result = PublishedTable(
        table.name,
        table.values,
        suppressed,
        table.rows_add_up,
        table.columns_add_up,
        table.outcome_columns,
        table.published,
        table.withheld,
    )
    _hide_outcomes_of_hidden_groups(result)
    return result


def _hide_outcomes_of_hidden_groups(table: PublishedTable) -> bool:
    """Hide every outcome cell of a row whose size is hidden; True if anything changed."""
    flags = table.outcome_of_hidden_group()
    new = flags & ~table.suppressed
    if not new.to_numpy().any():
        return False
    table.suppressed |= flags
    return True


@dataclass
class ReleaseRequest:
    """A group of tables of people about to be published, as a release reviewer sees it: the
    tables as suppressed for their page alone, the people in each interior cell (`people`: table
    name -> id, row, column), what each table's cells count (`keys`), its pooled rows (`pools`),
    and `resuppress(forced)`: the group suppressed again with the given cells hidden first (table
    name -> (row, column) cells; the name "*withhold*" withholds every published table whole)."""

    tables: list[PublishedTable]
    people: dict[str, pd.DataFrame]
    keys: dict[str, str]
    pools: dict[str, dict[str, list[str]]]
    title: str
    standard: DisaggregationStandard
    resuppress: Callable[[dict[str, set]], list[PublishedTable]]
    titles: dict[str, str] = field(default_factory=dict)  # table name -> its own title, where not `title`


_reviewer: Callable[[ReleaseRequest], list[PublishedTable]] | None = None


def set_release_reviewer(reviewer: Callable[[ReleaseRequest], list[PublishedTable]] | None):
    """Install the function every `suppress(..., people=...)` hands its tables to before they are
    published (the release ledger of a report run, `citykit.reports.ledger`); None removes it.
    Returns the one it replaces."""
    global _reviewer
    previous, _reviewer = _reviewer, reviewer
    return previous


def reviewing() -> bool:
    """Whether a release reviewer is installed (a report run's release ledger)."""
    return _reviewer is not None


def suppress(
    tables: PublishedTable | list[PublishedTable],
    relations: Iterable[Relation] = (),
    *,
    standard: DisaggregationStandard | None = None,
    people: dict[str, pd.DataFrame] | None = None,
    keys: dict[str, str] | None = None,
    pools: dict[str, dict[str, list[str]]] | None = None,
    title: str = "",
    titles: dict[str, str] | None = None,
) -> list[PublishedTable]:
    """Primary plus complementary suppression of tables published together.

    Counts 1–10 are suppressed (zeros shown), with the attribute-disclosure rule for tables of
    outcomes. Then complementary cells, by the standard's method: `fewest_people` (an integer
    programme, then pruning; see the module docstring) or `smallest_in_line` (greedy: while a hidden
    count is exposed, the smallest published non-zero entry in its row or column).

    `people` (table name -> the people in each interior cell: columns id, row, column), with `keys`
    (table name -> what its cells count, e.g. "race_alone|approved") and `pools`, lets a release
    reviewer (`set_release_reviewer`: the release ledger of a report run) audit the tables against
    earlier releases and extend their suppression; without a reviewer they change nothing.
    """
    std = standard or load_disaggregation()
    originals = [tables] if isinstance(tables, PublishedTable) else list(tables)
    relations = tuple(relations)
    group = _suppress(originals, relations, std)
    if people and _reviewer is not None:

        def resuppress(forced: dict[str, set]) -> list[PublishedTable]:
            copies = [
                PublishedTable(t.name, t.values, t.suppressed.copy(), t.rows_add_up, t.columns_add_up,
                               t.outcome_columns, t.published, None if t.withheld is None else t.withheld.copy())
                for t in originals
            ]  # fmt: skip
            if "*withhold*" in forced:
                for t in copies:
                    if t.published:
                        t.withheld = pd.DataFrame(True, index=t.values.index, columns=t.values.columns)
                        t.suppressed = t.withheld.copy()
                return copies
            for t in copies:
                for row, column in forced.get(t.name, ()):
                    t.suppressed.loc[_label(t.values.index, row), _label(t.values.columns, column)] = True
            return _suppress(copies, relations, std)

        request = ReleaseRequest(
            group, dict(people), dict(keys or {}), dict(pools or {}), title, std, resuppress, dict(titles or {})
        )
        group = _reviewer(request)
    return group


def _label(labels: pd.Index, text: str) -> object:
    """The index label written as `text` (a ledger keeps labels as text)."""
    for label in labels:
        if str(label) == str(text):
            return label
    raise CitykitError(f"no row or column {text!r} in the table")


def _suppress(group: list[PublishedTable], relations: tuple[Relation, ...], std: DisaggregationStandard):
    group = [primary_suppression(t, standard=std) for t in group]
    twins = same_entries(relations)
    _hide_twins(group, twins)
    if not std.small_cells.complementary:
        return group
    forced = {t.name: t.suppressed.copy() for t in group}
    if std.small_cells.complementary_method == "fewest_people" and _milp_complements(group, relations, std, twins):
        _prune(group, relations, std, forced, twins)
        return group
    _greedy_complements(group, relations, std, twins)
    _withhold(group, relations, std)
    return group


def _withhold(group: list[PublishedTable], relations: tuple[Relation, ...], std: DisaggregationStandard) -> None:
    """The last resort when no choice of complementary cells passes the audit (the marks themselves
    give counts away, e.g. a table of nine people): withhold whole rows, marked with the standard's
    `withheld_display`, which a reader cannot tell from 0 or from any other number. First every row
    of the published tables holding a hidden cell, with the zero rows (so a withheld row may be 0);
    then, if the audit still fails, every row (the whole table)."""
    if _ranges(group, relations, std, quick=True)[0]["protected"].all():
        return
    published = [t for t in group if t.published]
    for whole in (False, True):
        for t in published:
            rows = (
                t.suppressed.any(axis=1) | (t.values[TOTAL] == 0)
                if TOTAL in t.values.columns
                else t.suppressed.any(axis=1)
            )
            if whole:
                rows[:] = True
            mask = pd.DataFrame(False, index=t.values.index, columns=t.values.columns)
            mask.loc[rows.to_numpy(), :] = True
            t.withheld = t.withheld_mask() | mask
            t.suppressed = t.suppressed | mask
        if _ranges(group, relations, std, quick=True)[0]["protected"].all():
            return


def same_entries(relations: Iterable[Relation]) -> dict[tuple[str, object, object], set]:
    """Entries that are the same number in two tables published together (a relation
    `a − b == 0`, e.g. Declined in the "alone" and the "alone or in combination" table): a number
    hidden in one is never printed in the other. Entry -> the entries equal to it."""
    twins: dict[tuple[str, object, object], set] = {}
    for relation in relations:
        if relation.sense != "==" or relation.rhs != 0 or len(relation.terms) != 2:
            continue
        (c1, *k1), (c2, *k2) = relation.terms
        if c1 + c2 != 0 or c1 == 0:
            continue
        a, b = tuple(k1), tuple(k2)
        twins.setdefault(a, set()).add(b)
        twins.setdefault(b, set()).add(a)
    return twins


def _hide_twins(group: list[PublishedTable], twins: dict) -> bool:
    """Hide every published entry equal to a hidden one (and the outcomes of groups so hidden),
    until nothing changes; True if anything did."""
    by_name = {t.name: t for t in group}
    changed_any = False
    changed = True
    while changed:
        changed = False
        for key, others in twins.items():
            t = by_name.get(key[0])
            if t is None or not t.suppressed.at[key[1], key[2]]:
                continue
            for name, r, c in others:
                other = by_name.get(name)
                if other is not None and not other.suppressed.at[r, c]:
                    other.suppressed.loc[r, c] = True
                    changed = True
        for t in group:
            changed |= _hide_outcomes_of_hidden_groups(t)
        changed_any |= changed
    return changed_any


def _greedy_complements(
    group: list[PublishedTable], relations: tuple[Relation, ...], std: DisaggregationStandard, twins: dict | None = None
) -> None:
    twins = twins or {}
    _protect_lone_suppressions(group)
    _hide_twins(group, twins)
    protected: set[tuple[str, object, object]] = set()
    by_name = {t.name: t for t in group}
    for _ in range(sum(t.values.size for t in group) + 1):
        cells, _programs = _ranges(group, relations, std, skip=protected, quick=True)
        protected |= {(c.table, c.row, c.column) for c in cells.itertuples() if c.protected}
        exposed = cells.loc[~cells["protected"]]
        if exposed.empty:
            return
        chosen: set[tuple[str, object, object]] = set()
        for cell in exposed.itertuples():
            pick = _complement(group, cell.table, cell.row, cell.column, chosen)
            if pick is not None:
                chosen.add(pick)
        if not chosen:  # everything that could be hidden is: the audit reports what is left
            return
        for table_name, row, column in chosen:
            by_name[table_name].suppressed.loc[row, column] = True
        _hide_twins(group, twins)
    raise WorkFailed("complementary suppression could not protect every suppressed entry")  # pragma: no cover


def _lines(t: PublishedTable) -> list[list[tuple[object, object]]]:
    """The additive lines of a table (each a list of (row, column) whose entries sum up)."""
    lines = []
    if t.columns_add_up:
        lines += [[(r, c) for c in t.values.columns] for r in t.values.index]
    if t.rows_add_up:
        lines += [[(r, c) for r in t.values.index] for c in t.values.columns]
    return lines


def _milp_complements(
    group: list[PublishedTable],
    relations: tuple[Relation, ...],
    std: DisaggregationStandard,
    twins: dict | None = None,
    max_rounds: int = 40,
) -> bool:
    """Complementary cells hiding the fewest people: minimise the people in the hidden cells
    subject to every additive line with a hidden cell holding at least two, an outcome of a hidden
    group hidden with it, and a cut per round while the audit still finds an exposed cell. Applies
    the solution and returns True when the audit passes; False (nothing changed) otherwise."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    candidates: list[tuple[str, object, object]] = []
    cost: list[float] = []
    for t in group:
        for (r, c), v in t.values.where(~t.suppressed).stack().dropna().items():
            size_shown = TOTAL in t.values.columns and not t.suppressed.at[r, TOTAL] and t.values.at[r, TOTAL] > 0
            if v > 0 or (c in t.outcome_columns and size_shown):
                candidates.append((t.name, r, c))
                cost.append(float(v) + (0.5 if TOTAL in (r, c) else 0.0) + 1e-3)
    if not candidates:
        return _ranges(group, relations, std)[0]["protected"].all()
    index = {key: i for i, key in enumerate(candidates)}
    rows: list[np.ndarray] = []
    lows: list[float] = []
    highs: list[float] = []

    def add(coefs: dict[int, float], low: float, high: float = np.inf) -> None:
        row = np.zeros(len(candidates))
        for i, v in coefs.items():
            row[i] += v
        rows.append(row), lows.append(low), highs.append(high)

    for t in group:
        for line in _lines(t):
            # a hidden cell needs a second hidden cell in each of its additive lines
            for r, c in line:
                others = [(r2, c2) for r2, c2 in line if (r2, c2) != (r, c)]
                fixed = sum(bool(t.suppressed.at[r2, c2]) for r2, c2 in others)
                free = {index[(t.name, r2, c2)]: 1.0 for r2, c2 in others if (t.name, r2, c2) in index}
                if t.suppressed.at[r, c]:
                    if fixed == 0 and free:
                        add(free, 1.0)
                elif (t.name, r, c) in index and fixed == 0 and free:
                    add({**free, index[(t.name, r, c)]: -1.0}, 0.0)
        if t.outcome_columns:
            for r in t.values.index:
                total = index.get((t.name, r, TOTAL))
                if total is None:
                    continue
                for c in t.outcome_columns:
                    cell = index.get((t.name, r, c))
                    if cell is not None:  # hiding a group's size hides its outcomes
                        add({cell: 1.0, total: -1.0}, 0.0)
                    zero = t.values.at[r, c] == 0
                    if cell is not None and zero:  # a zero outcome is hidden only with its group's size
                        add({cell: 1.0, total: -1.0}, -np.inf, 0.0)
    for key, others in (twins or {}).items():  # the same number is hidden in both tables or in neither
        for other in others:
            if key in index and other in index and index[key] < index[other]:
                add({index[key]: 1.0, index[other]: -1.0}, 0.0, 0.0)
    original = {t.name: t.suppressed.copy() for t in group}
    for _ in range(max_rounds):
        constraints = LinearConstraint(np.array(rows), lows, highs) if rows else ()
        result = milp(
            np.array(cost), integrality=np.ones(len(candidates)), bounds=Bounds(0, 1), constraints=constraints
        )
        if result.status != 0:
            break
        for t in group:
            t.suppressed = original[t.name].copy()
        chosen = {candidates[i] for i in np.nonzero(result.x > 0.5)[0]}
        by_name = {t.name: t for t in group}
        for name, r, c in chosen:
            by_name[name].suppressed.loc[r, c] = True
        _hide_twins(group, twins or {})
        cells, _ = _ranges(group, relations, std, quick=True)
        exposed = cells.loc[~cells["protected"]]
        if exposed.empty:
            return True
        # cut: one more published cell in a line of an exposed cell's table that holds a hidden cell
        for table_name in set(exposed["table"]):
            t = by_name[table_name]
            near = {
                index[(t.name, r, c)]: 1.0
                for line in _lines(t)
                if any(t.suppressed.at[r2, c2] for r2, c2 in line)
                for r, c in line
                if (t.name, r, c) in index and (t.name, r, c) not in chosen
            }
            if not near:  # anything not yet hidden, in any table
                near = {i: 1.0 for i, key in enumerate(candidates) if key not in chosen}
            if not near:
                break
            add(near, 1.0)
    for t in group:
        t.suppressed = original[t.name]
    return False


def _prune(
    group: list[PublishedTable],
    relations: tuple[Relation, ...],
    std: DisaggregationStandard,
    forced: dict[str, pd.DataFrame],
    twins: dict | None = None,
) -> None:
    """Show again each complementary cell (largest first) whose hiding the audit does not need
    (with the entries equal to it in other tables: shown together or hidden together)."""
    twins = twins or {}
    extra = []
    for t in group:
        mask = t.suppressed & ~forced[t.name]
        for (r, c), hidden in mask.stack().items():
            if hidden:
                extra.append((float(t.values.at[r, c]), t.name, r, c))
    by_name = {t.name: t for t in group}
    for _, name, r, c in sorted(extra, key=lambda e: e[0], reverse=True):
        t = by_name[name]
        if not t.suppressed.at[r, c]:
            continue  # shown again with its twin
        same = [(name, r, c), *twins.get((name, r, c), ())]
        if any(n2 not in by_name or forced[n2].at[r2, c2] for n2, r2, c2 in same):
            continue
        before = {g.name: g.suppressed.copy() for g in group}
        for n2, r2, c2 in same:
            t2 = by_name[n2]
            t2.suppressed.loc[r2, c2] = False
            if c2 == TOTAL and t2.outcome_columns:  # a shown size lets its outcomes be considered again
                for oc in t2.outcome_columns:
                    if not forced[n2].at[r2, oc]:
                        t2.suppressed.loc[r2, oc] = False
        _hide_twins(group, twins)
        if not _ranges(group, relations, std, quick=True)[0]["protected"].all():
            for g in group:
                g.suppressed = before[g.name]


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
    combination"), and bounds from the marks, as a reader knows them: "≤10" is 1 to 10, "†" is
    above 10, except an outcome of a group whose size is hidden, which may be 0 (zeros are shown
    otherwise; all hidden entries at least 0 if the standard shows no zeros). Every hidden count
    from 0 to 10 ("≤10" entries, and outcomes of hidden groups, zeros included) must stay unknown:
    its feasible range at least the standard's `min_feasible_range` wide. Hidden entries above 10
    need no protection of their own (`sensitive` False). Tables published in other reports or months are not covered.
    """
    std = standard or load_disaggregation()
    group = [tables] if isinstance(tables, PublishedTable) else list(tables)
    cells, programs = _ranges(group, tuple(relations), std)
    rules = std.small_cells
    return AuditReport(cells, rules.min_feasible_range, rules.audit_not_covered, programs)


AUDIT_COLUMNS = ["table", "row", "column", "value", "mark", "low", "high", "width", "sensitive", "protected"]


def _ranges(
    group: list[PublishedTable],
    relations: tuple[Relation, ...],
    std: DisaggregationStandard,
    *,
    skip: set | frozenset = frozenset(),
    quick: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Min and max of each suppressed entry not in `skip`. `quick` stops once the verdict is known
    and leaves out entries that need no protection, leaving `low` approximate."""
    from scipy.optimize import linprog

    rules = std.small_cells
    index: dict[tuple[str, object, object], int] = {}
    mark_of: dict[tuple[str, object, object], str] = {}
    bounds: list[tuple[float, float | None]] = []
    for t in group:
        marks = t.marks(std)
        hidden_group = t.outcome_of_hidden_group()
        withheld = t.withheld_mask()
        for row, column in zip(*np.nonzero(t.suppressed.to_numpy())):
            r, c = t.values.index[row], t.values.columns[column]
            key = (t.name, r, c)
            index[key] = len(index)
            mark_of[key] = marks.at[r, c]
            if not rules.show_zeros or hidden_group.at[r, c] or not t.published or withheld.at[r, c]:
                bounds.append((0.0, None))
            elif mark_of[key] == rules.display:
                bounds.append((float(rules.min_suppressed), float(rules.max_suppressed)))
            else:
                bounds.append((float(rules.max_suppressed + 1), None))
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
    problem = {
        "A_eq": np.array(eq_rows) if eq_rows else None,
        "b_eq": np.array(eq_rhs) if eq_rows else None,
        "A_ub": np.array(ub_rows) if ub_rows else None,
        "b_ub": np.array(ub_rhs) if ub_rows else None,
        "bounds": bounds,
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
        value = int(by_name[key[0]].values.loc[key[1], key[2]])
        sensitive = value <= rules.max_suppressed
        if quick and not sensitive:
            continue
        lower, upper = bounds[i]
        upper = np.inf if upper is None else upper
        high = solve(-1.0, i)
        programs += 1
        high = np.inf if high is None else high
        if quick and sensitive and high < lower + threshold:
            low, ok = lower, False
        else:
            low = solve(1.0, i)
            programs += 1
            low = lower if low is None else low
            # the published figures must not pin the count at an end of its range (beyond what its
            # mark says): "at least 9" is as good as 9 when the reader can guess the extreme case
            # (a lower end of min_suppressed only says the group is not empty, as "≤10" does)
            floor = max(lower, float(rules.min_suppressed))
            pinned = (abs(low - value) < 1e-6 and low > floor + 1e-6) or (
                abs(high - value) < 1e-6 and high < upper - 1e-6
            )
            ok = not sensitive or (high - low >= threshold and not pinned)
        records.append((*key, value, mark_of[key], low, high, high - low, sensitive, bool(ok)))
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
    alone: PublishedTable,
    in_combination: PublishedTable,
    categories: list[object],
    multiracial: object,
    *,
    same: Iterable[object] = (),
    pools: dict[object, list[object]] | None = None,
    members: PublishedTable | None = None,
) -> list[Relation]:
    """Relations between an "alone" table and an "alone or in combination" table of the same
    people (race on rows), what a reader can work out from the two SPD-15 presentations:

    - per column, each category in combination ≥ the same category alone;
    - the extra counts (in combination − alone) come from the Multiracial and/or Multiethnic people
      whose categories are known, each counted in 2 to len(categories) categories. People whose
      categories k-anonymity generalised away sit in the in-combination table's multiracial row
      (if any) and add nothing to the categories: 2·(M_alone − M_comb) ≤ Σ extra ≤ len·(M_alone − M_comb);
    - `same` rows (Not reported, Declined) and the Total row hold the same people in both tables:
      the same numbers (`same_entries`: hidden in both or in neither); with no Multiracial people
      alone (a published 0), every category alone equals it in combination;
    - `pools`: an "alone" row that pools several groups (pool row -> the pooled rows, categories or
      multiracial) is the sum of their "alone" counts, which are not published but kept, as
      variables the audit keeps unknown, in `members` (an `unpublished_table`).
    """
    pools = dict(pools or {})
    member_rows = set(members.values.index) if members is not None else set()

    def alone_entry(row: object) -> tuple[str, object] | None:
        if row in alone.values.index:
            return alone.name, row
        if row in member_rows:
            return members.name, row
        return None

    present = [c for c in categories if c in in_combination.values.index and alone_entry(c) is not None]
    has_generalised = multiracial in in_combination.values.index
    multiracial_alone = alone_entry(multiracial)
    no_multiracial = (
        multiracial_alone is not None
        and multiracial_alone[0] == alone.name
        and TOTAL in alone.values.columns
        and alone.values.at[multiracial, TOTAL] == 0
        and not has_generalised
    )
    shared_rows = [r for r in (*same, TOTAL) if r in alone.values.index and r in in_combination.values.index]
    relations = []
    for column in alone.values.columns:
        if column not in in_combination.values.columns:
            continue
        for row in shared_rows:
            relations.append(Relation(((1.0, alone.name, row, column), (-1.0, in_combination.name, row, column))))
        for pool_row, pooled in pools.items():
            terms = [(1.0, alone.name, pool_row, column)]
            terms += [(-1.0, members.name, m, column) for m in pooled]
            relations.append(Relation(tuple(terms)))
        extra: list[tuple[float, str, object, object]] = []
        for category in present:
            name, row = alone_entry(category)
            pair = ((1.0, in_combination.name, category, column), (-1.0, name, row, column))
            relations.append(Relation(pair, "==" if no_multiracial else ">=", 0.0))
            extra.extend(pair)
        if multiracial_alone is None:
            continue
        for factor, sense in ((2.0, ">="), (float(len(categories)), "<=")):
            terms = [*extra, (-factor, *multiracial_alone, column)]
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
