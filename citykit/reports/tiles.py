"""Key-figure tiles and caveat boxes: the answer first, and what to keep in mind beside it.

    citykit.key_figures(comparison=changes, quality=card,
                        *[citykit.key_figure("Backlog over 90 days", old_open, before=old_before)])
    citykit.caveats("The map leaves out 524 of 1,202 requests with no neighborhood.",
                    quality=card, unplaced={"no neighborhood": (524, 1202)})

Each tile shows a label, the value as people read it (60,248 · 14.2 days · 85.3%), its change
against the comparison period ("+2,148 (+3.7%) against 58,100"), the marker of the city's rule for
changes (`metrics.yml` `comparisons.noise`, applied by `compare_periods`: "Within normal
variation", "Changed beyond normal variation", or "Not judged" with the reason), and a note. The
page gets `<li class="ck-tile" data-key=... data-value=...>` (raw numbers, for tests and scrapers),
and the tiles are exported as a table ("key figures") like every other table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from citykit.reports.figures import TABLE_MIME
from citykit.reports.tables import format_value, parse_kind

KEY_FIGURES_MIME = "application/vnd.citykit.key-figures+json"
WITHIN, CHANGED, NOT_JUDGED = "within", "changed", "not-judged"
WHOLE_DAYS = 100  # from 100 days on, a tile shows whole days ("3,232 days", not "3,232.0 days")
MARKER_TEXT = {WITHIN: "Within normal variation", CHANGED: "Changed beyond normal variation", NOT_JUDGED: "Not judged"}


@dataclass
class KeyFigure:
    """One tile; see `key_figure`."""

    label: str
    value: Any
    kind: str = "count"
    unit: str = ""
    before: Any = None
    verdict: str | None = None  # WITHIN, CHANGED, NOT_JUDGED or None (no marker)
    reason: str = ""  # why "not judged"
    note: str = ""
    key: str = ""
    status: str = ""  # "ok" / "warn" for a tile whose value is a verdict (data quality)
    extra: dict = field(default_factory=dict)

    def value_text(self) -> str:
        if self.value is None:
            return "—"
        if self.kind == "text" or isinstance(self.value, str):  # words, or a suppression mark ("≤10")
            return str(self.value)
        text, _ = format_value(self.value, self.kind)
        text = text or "—"
        if self.kind == "days" and text != "—":
            return _days_text(self.value)
        if self.kind == "rate" and self.unit and text != "—":
            return f"{text} {self.unit}"
        return text

    def change_text(self) -> str:
        """The change, "+2,148 (+3.7%) against 58,100"; "" when there is nothing to compare."""
        if self.extra.get("change"):  # a change stated in words (`key_figure(change=...)`)
            return str(self.extra["change"])
        if self.before is None or self.value is None or self.kind == "text":
            return ""
        if isinstance(self.value, str) or isinstance(self.before, str):  # a suppressed count: no difference
            before_text = KeyFigure(self.label, self.before, self.kind, self.unit).value_text()
            return f"against {before_text} (no change shown: too few people)"
        try:
            now, before = float(self.value), float(self.before)
        except (TypeError, ValueError):
            return ""
        before_text = KeyFigure(self.label, self.before, self.kind, self.unit).value_text()
        diff = now - before
        # shares and days: the change between the values as shown, so "3.3 days, +0.1 against 3.2"
        # never reads "+0.0" beside two different numbers
        if self.kind in ("share", "percent"):
            scale = 100 if self.kind == "share" else 1
            points = round(now * scale, 1) - round(before * scale, 1)
            return f"{points:+.1f} points against {before_text}"
        if self.kind == "days":
            return f"{round(now, 1) - round(before, 1):+.1f} days against {before_text}"
        if self.kind == "count":
            rel = f" ({diff / before:+.1%})" if before else ""
            return f"{round(diff):+,}{rel} against {before_text}"
        rel = f" ({diff / before:+.1%})" if before else ""
        return f"{diff:+,.1f}{rel} against {before_text}"

    def number(self, value: Any) -> Any:
        """The value for a spreadsheet: a number as shown on the tile (a share in percent, days to one
        decimal), words or a suppression mark as they are, None when missing."""
        if value is None or self.kind == "text":
            return None  # words: in "As shown" only, so the column stays numbers
        if isinstance(value, str):
            return value  # a suppression mark
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if self.kind == "share":
            return round(number * 100, 1)
        if self.kind == "count":
            return round(number)
        return round(number, 1 if self.kind in ("days", "percent", "rate") else 2)

    def unit_text(self) -> str:
        """The unit of `number`: "requests", "days", "%", the rate's unit; "" for words."""
        if self.kind == "text" or isinstance(self.value, str):
            return ""
        return {"share": "%", "percent": "%", "days": "days", "count": "count"}.get(self.kind, self.unit)

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": _plain(self.value),
            "kind": self.kind,
            "unit": self.unit,
            "before": _plain(self.before),
            "shown": self.value_text(),
            "change": self.change_text(),
            "verdict": self.verdict,
            "reason": plain_reason(self.reason),
            "note": self.note,
        }


