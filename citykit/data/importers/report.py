"""The import report: what an import did and found, with the quality scorecard, as Markdown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from citykit.data.importers.canonical import DateWindow, Findings
from citykit.data.importers.mapping import CANONICAL_INPUTS, Mapping
from citykit.data.importers.personal import SAMPLE_ROWS, TEXT_CAP, content_reason, name_reason, shorten
from citykit.data.importers.reader import Header, Malformed, stream
from citykit.data.quality import scorecard
from citykit.errors import CitykitError
from citykit.files import atomic_write

REPORT_FILE = "import_report.md"
SCORECARD_MAX_ROWS = 3_000_000  # larger imports point to `citykit data check NAME` instead
SCORED_COLUMNS = ("request_id", "created_at", "closed_at", "due_at", "status", "request_type", "channel",
                  "neighborhood", "latitude", "longitude", "is_duplicate", "parent_request_id", "flag_type_variant")  # fmt: skip

# What each flag means for the metrics (curriculum/standards/metrics.yml decides exclusions).
FLAG_MEANING = {
    "flag_closed_before_created": "excluded from time to close and on-time figures (the close date cannot be trusted)",
    "flag_placeholder_date": "excluded from time to close and on-time figures (a placeholder date such as "
    "1900-01-01, or a date outside the plausible range)",
    "flag_placeholder_coords": "0,0, a placeholder point or outside the city: kept in counts, left off maps and spatial joins",
    "flag_type_variant": "spelling variant mapped to its standard name: counted under that name",
    "flag_missing_neighborhood": "no neighborhood: in citywide figures, missing from every per-neighborhood figure",
}


@dataclass
class ImportResult:
    """What `import_requests` did, and the report it printed and saved."""

    name: str
    source: str
    folder: Path
    as_of: dt.date
    rows: int  # rows in the dataset after the import
    rows_read: int
    added: int
    updated: int
    flags: dict[str, int]
    findings: Findings
    report: str
    scorecard_summary: str = ""
    extract_date: dt.date | None = None  # the day the export was taken (drives the timeliness gate)
    extract_date_given: bool = False  # --extract-date, or else the file's own date
    as_of_inferred: bool = False  # no --as-of: the newest plausible record
    after_extract: int = 0  # requests with a timestamp after the extract date (implausible)

    def __str__(self) -> str:
        return self.report


def score(
    final: Path, as_of: dt.date, mapping: Mapping, rows: int, extract_date: dt.date | None = None
) -> tuple[str, str]:
    """The quality scorecard of the final table: its one-line summary, and the report's table."""
    if rows > SCORECARD_MAX_ROWS:
        return "", "(large import: run `citykit data check NAME` for the full scorecard)"
    try:  # the columns the checks read (a third less memory than the whole table)
        card = scorecard(pd.read_parquet(final, columns=list(SCORED_COLUMNS)), "service_requests", as_of,
                         bounds=mapping.bounds, extract_date=extract_date)  # fmt: skip
    except KeyError:  # a check reading another column: the whole table
        card = scorecard(pd.read_parquet(final), "service_requests", as_of, bounds=mapping.bounds,
                         extract_date=extract_date)  # fmt: skip
    frame = card.to_frame()
    lines = [f"| {r.dimension} | {r.name} | {r.failing:,} | {r.share:.2%} | {r.result} |" for r in frame.itertuples()
             if r.value is None or pd.isna(r.value)]  # fmt: skip
    lines += [f"| {r.dimension} | {r.name} | {r.value:.1f} days |  | {r.result} |" for r in frame.itertuples()
              if r.value is not None and not pd.isna(r.value)]  # fmt: skip
    table = "| dimension | check | rows | share | gate |\n|---|---|---:|---:|---|\n" + "\n".join(lines)
    return card.summary(), f"{table}\n\n{card.summary()}"


def _dates(result: ImportResult) -> list[str]:
    """The two dates, each with where it came from."""
    lines = []
    if result.extract_date is not None:
        source = (
            "given with --extract-date"
            if result.extract_date_given
            else ("the file's own modification date, as no --extract-date was given")
        )
        lines.append(f"- Extract date: {result.extract_date} ({source}); timeliness measures the newest "
                     "record against it")  # fmt: skip
    how = (
        (
            "inferred: the newest created or closed date within the plausible range below (never a flagged date); "
            "give --as-of to set it"
        )
        if result.as_of_inferred
        else "given with --as-of"
    )
    lines.append(f"- As-of date: {result.as_of} ({how}); every \"now\" in an analysis of this dataset: "
                 "ages, backlog, default periods")  # fmt: skip
    if result.after_extract:
        lines.append(f"- Requests dated after the extract date (implausible; flagged, never used as a date): "
                     f"{result.after_extract:,}")  # fmt: skip
    return lines


