"""The run history: one record per run of a ``run_name``, and the deal-by-deal state of the latest runs.

Layout of the folder (``monitoring.history``, default ``<reports>/<run_name>/history/``)::

    runs/<run_id>.json       the run's numbers: headlines, stage metrics, stage mix, funnel, forecast, breaches
    deals/<run_id>.parquet   every deal's status, stage, expected close, amount and stalled flag at that run

A run's id is its analysis date and a digest of its params and inputs' checksums, so a rerun on the same inputs
writes the same files again (it replaces its own record instead of adding one). Each file is written whole to a temp
file and renamed into place, and no file is ever appended to or rewritten in part: runs of the same ``run_name`` at
the same time each leave complete files, and a reader sees a run's record either whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import files
from ..errors import ParamsError

RECORD_VERSION = 1


def run_id(as_of: pd.Timestamp, params: dict, checksums: dict[str, str]) -> str:
    """``YYYY-MM-DD-<12 hex>``: the analysis date and a digest of the params and the inputs' checksums."""
    text = json.dumps([params, checksums], sort_keys=True, default=str)
    return f"{as_of:%Y-%m-%d}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class RunHistory:
    """The history folder of one ``run_name``.

    Parameters
    ----------
    folder : path
    keep_deals : int
        Runs whose deal snapshot is kept (the newest ones); older snapshots are removed, their records stay.
    """

    folder: Path
    keep_deals: int = 8

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)

    @property
    def runs_dir(self) -> Path:
        return self.folder / "runs"

    @property
    def deals_dir(self) -> Path:
        return self.folder / "deals"

    def records(self) -> list[dict]:
        """Every run's record, oldest first (by the time it was recorded)."""
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise ParamsError(f"{path}: run history record cannot be read ({e}); move it away to go on") from None
            if rec.get("version") == RECORD_VERSION:
                out.append(rec)
        return sorted(out, key=lambda r: (r["recorded_at"], r["run_id"]))

    def previous(self, current_id: str) -> list[dict]:
        """The records of the runs before ``current_id`` (its own earlier record left out), oldest first."""
        return [r for r in self.records() if r["run_id"] != current_id]

    def deals(self, rid: str) -> pd.DataFrame | None:
        """A run's deal snapshot, or None when it was not kept."""
        path = self.deals_dir / f"{rid}.parquet"
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            return None

    def write(self, record: dict[str, Any], deals: pd.DataFrame) -> Path:
        """Write a run's deal snapshot, then its record (a record never points to a snapshot not yet written); then
        drop the deal snapshots beyond :attr:`keep_deals`."""
        rid = record["run_id"]
        files.write_parquet(self.deals_dir / f"{rid}.parquet", deals)
        path = files.write_json(self.runs_dir / f"{rid}.json", {"version": RECORD_VERSION, **record})
        keep = {r["run_id"] for r in self.records()[-self.keep_deals:]} | {rid}
        for snap in self.deals_dir.glob("*.parquet"):
            if snap.stem not in keep:
                snap.unlink(missing_ok=True)  # another run may have removed it already
        return path

    def table(self) -> pd.DataFrame:
        """One row per run: when, analysis date, status, inputs and the headline numbers (``funnel-lab history``)."""
        from .changes import NUMBERS

        rows = [{"run_id": r["run_id"], "as_of": r["as_of"], "recorded_at": r["recorded_at"], "status": r["status"],
                 **{k: r["numbers"].get(k) for k in NUMBERS}, **r["numbers"],
                 "new_breaches": len(r.get("new_breaches") or []),
                 "delivered": ", ".join(f"{c}: {d['status']}" for c, d in r.get("delivery", {}).items())}
                for r in self.records()]
        return pd.DataFrame(rows)