def _plain(value: Any) -> Any:
    """A JSON-able number or text."""
    if value is None:
        return None
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "figure"


def _marker(verdict: Any) -> tuple[str | None, str]:
    """A Verdict (changed, reason), True/False, or a marker name -> (marker, reason)."""
    if verdict is None:
        return None, ""
    if isinstance(verdict, bool):
        return (CHANGED if verdict else WITHIN), ""
    if isinstance(verdict, str):
        if verdict in MARKER_TEXT:
            return verdict, ""
        return (WITHIN, "") if "within" in verdict.lower() else (NOT_JUDGED, verdict)
    changed = getattr(verdict, "changed", None)
    reason = str(getattr(verdict, "reason", "") or "")
    if changed:
        return CHANGED, reason
    if "within" in reason.lower():
        return WITHIN, ""
    return NOT_JUDGED, reason


def key_figure(label: str, value: Any, *, kind: str = "count", unit: str | None = None, before: Any = None,
               verdict: Any = None, note: str = "", key: str | None = None, history: list | None = None,
               size: float | None = None, change: str = "") -> KeyFigure:  # fmt: skip
    """One key-figure tile.

    kind: as for tables ("count", "share" (a 0–1 fraction), "percent", "days", "rate", "ratio",
    "number") or "text" for a value in words; `unit` for a rate ("per 1,000 residents").
    value / before: a suppressed count of people is given as its mark ("≤10"): shown as it is, no change worked out.
    before: the comparison period's value; the change is worked out and shown.
    verdict: `compare_periods(...).verdicts[name]`, or True (changed) / False (within normal variation).
    change: the change in words, shown instead of the one worked out from `before` (e.g. when the
    compared figures are those of the latest period and the tile's value is of the whole data).
    history: instead of `verdict`, the past periods' figures, oldest first (the last is the period before):
    counts for kind "count", (events, size) pairs for kind "share" with `size` the current period's; the
    verdict is then `change_verdict`'s, the rule `compare_periods` applies (metrics.yml `comparisons.noise`).
    """
    if kind != "text":
        kind, parsed_unit = parse_kind(kind)
        unit = unit if unit is not None else parsed_unit
    if verdict is None and history is not None:
        verdict = change_verdict(value, history, kind=kind, size=size)
    marker, reason = _marker(verdict)
    tile = KeyFigure(str(label), value, kind, unit or "", before, marker, reason, note, key or _slug(label))
    if change:
        tile.extra["change"] = change
    return tile


# the rules' reasons for not judging a change, in the words a director reads
_REASONS = [
    (r"^not yet estimable$", "too few of the requests have closed yet to estimate it"),
    (
        r"^too little history to judge \((\d+) past periods?, (\d+) needed\)$",
        "too few earlier periods in the data to know its normal variation ({0} of the {1} needed)",
    ),
    (r"^too few to compare$", "too few closed requests to compare"),
    (r"^nothing due to compare$", "no request had a due date or a target in one of the two periods"),
]


def plain_reason(reason: str) -> str:
    """Why a change was not judged, in plain words ("not yet estimable" -> "too few of the requests
    have closed yet to estimate it")."""
    text = str(reason or "").strip()
    for pattern, words in _REASONS:
        found = re.match(pattern, text)
        if found:
            return words.format(*found.groups())
    return text


