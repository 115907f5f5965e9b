"""The release ledger: every table of people a report publishes, recorded in its archive and audited
with the earlier ones (the disaggregation standard's `privacy.releases`).

    folder = ledger_folder(out)                           # <archive>/.citykit-ledger/ (or <out>/...)
    context = begin(folder, "riverton", "equity-report", values)      # the runner, before the kernel runs
    activate(context)                                     # in the report's kernel: tables go through the ledger
    summary = finish(context, succeeded=True)             # the runner: manifest["ledger"], the page's risk line

In a report run, every table of people suppressed with its people (`equity.disaggregate` on
records carrying their published ids) reaches `review` before it is shown: under the ledger's lock,
the table is audited against every earlier table of the same dataset and breakdown in the ledger
(`citykit.standards.releases.audit_releases`: overlapping periods, nested geographies, a table and
its subtotals), its suppression is extended until nothing earlier plus it gives a count of 1 to 10
away (`releases.extend`), and it is recorded: its cells as shown, its marks, and its people by
published id. A batch's reports share one ledger and record under the same lock, each audited
against the ledger and the batch's tables recorded before it, before its page is written. A run
that fails removes what it recorded.

Where the ledger lives: `CITYKIT_LEDGER` when set; else the archive's `reports/.citykit-ledger/`
for a report written in the archive; else the `.citykit-ledger/` folder of the batch folder or of
`--out` (a report written elsewhere is audited against the releases written there). There, one
JSON index per dataset (`<dataset>.json`) holds what was published: each release, its tables,
their cells as shown and their marks. The people of each table (who is counted in which cell,
which is what the suppression hides: the hidden counts can be read off it) never go beside the
pages: they are kept in the data home, readable by its owner only
(`<data home>/.secrets/ledgers/<folder digest>/<dataset>/`, parquet). Without them (the archive
moved to another machine) a recorded table cannot be related to new ones; the page says how many
were audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from citykit import paths
from citykit.errors import CitykitError
from citykit.files import atomic_write, locked, replacing

LEDGER_ENV = "CITYKIT_LEDGER"
SECRETS = ".secrets"  # in the data home, beside the datasets' keys (citykit.standards.pseudonyms)
OWNER_FILE = "ledger.txt"  # beside a ledger's people: the ledger folder they belong to
INDEX_VERSION = 1


@dataclass(frozen=True)
class ReleaseContext:
    """One report run's release: where its ledger is, which dataset, and who it is."""

    folder: str
    dataset: str
    release: str
    report: str
    parameters: dict[str, Any] = field(default_factory=dict)
    batch: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


def ledger_folder(out: Path, batch_root: Path | None = None) -> Path:
    """The ledger a report written to `out` (in the batch folder `batch_root`) records into."""
    override = os.environ.get(LEDGER_ENV)
    if override:
        return Path(override).resolve()
    root = Path(batch_root if batch_root is not None else out).resolve()
    name = _folder_name()
    try:
        archive = paths.reports_dir().resolve()
    except Exception:  # no course: the folder written to keeps its own ledger
        archive = None
    if archive is not None and (root == archive or archive in root.parents):
        return archive / name
    return root / name


def _folder_name() -> str:
    from citykit.standards import load_disaggregation  # lazy: loaded only when used

    releases = load_disaggregation().releases
    return releases.ledger_folder if releases else ".citykit-ledger"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "dataset"


# ------------------------------------------------------------------ the ledger files


