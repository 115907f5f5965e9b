"""The reference route of hidden tests: the expected answer computed independently of the lesson.

Hidden tests in the notebooks compute what a correct answer is on the same data, by a route the
solutions do not take (DuckDB SQL over the published parquet, the standards read as plain YAML).
This module is that route's shared part, built from `metrics.yml`, so the rule of which requests
count is written once. It is not part of the public notebook API (`citykit`): learners have no
reason to call it, and a test keeps it to hidden-test cells.
"""

from __future__ import annotations

from typing import Any

import yaml

from citykit import paths


def standard(name: str) -> dict[str, Any]:
    """A standard file (`metrics.yml`, `disaggregation.yml`, `quality.yml`) as plain YAML: the
    course's own copy when it has one, else the kit's; not validated, not typed."""
    return yaml.safe_load(paths.standard_file(name).read_text(encoding="utf-8"))