def unjudged_by_quality(tiles: list[KeyFigure], card) -> list[KeyFigure]:
    """When the data fail quality gates, no change is called within or beyond normal variation: the
    marker says it can't be judged because of the data problems."""
    if card is None or card.passed:
        return tiles
    failed = len(card.failed)
    reason = f"the data fail {failed} quality gate{'' if failed == 1 else 's'}, so changes can't be judged"
    for tile in tiles:
        if tile.verdict in (WITHIN, CHANGED):
            tile.verdict, tile.reason = NOT_JUDGED, reason
    return tiles


def change_verdict(value: Any, history: list, *, kind: str = "count", size: float | None = None):
    """The rule `compare_periods` applies to requests and the on-time share (metrics.yml
    `comparisons.noise`: Laney u' / p' control limits from past periods and the minimum practical
    change), applied to any count (`history`: past counts, oldest first) or share (`history`: past
    (events, size) pairs; `size`: the current period's). A suppressed value (a mark) is not judged."""
    from citykit.data import comparisons as stats  # statsmodels and the rules: only when a tile is judged

    if value is None or isinstance(value, str) or any(isinstance(h, str) for h in history):
        return stats.Verdict(False, "too few people to judge")
    noise = stats.rules()["noise"]
    within = noise["within_label"]
    past = [h for h in history if h is not None]
    common = dict(within=within, history=len(past), min_history=int(noise["min_history"]))
    if not past:
        return stats.judge(float(value), float(value), None, 0.0, relative=False, **common)
    if kind == "share":
        events, sizes = [float(e) for e, _ in past], [float(n) for _, n in past]
        if not size or not sum(sizes):
            return stats.Verdict(False, "nothing to compare")
        before = events[-1] / sizes[-1] if sizes[-1] else float(value)
        return stats.share_verdict(float(value), before, events, sizes, float(size))
    counts = [float(c) for c in past]
    limits = stats.laney_limits(counts, [1] * len(counts), 1, "u", noise["sigma"]) if len(counts) >= 2 else None
    return stats.judge(float(value), counts[-1], limits, noise["min_change"]["volume_relative"], relative=True,
                       min_absolute=noise["min_change"]["volume_requests"], **common)  # fmt: skip


def comparison_figures(comparison) -> list[KeyFigure]:
    """The four tiles of `compare_periods(...)`: requests, median and 90th-percentile days, on time."""
    c, p, v = comparison.current, comparison.previous, comparison.verdicts
    label = (comparison.rules.get("time_to_close", {}) or {}).get("closed_only_label", "")
    del label  # the tiles show the Kaplan-Meier figures (open requests count as waiting), not closed-only ones
    return [
        key_figure("Requests", c.volume, before=p.volume, verdict=v.get("volume"), key="requests",
                   note="received in the period, duplicates left out"),
        key_figure("Median days to close", c.median, kind="days", before=p.median, verdict=v.get("median"),
                   key="median-days", note="open requests counted as still waiting"),
        key_figure("90th percentile, days to close", c.p90, kind="days", before=p.p90, verdict=v.get("p90"),
                   key="p90-days", note="9 in 10 requests closed within this many days" if c.p90 is not None
                   else "not known until 9 in 10 requests have closed"),
        key_figure("On time", c.share, kind="share", before=p.share, verdict=v.get("on_time"), key="on-time",
                   note=f"of {c.due:,} requests due; late or still open counts as missed" if c.due
                   else "no request has a due date or a target"),
    ]  # fmt: skip


def quality_figure(card) -> KeyFigure:
    """A tile stating the quality-gate verdict of a `quality.check_dataset(...)` scorecard."""
    gated = [c for c in card.checks if c.gate is not None]
    failed = list(card.failed)
    if not failed:
        value, note = f"All {len(gated)} gates pass", "the city's data-quality gates"
    else:
        value = f"{len(failed)} of {len(gated)} gates fail"
        shown = failed if len(failed) <= 3 else failed[:2]  # never "and 1 more": name a third rather than hide it
        note = "; ".join(_check_text(c) for c in shown) + (f"; and {len(failed) - 2} more" if len(failed) > 3 else "")
    tile = KeyFigure("Data quality", value, "text", note=note, key="data-quality")
    tile.status = "ok" if not failed else "warn"
    return tile


