"""`citykit data list`: what each registered dataset holds (tables and rows, the two dates, the
periods its requests cover, the quality verdict)."""

from __future__ import annotations

from dataclasses import dataclass

from citykit.data import registry
from citykit.data.periods import latest_complete
from citykit.errors import CitykitError


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    tables: dict[str, int]  # table -> rows
    as_of: str  # with "(inferred ...)" when the import took the newest record
    extract_date: str
    first_request: str
    last_request: str
    default_periods: str  # the latest complete month, quarter and year before the as-of date
    verdict: str  # "pass", "FAIL: check, check" or why it could not be scored


def summarize(name: str, score: bool = True) -> DatasetSummary:
    from citykit.data.quality import PLACEHOLDER_YEAR  # pandas and the standards: not on the CLI's start-up path
    from citykit.data.query import bind, connect  # duckdb and pandas: not on the CLI's start-up path

    ds = registry.get(name)
    if not ds.exists():
        build = f"not built yet: citykit data build{' --scale large' if name.endswith('_large') else ''}"
        why = build if ds.synthetic else "no data yet"
        return DatasetSummary(name, {}, ds.as_of_label, str(ds.extract_date or ""), "", "", "", why)
    con = connect()
    tables: dict[str, int] = {}
    first = last = ""
    if ds.kind == "parquet":
        for table in ds.tables:  # paths bound as parameters: any folder name works (o'brien)
            bind(con, "path", ds.table_path(table).as_posix())
            tables[table] = con.execute("SELECT count(*) FROM read_parquet(getvariable('path'))").fetchone()[0]
        bind(con, "path", ds.table_path("service_requests").as_posix())
        # the range of the requests whose dates are not flagged: a placeholder (1900-01-01) is not the
        # first request, nor an implausible 2099 the last (flag_placeholder_date marks both)
        lo, hi = con.execute(
            "SELECT min(created_at) FILTER (WHERE year(created_at) > ? AND NOT flag_placeholder_date), "
            "max(created_at) FILTER (WHERE NOT flag_placeholder_date) FROM read_parquet(getvariable('path'))",
            [PLACEHOLDER_YEAR],
        ).fetchone()
        first, last = (f"{lo:%Y-%m-%d}", f"{hi:%Y-%m-%d}") if lo is not None else ("", "")
    periods = ", ".join(latest_complete(kind, ds.as_of).label for kind in ("month", "quarter", "year"))
    verdict = ""
    if score and ds.kind == "parquet":
        from citykit.data.quality import check_dataset  # the quality checks (jsonschema, pandas): only when scoring

        try:
            card = check_dataset(name)
            verdict = "pass" if card.passed else "FAIL: " + ", ".join(sorted({c.name for c in card.failed}))
        except CitykitError as error:
            verdict = f"not scored ({error})"
    return DatasetSummary(name, tables, ds.as_of_label, str(ds.extract_date or ds.as_of), first, last, periods, verdict)


def list_datasets(score: bool = True) -> list[DatasetSummary]:
    """Every registered dataset, built-in first, then imports (by name)."""
    return [
        summarize(name, score)
        for name in sorted(registry.all_datasets(), key=lambda n: (n not in registry.builtin_names(), n))
    ]
