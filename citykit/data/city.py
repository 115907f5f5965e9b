"""Riverton's geography and residents: 24 neighborhoods in 8 council districts.

The shape is a jittered 6 x 4 grid of seed points turned into Voronoi cells (shapely) and clipped to
the city's outline, placed around 41.5 N, 81.7 W. Everything comes from the seed; the names do not.
Demographics are invented but shaped like a real mid-size US city: incomes from about $24k to
$145k, and neighborhoods whose majority is Black, Hispanic or White, or that are mixed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPoint, Polygon, box, mapping

from citykit.data.columns import NEIGHBORHOODS, RACE_ETHNICITY

NAMES = (
    # row 1 (south), west to east
    "Millbrook", "Cedar Flats", "Foundry Row", "Ashgrove", "Kessler Park", "Lakeview Terrace",
    "Old Quarry", "Tanner Hill", "Union Yards", "Brightwater", "Maple Commons", "Harbor Point",
    "Stillwater", "Riverside", "Canal District", "Elm Heights", "Juniper Gardens", "Northgate",
    "Orchard Glen", "Copper Bend", "Ironwood", "Bellhaven", "Fairmount", "Summit Ridge",
)  # fmt: skip
COLUMNS, ROWS = 6, 4  # 24 cells; each district is 3 cells side by side in one row
CENTER = (41.50, -81.70)  # lat, lon: a plausible Great Lakes spot (the city is invented)
HALF_SPAN = (0.075, 0.115)  # degrees lat, lon: about 17 km x 19 km
CITY_HALL = (41.5012, -81.6934)  # lat, lon: inside the city, for maps
# A geocoder's default point, outside the city, that failed geocodes fall back to (Baltimore's
# export has 39.0,-77.0 the same way): published as-is and flagged, never repaired.
PLACEHOLDER_POINT = (41.0, -82.0)
POPULATION = 600_000
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_AT_EQUATOR = 111.320

# SPD-15 "alone" shares (order of RACE_ETHNICITY, then Multiracial and/or Multiethnic) per kind
# of neighborhood; each neighborhood draws its own mix around one of these.
RACE_ORDER = (*RACE_ETHNICITY, "multiracial")
COMPOSITIONS = {
    "majority Black": (0.006, 0.02, 0.66, 0.08, 0.012, 0.003, 0.17, 0.049),
    "majority Hispanic": (0.012, 0.02, 0.12, 0.60, 0.012, 0.004, 0.17, 0.062),
    "mixed": (0.008, 0.08, 0.27, 0.18, 0.05, 0.005, 0.35, 0.057),
    "Asian and MENA plurality": (0.006, 0.20, 0.11, 0.11, 0.14, 0.008, 0.36, 0.066),
    "majority White": (0.007, 0.06, 0.08, 0.07, 0.02, 0.003, 0.72, 0.04),
}
# Kinds by income rank (poorest first): residential segregation by income is what makes a
# citywide average hide who is left behind.
KIND_BY_INCOME_RANK = (
    ["majority Black"] * 5 + ["majority Hispanic"] * 3
    + ["mixed"] * 5 + ["Asian and MENA plurality"] * 3
    + ["majority White"] * 6 + ["Asian and MENA plurality"] * 1 + ["mixed"] * 1
)  # fmt: skip


@dataclass(frozen=True)
class City:
    """The city's shape and neighborhood table (one row per neighborhood, canonical columns)."""

    neighborhoods: pd.DataFrame
    polygons: tuple[Polygon, ...]  # in the order of `neighborhoods`; x = longitude, y = latitude
    outline: Polygon

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) of the city."""
        return tuple(self.outline.bounds)  # type: ignore[return-value]

    def geojson(self) -> dict:
        features = [
            {
                "type": "Feature",
                "properties": {"neighborhood": row.neighborhood, "council_district": int(row.council_district)},
                "geometry": mapping(polygon),
            }
            for row, polygon in zip(self.neighborhoods.itertuples(), self.polygons)
        ]
        return {"type": "FeatureCollection", "name": "riverton_neighborhoods", "features": features}

    def write_geojson(self, path: Path) -> None:
        path.write_text(json.dumps(self.geojson(), indent=1), encoding="utf-8")


def area_km2(polygon: Polygon) -> float:
    """Area of a lon/lat polygon in km², by the local equirectangular scale (good at city size)."""
    km_per_deg_lon = KM_PER_DEG_LON_AT_EQUATOR * math.cos(math.radians(CENTER[0]))
    return polygon.area * km_per_deg_lon * KM_PER_DEG_LAT


def _shape(rng: np.random.Generator) -> tuple[tuple[Polygon, ...], Polygon]:
    lat0, lon0 = CENTER
    dlat, dlon = HALF_SPAN
    outline = box(lon0 - dlon, lat0 - dlat, lon0 + dlon, lat0 + dlat)
    cell_w, cell_h = 2 * dlon / COLUMNS, 2 * dlat / ROWS
    cols, rows = np.meshgrid(np.arange(COLUMNS), np.arange(ROWS))
    x = lon0 - dlon + (cols.ravel() + 0.5 + rng.uniform(-0.3, 0.3, cols.size)) * cell_w
    y = lat0 - dlat + (rows.ravel() + 0.5 + rng.uniform(-0.3, 0.3, rows.size)) * cell_h
    cells = shapely.voronoi_polygons(MultiPoint(np.column_stack([x, y])), extend_to=outline, ordered=True)
    polygons = tuple(shapely.intersection(shapely.get_parts(cells), outline))
    return polygons, outline


def _demographics(rng: np.random.Generator, n: int) -> pd.DataFrame:
    weights = rng.lognormal(0.0, 0.35, n)
    population = np.floor(POPULATION * weights / weights.sum()).astype(np.int64)
    population[0] += POPULATION - population.sum()
    income = np.round(np.geomspace(24_000, 145_000, n) / 100) * 100  # poorest first
    order = rng.permutation(n)  # neighborhood i gets the income of rank order[i]
    kinds = [KIND_BY_INCOME_RANK[rank] for rank in order]
    table = pd.DataFrame(
        {
            "population": population,
            "households": np.round(population / rng.uniform(2.0, 2.9, n)).astype(np.int64),
            "median_household_income": income[order].astype(np.int64),
        }
    )
    counts = np.vstack(
        [rng.multinomial(p, rng.dirichlet(np.array(COMPOSITIONS[k]) * 300)) for p, k in zip(population, kinds)]
    )
    for j, code in enumerate(RACE_ORDER):
        table[f"pop_{code}"] = counts[:, j].astype(np.int64)
    return table


def build_city(rng: np.random.Generator) -> City:
    polygons, outline = _shape(rng)
    n = len(polygons)
    table = _demographics(rng, n)
    table.insert(0, "neighborhood", list(NAMES[:n]))
    index = np.arange(n)
    table.insert(1, "council_district", (index // COLUMNS) * 2 + (index % COLUMNS) // 3 + 1)
    table["area_km2"] = [round(area_km2(p), 3) for p in polygons]
    return City(neighborhoods=table[list(NEIGHBORHOODS)], polygons=polygons, outline=outline)


def sample_points(rng: np.random.Generator, polygon: Polygon, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` uniform random (lat, lon) points inside `polygon` (rejection sampling in its box)."""
    min_x, min_y, max_x, max_y = polygon.bounds
    share = polygon.area / ((max_x - min_x) * (max_y - min_y))
    xs, ys, have = [], [], 0
    while have < n:
        batch = int((n - have) / share * 1.2) + 16
        x = rng.uniform(min_x, max_x, batch)
        y = rng.uniform(min_y, max_y, batch)
        inside = shapely.contains_xy(polygon, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    return np.concatenate(ys)[:n], np.concatenate(xs)[:n]