def _plausible(f: Findings, window: DateWindow) -> list[str]:
    """The plausible range of the timestamps, and what fell outside it."""
    line = f"- Plausible dates: {window.describe()}; "
    if not f.implausible:
        return [line + "every timestamp lies within"]
    counts = ", ".join(f"{stamp} {n:,} (e.g. {f.implausible_examples[stamp]})" for stamp, n in f.implausible.items())
    line += (f"outside it: {counts}; their rows carry flag_placeholder_date, and no such date becomes the "
             "as-of date")  # fmt: skip
    if f.unpublishable:
        held = ", ".join(f"{stamp} {n:,}" for stamp, n in f.unpublishable.items())
        line += (f"; dates after 2261 or before 1678, which analysis tools cannot hold, are not published "
                 f"({held}): a closed or due date is left empty, a created date becomes the placeholder 1900-01-01")  # fmt: skip
    return [line]


def _written(final: Path, mapping: Mapping, header: Header, found: dict[str, str], file: Path) -> list[str]:
    """What the published table holds, read back from the written file, and the export's columns it
    does not: never the mapping's intentions."""
    written = pq.read_schema(final).names
    listed = (*mapping.personal_columns, *mapping.defects.values())
    sources = {column: found[column] for column in written if column in found and not column.startswith("defect:")}
    leaked = {c: s for c, s in sources.items() if c not in ("status", "channel") and name_reason(s, listed)}
    if leaked:  # the mapping check refuses these before anything is read; a second guard
        raise CitykitError(f"the published table holds personal columns: {', '.join(leaked.values())}")
    mapped = ", ".join(f"{c} <- {shorten(s)}" for c, s in sources.items())
    empty = [c for c in written if c not in sources and c in CANONICAL_INPUTS]  # no column in this export
    computed = [c for c in written if c not in sources and c not in CANONICAL_INPUTS]  # flags, is_duplicate
    read_only = sorted({found[k] for k in found if k.startswith("defect:")})
    published = set(sources.values())
    left = [c for c in header.names if c not in published]
    personal = _personal(file, header, left, listed)
    lines = [
        f"- Published columns (read back from {final.name}), each with the export column it came from: {mapped}; "
        f"set by the import: {', '.join(computed)}" + (f"; empty (no column in this export): {', '.join(empty)}" if empty else ""),
        f"- Not published: {', '.join(left) or 'none'}"
        + (f" (read only to count defects and repeats, never published: {', '.join(read_only)})" if read_only else ""),
        f"- Of those, personal under the standard (names, phones, e-mails, addresses, free text): "
        f"{', '.join(personal) or 'none found'}",
    ]  # fmt: skip
    return lines


def _capped(f: Findings) -> str:
    cut = sum(f.text_cut.values())
    where = f" ({', '.join(f'{c} {n:,}' for c, n in f.text_cut.items())})" if cut else ""
    return (f"- Text capped at {TEXT_CAP} characters (request_id, agency, request_type, descriptor, neighborhood, "
            f"parent_request_id; a longer id keeps its start and a hash): {cut:,} values cut{where}")  # fmt: skip


def _personal(file: Path, header: Header, columns: list[str], listed: tuple[str, ...]) -> list[str]:
    """The unpublished columns that are personal by their name or by the content of their first rows."""
    by_name = {c for c in columns if name_reason(c, listed)}
    rest = [c for c in columns if c not in by_name]
    sample = next(iter(stream(file, header, rest, Malformed())), None) if rest else None
    by_content = {c for c in rest if sample is not None and c in sample and content_reason(sample[c].head(SAMPLE_ROWS))}
    return [c for c in columns if c in by_name or c in by_content]