class Ledger:
    """The ledger of one dataset in one folder."""

    def __init__(self, folder: Path | str, dataset: str):
        self.folder = Path(folder)
        self.dataset = dataset
        self.index_path = self.folder / f"{_safe(dataset)}.json"
        digest = hashlib.sha256(str(self.folder.resolve()).encode()).hexdigest()[:16]
        self.people_folder = paths.citykit_home() / SECRETS / "ledgers" / digest / _safe(dataset)

    def lock(self):
        return locked(self.index_path, timeout=600)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": INDEX_VERSION, "dataset": self.dataset, "releases": []}
        except (OSError, ValueError) as error:
            raise CitykitError(f"the release ledger {self.index_path} cannot be read ({error}); move it away") from None
        return data

    def write(self, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.index_path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")

    def state(self, data: dict[str, Any] | None = None, *, exclude: str = "") -> dict[str, Any]:
        """The ledger as a release is audited against it: its releases (this one left out) and a digest."""
        data = self.read() if data is None else data
        releases = [r for r in data["releases"] if r["release"] != exclude]
        text = json.dumps(releases, sort_keys=True, default=str)
        return {
            "file": str(self.index_path),
            "releases": len(releases),
            "tables": sum(len(r.get("tables", [])) for r in releases),
            "digest": hashlib.sha256(text.encode()).hexdigest()[:12],
        }

    def records(self, data: dict[str, Any], keys: set[str], *, skip: set[str] = frozenset()) -> list:
        """The recorded tables with these keys, as `releases.TableRecord`s (their people read back);
        `skip`: table ids left out (a table this release records again)."""
        from citykit.standards.releases import TableRecord  # lazy: loaded only when used

        out = []
        for release in data["releases"]:
            for table in release.get("tables", []):
                if table["key"] not in keys or table["id"] in skip:
                    continue
                try:
                    members = _read_people(self.people_folder / table["people"])
                except (OSError, ValueError):
                    continue  # people missing: the table cannot be related to others (said in the summary)
                # the same entry read again (every table of a page is audited against the same ledger) is the
                # same record: what the audit derives from it (its totals, its people's ids) is kept with it
                what = (release["release"], json.dumps(table, sort_keys=True, default=str))
                known = _RECORDS.get(what)
                if known is not None and known.members is members:
                    out.append(known)
                    continue
                if len(_RECORDS) >= _PEOPLE_LIMIT:
                    _RECORDS.clear()
                out.append(
                    TableRecord(
                        release["release"], table["name"], table["key"], list(table["rows"]), list(table["columns"]),
                        bool(table["rows_add_up"]), {(r, c): int(v) for r, c, v in table["shown"]},
                        {(r, c): m for r, c, m in table["marks"]}, members,
                        {k: list(v) for k, v in table.get("pools", {}).items()}, tuple(table.get("outcome_columns", ())),
                        table.get("title", ""),
                    )
                )  # fmt: skip
                _RECORDS[what] = out[-1]
        return out

    def save_people(self, members: pd.DataFrame) -> str:
        for folder in reversed([self.people_folder, *self.people_folder.parents][:4]):
            folder.mkdir(mode=0o700, exist_ok=True)  # the data home's private folder: owner only
        owner = self.people_folder.parent / OWNER_FILE  # which ledger these are (orphans are removed)
        if not owner.exists():
            atomic_write(owner, str(self.folder.resolve()) + "\n")
        name = f"{uuid.uuid4().hex}.parquet"
        with replacing(self.people_folder / name) as tmp:
            members[["id", "row", "column"]].to_parquet(tmp, index=False)
        return name

    def remove_people(self, names: list[str]) -> None:
        for name in names:
            (self.people_folder / name).unlink(missing_ok=True)


_PEOPLE: dict[Path, tuple[tuple[int, int], pd.DataFrame]] = {}  # people files read in this process
_PEOPLE_LIMIT = 4096
_RECORDS: dict[tuple[str, str], Any] = {}  # recorded tables read in this process, as TableRecords


def _read_people(path: Path) -> pd.DataFrame:
    """A table's people, read once per process (a file is written once under a fresh name; its size
    and time are checked all the same): every table of a page is audited against the same ledger."""
    info = path.stat()
    stamp = (info.st_mtime_ns, info.st_size)
    hit = _PEOPLE.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    frame = pd.read_parquet(path)
    if len(_PEOPLE) >= _PEOPLE_LIMIT:
        _PEOPLE.clear()
    _PEOPLE[path] = (stamp, frame)
    return frame


ORPHAN_GRACE_DAYS = 30  # a ledger folder briefly missing (an unmounted drive, a renamed archive) keeps its people


def prune_orphans(home: Path | None = None, grace_days: float = ORPHAN_GRACE_DAYS) -> list[Path]:
    """Remove the people of ledgers whose folder has been gone for `grace_days` (a deleted `--out`,
    a test's temporary folder): `<data home>/.secrets/ledgers/<digest>/` without a live ledger
    folder named in its owner file, untouched that long. Returns what was removed."""
    import shutil

    root = Path(home or paths.citykit_home()) / SECRETS / "ledgers"
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            owner = Path((entry / OWNER_FILE).read_text(encoding="utf-8").strip())
            alive = owner.is_dir()
        except OSError:
            alive = False
        stale = time.time() - entry.stat().st_mtime >= grace_days * 86400 if entry.is_dir() else False
        if not alive and stale and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


PRUNE_EVERY = 3600.0  # seconds: orphans are 30 days old; a batch worker need not look before each report
_pruned: dict[str, float] = {}  # data home -> when this process last pruned its orphans (monotonic)


def _prune_orphans_now_and_then() -> None:
    """`prune_orphans` at most once an hour per process and data home: it reads the owner file of every
    ledger the home ever had (~9 ms at 400, before each report of a batch otherwise)."""
    home = str(paths.citykit_home())
    if time.monotonic() - _pruned.get(home, -PRUNE_EVERY) >= PRUNE_EVERY:
        prune_orphans()
        _pruned[home] = time.monotonic()


def key_file_of(dataset: str) -> Path:
    from citykit.standards.pseudonyms import key_file  # lazy: loaded only when used

    return key_file(dataset)


def key_digest(dataset: str) -> str:
    """Which secret key the dataset's published ids were made under: 12 hex digits of an HMAC of a
    fixed text under it (the key cannot be worked back from them); "" when the dataset has no key."""
    import hmac

    try:
        text = key_file_of(dataset).read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError, CitykitError):
        return ""
    return hmac.digest(key, b"citykit release ledger: which key", "sha256").hex()[:12]


