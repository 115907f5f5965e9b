"""Import speed and peak memory on a large synthetic export in the SF311 warehouse and NYC 311 layouts.

    .venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--layout sf311_warehouse nyc311] [--repeat 3] [--quick]

Writes the export (with the real files' dirt: 0,0 coordinates, spelling variants, free text with
quoted line breaks, duplicate ids) to a temporary folder, then runs `citykit data import` in a child
process (`--repeat` times, each into a fresh home) and reports the median rows per second and the
largest peak resident memory of the child beside the file size. Beside it, in the same run, DuckDB
converts the same file to parquet (`COPY (FROM read_csv(...)) TO ... (FORMAT parquet)`, every column
as text, in a child process too): the floor an import could reach, printed as a ratio. `--quick`
(CI) runs 20,000 rows of each layout once, to prove the benchmark still runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layout", nargs="+", default=["sf311_warehouse", "nyc311"])
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the exports (default: a temporary folder)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="imports of each export; the median speed is printed")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one run: checks the benchmark runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 20_000, 1
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for layout in args.layout:
            path = Path(tmp) / f"{layout}.csv"
            synthetic_export(path, args.rows, layout)
            print(f"{layout}: wrote {path.stat().st_size / 1e9:.2f} GB", flush=True)
            code = (
                "import sys, resource, time; from citykit.data.importers import import_requests;"
                "t=time.perf_counter(); r=import_requests(sys.argv[1], sys.argv[2], name='bench');"
                "print(r.rows_read, time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            )
            duck = (
                "import sys, time, duckdb; t=time.perf_counter(); con=duckdb.connect(); con.execute('SET enable_progress_bar = false');"
                'con.execute("COPY (FROM read_csv(?, all_varchar=true)) TO \'" + sys.argv[2] + "\' (FORMAT parquet)", [sys.argv[1]]);'
                "n=con.execute('SELECT count(*) FROM read_parquet(?)', [sys.argv[2]]).fetchone()[0];"
                "print(n, time.perf_counter()-t)"
            )
            speeds, peaks, duck_speeds = [], [], []
            for run in range(args.repeat):
                target = Path(tmp) / f"duckdb_{layout}_{run}.parquet"
                out = subprocess.run([sys.executable, "-c", duck, str(path), str(target)], capture_output=True, text=True,
                                     check=True)  # fmt: skip
                duck_rows, duck_seconds = out.stdout.split()
                duck_speeds.append(float(duck_rows) / float(duck_seconds))
                target.unlink()
                env = {**os.environ, "CITYKIT_HOME": str(Path(tmp) / f"home_{layout}_{run}")}
                out = subprocess.run([sys.executable, "-c", code, layout, str(path)], env=env, capture_output=True,
                                     text=True, check=True)  # fmt: skip
                rows, seconds, peak_kb = out.stdout.split()
                speeds.append(float(rows) / float(seconds))
                peaks.append(int(peak_kb) / 1024)
                shutil.rmtree(env["CITYKIT_HOME"], ignore_errors=True)
            size = path.stat().st_size / 1e6
            runs = ", ".join(f"{v:,.0f}" for v in speeds)
            print(f"{layout}: {int(rows):,} rows, {size:,.0f} MB CSV: median {statistics.median(speeds):,.0f} rows/s "
                  f"(runs: {runs}), peak memory {max(peaks):,.0f} MB", flush=True)  # fmt: skip
            floor = statistics.median(duck_speeds)
            print(
                f"{layout}: DuckDB CSV -> parquet (all text) median {floor:,.0f} rows/s; "
                f"ratio import/DuckDB: {statistics.median(speeds) / floor:.2f} (target >= 0.30)",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
