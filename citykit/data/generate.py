"""`citykit data build`: generate Riverton's raw export from a seed, then publish it anonymized.

Everything is vectorised numpy drawn from one `np.random.default_rng(seed)`; fake personal values
come from small Faker pools seeded with the same seed, so the same seed gives identical tables.
The aggregates the city is tuned to live in `datasets/calibration.yml` (with their sources), SLA
targets in `curriculum/standards/metrics.yml`, sensitive request types in the disaggregation
standard. Defects are planted at exact, recorded counts: `build.json` holds the ground truth.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from filelock import FileLock

from citykit import paths, standards
from citykit.data import anonymize, registry
from citykit.data.build_info import BUILD_FILE, data_fingerprint, standards_digest
from citykit.data.city import PLACEHOLDER_POINT, RACE_ORDER, City, build_city, sample_points
from citykit.data.columns import RACE_ETHNICITY
from citykit.errors import CitykitError

SCALES = ("tiny", "small", "default", "large")
DATASET_BY_SCALE = {"tiny": "riverton", "small": "riverton", "default": "riverton", "large": "riverton_large"}
POOL_SIZE = 5_000  # fake people (name, phone, email) drawn from, never one Faker call per row
STREET_POOL_SIZE = 400
PLACEHOLDER_CLOSE = np.datetime64("1900-01-01T00:00:00", "us")
US_PER_DAY = 86_400_000_000


# -- inputs -------------------------------------------------------------------------------------


def calibration_file() -> Path:
    return paths.kit_datasets_dir() / "calibration.yml"


def load_calibration() -> dict[str, Any]:
    with calibration_file().open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def sla_days() -> dict[str, float]:
    """Per-type SLA targets (calendar days) from `curriculum/standards/metrics.yml`."""
    return {k: float(v) for k, v in standards.load_metrics()["sla_days"].items()}


def fingerprint() -> str:
    """Hash of the generator code, its inputs and the library versions that shape its output."""
    import faker

    here = Path(__file__).resolve().parent
    files = [
        here / "generate.py", here / "anonymize.py", here / "city.py", here / "columns.py",
        here.parent / "standards" / "kanonymity.py", here.parent / "standards" / "sensitive.py",
        here.parent / "standards" / "pseudonyms.py", here.parent / "standards" / "suppression.py", calibration_file(),
        paths.standard_file("metrics.yml"), paths.standard_file("disaggregation.yml"),
    ]  # fmt: skip
    digest = hashlib.sha256(f"numpy {np.__version__} faker {faker.VERSION}".encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()[:16]


# -- fake people ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class People:
    """Pools of fake personal values; rows pick an index into them."""

    names: np.ndarray
    phones: np.ndarray
    emails: np.ndarray
    streets: np.ndarray

    def addresses(self, rng: np.random.Generator, n: int) -> np.ndarray:
        numbers = pd.Series(rng.integers(100, 9900, n)).astype(str)
        streets = pd.Series(self.streets[rng.integers(0, len(self.streets), n)])
        return (numbers + " " + streets).to_numpy(dtype=object)


def people_pools(seed: int, rng: np.random.Generator) -> People:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    first = [fake.first_name() for _ in range(POOL_SIZE)]
    last = [fake.last_name() for _ in range(POOL_SIZE)]
    domains = [fake.free_email_domain() for _ in range(20)]
    streets = sorted({fake.street_name() for _ in range(STREET_POOL_SIZE)})
    area = rng.choice(["216", "440", "330"], POOL_SIZE)
    exchange = rng.integers(200, 1000, POOL_SIZE)
    line = rng.integers(0, 10_000, POOL_SIZE)
    tail = rng.integers(1, 100, POOL_SIZE)
    pick = rng.integers(0, len(domains), POOL_SIZE)
    return People(
        names=np.array([f"{f} {s}" for f, s in zip(first, last)], dtype=object),
        phones=np.array([f"{a}-{e}-{x:04d}" for a, e, x in zip(area, exchange, line)], dtype=object),
        emails=np.array(
            [f"{f.lower()}.{s.lower()}{t}@{domains[d]}" for f, s, t, d in zip(first, last, tail, pick)],
            dtype=object,
        ),
        streets=np.array(streets, dtype=object),
    )


# -- service requests -----------------------------------------------------------------------------


def _choose(rng: np.random.Generator, mask: np.ndarray, count: int) -> np.ndarray:
    """`count` distinct row indices among those where `mask` is true."""
    candidates = np.flatnonzero(mask)
    return np.sort(rng.choice(candidates, size=min(count, candidates.size), replace=False))


def _row_choice(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row, each row with its own probability vector (rows of `probabilities`)."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cumulative[:, -1]
    return (u[:, None] > cumulative).sum(axis=1)


def _numbered(prefix: str, n: int, digits: int) -> np.ndarray:
    """Identifiers in order: SR-0000001, SR-0000002, ..."""
    return pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(digits).radd(prefix).to_numpy(dtype=object)


def type_variants(name: str) -> list[str]:
    """Spellings a portal lets through for `name`, each mapping back by case/space normalising."""
    variants = [name.lower(), name.upper(), name + " ", name.replace(" ", "")]
    variants.append(name.replace(" ", "  ", 1) if " " in name else name[:3] + " " + name[3:].lower())
    return [v for v in dict.fromkeys(variants) if v != name]


def _day_weights(days: pd.DatetimeIndex, peak_month: int, amplitude: float, weekend: float) -> np.ndarray:
    peak_day = dt.date(2001, peak_month, 15).timetuple().tm_yday
    seasonal = 1 + amplitude * np.cos(2 * np.pi * (days.day_of_year.to_numpy() - peak_day) / 365.25)
    weekday = np.where(days.day_of_week.to_numpy() >= 5, weekend, 1.0)
    w = seasonal * weekday
    return w / w.sum()


DAYTIME_HOURS = np.array([1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 10, 9, 9, 9, 8, 7, 6, 5, 4, 3, 2, 2, 1], float)
NIGHT_HOURS = np.array([6, 5, 4, 2, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 9, 8], float)


@dataclass
class Planted:
    """Ground truth: exact counts of each defect class planted in the raw export."""

    counts: dict[str, int] = field(default_factory=dict)
    detail: dict[str, int] = field(default_factory=dict)


def _draw_requests(
    rng: np.random.Generator, nb: pd.DataFrame, cal: dict[str, Any], n_total: int, now: dt.datetime
) -> pd.DataFrame:
    """Type, creation time, neighborhood, days to close and descriptor of every request, by type:
    the type mix, seasonality, volume by neighborhood income and the planted slow service."""
    spec = cal["request_types"]
    types = list(spec)
    start = pd.Timestamp(cal["period"]["start"])
    days = pd.date_range(start, pd.Timestamp(now) - pd.Timedelta(days=1), freq="D")
    income_ratio = (nb["median_household_income"] / nb["median_household_income"].median()).to_numpy()
    tercile = pd.qcut(nb["median_household_income"], 3, labels=["low", "middle", "high"]).astype(str).to_numpy()
    shares = np.array([spec[t]["share"] for t in types], float)
    per_type = rng.multinomial(n_total, shares / shares.sum())
    slow = cal["slow_service"]

    parts = []
    for t_idx, (name, n) in enumerate(zip(types, per_type)):
        s = spec[name]
        noise = name == "Noise Complaint"
        day = rng.choice(len(days), n, p=_day_weights(days, s["peak_month"], s["amplitude"], 1.3 if noise else 0.6))
        hours = NIGHT_HOURS if noise else DAYTIME_HOURS
        second = rng.choice(24, n, p=hours / hours.sum()) * 3600 + rng.integers(0, 3600, n)
        weights = nb["population"].to_numpy() * income_ratio ** s["income_elasticity"]
        hood = rng.choice(len(nb), n, p=weights / weights.sum())
        median = np.full(n, s["median_days"], float)
        if name == slow["request_type"]:
            median *= np.vectorize(slow["multiplier_by_income_tercile"].get)(tercile[hood])
        descriptors = cal["descriptors"][name]
        parts.append(
            pd.DataFrame(
                {
                    "type": np.full(n, t_idx, np.int16),
                    "created": days.to_numpy()[day].astype("datetime64[us]") + second.astype("timedelta64[s]"),
                    "hood": hood.astype(np.int16),
                    "days": median * np.exp(s["spread"] * rng.standard_normal(n)),
                    "descriptor": np.asarray(descriptors, dtype=object)[rng.integers(0, len(descriptors), n)],
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values(["created", "type", "hood"], kind="stable", ignore_index=True)


def _mark_duplicates(rng: np.random.Generator, df: pd.DataFrame, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Duplicates: a later request of the same type and neighborhood points at the one before it.
    Returns is_duplicate and the parent's row position (-1 for none); shortens duplicates' time to close."""
    n = len(df)
    by_group = df.sort_values(["type", "hood", "created"], kind="stable").index.to_numpy()
    kind, hood = df["type"].to_numpy()[by_group], df["hood"].to_numpy()[by_group]
    same_group = np.r_[False, (kind[1:] == kind[:-1]) & (hood[1:] == hood[:-1])]
    candidate = same_group & (rng.random(n) < rate * 1.05)
    candidate &= ~np.r_[False, candidate[:-1]]  # a parent is never itself a duplicate
    is_duplicate = np.zeros(n, bool)
    parent_pos = np.full(n, -1)
    is_duplicate[by_group[candidate]] = True
    parent_pos[by_group[candidate]] = by_group[np.flatnonzero(candidate) - 1]
    closed_as_duplicate = is_duplicate & (rng.random(n) < 0.85)  # most are closed within hours
    df.loc[closed_as_duplicate, "days"] = rng.exponential(0.3, int(closed_as_duplicate.sum()))
    return is_duplicate, parent_pos


