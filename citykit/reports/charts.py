"""Charts for people: one colour-blind-safe palette, sorted bars that carry their values, legends
off the data, and alt text that states what the data show.

    ax = charts.bar(volume_by_type, title="Requests by type", label="Requests", top=15)
    ax = charts.lines(weekly, title="Requests per week", xlabel="Week", ylabel="Requests")
    ax = charts.ratio_dots(result, "rate_ratio", "rr_low", "rr_high", title=..., label="Language")

The report kernel sets the palette and type sizes once (`apply_style`) and passes every figure
through `prepare_figure` before it is drawn: a legend inside the axes moves outside them, up to 15
bars get their values written on them, ticks of 1,000 and more get a thousands separator, and no
text is smaller than 9 pt. `finding(fig)` reads the
data drawn (bars, lines, dots with intervals, scatters, `citykit.maps.choropleth` maps) and says
what they show: the largest and smallest value, where each line starts and ends and which way it
moved, the direction of a scatter; `citykit.reports.figures.figure_alt` makes it the alt text.
Set `fig.citykit_auto = False` to draw a figure exactly as made.
"""

from __future__ import annotations

import math
import re

# seaborn's "colorblind" palette (a variant of Okabe-Ito): told apart with every common colour-vision deficiency
PALETTE = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133",
           "#56b4e9"]  # fmt: skip
HIGHLIGHT = PALETTE[3]  # vermillion: the report's own neighborhood, a group beyond a screen
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]
MIN_POINTS = 9  # no text on a chart smaller than this
MAX_LABELLED_BARS = 15  # bars that carry their value
MAX_LABELLED_ROWS = 30  # horizontal bars (one row each, so their values never collide) that carry their value


def apply_style() -> None:
    """The one look of every report chart: seaborn's white grid, the palette, readable type."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette=PALETTE, rc={
        "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
        "legend.fontsize": 10, "legend.title_fontsize": 10, "font.size": 11, "axes.titlelocation": "left",
    })  # fmt: skip


# ------------------------------------------------------------------ every figure, before it is drawn


def prepare_figure(fig) -> None:
    """Legends off the data, values on few bars, thousands separators, nothing under 9 pt."""
    if getattr(fig, "citykit_auto", True) is False:
        return
    for ax in fig.get_axes():
        if _is_colorbar(ax):
            continue
        legend_outside(ax, only_inside=True)
        label_bars(ax)
        thousands(ax)
        for text in [*ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label]:
            if text.get_fontsize() < MIN_POINTS:
                text.set_fontsize(MIN_POINTS)
        legend = ax.get_legend()
        if legend is not None:
            for text in [*legend.get_texts(), legend.get_title()]:
                if text.get_fontsize() < MIN_POINTS:
                    text.set_fontsize(MIN_POINTS)


def thousands(ax) -> None:
    """Tick labels of 1,000 and more with a thousands separator (4,000 not 4000) on linear axes."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale != "linear" or not isinstance(axis.get_major_formatter(), ScalarFormatter):
            continue
        low, high = axis.get_view_interval()
        if max(abs(low), abs(high)) >= 1000:
            axis.set_major_formatter(
                FuncFormatter(lambda value, _: f"{value:,.0f}" if value == int(value) else f"{value:,}")
            )


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>" or hasattr(ax, "_colorbar")


