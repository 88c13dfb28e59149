"""Benchmark: the funnel (any and strict) from a stage history of N deals x 10 entries, vs plain DuckDB SQL.

    .venv/bin/python bench/funnel.py [--rows 1000000]

Both read the same Parquet files; funnel_lab runs in a child process started before the data is made, so that
its peak memory (ru_maxrss) is its own.
Prints the agreement check, then one JSON line (DESIGN.md "Benchmarks").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ORDER = ["potential", "intent", "evaluation", "decision"]


def write_history(folder: Path, deals: int, seed: int = 3) -> tuple[Path, Path]:
    """~10 entries per deal: forward moves, skips, backward moves and re-entries; a won/lost row for closed deals."""
    rng = np.random.default_rng(seed)
    n = deals * 9
    deal = np.repeat(np.arange(deals), 9)
    step = rng.choice([0, 1, 1, 1, 2, -1], size=n)
    rank = np.empty(n, dtype=np.int64)
    cur = np.ones(deals, dtype=np.int64)
    for j in range(9):  # 9 vectorised steps over all deals at once
        rank[j::9] = cur
        cur = np.clip(cur + step[j::9], 1, 4)
    t0 = np.datetime64("2024-01-01") + rng.integers(0, 365, deals).astype("timedelta64[D]")
    days = np.cumsum(rng.integers(1, 20, n).reshape(deals, 9), axis=1).ravel().astype("timedelta64[D]")
    status = rng.choice(["won", "lost", "open"], size=deals, p=[0.25, 0.5, 0.25])
    ids = np.char.add("D", np.arange(deals).astype(str))
    hist = pd.DataFrame({"opportunity_id": ids[deal], "stage": np.array(ORDER)[rank - 1],
                         "entered_at": np.repeat(t0, 9) + days})
    closed = status != "open"
    end = pd.DataFrame({"opportunity_id": ids[closed], "stage": status[closed],
                        "entered_at": t0[closed] + np.timedelta64(400, "D")})
    hist = pd.concat([hist, end], ignore_index=True)
    hp, op = folder / "history.parquet", folder / "opps.parquet"
    hist.to_parquet(hp, index=False)
    pd.DataFrame({"opportunity_id": ids, "status": status}).to_parquet(op, index=False)
    return hp, op


def reference(hp: Path, op: Path) -> pd.DataFrame:
    """The same two funnels written directly in DuckDB SQL over the Parquet files."""
    k = len(ORDER)
    duckdb.sql("set enable_progress_bar = false")
    ranks = ", ".join(f"('{s}', {i})" for i, s in enumerate(ORDER, start=1))
    return duckdb.sql(f"""
        with r(stage, rank) as (values {ranks}),
        f as (select h.opportunity_id, r.rank, min(h.entered_at) t
              from read_parquet('{hp}') h join r using (stage) group by all),
        w as (select *, row_number() over (partition by opportunity_id order by rank) rn,
                     lag(t) over (partition by opportunity_id order by rank) pt from f),
        d as (select opportunity_id, max(rank) a,
                     coalesce(min(case when rank <> rn or t < pt then rn end) - 1, max(rn)) s from w group by all),
        x as (select o.opportunity_id,
                     case when o.status = 'won' then {k + 1} else coalesce(d.a, 0) end a,
                     case when o.status = 'won' and d.s = {k} then {k + 1} else coalesce(d.s, 0) end s
              from (select distinct opportunity_id from read_parquet('{hp}')) h
              join read_parquet('{op}') o using (opportunity_id) left join d using (opportunity_id))
        select i, count(*) filter (where a >= i) any_reached, count(*) filter (where s >= i) strict_reached
        from x, range(1, {k + 2}) g(i) group by i order by i
    """).df()


def _funnel_lab_part(inbox, queue) -> None:
    from funnel_lab.analysis.funnel import deal_reach, funnel_table

    hp, op = inbox.get()
    start = time.perf_counter()
    table = funnel_table(deal_reach(hp, op, ORDER), ORDER)  # DuckDB reads the Parquet files itself
    seconds = time.perf_counter() - start
    queue.put((seconds, table, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="deals (history rows: about 10 per deal)")
    deals = ap.parse_args().rows
    # The child starts before the data is made: a process inherits its parent's resident size as its peak.
    ctx = mp.get_context("spawn")
    inbox, queue = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_funnel_lab_part, args=(inbox, queue))
    child.start()
    with tempfile.TemporaryDirectory() as tmp:
        hp, op = write_history(Path(tmp), deals)
        rows = duckdb.sql(f"select count(*) from read_parquet('{hp}')").fetchall()[0][0]
        inbox.put((hp, op))
        fl_s, table, peak_mb = queue.get()
        child.join()
        start = time.perf_counter()
        ref = reference(hp, op)
        ref_s = time.perf_counter() - start
    got_any = table[table["mode"] == "any"]["reached"].tolist()
    got_strict = table[table["mode"] == "strict"]["reached"].tolist()
    agree = got_any == ref["any_reached"].tolist() and got_strict == ref["strict_reached"].tolist()
    print(f"funnel counts agree with the SQL reference: {agree} (any {got_any}, strict {got_strict})")
    if not agree:
        raise SystemExit(f"funnel_lab and the reference disagree: {ref.to_dict('list')}")
    print(json.dumps({"bench": "funnel", "rows": int(rows), "funnel_lab_s": round(fl_s, 3),
                      "reference": "plain DuckDB SQL over the same Parquet files",
                      "reference_s": round(ref_s, 3), "ratio": round(fl_s / ref_s, 2), "peak_mb": round(peak_mb)}))


if __name__ == "__main__":
    main()
