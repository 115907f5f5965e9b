"""What an import may never publish: a column the standard treats as personal (people's names,
phone numbers, e-mail addresses, street addresses, free text), and text longer than its cap.

A mapping is checked twice before anything is written:

- by the source column's *name*: the standard's personal columns (`privacy.columns` of
  `curriculum/standards/disaggregation.yml`: every column classed identifier and never published,
  e.g. caller_name, notes, date_of_birth; `citykit.standards.reader.personal_columns`, the one list
  the publisher also drops), the mapping's own `personal_columns` and `defects` (columns read only
  to count defects, named as that source spells them), every bundled mapping's lists, and name
  patterns (address, street, phone, e-mail, notes, comments, descriptions, people's names);
- by the *content* of the first rows of every column published as text (a renamed personal column):
  e-mail addresses, phone numbers, street addresses (also a unit first: "Apt 4B, 12 Oak Ave") and
  people's names (two or three capitalised words, the first a common given name in Faker's
  first-name lists of several locales, the last not a place word such as Park or Heights).

Status and channel are exempt: their values pass through the mapping's fixed vocabularies
(`status_map`, `channel_map`), so no raw value of theirs is ever published.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import pandas as pd

from citykit.data.importers.mapping import load_mapping, mapping_files
from citykit.errors import CitykitError

# Published as raw text (after trimming): these are the columns a personal value could leak into.
TEXT_COLUMNS = ("request_id", "agency", "request_type", "descriptor", "neighborhood", "parent_request_id")
ID_COLUMNS = ("request_id", "parent_request_id")
VOCABULARY_COLUMNS = ("status", "channel")  # mapped to fixed values: never published raw
TEXT_CAP = 200  # characters: the longest text value published (descriptor, type, agency, neighborhood, ids)
ELLIPSIS = "…"
SAMPLE_ROWS = 5_000  # values per column sniffed for personal content
SNIFF_MIN_SHARE = 0.10  # this share of sampled values looking personal refuses the column
SNIFF_MIN_VALUES = 2
FREE_TEXT_MIN_VALUES, FREE_TEXT_WORDS, FREE_TEXT_SHARE = 20, 6, 0.3  # notes, comments: sentences, mostly distinct
SNIFF_CHARS = 300  # the start of each value is sniffed (a 5 MB value costs no more than a short one)

# Column names that say "personal", matched on the name in lower case with _ - . / as spaces
# (e.g. "status_notes" -> "status notes"); the last, free text, only for columns published as text.
NAME_PATTERNS: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    ("a street address", re.compile(r"address|\baddr\b|\bstreet|house ?number|\bapt\b|apartment"), False),
    ("a phone number", re.compile(r"phone|\bcell\b|mobile ?number|\bfax\b"), False),
    ("an e-mail address", re.compile(r"e ?mail"), False),
    ("a person's name", re.compile(
        r"\b(first|last|full|given|family|middle|sur|contact|caller|customer|resident|requester|requestor|"
        r"reporter|complainant|citizen|person|owner|staff|employee|worker|inspector|officer) ?name\b"
    ), False),
    ("a person", re.compile(
        r"\b(caller|requester|requestor|complainant|submitted by|reported by|created by|assigned to|employee|"
        r"technician|inspector)\b"
    ), False),
    ("free text", re.compile(r"\b(notes?|comments?|remarks?|narrative|free ?text|details|message|memo)\b"), True),
)  # fmt: skip

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(
    r"(?<![\w.])(\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w.])|\+\d{1,3}[\s.-]?\d[\d\s.-]{7,}\d"
)
STREET_TYPES = (
    r"st|street|ave|av|avenue|blvd|boulevard|rd|road|dr|drive|ln|lane|way|pl|place|ct|court|ter|terrace|"
    r"pkwy|parkway|hwy|highway|sq|square|cir|circle|aly|alley|row|plz|plaza|trl|trail|broadway"
)
ADDRESS = re.compile(
    rf"^\s*\d+[a-z]?(-\d+)?\s+([nsew]\.?\s+)?([\w.'-]+\s+){{0,4}}({STREET_TYPES})\b\.?"
    rf"|^\s*intersection of\b"
    rf"|\b[\w.'-]+\s+({STREET_TYPES})\.?\s+(&|and|at|/)\s+([\w.'-]+\s+){{1,3}}({STREET_TYPES})\b",
    re.IGNORECASE,
)


UNIT = re.compile(
    r"^\s*(apt|apartment|unit|suite|ste|room|rm|fl|floor)\.?\s*#?\s*\d+[a-z]?\b|^\s*#\s*\d+[a-z]?\b"
    rf"|,\s*\d+[a-z]?(-\d+)?\s+([nsew]\.?\s+)?([\w.'-]+\s+){{0,4}}({STREET_TYPES})\b"
    r"|\b(apt|apartment|unit|suite|ste)\.?\s*#?\s*\d+[a-z]?\s*$",
    re.IGNORECASE,
)
PERSON = re.compile(r"^(\w[\w'’.-]*)(\s+\w[\w'’.-]*){1,2}$")
NAME_SHARE = 0.5  # this share of sampled values looking like people's names refuses the column
NAME_LOCALES = ("en_US", "en_GB", "es_ES", "es_MX", "fr_FR", "de_DE", "it_IT", "pt_BR", "nl_NL", "pl_PL")
PLACE_WORDS = frozenset((
    "park", "heights", "hill", "hills", "valley", "point", "bay", "beach", "village", "town", "city", "square",
    "gardens", "garden", "commons", "yards", "yard", "harbor", "harbour", "island", "terrace", "district",
    "quarter", "center", "centre", "east", "west", "north", "south", "upper", "lower", "downtown", "grove",
    "woods", "wood", "ridge", "view", "lake", "lakes", "river", "creek", "bridge", "station", "market",
    "crossing", "estates", "manor", "meadows", "field", "fields", "springs", "glen", "acres", "court", "place",
    "street", "avenue", "road", "county", "junction", "landing",
))  # fmt: skip


@cache
def given_names() -> frozenset[str]:
    """Common given names (case-folded), from Faker's person providers of several locales (no network)."""
    import importlib

    names: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attribute in ("first_names", "first_names_male", "first_names_female"):
            names |= {str(n).casefold() for n in getattr(provider, attribute, ()) or ()}
    return frozenset(n for n in names if len(n) > 1)


