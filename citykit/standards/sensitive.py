"""Coordinates of sensitive request types: blanked before service requests are published.

The list of sensitive request types comes from `curriculum/standards/disaggregation.yml`
(`citykit.standards.load_disaggregation`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from citykit.standards.reader import DisaggregationStandard, load_disaggregation


def blank_sensitive_coordinates(
    requests: pd.DataFrame, *, standard: DisaggregationStandard | None = None
) -> tuple[pd.DataFrame, int]:
    """Service requests with latitude/longitude null for the standard's sensitive request types.

    Returns the new table and how many rows lost their coordinates. Neighborhood and district are
    kept; 311 request counts are not tables of people and are not suppressed.
    """
    std = standard or load_disaggregation()
    out = requests.copy()
    sensitive = out["request_type"].isin(std.sensitive_request_types).to_numpy()
    out.loc[sensitive, ["latitude", "longitude"]] = np.nan
    return out, int(sensitive.sum())
