"""Stage history from snapshots: dated exports of one pipeline become the stage entries they imply.

A CRM that exports no history (a HubSpot "current view", a Pipedrive deals list) still shows each deal's stage on
the day it was exported. Saved every week, those exports say when a deal was first seen in each stage: that is a
stage entry, known to the snapshot's date only (it happened after the previous snapshot and on or before this
one; for a deal already in the first snapshot, on or before that). A closed deal's stage is its outcome, ``won`` or
``lost``, as in a history export.

``data.snapshots`` (:class:`funnel_lab.config.Snapshots`) names the files: a glob or a list; each file's date is
its ``date_column`` or the date in its name (``deals-2024-05-06.csv``, ``export_20240506.xlsx``). Each file is
read as ``data.opportunities`` is (preset, columns, values), so the snapshots and the current export agree.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TableSource
from ..errors import ParamsError
from .coerce import parse_dates
from .ingest import NOTE_COLUMNS, Table, file_sha256, load_table, map_values, source_sha256

WHERE = "data.snapshots"
#: The first date in a file name: 2024-05-06, 2024_05_06, 2024.05.06 or 20240506.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)")
SNAPSHOT_COLUMNS = ["opportunity_id", "crm_stage", "status", "expected_close_at", "snapshot_date", "snapshot_file"]


def snapshot_files(src: TableSource, *, missing_ok: bool = False) -> list[Path]:
    """The snapshot files of ``src.snapshots`` (globs and paths), sorted by name, each once.

    Raises
    ------
    ParamsError
        A pattern that matches no file (unless ``missing_ok``).
    """
    files: list[Path] = []
    for pattern in src.snapshots or []:
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(pattern))
        else:
            matched = [pattern] if Path(pattern).is_file() else []
        if not matched and not missing_ok:
            raise ParamsError(f"{WHERE}.path: {pattern!r} matches no file")
        files += [Path(m) for m in matched if Path(m) not in files]
    return files


def date_from_name(path: Path) -> pd.Timestamp:
    """The snapshot date written in a file's name.

    Examples
    --------
    >>> date_from_name(Path("hubspot-deals-2024-05-06.csv"))
    Timestamp('2024-05-06 00:00:00')
    >>> date_from_name(Path("export_20240513.xlsx"))
    Timestamp('2024-05-13 00:00:00')
    """
    for m in _NAME_DATE.finditer(path.stem):
        try:
            return pd.Timestamp(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            continue
    raise ParamsError(f"{WHERE}: no date in the file name {path.name!r} (e.g. deals-2024-05-06.csv); rename the "
                      f"file, or name the column holding each snapshot's date with `date_column:`")


def _read_snapshot(path: Path, src: TableSource) -> pd.DataFrame:
    """One snapshot's deals: :data:`SNAPSHOT_COLUMNS`."""
    values = {k: v for k, v in src.values.items() if k != "stage"}
    table = load_table(src.model_copy(update={"path": path, "snapshots": None, "values": values}),
                       table="opportunities")
    data = table.data
    for needed in ("opportunity_id", "crm_stage"):
        if needed not in data.columns or (needed == "opportunity_id" and table.ids_generated):
            raise ParamsError(f"{WHERE}: {path} has no {needed} column: a snapshot needs each deal's id and stage "
                              f"(map them as for data.opportunities, under `columns:`)")
    if src.snapshot_date:
        column = src.snapshot_date
        if column not in table.raw.columns:
            raise ParamsError(f"{WHERE}.date_column: no column {column!r} in {path}")
        dates, _ = parse_dates(table.raw[column], date_format=src.date_format)
        bad = dates.isna() & table.raw[column].notna()
        if bad.any():
            raise ParamsError(f"{WHERE}.date_column: {column!r} in {path} is not a date on data row "
                              f"{int(np.flatnonzero(bad.to_numpy())[0]) + 1} ({table.raw[column][bad].iloc[0]!r})")
        date = dates.to_numpy()
    else:
        date = date_from_name(path)
    empty = pd.Series(pd.NA, index=data.index, dtype="str")
    return pd.DataFrame({
        "opportunity_id": data["opportunity_id"], "crm_stage": data["crm_stage"],
        "status": data.get("status", empty), "expected_close_at": data.get("expected_close_at", empty),
        "snapshot_date": date, "snapshot_file": path.name,
    })[SNAPSHOT_COLUMNS]