def _table_id(record) -> str:
    ids = ",".join(sorted(record.members["id"].unique()))
    return hashlib.sha256(f"{record.key}\x1f{ids}".encode()).hexdigest()[:16]


# ------------------------------------------------------------------ the runner's side


def begin(
    folder: Path, dataset: str | None, report: str, parameters: dict[str, Any], batch: str = ""
) -> ReleaseContext | None:
    """A release for one report run (None without a dataset: nothing to audit against)."""
    if not dataset:
        return None
    _prune_orphans_now_and_then()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    release = f"{stamp}-{_safe(report)}-{uuid.uuid4().hex[:8]}"
    shown = {k: v for k, v in parameters.items() if not isinstance(v, (bytes, bytearray))}
    return ReleaseContext(str(Path(folder)), dataset, release, report, shown, batch)


def activation_code(context: ReleaseContext | None) -> str:
    """The code a report's kernel runs before the notebook: the ledger on for this run (or off)."""
    argument = "None" if context is None else repr(context.to_json())
    return (
        f"import citykit.reports.ledger as _citykit_ledger\n_citykit_ledger.activate({argument})\ndel _citykit_ledger"
    )


NOTHING_RECORDED = "no tables of people recorded: this run wrote no ledger file"


def finish(context: ReleaseContext | None, succeeded: bool) -> dict[str, Any] | None:
    """After the run: a failed run's tables leave the ledger; a good run's are marked published.
    Returns what the manifest records (the ledger state the release was audited against, the tables,
    the cells hidden further) with the page's one-line risk summary."""
    if context is None:
        return None
    ledger = Ledger(context.folder, context.dataset)
    if not ledger.index_path.exists():  # nothing recorded, ever: no ledger files either
        if not succeeded:
            return None
        # the manifest names no file that does not exist: it says plainly that nothing was recorded
        state = {**ledger.state({"releases": []}), "file": None}
        summary = {"ledger": None, "note": NOTHING_RECORDED, "release": context.release, "audited_against": state,
                   "tables": 0, "cells_hidden_further": 0, "tables_withheld": 0, "already_given_away": []}  # fmt: skip
        summary["risk"] = risk_line(summary, context.dataset)
        return summary
    with ledger.lock():
        data = ledger.read()
        mine = next((r for r in data["releases"] if r["release"] == context.release), None)
        if not succeeded:
            if mine is not None:
                data["releases"] = [r for r in data["releases"] if r["release"] != context.release]
                ledger.write(data)
                ledger.remove_people([t["people"] for t in mine.get("tables", [])])
            return None
        if mine is not None:
            mine["status"] = "published"
            ledger.write(data)
        state = mine["audited_against"] if mine else ledger.state(data, exclude=context.release)
    tables = mine.get("tables", []) if mine else []
    summary = {
        "ledger": str(ledger.index_path),
        "release": context.release,
        "audited_against": state,
        "tables": len(tables),
        "cells_hidden_further": sum(int(t.get("forced", 0)) for t in tables),
        "tables_withheld": sum(bool(t.get("withheld")) for t in tables),
        "set_aside": sorted({r for t in tables for r in t.get("set_aside", [])}),
        "already_given_away": sorted({w for t in tables for w in t.get("already", [])})[:20],
    }
    summary["archive_not_audited"] = archive_releases_elsewhere(context)
    summary["risk"] = risk_line(summary, context.dataset)
    return summary


