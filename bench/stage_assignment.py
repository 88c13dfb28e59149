"""Benchmark: stage assignment with 10 rules over N synthetic opportunities, vs one hand-vectorised pandas pass.

    .venv/bin/python bench/stage_assignment.py [--rows 1000000]

Prints the agreement check, then one JSON line (DESIGN.md "Benchmarks"). The funnel_lab part runs in a child
process so that its peak memory (ru_maxrss, data included) is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import numpy as np
import pandas as pd

ORDER = [f"s{i}" for i in range(1, 11)]
RULES = {
    "s1": "True",
    "s2": "visits >= 2",
    "s3": "visits >= 3 or emails_replied >= 1",
    "s4": "meetings >= 1",
    "s5": "meetings >= 1 and minutes_on_site > 20",
    "s6": "demo or trial",
    "s7": "(demo or trial) and source in ['Web', 'Referral', 'Partner']",
    "s8": "quote_sent",
    "s9": "quote_sent and budget_confirmed",
    "s10": "quote_sent and budget_confirmed and amount * 1.1 > 20000 and notna(owner)",
}


def make_data(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    owner = pd.array(rng.choice(["a", "b", "c"], rows).astype(object), dtype="str")
    owner[rng.random(rows) < 0.02] = pd.NA
    return pd.DataFrame({
        "opportunity_id": pd.array(np.char.add("OPP-", np.arange(rows).astype(str)), dtype="str"),
        "visits": rng.poisson(3, rows), "emails_replied": rng.poisson(1, rows), "meetings": rng.poisson(0.8, rows),
        "minutes_on_site": rng.gamma(2, 12, rows),
        "demo": pd.array(rng.random(rows) < 0.3, dtype="boolean"), "trial": pd.array(rng.random(rows) < 0.2, dtype="boolean"),
        "quote_sent": pd.array(rng.random(rows) < 0.2, dtype="boolean"),
        "budget_confirmed": pd.array(rng.random(rows) < 0.3, dtype="boolean"),
        "source": pd.array(rng.choice(["Web", "Referral", "Partner", "Event", "Outbound"], rows), dtype="str"),
        "amount": rng.lognormal(9.5, 1, rows), "owner": owner,
    })


def reference(df: pd.DataFrame) -> np.ndarray:
    """The same rules written by hand as one vectorised pandas/numpy pass."""
    demo, trial = df["demo"].fillna(False).to_numpy(bool), df["trial"].fillna(False).to_numpy(bool)
    quote, budget = df["quote_sent"].fillna(False).to_numpy(bool), df["budget_confirmed"].fillna(False).to_numpy(bool)
    v, e, m = df["visits"].to_numpy(), df["emails_replied"].to_numpy(), df["meetings"].to_numpy()
    conds = [np.ones(len(df), bool), v >= 2, (v >= 3) | (e >= 1), m >= 1, (m >= 1) & (df["minutes_on_site"].to_numpy() > 20),
             demo | trial, (demo | trial) & df["source"].isin(["Web", "Referral", "Partner"]).to_numpy(), quote,
             quote & budget, quote & budget & (df["amount"].to_numpy() * 1.1 > 20000) & df["owner"].notna().to_numpy()]
    rank = np.zeros(len(df), dtype=int)
    for i, c in enumerate(conds, start=1):
        rank = np.where(c, i, rank)
    return rank


def _funnel_lab_part(rows: int, queue) -> None:
    from funnel_lab.config import Stages
    from funnel_lab.analysis.stages import assign_stages, build_model

    df = make_data(rows)
    model = build_model(Stages.model_validate({"order": ORDER, "method": "rules", "rules": RULES}))
    start = time.perf_counter()
    out = assign_stages(df, model)
    seconds = time.perf_counter() - start
    queue.put((seconds, out["stage_rank"].to_numpy(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    rows = ap.parse_args().rows
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_funnel_lab_part, args=(rows, queue))
    child.start()
    fl_s, fl_rank, peak_mb = queue.get()
    child.join()
    df = make_data(rows)
    start = time.perf_counter()
    ref_rank = reference(df)
    ref_s = time.perf_counter() - start
    agree = bool(np.array_equal(fl_rank, ref_rank))
    print(f"stage ranks agree with the hand-written pass: {agree}")
    if not agree:
        raise SystemExit("funnel_lab and the reference disagree")
    print(json.dumps({"bench": "stage_assignment", "rows": rows, "funnel_lab_s": round(fl_s, 3),
                      "reference": "hand-vectorised pandas/numpy pass over the same 10 rules",
                      "reference_s": round(ref_s, 3), "ratio": round(fl_s / ref_s, 2), "peak_mb": round(peak_mb)}))


if __name__ == "__main__":
    main()
