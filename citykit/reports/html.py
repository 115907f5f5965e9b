"""What a report looks like to its readers: accessible HTML, tables as CSV/XLSX, PDF.

The report kernel gives every figure alt text (output metadata `image/png.alt`) and records every
displayed DataFrame as a table (mimetype `application/vnd.citykit.table+json`); see
`citykit.reports.figures` and `citykit.reports.kernel`. From the executed notebook, `render_html`
exports the page with the `report` nbconvert template (`citykit/resources/templates/report/`:
`<html lang="en">`, no code, no scripts from the network, alt text on every image),
`collect_tables` and `write_tables` write each table as CSV and all of them in one XLSX workbook,
and `print_pdf` prints the HTML with the system's headless Chromium.

Tables for people (`citykit.reports.tables`): a table published with `publish_table`, and every
table of a production report (`people=True`), is shown with plain headings and formatted numbers,
its first rows when it is long, its notes, and a link to its CSV; that CSV and the workbook sheet
carry the same headings, rows and marks. Other tables keep pandas' rendering and get the link.
The page has one stylesheet (`citykit.css` beside the template: a readable measure, print rules
that repeat table headers and never split a row across pages) and a header band with the title,
the parameters, the period, the data's as-of date and the generation time.

Accessibility aims at WCAG 2.1 AA basics (the level the 2024 ADA Title II rule requires of city web
content): a page language, one h1 and a heading outline, header cells on tables, alt text on images.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.errors import CitykitError, WorkFailed
from citykit.reports.figures import TABLE_MIME
from citykit.reports.params import slugify
from citykit.reports.tables import table_html

TEMPLATES = "templates"  # under citykit/resources/
CHROMIUM_CANDIDATES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Table:
    name: str
    csv: str
    index_levels: int = 1
    header_rows: int = 1
    people: dict | None = None  # the table as shown to people (citykit.reports.tables); csv is then its CSV
    display: str = "table"  # "key-figures": the page shows tiles, the table goes to the CSV and workbook
    title: str = ""  # the table's name as published ("Requests by agency"): its sheet's name in the workbook

    def frame(self):
        import pandas as pd

        return pd.read_csv(
            io.StringIO(self.csv),
            index_col=list(range(self.index_levels)) if self.index_levels else None,
            header=list(range(self.header_rows)) if self.header_rows > 1 else 0,
        )

    def file_name(self, number: int) -> str:
        return f"{number:02d}-{self.name}.csv"


def _last_heading(text: str) -> str | None:
    """The last heading (or bold lead-in not starting with a number) in a piece of markdown."""
    found = None
    for line in str(text).splitlines():
        m = re.match(r"^\s*#{1,6}\s+(.+?)\s*#*$", line) or re.match(r"^\s*\*\*([^0-9*][^*]*)\*\*", line)
        if m:
            found = re.sub(r"[*_`]", "", m[1]).strip()
    return found


def _headings_and_outputs(nb):
    """Walk the notebook: (heading above, cell, output) for every output, headings kept current."""
    heading = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = _last_heading(cell.source) or heading
            continue
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                heading = _last_heading(str(markdown)) or heading
            yield heading, cell, output


def collect_tables(nb, people: bool = False) -> list[Table]:
    """Every table the notebook displayed, named by publish_table or by the heading above it.

    people: show every table for people (a production report), not only those published with
    publish_table; such a table's CSV is the people's CSV (same headings, rows and marks as the page).
    """
    return [table for _, table in _table_outputs(nb, people)]


def _table_outputs(nb, people: bool):
    """(output, Table) for every recorded table, in page order, with unique names."""
    used: set[str] = set()
    for heading, _, output in _headings_and_outputs(nb):
        record = output.get("data", {}).get(TABLE_MIME)
        if not record:
            continue
        base = _shorten(slugify(record.get("name") or heading or "table"), 40)
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        shown = record.get("people") if (people or record.get("published")) else None
        if shown:
            table = Table(name, shown["csv"], int(shown.get("row_headers", 0)), 1, dict(shown),
                          str(record.get("display", "table")), str(record.get("name") or heading or ""))  # fmt: skip
        else:
            table = Table(name, record["csv"], int(record.get("index_levels", 1)), int(record.get("header_rows", 1)),
                          title=str(record.get("name") or heading or ""))  # fmt: skip
        yield output, table


def _shorten(slug: str, limit: int) -> str:
    """A slug cut to `limit` characters at a word boundary where there is one."""
    if len(slug) <= limit:
        return slug
    cut = slug[: limit + 1]
    return cut[: cut.rfind("-")] if "-" in cut else slug[:limit]


# What the disaggregation standard's marks mean, for tables read away from the page.
MARKS = {
    "≤10": "a count from 1 to 10, hidden so that nobody can be identified (small-cell rule)",
    "†": "hidden so that a small count cannot be worked out from the other figures; it may be of any size"
    " (it protects the small counts: a number above 10 behind it may follow from other figures)",
    "‡": "row withheld: any number, 0 included (it protects the table's small counts, not itself)",
}
LEGEND = "legend"  # legend.csv beside the tables
LEGEND_SHEET = "Legend"  # its sheet in the workbook
SHEET_LIMIT = 31  # Excel's longest sheet name


def sheet_names(tables: list[Table]) -> list[str]:
    """A readable, unique sheet name of at most 31 characters for each table: its published name
    ("Requests by agency"), cut at a word, without the characters Excel refuses ([]:*?/\\)."""
    used = {LEGEND_SHEET.casefold()}
    names = []
    for table in tables:
        text = (table.title or table.name.replace("-", " ")).replace(":", " -")
        text = re.sub(r"\s+", " ", re.sub(r"[\[\]*?/\\]", " ", text)).strip()
        text = (text[:1].upper() + text[1:]) or "Table"
        base = _cut_at_word(text, SHEET_LIMIT)
        name, n = base, 2
        while name.casefold() in used:  # Excel compares sheet names without case
            suffix = f" ({n})"
            name, n = _cut_at_word(base, SHEET_LIMIT - len(suffix)) + suffix, n + 1
        used.add(name.casefold())
        names.append(name)
    return names


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    cut = cut[: cut.rfind(" ")] if " " in cut[1:] else text[:limit]
    words = cut.split(" ")
    while len(words) > 1 and words[-1].lower().strip(",;") in _SMALL_WORDS:  # never end on "the", "of", ...
        words.pop()
    return " ".join(words).rstrip(" ,;.-–(") or text[:limit]


_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "data", "for", "in", "of", "on", "or", "the", "to", "with"}


def write_tables(tables: list[Table], folder: Path, workbook: Path) -> list[Path]:
    """Each table as `folder/NN-name.csv`, and all of them as sheets of one XLSX workbook; when any
    carries a suppression mark, a legend of the marks goes with them (legend.csv and a sheet)."""
    import pandas as pd

    written: list[Path] = []
    if not tables:
        return written
    folder.mkdir(parents=True, exist_ok=True)
    for number, table in enumerate(tables, start=1):
        path = folder / f"{number:02d}-{table.name}.csv"
        path.write_text(table.csv, encoding="utf-8")
        written.append(path)
    marks = {mark: meaning for mark, meaning in MARKS.items() if any(mark in table.csv for table in tables)}
    legend = pd.DataFrame(
        {"Mark": list(marks), "Meaning": list(marks.values())},
    ).assign(Source="the city's disaggregation standard (curriculum/standards/disaggregation.yml)")
    if marks:
        path = folder / f"{LEGEND}.csv"
        legend.to_csv(path, index=False)
        written.append(path)
    with pd.ExcelWriter(workbook, engine="openpyxl") as xlsx:
        for table, sheet in zip(tables, sheet_names(tables), strict=True):
            table.frame().to_excel(xlsx, sheet_name=sheet, index=table.index_levels > 0)
            if table.people:
                _number_formats(xlsx.sheets[sheet], table.people)
        if marks:
            legend.to_excel(xlsx, sheet_name=LEGEND_SHEET, index=False)
    written.append(workbook)
    return written


EXCEL_FORMATS = {"count": "#,##0", "share": '0.0"%"', "percent": '0.0"%"', "rate": "#,##0.0", "days": "#,##0.0",
                 "ratio": "0.00"}  # fmt: skip


def _number_formats(sheet, record: dict) -> None:
    """Excel shows the numbers as the page does: 60,248 · 85.3% · 14.2 (the cells stay numbers)."""
    from openpyxl.utils import get_column_letter

    for position, column in enumerate(record["columns"], start=1):
        fmt = EXCEL_FORMATS.get(column["kind"])
        letter = get_column_letter(position)
        sheet.column_dimensions[letter].width = min(max(len(column["label"]) + 2, 12), 48)
        if fmt:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=position, max_col=position):
                if isinstance(cell.value, (int, float)):
                    cell.number_format = fmt


def ensure_alt_text(nb) -> None:
    """Give every image output alt text: its own, the cell's `alt` metadata, or the heading above it."""
    figure = 0
    for heading, cell, output in _headings_and_outputs(nb):
        for mime in ("image/png", "image/jpeg", "image/svg+xml"):
            if mime not in output.get("data", {}):
                continue
            figure += 1
            meta = output.setdefault("metadata", {}).setdefault(mime, {})
            if not meta.get("alt"):
                meta["alt"] = cell.get("metadata", {}).get("alt") or (
                    f"Chart: {heading}" if heading else f"Chart {figure} of the report"
                )