def generate_requests(
    rng: np.random.Generator,
    city: City,
    cal: dict[str, Any],
    n_total: int,
    now: dt.datetime,
    people: People,
    sla: dict[str, float],
    sensitive: tuple[str, ...],
) -> tuple[pd.DataFrame, Planted]:
    """The raw service-request export (portal spelling, full-precision coordinates, personal data)."""
    spec = cal["request_types"]
    types = list(spec)
    nb = city.neighborhoods
    df = _draw_requests(rng, nb, cal, n_total, now)
    n = len(df)
    planted = Planted()
    type_names = np.array(types, dtype=object)
    is_duplicate, parent_pos = _mark_duplicates(rng, df, cal["defects"]["duplicate"])
    planted.counts["duplicate"] = int(is_duplicate.sum())

    created = df["created"].to_numpy()
    closed = created + (df["days"].to_numpy() * 86_400).astype("timedelta64[s]")
    stuck = ~is_duplicate & (rng.random(n) < cal["statuses"]["never_closed"])  # lost in a queue
    is_open = (closed >= np.datetime64(now, "us")) | stuck
    status = np.where(is_open, "Open", "Closed").astype(object)
    status[is_open & (rng.random(n) < cal["statuses"]["in_progress_share_of_open"])] = "In Progress"
    status[~is_open & (rng.random(n) < cal["statuses"]["cancelled_share_of_closed"])] = "Cancelled"
    closed = np.where(is_open, np.datetime64("NaT", "us"), closed.astype("datetime64[us]"))
    due = created + (np.array([sla[t] for t in types])[df["type"].to_numpy()] * US_PER_DAY).astype("timedelta64[us]")
    # Some requests carry no due date (entered by hand, or before the type had a target): the analysis falls
    # back to metrics.yml's target. Drawn from a child generator, so every other column stays as it was.
    no_due = _choose(rng.spawn(1)[0], np.ones(n, bool), round(cal["defects"]["missing_due_date"] * n))
    due[no_due] = np.datetime64("NaT", "us")
    planted.counts["missing_due_date"] = int(no_due.size)

    # Coordinates inside the named neighborhood's polygon.
    latitude, longitude = np.empty(n), np.empty(n)
    hood = df["hood"].to_numpy()
    for h, polygon in enumerate(city.polygons):
        rows = np.flatnonzero(hood == h)
        latitude[rows], longitude[rows] = sample_points(rng, polygon, rows.size)

    defects = cal["defects"]
    closed_rows = status == "Closed"
    before = _choose(rng, closed_rows, round(defects["closed_before_created"] * closed_rows.sum()))
    offset = (rng.uniform(0.02, 3.0, before.size) * 86_400).astype("timedelta64[s]")
    closed[before] = created[before] - offset
    placeholder_date = _choose(rng, closed_rows & ~np.isin(np.arange(n), before),
                               round(defects["placeholder_close_date"] * closed_rows.sum()))  # fmt: skip
    closed[placeholder_date] = PLACEHOLDER_CLOSE
    planted.counts["closed_before_created"] = int(before.size)
    planted.counts["placeholder_date"] = int(placeholder_date.size)

    not_sensitive = ~np.isin(type_names[df["type"].to_numpy()], sensitive)
    zero = _choose(rng, not_sensitive, round(defects["placeholder_coords_zero"] * n))
    remaining = not_sensitive & ~np.isin(np.arange(n), zero)
    default_point = _choose(rng, remaining, round(defects["placeholder_coords_default"] * n))
    latitude[zero], longitude[zero] = 0.0, 0.0
    latitude[default_point], longitude[default_point] = PLACEHOLDER_POINT
    planted.counts["placeholder_coords"] = int(zero.size + default_point.size)
    planted.detail.update(placeholder_coords_zero=int(zero.size), placeholder_coords_default=int(default_point.size))

    request_type = type_names[df["type"].to_numpy()].copy()
    variant_rows = _choose(rng, np.ones(n, bool), round(defects["type_variant"] * n))
    variants = {name: type_variants(name) for name in types}
    pick = rng.integers(0, 5, variant_rows.size)
    request_type[variant_rows] = [variants[t][p % len(variants[t])] for t, p in zip(request_type[variant_rows], pick)]
    planted.counts["type_variant"] = int(variant_rows.size)

    neighborhood = nb["neighborhood"].to_numpy(dtype=object)[hood]
    district = pd.array(nb["council_district"].to_numpy()[hood], dtype="Int64")
    missing = _choose(rng, np.ones(n, bool), round(defects["missing_neighborhood"] * n))
    neighborhood[missing] = None
    district[missing] = pd.NA
    planted.counts["missing_neighborhood"] = int(missing.size)

    request_id = _numbered("SR-", n, 7)
    parent_id = np.where(parent_pos >= 0, request_id[np.maximum(parent_pos, 0)], None)

    agencies = np.array([spec[t]["agency"] for t in types], dtype=object)
    channel = np.empty(n, dtype=object)
    years = created.astype("datetime64[Y]").astype(int) + 1970
    mixes = {int(year): mix for year, mix in cal["channels"].items()}
    for year in np.unique(years):
        mix = mixes.get(int(year), mixes[max(mixes)])
        rows = np.flatnonzero(years == year)
        p = np.array(list(mix.values()), float)
        channel[rows] = np.array(list(mix), dtype=object)[rng.choice(len(p), rows.size, p=p / p.sum())]

    raw = pd.DataFrame(
        {
            "request_id": request_id,
            "created_at": created,
            "closed_at": closed,
            "due_at": due,
            "status": status,
            "agency": agencies[df["type"].to_numpy()],
            "request_type": request_type,
            "descriptor": df["descriptor"].to_numpy(),
            "channel": channel,
            "neighborhood": neighborhood,
            "council_district": district,
            "latitude": latitude,
            "longitude": longitude,
            "is_duplicate": is_duplicate,
            "parent_request_id": parent_id,
        }
    )
    _add_caller(raw, rng, people)
    return raw, planted