def history_from_snapshots(snapshots: pd.DataFrame, stage_values: dict[str, str] | None = None) -> pd.DataFrame:
    """Stage entries from stacked snapshots: a deal's row where its stage differs from its previous snapshot.

    Parameters
    ----------
    snapshots : DataFrame
        :data:`SNAPSHOT_COLUMNS`, one row per deal and snapshot.
    stage_values : dict, optional
        CRM stage -> funnel stage, matched trimmed and then ignoring case; unmapped stages stay as they are.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``stage`` (``won``/``lost`` for a closed deal), ``entered_at`` (the snapshot's date),
        ``expected_close_at`` (as that snapshot had it), ``snapshot_file``; by deal and date.

    Examples
    --------
    >>> s = pd.DataFrame({"opportunity_id": ["a", "a", "a"], "crm_stage": ["Demo", "Demo", "Closed Won"],
    ...                   "status": ["open", "open", "won"], "expected_close_at": [None, None, None],
    ...                   "snapshot_date": pd.to_datetime(["2024-05-06", "2024-05-13", "2024-05-20"]),
    ...                   "snapshot_file": ["w1", "w2", "w3"]})
    >>> history_from_snapshots(s)[["stage", "entered_at"]].astype(str).values.tolist()
    [['Demo', '2024-05-06'], ['won', '2024-05-20']]
    """
    s = snapshots.dropna(subset=["opportunity_id"]).sort_values(["opportunity_id", "snapshot_date"], kind="stable")
    status = s["status"].astype("str").str.strip().str.lower()
    stage = map_values(s["crm_stage"], stage_values) if stage_values else s["crm_stage"]
    stage = stage.where(~status.isin(["won", "lost"]), status)
    s = s.assign(stage=stage).dropna(subset=["stage"])
    same_deal = s["opportunity_id"].eq(s["opportunity_id"].shift())
    entered = ~(same_deal & s["stage"].eq(s["stage"].shift()))
    out = s[entered].rename(columns={"snapshot_date": "entered_at"})
    # the index stays the stacked snapshots' row, so a removed entry's quarantine row is the snapshot row behind it
    return out[["opportunity_id", "stage", "entered_at", "expected_close_at", "snapshot_file"]]


def load_snapshots(src: TableSource, *, sha256: str | None = None) -> Table:
    """The ``stage_history`` table built from the snapshots of ``src`` (:meth:`funnel_lab.config.Data.history_source`).

    Raises
    ------
    ParamsError
        No file matched; a file without an id or stage column, or without a date; two files of the same date.
    """
    files = snapshot_files(src)
    frames = [_read_snapshot(path, src) for path in files]
    stacked = pd.concat(frames, ignore_index=True)
    if not src.snapshot_date:
        per_file = stacked.groupby("snapshot_file", sort=False)["snapshot_date"].first()
        twice = per_file[per_file.duplicated(keep=False)]
        if len(twice):
            raise ParamsError(f"{WHERE}: {', '.join(twice.index)} have the same date ({twice.iloc[0]:%Y-%m-%d}); "
                              f"keep one snapshot per date")
    history = history_from_snapshots(stacked, src.values.get("stage"))
    read = (stacked.groupby(["snapshot_file", "snapshot_date"], sort=False).size().rename("deals").reset_index()
            .sort_values("snapshot_date", kind="stable", ignore_index=True))
    by_name = {f.name: f for f in files}
    read["path"] = read["snapshot_file"].map(lambda n: str(by_name[n]))
    read["sha256"] = read["path"].map(file_sha256)
    dates = read["snapshot_date"].drop_duplicates()
    gap = dates.diff().dt.days.median()
    repeated = len(stacked.dropna(subset=["opportunity_id"])) - len(history)
    note = {"table": "stage_history", "kind": "snapshot_history", "column": "entered_at",
            "value": f"{len(files)} snapshots, {dates.iloc[0]:%Y-%m-%d} to {dates.iloc[-1]:%Y-%m-%d}",
            "rows": len(history),
            "detail": (f"{len(stacked):,} deal rows in {len(files)} snapshots give {len(history):,} stage entries "
                       f"({repeated:,} rows repeat a deal's stage from its previous snapshot); an entry is dated "
                       f"by the first snapshot showing it, so it happened up to "
                       f"{'%g' % gap if pd.notna(gap) else 'an unknown number of'} days (the median gap) before, "
                       f"and before the first snapshot for deals already in it")}
    column_map = pd.DataFrame({"source_column": [f"{len(files)} snapshots: {', '.join(src.snapshots or [])}"],
                               "column": ["opportunity_id / stage / entered_at / expected_close_at"]})
    # raw: the snapshot rows that are entries (a removed entry's quarantine row is the snapshot row behind it)
    return Table("stage_history", stacked.loc[history.index], history.drop(columns="snapshot_file"), column_map,
                 source=f"{len(files)} snapshots ({files[0].name} ... {files[-1].name})",
                 sha256=sha256 or source_sha256(src), notes=pd.DataFrame([note], columns=NOTE_COLUMNS),
                 snapshots=read)
