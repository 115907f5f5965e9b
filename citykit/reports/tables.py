"""Tables for people: plain headings, numbers as people read them, nothing hidden, every table exported.

    record = people_table(df, name="waits by type", kinds={"share_within_sla": "share"})
    html = table_html(record, csv_href="tables/03-waits-by-type.csv")

`people_table` runs in the report kernel (it needs the frame's types) and returns a JSON-able
record: headings from the data dictionary (`citykit.reports.labels`), each column's kind (count,
share, percent, rate with its unit, days, ratio, number, p, date, text, interval), the cells of the
rows shown on the page as text, notes under the table, and the CSV of every row with the same
headings and marks. `table_html` runs in the runner and writes the accessible table with a link to
its CSV. The rules:

- a heading is never a snake_case column name; a share or percent heading says "(%)", a rate its
  unit, a duration "(days)";
- counts carry thousands separators (60,248); shares and percents a % sign (85.3%); an interval is
  one cell, "81.2%–88.9%"; dates and months never wrap;
- a column with nothing to show is left out, with a note; a missing cell shows "—" and a footnote
  gives the reason; "NaN" is never shown, and nothing is cut with "…": a long table shows its first
  rows and says how many the CSV holds;
- the CSV (and the workbook sheet made from it) has the page's headings, rows and marks (≤10, †, ‡),
  numbers without separators, shares in percent.
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Any

from citykit.errors import CitykitError
from citykit.reports.labels import heading, plain_text

KINDS = ("count", "share", "percent", "rate", "days", "ratio", "number", "plain", "p", "date", "text", "interval")
MAX_ROWS = 25  # rows a published table shows on the page; the CSV holds them all
MAX_PLAIN_ROWS = 5000  # a merely displayed frame longer than this keeps pandas' rendering (formatting costs)
DASH = "—"
MARKS = ("≤10", "†", "‡")
MISSING_TEXT = {"", "nan", "NaN", "None", "<NA>", "NaT", "null"}
NUMBER = re.compile(r"^\s*(-?[\d,]*\.?\d+(?:[eE][-+]?\d+)?)\s*(%?)\s*([*†‡]*)\s*$")
INTERVAL = re.compile(r"^\s*(-?[\d,]*\.?\d+)\s*%?\s*(?:–|\s-\s)\s*(-?[\d,]*\.?\d+)\s*%?\s*$")  # "81.2–88.9"
DATE_LIKE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2})?)?$")
PLAIN_NAMES = re.compile(r"(^|[ _])(year|week|month|day|rank|district|council_district|id|number|age)$", re.I)
# pairs of interval columns the kit's own tables use, beside the value they bracket
INTERVAL_PAIRS = {"rate": ("rate_low", "rate_high"), "rate_ratio": ("rr_low", "rr_high"),
                  "dp_index": ("di_low", "di_high"), "adverse_ratio": ("adverse_low", "adverse_high")}  # fmt: skip


class TableError(CitykitError):
    """A publish_table argument that cannot be used (a bad kind)."""


def parse_kind(spec: Any) -> tuple[str, str]:
    """The kind and unit of "share" / "rate:per 1,000 residents" / ("rate", "per 1,000 residents") -> (kind, unit)."""
    if isinstance(spec, (tuple, list)):
        kind, unit = (str(spec[0]), str(spec[1]) if len(spec) > 1 else "")
    else:
        kind, _, unit = str(spec).partition(":")
    kind, unit = kind.strip().lower(), unit.strip()
    if kind not in KINDS:
        raise TableError(f"unknown kind {spec!r} for a table column; kinds: {', '.join(KINDS)}")
    return kind, unit


# ------------------------------------------------------------------ values


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in MISSING_TEXT
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any) -> tuple[float | None, str]:
    """A number and any marks after it ("70.7*" -> 70.7, "*"); None for text."""
    if isinstance(value, bool):
        return None, ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), ""
    try:
        import numpy as np

        if isinstance(value, np.number):
            return float(value), ""
    except ImportError:  # pragma: no cover - numpy is always there with pandas
        pass
    if isinstance(value, str):
        m = NUMBER.match(value)
        if m:
            return float(m[1].replace(",", "")), m[3]
    return None, ""


def _decimals(kind: str, value: float) -> int:
    return {"count": 0, "plain": 0, "share": 1, "percent": 1, "rate": 1, "days": 1, "ratio": 2}.get(
        kind, 0 if float(value).is_integer() else (1 if abs(value) >= 10 else 2)
    )


def column_places(values, kind: str) -> int | None:
    """Decimal places for a whole "number" column (one precision per column): the fewest, up to 3,
    that show every value as computed; else 1 (values of 10 and more) or 2."""
    if kind != "number":
        return None
    numbers = [n for n in (_number(v)[0] for v in values if not _is_missing(v)) if n is not None and math.isfinite(n)]
    if not numbers:
        return None
    for places in range(4):
        if all(abs(n - round(n, places)) < 1e-9 * max(1.0, abs(n)) for n in numbers):
            return places
    return 1 if max(abs(n) for n in numbers) >= 10 else 2


def format_value(value: Any, kind: str, places: int | None = None) -> tuple[str, Any]:
    """(text on the page, value in the CSV) of one cell; ("", None) when missing. `places`: the
    column's decimal places (column_places), else the kind's. An empty text is a blank, not a gap."""
    if kind == "text" and isinstance(value, str) and not value.strip():
        return "", ""
    if _is_missing(value):
        return "", None
    if kind == "date":
        text = _date(value)
        return text, text
    if kind == "text" or isinstance(value, bool):
        text = ("Yes" if value else "No") if isinstance(value, bool) else str(value)
        return text, text
    if kind == "interval":
        return str(value), str(value)
    number, marks = _number(value)
    if number is None:  # a mark ("≤10", "—") or words in a numeric column: kept as they are
        return str(value), str(value)
    if not math.isfinite(number):
        return "", None
    if kind == "p":
        text = "<0.001" if 0 < number < 0.001 else f"{number:.3f}"
        return text + marks, text + marks
    if kind == "share":
        number *= 100
    places = _decimals(kind, number) if places is None else places
    if kind == "number" and _is_whole_type(value):
        places = 0  # a count beside decimals in one column (the key figures) stays whole: 4285, not 4285.0
    shown = round(number, places)
    if places == 0:
        page, csv = (f"{int(shown):,}" if kind != "plain" else str(int(shown))), int(shown)
    else:
        page, csv = f"{shown:,.{places}f}", shown
    if kind in ("share", "percent"):
        page += "%"
    return page + marks, (f"{csv}{marks}" if marks else csv)


def _is_whole_type(value: Any) -> bool:
    """An integer, by its type (Python's or numpy's), not a float that happens to be whole."""
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def format_interval(low: Any, high: Any, kind: str) -> tuple[str, Any]:
    """The interval "81.2%–88.9%" on the page and in the CSV; ("", None) when either end is missing."""
    if _is_missing(low) or _is_missing(high):
        return "", None
    a, _ = format_value(low, kind)
    b, _ = format_value(high, kind)
    return f"{a}–{b}", f"{a}–{b}".replace(",", "")


def _date(value: Any) -> str:
    import pandas as pd

    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "strftime"):
        stamp = pd.Timestamp(value)
        return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else f"{stamp:%Y-%m-%d %H:%M}"
    return str(value)


# ------------------------------------------------------------------ kinds


def infer_kind(name: Any, values) -> tuple[str, str]:
    """The kind of a column from its type, its name and its values (see the module docstring)."""
    import pandas as pd

    text = str(name).lower()
    series = pd.Series(values)
    if pd.api.types.is_bool_dtype(series):
        return "text", ""
    if pd.api.types.is_datetime64_any_dtype(series) or isinstance(series.dtype, pd.PeriodDtype):
        return "date", ""
    present = [v for v in series.tolist() if not _is_missing(v)]
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        if present and all(isinstance(v, str) and DATE_LIKE.match(v) for v in present):
            return "date", ""
        if present and all(isinstance(v, str) and INTERVAL.match(v) for v in present if v not in MARKS):
            return "interval", ""
        if present and any(hasattr(v, "strftime") for v in present):
            return "date", ""
        numbers = [_number(v)[0] for v in present if not (isinstance(v, str) and v.strip() in (*MARKS, DASH))]
        if not numbers or any(n is None for n in numbers):
            return "text", ""
        present = numbers
    if PLAIN_NAMES.search(text) and all(float(v).is_integer() for v in present):
        return "plain", ""
    text = text.replace("_", " ")
    if "ratio" in text or "disproportionality" in text or text == "dp index":
        return "ratio", ""
    if "(%)" in text or "pct" in text or "percent" in text:
        return "percent", ""
    if re.search(r"share|proportion|within sla|on time|within target", text):
        return ("share", "") if all(0 <= float(v) <= 1 for v in present) else ("percent", "")
    if re.search(r"per ?1,?000|per ?100\b|per resident", text):
        return "rate", ""
    if "days" in text or text.startswith("day"):
        return "days", ""
    if re.search(r"(^| )p([ -]?value)?($| )|corrected p|p adjusted", text):
        return "p", ""
    if pd.api.types.is_integer_dtype(series) or (present and all(float(v).is_integer() for v in present)):
        return "count", ""
    return "number", ""


def _with_unit(label: str, kind: str, unit: str) -> str:
    lower = label.lower()
    if kind in ("share", "percent") and "%" not in label:
        return f"{label} (%)"
    if kind == "rate" and unit and unit.lower() not in lower:
        return f"{label} ({unit})"
    if kind == "days" and "day" not in lower:
        return f"{label} (days)"
    return label


# ------------------------------------------------------------------ the record


def people_table(
    df,
    name: str | None = None,
    *,
    kinds: dict | None = None,
    labels: dict | None = None,
    missing: str | dict | None = None,
    notes: list[str] | None = None,
    max_rows: int | None = MAX_ROWS,
    caption: str | None = None,
) -> dict[str, Any]:
    """The record of a table for people (see the module docstring); `df` a DataFrame."""
    import pandas as pd

    frame = df.copy(deep=False)
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [tuple(str(p) for p in c) for c in frame.columns]
    row_keys: list[Any] = []
    index = frame.index
    plain_range = isinstance(index, pd.RangeIndex) and index.name is None and index.start == 0 and index.step == 1
    if not plain_range:
        names = [n if n is not None else f"__row{i}" for i, n in enumerate(index.names)]
        frame = frame.set_axis(pd.MultiIndex.from_frame(index.to_frame(), names=names) if index.nlevels > 1
                               else index.rename(names[0]), axis=0).reset_index()  # fmt: skip
        row_keys = names
    kinds = {**(kinds or {})}
    labels = dict(labels or {})
    reasons = missing if isinstance(missing, dict) else {}
    default_reason = missing if isinstance(missing, str) else None

    columns: list[dict[str, Any]] = []
    consumed: set = set()
    keys = list(frame.columns)
    for key in keys:
        if key in consumed:
            continue
        column = {"key": key, "row_header": key in row_keys}
        spec = kinds.get(key, kinds.get(str(key)))
        kind, unit = parse_kind(spec) if spec is not None else infer_kind(key, frame[key])
        label = "" if str(key).startswith("__row") else _with_unit(heading(key, labels), kind, unit)
        column.update(label=label, kind=kind, unit=unit)
        columns.append(column)
        low, high = INTERVAL_PAIRS.get(str(key), (f"{key}_low", f"{key}_high"))
        if low in frame.columns and high in frame.columns and kind not in ("text", "date"):
            consumed |= {low, high}
            label = labels.get(f"{key} interval", "95% interval")
            columns.append({"key": (low, high), "row_header": False, "label": label, "kind": "interval",
                            "unit": kind})  # fmt: skip
    for position, column in enumerate(columns):  # "a–b" text intervals take the kind of the column before
        if column["kind"] == "interval" and not isinstance(column["key"], tuple):
            column["unit"] = columns[position - 1]["kind"] if position else "number"

    cells: list[list[tuple[str, Any]]] = [[] for _ in range(len(frame))]
    kept, notes_out = [], list(notes or [])
    for column in columns:
        if isinstance(column["key"], tuple) and column["kind"] == "interval":
            low, high = column["key"]
            values = [format_interval(a, b, column["unit"]) for a, b in zip(frame[low], frame[high], strict=True)]
        elif column["kind"] == "interval":
            values = [_text_interval(v, column["unit"]) for v in frame[column["key"]]]
        else:
            places = column_places(frame[column["key"]], column["kind"])
            values = [format_value(v, column["kind"], places) for v in frame[column["key"]]]
        reason = reasons.get(column["key"], reasons.get(column["label"], default_reason))
        if values and all(csv is None or csv == "" for _, csv in values) and not column["row_header"]:
            notes_out.append(f"{column['label'] or 'A column'} is left out: "
                             f"{reason or 'it has nothing to show in this selection'}.")  # fmt: skip
            continue
        if any(csv is None for _, csv in values):
            notes_out.append(f"{DASH} in “{column['label']}”: {reason or 'no value for this row'}.")
            values = [(DASH, None) if csv is None else (page, csv) for page, csv in values]
        kept.append(column)
        for row, value in zip(cells, values, strict=True):
            row.append(value)
    headings = [c["label"] for c in kept]
    # object columns: each cell as formatted (a count stays whole beside decimals, as the key figures show)
    csv_frame = pd.DataFrame([[csv for _, csv in row] for row in cells], columns=_unique(headings), dtype=object)
    buffer = io.StringIO()
    csv_frame.to_csv(buffer, index=False)
    shown = len(cells) if max_rows is None else min(len(cells), max(int(max_rows), 1))
    legend = [mark for mark in MARKS if any(mark in str(page) for row in cells for page, _ in row)]
    return {
        "name": name,
        "caption": caption,
        "columns": [
            {"label": c["label"], "kind": c["kind"], "unit": str(c["unit"]), "row_header": c["row_header"]}
            for c in kept
        ],
        "cells": [[page for page, _ in row] for row in cells[:shown]],
        "rows": len(cells),
        "notes": notes_out,
        "marks": legend,
        "csv": buffer.getvalue(),
        "row_headers": sum(1 for c in kept if c["row_header"]),
    }


def _text_interval(value: Any, kind: str) -> tuple[str, Any]:
    if _is_missing(value):
        return "", None
    m = INTERVAL.match(str(value))
    if not m:
        return str(value), str(value)
    return format_interval(float(m[1].replace(",", "")), float(m[2].replace(",", "")), kind)


def _unique(headings: list[str]) -> list[str]:
    """CSV headers must differ: a repeated heading gets " (2)"."""
    seen: dict[str, int] = {}
    out = []
    for h in headings:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out


# ------------------------------------------------------------------ the page


NUMERIC = {"count", "share", "percent", "rate", "days", "ratio", "number", "p", "interval"}


def table_html(record: dict[str, Any], csv_href: str | None = None, csv_name: str | None = None) -> str:
    """The accessible HTML of a people_table record, with its notes and a link to its CSV."""
    columns = record["columns"]
    classes = [_cell_class(c) for c in columns]
    head = "".join(  # headings wrap; numbers, dates and intervals do not
        f'<th scope="col"{_attr(cls.replace("ck-nowrap", "").strip())}>{escape(c["label"])}</th>'
        for c, cls in zip(columns, classes, strict=True)
    )
    body = []
    for row in record["cells"]:
        cells = []
        for column, cls, text in zip(columns, classes, row, strict=True):
            tag = "th" if column["row_header"] else "td"
            scope = ' scope="row"' if column["row_header"] else ""
            cells.append(f"<{tag}{scope}{_attr(cls)}>{escape(str(text))}</{tag}>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<caption>{escape(record['caption'])}</caption>" if record.get("caption") else ""
    region = f"Table: {record.get('caption') or record.get('name') or ', '.join(c['label'] for c in columns[:3])}"
    parts = [
        '<div class="ck-table">',
        f'<div class="ck-table-scroll" tabindex="0" role="region" aria-label="{escape(region)}">'
        f'<table class="ck-people">{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>",
    ]
    shown, total = len(record["cells"]), record["rows"]
    link = f'<a href="{escape(csv_href)}">{escape(csv_name or "the full table (CSV)")}</a>' if csv_href else ""
    if shown < total:
        more = f"The first {shown:,} of {total:,} rows"
        parts.append(f'<p class="ck-table-more">{more}; every row is in {link or "the CSV"}.</p>')
    notes = list(record.get("notes") or [])
    if notes:
        parts.append('<ul class="ck-notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if link and shown >= total:
        parts.append(f'<p class="ck-table-links">Download: {link}</p>')
    parts.append("</div>")
    return "".join(parts)


def _cell_class(column: dict[str, Any]) -> str:
    classes = []
    if column["kind"] in NUMERIC:
        classes.append("ck-num")
    if column["kind"] in ("date", "interval", "plain") or column["kind"] in NUMERIC:
        classes.append("ck-nowrap")
    return " ".join(classes)


def _attr(cls: str) -> str:
    return f' class="{cls}"' if cls else ""


# ------------------------------------------------------------------ the kit's own tables


REFERENCE_CELL = "reference group"  # a comparison's reference row, in its ratio columns


def people_record(obj, name: str | None = None, published: bool = True, **options: Any):
    """(the frame as computed, its people_table record) for any table a report shows: a DataFrame,
    a pandas Styler, an equity DisaggregatedTable or a quality Scorecard. A merely displayed frame
    (`published=False`) of more than MAX_PLAIN_ROWS rows gets no record (None)."""
    kind = f"{type(obj).__module__}.{type(obj).__name__}"
    if kind.endswith("DisaggregatedTable"):
        return disaggregated_record(obj, name, **options)
    if kind == "citykit.data.quality.Scorecard":
        return scorecard_record(obj, name, **options)
    if kind.startswith("pandas.io.formats.style") and hasattr(obj, "data"):
        obj = obj.data
    if not published and len(obj) > MAX_PLAIN_ROWS:
        return obj, None
    return obj, people_table(obj, name, **options)


def disaggregated_record(table, name: str | None = None, **options: Any):
    """An equity.disaggregate table: its published strings (marks kept), with headings and kinds
    from what it measures, its title as caption and its footnotes under it.

    A comparison (equity.disparities) shows its reference group's row as "reference group" in the
    ratio columns, not as gaps; `reference=` names that group (default: the group after the title's
    last " against "). `cells={group: {column: text}}` puts words in a row's cells (columns of the
    table's display_frame), e.g. why a figure of that group is not shown."""
    reference = options.pop("reference", None)
    cells = options.pop("cells", None) or {}
    frame = table.display_frame().set_index(table.by)
    if "notable" in frame.columns:  # Yes / No is a verdict on a ratio: a group with none was not compared
        compared = table.data["rate_ratio"].notna().to_numpy() if "rate_ratio" in table.data.columns else None
        frame["notable"] = [
            ("Yes" if str(v).strip().lower() == "yes" else "No") if compared is None or compared[i] else "Not compared"
            for i, v in enumerate(frame["notable"])
        ]
    if "rate_ratio" in table.data.columns and table.data["rate_ratio"].notna().any() and len(table.by) == 1:
        if reference is None and " against " in (table.title or ""):
            reference = table.title.rsplit(" against ", 1)[-1].strip()
        if reference is not None and str(reference) in set(frame.index.astype(str)):
            row = frame.index.astype(str) == str(reference)
            own = [c for c in frame.columns if c not in ("disproportionality", "DI 95% interval", "n", "events",
                                                         "denominator", "rate")]  # fmt: skip
            own = own[own.index("95% interval") - 1 :] if "95% interval" in own else own
            for column in own:
                frame.loc[row, column] = "" if column == "notable" else REFERENCE_CELL
    for group, texts in cells.items():
        row = frame.index.astype(str) == str(group)
        for column, text in texts.items():
            if column in frame.columns:
                frame.loc[row, column] = text
    measure = heading(table.measure) if table.measure else "With the outcome"
    per = float(getattr(table, "per", 1.0) or 1.0)
    rate_kind: Any = "percent" if per == 100 else ("rate", f"per {per:,g}")
    kinds = {"n": "count", "events": "count", "denominator": "count", "rate": rate_kind, "corrected p": "p",
             "notable": "text"}  # fmt: skip
    for column in frame.columns:
        if "ratio" in str(column) or column == "disproportionality":
            kinds[column] = "ratio"
    labels = {"n": "Number", "events": measure, "rate": f"{measure} per {per:,g}" if per != 100 else measure}
    notes = [*(options.pop("notes", None) or []), *([table.note] if table.note else []), *table.footnotes]
    record = people_table(
        frame,
        name or table.title or None,
        kinds={**kinds, **(options.pop("kinds", None) or {})},
        labels={**labels, **(options.pop("labels", None) or {})},
        notes=notes,
        caption=options.pop("caption", None) or table.title or None,
        **options,
    )
    if table.note:  # no comparison could be made (the note says why): not one "left out" line per empty column
        record["notes"] = [n for n in record["notes"] if " is left out: " not in n]
    return frame, record


