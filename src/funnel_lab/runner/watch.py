"""After the notebooks: the run remembered in the run history, and its new breaches delivered.

The history gets one record per run (this run's earlier record on the same inputs is replaced); the record holds the
numbers the next run compares with: the deals' own numbers and the notebooks' headlines, the stage metrics, the
funnel, the forecast and the breaches of the latest periods, and what each alert channel delivered.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import pandas as pd

from ..analysis.monitoring import RECENT_PERIODS
from ..config import Params
from ..history.changes import SinceLastRun, open_stage_counts
from ..history.delivery import BREACH_FIELDS, breach_id, deliver
from ..history.store import RunHistory
from ..i18n import format_number, format_percent, format_period, t

#: Tables of ``data/`` kept in the record, with the columns kept.
RECORD_TABLES = {
    "stage_metrics": ("stage_metrics.csv", ["stage", "n", "n_closed", "won", "win_rate", "ci_low", "ci_high"]),
    "funnel": ("funnel.csv", ["mode", "stage", "reached", "advanced", "conversion_rate", "cumulative_rate"]),
    "forecast": ("forecast.csv", ["period", "expected_amount", "p10", "p90"]),
}


NUMERIC = ("value", "limit", "center", "lcl", "ucl")


def recent_breaches(data_dir: Path) -> list[dict] | None:
    """The breaches of the latest :data:`RECENT_PERIODS` periods from ``alerts.csv`` (None when the monitoring did
    not run: nothing is known)."""
    alerts, series = data_dir / "alerts.csv", data_dir / "monitoring.csv"
    if not alerts.is_file() or not series.is_file():
        return None
    a = pd.read_csv(alerts, dtype={"period": "str", "stage": "str"})
    if a.empty:
        return []
    periods = sorted(set(pd.read_csv(series, usecols=["period"], dtype="str")["period"]))[-RECENT_PERIODS:]
    recent = a[a["period"].isin(periods)]
    recent = recent.assign(limit=recent["lcl"].where(recent["direction"].eq("below"), recent["ucl"]))
    return [{k: (round(float(r[k]), 6) if k in NUMERIC else str(r[k])) for k in BREACH_FIELDS}
            for r in recent.to_dict("records")]


def _tables(data_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for key, (name, cols) in RECORD_TABLES.items():
        path = data_dir / name
        if path.is_file():
            df = pd.read_csv(path)
            out[key] = json.loads(df[[c for c in cols if c in df]].to_json(orient="records"))
    return out


def _breach_line(b: dict, lang: str, labels: dict[str, str]) -> str:
    fmt = (lambda x: format_percent(x, lang)) if b["metric"] == "conversion" else (lambda x: format_number(x, lang))
    return t("alert.line", lang, period=format_period(b["period"], lang), stage=labels.get(b["stage"], b["stage"]),
             metric=t(f"mon.metric.{b['metric']}", lang), value=fmt(b["value"]), center=fmt(b["center"]),
             limit=fmt(b["limit"]), direction=t(f"mon.direction.{b['direction']}", lang))


def remember_run(run_dir: Path, manifest: dict, since: SinceLastRun, params: Params, store: RunHistory,
                 headlines: dict, labels: dict[str, str], progress: TextIO) -> bool:
    """Deliver the new breaches, write the run's record, and note both in the manifest.

    Returns
    -------
    bool
        False when an alert channel failed (the run then exits 1; every report is written already).
    """
    lang, data_dir = params.language, run_dir / "data"
    breaches = recent_breaches(data_dir)
    report = params.alerts.report_url or (run_dir / "index.html").as_uri()
    title, as_of = params.title or params.run_name, f"{since.as_of:%Y-%m-%d}"
    records = store.records()  # this run's earlier record too: what it delivered is not sent again

    def subject(due: list[dict]) -> str:
        return t("alert.subject", lang, title=title, n=len(due), as_of=as_of)

    def text(due: list[dict]) -> str:
        lines = [t("alert.intro", lang, title=title, n=len(due), as_of=as_of)]
        lines += [f"- {_breach_line(b, lang, labels)}" for b in due] + ["", t("alert.report", lang, url=report)]
        return "\n".join(lines) + "\n"

    payload = {"run_name": params.run_name, "title": title, "run_id": since.run_id, "as_of": as_of,
               "report": report, "status": manifest["status"]}
    delivery = deliver(params.alerts, breaches or [], records, payload=payload, subject=subject, text=text)
    for name, d in delivery.items():
        if d["status"] == "failed":
            print(f"funnel-lab: alert channel {name} failed after {d['attempts']} attempt(s): {d['error']}; "
                  f"{d['breaches']} breach(es) not delivered (the next run sends them)", file=progress, flush=True)
        elif d["status"] == "sent":
            print(f"funnel-lab: alert channel {name}: {d['breaches']} new breach(es) sent", file=progress, flush=True)
    last = since.last
    seen = {breach_id(b) for b in (last or {}).get("breaches") or []}
    new = [b for b in breaches or [] if breach_id(b) not in seen]
    record = {
        "run_id": since.run_id, "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "started_at": manifest["started_at"], "as_of": as_of, "status": manifest["status"],
        "params_sha256": hashlib.sha256(json.dumps(manifest["params"], sort_keys=True).encode()).hexdigest(),
        "inputs": {i["table"]: i["sha256"] for i in manifest["inputs"]}, "report": str(run_dir / "index.html"),
        "numbers": {**since.numbers, **{k: v for k, v in headlines.items() if isinstance(v, (int, float))}},
        "stage_mix": {k: int(v) for k, v in open_stage_counts(since.deals).items()},
        **_tables(data_dir), "breaches": breaches, "new_breaches": new, "delivery": delivery,
    }
    store.write(record, since.deals)
    manifest["history"] = {"folder": str(store.folder), "run_id": since.run_id, "runs": len(since.previous) + 1,
                           "previous_run": last["run_id"] if last else None}
    manifest["alerts"] = {"breaches": len(breaches) if breaches is not None else None, "new": len(new),
                          "channels": {n: {k: v for k, v in d.items() if k != "sent"} for n, d in delivery.items()}}
    return all(d["status"] != "failed" for d in delivery.values())