def _looks_like_name(value: str) -> bool:
    if not PERSON.match(value):
        return False
    words = value.split()
    if not all(w[0].isupper() for w in words):
        return False
    return words[0].casefold() in given_names() and words[-1].casefold() not in PLACE_WORDS


def _name_text(column: str) -> str:
    return re.sub(r"[_\-./]+", " ", re.sub(r"([a-z])([A-Z])", r"\1 \2", column)).casefold().strip()


def _name_key(column: str) -> str:
    return re.sub(r"[^0-9a-z]", "", column.casefold())


@cache
def bundled_personal() -> frozenset[str]:
    """Every bundled mapping's personal and defect-only columns (as header keys)."""
    names: set[str] = set()
    for source in mapping_files():
        mapping = load_mapping(source)
        names |= {_name_key(c) for c in (*mapping.personal_columns, *mapping.defects.values())}
        if mapping.duplicate.get("column"):
            names.add(_name_key(str(mapping.duplicate["column"])))
    return frozenset(names)


def standard_personal() -> dict[str, str]:
    """The standard's personal columns (class identifier, publish never, in `privacy.columns`), as
    header keys -> the table the standard lists them for. Read each time (the standard is cached by
    its file's modification time): a column added to the standard is refused by the next import."""
    from citykit.standards.reader import personal_columns  # lazy: the standard is read only when checked

    return {_name_key(c): table for table, columns in personal_columns().items() for c in columns}


def name_reason(column: str, listed: Iterable[str] = (), text: bool = True) -> str | None:
    """Why a source column is personal by its name (None when it is not); `text`: it would be
    published as text (free-text names count only then)."""
    key = _name_key(column)
    table = standard_personal().get(key)
    if table is not None:
        return f"the standard classes {column} as an identifier of {table}, never published"
    if key in {_name_key(c) for c in listed}:
        return "the mapping lists it as personal or read-only"
    if key in bundled_personal():
        return "a bundled mapping lists it as personal"
    words = _name_text(column)
    for what, pattern, text_only in NAME_PATTERNS:
        if (text or not text_only) and pattern.search(words):
            return f"its name says it holds {what}"
    return None