def legend_outside(ax, title: str | None = None, *, only_inside: bool = False) -> None:
    """Move the Axes' legend to the right of the plot, where it cannot cover data.

    only_inside: leave a legend alone when it was already anchored somewhere (bbox_to_anchor)."""
    legend = ax.get_legend()
    if legend is None:
        return
    if only_inside and getattr(legend, "_bbox_to_anchor", None) is not None:
        anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        if anchor.x0 >= 1 or anchor.x1 <= 0 or anchor.y0 >= 1 or anchor.y1 <= 0:
            return  # already outside the axes
    handles = list(getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", []))
    labels = [t.get_text() for t in legend.get_texts()]
    old_title = legend.get_title().get_text()
    legend.remove()
    ax.legend(handles, labels, title=title if title is not None else (old_title or None), loc="upper left",
              bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False)  # fmt: skip


def label_bars(ax, kind: str | None = None) -> None:
    """Write each bar's value at its end when the Axes has no text yet and 1 to 15 bars (1 to 30
    horizontal bars, each on its own row)."""
    from matplotlib.container import BarContainer

    containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    count = sum(len(c) for c in containers)
    if not containers or ax.texts:
        return
    horizontal = _horizontal(containers[0])
    if count > (MAX_LABELLED_ROWS if horizontal else MAX_LABELLED_BARS):
        return
    values = [float(v) for c in containers for v in _bar_values(c, horizontal)]
    for container in containers:
        texts = [_short(v, kind, _axis_label(ax, horizontal)) for v in _bar_values(container, horizontal)]
        ax.bar_label(container, labels=texts, padding=3, fontsize=MIN_POINTS + 1)
    if values and min(values) >= 0:  # room for the labels at the ends of the longest bars
        low, high = ax.get_xlim() if horizontal else ax.get_ylim()
        if high > low:
            (ax.set_xlim if horizontal else ax.set_ylim)(low, high + 0.12 * (high - low))


def _horizontal(container) -> bool:
    orientation = getattr(container, "orientation", None)
    if orientation:
        return orientation == "horizontal"
    patches = list(container)
    return len({round(p.get_x(), 9) for p in patches}) == 1 and len({round(p.get_height(), 9) for p in patches}) == 1


def _bar_values(container, horizontal: bool) -> list[float]:
    values = getattr(container, "datavalues", None)
    if values is not None:
        return [float(v) for v in values]
    return [p.get_width() if horizontal else p.get_height() for p in container]


def _axis_label(ax, horizontal: bool) -> str:
    return ax.get_xlabel() if horizontal else ax.get_ylabel()


def _short(value: float, kind: str | None = None, axis_label: str = "", places: int | None = None) -> str:
    """A value as a label: 9,812 · 14.2 · 0.85 · 85.3% (when the axis speaks of %)."""
    if value is None or not math.isfinite(value):
        return "no value"
    percent = kind in ("share", "percent") or _speaks_percent(axis_label)
    if kind == "share":
        value *= 100
    if percent:
        text = f"{value:,.1f}"
    elif places is not None:
        text = f"{value:,.{places}f}"
    elif float(value).is_integer() and abs(value) >= 1:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text}%" if percent else text


def _speaks_percent(label: str) -> bool:
    """An axis in percent: "(%)", "% of ...", "percent"; not "95% intervals"."""
    return bool(re.search(r"(?<![\d.])%|percent", label or "", re.I))


def _places(values) -> int | None:
    """One precision for a set of values: none when all are whole numbers, else 1 or 2 decimals."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite or all(v.is_integer() for v in finite):
        return 0 if finite else None
    return 1 if max(abs(v) for v in finite) >= 10 else 2


# ------------------------------------------------------------------ the finding, from the data drawn


def figure_title(fig) -> str:
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    if suptitle:
        return " ".join(suptitle.split())
    for ax in fig.get_axes():
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t)
        if title:
            return ", ".join(part.strip() for part in title.split("\n") if part.strip())
    return ""


def finding(fig) -> str:
    """What the figure's data show, in a sentence or two (see the module docstring); "" if unknown."""
    sentences = []
    for ax in fig.get_axes():
        if _is_colorbar(ax):
            continue
        found = _map_finding(ax) or _bar_finding(ax) or _dot_finding(ax) or _line_finding(ax) or _scatter_finding(ax)
        if found:
            sentences.append(found)
    return " ".join(sentences)


def _tick_labels(ax, axis: str) -> dict[float, str]:
    """Tick position -> its label text, on a categorical axis (labels that are not numbers); else {}."""
    ticks = ax.get_yticks() if axis == "y" else ax.get_xticks()
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    found = {float(t): label.get_text() for t, label in zip(ticks, labels, strict=False) if label.get_text()}
    return found if any(not _numeric(text) for text in found.values()) else {}


