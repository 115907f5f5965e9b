"""Import speed and peak memory on a large synthetic export, side by side with DuckDB's own CSV -> parquet.

    .venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--layout sf311_warehouse nyc311] [--repeat 3] [--quick]

Writes the export (with the real files' dirt: 0,0 coordinates, spelling variants, free text with
quoted line breaks, duplicate ids) to a temporary folder. Then, `--repeat` times and interleaved so
both sides run under the same load: DuckDB converts the same file to parquet (`COPY (FROM
read_csv(..., all_varchar = true)) TO ... (FORMAT parquet)`, in a child process: the floor an import
could reach), and `citykit.data.importers.import_requests` imports it into a fresh home (a child
process too). Each run prints both rates, their ratio, the peak resident memory of each child and
the machine's load; then the medians. `--quick` (CI) runs 20,000 rows of each layout once, to prove
the benchmark still runs; no target is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TYPES = [
    "Street and Sidewalk Cleaning",
    "Graffiti",
    "Abandoned Vehicle",
    "Streetlights",
    "Sewer Issues",
    "Noise Report",
]
VARIANTS = ["street and sidewalk cleaning", "Graffiti ", "Abandoned  Vehicle"]


CHUNK = 1_000_000  # rows generated and written at a time, so the generator stays small too


def us_time(times: np.ndarray) -> np.ndarray:
    """Timestamps as NYC's export writes them: 01/31/2025 02:15:00 PM."""
    return pc.strftime(pa.array(times.astype("datetime64[s]")), "%m/%d/%Y %I:%M:%S %p").to_numpy(zero_copy_only=False)


def synthetic_export(path: Path, rows: int, layout: str, seed: int = 311) -> None:
    """`rows` requests in `layout`, written in chunks (the header once)."""
    with path.open("wb") as sink:
        for i, start in enumerate(range(0, rows, CHUNK)):
            table = _chunk(min(CHUNK, rows - start), start, layout, np.random.default_rng(seed + i))
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=i == 0))


def _chunk(rows: int, first_id: int, layout: str, rng: np.random.Generator) -> pa.Table:
    start = np.datetime64("2020-01-01T00:00:00")
    created = start + rng.integers(0, 5 * 365 * 86400, rows).astype("timedelta64[s]")
    closed = created + rng.exponential(3 * 86400, rows).astype("timedelta64[s]")
    open_ = rng.random(rows) < 0.05
    types = rng.choice(TYPES, rows)
    variant = rng.random(rows) < 0.01
    types[variant] = rng.choice(VARIANTS, int(variant.sum()))
    zero = rng.random(rows) < 0.4
    lat = np.where(zero, 0.0, 37.70 + rng.random(rows) * 0.12)
    lon = np.where(zero, 0.0, -122.50 + rng.random(rows) * 0.13)
    ids = np.arange(first_id, first_id + rows).astype(str)
    ids[-100:] = ids[:100]  # repeated ids, as in exports cut across a day boundary
    notes = np.where(rng.random(rows) < 0.02, "called back,\nno answer", "Case closed.")
    address = np.char.add(rng.integers(1, 3000, rows).astype(str), " MARKET ST")
    hoods = rng.choice(["Mission", "Sunset", "Bayview", "Excelsior", ""], rows)
    fmt = lambda t: np.datetime_as_string(t, unit="s")  # noqa: E731
    if layout == "sf311_warehouse":
        columns = {
            "unique_key": ids, "created_date": np.char.add(np.char.replace(fmt(created), "T", " "), "+00:00"),
            "closed_date": np.where(open_, "", np.char.add(np.char.replace(fmt(closed), "T", " "), "+00:00")),
            "status": np.where(open_, "Open", "Closed"), "status_notes": notes, "agency_name": "DPW Ops Queue",
            "category": types, "complaint_type": "other", "descriptor": "", "incident_address": address,
            "supervisor_district": rng.integers(1, 12, rows).astype(str), "neighborhood": hoods,
            "source": rng.choice(["Phone", "Web", "Mobile/Open311"], rows), "latitude": lat, "longitude": lon,
        }  # fmt: skip
    else:
        columns = {
            "Unique Key": ids, "Created Date": us_time(created), "Closed Date": np.where(open_, "", us_time(closed)),
            "Agency": "DSNY", "Complaint Type": types, "Descriptor": "", "Incident Zip": "10001",
            "Incident Address": address, "Status": np.where(open_, "Open", "Closed"),
            "Resolution Description": notes, "Community Board": hoods, "Borough": "MANHATTAN",
            "Open Data Channel Type": rng.choice(["PHONE", "ONLINE", "MOBILE"], rows),
            "Latitude": np.where(zero, 0.0, 40.6 + rng.random(rows) * 0.2),
            "Longitude": np.where(zero, 0.0, -74.0 + rng.random(rows) * 0.2),
        }  # fmt: skip
    return pa.table({k: pa.array(np.broadcast_to(v, rows)) for k, v in columns.items()})