def archive_releases_elsewhere(context: ReleaseContext) -> int:
    """How many releases of the dataset the archive's ledger holds when this run recorded into another
    ledger (a report written with --out outside the archive): its page was not audited against them."""
    try:
        archive = (paths.reports_dir() / _folder_name()).resolve()
    except paths.NoCourse:  # no course: no archive
        return 0
    if archive == Path(context.folder).resolve():
        return 0
    try:
        return len(Ledger(archive, context.dataset).read()["releases"])
    except CitykitError:
        return 0


def risk_line(summary: dict[str, Any], dataset: str) -> str:
    """The page's one-line disclosure-risk summary, in the standard's words (`privacy.releases`);
    empty for a page without tables of people."""
    from citykit.standards import load_disaggregation  # lazy: loaded only when used

    std = load_disaggregation()
    state = summary["audited_against"]
    if summary["tables"] == 0:
        return ""  # no table of people on the page: no line (the manifest still names the ledger state)
    extended = (
        f"{summary['cells_hidden_further']} more cells hidden so that no count of 1 to 10 can be worked out from "
        "this page and the earlier ones together"
        if summary["cells_hidden_further"]
        else "no count of 1 to 10 can be worked out from this page and the earlier ones together"
    )
    if summary.get("tables_withheld"):
        extended += f" ({summary['tables_withheld']} withheld whole)"
    if summary.get("set_aside"):
        extended += (
            f"; {len(summary['set_aside'])} earlier releases made from another version of the data could not be "
            "audited with it"
        )
    if summary["already_given_away"]:
        extended += f"; {len(summary['already_given_away'])} were already given away by earlier releases"
    if summary.get("archive_not_audited"):  # said first: the rest holds only within the folder's own ledger
        extended = (
            f"NOT audited against the {summary['archive_not_audited']} releases of {dataset} in the archive's "
            "ledger (this page was written outside the archive); within the ledger of the folder it was written "
            "to, " + extended
        )
    template = std.releases.risk_summary if std.releases else "Disclosure risk: {tables} tables; {extended}."
    from citykit.reports.labels import agree  # "1 earlier release", not "1 earlier releases"

    text = template.format(
        tables=summary["tables"], releases=state["releases"], dataset=dataset,
        state=f"state {state['digest']}", extended=extended,
    )  # fmt: skip
    # the ledger's state is for auditors (the manifest names it); the page says it in words
    return agree(re.sub(r"\s*\(state [0-9a-f]+\)", "", text), ("table", "release", "cell"))


# ------------------------------------------------------------------ the kernel's side

_active: ReleaseContext | None = None


def activate(context: str | ReleaseContext | None) -> None:
    """In a report's kernel: send every table of people through this run's release (None: off)."""
    global _active
    from citykit.standards import suppression  # lazy: loaded only when used

    if isinstance(context, str):
        context = ReleaseContext(**json.loads(context))
    _active = context
    suppression.set_release_reviewer(review if context is not None else None)


