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

from ..config import SnapshotSource, TableSource
from ..errors import ParamsError
from .clean import replace_placeholders
from .coerce import parse_dates
from .ingest import NOTE_COLUMNS, Table, file_sha256, load_table, map_values, source_sha256
from .presets._common import text

WHERE = "data.snapshots"
#: The first date in a file name: 2024-05-06, 2024_05_06, 2024.05.06 or 20240506.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)")
SNAPSHOT_COLUMNS = ["opportunity_id", "crm_stage", "status", "closed_at", "expected_close_at", "snapshot_date",
                    "snapshot_file"]


def snapshot_files(src: SnapshotSource, *, missing_ok: bool = False) -> list[Path]:
    """The snapshot files of ``src.snapshots`` (globs and paths), each pattern's matches sorted, each file once.

    Raises
    ------
    ParamsError
        A pattern that matches no file (unless ``missing_ok``).
    """
    files: list[Path] = []
    for pattern in src.snapshots:
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(pattern))
        else:
            matched = [pattern] if Path(pattern).is_file() else []
        if not matched and not missing_ok:
            raise ParamsError(f"{WHERE}.path: {pattern!r} matches no file")
        files += [Path(m) for m in matched if Path(m) not in files]
    return files


def date_from_name(path: Path) -> pd.Timestamp:
    """The snapshot date written in a file's name, else in the nearest folder name that has one.

    Examples
    --------
    >>> date_from_name(Path("hubspot-deals-2024-05-06.csv"))
    Timestamp('2024-05-06 00:00:00')
    >>> date_from_name(Path("exports/20240513/deals.xlsx"))
    Timestamp('2024-05-13 00:00:00')
    """
    for name in (path.stem, *(p.name for p in path.parents)):
        for m in _NAME_DATE.finditer(name):
            try:
                return pd.Timestamp(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                continue
    raise ParamsError(f"{WHERE}: no date in the file name {str(path)!r} or its folders (e.g. deals-2024-05-06.csv); "
                      f"rename the file, or name the column holding each snapshot's date with `date_column:`")


def gap_days(dates: pd.Series) -> float:
    """The median number of days between consecutive snapshot dates (NaN for one snapshot)."""
    return float(dates.drop_duplicates().sort_values().diff().dt.days.median())


def _read_snapshot(path: Path, src: SnapshotSource, placeholders: list[str]) -> pd.DataFrame:
    """One snapshot's deals (:data:`SNAPSHOT_COLUMNS`): ids, stages and statuses as text, placeholders missing."""
    reading = src.model_dump(exclude={"snapshots", "snapshot_date", "values", "path", "sql", "database", "join"})
    values = {k: v for k, v in src.values.items() if k != "stage"}
    table = load_table(TableSource(**reading, path=path, values=values), table="opportunities")
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
        bad = dates.isna() & text(table.raw[column]).notna()
        if bad.any():
            raise ParamsError(f"{WHERE}.date_column: {column!r} in {path} is not a date on data row "
                              f"{int(np.flatnonzero(bad.to_numpy())[0]) + 1} ({table.raw[column][bad].iloc[0]!r})")
        date = dates.to_numpy()
    else:
        date = date_from_name(path)
    empty = pd.Series(pd.NA, index=data.index, dtype="str")
    keys, _, _ = replace_placeholders(pd.DataFrame({c: text(data.get(c, empty)) for c in
                                                    ("opportunity_id", "crm_stage", "status")}),
                                      placeholders + list(table.placeholders))
    closed_at = (parse_dates(data["closed_at"], date_format=src.date_format)[0] if "closed_at" in data.columns
                 else pd.Series(pd.NaT, index=data.index))
    return pd.DataFrame({
        **{c: keys[c] for c in keys.columns}, "closed_at": closed_at,
        "expected_close_at": data.get("expected_close_at", empty), "snapshot_date": date,
        "snapshot_file": str(path),
    })[SNAPSHOT_COLUMNS]


def history_from_snapshots(snapshots: pd.DataFrame, stage_values: dict[str, str] | None = None) -> pd.DataFrame:
    """Stage entries from stacked snapshots: a deal's row where its stage differs from its previous snapshot.

    Parameters
    ----------
    snapshots : DataFrame
        :data:`SNAPSHOT_COLUMNS`, one row per deal and snapshot; rows without an id or a stage, and deals the CRM
        marks deleted, are no entries.
    stage_values : dict, optional
        CRM stage -> funnel stage, matched trimmed and then ignoring case; unmapped stages stay as they are.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``stage`` (``won``/``lost`` for a closed deal), ``entered_at``, ``expected_close_at``
        (as that snapshot had it), ``snapshot_file``; by deal and date, indexed by the snapshot row. An open stage
        is entered on the snapshot's date (known to that date only); an outcome on the deal's ``closed_at`` when it
        lies after the previous snapshot (before the first) and by the end of the snapshot's day.

    Examples
    --------
    >>> s = pd.DataFrame({"opportunity_id": ["a", "a", "a"], "crm_stage": ["Demo", "Demo", "Closed Won"],
    ...                   "status": ["open", "open", "won"], "closed_at": pd.to_datetime([None, None, "2024-05-17"]),
    ...                   "expected_close_at": [None, None, None],
    ...                   "snapshot_date": pd.to_datetime(["2024-05-06", "2024-05-13", "2024-05-20"]),
    ...                   "snapshot_file": ["w1", "w2", "w3"]})
    >>> history_from_snapshots(s)[["stage", "entered_at"]].astype(str).values.tolist()
    [['Demo', '2024-05-06'], ['won', '2024-05-17']]
    """
    s = snapshots[snapshots["opportunity_id"].notna() & snapshots["status"].ne("deleted").fillna(True)]
    s = s.sort_values(["opportunity_id", "snapshot_date"], kind="stable")
    stage = map_values(s["crm_stage"], stage_values) if stage_values else s["crm_stage"]
    s = s.assign(stage=stage.where(~s["status"].isin(["won", "lost"]), s["status"])).dropna(subset=["stage"])
    same_deal = s["opportunity_id"].eq(s["opportunity_id"].shift())
    out = s[~(same_deal & s["stage"].eq(s["stage"].shift()))]
    dates = pd.Series(np.sort(snapshots["snapshot_date"].unique()))
    previous = out["snapshot_date"].map(dict(zip(dates, dates.shift())))  # NaT for the first snapshot
    closed = (out["stage"].isin(["won", "lost"]) & (previous.isna() | (out["closed_at"] > previous))
              & (out["closed_at"] < out["snapshot_date"] + pd.Timedelta(days=1)))
    entered = out["closed_at"].where(closed, out["snapshot_date"])
    return out.assign(entered_at=entered)[["opportunity_id", "stage", "entered_at", "expected_close_at",
                                           "snapshot_file"]]


def load_snapshots(src: SnapshotSource, *, placeholders: list[str] = (), sha256: str | None = None) -> Table:
    """The ``stage_history`` table built from the snapshots of ``src`` (:meth:`funnel_lab.config.Data.history_source`).

    Parameters
    ----------
    src : SnapshotSource
    placeholders : list of str
        ``cleaning.placeholders``: cells that mean missing in an id, stage or status.
    sha256 : str, optional
        :func:`~funnel_lab.data.ingest.source_sha256` of ``src`` when known.

    Raises
    ------
    ParamsError
        No file matched; a file without an id or stage column, or without a date; two files of the same date.
    """
    files = snapshot_files(src)
    stacked = pd.concat([_read_snapshot(path, src, list(placeholders)) for path in files], ignore_index=True)
    if not src.snapshot_date:
        per_file = stacked.groupby("snapshot_file", sort=False)["snapshot_date"].first()
        twice = per_file[per_file.duplicated(keep=False)]
        if len(twice):
            raise ParamsError(f"{WHERE}: {', '.join(Path(f).name for f in twice.index)} have the same date "
                              f"({twice.iloc[0]:%Y-%m-%d}); keep one snapshot per date")
    history = history_from_snapshots(stacked, src.values.get("stage"))
    read = (stacked.groupby(["snapshot_file", "snapshot_date"], sort=False).size().rename("deals").reset_index()
            .sort_values("snapshot_date", kind="stable", ignore_index=True))
    read["sha256"] = read["snapshot_file"].map(file_sha256)
    dates, gap = read["snapshot_date"].drop_duplicates(), gap_days(read["snapshot_date"])
    with_id = stacked[stacked["opportunity_id"].notna()]
    deleted = int(with_id["status"].eq("deleted").sum())
    last = with_id.sort_values("snapshot_date", kind="stable").drop_duplicates("opportunity_id", keep="last")
    vanished = int((last["snapshot_date"].lt(dates.iloc[-1]) & ~last["status"].isin(["won", "lost"])).sum())
    detail = (f"{len(stacked):,} deal rows in {len(files)} snapshots give {len(history):,} stage entries (the other "
              f"rows repeat a deal's stage from its previous snapshot"
              + (f", are deals marked deleted ({deleted:,})" if deleted else "")
              + f", or lack an id or a stage); an open stage is dated by the first snapshot showing it, so it was "
              f"entered up to {'%g' % gap if pd.notna(gap) else 'an unknown number of'} days (the median gap) "
              f"before, and before the first snapshot for deals already in it; an outcome is dated by the deal's closed_at "
              f"where that falls after the previous snapshot"
              + (f"; {vanished:,} open deals are missing from the later snapshots (left the view, or deleted)"
                 if vanished else ""))
    note = {"table": "stage_history", "kind": "snapshot_history", "column": "entered_at",
            "value": f"{len(files)} snapshots, {dates.iloc[0]:%Y-%m-%d} to {dates.iloc[-1]:%Y-%m-%d}",
            "rows": len(history), "detail": detail}
    column_map = pd.DataFrame({"source_column": [f"{len(files)} snapshots: {', '.join(src.snapshots)}"],
                               "column": ["opportunity_id / stage / entered_at / expected_close_at"]})
    # raw: the snapshot rows that are entries (a removed entry's quarantine row is the snapshot row behind it)
    return Table("stage_history", stacked.loc[history.index], history.drop(columns="snapshot_file"), column_map,
                 source=f"{len(files)} snapshots ({files[0].name} ... {files[-1].name})",
                 sha256=sha256 or source_sha256(src), notes=pd.DataFrame([note], columns=NOTE_COLUMNS),
                 snapshots=read.rename(columns={"snapshot_file": "path"}))