def header_cell_text(title: str, parameters: dict[str, Any], dataset: dict[str, Any] | None, generated: str,
                     period: dict[str, Any] | None = None) -> str:  # fmt: skip
    """Markdown stating the report's parameters, its period (labelled "partial (to DATE)" when it runs
    past the data's as-of date, with the same days of the period before that it is compared with)
    and the data's as-of date."""
    empty = {"neighborhood": "citywide", "period": "all periods"}
    shown = " · ".join(
        f"{k} = {empty.get(k, 'none') if v is None else (period['title'] if period and v == period['label'] else v)}"
        for k, v in parameters.items()
    )
    lines = [f"**Parameters:** {shown or 'none'}  "]
    if period:
        before = period["compared_with"]
        lines.append(
            f"**Period:** {period['title']}: {_day(period['start'])} to {_day(period['last_day'])}"
            + (f"; a comparison with the period before uses the same days of it, {_day(before['start'])} to "
               f"{_day(before['last_day'])}" if period.get("partial") else "") + "  "
        )  # fmt: skip
    if dataset:
        lines.append(
            f"**Data:** {dataset.get('title') or dataset['name']}, as of {dataset['as_of']}"
            + (" (synthetic)" if dataset.get("synthetic") else "")
            + "  "
        )
    lines.append(f"**Generated:** {generated}")
    return "\n".join(lines)


