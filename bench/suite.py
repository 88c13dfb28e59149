"""Benchmark: the whole suite (`funnel-lab run params/demo.yaml`) at growing sizes of the demo data.

    .venv/bin/python bench/suite.py [--rows 20000 200000] [--jobs 2]

For each size, writes the demo dataset with N opportunities (and its history, activity log and experiment) to a
temporary folder and runs every report on it through the console command, as a scheduler would, in a child process
timed by its own clock, with the peak resident memory of its largest process (``os.wait4``: the runner or one of
its notebook kernels). The data are written by ``funnel-lab demo-data`` in a child process too (timed, with its own
peak): a child's peak starts at its parent's size, so this process stays small. Prints, per size, the plan (read,
clean and check before any notebook) and each report's seconds from the run's manifest, then one JSON line
(DESIGN.md "Benchmarks"): the largest run's seconds against the smallest's, ``ratio`` = the growth of the time,
against the growth of the rows in ``reference``.
The goals (issue 16): the 200k run at most 3 times the 20k run; the 1M run within 10 minutes and 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(args: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run a funnel-lab command in a child process: its seconds and the peak MB of its largest process.

    Every command is a child of this small process: a child's peak (ru_maxrss) starts at its parent's resident
    size when it forks, so the data are never made here."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "funnel_lab.cli", *args], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT)
        # wait4: this command's own peak (the largest of it and the processes it waited for: the kernels)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"funnel-lab {' '.join(args)} failed:\n{log.read_text()}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def run_size(rows: int, jobs: int, workdir: Path) -> dict:
    """Write the demo at ``rows`` and run the suite on it; seconds overall, of the plan and per report."""
    project = workdir / f"rows_{rows}"
    shutil.copytree(ROOT / "params", project / "params")
    generate, generate_mb = _timed(["demo-data", "data/demo", "--rows", str(rows), "--seed", "7"], project,
                                   project / "demo_data.log")
    wall, peak_mb = _timed(["run", "params/demo.yaml", "--jobs", str(jobs), "--out", str(project / "reports"),
                            "--notebooks", str(ROOT / "notebooks")], project, project / "run.log")
    manifest = json.loads((project / "reports" / "demo" / "manifest.json").read_text())
    reports = {n["name"]: n["seconds"] for n in manifest["notebooks"]}
    failed = [n["name"] for n in manifest["notebooks"] if n["status"] != "ok"]
    if failed:
        raise SystemExit(f"run at {rows} rows: reports not ok: {', '.join(failed)}")
    return {"rows": rows, "generate_s": round(generate, 1), "generate_mb": round(generate_mb), "wall_s": round(wall, 1),
            "reports": reports, "plan_s": manifest["plan_seconds"], "peak_mb": round(peak_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000],
                    help="demo sizes, smallest first (default: %(default)s; the goal adds 1000000)")
    ap.add_argument("--jobs", type=int, default=2, help="reports in parallel (default: %(default)s)")
    args = ap.parse_args()
    sizes = sorted(args.rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            r = run_size(rows, args.jobs, Path(tmp))
            results.append(r)
            per_report = ", ".join(f"{k} {v:.1f}" for k, v in r["reports"].items())
            print(f"{rows:>9,} rows: run {r['wall_s']:.1f} s (plan {r['plan_s']:.1f} s), peak {r['peak_mb']:.0f} MB; "
                  f"reports (s): {per_report}; data written in {r['generate_s']:.1f} s, {r['generate_mb']:,} MB peak",
                  flush=True)
    small, large = results[0], results[-1]
    print(json.dumps({"bench": "suite", "rows": large["rows"], "funnel_lab_s": large["wall_s"],
                      "reference": f"the same suite at {small['rows']} rows ({large['rows'] // small['rows']}x the "
                                   f"rows)", "reference_s": small["wall_s"],
                      "ratio": round(large["wall_s"] / small["wall_s"], 3), "peak_mb": large["peak_mb"]}))


if __name__ == "__main__":
    main()