def scorecard_record(card, name: str | None = None, **options: Any):
    """A quality scorecard: one row per check, its gate and verdict in words; every check shown."""
    import pandas as pd

    several = len({c.table for c in card.checks}) > 1
    rows = []
    for c in card.checks:
        found = f"{c.value:,.1f} days" if c.value is not None else f"{c.share:.2%}"
        limit = "" if c.gate is None else (f"{c.gate.limit:g} days" if c.gate.unit == "days" else f"{c.gate.limit:.2%}")
        row = {"Table": heading(c.table)} if several else {}
        row.update({
            "Check": plain_text(c.description), "Dimension": str(c.dimension).capitalize(), "Records failing": c.failing,
            "Records checked": c.rows, "Found": found, "Gate (most allowed)": limit or "no gate",
            "Result": {"FAIL": "Fails", "pass": "Passes", "no gate": "No gate"}.get(c.verdict(), c.verdict()),
            "Example records": ", ".join(c.examples[:2]),
        })  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("Check")
    kinds = {column: "text" for column in frame.columns if column not in ("Records failing", "Records checked")}
    kinds["Example records"] = "plain"  # record ids: never broken at their hyphen
    options.setdefault("max_rows", None)
    options.setdefault("missing", {"Example records": "no failing record to show"})
    record = people_table(frame, name or "data quality scorecard", kinds={**kinds, **(options.pop("kinds", None) or {})},
                          **options)  # fmt: skip
    gated = [c for c in card.checks if c.gate is not None]
    verdict = (f"all {len(gated)} quality gates pass" if card.passed
               else f"{len(card.failed)} of {len(gated)} quality gates fail (“Fails” above)")  # fmt: skip
    record["notes"].append(f"Verdict: {verdict}.")
    return card.to_frame(), record
