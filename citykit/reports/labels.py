"""Plain-language headings for report tables: what a director reads instead of a column name.

    heading("closed_requests")        # "Closed requests"
    heading("flag_missing_neighborhood")  # "No neighborhood"
    heading("some_new_measure")       # "Some new measure" (never a snake_case name)

The label of a column comes, in order, from: the `title` of its field in the data dictionary
(`datasets/datapackage.json`, when the field has one); `COLUMNS` below, one label for every
column of the published tables (a test keeps it in step with the data package) and for the
measures the course's notebooks derive from them; and otherwise the name made readable
(underscores to spaces, first letter capital). A heading that already reads as words
("Closed within target (%)") is kept as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache

SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")  # a column name, not a heading

# The published tables' columns (datasets/datapackage.json), as headings for people.
CANONICAL = {
    # service_requests
    "request_id": "Request number",
    "created_at": "Received",
    "closed_at": "Closed",
    "due_at": "Due (service-level target)",
    "status": "Status",
    "agency": "Agency",
    "request_type": "Request type",
    "descriptor": "Request detail",
    "channel": "Channel",
    "neighborhood": "Neighborhood",
    "council_district": "Council district",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "is_duplicate": "Duplicate",
    "parent_request_id": "Duplicate of request",
    "flag_closed_before_created": "Closed before received",
    "flag_placeholder_date": "Placeholder close date",
    "flag_placeholder_coords": "Placeholder location",
    "flag_type_variant": "Request type misspelled",
    "flag_missing_neighborhood": "No neighborhood",
    # neighborhoods
    "population": "Residents",
    "households": "Households",
    "median_household_income": "Median household income",
    "area_km2": "Area (km²)",
    "pop_aian": "American Indian or Alaska Native",
    "pop_asian": "Asian",
    "pop_black": "Black or African American",
    "pop_hispanic": "Hispanic or Latino",
    "pop_mena": "Middle Eastern or North African",
    "pop_nhpi": "Native Hawaiian or Pacific Islander",
    "pop_white": "White",
    "pop_multiracial": "Multiracial and/or Multiethnic",
    # program_applications
    "application_id": "Application number",
    "program": "Program",
    "submitted_at": "Submitted",
    "decided_at": "Decided",
    "outcome": "Decision",
    "age_band": "Age",
    "gender": "Gender",
    "race_aian": "American Indian or Alaska Native",
    "race_asian": "Asian",
    "race_black": "Black or African American",
    "race_hispanic": "Hispanic or Latino",
    "race_mena": "Middle Eastern or North African",
    "race_nhpi": "Native Hawaiian or Pacific Islander",
    "race_white": "White",
    "race_not_reported": "Race not reported",
    "race_declined": "Race declined",
    "household_size": "Household size",
    "income_band": "Income (share of area median)",
    "language": "Language",
    # program_applications_aggregates (columns published only in aggregate)
    "column": "Characteristic",
    "applications": "Applications",
    "approved": "Approved",
    "denied": "Denied",
    "withdrawn": "Withdrawn",
    "pending": "Pending",
    "hidden": "Hidden (small numbers)",
    # boundaries
    "geometry": "Boundary",
}

# Measures the notebooks derive, and the columns of the kit's own tables (equity, quality, changes).
DERIVED = {
    "race_alone": "Race and ethnicity (alone)",
    "race_in_combination": "Race and ethnicity (alone or in combination)",
    "race_alone_or_in_combination": "Race and ethnicity (alone or in combination)",
    "income_group": "Income group",
    "requests": "Requests",
    "n_requests": "Requests",
    "closed_requests": "Closed requests",
    "open_requests": "Open requests",
    "median_days": "Median days to close",
    "p90_days": "90th percentile days to close",
    "mean_days": "Mean days to close",
    "share_within_sla": "Closed within target",
    "within_sla": "Closed within target",
    "on_time": "On time",
    "per_1000": "Requests per 1,000 residents",
    "requests_per_1000": "Requests per 1,000 residents",
    "rate_per_1000": "Rate per 1,000 residents",
    "month": "Month",
    "week": "Week",
    "year": "Year",
    "day": "Day",
    "date": "Date",
    "age": "Age",
    "note": "Note",
    "rank": "Rank",
    "defect": "Defect",
    "share": "Share",
    "count": "Count",
    "total": "Total",
    "n": "Number",
    "events": "With the outcome",
    "rate": "Rate",
    "rate_low": "Rate, low end of interval",
    "rate_high": "Rate, high end of interval",
    "rate_ratio": "Ratio to the reference group",
    "rr_low": "Ratio, low end of interval",
    "rr_high": "Ratio, high end of interval",
    "rr_p_adjusted": "p-value (corrected)",
    "ratio of proportions": "Ratio to the reference group",
    "rate ratio": "Ratio to the reference group",
    "corrected p": "p-value (corrected)",
    "disproportionality": "Disproportionality index",
    "DI 95% interval": "Disproportionality, 95% interval",
    "notable": "Beyond the standard's screen",
    # quality scorecard (citykit.data.quality.Scorecard.to_frame)
    "table": "Table",
    "dimension": "Dimension",
    "name": "Check",
    "description": "Check",
    "failing": "Records failing",
    "rows": "Records checked",
    "value": "Value",
    "limit": "Limit (gate)",
    "unit": "Unit",
    "result": "Result",
    "examples": "Example records",
}

COLUMNS = {**CANONICAL, **DERIVED}


@lru_cache(maxsize=1)
def dictionary_titles() -> dict[str, str]:
    """Column -> `title` of its field in the data dictionary (datasets/datapackage.json), if any."""
    import json

    from citykit.lessons.course import datapackage_file  # course.yml machinery: only when a heading is needed

    try:
        package = json.loads(datapackage_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        field["name"]: field["title"]
        for resource in package.get("resources", [])
        for field in (resource.get("schema") or {}).get("fields", [])
        if field.get("title")
    }


def humanise(name: str) -> str:
    """`closed_requests` -> "Closed requests"; `flag_type_variant` -> "Type variant"; never snake_case."""
    text = str(name).strip()
    text = re.sub(r"^(flag|is|has|pop|n)_", "", text) if SNAKE.match(text) else text
    text = re.sub(r"[_\s]+", " ", text).strip()
    if not text:
        return "Value"
    return text[0].upper() + text[1:] if text[0].islower() else text


def heading(column, labels: dict | None = None) -> str:
    """The heading people read for `column` (see the module docstring)."""
    if isinstance(column, tuple):  # a MultiIndex column: its parts, each readable
        parts = [heading(part, labels) for part in column if str(part) not in ("", "nan", "None")]
        return " · ".join(dict.fromkeys(parts)) or "Value"
    if labels and column in labels:
        return str(labels[column])
    name = str(column)
    found = dictionary_titles().get(name) or COLUMNS.get(name)
    if found:
        return found
    return humanise(name)


def plural(count, singular: str, plural_form: str | None = None) -> str:
    """`1 comparison`, `2 comparisons`, `1,204 applications`: a count with its noun agreeing
    (`plural_form` for an irregular noun: plural(2, "person", "people"))."""
    many = plural_form or (singular[:-1] + "ies" if re.search(r"[^aeiou]y$", singular) else singular + "s")
    number = f"{count:,}" if isinstance(count, int) else str(count)
    return f"{number} {singular if count == 1 else many}"


def agree(text: str, nouns: tuple[str, ...]) -> str:
    """A sentence filled from a template ("{n} earlier releases") made to agree when n is 1:
    "1 earlier releases" -> "1 earlier release" for each noun of `nouns` (singular forms)."""
    for noun in nouns:
        text = re.sub(rf"\b1((?: [a-z-]+)?) {re.escape(noun)}s\b", rf"1\1 {noun}", text)
    return text


# Column names as they read inside a sentence ("Status Closed but no close time"), for texts such as
# the quality checks' descriptions; a group of columns ("pop_*") by what it holds.
IN_TEXT = {
    "closed_at": "close time",
    "created_at": "time received",
    "due_at": "due date",
    "request_id": "request number",
    "parent_request_id": "number of the request it duplicates",
    "application_id": "application number",
}
GROUPS = {"pop": "resident counts by race and ethnicity", "race": "race and ethnicity columns", "flag": "defect flags"}


TERMS = {r"\bk-anonymity generalisation\b": "privacy generalisation", r"\bk-anonymity bands\b": "privacy bands", r"\(k-anonymity\)": "(to protect privacy)",
         r"\bk-anonymity\b": "privacy protection", r"\(SLA target\)": "(service-level target)"}  # fmt: skip


def plain_text(text: str) -> str:
    """A sentence with the column names in it said in words: "Extra rows that repeat a request_id"
    -> "Extra rows that repeat a request number"; "counts (pop_*) do not sum" -> "counts do not sum"
    (a group named in brackets beside what it holds goes); other names by their heading, lower case."""
    out = re.sub(r"\s*\((?:pop|race|flag)_\*\)", "", str(text))
    for term, words in TERMS.items():  # an analyst's term, in a director's words
        out = re.sub(term, words, out)
    out = re.sub(r"\b(pop|race|flag)_\*", lambda m: GROUPS[m.group(1)], out)

    def word(match: re.Match) -> str:
        name = match.group(0)
        if name in IN_TEXT:
            return IN_TEXT[name]
        label = heading(name)
        return label if label[:1].isupper() and label[1:2].isupper() else label[:1].lower() + label[1:]

    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", word, out)