def _numeric(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-").replace(",", "").replace("%", ""))
    except ValueError:
        return False
    return True


def _category(labels: dict[float, str], position: float) -> str | None:
    if not labels:
        return None
    nearest = min(labels, key=lambda t: abs(t - position))
    return labels[nearest] if abs(nearest - position) < 0.5 else None


def _extremes(pairs: list[tuple[str, float]], unit_label: str, noun: str) -> str:
    pairs = [(name, v) for name, v in pairs if v is not None and math.isfinite(v)]
    if not pairs:
        return ""
    places = _places(v for _, v in pairs)
    if len(pairs) == 1:
        name, value = pairs[0]
        return f"One {noun}: {name}, {_short(value, axis_label=unit_label, places=places)}."
    top = max(pairs, key=lambda p: p[1])
    bottom = min(pairs, key=lambda p: p[1])
    return (f"{len(pairs)} {noun}s. Largest: {top[0]}, {_short(top[1], axis_label=unit_label, places=places)}; "
            f"smallest: {bottom[0]}, {_short(bottom[1], axis_label=unit_label, places=places)}.")  # fmt: skip


def _map_finding(ax) -> str:
    values = getattr(ax, "citykit_values", None)
    if values is None:
        return ""
    label = getattr(ax, "citykit_label", "") or "value"
    finite = values.dropna()
    if finite.empty:
        return "Map: no neighborhood has a value."
    top, bottom = finite.idxmax(), finite.idxmin()
    missing = int(values.isna().sum())
    places = _places(finite.tolist())
    text = (f"Map of {len(values)} neighborhoods by {label.lower()}. Highest: {top}, "
            f"{_short(finite[top], axis_label=label, places=places)}; lowest: {bottom}, "
            f"{_short(finite[bottom], axis_label=label, places=places)}.")  # fmt: skip
    if missing:
        text += f" {missing} without a value (hatched grey)."
    return text


def _bar_finding(ax) -> str:
    from matplotlib.container import BarContainer

    containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    if not containers:
        return ""
    horizontal = _horizontal(containers[0])
    labels = _tick_labels(ax, "y" if horizontal else "x")
    pairs = []
    for container in containers:
        group = container.get_label() if not str(container.get_label()).startswith("_") else ""
        for patch, value in zip(container, _bar_values(container, horizontal), strict=False):
            centre = patch.get_y() + patch.get_height() / 2 if horizontal else patch.get_x() + patch.get_width() / 2
            name = _category(labels, centre) or f"{centre:g}"
            pairs.append((f"{name} ({group})" if group and len(containers) > 1 else name, float(value)))
    return _extremes(pairs, _axis_label(ax, horizontal), "bar")


def _dot_finding(ax) -> str:
    """Dots on a categorical axis (errorbar or scatter): each category's value."""
    from matplotlib.container import ErrorbarContainer

    points = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer) and container.lines[0] is not None:
            line = container.lines[0]
            points = list(zip(line.get_xdata(), line.get_ydata(), strict=False))
            break
    if not points:
        points = [(float(x), float(y)) for collection in ax.collections
                  if collection.__class__.__name__ == "PathCollection" for x, y in collection.get_offsets()]  # fmt: skip
    if not points:
        return ""
    ylabels, xlabels = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    on_y = bool(ylabels) and not xlabels and all(_category(ylabels, y) for _, y in points)
    on_x = bool(xlabels) and not ylabels and all(_category(xlabels, x) for x, _ in points)
    if on_y:
        return _extremes([(_category(ylabels, y), float(x)) for x, y in points], ax.get_xlabel(), "group")
    if on_x:
        return _extremes([(_category(xlabels, x), float(y)) for x, y in points], ax.get_ylabel(), "group")
    return ""


def _x_text(ax, x: float, where: str = "") -> str:
    """Where on the horizontal axis: its tick label, a date, "week 6"; or `where` ("start") when a
    categorical axis labels only some ticks."""
    labels = _tick_labels(ax, "x")
    if labels:
        nearest = min(labels, key=lambda t: abs(t - x))
        return labels[nearest] if abs(nearest - x) < 1e-9 else where
    get = getattr(ax.xaxis, "get_converter", None)  # matplotlib >= 3.10; the attribute before
    converter = get() if get is not None else getattr(ax.xaxis, "converter", None)
    if converter is not None and "date" in type(converter).__name__.lower():
        import matplotlib.dates as mdates

        return f"{mdates.num2date(x):%d %b %Y}"
    word = (ax.get_xlabel().split() or [""])[0].lower()
    return f"{word} {x:g}".strip()


def _at(text: str) -> str:
    return f" ({text})" if text else ""