def _add_caller(raw: pd.DataFrame, rng: np.random.Generator, people: People) -> None:
    """Personal data a 311 export carries: caller, exact address, and free text mentioning people."""
    n = len(raw)
    who = rng.integers(0, POOL_SIZE, n)
    anonymous = rng.random(n) < 0.15
    raw["incident_address"] = people.addresses(rng, n)
    raw["caller_name"] = np.where(anonymous, None, people.names[who])
    raw["caller_phone"] = np.where(anonymous, None, people.phones[who])
    raw["caller_email"] = np.where(anonymous | (rng.random(n) < 0.4), None, people.emails[who])
    other = rng.integers(0, POOL_SIZE, n)
    template = rng.choice(5, n, p=[0.40, 0.30, 0.15, 0.10, 0.05])
    address = pd.Series(raw["incident_address"].to_numpy(dtype=object))
    descriptor = pd.Series(raw["descriptor"].to_numpy(dtype=object))
    name, phone, email = (pd.Series(a[who]) for a in (people.names, people.phones, people.emails))
    other_name, other_phone = pd.Series(people.names[other]), pd.Series(people.phones[other])
    notes = pd.Series(np.full(n, None, dtype=object))
    candidates = {
        1: descriptor + " reported near " + address + ".",
        2: "Caller " + name + " asks for a call back at " + phone + ".",
        3: "Resident at " + address + " says this has happened before.\nContact " + email,
        4: "Neighbor " + other_name + " (" + other_phone + ") also called about this.",
    }
    for k, text in candidates.items():
        rows = template == k
        notes[rows] = text[rows]
    raw["notes"] = notes.to_numpy(dtype=object)


