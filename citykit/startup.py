"""Process start-up: what citykit's own processes (the CLI, report kernels, grading workers) set first.

`rfc3987-syntax` is an optional jsonschema format checker (IRI syntax) that jupyter_server's
dependencies pull in. Once installed, every process that validates a notebook with nbformat pays
about 1.3 s to build its grammar, and nothing in the stack validates IRIs. `make setup`
uninstalls it; on the wheel route (`pip install citykit`) it stays installed, so citykit's own
processes skip it here instead: jsonschema then simply has no "iri" format check.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_modules() -> None:
    """Make the slow optional modules unimportable in this process (ImportError on import)."""
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"
