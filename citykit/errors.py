"""Errors that the command line turns into one clear line and an exit code, and the two helpers every
message that echoes user input goes through:

- `quote(value)`: at most 200 characters of it, quoted, with control characters escaped
  (`'\\x1b[31m'`), so a pasted 100,000-character value or a terminal escape sequence from a CSV
  header is shown safely on one line;
- `one_line(text)`: a whole message on one line, its unprintable characters escaped (the CLI
  prints every error through it);
- `redact(text)`: a password in a URL (`postgresql://alice:secret@host/db`) becomes
  `postgresql://***@host/db`, and `password=...` in a connection string `password=***`; pages,
  manifests, logs and error messages show only the redacted form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

QUOTE_LIMIT = 200  # characters of user input a message shows
# scheme://user:password@host (the user info runs to the last @ before the path)
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@]*(?:@[^/\s@]*)*@", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(r"\b(password|passwd|pwd)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s;&]+)", re.IGNORECASE)


class CitykitError(Exception):
    """Bad usage or bad input: the CLI prints the message and exits 2."""

    exit_code = 2


class WorkFailed(CitykitError):
    """The work itself failed (a report cell raised, a quality gate failed): exit 1."""

    exit_code = 1


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """User input for a message: `repr`-quoted (control and other unprintable characters escaped),
    cut to `limit` characters with the full length said, and redacted (`redact`)."""
    text = redact(value if isinstance(value, str) else str(value))
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def listing(names: Iterable[Any], limit: int = 20) -> str:
    """Names for a message, comma-separated: the first `limit` (each cut like `quote` cuts, unquoted),
    then how many more, so a message never grows with the input."""
    names = [str(n) for n in names]
    shown = [n if len(n) <= QUOTE_LIMIT else f"{n[:QUOTE_LIMIT]}…" for n in names[:limit]]
    more = f" … and {len(names) - limit:,} more" if len(names) > limit else ""
    return ", ".join(redact(n) for n in shown) + more


def one_line(text: str) -> str:
    """A message on one line: newlines, terminal escapes and other unprintable characters escaped
    as Python writes them (`\\n`, `\\x1b`, `\\u202e`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def redact(text: Any) -> Any:
    """Passwords in URL-like text become `***` (`scheme://***@host`); `password=x` becomes
    `password=***`. Anything that is not a string is returned as it is."""
    if not isinstance(text, str):
        return text
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _KEYWORD_SECRET.sub(r"\1\2***", text)


def secrets_in(text: Any) -> list[str]:
    """The passwords a value carries (in URLs or `password=` pairs), raw and URL-decoded: what an
    output must not show even when a notebook prints the password on its own."""
    from urllib.parse import unquote

    if not isinstance(text, str):
        return []
    found = []
    for match in re.finditer(r"\b[a-z][a-z0-9+.-]*://([^/\s]*)@", text, re.IGNORECASE):
        _user, sep, password = match[1].partition(":")
        if sep and password:
            found += [password, unquote(password)]
    for match in _KEYWORD_SECRET.finditer(text):
        found.append(match[3].strip("'\""))
    return sorted({s for s in found if s}, key=len, reverse=True)
