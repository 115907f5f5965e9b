"""Tables of people published over time, audited together (`privacy.releases` of the standard).

    record = TableRecord.from_table(table, members, key="race_alone|approved", release="r1")
    audit = audit_releases(earlier=[...], current=[record])          # LP over every release
    audit.exposed                                                     # what this release gives away

A count suppressed in one report can be worked out from two others: a year's 213 minus its first
eleven months' 206 is December's 7, which the December report hides. The suppression audit of one
report (`citykit.standards.suppression.audit`) cannot see that; this one sees every release of a
dataset at once.

Each table of people is recorded with its cells as published (values shown, marks of the hidden
ones) and the people counted in each interior cell, by published id (`members`: id, row, column).
Tables with the same `key` (the same breakdown and measure: their cells count the same thing in
different selections of people, e.g. different periods or neighborhoods) are related through the
people they share: the people are split into *atoms*, the groups counted in exactly the same
tables, and every published cell is a sum of (atom, label) counts (label: the interior row and
column a person is counted in). Linear programmes (`scipy.optimize.linprog`, HiGHS) over those
counts, with every shown cell fixed, every hidden cell bounded by its mark ("≤10": 1 to 10; "†":
above 10, or from 0 for an outcome of a hidden group; "‡": from 0) and every count at least 0, give
the range a reader can work out for:

- every hidden cell of every release whose true count is from 0 to 10 (as the one-report audit);
- every count that differencing isolates: an (atom, label) count, or an atom's group size,
  from 1 to 10, where the atom is not a whole table (December = the year minus January to
  November);
- the outcome rule: a group isolated by differencing, of at most `uniform_outcome_max_n`
  people, known to be non-empty while one of its outcomes is known to be 0.

Each must range over at least the standard's `min_feasible_range` and not be pinned at its true
value (as `suppression.audit` requires); otherwise it is *exposed*. An exposure that the earlier
releases alone already give away is reported as such (`already`): hiding more in this release
cannot undo it. `extend` hides more of the current release until nothing new is exposed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from citykit.errors import CitykitError
from citykit.standards.reader import DisaggregationStandard, load_disaggregation
from citykit.standards.suppression import TOTAL, PublishedTable

PEOPLE = "__people__"
NULL_LABELS = frozenset({"nan", "None", "<NA>", "NaN", "NaT"})  # how pandas writes a missing label as text


class Inconsistent(CitykitError):
    """No counts fit every release at once: they were made from different versions of the data."""


# the Total row's label in a table whose rows overlap (alone or in combination)


@dataclass
class TableRecord:
    """A table of people as published, as the release ledger keeps it."""

    release: str
    name: str
    key: str  # what the cells count (breakdown and measure): tables with one key are related
    rows: list[str]  # interior rows as published ("Other groups" included)
    columns: list[str]  # interior columns
    rows_add_up: bool
    shown: dict[tuple[str, str], int]  # (row, column) -> value, margins included
    marks: dict[tuple[str, str], str]  # hidden (row, column) -> its mark
    members: pd.DataFrame  # id, row (base label: pools expanded, PEOPLE for overlapping rows' Total), column
    pools: dict[str, list[str]] = field(default_factory=dict)  # pooled row -> its groups
    outcome_columns: tuple[str, ...] = ()
    title: str = ""

    @classmethod
    def from_table(
        cls,
        table: PublishedTable,
        members: pd.DataFrame,
        *,
        key: str,
        release: str,
        pools: dict[str, list[str]] | None = None,
        title: str = "",
        standard: DisaggregationStandard | None = None,
    ) -> TableRecord:
        """Record a suppressed `PublishedTable` with the people in its interior cells (`members`:
        columns id, row, column; rows as in the table, pooled rows by their groups' own labels)."""
        std = standard or load_disaggregation()
        values, hidden, marks = table.values, table.suppressed, table.marks(std)
        rows = [str(r) for r in values.index if r != TOTAL]
        columns = [str(c) for c in values.columns if c != TOTAL]
        shown, marked = {}, {}
        for r in values.index:
            for c in values.columns:
                if hidden.at[r, c]:
                    marked[(str(r), str(c))] = str(marks.at[r, c])
                else:
                    shown[(str(r), str(c))] = int(values.at[r, c])
        missing = {"id", "row", "column"} - set(members.columns)
        if missing:
            raise CitykitError(f"members of table {table.name!r} lack the columns {sorted(missing)}")
        frame = members[["id", "row", "column"]].astype(str)
        # a group of no value (a language generalised away) is one row however pandas spells its label:
        # "nan" in the table, "None" or "<NA>" in the people's records (walk-20b F0: the people of that row
        # were counted under another label, so its hidden cells looked empty and were never checked)
        null_row = next((r for r in rows if r in NULL_LABELS), None)
        if null_row is not None:
            frame.loc[frame["row"].isin(NULL_LABELS), "row"] = null_row
        frame = frame.drop_duplicates(ignore_index=True)
        return cls(
            release, str(table.name), key, rows, columns, table.rows_add_up, shown, marked, frame,
            {str(k): [str(m) for m in v] for k, v in (pools or {}).items()},
            tuple(str(c) for c in table.outcome_columns), title,
        )  # fmt: skip

    # -- the cells as sums of (atom, label) counts --------------------------------------------------

    def base_rows(self) -> list[str]:
        out: list[str] = []
        for r in self.rows:
            out += self.pools.get(r, [r])
        return out

    def labels(self) -> list[tuple[str, str]]:
        """Every interior label of the table (base rows × interior columns, and its people row)."""
        labels = [(r, c) for r in self.base_rows() for c in self.columns]
        if not self.rows_add_up:
            labels += [(PEOPLE, c) for c in self.columns]
        return labels

    def cell_labels(self, row: str, column: str) -> list[tuple[str, str]]:
        """The labels a published cell (margins included) adds up."""
        columns = self.columns if column == TOTAL else [column]
        rows = (self.base_rows() if self.rows_add_up else [PEOPLE]) if row == TOTAL else self.pools.get(row, [row])
        return [(r, c) for r in rows for c in columns]

    def ids(self) -> pd.Index:
        return pd.Index(self.members["id"].unique())

    def id_set(self) -> frozenset:
        """Its people's ids (kept with the record: the audit relates tables by them every round)."""
        cached = self.__dict__.get("_id_set")
        if cached is None or cached[0] is not self.members:
            cached = (self.members, frozenset(self.members["id"].unique()))
            self.__dict__["_id_set"] = cached
        return cached[1]

    def describe(self) -> str:
        return f"{self.title or self.name} ({self.release})"


@dataclass(frozen=True)
class Exposure:
    """A count a reader can work out (or narrow too much) from the releases together."""

    key: str
    kind: str  # "hidden" (a hidden cell), "difference" (a count isolated by differencing), "outcome"
    what: str  # in words
    value: int
    low: float
    high: float
    labels: tuple[tuple[str, str], ...]  # the interior labels it counts
    already: bool  # the earlier releases alone give it away (this release cannot undo it)
    table: str = ""  # for a hidden cell: "<release>/<table>"
    cell: tuple[str, str] | None = None


@dataclass
class ReleaseAudit:
    exposures: list[Exposure]
    checked: int  # counts checked
    linear_programs: int
    keys: list[str]

    @property
    def new(self) -> list[Exposure]:
        """What this release would give away that the earlier ones did not."""
        return [e for e in self.exposures if not e.already]

    @property
    def already(self) -> list[Exposure]:
        return [e for e in self.exposures if e.already]

    @property
    def passed(self) -> bool:
        return not self.new


# -- the audit -------------------------------------------------------------------------------------


class _Problem:
    """The LP of one key: variables are (atom, label) counts."""

    def __init__(self, tables: list[TableRecord]):
        self.tables = tables
        self._cells: dict[tuple[int, str, str], dict[int, float]] = {}
        everyone = pd.Index(pd.unique(np.concatenate([t.ids().to_numpy() for t in tables])))
        holds = np.zeros((len(everyone), len(tables)), dtype=bool)  # person x table
        for i, t in enumerate(tables):
            holds[everyone.get_indexer(t.ids()), i] = True
        signature = pd.Series([row.tobytes() for row in np.packbits(holds, axis=1)], index=everyone)
        codes, _ = pd.factorize(signature, sort=True)
        self.atom_of = pd.Series(codes, index=everyone)  # id -> atom
        first = np.unique(codes, return_index=True)[1]  # a person of each atom, in atom order
        self.atoms: list[frozenset[int]] = [frozenset(np.flatnonzero(holds[k]).tolist()) for k in first]
        self.sizes = np.bincount(codes, minlength=len(self.atoms))  # people per atom
        # variables: each atom with the labels of the tables holding it
        self.index: dict[tuple[int, tuple[str, str]], int] = {}
        for a, holders in enumerate(self.atoms):
            for t in sorted(holders):
                for label in tables[t].labels():
                    self.index.setdefault((a, label), len(self.index))
        # true counts per (atom, label), from the people recorded
        memberships = pd.concat([t.members for t in tables], ignore_index=True).drop_duplicates()
        memberships = memberships[memberships["id"].isin(self.atom_of.index)]
        memberships["atom"] = self.atom_of.reindex(memberships["id"]).to_numpy()
        counted = memberships.groupby(["atom", "row", "column"]).size()
        self.true = np.zeros(len(self.index))
        for (a, r, c), n in counted.items():
            i = self.index.get((int(a), (r, c)))
            if i is not None:
                self.true[i] = n
        # atoms that are all of some table's people: their counts are that table's cells, not differences
        self.atoms_of: dict[int, list[int]] = {}
        for a, holders in enumerate(self.atoms):
            for t in holders:
                self.atoms_of.setdefault(t, []).append(a)
        self.whole = {atoms[0] for atoms in self.atoms_of.values() if len(atoms) == 1}

    def published_zeros(self) -> set[int]:
        """The counts that shown zeros fix at 0."""
        out: set[int] = set()
        for t, table in enumerate(self.tables):
            for (r, c), value in table.shown.items():
                if value == 0:
                    out |= set(self.cell(t, r, c))
        return out

    def cell(self, t: int, row: str, column: str) -> dict[int, float]:
        key = (t, row, column)
        if key not in self._cells:
            self._cells[key] = self._cell(t, row, column)
        return self._cells[key]

    def _cell(self, t: int, row: str, column: str) -> dict[int, float]:
        table = self.tables[t]
        coefs: dict[int, float] = {}
        labels = table.cell_labels(row, column)
        for a in self.atoms_of.get(t, []):
            for label in labels:
                i = self.index.get((a, label))
                if i is not None:
                    coefs[i] = coefs.get(i, 0.0) + 1.0
        return coefs

    def constraints(self, tables: set[int], std: DisaggregationStandard):
        """(A_eq, b_eq, A_ub, b_ub) of what the releases in `tables` publish (sparse matrices)."""
        from scipy.sparse import csr_matrix

        rules = std.small_cells
        eq: list[dict[int, float]] = []
        ub: list[dict[int, float]] = []
        eq_b: list[float] = []
        ub_b: list[float] = []
        for t in sorted(tables):
            table = self.tables[t]
            for (r, c), value in table.shown.items():
                coefs = self.cell(t, r, c)
                if coefs:
                    eq.append(coefs), eq_b.append(float(value))
            for (r, c), mark in table.marks.items():
                coefs = self.cell(t, r, c)
                if not coefs:
                    continue
                low, high = _mark_bounds(table, r, c, mark, rules)
                if low > 0:
                    ub.append({i: -v for i, v in coefs.items()}), ub_b.append(-low)
                if high is not None:
                    ub.append(coefs), ub_b.append(high)

        def matrix(rows: list[dict[int, float]]):
            if not rows:
                return None
            data = [(k, i, v) for k, coefs in enumerate(rows) for i, v in coefs.items()]
            k, i, v = (list(x) for x in zip(*data))
            return csr_matrix((v, (k, i)), shape=(len(rows), len(self.index)))

        return matrix(eq), np.array(eq_b) if eq else None, matrix(ub), np.array(ub_b) if ub else None


TOTALS = "*totals*"  # the key prefix of the totals tables (`totals_of`)


def totals_key(key: str, columns: list[str]) -> str:
    """The key of the totals of a table with this key and these columns: one per measure and columns."""
    measure = key.rsplit("|", 1)[-1]
    return f"{TOTALS}|{measure}|{','.join(columns)}"


def totals_of(table: TableRecord) -> TableRecord | None:
    """The table's Total row as a table of its own (one row, "Total"), under a key shared by every
    breakdown of the same measure: the race, gender and language tables of the same people all
    publish it, so a total hidden in one and shown in another is related through it. None for a
    totals table itself."""
    if table.key.startswith(TOTALS):
        return None
    state = (frozenset(table.shown.items()), frozenset(table.marks.items()), id(table.members))
    cached = table.__dict__.get("_totals")  # derived once per record (an audit derives them every round)
    if cached is not None and cached[0] == state and cached[2] is table.members:
        return cached[1]
    derived = _totals_of(table)
    table.__dict__["_totals"] = (state, derived, table.members)
    return derived


def _totals_of(table: TableRecord) -> TableRecord:
    members = table.members
    if not table.rows_add_up:  # rows overlap: the people row holds each person once
        members = members[members["row"] == PEOPLE]
    members = members.assign(row=TOTAL).drop_duplicates(ignore_index=True)
    shown = {(TOTAL, c): v for (r, c), v in table.shown.items() if r == TOTAL}
    if table.rows_add_up:  # a hidden total whose rows are all shown is their sum: a reader adds them up
        for c in [*table.columns, TOTAL]:
            rows = [table.shown.get((r, c)) for r in table.rows]
            if (TOTAL, c) not in shown and None not in rows:
                shown[(TOTAL, c)] = sum(rows)
    marks = {k: m for k, m in table.marks.items() if k[0] == TOTAL and k not in shown}
    return TableRecord(
        table.release, table.name, totals_key(table.key, table.columns), [TOTAL], list(table.columns), True,
        shown, marks, members, {}, tuple(table.outcome_columns), table.title,
    )  # fmt: skip


def _totals_cells(table: TableRecord, cells: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The cells of `table` to hide for cells of its totals table: the Total row's cell and, where the
    rows are all shown (they add up to it), the smallest shown non-zero row of that column too."""
    out = []
    for _, c in cells:
        out.append((TOTAL, c))
        rows = [(table.shown[(r, c)], r) for r in table.rows if table.shown.get((r, c), 0) > 0]
        if table.rows_add_up and rows and all((r, c) in table.shown for r in table.rows):
            out.append((min(rows)[1], c))
    return out


def _mark_bounds(table: TableRecord, row: str, column: str, mark: str, rules) -> tuple[float, float | None]:
    """What a hidden cell's mark tells a reader: "≤10" 1 to 10; "†" above 10 (from 0 for an outcome of a
    hidden group, whose mark says nothing); "‡" anything from 0."""
    if mark == rules.display:
        return float(rules.min_suppressed), float(rules.max_suppressed)
    outcome_of_hidden = column in table.outcome_columns and (row, TOTAL) in table.marks
    if mark == rules.complementary_display and not outcome_of_hidden:
        return float(rules.max_suppressed + 1), None
    return 0.0, None


def _related(tables: list[TableRecord], current: list[TableRecord]) -> list[TableRecord]:
    """The tables linked to the current ones through people they share (directly or through
    others); the rest share no count with them, so nothing this release publishes changes theirs."""
    ids = [t.id_set() for t in tables]
    reached = {i for i, t in enumerate(tables) if any(t is c for c in current)}
    people = set().union(*(ids[i] for i in reached)) if reached else set()
    grew = True
    while grew:
        grew = False
        for i in range(len(tables)):
            if i not in reached and not ids[i].isdisjoint(people):
                reached.add(i)
                people |= ids[i]
                grew = True
    return [t for i, t in enumerate(tables) if i in reached]


class _Solver:
    """Min and max of a sum of (atom, label) counts under what the releases publish.

    Every optimum of the full system is a set of counts that fits every release; `points` keeps them
    (with the true counts) as a matrix, and `clearly_safe` / `clearly_uniform_safe` read off them a
    count whose range they already show to be wide enough and not pinned: its own LPs could only
    widen that range, so they are not solved (the verdict is the same as solving them)."""

    def __init__(self, key: str, n: int, rules, system=None, true: np.ndarray | None = None):
        self.key, self.n, self.rules = key, n, rules
        self.programs = 0
        self.threshold = rules.min_feasible_range - 1e-9
        self.system = system  # the full system (every release): its optima are kept as points
        self._points: list[np.ndarray] = []
        if system is not None and true is not None and _fits(system, true):
            self._points.append(np.asarray(true, dtype=float))
        self._matrix: np.ndarray | None = None

    def spread(self, directions: int) -> None:
        """Optima of a few fixed pseudo-random objectives over the full system: counts fitting every
        release that differ from the true ones in many places at once (kept as points)."""
        if self.system is None:
            return
        rng = np.random.default_rng(20)  # fixed: the same ledger gives the same audit
        for _ in range(directions):
            direction = dict(enumerate(rng.standard_normal(self.n)))
            for sign in (1.0, -1.0):
                self.solve(direction, sign, self.system)

    def solve(self, coefs: dict[int, float], sign: float, system) -> float | None:
        from scipy.optimize import linprog

        objective = np.zeros(self.n)
        for i, v in coefs.items():
            objective[i] = sign * v
        a_eq, b_eq, a_ub, b_ub = system
        self.programs += 1
        result = linprog(objective, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
        if result.status == 2:
            raise Inconsistent(f"the releases of {self.key!r} are inconsistent (no counts fit them all)")
        if result.status == 0 and system is self.system and result.x is not None:
            self._points.append(np.asarray(result.x, dtype=float))
            self._matrix = None
        return sign * result.fun if result.status == 0 else None

    def _values(self, coefs: dict[int, float]) -> np.ndarray:
        """The count's value at every point kept so far."""
        if not self._points:
            return np.zeros(0)
        if self._matrix is None:
            self._matrix = np.vstack(self._points)
        index = np.fromiter(coefs, dtype=np.int64, count=len(coefs))
        weights = np.fromiter(coefs.values(), dtype=float, count=len(coefs))
        return self._matrix[:, index] @ weights

    def clearly_safe(self, coefs, value, low_mark, high_mark) -> bool:
        """Counts fitting every release already spread this one over the standard's range, on both
        sides of its true value (or to its mark's bounds): `exposed` would say False."""
        seen = self._values(coefs)
        if not len(seen):
            return False
        low, high = float(seen.min()), float(seen.max())
        floor = max(low_mark, float(self.rules.min_suppressed))
        upper = np.inf if high_mark is None else high_mark
        margin = 1e-5
        wide = high - low >= self.threshold + margin
        free_below = low < value - margin or low <= floor + margin
        free_above = high > value + margin or high >= upper - margin
        return wide and free_below and free_above

    def clearly_uniform_safe(self, size: dict[int, float], zero: dict[int, float]) -> bool:
        """A point where the outcome is not 0, or the group is empty: `uniform` would say False."""
        zeros, sizes = self._values(zero), self._values(size)
        return bool(len(zeros)) and (float(zeros.max()) >= 0.5 + 1e-5 or float(sizes.min()) < 0.5 - 1e-5)

    def exposed(self, coefs, value, low_mark, high_mark, system) -> tuple[bool, float, float]:
        """Narrower than the standard's range, or pinned at its true value (as `suppression.audit`).
        Over the full system with points kept, the minimum is solved for only when the maximum's
        optimum and the points do not already show the count safe (`None` for the bounds then)."""
        high = self.solve(coefs, -1.0, system)
        high = np.inf if high is None else high
        if system is self.system and self.clearly_safe(coefs, value, low_mark, high_mark):
            return False, np.nan, high
        low = self.solve(coefs, 1.0, system)
        low = low_mark if low is None else low
        floor = max(low_mark, float(self.rules.min_suppressed))
        upper = np.inf if high_mark is None else high_mark
        pinned = (abs(low - value) < 1e-6 and low > floor + 1e-6) or (abs(high - value) < 1e-6 and high < upper - 1e-6)
        return (high - low < self.threshold) or pinned, low, high

    def uniform(self, size: dict[int, float], zero: dict[int, float], system) -> tuple[bool, float, float]:
        """The outcome rule on a group isolated by differencing: known to hold someone while one of
        its outcomes is known to be 0."""
        zero_high = self.solve(zero, -1.0, system)
        if system is self.system and zero_high is not None and zero_high >= 0.5:
            return False, np.nan, zero_high  # the outcome may be above 0: the group's size does not matter
        size_low = self.solve(size, 1.0, system)
        zero_high = np.inf if zero_high is None else zero_high
        size_low = 0.0 if size_low is None else size_low
        return bool(zero_high < 0.5 and size_low >= 0.5), size_low, zero_high


def _fits(system, x: np.ndarray, tolerance: float = 1e-7) -> bool:
    """Whether counts `x` fit a system (A_eq x = b_eq, A_ub x <= b_ub, x >= 0)."""
    a_eq, b_eq, a_ub, b_ub = system
    if (x < -tolerance).any():
        return False
    if a_eq is not None and np.abs(a_eq @ x - b_eq).max(initial=0.0) > tolerance:
        return False
    return a_ub is None or (a_ub @ x - b_ub).max(initial=-1.0) <= tolerance


SPREAD_DIRECTIONS = 3  # pseudo-random objectives solved first: their optima answer most counts without LPs


def audit_releases(
    earlier: list[TableRecord],
    current: list[TableRecord],
    *,
    standard: DisaggregationStandard | None = None,
    exhaustive: bool = False,
) -> ReleaseAudit:
    """Every count the releases together give away (see the module docstring). Only keys of the
    `current` tables are audited (the earlier releases were audited when they were made).

    Two shortcuts keep it fast, neither changing what is found (`exhaustive=True` takes neither, for
    the tests that show it): earlier tables sharing no one with the current ones, directly or through
    other tables, are left out (their counts and the current ones' are separate LPs, so nothing this
    release publishes changes theirs); and a count is solved for only when the counts found so far
    that fit every release (the true ones, and each LP's optimum) do not already show its range wide
    enough and unpinned."""
    std = standard or load_disaggregation()
    rules = std.small_cells
    exposures: list[Exposure] = []
    checked = programs = 0
    # every breakdown of the same people shares its Total row: a table of their totals per measure
    # relates the race, gender and language tables of one page and of other releases (walk-20 #16)
    current = [*current, *(d for d in map(totals_of, current) if d is not None)]
    earlier = [*earlier, *(d for d in map(totals_of, earlier) if d is not None)]
    keys = sorted({t.key for t in current})
    for key in keys:
        candidates = [t for t in (*earlier, *current) if t.key == key and len(t.members)]
        tables = candidates if exhaustive else _related(candidates, current)
        now = {i for i, t in enumerate(tables) if any(t is c for c in current)}
        if not now or len(now) == len(tables):
            continue  # nothing earlier to relate to: the one-page audit (suppression.audit) covers the tables
        problem = _Problem(tables)
        everything = set(range(len(tables)))
        full = problem.constraints(everything, std)
        before = problem.constraints(everything - now, std)
        solver = _Solver(key, len(problem.index), rules, None if exhaustive else full, problem.true)
        quantities = list(_quantities(problem, tables, rules))
        if len(quantities) > 4 * SPREAD_DIRECTIONS:  # worth a few LPs first
            solver.spread(SPREAD_DIRECTIONS)
        zeros = problem.published_zeros()
        for coefs, value, low_mark, high_mark, kind, what, labels, where in quantities:
            if set(coefs[0] if kind == "outcome" else coefs) <= zeros and value == 0:
                continue  # a published 0 of a larger group says it already (allowed: a zero reveals no one)
            checked += 1
            if kind == "outcome":  # a group known to be non-empty, one of its outcomes known to be 0
                if not exhaustive and solver.clearly_uniform_safe(*coefs):
                    continue
                bad, low, high = solver.uniform(*coefs, full)
                already = bad and solver.uniform(*coefs, before)[0]
            else:
                if not exhaustive and solver.clearly_safe(coefs, value, low_mark, high_mark):
                    continue
                bad, low, high = solver.exposed(coefs, value, low_mark, high_mark, full)
                own = where is not None and where[0] in now  # this release's own marks are not known before it
                bounds = (0.0, None) if own else (low_mark, high_mark)
                already = bad and solver.exposed(coefs, value, *bounds, before)[0]
            if bad:
                table = "" if where is None else f"{tables[where[0]].release}/{tables[where[0]].name}"
                cell = None if where is None else where[1]
                exposures.append(Exposure(key, kind, what, round(value), low, high, labels, already, table, cell))
        programs += solver.programs
    return ReleaseAudit(exposures, checked, programs, keys)


def _quantities(problem: _Problem, tables: list[TableRecord], rules):
    """The counts that must stay unknown: (coefficients, true value, lower and upper mark bound,
    kind, words, labels, (table, cell) or None)."""
    small = rules.max_suppressed
    for t, table in enumerate(tables):
        for (r, c), mark in table.marks.items():
            coefs = problem.cell(t, r, c)
            if not coefs:
                continue
            value = sum(problem.true[i] * v for i, v in coefs.items())
            low, high = _mark_bounds(table, r, c, mark, rules)
            outcome_of_hidden = c in table.outcome_columns and (r, TOTAL) in table.marks
            if outcome_of_hidden and value < rules.min_suppressed:  # the outcome of an empty group tells nothing
                size = problem.cell(t, r, TOTAL)
                outcome_of_hidden = sum(problem.true[i] * v for i, v in size.items()) > 0
            if value > small or (value < rules.min_suppressed and not outcome_of_hidden):
                continue  # a zero reveals no one, unless it is the outcome of a group whose size is hidden
            yield (
                coefs,
                value,
                low,
                high,
                "hidden",
                f"{r} / {c} hidden in {table.describe()}",
                tuple(table.cell_labels(r, c)),
                (t, (r, c)),
            )
    by_atom: dict[int, list[tuple[tuple[str, str], int]]] = {}
    for (a, label), i in problem.index.items():
        by_atom.setdefault(a, []).append((label, i))
    uniform_max = rules.uniform_outcome_max_n
    for a, labels in by_atom.items():
        if a in problem.whole:
            continue
        holders = ", ".join(tables[t].describe() for t in sorted(problem.atoms[a]))
        where = f"{int(problem.sizes[a])} people counted only in {holders}"
        rows: dict[str, list[tuple[str, int]]] = {}
        for (r, c), i in labels:
            rows.setdefault(r, []).append((c, i))
            value = problem.true[i]
            if rules.min_suppressed <= value <= small:
                yield {i: 1.0}, value, 0.0, None, "difference", f"{r} / {c} of the {where}", ((r, c),), None
        outcome_tables = [tables[t] for t in problem.atoms[a] if tables[t].outcome_columns]
        outcome_columns = set(outcome_tables[0].outcome_columns) if outcome_tables else set()
        # the atom's columns and its whole (everyone in it; the people row where rows overlap)
        people = [(r, i) for r in rows if r == PEOPLE for _, i in rows[r]]
        counted = people or [(r, i) for r in rows for _, i in rows[r]]
        by_column: dict[str, dict[int, float]] = {}
        for (r, c), i in labels:
            if (r == PEOPLE) == bool(people):
                by_column.setdefault(c, {})[i] = 1.0
        wholes = [(f"{c} of the {where}", coefs) for c, coefs in by_column.items()] if len(by_column) > 1 else []
        wholes.append((f"everyone of the {where}", {i: 1.0 for _, i in counted}))
        for what, coefs in wholes:
            size = sum(problem.true[i] for i in coefs)
            if rules.min_suppressed <= size <= small:
                chosen = tuple(label for label, i in labels if i in coefs)
                yield coefs, size, 0.0, None, "difference", what, chosen, None
        for r, cells in rows.items():
            size = sum(problem.true[i] for _, i in cells)
            coefs = {i: 1.0 for _, i in cells}
            if len(cells) > 1 and rules.min_suppressed <= size <= small:
                yield coefs, size, 0.0, None, "difference", f"{r} of the {where}", tuple((r, c) for c, _ in cells), None
            if outcome_columns and 0 < size <= uniform_max:
                for c, i in cells:
                    if c in outcome_columns and problem.true[i] == 0:
                        yield (
                            (coefs, {i: 1.0}),
                            size,
                            0.0,
                            None,
                            "outcome",
                            (f"{r}: no {c} among the {where}"),
                            tuple((r, c2) for c2, _ in cells),
                            None,
                        )


# -- extending a release's suppression ---------------------------------------------------------------


def extend(
    current: list[TableRecord],
    earlier: list[TableRecord],
    resuppress: Callable[[dict[str, set[tuple[str, str]]]], list[TableRecord]],
    *,
    standard: DisaggregationStandard | None = None,
    max_rounds: int = 12,
    start: dict[str, set[tuple[str, str]]] | None = None,
) -> tuple[list[TableRecord], ReleaseAudit, dict[str, int]]:
    """Hide more of the `current` tables until the releases together expose nothing new.

    `resuppress(forced)` suppresses the current tables again with the cells `forced` (table name ->
    cells) hidden first, complementary cells chosen as usual, and returns their new records; the
    last resort `forced` holds every cell of every current table ("withhold"). Returns the records,
    the final audit and how many cells were forced in each table (table name -> cells).

    `start`: cells already forced (table name -> cells; `current` already hides them), kept hidden in
    every round: a table recorded again in the same release starts from what it hid before."""
    std = standard or load_disaggregation()
    forced: dict[str, set[tuple[str, str]]] = {t.name: set((start or {}).get(t.name, ())) for t in current}
    audit = audit_releases(earlier, current, standard=std)
    for _ in range(max_rounds):
        if audit.passed:
            return current, audit, {name: len(cells) for name, cells in forced.items()}
        added = False
        derived = {}  # each table's totals table, derived once a round (only when a total is exposed)
        if any(e.key.startswith(TOTALS) for e in audit.new):
            derived = {t.name: totals_of(t) for t in current}
        for exposure in audit.new:
            for table in current:
                totals = derived[table.name] if exposure.key.startswith(TOTALS) else None
                if (totals or table).key != exposure.key:
                    continue
                cells = (
                    _cells_to_hide(table, exposure)
                    if totals is None
                    else _totals_cells(table, _cells_to_hide(totals, exposure))
                )  # a total: hidden in the table whose Total row it is (and a row, if the rows add up to it)
                for cell in cells:
                    if cell not in forced[table.name]:
                        forced[table.name].add(cell)
                        added = True
        if not added:
            break
        current = resuppress(forced)
        audit = audit_releases(earlier, current, standard=std)
    if audit.passed:
        return current, audit, {name: len(cells) for name, cells in forced.items()}
    everything = {t.name: {(r, c) for r in [*t.rows, TOTAL] for c in [*t.columns, TOTAL]} for t in current}
    current = resuppress({"*withhold*": set(), **everything})
    return current, audit_releases(earlier, current, standard=std), {n: len(c) for n, c in everything.items()}


def _cells_to_hide(table: TableRecord, exposure: Exposure) -> list[tuple[str, str]]:
    """Cells of a current table to hide for an exposure: its shown, non-zero cells that count the
    exposed labels; when those are all hidden already, the smallest shown non-zero cell in the same
    columns (the other cells a reader subtracts from a total), then in the Total row."""
    wanted = set(exposure.labels)
    columns = {c for _, c in wanted}
    exact, same, near = [], [], []
    for row in [*table.rows, TOTAL]:
        for column in [*table.columns, TOTAL]:
            value = table.shown.get((row, column), 0)
            if value <= 0:
                continue
            labels = set(table.cell_labels(row, column))
            if labels == wanted:
                exact.append((row, column))  # the cell that counts exactly the exposed people
            elif labels & wanted and row != TOTAL:
                same.append((row, column))
            elif {c for _, c in labels} & columns and row != TOTAL and column != TOTAL:
                near.append((value, row, column))
    if exact:
        return exact
    if exposure.kind == "outcome" or any(r == PEOPLE for r, _ in wanted):
        same += [(TOTAL, c) for c in table.columns if table.shown.get((TOTAL, c), 0) > 0]
    if same:
        return same
    if near:
        _, row, column = min(near)
        return [(row, column)]
    return [(TOTAL, c) for c in [*table.columns, TOTAL] if table.shown.get((TOTAL, c), 0) > 0][:1]


def summary(audit: ReleaseAudit) -> dict[str, Any]:
    """The audit in numbers, for a manifest."""
    return {
        "keys": audit.keys,
        "counts_checked": audit.checked,
        "linear_programs": audit.linear_programs,
        "exposed_before_this_release": [e.what for e in audit.already][:20],
        "exposed": [e.what for e in audit.new][:20],
    }