def render_report(
    result: ImportResult, mapping: Mapping, file: Path, header: Header, malformed: Malformed,
    stats: dict[str, Any], scorecard_text: str, found: dict[str, str], final: Path, window: DateWindow,
) -> str:  # fmt: skip
    f = result.findings
    rows = max(result.rows, 1)
    lines = [
        f"# Import report: {result.name}",
        "",
        f"- Source: {mapping.title} (mapping `{mapping.path.name if mapping.path else mapping.source}`)",
        f"- File: {file.name} ({header.encoding}, delimiter {header.delimiter!r}); the file was only read, never changed",
        f"- Rows read: {f.rows_read:,}; dataset now holds {result.rows:,} requests "
        f"({result.added:,} added, {result.updated:,} updated by request id)",
        *_dates(result),
        *_plausible(f, window),
        *_written(final, mapping, header, found, file),
        f"- Anonymized: coordinates rounded to about 100 m; {f.sensitive_blanked:,} requests of sensitive types "
        "published without coordinates",
        _capped(f),
        "",
        "## Flags (rows kept, flagged, counted)",
        "",
        "| flag | rows | share | what it means for the metrics |",
        "|---|---:|---:|---|",
    ]
    for flag, n in result.flags.items():
        lines.append(f"| {flag} | {n:,} | {n / rows:.2%} | {FLAG_MEANING[flag]} |")
    lines += ["", "## Other findings", ""]
    located = f"{f.zero_coords:,} at 0,0"
    points = ", ".join(f"{n:,} at {p}" for p, n in f.placeholder_points.items() if n)
    lines.append(f"- Placeholder coordinates: {located}{'; ' + points if points else ''}; "
                 f"{f.outside_city:,} other points outside the city's bounds (all in flag_placeholder_coords)")  # fmt: skip
    if f.type_variants:
        shown = "; ".join(f"{shorten(raw)} -> {shorten(std)}" for raw, std in list(f.type_variants.items())[:6])
        lines.append(f"- Request type spellings mapped to a standard name ({len(f.type_variants)}): {shown}")
    else:
        lines.append("- Request type spellings: no variants found")
    if f.descriptor_variants:
        shown = "; ".join(f"{shorten(raw)} ~ {shorten(std)}" for raw, std in list(f.descriptor_variants.items())[:6])
        lines.append(f"- Descriptor spellings that differ only in case or spacing ({len(f.descriptor_variants)}, "
                     f"kept as exported; group them before counting by descriptor): {shown}")  # fmt: skip
    lines.append(f"- Marked duplicates (is_duplicate, from the export's own marks): {f.marked_duplicate:,}; "
                 "excluded from time-to-close, the parent request counts")  # fmt: skip
    lines.append(f"- Rows repeating a request id: {stats['duplicate_ids']:,} (the last row in the file kept)")
    lines.append(f"- Likely repeats (same address, type and day; not marked, not removed): {stats['repeats']:,}")
    if f.zip_checked:
        junk = sum(f.zip_junk.values())
        lines.append(f"- ZIP codes that are not 5-digit ZIPs: {junk:,} of {f.zip_checked:,} "
                     f"(e.g. {', '.join(shorten(z) for z, _ in f.zip_junk.most_common(3)) or 'none'}); ZIPs are not published")  # fmt: skip
    if f.channel_default:
        shown = ", ".join(f"{shorten(k)} {v:,}" for k, v in f.channel_default.most_common(5))
        lines.append(f"- Channels not in the canonical list, published as {mapping.channel_default}: {shown}")
    for name, n in f.missing_required.items():
        if n:
            lines.append(f"- Missing {name}: {n:,} rows published as 'Unknown'")
    if f.invalid_district:
        lines.append(f"- Council districts that are not a district number (published empty): {sum(f.invalid_district.values()):,} "
                     f"(e.g. {', '.join(shorten(v) for v, _ in f.invalid_district.most_common(3))})")  # fmt: skip
    for stamp, n in f.unreadable.items():
        lines.append(f"- Unreadable {stamp} values: {n:,} (e.g. {shorten(f.unreadable_examples[stamp])}); left empty")
    if f.no_created:
        lines.append(f"- Rows without a request id or a readable created date, not imported: {f.no_created:,}")
    if malformed.count:
        lines.append(f"- Malformed rows skipped: {malformed.count:,} ({'; '.join(malformed.examples)})")
    if f.clock_times:
        seconds, n = f.clock_times.most_common(1)[0]
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        share = n / max(sum(f.clock_times.values()), 1)
        if share >= 0.02:
            lines.append(f"- {share:.1%} of requests were created at exactly {clock}: date-only stamps or a "
                         "time-zone shift; hour-of-day figures will mislead")  # fmt: skip
    lines += ["", "## Quality scorecard", "", scorecard_text, ""]
    return "\n".join(lines)


# -- program applications (`citykit data import-applications`) ---------------------------------------

APPLICATIONS_HEADING = "## Program applications"  # its section of the dataset's import report


