"""The published standards and the methods they set.

- `reader` — reads and validates `metrics.yml`, `disaggregation.yml` and `quality.yml` (the course's
  copy when it has one, else the kit's): `load_metrics()`, `load_disaggregation()`;
- `kanonymity` — k-anonymity of person-level rows, generalising in the standard's order;
- `sensitive` — sensitive request types published without coordinates;
- `suppression` — small-cell suppression of tables of people, complementary cells and the audit;
- `privacy` — the public facade notebooks use (`citykit.privacy`) over the three above;
- `equity` — SPD-15 presentations, disaggregated tables, ratios with intervals, disparities.

The reader's names are re-exported here (`from citykit.standards import load_metrics`).
"""

from citykit.standards.reader import (
    Category,
    Collapse,
    DisaggregationStandard,
    DisparityRules,
    GeneralisationStep,
    KAnonymityRules,
    Program,
    SmallCellRules,
    load_disaggregation,
    load_metrics,
    validate,
)

__all__ = [
    "Category",
    "Collapse",
    "DisaggregationStandard",
    "DisparityRules",
    "GeneralisationStep",
    "KAnonymityRules",
    "Program",
    "SmallCellRules",
    "load_disaggregation",
    "load_metrics",
    "validate",
]