def content_reason(values: pd.Series, identifier: bool = False) -> str | None:
    """Why a column's sampled values look personal (None when they do not): e-mail addresses, phone
    numbers or street addresses in at least a tenth of them, or free text (a third of them sentences
    of six words or more, mostly distinct). `identifier`: a request id column (phone-like ids and long
    distinct values are ordinary there)."""
    text = values.dropna().astype(str).str.slice(0, SNIFF_CHARS).str.strip()  # linear time on any value
    text = text[text.ne("")].head(SAMPLE_ROWS)
    if text.empty:
        return None

    def address(v: str) -> bool:
        return ADDRESS.search(v) is not None or UNIT.search(v) is not None

    tests = [
        ("e-mail addresses", EMAIL.search, SNIFF_MIN_SHARE),
        ("phone numbers", PHONE.search, SNIFF_MIN_SHARE),
        ("street addresses", address, SNIFF_MIN_SHARE),
        ("people's names", _looks_like_name, NAME_SHARE),
    ]
    for what, test, share in [tests[0], tests[2]] if identifier else tests:
        hits = int(text.map(lambda v, t=test: bool(t(v))).sum())
        if hits >= SNIFF_MIN_VALUES and hits >= share * len(text):
            return f"{hits:,} of {len(text):,} sampled values look like {what}"
    if not identifier and len(text) >= FREE_TEXT_MIN_VALUES:
        sentences = int(text.str.split().str.len().ge(FREE_TEXT_WORDS).sum())
        if sentences >= FREE_TEXT_SHARE * len(text) and text.nunique() >= FREE_TEXT_SHARE * len(text):
            return f"{sentences:,} of {len(text):,} sampled values are free text of {FREE_TEXT_WORDS} words or more"
    return None


def check_mapping(mapping_name: str, found: dict[str, str], listed: Sequence[str], sample: pd.DataFrame | None) -> None:
    """Refuse (one line, exit 2) a mapping that would publish a personal column, by name or content.

    found: canonical column -> the export's column (as resolved on the header); listed: the
    mapping's own personal and defect-only columns; sample: the first rows of the export."""
    for canonical, column in found.items():
        if canonical.startswith("defect:") or canonical in VOCABULARY_COLUMNS:
            continue
        why = name_reason(column, listed, text=canonical in TEXT_COLUMNS)
        if why is None and sample is not None and canonical in TEXT_COLUMNS and column in sample:
            why = content_reason(sample[column], identifier=canonical in ID_COLUMNS)
        if why is not None:
            raise CitykitError(
                f"mapping {mapping_name}: {canonical} would publish the column {column!r}, which the standard "
                f"treats as personal ({why}); map {canonical} to another column or leave it out"
            )


# --- caps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capped:
    values: pd.Series
    cut: int  # values longer than the cap


def cap_text(values: pd.Series, cap: int = TEXT_CAP) -> Capped:
    """Text longer than `cap` characters cut to `cap` (the last one an ellipsis)."""
    long = values.str.len().gt(cap).fillna(False)
    if not long.any():
        return Capped(values, 0)
    out = values.copy()
    out[long] = values[long].str.slice(0, cap - 1) + ELLIPSIS
    return Capped(out, int(long.sum()))


def cap_id(values: pd.Series, cap: int = TEXT_CAP) -> Capped:
    """Ids longer than `cap`: their start and a hash of the whole id, so distinct ids stay distinct
    and a parent id still matches its request."""
    long = values.str.len().gt(cap).fillna(False)
    if not long.any():
        return Capped(values, 0)
    out = values.copy()
    digest = values[long].map(lambda v: hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()[:16])
    out[long] = values[long].str.slice(0, cap - 17) + "~" + digest
    return Capped(out, int(long.sum()))


def shorten(value: object, limit: int = 60) -> str:
    """A value for a message or the report: at most `limit` characters, control characters escaped."""
    text = str(value)
    text = text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
    return repr(text)