def _day(iso: str) -> str:
    """`2025-10-01` -> `1 October 2025`."""
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


HEADER_TAG = "citykit-header"  # the header band's cell (the template renders it as <header>)


def render_html(nb, title: str, header_markdown: str, people: bool = False, workbook: str | None = None) -> str:
    """The reader's page: no code, a language, one h1 in a header band with the report's facts,
    alt text on images, tables for people (every table with `people`, else the published ones),
    each linked to its CSV under `tables/`."""
    from nbformat.v4 import new_markdown_cell

    nb = copy.deepcopy(nb)
    ensure_alt_text(nb)
    if _present_tables(nb, people) and workbook:
        header_markdown += (
            f"  \n**Tables:** every table as CSV (linked under it) and all in one workbook, [{workbook}]({workbook})"
        )
    first_h1 = next(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and re.search(r"^#\s", c.source, re.M)), None
    )
    if first_h1 is None:
        h1, position = title, 0
    else:
        cell = nb.cells[first_h1]
        found = re.search(r"^#\s+(.+?)\s*#*\s*$", cell.source, re.M)
        h1 = found[1].strip()
        cell.source = (cell.source[: found.start()] + cell.source[found.end() :]).strip("\n")
        position = first_h1
        if not cell.source.strip():
            del nb.cells[first_h1]
    header = new_markdown_cell(f"# {h1}\n\n{header_markdown}", metadata={"citykit": {"header": True},
                                                                        "tags": [HEADER_TAG]})  # fmt: skip
    nb.cells.insert(position, header)
    nb.metadata["title"] = title
    body, _ = _exporter().from_notebook_node(nb, resources={"language_code": "en"})
    return body


def _present_tables(nb, people: bool) -> int:
    """Each recorded table's output becomes the people's table (or keeps pandas' HTML) with a link
    to its CSV; key-figure tiles stay tiles. Returns how many tables the page has."""
    number = 0
    for number, (output, table) in enumerate(_table_outputs(nb, people), start=1):
        href = f"tables/{table.file_name(number)}"
        link = f"the table as CSV ({table.file_name(number)})"
        data = output.setdefault("data", {})
        if table.display == "key-figures":
            continue
        if table.people:
            data["text/html"] = table_html(table.people, href, link)
            for mime in ("text/markdown", "text/latex"):
                data.pop(mime, None)
        elif "text/html" in data:
            html = data["text/html"]
            html = "".join(html) if isinstance(html, list) else str(html)
            data["text/html"] = (
                f'{html}<p class="ck-table-links">Download: <a href="{escape(href)}">{escape(link)}</a></p>'
            )
    return number