# Peak memory: the child's own high-water mark (VmHWM starts afresh at exec; ru_maxrss would keep
# the forking parent's, which holds the generated export).
PEAK = """
def peak_mb():
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
IMPORT = (
    PEAK
    + """
import sys, time
from citykit.data.importers import import_requests
t = time.perf_counter()
result = import_requests(sys.argv[1], sys.argv[2], name="bench")
print(result.rows_read, time.perf_counter() - t, peak_mb())
"""
)
# The floor: DuckDB's own CSV -> parquet of the same file, every column as text, all cores.
FLOOR = (
    PEAK
    + """
import sys, time
import duckdb
t = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("COPY (FROM read_csv($csv, all_varchar = true)) TO $out (FORMAT parquet)", {"csv": sys.argv[1], "out": sys.argv[2]})
rows = con.execute("SELECT count(*) FROM read_parquet($out)", {"out": sys.argv[2]}).fetchone()[0]
print(rows, time.perf_counter() - t, peak_mb())
"""
)


def machine() -> str:
    """Date, cores and load: every figure is quoted with them."""
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {one:.2f} {five:.2f} {fifteen:.2f}"


def child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Rows, seconds and peak resident MB of `code` run in a fresh Python (its last output line)."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    rows, seconds, peak = done.stdout.strip().splitlines()[-1].split()
    return int(rows), float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layout", nargs="+", default=["sf311_warehouse", "nyc311"])
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the exports (default: a temporary folder)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side, interleaved; medians are printed")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one run: checks the benchmark runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 20_000, 1
    print(f"bench_import: {args.rows:,} rows, {args.repeat} run(s) of each side; {machine()}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for layout in args.layout:
            path = Path(tmp) / f"{layout}.csv"
            synthetic_export(path, args.rows, layout)
            size = path.stat().st_size / 1e6
            ours, floor, ratios, peaks, floor_peaks = [], [], [], [], []
            for run in range(args.repeat):  # side by side: each import right after its floor, same load
                target = Path(tmp) / f"duckdb_{layout}.parquet"
                rows, seconds, peak = child(FLOOR, str(path), str(target))
                target.unlink()
                floor.append(rows / seconds)
                floor_peaks.append(peak)
                home = Path(tmp) / f"home_{layout}_{run}"
                env = {**os.environ, "CITYKIT_HOME": str(home)}
                rows, seconds, peak = child(IMPORT, layout, str(path), env=env)
                shutil.rmtree(home, ignore_errors=True)
                ours.append(rows / seconds)
                peaks.append(peak)
                ratios.append(ours[-1] / floor[-1])
                print(f"  {layout} run {run + 1}: import {ours[-1]:,.0f} rows/s ({rows / ours[-1]:.1f} s, peak "
                      f"{peak:,.0f} MB), DuckDB {floor[-1]:,.0f} rows/s ({rows / floor[-1]:.1f} s, peak "
                      f"{floor_peaks[-1]:,.0f} MB), ratio {ratios[-1]:.2f}; {machine()}", flush=True)  # fmt: skip
            print(f"{layout}: {rows:,} rows, {size:,.0f} MB CSV: import median {statistics.median(ours):,.0f} rows/s, "
                  f"peak memory {max(peaks):,.0f} MB; DuckDB CSV -> parquet (all text) median "
                  f"{statistics.median(floor):,.0f} rows/s; ratio import/DuckDB: median {statistics.median(ratios):.2f} "
                  f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.30)", flush=True)  # fmt: skip
            path.unlink()


if __name__ == "__main__":
    main()
