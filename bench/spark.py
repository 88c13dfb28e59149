"""Benchmark: the funnel and the behaviour features on Spark local[2] against the embedded DuckDB, same files.

    .venv/bin/python bench/spark.py [--rows 10000000 100000000] [--master local[2]] [--driver-memory 4g]

For each size N (events): N events over N/100 opportunities (bench/activity_features.py's generator) and a stage
history of N/100 deals x 10 entries (bench/funnel.py's), written once as Parquet. Each engine then runs, in a child
process of its own, the funnel reach (``deal_reach``) and the behaviour features (``behaviour_features``) on those
files, read where they lie; the child's peak is the largest resident size of its process tree (for Spark: the
Python driver plus its JVM), sampled by the parent. Prints per size the seconds of each step on each engine and
whether they agree (counts exact, doubles within 1e-9), then one JSON line (DESIGN.md "Benchmarks") for the largest
size: Spark's seconds against DuckDB's, with the growth from the smallest size.
Needs Java 17 and pyspark (``make test`` installs both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the generators and the comparison of the sibling benchmarks

import activity_features as features_bench  # noqa: E402
import funnel as funnel_bench  # noqa: E402


def _tree_rss_mb(pid: int) -> float:
    """Resident MB of ``pid`` and every process below it (the JVM that pyspark starts is a child)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        below = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return sum(rss.get(p, 0) for p in tree) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_part(backend: str, folder: Path, master: str, driver_memory: str) -> dict:
    """Run one engine in a child process (this script with --part); its seconds and its tree's peak MB."""
    cmd = [sys.executable, __file__, "--part", backend, "--folder", str(folder), "--master", master,
           "--driver-memory", driver_memory]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.2)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{backend} part failed (exit {proc.returncode}):\n{out}")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_mb": round(peak)}


def part(backend: str, folder: Path, master: str, driver_memory: str) -> None:
    """In the child: open the engine, run both steps on the Parquet files, write the results beside them."""
    from funnel_lab.analysis.funnel import deal_reach
    from funnel_lab.config import EngineSettings
    from funnel_lab.data.activities import behaviour_features
    from funnel_lab.engine import open_engine

    settings = (EngineSettings(backend="spark", master=master, conf={"spark.driver.memory": driver_memory})
                if backend == "spark" else EngineSettings())
    start = time.perf_counter()
    engine = open_engine(settings)
    seconds = {"start_s": round(time.perf_counter() - start, 2)}
    with engine:
        start = time.perf_counter()
        reach = deal_reach(folder / "history.parquet", folder / "opps.parquet", funnel_bench.ORDER, engine=engine)
        seconds["funnel_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        engine.register_parquet("bench_events", str(folder / "events.parquet"))
        engine.register_parquet("bench_cutoffs", str(folder / "cutoffs.parquet"))
        feats = behaviour_features(engine, "bench_events", "bench_cutoffs", windows=features_bench.WINDOWS)
        seconds["features_s"] = round(time.perf_counter() - start, 2)
    reach.to_parquet(folder / f"reach_{backend}.parquet", index=False)
    feats.to_parquet(folder / f"features_{backend}.parquet", index=False)
    print(json.dumps(seconds))


def compare_size(folder: Path) -> str:
    """Raise when the engines disagree; else a line saying what was compared."""
    reach = {b: pd.read_parquet(folder / f"reach_{b}.parquet").sort_values("opportunity_id", ignore_index=True)
             for b in ("duckdb", "spark")}
    if not reach["duckdb"].equals(reach["spark"]):
        diff = (reach["duckdb"] != reach["spark"]).any(axis=1)
        raise SystemExit(f"funnel reach differs in {int(diff.sum())} deals, e.g.\n"
                         f"{reach['duckdb'][diff].head(3)}\n{reach['spark'][diff].head(3)}")
    problems, summary = features_bench.compare(pd.read_parquet(folder / "features_spark.parquet"),
                                               pd.read_parquet(folder / "features_duckdb.parquet"))
    if problems:
        raise SystemExit("behaviour features differ:\n  " + "\n  ".join(problems))
    return f"reach of {len(reach['duckdb']):,} deals identical; features {summary}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000],
                    help="events per size, smallest first (default: %(default)s)")
    ap.add_argument("--master", default="local[2]", help="Spark master (default: %(default)s)")
    ap.add_argument("--driver-memory", default="4g", help="spark.driver.memory (default: %(default)s)")
    ap.add_argument("--part", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        part(args.part, args.folder, args.master, args.driver_memory)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sorted(args.rows):
            folder = Path(tmp) / f"rows_{rows}"
            folder.mkdir()
            deals = max(rows // 100, 1)
            start = time.perf_counter()
            features_bench.write_data(folder, rows, deals)
            funnel_bench.write_history(folder, deals)
            print(f"{rows:,} events, {deals:,} deals (x10 history rows) written in {time.perf_counter() - start:.1f} s",
                  flush=True)
            r = {"rows": rows}
            for backend in ("duckdb", "spark"):
                r[backend] = run_part(backend, folder, args.master, args.driver_memory)
                print(f"  {backend:>6}: " + ", ".join(f"{k} {v}" for k, v in r[backend].items()), flush=True)
            print("  agree: " + compare_size(folder), flush=True)
            for f in folder.iterdir():
                f.unlink()  # the next size needs the disk
            results.append(r)
    small, large = results[0], results[-1]

    def steps(r: dict, backend: str) -> float:  # the work, not the session start
        return r[backend]["funnel_s"] + r[backend]["features_s"]

    print(json.dumps({"bench": "spark", "rows": large["rows"], "funnel_lab_s": round(steps(large, "spark"), 2),
                      "reference": f"the embedded DuckDB engine on the same files (funnel reach + behaviour "
                                   f"features; Spark {args.master}, session start {large['spark']['start_s']} s "
                                   f"not counted)",
                      "reference_s": round(steps(large, "duckdb"), 2),
                      "ratio": round(steps(large, "spark") / steps(large, "duckdb"), 2),
                      "peak_mb": large["spark"]["peak_mb"],
                      "growth": {"rows": round(large["rows"] / small["rows"], 1),
                                 "spark": round(steps(large, "spark") / steps(small, "spark"), 2),
                                 "duckdb": round(steps(large, "duckdb") / steps(small, "duckdb"), 2)}}))


if __name__ == "__main__":
    main()