@dataclass
class ApplicationsImport:
    """What `citykit.data.population.import_applications` read, dropped, found and published."""

    file: Path
    mapping: Path
    program: str
    columns: dict[str, str]  # canonical column -> the export's column it was read from
    export_columns: list[str]  # the export's header, in order
    personal: dict[str, str]  # unmapped export columns that are personal -> why (name or content)
    rows_read: int
    published: Path  # the person-level table as written (read back for its columns)
    rows_published: int
    findings: dict[str, int]  # what was wrong in some rows (kept, the value left empty) -> rows
    ids_fresh: int  # published ids (keyed hashes)
    ids_equal_raw: int  # published ids equal to an export id (0: ids are fresh)
    k_anonymity: Any  # citykit.standards.kanonymity.KAnonymityReport
    aggregate: Path
    aggregate_rows: int
    aggregate_hidden: int  # counts hidden in the aggregate table
    aggregate_only: list[str]  # columns published only in the aggregate table
    as_of: dt.date | None  # the dataset's as-of date (from its 311 import)
    months: tuple[str, str] | None  # first and last month of submission published


def render_applications_report(r: ApplicationsImport) -> str:
    """The applications section of `import_report.md`, in the 311 report's words."""
    k = r.k_anonymity
    written = pq.read_schema(r.published).names
    mapped = ", ".join(f"{c} <- {shorten(s)}" for c, s in r.columns.items())
    not_imported = [c for c in r.export_columns if c not in set(r.columns.values())]
    steps = "; ".join(f"{name} {n:,}" for name, n in k.generalised.items() if n) or "none"
    rule = f", and no group of {k.uniform_max} or fewer sharing one {k.outcome}" if k.outcome and k.uniform_max else ""
    as_of = (f"{r.as_of} (the dataset's, from its 311 import): every \"now\" in an analysis of these applications"
             if r.as_of else "none (the dataset has no as-of date)")  # fmt: skip
    months = f"; submitted from {r.months[0]} to {r.months[1]} (months)" if r.months else ""
    lines = [
        APPLICATIONS_HEADING,
        "",
        f"- Program: {r.program}; file: {r.file.name} (mapping `{r.mapping.name}`); the file was only read, never changed",
        f"- Rows read: {r.rows_read:,}; rows published: {r.rows_published:,} (in {r.published.name}){months}",
        f"- As-of date: {as_of}",
        f"- Columns read, each with the export column it came from: {mapped}",
        f"- Published in the rows (read back from {r.published.name}): {', '.join(written)}",
        f"- Published only in the aggregate table ({r.aggregate.name}, {r.aggregate_rows:,} rows, "
        f"{r.aggregate_hidden:,} counts hidden under the small-number rules): {', '.join(r.aggregate_only) or 'none'}",
        f"- Columns not imported (never published): {', '.join(not_imported) or 'none'}",
        "- Of those, personal (dropped: names, phones, e-mails, addresses, dates of birth, free text): "
        + ("; ".join(f"{c} ({why})" for c, why in r.personal.items()) or "none found"),
        f"- Ids made fresh: {r.ids_fresh:,} application ids published as keyed hashes (new for each export), "
        f"{r.ids_equal_raw:,} equal to an export id",
        f"- k-anonymity (k={k.k}{rule}; standard {k.standard_version}) over {', '.join(k.quasi_identifiers)}: "
        f"{k.rows_in:,} rows in, {k.rows_out:,} published; rows generalised, per step: {steps}; "
        f"rows suppressed (dropped): {k.suppressed:,}; smallest group published: "
        f"{k.smallest_class if k.smallest_class is not None else 'none (no rows)'}",
        "",
        "| finding (rows kept, counted) | rows | share |",
        "|---|---:|---:|",
    ]
    found = {what: n for what, n in r.findings.items() if n}
    lines += [f"| {what} | {n:,} | {n / max(r.rows_read, 1):.2%} |" for what, n in found.items()]
    if not found:
        lines.append("| none | 0 | 0.00% |")
    return "\n".join(lines) + "\n"


def write_report_section(folder: Path, section: str, heading: str = APPLICATIONS_HEADING) -> Path:
    """Put `section` (starting with `heading`) at the end of the dataset's import report, in place of
    an earlier section under that heading (the 311 report before it is kept as it is)."""
    path = folder / REPORT_FILE
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = before.split(f"\n{heading}\n", 1)[0] if not before.startswith(f"{heading}\n") else ""
    atomic_write(path, (kept.rstrip() + "\n\n" if kept.strip() else "") + section)
    return path


def kept_section(path: Path, heading: str = APPLICATIONS_HEADING) -> str:
    """The section under `heading` of an existing import report (with a blank line before it), or "":
    a re-import of the 311 export rewrites its report and keeps the applications' part, as it keeps
    their table."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    at = text.find(f"\n{heading}\n")
    return "\n" + text[at + 1 :] if at >= 0 else ""
