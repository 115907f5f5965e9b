"""Neighborhood maps from a dataset's boundaries GeoJSON, drawn with shapely and matplotlib.

    ax = maps.choropleth(per_1000, registry.get(dataset).boundaries_path, label="Requests per 1,000")

Each neighborhood is filled by its value on a color-blind-safe sequential colormap (cividis),
labelled by name, with a colorbar naming the measure; neighborhoods without a value are hatched
grey. No geopandas: the GeoJSON is read with `json` and each geometry with shapely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from citykit.errors import CitykitError

NAME_PROPERTY = "neighborhood"  # the feature property holding the neighborhood's name
COLORMAP = "cividis"  # sequential and readable with every common color-vision deficiency


def has_boundaries(path: Path) -> bool:
    """True when the dataset ships neighborhood boundaries (`citykit data import-boundaries`)."""
    return Path(path).exists()


def neighborhood_shapes(path: Path, name_property: str = NAME_PROPERTY) -> dict:
    """Neighborhood name -> shapely geometry, from a GeoJSON FeatureCollection."""
    from shapely.geometry import shape

    try:
        features = json.loads(Path(path).read_text(encoding="utf-8")).get("features", [])
    except (OSError, json.JSONDecodeError) as error:
        raise CitykitError(f"cannot read neighborhood boundaries at {path}: {error}") from None
    shapes = {}
    for feature in features:
        name = (feature.get("properties") or {}).get(name_property)
        if name is not None and feature.get("geometry"):
            shapes[str(name)] = shape(feature["geometry"])
    if not shapes:
        raise CitykitError(f"{path} has no features with a {name_property!r} property")
    return shapes


def _path_of(geometry):
    """A matplotlib Path for a (Multi)Polygon, holes included."""
    from matplotlib.path import Path as MplPath

    polygons = getattr(geometry, "geoms", [geometry])
    rings = [ring for polygon in polygons for ring in (polygon.exterior, *polygon.interiors)]
    return MplPath.make_compound_path(*(MplPath(np.asarray(ring.coords)[:, :2], closed=True) for ring in rings))


def choropleth(
    values: pd.Series,
    boundaries: Path,
    *,
    ax=None,
    label: str = "",
    title: str = "",
    highlight: str | None = None,
    cmap: str = COLORMAP,
    name_labels: bool = True,
):
    """Fill each neighborhood by `values` (indexed by neighborhood name); returns the Axes.

    `highlight` outlines one neighborhood in a thick line (the report's own neighborhood).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.patches import PathPatch

    shapes = neighborhood_shapes(boundaries)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    shown = pd.Series(values, dtype="float64").reindex(list(shapes))
    finite = shown.dropna()
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1)
    colormap = plt.get_cmap(cmap)
    for name, geometry in shapes.items():
        value = shown[name]
        missing = pd.isna(value)
        patch = PathPatch(
            _path_of(geometry),
            facecolor="#d9d9d9" if missing else colormap(norm(value)),
            edgecolor="black" if name == highlight else "white",
            linewidth=2.5 if name == highlight else 0.8,
            hatch="//" if missing else None,
        )
        ax.add_patch(patch)
        if name_labels:
            point = geometry.representative_point()
            light = not missing and norm(value) > 0.6  # dark text on the light end of cividis
            ax.annotate(
                name, (point.x, point.y), ha="center", va="center", fontsize=6.5,
                color="black" if missing or light else "white",
            )  # fmt: skip
    ax.autoscale_view()
    ax.grid(False)
    ax.set_aspect(1 / np.cos(np.radians(np.mean(ax.get_ylim()))))  # degrees of longitude shrink north
    ax.set_xlabel("Longitude")
    ax.set_ylabel("Latitude")
    if title:
        ax.set_title(title)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    ax.figure.colorbar(mappable, ax=ax, label=label, shrink=0.8)
    return ax
