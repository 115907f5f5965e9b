"""The report's speed-ups change no output: `12-service-performance` for two neighborhoods, run one
after the other in one warm kernel (as a batch runs them), writes byte-identical tables to the same
runs on the plain paths (`CITYKIT_NO_CACHE=1`: compare_periods' rows read by every query, a new
DuckDB database per load); and "what changed" for a neighborhood holds the same figures, verdicts and
bootstrap intervals both ways. The fast bootstrap itself is checked against the one first written in
tests/data/test_bootstrap_identical.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import citykit
from citykit.data import changes
from citykit.data import comparisons as cmp
from citykit.reports.kernel import ReportKernel
from citykit.reports.run import run_report

REPORT = "12-service-performance"
HOODS = ("Millbrook", "Ashgrove")


def run_two(out: Path, env: dict[str, str]) -> dict[str, bytes]:
    kernel = ReportKernel(env={"CITYKIT_DUCKDB_THREADS": "1", **env}, reuse=True)
    tables: dict[str, bytes] = {}
    try:
        for hood in HOODS:
            result = run_report(REPORT, {"neighborhood": hood, "period": "2025-Q4"}, out / hood, kernel=kernel)
            for path in sorted((result.out / "tables").glob("*.csv")):
                tables[f"{hood}/{path.name}"] = path.read_bytes()
    finally:
        kernel.shutdown()
    return tables


@pytest.mark.slow
def test_tables_are_byte_identical_on_the_plain_paths(riverton, tmp_path):
    fast = run_two(tmp_path / "fast", {cmp.NO_CACHE_ENV: ""})
    plain = run_two(tmp_path / "plain", {cmp.NO_CACHE_ENV: "1"})
    assert len(fast) >= 2 * 6 and any("waits-by-request-type" in name for name in fast)
    assert fast.keys() == plain.keys()
    for name in fast:
        assert fast[name] == plain[name], name


def comparison(hood: str):
    found = changes.compare_periods("riverton", "2025-Q4", hood)
    intervals = {}
    for p in (0.5, 0.9):  # the bootstrap intervals behind the median and p90 verdicts, to the last bit
        now, before = found_waits(hood)
        intervals[p] = cmp.bootstrap_median_difference(now, before, 200, 0.95, 311, p)
    return found, intervals


def found_waits(hood: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = citykit.load("service_requests", dataset="riverton", neighborhood=hood, columns=["created_at", "closed_at"])
    created = pd.to_datetime(frame["created_at"])
    at = pd.Timestamp(citykit.dataset("riverton").now)
    now = cmp.waits(frame[created >= pd.Timestamp("2025-10-01")], at)
    before = cmp.waits(frame[(created >= pd.Timestamp("2025-07-01")) & (created < pd.Timestamp("2025-10-01"))], at)
    return now, before


def test_what_changed_is_identical_on_the_plain_paths(riverton, monkeypatch):
    monkeypatch.delenv(cmp.NO_CACHE_ENV, raising=False)
    fast, fast_intervals = comparison(HOODS[0])
    monkeypatch.setenv(cmp.NO_CACHE_ENV, "1")
    plain, plain_intervals = comparison(HOODS[0])
    assert fast_intervals == plain_intervals and None not in fast_intervals[0.5]
    assert fast.current == plain.current and fast.previous == plain.previous
    assert fast.verdicts == plain.verdicts
    pd.testing.assert_frame_equal(fast.by_type, plain.by_type, check_exact=True)
    assert (fast.by_type["median note"] == "").sum() >= 3  # types whose medians were bootstrapped


def test_report_figures_have_the_pixels_of_the_inline_backends_default_png():
    """The report kernel encodes figures at zlib level 3 (faster, no larger here): the image a reader
    sees decodes to exactly the pixels IPython's own printer gives (Pillow's default level 6)."""
    from jupyter_core.utils import run_sync

    code = (
        "import base64, io, matplotlib.pyplot as plt, numpy as np, seaborn as sns\n"
        "from IPython.core.pylabtools import print_figure\n"
        "from IPython.display import display\n"
        "fig, ax = plt.subplots(figsize=(6, 3))\n"
        "sns.barplot(x=np.arange(12) * 37 + 5, y=[f'Request type {i}' for i in range(12)], ax=ax)\n"
        "ax.set_title('Requests by type')\n"
        "fig.tight_layout()\n"
        "display(fig)\n"
        "print(print_figure(fig, 'png', base64=True), end='')\n"  # IPython's printer, Pillow's default level
        "plt.close(fig)\n"
    )
    kernel = ReportKernel(reuse=True).start()
    shown, stock = [], []

    def keep(msg):
        if msg["msg_type"] == "display_data":
            shown.append(msg["content"]["data"]["image/png"])
        elif msg["msg_type"] == "stream":
            stock.append(msg["content"]["text"])

    try:
        reply = run_sync(kernel.kc.execute_interactive)(code, timeout=60, output_hook=keep)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kernel.shutdown()
    import base64
    import io

    import numpy as np
    from PIL import Image

    ours, theirs = base64.b64decode(shown[0]), base64.b64decode("".join(stock))
    assert ours != theirs  # encoded differently (the level is applied) ...
    pixels = [np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")) for data in (ours, theirs)]
    assert pixels[0].shape == pixels[1].shape and (pixels[0] == pixels[1]).all()  # ... to the same image
