"""Learners' answers as data files: written in the learner's (sandboxed) kernel, read by the scorer.

Grading runs a learner's notebook in a sandbox, then scores every test in a process that never ran
learner code (`citykit.grading.scoring`). What crosses between them is data only, never pickle:

- a DataFrame, Series or Index: parquet, index kept (labels that parquet cannot name, such as
  numbers or tuples, travel in the manifest);
- a numpy array: `.npy` without pickled objects;
- numbers, text, booleans, None, lists, tuples, sets, dicts, numpy scalars, timestamps, dates and
  durations: JSON with type tags (`{"$tuple": [...]}`), so each comes back as the same type;
- a matplotlib Figure or Axes: its data form (title, labels, ticks, bars, lines, points, legend),
  redrawn as a real Figure by the scorer;
- a function: the results of the calls the course declares (`calls:` in course.yml `answers:`),
  computed in the sandbox; the scorer gets a function that answers those calls, matched by the
  arguments' data;
- anything else is refused, with the reason, and the tests see no such answer.

`export` runs in the kernel (it imports pandas lazily); `read_answers` runs in the scorer and trusts
nothing in the folder: regular files only (no links), each within the size limit, parquet with
plain column types only, and a cap on the data's size once decompressed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import stat
import types
from pathlib import Path
from typing import Any

MANIFEST = re.compile(r"^answers-(\d{1,4})\.json$")
DATA_FILE = re.compile(r"^(\d{1,6})\.(parquet|npy)$")
MAX_ITEMS = 100_000  # elements of a list/dict answer (JSON)
MAX_DEPTH = 20
MAX_CHART_ITEMS = 20_000  # bars, points or line vertices of a chart answer
EXPANSION = 20  # parquet data may be at most this many times the answer size limit once decompressed


FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.BuiltinMethodType,
             functools.partial)  # fmt: skip


class Refused(Exception):
    """An answer that cannot travel as data (the message says why, to the learner)."""


# ---------------------------------------------------------------------------------- in the kernel


def export(namespace: dict, grade_id: str, spec: dict, folder: str, limit_bytes: int) -> None:
    """Write the answers `spec` names (name -> None, or {"calls": [argument expressions]}) from
    `namespace` into `folder`, as data; a name not defined is left out (the exercise is not answered)."""
    out = Path(folder)
    writer = _Writer(out, limit_bytes)
    answers: dict[str, Any] = {}
    for name, options in spec.items():
        if name not in namespace:
            continue
        value = namespace[name]
        try:
            if options and options.get("calls") is not None:
                answers[name] = writer.function(value, options["calls"], namespace)
            else:
                answers[name] = writer.value(value)
        except Refused as why:
            answers[name] = {"kind": "refused", "why": str(why)}
        except Exception as error:
            answers[name] = {"kind": "refused", "why": f"it could not be read ({type(error).__name__}: {error})"[:500]}
    text = json.dumps({"grade_id": grade_id, "answers": answers}, allow_nan=True)
    number = len([p for p in out.iterdir() if MANIFEST.match(p.name)])
    (out / f"answers-{number}.json").write_text(text, encoding="utf-8")


class _Writer:
    def __init__(self, folder: Path, limit_bytes: int):
        self.folder, self.limit = folder, limit_bytes

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def _file(self, suffix: str, data: bytes) -> str:
        if self.used() + len(data) > self.limit:
            raise Refused(f"it is too large to grade ({len(data) / 2**20:.1f} MB; answers may take "
                          f"{self.limit / 2**20:.0f} MB in all)")  # fmt: skip
        number = len([p for p in self.folder.iterdir() if DATA_FILE.match(p.name)])
        name = f"{number}.{suffix}"
        (self.folder / name).write_bytes(data)
        return name

    def value(self, value: Any, depth: int = 0) -> dict:
        if depth > MAX_DEPTH:
            raise Refused("it is nested too deeply")
        if value is None or type(value) in (bool, str, int, float):  # a kernel without pandas need not import it
            return self._json(encode(value))
        import dataclasses

        import numpy as np
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
            return self.table(value)
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise Refused("it is an array of Python objects; make it a list, a Series or a DataFrame")
            import io

            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            return {"kind": "ndarray", "file": self._file("npy", buffer.getvalue())}
        chart = _chart_form(value)
        if chart is not None:
            return {"kind": "chart", "chart": chart}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name = f"{type(value).__module__}:{type(value).__qualname__}"
            if not name.startswith("citykit."):
                raise Refused(f"a {type(value).__qualname__} is not data (only citykit's own results travel whole)")
            fields = {f.name: self.value(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
            return {"kind": "dataclass", "class": name, "fields": fields}
        if isinstance(value, FUNCTIONS):  # not any callable: an object with __call__ is "not data", below
            raise Refused("it is a function; the course grades what it returns for declared calls")
        try:
            encoded = encode(value)
        except Refused:
            if type(value) in (list, tuple):
                return {"kind": type(value).__name__, "items": [self.value(v, depth + 1) for v in value]}
            if type(value) is dict:
                return {"kind": "dict", "items": [[encode(k), self.value(v, depth + 1)] for k, v in value.items()]}
            raise
        return self._json(encoded)

    def _json(self, encoded: Any) -> dict:
        if len(json.dumps(encoded)) > self.limit:
            raise Refused("it is too large to grade")
        return {"kind": "json", "value": encoded}

    def table(self, value: Any) -> dict:
        import io

        import pandas as pd

        kind = "frame" if isinstance(value, pd.DataFrame) else "series" if isinstance(value, pd.Series) else "index"
        frame = (
            value
            if kind == "frame"
            else value.to_frame(name="value")
            if kind == "series"
            else pd.DataFrame(index=value)
        )
        record: dict[str, Any] = {"kind": kind, "columns": encode(list(frame.columns)),
                                  "column_names": encode(list(frame.columns.names)),
                                  "index_names": encode(list(frame.index.names))}  # fmt: skip
        if kind == "series":
            record["name"] = encode(value.name)
        frame = frame.copy(deep=False)
        frame.columns = [str(i) for i in range(frame.shape[1])]
        frame.index = frame.index.set_names([f"i{i}" for i in range(frame.index.nlevels)])
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, engine="pyarrow", index=True, compression=None)  # reads 3x faster
        except Exception as error:
            raise Refused(f"a column holds values that are not plain data ({type(error).__name__}: "
                          f"{str(error)[:200]})") from None  # fmt: skip
        record["file"] = self._file("parquet", buffer.getvalue())
        return record

    def function(self, value: Any, calls: list[str], namespace: dict) -> dict:
        if not callable(value):
            raise Refused("it should be a function (def ...)")
        results = []
        for call in calls:
            try:
                args = eval(f"({call},)", namespace)
                result = value(*args)
            except Exception as error:
                results.append({"call": call, "error": [type(error).__name__, str(error)[:1000]]})
                continue
            try:
                results.append({"call": call, "result": self.value(result)})
            except Refused as why:
                results.append({"call": call, "error": ["TypeError", f"what it returned cannot be graded: {why}"]})
        return {"kind": "function", "calls": results}


def encode(value: Any, depth: int = 0, count: list[int] | None = None) -> Any:
    """A JSON-able form of a plain value, tagged so `decode` gives back the same type."""
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_ITEMS:
        raise Refused("it is nested too deeply or holds too many items")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and type(value) is int:
        return value if abs(value) < 2**53 else {"$int": str(value)}
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    import datetime as dt

    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64):
            return {"$np": value.dtype.str, "v": str(value)}
        if value.dtype.kind not in "biuf":
            raise Refused(f"a numpy {value.dtype} value is not plain data")
        return {"$np": value.dtype.str, "v": encode(value.item(), depth + 1, count)}
    if value is pd.NaT:
        return {"$nat": True}
    if value is pd.NA:
        return {"$na": True}
    if isinstance(value, pd.Timestamp):
        return {"$ts": int(value.value), "tz": str(value.tz) if value.tz is not None else None}
    if isinstance(value, pd.Timedelta):
        return {"$td": int(value.value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise Refused("a datetime with a time zone; use pd.Timestamp")
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if type(value) is list:
        return [encode(v, depth + 1, count) for v in value]
    if type(value) is tuple:
        return {"$tuple": [encode(v, depth + 1, count) for v in value]}
    if type(value) in (set, frozenset):
        return {"$set": [encode(v, depth + 1, count) for v in value], "frozen": type(value) is frozenset}
    if type(value) is dict:
        return {"$dict": [[encode(k, depth + 1, count), encode(v, depth + 1, count)] for k, v in value.items()]}
    raise Refused(f"a {type(value).__module__}.{type(value).__qualname__} is not data (grading takes a "
                  "DataFrame, Series, array, number, text, list, dict or chart)")  # fmt: skip


# ---------------------------------------------------------------------------------- charts


def _chart_form(value: Any) -> dict | None:
    """The data form of a matplotlib Figure or Axes (None for anything else)."""
    import sys

    if "matplotlib" not in sys.modules:
        return None
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        return {"figure": {"suptitle": value._suptitle.get_text() if value._suptitle else "",
                           "size": [float(x) for x in value.get_size_inches()],
                           "axes": [_axes_form(ax) for ax in value.axes]}}  # fmt: skip
    if isinstance(value, Axes):
        figure = value.get_figure()
        return {"figure": {"suptitle": "", "size": [float(x) for x in figure.get_size_inches()] if figure else [6.4, 4.8],
                           "axes": [_axes_form(value)]}, "axes": 0}  # fmt: skip
    return None


def _floats(values) -> list:
    out = [float(v) for v in values]
    if len(out) > MAX_CHART_ITEMS:
        raise Refused("the chart has too many points to grade")
    return [v if math.isfinite(v) else repr(v) for v in out]


def _color(color) -> list:
    from matplotlib.colors import to_rgba

    try:
        return [float(c) for c in to_rgba(color)]
    except (ValueError, TypeError):
        return [0.0, 0.0, 0.0, 1.0]


def _axes_form(ax) -> dict:
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle, Wedge

    patches = []
    for patch in ax.patches[:MAX_CHART_ITEMS]:
        base = {"facecolor": _color(patch.get_facecolor()), "edgecolor": _color(patch.get_edgecolor()),
                "label": str(patch.get_label())}  # fmt: skip
        if isinstance(patch, Rectangle):
            patches.append({"type": "rect", **base, "xy": _floats(patch.get_xy()),
                            "width": float(patch.get_width()), "height": float(patch.get_height())})  # fmt: skip
        elif isinstance(patch, Wedge):
            patches.append({"type": "wedge", **base, "center": _floats(patch.center), "r": float(patch.r),
                            "theta1": float(patch.theta1), "theta2": float(patch.theta2)})  # fmt: skip
    lines = [{"x": _floats(line.get_xdata(orig=False)), "y": _floats(line.get_ydata(orig=False)),
              "label": str(line.get_label()), "color": _color(line.get_color()), "linestyle": str(line.get_linestyle()),
              "marker": str(line.get_marker())} for line in ax.get_lines()]  # fmt: skip
    points = [{"offsets": [_floats(xy) for xy in c.get_offsets()], "label": str(c.get_label()),
               "facecolors": [_color(f) for f in c.get_facecolors()]}
              for c in ax.collections if isinstance(c, PathCollection)]  # fmt: skip
    legend = ax.get_legend()
    return {
        "title": ax.get_title(), "title_left": ax.get_title("left"), "title_right": ax.get_title("right"),
        "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "xlim": _floats(ax.get_xlim()), "ylim": _floats(ax.get_ylim()),
        "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
        "xticks": _floats(ax.get_xticks()), "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
        "yticks": _floats(ax.get_yticks()), "yticklabels": [t.get_text() for t in ax.get_yticklabels()],
        "patches": patches, "lines": lines, "points": points,
        "texts": [{"x": float(t.get_position()[0]), "y": float(t.get_position()[1]), "text": t.get_text()}
                  for t in ax.texts[:MAX_CHART_ITEMS]],
        "legend": {"title": legend.get_title().get_text(), "texts": [t.get_text() for t in legend.get_texts()]}
        if legend is not None else None,
        "position": _floats(ax.get_position().bounds),
    }  # fmt: skip


def _number(value) -> float:
    return float(value)  # "nan" and "inf" come as text


def draw_chart(form: dict):
    """A real matplotlib Figure (and the Axes a learner named, when the answer was an Axes) drawn
    from a chart's data form."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle, Wedge

    figure_form = form["figure"]
    size = [float(x) for x in figure_form.get("size", [6.4, 4.8])][:2]
    figure = plt.figure(figsize=size)
    if figure_form.get("suptitle"):
        figure.suptitle(str(figure_form["suptitle"]))
    for spec in figure_form.get("axes", []):
        ax = figure.add_axes([_number(v) for v in spec["position"]])
        for patch in spec.get("patches", []):
            if patch["type"] == "rect":
                artist = Rectangle([_number(v) for v in patch["xy"]], _number(patch["width"]), _number(patch["height"]),
                                   facecolor=patch["facecolor"], edgecolor=patch["edgecolor"], label=patch["label"])  # fmt: skip
            else:
                artist = Wedge([_number(v) for v in patch["center"]], _number(patch["r"]), _number(patch["theta1"]),
                               _number(patch["theta2"]), facecolor=patch["facecolor"], edgecolor=patch["edgecolor"],
                               label=patch["label"])  # fmt: skip
            ax.add_patch(artist)
        for line in spec.get("lines", []):
            ax.plot([_number(v) for v in line["x"]], [_number(v) for v in line["y"]], label=line["label"],
                    color=line["color"], linestyle=line["linestyle"],
                    marker=None if line["marker"] in ("None", "") else line["marker"])  # fmt: skip
        for points in spec.get("points", []):
            offsets = [[_number(v) for v in xy] for xy in points["offsets"]]
            ax.scatter([xy[0] for xy in offsets], [xy[1] for xy in offsets], label=points["label"],
                       c=points["facecolors"] or None)  # fmt: skip
        for text in spec.get("texts", []):
            ax.text(_number(text["x"]), _number(text["y"]), str(text["text"]))
        ax.set_xscale(spec.get("xscale", "linear"))
        ax.set_yscale(spec.get("yscale", "linear"))
        ax.set_xticks([_number(v) for v in spec.get("xticks", [])], [str(t) for t in spec.get("xticklabels", [])])
        ax.set_yticks([_number(v) for v in spec.get("yticks", [])], [str(t) for t in spec.get("yticklabels", [])])
        ax.set_xlim(*[_number(v) for v in spec["xlim"]])
        ax.set_ylim(*[_number(v) for v in spec["ylim"]])
        ax.set_title(str(spec.get("title", "")), loc="center")  # not rcParams' axes.titlelocation
        if spec.get("title_left"):
            ax.set_title(str(spec["title_left"]), loc="left")
        if spec.get("title_right"):
            ax.set_title(str(spec["title_right"]), loc="right")
        ax.set_xlabel(str(spec.get("xlabel", "")))
        ax.set_ylabel(str(spec.get("ylabel", "")))
        legend = spec.get("legend")
        if legend is not None:
            handles = ax.get_legend_handles_labels()[0]
            ax.legend(
                handles[: len(legend["texts"])], [str(t) for t in legend["texts"]], title=str(legend["title"]) or None
            )
    plt.close(figure)  # kept alive by the answer, not by pyplot's list of open figures
    if "axes" in form:
        return figure.axes[int(form["axes"])]
    return figure


