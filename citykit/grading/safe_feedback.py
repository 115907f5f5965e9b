"""The feedback step nbgrader runs (`GenerateFeedback`), made safe for whoever presses its button.

The course's nbgrader configuration (`citykit.grading.cohort.apply_to_config`) puts `SafeFeedback`
before nbgrader renders a graded notebook as a feedback page, so formgrader's **Generate Feedback**
button and plain `nbgrader generate_feedback` give what `citykit grade feedback` gives, less its
points table: hidden tests' source removed and their failures reworded
(`citykit.grading.feedback.strip_hidden_tests`), and whatever a learner wrote or printed kept as
text, never live HTML: a written answer's `<script>`, `<iframe>` or `onerror=` are escaped or
dropped, and script outputs are not rendered.
"""

from __future__ import annotations

import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

SAFE_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strong", "style", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "tt", "u", "ul",
})  # fmt: skip
SAFE_ATTRIBUTES = {
    "*": ["class", "align", "title", "id"],
    "a": ["href", "name", "title"],
    "img": ["src", "alt", "title", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
    "table": ["border"],
}
SAFE_PROTOCOLS = ("http", "https", "mailto", "attachment")
HTML_LIKE = re.compile(r"<[A-Za-z!/?]")  # a tag starts so; "a < b" is text
SCRIPT_OUTPUTS = ("application/javascript", "text/javascript", "application/x-javascript")
RICH_TEXT = ("text/html", "text/markdown", "image/svg+xml")


def sanitized(text: str) -> str:
    """HTML (or Markdown holding HTML) with only safe tags, attributes and links; the rest escaped."""
    if not HTML_LIKE.search(text):
        return text
    import bleach

    return bleach.clean(text, tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, protocols=SAFE_PROTOCOLS, strip=False)


def sanitize_notebook(nb) -> None:
    """Every Markdown cell and rich output of `nb` made inert (in place)."""
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
            cell.source = sanitized(source)
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            for kind in SCRIPT_OUTPUTS:
                data.pop(kind, None)
            for kind in RICH_TEXT:
                if kind in data:
                    text = data[kind] if isinstance(data[kind], str) else "".join(data[kind])
                    if kind == "image/svg+xml":
                        if re.search(r"<\s*script|\bon\w+\s*=|javascript:|<\s*foreignObject", text, re.I):
                            data.pop(kind)
                    else:
                        data[kind] = sanitized(text)
            if not data:
                data["text/plain"] = "(output not shown)"


class SafeFeedback(NbGraderPreprocessor):
    """Hidden tests out and learner HTML inert, in every feedback page nbgrader renders."""

    def preprocess(self, nb, resources):
        from citykit.grading.feedback import strip_hidden_tests  # lazy: feedback imports nbgrader's API
        from citykit.grading.limits import cohort_limits  # lazy: loaded only when used

        root = self.config.CourseDirectory.get("root") if "CourseDirectory" in self.config else None
        timeout = cohort_limits(Path(root)).cell_timeout if root else None
        nb = strip_hidden_tests(nb, cell_timeout=timeout)
        sanitize_notebook(nb)
        return nb, resources
