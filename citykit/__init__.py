"""citykit: a data academy in a box for city staff.

This module is the public surface for notebooks: lessons and reports import only the names in
`__all__` (a test fails when a notebook imports a deeper path), so the package can be reorganised
without breaking a released notebook. Nothing heavy is imported here: each name is resolved on
first use. The command line (`citykit`) is a thin layer over the sub-packages:

- `citykit.data` — sources, importers, loading, the synthetic city, schemas and quality;
- `citykit.standards` — the published standards, privacy (k-anonymity, suppression) and equity;
- `citykit.lessons` — the course model, the lab, and the checks behind visible tests;
- `citykit.grading` — cohorts and nbgrader: lint, parallel autograde, feedback, export;
- `citykit.reports` — parameters, the production contract, report runs, HTML and batches.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute" (a function or class) or "module" (a namespace of helpers)
_PUBLIC = {
    # data
    "load": "citykit.data.load:load",
    "connect": "citykit.data.views:connect",
    "boundaries": "citykit.data.views:boundaries",
    "dataset": "citykit.data.registry:get",
    "parse_period": "citykit.data.periods:parse_period",
    "backlog": "citykit.data.backlog:backlog",
    "open_at_now": "citykit.data.backlog:open_at_now",
    "compare_backlog": "citykit.data.backlog_change:compare_backlog",
    "compare_periods": "citykit.data.changes:compare_periods",
    "period_dates": "citykit.data.changes:period_dates",
    "compare_quality": "citykit.data.quality_change:compare_quality",
    "REQUEST_FLAGS": "citykit.data.columns:REQUEST_FLAGS",
    "city_bounds": "citykit.data.anonymize:city_bounds",
    "quality": "citykit.data.quality",
    "scorecard": "citykit.data.quality:scorecard",
    # the standards
    "metrics": "citykit.standards.reader:load_metrics",
    "disaggregation_standard": "citykit.standards.reader:load_disaggregation",
    "quality_gates": "citykit.data.quality:load_gates",
    "equity": "citykit.standards.equity",
    "privacy": "citykit.standards.privacy",
    # lessons
    "check": "citykit.lessons.check",
    "load_course": "citykit.lessons.course:load_course",
    "data_package": "citykit.lessons.course:data_package",
    # reports
    "describe_figure": "citykit.reports.figures:describe_figure",
    "publish_table": "citykit.reports.figures:publish_table",
    "key_figures": "citykit.reports.tiles:key_figures",
    "key_figure": "citykit.reports.tiles:key_figure",
    "caveats": "citykit.reports.tiles:caveats",
    "plain_reason": "citykit.reports.tiles:plain_reason",
    "charts": "citykit.reports.charts",
    "labels": "citykit.reports.labels",
    "check_neighborhood": "citykit.reports.params:check_neighborhood",
    "maps": "citykit.reports.maps",
    "plural": "citykit.reports.labels:plural",
    # errors
    "CitykitError": "citykit.errors:CitykitError",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    target = _PUBLIC.get(name)
    if target is None:
        raise AttributeError(f"module 'citykit' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
