"""Published ids that lead nowhere without a secret: keyed hashes of raw ids (`privacy.pseudonyms`).

    key = dataset_key("riverton")                         # made once, 0600, in <data home>/.secrets/
    ids = pseudonymise(raw["application_id"], key, "riverton", "program_applications")  # A-3f9c0e12ab

A published id is HMAC-SHA256 of the dataset's name, the table and the raw id under the dataset's
key, cut to the standard's number of hex digits after its prefix. The same raw data publishes the
same ids again (the key is kept), two raw ids never share a published one (a longer cut is taken
when two would), and without the key no published id can be traced back: it is neither the raw id
nor an unkeyed md5, sha1 or sha256 of it. The key file lives in the data home, outside every
published folder, readable by its owner only; it is never copied into a course, a report or a
published dataset.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

import pandas as pd

from citykit import paths
from citykit.errors import CitykitError
from citykit.files import locked
from citykit.standards.reader import DisaggregationStandard, load_disaggregation

SECRETS_FOLDER = ".secrets"
KEY_BYTES = 32


def key_file(dataset: str, home: Path | None = None) -> Path:
    """Where a dataset's key lives: `<data home>/.secrets/<dataset>.key`."""
    if not dataset or "/" in dataset or "\\" in dataset or dataset.startswith("."):
        raise CitykitError(f"a dataset name without slashes is needed for its key, not {dataset!r}")
    return Path(home or paths.citykit_home()) / SECRETS_FOLDER / f"{dataset}.key"


def dataset_key(dataset: str, home: Path | None = None) -> bytes:
    """The dataset's secret key, made once (32 random bytes, a file only its owner can read)."""
    path = key_file(dataset, home)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with locked(path):
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as fh:
                    fh.write(secrets.token_hex(KEY_BYTES) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)  # a copied key keeps to its owner
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise CitykitError(
            f"the key file {path} is damaged; move it away to make a new one (ids will change)"
        ) from None
    if len(key) < 16:
        raise CitykitError(f"the key file {path} is too short; move it away to make a new one (ids will change)")
    return key


def pseudonymise(
    values: pd.Series,
    key: bytes,
    dataset: str,
    table: str,
    *,
    standard: DisaggregationStandard | None = None,
) -> pd.Series:
    """Published ids for raw ids: the table's prefix and the first hex digits of
    HMAC-SHA256(key, "<dataset>\\x1f<table>\\x1f<raw id>"); nulls stay null. When two different raw
    ids would share a published id, every id of the table gets two more digits (deterministic)."""
    std = standard or load_disaggregation()
    if table not in std.pseudonym_prefixes:
        raise CitykitError(f"the standard sets no pseudonym prefix for {table!r} (privacy.pseudonyms)")
    prefix = std.pseudonym_prefixes[table]
    digits = std.pseudonym_digits.get(table, 12)
    raw = values.dropna().astype(str).unique()
    salt = f"{dataset}\x1f{table}\x1f".encode()
    full = {v: hmac.digest(key, salt + v.encode(), "sha256").hex() for v in raw}
    while True:
        cut = {v: h[:digits] for v, h in full.items()}
        if len(set(cut.values())) == len(cut) or digits >= 64:
            break
        digits += 2
    mapping = {v: prefix + h for v, h in cut.items()}
    out = values.astype(object).map(lambda v: None if pd.isna(v) else mapping[str(v)])
    return out.astype(values.dtype if pd.api.types.is_string_dtype(values.dtype) else object)
