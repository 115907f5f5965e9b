"""The published standards and the methods they set.

- `reader` — reads and validates `metrics.yml`, `disaggregation.yml` and `quality.yml` (the course's
  copy when it has one, else the kit's): `load_metrics()`, `load_disaggregation()`;
- `privacy` — k-anonymity for person-level rows, small-cell suppression and its audit;
- `equity` — SPD-15 presentations, disaggregated tables, ratios with intervals, disparities.

The reader's names are re-exported here (`from citykit.standards import load_metrics`).
"""

from citykit.standards.reader import (
    Category,
    DisaggregationStandard,
    DisparityRules,
    GeneralisationStep,
    KAnonymityRules,
    SmallCellRules,
    load_disaggregation,
    load_metrics,
    validate,
)

__all__ = [
    "Category",
    "DisaggregationStandard",
    "DisparityRules",
    "GeneralisationStep",
    "KAnonymityRules",
    "SmallCellRules",
    "load_disaggregation",
    "load_metrics",
    "validate",
]