# ---------------------------------------------------------------------------------- in the scorer


def decode(value: Any) -> Any:
    """The value `encode` wrote."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$int" in value:
        return int(str(value["$int"]))
    if "$float" in value:
        return float(str(value["$float"]))
    if "$np" in value:
        dtype = np.dtype(str(value["$np"]))
        if dtype.kind in "mM":
            return np.datetime64(str(value["v"])) if dtype.kind == "M" else np.timedelta64(str(value["v"]))
        if dtype.kind not in "biuf":
            raise Refused(f"unexpected numpy type {dtype}")
        return dtype.type(decode(value["v"]))
    if "$nat" in value:
        return pd.NaT
    if "$na" in value:
        return pd.NA
    if "$ts" in value:
        stamp = pd.Timestamp(int(value["$ts"]), unit="ns")
        return stamp.tz_localize("UTC").tz_convert(str(value["tz"])) if value.get("tz") else stamp
    if "$td" in value:
        return pd.Timedelta(int(value["$td"]), unit="ns")
    if "$datetime" in value:
        return dt.datetime.fromisoformat(str(value["$datetime"]))
    if "$date" in value:
        return dt.date.fromisoformat(str(value["$date"]))
    if "$timedelta" in value:
        days, seconds, micro = (int(v) for v in value["$timedelta"])
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if "$tuple" in value:
        return tuple(decode(v) for v in value["$tuple"])
    if "$set" in value:
        items = [decode(v) for v in value["$set"]]
        return frozenset(items) if value.get("frozen") else set(items)
    if "$dict" in value:
        return {decode(k): decode(v) for k, v in value["$dict"]}
    raise Refused("an unknown tag in the answers file")


class Folder:
    """Reads an answers folder a learner's kernel wrote to, refusing links, devices and oversized files."""

    def __init__(self, folder: Path, limit_bytes: int):
        self.folder, self.limit, self.read_bytes = Path(folder), limit_bytes, 0
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
        self.fd = os.open(self.folder, flags)

    def close(self) -> None:
        os.close(self.fd)

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def read(self, name: str) -> bytes:
        if not (MANIFEST.match(name) or DATA_FILE.match(name)):
            raise Refused(f"unexpected file {name!r}")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(name, flags, dir_fd=self.fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Refused(f"{name} is not a regular file")
            if self.read_bytes + info.st_size > self.limit:
                raise Refused("the answers are larger than the limit")
            chunks, left = [], info.st_size
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        self.read_bytes += len(data)
        return data


def read_file(path: Path, limit_bytes: int) -> bytes:
    """A regular file a learner's code may have written (no link followed), up to the limit."""
    folder = Folder(Path(path).parent, limit_bytes)
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(Path(path).name, flags, dir_fd=folder.fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit_bytes:
                raise Refused(f"{Path(path).name} is not a regular file within the limit")
            return os.read(fd, info.st_size) if info.st_size else b""
        finally:
            os.close(fd)
    finally:
        folder.close()


PLAIN_ARROW = ("bool", "int", "uint", "float", "halffloat", "double", "string", "large_string", "date", "timestamp",
               "duration", "time", "null", "decimal", "binary", "large_binary")  # fmt: skip


def _check_parquet(data: bytes, limit_bytes: int) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if expanded > EXPANSION * max(limit_bytes, 2**20):
        raise Refused("it is too large to grade once decompressed")
    for field in meta.schema.to_arrow_schema():
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not str(kind).startswith(PLAIN_ARROW):
            raise Refused(f"column type {field.type} is not plain data")


def _table(data: bytes, record: dict, limit_bytes: int):
    import io

    import pandas as pd
    import pyarrow.parquet as pq

    _check_parquet(data, limit_bytes)
    frame = pq.read_table(io.BytesIO(data)).to_pandas()
    columns = decode(record["columns"])
    if len(columns) != frame.shape[1]:
        raise Refused("the answers file does not match its table")
    names = decode(record["column_names"])
    if columns and all(isinstance(c, tuple) for c in columns) and len(names) > 1:
        frame.columns = pd.MultiIndex.from_tuples(columns, names=names)
    else:
        frame.columns = pd.Index(columns, dtype=object if not columns else None, name=names[0] if names else None)
        if not columns:
            frame.columns = pd.RangeIndex(0)
    frame.index = frame.index.set_names(decode(record["index_names"]))
    if record["kind"] == "frame":
        return frame
    if record["kind"] == "series":
        series = frame.iloc[:, 0]
        series.name = decode(record["name"])
        return series
    return frame.index


def _ndarray(data: bytes):
    import io

    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def read_value(folder: Folder, record: dict, limit_bytes: int, depth: int = 0) -> Any:
    """One answer from its manifest record (Refused: what the learner is told)."""
    if depth > MAX_DEPTH or not isinstance(record, dict):
        raise Refused("the answers file is not one grading wrote")
    kind = record.get("kind")
    if kind == "refused":
        raise Refused(str(record.get("why", "it is not data")))
    if kind in ("frame", "series", "index"):
        return _table(folder.read(str(record["file"])), record, limit_bytes)
    if kind == "ndarray":
        return _ndarray(folder.read(str(record["file"])))
    if kind == "json":
        return decode(record["value"])
    if kind == "chart":
        return draw_chart(record["chart"])
    if kind in ("list", "tuple"):
        items = [read_value(folder, item, limit_bytes, depth + 1) for item in record["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {decode(k): read_value(folder, v, limit_bytes, depth + 1) for k, v in record["items"]}
    if kind == "dataclass":
        return _dataclass(folder, record, limit_bytes, depth)
    raise Refused("the answers file is not one grading wrote")


def _dataclass(folder: Folder, record: dict, limit_bytes: int, depth: int) -> Any:
    """A citykit result (a dataclass of citykit's, such as a DisaggregatedTable) rebuilt from its
    fields: the class is looked up in citykit only, and no code of the answer runs."""
    import dataclasses
    import importlib

    module, _, qualname = str(record.get("class", "")).partition(":")
    if not module.startswith("citykit.") or not re.match(r"^[A-Za-z_][\w.]*$", module + "." + qualname):
        raise Refused("the answers file names a class outside citykit")
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        raise Refused(f"no citykit class {qualname}") from None
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise Refused(f"{qualname} is not a citykit result")
    instance = object.__new__(cls)
    given = record.get("fields") or {}
    for field in dataclasses.fields(cls):
        if field.name in given:
            value = read_value(folder, given[field.name], limit_bytes, depth + 1)
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            raise Refused(f"the {qualname} lacks its {field.name}")
        object.__setattr__(instance, field.name, value)
    return instance


def read_answers(path: Path, limit_bytes: int) -> dict[str, dict[str, Any]]:
    """grade_id -> name -> the manifest record, from the answers folder; the files are read later,
    through `Folder`, as each answer is needed. A folder that is not what grading made is empty."""
    answers: dict[str, dict[str, Any]] = {}
    try:
        folder = Folder(path, limit_bytes)
    except OSError:
        return answers
    try:
        manifests = sorted((n for n in folder.names() if MANIFEST.match(n)), key=lambda n: int(MANIFEST.match(n)[1]))
        for name in manifests:
            try:
                record = json.loads(folder.read(name).decode("utf-8"))
            except (Refused, ValueError, OSError):
                continue
            if isinstance(record, dict) and isinstance(record.get("answers"), dict):
                answers.setdefault(str(record.get("grade_id")), {}).update(record["answers"])
    finally:
        folder.close()
    return answers