def _line_finding(ax) -> str:
    lines = []
    for line in ax.get_lines():
        x, y = [list(map(float, v)) for v in line.get_data()]
        points = [(a, b) for a, b in zip(x, y, strict=False) if math.isfinite(a) and math.isfinite(b)]
        if len(points) < 3:  # reference lines and error-bar caps
            continue
        lines.append((line.get_label(), points))
    if not lines:
        return ""
    unit = ax.get_ylabel()
    lines.sort(key=lambda item: -max(b for _, b in item[1]))
    parts = []
    percent = _speaks_percent(unit)
    for name, points in lines[:3]:
        (x0, first), (x1, last) = points[0], points[-1]
        high = max(points, key=lambda p: p[1])
        low = min(points, key=lambda p: p[1])
        change = last - first
        if abs(change) <= 0.01 * max(abs(first), 1e-9):
            direction = "about level"
        else:
            size = f"{abs(change):.1f} percentage points" if percent else _short(abs(change), axis_label=unit)
            rel = f" ({change / first:+.0%})" if first else ""
            direction = f"{'up' if change > 0 else 'down'} {size}{rel}"
        who = f"{name}: " if name and not name.startswith("_") else ""
        parts.append(
            f"{who}from {_short(first, axis_label=unit)}{_at(_x_text(ax, x0, 'start'))} to "
            f"{_short(last, axis_label=unit)}{_at(_x_text(ax, x1, 'end'))}, {direction}; highest "
            f"{_short(high[1], axis_label=unit)}{_at(_x_text(ax, high[0]))}, lowest {_short(low[1], axis_label=unit)}"
            f"{_at(_x_text(ax, low[0]))}"
        )
    more = f" {len(lines) - 3} more lines." if len(lines) > 3 else ""
    text = "; ".join(parts) + "." + more
    return text[0].upper() + text[1:]


def _scatter_finding(ax) -> str:
    import pandas as pd

    for collection in ax.collections:
        if collection.__class__.__name__ != "PathCollection":
            continue
        offsets = [(float(x), float(y)) for x, y in collection.get_offsets()]
        points = [(x, y) for x, y in offsets if math.isfinite(x) and math.isfinite(y)]
        if len(points) < 3:
            continue
        frame = pd.DataFrame(points, columns=["x", "y"])
        rho = frame["x"].rank().corr(frame["y"].rank())
        x_name, y_name = (ax.get_xlabel() or "the horizontal value").lower(), (ax.get_ylabel() or "the value").lower()
        if rho is None or not math.isfinite(rho) or abs(rho) < 0.3:
            trend = f"no clear pattern between {x_name} and {y_name}"
        else:
            trend = f"where {x_name} is higher, {y_name} tends to be {'higher' if rho > 0 else 'lower'}"
        return f"{len(points)} points: {trend} (rank correlation {rho:+.2f})."
    return ""


# ------------------------------------------------------------------ chart helpers


def bar(values, *, title: str = "", label: str = "", kind: str | None = None, top: int | None = None,
        sort: bool = True, highlight: str | None = None, category: str | None = None, ax=None):  # fmt: skip
    """Horizontal bars of a Series (index: the categories), largest on top, each carrying its value
    when there are at most 30; `highlight` one category in vermillion. Returns the Axes."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from citykit.reports.labels import heading  # the data dictionary: only when a chart is drawn

    series = pd.Series(values).dropna()
    if sort:
        series = series.sort_values(ascending=False, kind="stable")
    if top:
        series = series.head(int(top))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.38 * max(len(series), 1) + 1.3))
    positions = list(range(len(series)))
    colors = [HIGHLIGHT if name == highlight else PALETTE[0] for name in series.index]
    container = ax.barh(positions, series.to_numpy(dtype=float), color=colors)
    ax.set_yticks(positions, [str(name) for name in series.index])
    ax.invert_yaxis()  # the first (largest) on top
    ax.set_xlabel(label)
    ax.set_ylabel(category if category is not None else (heading(series.index.name) if series.index.name else ""))
    if title:
        ax.set_title(title)
    ax.grid(axis="y", visible=False)
    if len(series) <= MAX_LABELLED_ROWS:  # one row per bar: values never collide
        ax.bar_label(container, labels=[_short(float(v), kind, label) for v in series], padding=3,
                     fontsize=MIN_POINTS + 1)  # fmt: skip
        if len(series) and series.min() >= 0:
            low, high = ax.get_xlim()
            ax.set_xlim(low, high + 0.12 * (high - low))
    return ax


def lines(frame, *, title: str = "", xlabel: str = "", ylabel: str = "", legend_title: str | None = None, ax=None):
    """One line per column of `frame` (index: the horizontal axis), each in its own colour and dash,
    the legend to the right of the plot. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    for number, (name, values) in enumerate(frame.items()):
        ax.plot(values.index, values.to_numpy(), linestyle=LINESTYLES[number % len(LINESTYLES)],
                color=PALETTE[number % len(PALETTE)], linewidth=2.2 if number == 0 else 1.6, label=str(name))  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if frame.shape[1] > 1:
        ax.legend(title=legend_title)
        legend_outside(ax)
    return ax


