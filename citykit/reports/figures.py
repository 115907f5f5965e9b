"""Figures and tables in a report, as notebooks see them inside the report kernel.

    describe_figure(fig, "Bar chart of open requests by neighborhood")   # alt text of your own
    publish_table(backlog, "backlog by age")                             # the CSV / sheet's name

Without these, a figure's alt text is made from its titles and axis labels (`figure_alt`) and a
displayed DataFrame is named after the heading above it. The report kernel's display formatters
(`citykit.reports.kernel.install_kernel_hooks`) attach both to each output; the runner reads them
back from the executed notebook (`citykit.reports.html`). Light on purpose: a notebook importing
`citykit.describe_figure` imports this module, not the runner.
"""

from __future__ import annotations

from typing import Any

TABLE_MIME = "application/vnd.citykit.table+json"  # output mimetype of a recorded table
TABLE_ATTR = "citykit_table"  # DataFrame.attrs key publish_table sets
ALT_ATTR = "citykit_alt"  # Figure attribute describe_figure sets


def publish_table(df: Any, name: str) -> None:
    """Display a DataFrame in the report and name the CSV / workbook sheet it becomes."""
    from IPython.display import display  # loaded in a kernel; kept off the runner's start-up

    shown = df.copy(deep=False)
    shown.attrs[TABLE_ATTR] = name
    display(shown)


def describe_figure(fig: Any, alt: str) -> Any:
    """Set a figure's alt text in the report (otherwise made from its titles and axis labels)."""
    setattr(fig, ALT_ATTR, alt)
    return fig


def figure_alt(fig: Any) -> str:
    """Alt text for a figure: its own (describe_figure), else its titles and axis labels."""
    explicit = getattr(fig, ALT_ATTR, None)
    if explicit:
        return str(explicit)
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


def table_payload(df: Any) -> dict | None:
    """The table record of a displayed DataFrame: its name (if published) and its CSV text."""
    try:
        return {
            "name": df.attrs.get(TABLE_ATTR),
            "csv": df.to_csv(),
            "index_levels": df.index.nlevels,
            "header_rows": df.columns.nlevels,
        }
    except Exception:  # a table we cannot record must never break the report
        return None