# -- program applications -------------------------------------------------------------------------


AGE_RANGES = {  # age band -> [youngest, oldest + 1) in years at submission
    "18-24": (18, 25), "25-34": (25, 35), "35-44": (35, 45), "45-54": (45, 55), "55-64": (55, 65), "65+": (65, 90),
}  # fmt: skip


def _pick(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    p = np.array(list(mix.values()), float)
    return np.array(list(mix), dtype=object)[rng.choice(len(p), n, p=p / p.sum())]


def generate_applications(
    rng: np.random.Generator, city: City, cal: dict[str, Any], n: int, now: dt.datetime, people: People
) -> pd.DataFrame:
    """Person-level Rental Assistance applications with the applicant's personal data (raw)."""
    spec = cal["applications"]
    nb = city.neighborhoods
    income_ratio = nb["median_household_income"] / nb["median_household_income"].median()
    weights = (nb["population"] * income_ratio ** spec["income_elasticity"]).to_numpy()
    hood = rng.choice(len(nb), n, p=weights / weights.sum())

    start = np.datetime64(str(cal["period"]["start"]), "us")
    span_days = (np.datetime64(now, "us") - start) // np.timedelta64(1, "D")
    submitted = (start + rng.integers(0, span_days, n).astype("timedelta64[D]")
                 + rng.integers(8 * 3600, 18 * 3600, n).astype("timedelta64[s]")).astype("datetime64[us]")  # fmt: skip
    order = np.argsort(submitted, kind="stable")
    submitted, hood = submitted[order], hood[order]

    # Race and ethnicity: the neighborhood's "alone" mix blended with an even floor.
    composition = nb[[f"pop_{c}" for c in RACE_ORDER]].to_numpy(float)
    composition /= composition.sum(axis=1, keepdims=True)
    floor = spec["race_even_floor"]
    alone = _row_choice(rng, (1 - floor) * composition[hood] + floor / len(RACE_ORDER))
    codes = list(RACE_ETHNICITY)
    n_codes = len(codes)
    first = np.where(alone < n_codes, alone, _row_choice(rng, composition[hood][:, :n_codes]))
    second = np.where(alone < n_codes, -1, (first + 1 + rng.integers(0, n_codes - 1, n)) % n_codes)
    answer = rng.random(n)
    not_reported = answer < spec["not_reported"]
    declined = (answer >= spec["not_reported"]) & (answer < spec["not_reported"] + spec["declined"])
    answered = ~(not_reported | declined)

    language = np.full(n, "English", dtype=object)
    u = rng.random(n)
    named = [codes.index(c) for c in spec["languages"] if c != "other"]
    for code, mix in spec["languages"].items():
        rows = answered & (~np.isin(first, named) if code == "other" else first == codes.index(code))
        low = 0.0
        for lang, share in mix.items():
            language[rows & (u >= low) & (u < low + share)] = lang
            low += share

    decision_days = spec["median_days_to_decision"] * np.exp(0.6 * rng.standard_normal(n))
    decided = submitted + (decision_days * 86_400).astype("timedelta64[s]")
    pending = decided >= np.datetime64(now, "us")
    outcome = np.where(
        language == "English", _pick(rng, spec["outcomes_english"], n), _pick(rng, spec["outcomes_other_language"], n)
    )
    outcome[pending] = "Pending"
    decided = np.where(pending, np.datetime64("NaT", "us"), decided)

    age_band = _pick(rng, spec["age_bands"], n)
    low_age = np.vectorize(lambda b: AGE_RANGES[b][0])(age_band)
    high_age = np.vectorize(lambda b: AGE_RANGES[b][1])(age_band)
    age_days = (rng.uniform(low_age, high_age) * 365.25).astype("timedelta64[D]")
    date_of_birth = (submitted.astype("datetime64[D]") - age_days).astype("datetime64[D]")

    who = rng.integers(0, POOL_SIZE, n)
    table = pd.DataFrame(
        {
            "application_id": _numbered("RA-", n, 6),
            "program": spec["program"],
            "submitted_at": submitted,
            "decided_at": decided,
            "outcome": outcome,
            "neighborhood": nb["neighborhood"].to_numpy(dtype=object)[hood],
            "council_district": nb["council_district"].to_numpy()[hood],
            "applicant_name": people.names[who],
            "phone": people.phones[who],
            "email": people.emails[who],
            "address": people.addresses(rng, n),
            "date_of_birth": pd.Series(date_of_birth).dt.date.to_numpy(dtype=object),
            "age_band": age_band,
            "gender": _pick(rng, spec["genders"], n),
        }
    )
    for j, code in enumerate(codes):
        table[f"race_{code}"] = answered & ((first == j) | (second == j))
    table["race_not_reported"] = not_reported
    table["race_declined"] = declined
    table["household_size"] = np.minimum(1 + rng.poisson(1.6, n), 8)
    table["income_band"] = _pick(rng, spec["income_bands"], n)
    table["language"] = language
    return table


# -- the raw export -------------------------------------------------------------------------------


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """A portal-style CSV: timestamps to the second, empty cells for nulls."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    columns = [col.cast(pa.timestamp("s")) if pa.types.is_timestamp(col.type) else col for col in table.columns]
    pacsv.write_csv(pa.table(columns, names=table.column_names), path)


def write_raw(folder: Path, city: City, requests: pd.DataFrame, applications: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(requests, folder / "service_requests.csv")
    write_csv(applications, folder / "program_applications.csv")
    write_csv(city.neighborhoods, folder / "neighborhoods.csv")
    city.write_geojson(folder / "boundaries.geojson")


# -- build ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSummary:
    dataset: str
    seed: int
    scale: str
    raw_dir: Path
    published_dir: Path
    rows: dict[str, int]
    seconds: float
    skipped: bool
    fingerprint: str

    def __str__(self) -> str:
        rows = ", ".join(f"{table} {count:,}" for table, count in self.rows.items())
        if self.skipped:
            return f"{self.dataset} is up to date (seed {self.seed}, scale {self.scale}): {rows}; {self.published_dir}"
        return (
            f"built {self.dataset} (seed {self.seed}, scale {self.scale}) in {self.seconds:.1f} s: {rows}\n"
            f"  raw export: {self.raw_dir}\n  published:  {self.published_dir}"
        )


def read_build_info(published_dir: Path) -> dict[str, Any] | None:
    path = published_dir / BUILD_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _build_lock(home: Path, name: str) -> Iterator[None]:
    """One build of a dataset at a time, on any OS (parallel test workers share the repository's datasets)."""
    folder = home / "published"  # git-ignored, like the data it guards
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / f".{name}.build.lock"):
        yield


def _replace_folder(new: Path, target: Path) -> None:
    """Put `new` in place of `target` by renames, so readers never see a half-written folder."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    new.rename(target)
    if old.exists():
        shutil.rmtree(old)


def _progress():
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip


def build(seed: int = 311, scale: str = "default", force: bool = False) -> BuildSummary:
    """Generate Riverton's raw export and publish it (a no-op when already built the same way)."""
    if scale not in SCALES:
        raise CitykitError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    name = DATASET_BY_SCALE[scale]
    dataset = registry.get(name)
    home = paths.citykit_home()
    raw_dir, published_dir = home / "raw" / name, dataset.folder
    cal = load_calibration()
    fp = fingerprint()

    with _build_lock(home, name):
        info = read_build_info(published_dir)
        if (
            not force and info is not None and raw_dir.exists()
            and (info.get("seed"), info.get("scale"), info.get("fingerprint")) == (seed, scale, fp)
        ):  # fmt: skip
            return BuildSummary(name, seed, scale, raw_dir, published_dir, info["rows"], 0.0, True, fp)

        started = time.perf_counter()
        factor = cal["volume"]["scales"][scale]
        years = len({d.year for d in pd.date_range(str(cal["period"]["start"]), dataset.as_of)})
        n_requests = round(cal["volume"]["requests_per_year"] * years * factor)
        n_applications = round(cal["volume"]["program_applications"] * factor)
        for folder in (raw_dir.parent, published_dir.parent):
            folder.mkdir(parents=True, exist_ok=True)
        raw_tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=raw_dir.parent))
        published_tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=published_dir.parent))
        published_tmp.chmod(0o755)  # published data is meant to be shared; the raw export (names,
        # phones, addresses) keeps mkdtemp's owner-only mode
        try:
            with _progress() as progress:
                step = progress.add_task("Laying out the city", total=None)
                rng = np.random.default_rng(seed)
                city = build_city(rng)
                people = people_pools(seed, rng)
                progress.update(step, description=f"Generating {n_requests:,} service requests")
                requests, planted = generate_requests(
                    rng,
                    city,
                    cal,
                    n_requests,
                    dataset.now,
                    people,
                    sla_days(),
                    standards.load_disaggregation().sensitive_request_types,
                )
                progress.update(step, description=f"Generating {n_applications:,} program applications")
                applications = generate_applications(rng, city, cal, n_applications, dataset.now, people)
                progress.update(step, description="Writing the raw export")
                write_raw(raw_tmp, city, requests, applications)
                generated = time.perf_counter()
                progress.update(step, description="Publishing (anonymizing) the tables")
                published = anonymize.publish(raw_tmp, published_tmp, dataset=name, home=home)
            seconds = time.perf_counter() - started
            info = {
                "dataset": name,
                "synthetic": True,
                "seed": seed,
                "scale": scale,
                "fingerprint": fp,  # the generator's: code, inputs, library versions
                "data_fingerprint": data_fingerprint(published_tmp),  # the published data's own
                "standards": standards_digest(),
                "as_of": dataset.as_of.isoformat(),
                "rows": published.rows,
                "raw_rows": {"service_requests": len(requests), "program_applications": len(applications)},
                "planted": planted.counts,
                "planted_detail": planted.detail,
                "flagged": published.flags,
                "placeholder_points": [[0.0, 0.0], list(PLACEHOLDER_POINT)],
                "city_bounds": dict(zip(("min_lon", "min_lat", "max_lon", "max_lat"), city.bounds)),
                "sensitive_coordinates_removed": published.coordinates_removed,
                "k_anonymity": published.k_anonymity,
                "aggregates": published.aggregates,
                "seconds": {
                    "generate": round(generated - started, 2),
                    "publish": round(seconds - (generated - started), 2),
                    "total": round(seconds, 2),
                },
            }
            (published_tmp / BUILD_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            _replace_folder(raw_tmp, raw_dir)
            _replace_folder(published_tmp, published_dir)
        finally:
            for tmp in (raw_tmp, published_tmp):
                if tmp.exists():
                    shutil.rmtree(tmp)
        return BuildSummary(name, seed, scale, raw_dir, published_dir, published.rows, seconds, False, fp)
