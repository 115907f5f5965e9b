"""Figures and tables in a report, as notebooks see them inside the report kernel.

    describe_figure(fig)                                                  # alt text: title + the finding
    describe_figure(fig, "Bar chart of open requests by neighborhood")   # your text + the finding
    publish_table(backlog, "backlog by age", kinds={"share": "share"})   # a table for people, exported

Alt text: without `describe_figure`, a figure's alt text is its title followed by the finding read
from the data drawn (the largest and smallest bar, where each line starts and ends, the direction
of a scatter); see `citykit.reports.charts.finding`. Tables: `publish_table` shows a table with
plain headings and numbers formatted for people (`citykit.reports.tables`) and names the CSV /
workbook sheet it becomes; a plainly displayed DataFrame is recorded too and named after the
heading above it. The report kernel's display formatters (`citykit.reports.kernel`) attach both to
each output; the runner reads them back from the executed notebook (`citykit.reports.html`).

Light on purpose: a notebook importing `citykit.describe_figure` imports this module only; the
table and chart machinery is imported when first used.
"""

from __future__ import annotations

from typing import Any

TABLE_MIME = "application/vnd.citykit.table+json"  # output mimetype of a recorded table
TABLE_ATTR = "citykit_table"  # DataFrame.attrs key naming the table (publish_table, equity)
ALT_ATTR = "citykit_alt"  # Figure attribute describe_figure sets
FINDING_ATTR = "citykit_finding"  # False: the alt text is exactly the author's


def publish_table(
    df: Any,
    name: str,
    *,
    kinds: dict | None = None,
    labels: dict | None = None,
    missing: str | dict | None = None,
    notes: list[str] | None = None,
    max_rows: int | None = 25,
    caption: str | None = None,
    cells: dict | None = None,
) -> None:
    """Display a table for people and name the CSV / workbook sheet it becomes.

    df: a DataFrame, an `equity.disaggregate(...)` table or a `quality.check_dataset(...)` scorecard.
    name: the CSV file's and workbook sheet's name ("backlog by age").
    kinds: column -> "count" (60,248), "share" (a 0–1 fraction, shown 85.3%), "percent" (already
        0–100), ("rate", "per 1,000 residents") or "rate:per 1,000 residents", "days", "ratio",
        "number", "plain" (no separators: years, ranks), "p", "date" (never wraps), "text".
        Columns not named are inferred from their type, name and values.
    labels: column -> heading; otherwise the data dictionary's label, never a snake_case name.
    missing: why a value is missing ("no service-level target for this type"), for every column or
        per column; a column with no value at all is left out and the reason noted under the table.
    notes: footnotes under the table. caption: a caption above it.
    cells: for an equity table, words in a group's cells, {group: {column: text}} (why a figure is not shown).
    max_rows: rows shown on the page (None: all); the CSV, linked under the table, holds every row.

    Columns `X_low` / `X_high` beside `X` become one "95% interval" column ("81.2%–88.9%").
    """
    from IPython.display import display  # loaded in a kernel; kept off the runner's start-up

    payload = table_payload(df, name=name, published=True, strict=True, kinds=kinds, labels=labels,
                            missing=missing, notes=notes, max_rows=max_rows, caption=caption,
                            **({"cells": cells} if cells else {}))  # fmt: skip
    from citykit.reports.tables import table_html  # formatting machinery: only when a table is shown

    display({"text/html": table_html(payload["people"]), "text/plain": _plain_text(payload), TABLE_MIME: payload},
            raw=True)  # fmt: skip


def _plain_text(payload: dict) -> str:
    people = payload["people"]
    header = " | ".join(c["label"] for c in people["columns"])
    rows = [" | ".join(str(cell) for cell in row) for row in people["cells"]]
    return "\n".join([header, *rows])


def describe_figure(fig: Any, alt: str | None = None, *, finding: bool = True) -> Any:
    """Set a figure's alt text in the report.

    With no `alt`, the alt text is the figure's title and the finding read from its data (largest
    and smallest values, the direction of change); with `alt`, your text followed by that finding;
    `finding=False` keeps exactly your text.
    """
    if alt:
        setattr(fig, ALT_ATTR, str(alt))
    setattr(fig, FINDING_ATTR, bool(finding))
    return fig


def figure_alt(fig: Any) -> str:
    """Alt text for a figure: its own text or title, and the finding from the data drawn."""
    explicit = getattr(fig, ALT_ATTR, None)
    with_finding = getattr(fig, FINDING_ATTR, True)
    if explicit and not with_finding:
        return str(explicit)
    from citykit.reports.charts import figure_title, finding  # matplotlib: only when a figure is shown

    try:
        found = finding(fig) if with_finding else ""
    except Exception:  # a figure we cannot read must never break the report
        found = ""
    if explicit:
        return f"{str(explicit).rstrip()} {found}".strip() if found and found not in explicit else str(explicit)
    title = figure_title(fig)
    if found:
        return f"Chart: {title}. {found}" if title else f"Chart. {found}"
    return _titles_and_axes(fig)


def _titles_and_axes(fig: Any) -> str:
    """The old alt text: titles and axis labels (for a figure whose data cannot be read)."""
    parts = []
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    if suptitle:
        parts.append(suptitle)
    for ax in fig.get_axes():
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t)
        labels = [
            f"{axis} axis: {label}"
            for axis, label in (("horizontal", ax.get_xlabel()), ("vertical", ax.get_ylabel()))
            if label
        ]
        if title or labels:
            parts.append("; ".join([title.replace("\n", ", "), *labels] if title else labels))
    text = ". ".join(p.strip() for p in parts if p.strip())
    return f"Chart: {text}" if text else ""


def table_payload(obj: Any, *, name: str | None = None, published: bool = False, strict: bool = False,
                  **options: Any) -> dict | None:  # fmt: skip
    """The table record of a displayed table: its name, its CSV as computed, and the same table for
    people (`citykit.reports.tables.people_table`: headings, formatted cells, notes, CSV).

    obj: a DataFrame, a pandas Styler (its data), an equity DisaggregatedTable or a quality Scorecard.
    strict: raise on a bad option (publish_table); otherwise a table that cannot be recorded gives None.
    """
    try:
        from citykit.reports.tables import people_record  # formatting machinery: only when a table is shown

        df, people = people_record(obj, name=name, published=published, **options)
        return {
            "name": name or df.attrs.get(TABLE_ATTR) or (people or {}).get("name"),
            "csv": df.to_csv(),
            "index_levels": df.index.nlevels,
            "header_rows": df.columns.nlevels,
            "people": people,
            "published": bool(published),
        }
    except Exception:  # a table we cannot record must never break the report
        if strict:
            raise
        return None