def ratio_dots(frame, ratio: str, low: str, high: str, *, title: str = "", label: str = "",
               xlabel: str = "Ratio to the reference group (1 = the same)", screen: tuple[float, float] = (0.8, 1.25),
               names: str | None = None, ax=None):  # fmt: skip
    """Ratios as dots with their intervals against a screen (the standard's 0.8 and 1.25): groups
    beyond it in vermillion diamonds, the others blue dots; each dot carries its value. Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    data = frame.dropna(subset=[ratio]).sort_values(ratio)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(data), 1) + 1.5))
    categories = data[names].astype(str) if names else data.index.astype(str)
    positions = list(range(len(data)))
    beyond = (data[ratio] < screen[0]) | (data[ratio] > screen[1])
    ax.errorbar(data[ratio], positions, xerr=[data[ratio] - data[low], data[high] - data[ratio]], fmt="none",
                ecolor="#555555", capsize=3, linewidth=1.2)  # fmt: skip
    for flag, marker, color in ((False, "o", PALETTE[0]), (True, "D", HIGHLIGHT)):
        chosen = beyond == flag
        ax.scatter(data.loc[chosen, ratio], [p for p, c in zip(positions, chosen, strict=True) if c], marker=marker,
                   color=color, zorder=3, s=45)  # fmt: skip
    for edge in (screen[0], 1.0, screen[1]):
        ax.axvline(
            edge, color="black" if edge == 1.0 else "#555555", linestyle="-" if edge == 1.0 else ":", linewidth=1
        )
    if len(data) <= MAX_LABELLED_BARS:  # each value right of its interval's end: clear of dots, whiskers, rows
        for position, value, end in zip(positions, data[ratio], data[high], strict=True):
            ax.annotate(f"{value:.2f}", (end, position), xytext=(4, 0), textcoords="offset points", ha="left",
                        va="center", fontsize=MIN_POINTS + 1)  # fmt: skip
        left, right = ax.get_xlim()
        ax.set_xlim(left, right + 0.12 * (right - left))  # room for the label of the rightmost interval
    ax.set_yticks(positions, list(categories))
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(label)
    if title:
        ax.set_title(title)
    ax.legend(handles=[
        Line2D([], [], marker="o", color=PALETTE[0], linestyle="", label=f"within {screen[0]:g}–{screen[1]:g}"),
        Line2D([], [], marker="D", color=HIGHLIGHT, linestyle="", label=f"beyond {screen[0]:g}–{screen[1]:g}"),
        Line2D([], [], color="#555555", label="95% interval"),
    ], title="Ratio")  # fmt: skip
    legend_outside(ax)
    return ax


def ratio_alt(panels, *, screen: tuple[float, float] = (0.8, 1.25), what: str = "approval rates") -> str:
    """Alt text of a dot chart of ratios, one or more panels: `panels` is [(name, ratios by group)],
    e.g. [("By language, against English", series)]. Per panel: how many groups, the highest and the
    lowest (or the one group), and the groups beyond the screen, named with their ratios."""
    parts = [f"Chart: {what} as ratios to the reference group's (1 = the same), with 95% intervals, against the "
             f"standard's screen of {screen[0]:g} to {screen[1]:g}."]  # fmt: skip

    def shown(value: float) -> str:  # 3 decimals where 2 would print a value as the screen's edge
        text = f"{value:.2f}"
        return f"{value:.3f}" if float(text) in screen and value not in screen else text

    for name, ratios in panels:
        ratios = ratios.dropna().sort_values()
        if ratios.empty:
            continue
        if len(ratios) == 1:
            found = f"One group: {ratios.index[0]}, {shown(ratios.iloc[0])}."
        else:
            found = (f"{len(ratios)} groups. Highest: {ratios.index[-1]}, {shown(ratios.iloc[-1])}; lowest: "
                     f"{ratios.index[0]}, {shown(ratios.iloc[0])}.")  # fmt: skip
        below = [f"{g} ({shown(v)})" for g, v in ratios.items() if v < screen[0]]
        above = [f"{g} ({shown(v)})" for g, v in ratios.items() if v > screen[1]]
        beyond = ([f"below {screen[0]:g}: {', '.join(below)}"] if below else []) + (
            [f"above {screen[1]:g}: {', '.join(above)}"] if above else []
        )
        found += (" Beyond the screen, " + "; ".join(beyond) + ".") if beyond else " No group beyond the screen."
        parts.append(f"{name}: {found}")
    return " ".join(parts)