def _check_text(check) -> str:
    """A check in words: "Requests with no neighborhood: 46.0% of the 10,000 checked (gate 5%)" (the records
    it was checked on, so it is not mistaken for a period's share); whole days from WHOLE_DAYS on ("3,232 days")."""
    if check.value is not None:
        amount = _days_text(check.value)
    else:
        rows = getattr(check, "rows", None)
        amount = f"{check.share:.1%}" + (f" of the {rows:,} checked" if rows else "")
    limit = ""
    if check.gate is not None:
        limit = f" (gate {check.gate.limit:g} days)" if check.gate.unit == "days" else f" (gate {check.gate.limit:.0%})"
    from citykit.reports.labels import plain_text  # the data dictionary: only when a check is written out

    return f"{plain_text(check.description)}: {amount}{limit}"


def _days_text(value) -> str:
    """Days as a tile says them: to one decimal ("3.3 days"), whole days from WHOLE_DAYS on ("3,232 days")."""
    number = float(value)
    return f"{number:,.0f} days" if abs(number) >= WHOLE_DAYS else f"{number:,.1f} days"


class KeyFigures:
    """The tiles as displayed (text/html), recorded (key-figures JSON) and exported (a table)."""

    def __init__(self, tiles: list[KeyFigure], title: str = "Key figures", note: str = "") -> None:
        self.tiles, self.title, self.note = tiles, title, note

    def to_html(self) -> str:
        items = []
        for tile in self.tiles:
            attrs = {
                "data-key": tile.key,
                "data-value": "" if tile.value is None else str(_plain(tile.value)),
                "data-before": "" if tile.before is None else str(_plain(tile.before)),
                "data-verdict": tile.verdict or "",
            }
            status = f" ck-tile-{tile.status}" if tile.status else ""
            parts = [
                f'<span class="ck-tile-label">{escape(tile.label)}</span>',
                f'<span class="ck-tile-value">{escape(tile.value_text())}</span>',
            ]
            change = tile.change_text()
            if change:
                parts.append(f'<span class="ck-tile-change">{escape(change)}</span>')
            if tile.verdict:
                text = MARKER_TEXT[tile.verdict] + (
                    f": {plain_reason(tile.reason)}" if tile.verdict == NOT_JUDGED and tile.reason else ""
                )
                parts.append(f'<span class="ck-marker ck-marker-{tile.verdict}">{escape(text)}</span>')
            if tile.note:
                parts.append(f'<span class="ck-tile-note">{escape(tile.note)}</span>')
            attributes = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
            items.append(f'<li class="ck-tile{status}" {attributes}>{"".join(parts)}</li>')
        note = f'<p class="ck-kf-note">{escape(self.note)}</p>' if self.note else ""
        return (
            f'<section class="ck-key-figures" aria-label="{escape(self.title)}">'
            f'<p class="ck-kf-title">{escape(self.title)}</p><ul class="ck-tiles">{"".join(items)}</ul>{note}</section>'
        )

    def to_text(self) -> str:
        lines = [self.title]
        for tile in self.tiles:
            extra = " · ".join(x for x in (tile.change_text(), MARKER_TEXT.get(tile.verdict or "", "")) if x)
            lines.append(f"- {tile.label}: {tile.value_text()}" + (f" ({extra})" if extra else ""))
        return "\n".join(lines)

    def table_record(self) -> dict[str, Any]:
        """The tiles as a table for the CSV and the workbook (the page shows the tiles themselves)."""
        import pandas as pd

        from citykit.reports.figures import table_payload  # figures imports nothing heavy at its top

        frame = pd.DataFrame(
            [
                {
                    "Figure": t.label,
                    "As shown": t.value_text(),
                    "Value": t.number(t.value),
                    "Before": t.number(t.before),
                    "Unit": t.unit_text(),
                    "Change": t.change_text(),
                    "Against normal variation": MARKER_TEXT.get(t.verdict or "", ""),
                    "Note": t.note,
                }
                for t in self.tiles
            ],
            dtype=object,  # Value and Before keep each tile's own number: a count stays whole beside decimals
        ).set_index("Figure")
        kinds = {**dict.fromkeys(frame.columns, "text"), "Value": "number", "Before": "number"}  # numbers stay numbers
        # one name in every report (tables/01-key-figures.csv, sheet "Key figures"), whatever the tiles' title
        payload = table_payload(frame, name=KEY_FIGURES_TABLE, published=True, kinds=kinds, max_rows=None)
        if payload is None:
            return payload
        payload["display"] = "key-figures"  # the page keeps the tiles; the table goes to the CSV and workbook
        return payload

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {
            "text/html": self.to_html(),
            "text/plain": self.to_text(),
            KEY_FIGURES_MIME: {"title": self.title, "tiles": [t.record() for t in self.tiles]},
            TABLE_MIME: self.table_record(),
        }


