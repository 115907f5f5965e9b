"""The published standards and the methods they set.

- `reader` — reads and validates `metrics.yml`, `disaggregation.yml` and `quality.yml` (the course's
  copy when it has one, else the kit's): `load_metrics()`, `load_disaggregation()`;
  (`personal_columns()`, `identifier_columns()`: the standard's one table of columns of people);
- `kanonymity` — k-anonymity of person-level rows over every quasi-identifier, with the outcome rule;
- `pseudonyms` — published ids as keyed hashes of raw ids (the key in the data home, owner only);
- `coarsening` — periods on coarsened times (applications by month) must be whole units;
- `sensitive` — sensitive request types published without coordinates;
- `suppression` — small-cell suppression of tables of people, complementary cells and the audit;
- `releases` — tables of people published over time audited together (the release ledger's LP);
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