_exporters: dict[str, Any] = {}
NO_ALT = "No description has been provided for this image"  # nbconvert's alt for an image without one
FOCUSABLE = ("jp-Cell-inputWrapper", "jp-OutputArea-output")  # nbconvert gives these divs tabindex="0"
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt\s*=)", re.I)
_DIV_OPEN = re.compile(r"<div\b[^>]*>", re.I)
_CLASS = re.compile(r"""\sclass\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_TABINDEX = re.compile(r"\stabindex\s*=", re.I)


def _img_alt_default(html: str) -> tuple[str, int]:
    """nbconvert's default alt on every <img> without alt (the report kernel gives every figure its
    own; this is the guard for any other image, e.g. in a text/html or SVG output)."""
    return _IMG_WITHOUT_ALT.subn(f'<img alt="{NO_ALT}"', html)


def _focusable_div(tag: str) -> bool:
    """Whether an opening <div> tag of a class in FOCUSABLE lacks tabindex."""
    found = _CLASS.search(tag)
    if not found or _TABINDEX.search(tag):
        return False
    return any(c in FOCUSABLE for c in (found[1] or found[2] or found[3] or "").split())


def _focusable_default(html: str) -> str:
    """tabindex="0" on every input wrapper and output div that lacks it (the template's and those an
    output's own HTML brings), as nbconvert's BeautifulSoup pass gives them: keyboard users reach each."""
    return _DIV_OPEN.sub(lambda m: m[0][:4] + ' tabindex="0"' + m[0][4:] if _focusable_div(m[0]) else m[0], html)


def _exporter():
    """One HTMLExporter per process: its template is compiled once, not once per report."""
    if "html" not in _exporters:
        from nbconvert import HTMLExporter
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        class ReportExporter(HTMLExporter):
            def _validate_preprocessor(self, nbc, preprocessor) -> None:
                """nbconvert validates the whole notebook against its schema after each of its 12
                preprocessors (a seventh of a page's export); the executed notebook was validated
                when the runner wrote it, and these preprocessors only trim and restyle it."""

            def from_notebook_node(self, nb, resources=None, **kw):
                """HTMLExporter's export (nbconvert 7.17) without its BeautifulSoup round trip (two
                thirds of a page's export): `_focusable_default` gives the inputs and outputs their
                tabindex="0" and `_img_alt_default` gives an image without alt text nbconvert's
                default, so the document is the same (tests/reports/test_page_document.py)."""
                langinfo = nb.metadata.get("language_info", {})
                lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
                highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
                resources = self._init_resources(resources)
                filter_data_type = WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources
                )
                self.register_filter("highlight_code", highlight_code)
                self.register_filter("filter_data_type", filter_data_type)
                html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
                html, missing = _img_alt_default(html)
                if missing:
                    self.log.warning("Alternative text is missing on %s image(s).", missing)
                return _focusable_default(html), resources

        _exporters["html"] = ReportExporter(
            template_name="report",
            extra_template_basedirs=[str(paths.resource(TEMPLATES))],
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
        )
    return _exporters["html"]


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, timeout: float = 120) -> None:
    """Print the HTML to PDF with headless Chromium; `CitykitError` when none is installed."""
    chromium = find_chromium()
    if chromium is None:
        raise CitykitError("--pdf needs headless Chromium (apt-get install chromium); it is not installed")
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}", html.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not pdf.exists():
        raise WorkFailed(f"Chromium could not print {html.name} to PDF: {done.stderr.strip()[-300:]}")


def index_page(title: str, rows: list[dict[str, str]], summary: str) -> str:
    """An accessible index of a batch: one h1, a table with header cells, links to each report."""
    body = "\n".join(
        '<tr><th scope="row">{value}</th><td>{status}</td><td>{seconds}</td><td>{link}</td></tr>'.format(
            value=escape(r["value"]),
            status=escape(r["status"]),
            seconds=escape(r["seconds"]),
            link=f'<a href="{escape(r["href"])}">{escape(r["label"])}</a>'
            if r.get("href")
            else escape(r.get("error", "")),
        )
        for r in rows
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #767676; padding: .4rem .6rem; text-align: left; }}
thead th {{ background: #f0f0f0; }}
a {{ color: #0b57d0; }}
</style></head>
<body><main>
<h1>{escape(title)}</h1>
<p>{escape(summary)}</p>
<table>
<caption>Reports in this folder</caption>
<thead><tr><th scope="col">Value</th><th scope="col">Status</th><th scope="col">Seconds</th><th scope="col">Report</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
</main></body></html>
"""


def manifest_json(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
