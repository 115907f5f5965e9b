"""Neighborhood maps from a dataset's boundaries GeoJSON, drawn with shapely and matplotlib.

    ax = maps.choropleth(per_1000, registry.get(dataset).boundaries_path, label="Requests per 1,000")

Each neighborhood is filled by its value on a color-blind-safe sequential colormap (cividis),
labelled by name in 9-pt type, black or white, whichever contrasts more with the fill (at least
4.6:1, WCAG AA for text), with a colorbar naming
the measure; neighborhoods without a value are hatched grey. No coordinate axes: a reader needs the
places, not their latitude. The values drawn stay on the Axes (`citykit_values`), so the report's
alt text can name the highest and lowest neighborhood. No geopandas: the GeoJSON is read with
`json` and each geometry with shapely.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from citykit.errors import CitykitError

NAME_PROPERTY = "neighborhood"  # the feature property holding the neighborhood's name
COLORMAP = "cividis"  # sequential and readable with every common color-vision deficiency
LABEL_POINTS = 9  # neighborhood names: never smaller
MISSING_FILL = "#d9d9d9"


def luminance(color) -> float:
    """WCAG relative luminance of a matplotlib colour."""
    from matplotlib.colors import to_rgb

    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color)]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(a, b) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def label_color(fill) -> str:
    """Black or white, whichever contrasts more with `fill` (never below 4.58:1)."""
    return "black" if contrast(fill, "black") >= contrast(fill, "white") else "white"


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
        _, ax = plt.subplots(figsize=(8, 7))
    shown = pd.Series(values, dtype="float64").reindex(list(shapes))
    finite = shown.dropna()
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1)
    colormap = plt.get_cmap(cmap)
    for name, geometry in shapes.items():
        value = shown[name]
        missing = pd.isna(value)
        fill = MISSING_FILL if missing else colormap(norm(value))
        patch = PathPatch(
            _path_of(geometry),
            facecolor=fill,
            edgecolor="black" if name == highlight else "white",
            linewidth=2.5 if name == highlight else 0.8,
            hatch="//" if missing else None,
            zorder=3 if name == highlight else 1,  # its outline drawn over its neighbours' edges
            clip_on=name != highlight,  # and never cut at the edge of the axes
        )
        ax.add_patch(patch)
        if name_labels:
            point = geometry.representative_point()
            ax.annotate(_wrap(name), (point.x, point.y), ha="center", va="center", fontsize=LABEL_POINTS,
                        color=label_color(fill))  # fmt: skip
    ax.margins(0.03)  # room around the city, so an outline on its edge shows whole
    ax.autoscale_view()
    ax.grid(False)
    ax.set_aspect(1 / np.cos(np.radians(np.mean(ax.get_ylim()))))  # degrees of longitude shrink north
    ax.set_axis_off()  # no latitude and longitude: the names place the reader
    ax.citykit_values, ax.citykit_label = shown, label  # the data drawn, for the alt text
    if title:
        ax.set_title(title)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    bar = ax.figure.colorbar(mappable, ax=ax, label=label, shrink=0.8)
    bar.ax.tick_params(labelsize=LABEL_POINTS + 1)
    return ax


def _wrap(name: str, width: int = 11) -> str:
    """A long name on two lines ("Lakeview\nTerrace"), so labels crowd each other less."""
    words = str(name).split()
    if len(name) <= width or len(words) < 2:
        return str(name)
    best = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(" ".join(words[i:]))))
    return " ".join(words[:best]) + "\n" + " ".join(words[best:])