KEY_FIGURES_TABLE = "Key figures"  # the tiles' table: its CSV and sheet name, the same in every report


def key_figures(*tiles: KeyFigure, comparison=None, quality=None, title: str = "Key figures", note: str = "") -> None:
    """Display key-figure tiles: those of `comparison` (compare_periods) first, then `tiles`, then a
    data-quality tile for `quality` (a scorecard); when its gates fail, no change is marked within
    or beyond normal variation ("Not judged: the data fail 3 quality gates..."). See the module docstring."""
    from IPython.display import display  # loaded in a kernel; kept off the runner's start-up

    shown = unjudged_by_quality([*(comparison_figures(comparison) if comparison is not None else []), *tiles], quality)
    if quality is not None:
        shown.append(quality_figure(quality))
    display(KeyFigures(shown, title, note))


# ------------------------------------------------------------------ caveats


class Caveats:
    def __init__(self, items: list[str], title: str, warn: bool) -> None:
        self.items, self.title, self.warn = items, title, warn

    def to_html(self) -> str:
        items = "".join(f"<li>{_inline_markdown(item)}</li>" for item in self.items)
        kind = " ck-caveats-warn" if self.warn else ""
        return (
            f'<aside class="ck-caveats{kind}" role="note" aria-label="{escape(self.title)}">'
            f'<p class="ck-caveats-title">{escape(self.title)}</p><ul>{items}</ul></aside>'
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = "\n".join([self.title, *(f"- {re.sub(r'[*`]', '', i)}" for i in self.items)])
        return {"text/html": self.to_html(), "text/plain": text}


def _inline_markdown(text: str) -> str:
    """**bold**, *italic* and `code` in an escaped sentence."""
    out = escape(str(text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", r"<em>\1</em>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def caveat_items(*notes: str, quality=None, unplaced: dict | None = None, records: str = "requests") -> list[str]:
    """The sentences of a caveat box (see `caveats`)."""
    items: list[str] = []
    if quality is not None:
        gated = [c for c in quality.checks if c.gate is not None]
        if quality.passed:
            items.append(f"**Data quality:** the data pass all {len(gated)} of the city's quality gates.")
        else:
            failed = quality.failed
            items.append(
                f"**Data quality:** {len(failed)} of {len(gated)} quality gates fail: "
                + "; ".join(_check_text(c) for c in failed)
                + ". Figures that rest on these fields are less certain."
            )
    for what, counts in (unplaced or {}).items():
        missing, total = int(counts[0]), int(counts[1])
        if total <= 0:
            continue
        if missing == 0:
            items.append(f"Every one of the {total:,} {records} has {_strip_no(what)}.")
            continue
        by = _strip_no(what).removeprefix("a ").removeprefix("an ")
        consequence = counts[2] if len(counts) > 2 else f"figures by {by} leave them out"
        items.append(f"**{missing / total:.1%} of {records}** ({missing:,} of {total:,}) have {what}: {consequence}.")
    items.extend(str(n) for n in notes if n)
    return items


def _strip_no(what: str) -> str:
    """What is missing, said positively: "no neighborhood" -> "a neighborhood"; "no coordinates" -> "coordinates"."""
    rest = re.sub(r"^(no|without)\s+", "", what.strip())
    if rest == what.strip():
        return rest
    return rest if rest.endswith("s") else f"a {rest}"


def caveats(*notes: str, quality=None, unplaced: dict | None = None, records: str = "requests",
            title: str = "Read these figures with care") -> None:  # fmt: skip
    """Display a caveat box: the quality-gate verdict of `quality` (a scorecard), the share of
    records not placed (`unplaced={"no neighborhood": (missing, total)}`, or `(missing, total,
    "the map leaves them out")` to say what they are missing from), and `notes` (plain
    sentences, **bold** allowed: e.g. what a chart leaves out)."""
    from IPython.display import display  # loaded in a kernel; kept off the runner's start-up

    items = caveat_items(*notes, quality=quality, unplaced=unplaced, records=records)
    warn = (quality is not None and not quality.passed) or any(int(c[0]) for c in (unplaced or {}).values())
    display(Caveats(items, title, bool(warn)))
