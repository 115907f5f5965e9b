"""`citykit.privacy` for notebooks: one namespace for the privacy methods of the disaggregation standard.

A facade, nothing more: the code lives in `kanonymity` (person-level rows), `sensitive` (coordinates
of sensitive request types) and `suppression` (count tables and their audit). Library code imports
those modules; lessons write `from citykit import privacy` and `privacy.count_table(...)`.
"""

from citykit.standards.kanonymity import KAnonymityReport, k_anonymize, race_columns
from citykit.standards.sensitive import blank_sensitive_coordinates
from citykit.standards.suppression import (
    TOTAL,
    AuditReport,
    PublishedTable,
    Relation,
    audit,
    combination_relations,
    count_table,
    primary_suppression,
    same_entries,
    subtotal_relations,
    suppress,
    unpublished_table,
)

__all__ = [
    "TOTAL",
    "AuditReport",
    "KAnonymityReport",
    "PublishedTable",
    "Relation",
    "audit",
    "blank_sensitive_coordinates",
    "combination_relations",
    "count_table",
    "k_anonymize",
    "primary_suppression",
    "race_columns",
    "same_entries",
    "subtotal_relations",
    "suppress",
    "unpublished_table",
]