def review(request) -> list:
    """`suppression.set_release_reviewer`'s reviewer: audit the request's tables with the earlier
    releases of the dataset, extend their suppression, record them; the tables to publish."""
    from citykit.standards import releases  # lazy: loaded only when used
    from citykit.standards.releases import TableRecord  # lazy: loaded only when used

    context = _active
    if context is None:
        return request.tables
    std = request.standard

    def to_records(tables) -> list[TableRecord]:
        out = []
        for table in tables:
            people = request.people.get(table.name)
            if not table.published or people is None or not len(people):
                continue
            out.append(
                TableRecord.from_table(
                    table, people, key=request.keys.get(table.name, table.name), release=context.release,
                    pools=request.pools.get(table.name), title=request.titles.get(table.name, request.title),
                    standard=std,
                )
            )  # fmt: skip
        return out

    final = {"tables": request.tables}

    def resuppress(forced) -> list[TableRecord]:
        final["tables"] = request.resuppress(forced)
        return to_records(final["tables"])

    current = to_records(request.tables)
    if not current:
        return request.tables
    own = {r.name: set(r.marks) for r in current}  # what each table hides on its page alone
    ledger = Ledger(context.folder, context.dataset)
    with ledger.lock():
        data = ledger.read()
        key = key_digest(context.dataset)
        other = sorted({r["release"] for r in data["releases"] if r.get("key") and key and r["key"] != key})
        if other:  # its people's ids were made under another key: nothing here would match them
            raise CitykitError(
                f"the release ledger {ledger.index_path} holds {len(other)} releases of {context.dataset} published "
                f"under another secret key than {key_file_of(context.dataset)} holds now (the data home was copied "
                "without its .secrets folder, or the key was replaced): restore that key file, or move the ledger "
                "away to start a new one"
            )
        mine = next((r for r in data["releases"] if r["release"] == context.release), None)
        if mine is None:
            mine = {
                "release": context.release, "report": context.report, "parameters": context.parameters,
                "batch": context.batch, "recorded": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "status": "pending", "audited_against": ledger.state(data), "tables": [], "key": key,
            }  # fmt: skip
            data["releases"].append(mine)
        again = {_table_id(r) for r in current}  # the same table recorded again in this release replaces itself
        # ... and hides at least what it hid then: a page's later copy of a table (a section after the
        # first screen) never shows what its first copy hid, and the tables recorded since, audited
        # against that first copy, stay safe (hiding more only widens what a reader can work out)
        recorded = {t["id"]: t for t in mine["tables"]}
        start: dict[str, set[tuple[str, str]]] = {}
        for record in current:
            previous = recorded.get(_table_id(record))
            if previous is None or previous.get("withheld"):
                continue  # (a table withheld whole is withheld again by the audit, not cell by cell)
            # the cells it hid (not a 0 this copy shows: a hidden 0 would read as "†", above 10)
            cells = {(r, c) for r, c, _ in previous["marks"] if (r, c) in record.marks or record.shown.get((r, c), 0)}
            if cells - set(record.marks):
                start[record.name] = cells
        if start:
            current = resuppress(start)
        totals = {releases.totals_key(r.key, r.columns) for r in current}  # other breakdowns of the same people
        keys = {r.key for r in current} | {
            t["key"] for r in data["releases"] for t in r.get("tables", [])
            if releases.totals_key(t["key"], list(t["columns"])) in totals
        }  # fmt: skip
        earlier = ledger.records(data, keys, skip=again & {t["id"] for t in mine["tables"]})
        set_aside: list[str] = []
        while True:
            try:
                records, audit, _ = releases.extend(current, earlier, resuppress, standard=std, start=start)
                break
            except releases.Inconsistent:  # made from another version of the data: the oldest is set aside
                oldest = earlier[0].release
                set_aside.append(oldest)
                earlier = [r for r in earlier if r.release != oldest]
                if start:
                    current = resuppress(start)
                else:
                    current, final["tables"] = to_records(request.tables), request.tables
        by_id = {t["id"]: t for t in mine["tables"]}
        for record in records:
            table_id = _table_id(record)
            previous = by_id.get(table_id)
            entry = {
                "id": table_id, "name": record.name, "title": record.title, "key": record.key,
                "rows": record.rows, "columns": record.columns, "rows_add_up": record.rows_add_up,
                "shown": [[r, c, v] for (r, c), v in record.shown.items()],
                "marks": [[r, c, m] for (r, c), m in record.marks.items()],
                "pools": record.pools, "outcome_columns": list(record.outcome_columns),
                "people": previous["people"] if previous else ledger.save_people(record.members),
                "people_count": int(record.members["id"].nunique()),
                "forced": len(set(record.marks) - own.get(record.name, set())),  # hidden further for the ledger
                "already": [e.what for e in audit.already][:20],
                "withheld": bool(record.marks)  # withheld whole: every cell marked so ("‡"), not merely hidden
                and all(m == std.small_cells.withheld_display for m in record.marks.values()),
                "set_aside": set_aside,
                "exposed": [e.what for e in audit.new][:20],
            }  # fmt: skip
            if previous is not None:
                mine["tables"][mine["tables"].index(previous)] = entry
            else:
                mine["tables"].append(entry)
        ledger.write(data)
    return final["tables"]
