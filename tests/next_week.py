"""The demo's CRM export a week later, with known changes: the second run of the run-history tests.

Written on the raw export (its own column names and values), as the CRM would: deals closed with a close date and a
closing row in the stage history, deals moved a stage on, close dates pushed back. Every open deal that the stage
model puts at ``evaluation`` is lost, so that stage's win rate among the deals closed since the first run drops to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NEXT_STAGE = {"potential": "Intent", "intent": "Evaluation", "evaluation": "Decision"}


@dataclass
class PlantedChanges:
    lost: list[str]
    won: list[str]
    moved: dict[str, str]  # id -> new CRM stage (canonical)
    slipped: list[str]


def next_week(data_dir: Path, clean: pd.DataFrame, model_stage: pd.Series, *, seed: int = 3) -> PlantedChanges:
    """Rewrite ``opportunities.csv`` and ``stage_history.csv`` in ``data_dir`` a week on.

    ``clean`` is the first run's ``opportunities_clean.csv``; ``model_stage`` the stage model's stage by id.
    """
    rng = np.random.default_rng(seed)
    opp = pd.read_csv(data_dir / "opportunities.csv", dtype="str", keep_default_na=False)
    hist = pd.read_csv(data_dir / "stage_history.csv", dtype="str", keep_default_na=False)
    is_open = clean["status"].eq("open")
    open_ids = clean.loc[is_open, "opportunity_id"]
    stage = model_stage.reindex(open_ids).to_numpy()
    lost = sorted(open_ids[stage == "evaluation"])[:40]
    decision = sorted(open_ids[stage == "decision"])
    won = sorted(rng.choice(decision, size=min(10, len(decision)), replace=False))
    rest = clean[is_open & ~clean["opportunity_id"].isin(lost + won)]
    movable = rest[rest["crm_stage"].isin(list(NEXT_STAGE))]
    moved_rows = movable.sample(15, random_state=seed)
    moved = dict(zip(moved_rows["opportunity_id"], moved_rows["crm_stage"].map(lambda s: NEXT_STAGE[s].lower())))
    dated = rest[rest["expected_close_at"].notna() & ~rest["opportunity_id"].isin(list(moved))]
    slipped = sorted(dated["opportunity_id"].sample(15, random_state=seed + 1))

    rows = []
    for i, oid in enumerate(lost + won):
        m = opp["Opportunity ID"] == oid
        day = f"2026-07-0{2 + i % 6}"
        outcome = "Won" if oid in won else "Lost"
        opp.loc[m, ["Outcome", "Stage", "Close Date", "Expected Close Date", "Probability (%)"]] = [
            outcome, f"Closed {outcome}", day, "", "100" if outcome == "Won" else "0"]
        rows.append({"Opportunity ID": oid, "Stage": f"Closed {outcome}", "Entered At": f"{day} 10:00:00",
                     "Expected Close Date": ""})
    for oid, new in moved.items():
        m = opp["Opportunity ID"] == oid
        opp.loc[m, "Stage"] = new.capitalize()
        rows.append({"Opportunity ID": oid, "Stage": new.capitalize(), "Entered At": "2026-07-03 09:00:00",
                     "Expected Close Date": opp.loc[m, "Expected Close Date"].iloc[0]})
    for oid in slipped:
        m = opp["Opportunity ID"] == oid
        was = pd.Timestamp(clean.loc[clean["opportunity_id"] == oid, "expected_close_at"].iloc[0])
        opp.loc[m, "Expected Close Date"] = f"{was + pd.Timedelta(days=30):%Y-%m-%d}"
    pd.concat([hist, pd.DataFrame(rows)], ignore_index=True).to_csv(data_dir / "stage_history.csv", index=False)
    opp.to_csv(data_dir / "opportunities.csv", index=False)
    return PlantedChanges(lost, won, moved, slipped)
