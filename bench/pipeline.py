"""Benchmark: a stage rule changed with ``Pipeline.with_params`` vs the first load of the same pipeline.

    .venv/bin/python bench/pipeline.py [--rows 20000]

Writes the demo dataset with N opportunities (and its activity log) to a temporary folder, then, in a child process
(so that the peak memory is its own): loads ``params/demo.yaml`` with the behaviour stages of
``params/examples/demo_behaviour.yaml`` and asks for the stage metrics (read, clean, validate, activity features,
stages), then changes one rule with ``with_params`` and asks again. The second pipeline must give the metrics a fresh
load of the changed params gives (checked), in a fraction of the time: the target is less than a fifth of the
first load (``ratio``). Prints one JSON line (DESIGN.md "Benchmarks").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGE = {"stages.rules.intent": "visit_30d >= 5 or reply_90d >= 2"}


def _child(params: list[str], queue) -> None:
    import pandas as pd

    import funnel_lab as fl

    start = time.perf_counter()
    p = fl.load(*params)
    p.stage_metrics  # noqa: B018
    first = time.perf_counter() - start
    start = time.perf_counter()
    changed = p.with_params(CHANGE).stage_metrics
    again = time.perf_counter() - start
    fresh = fl.load(*params, set=CHANGE).stage_metrics
    pd.testing.assert_frame_equal(changed, fresh)
    queue.put((first, again, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(p.opportunities)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="demo opportunities (default: %(default)s)")
    args = ap.parse_args()
    from funnel_lab.data.demo import write_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copytree(ROOT / "params", project / "params")
        write_demo_data(project / "data" / "demo", rows=args.rows, seed=7)
        params = [str(project / "params" / "demo.yaml"), str(project / "params" / "examples" / "demo_behaviour.yaml")]
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_child, args=(params, queue))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"the pipeline failed (exit {child.exitcode})")
        first, again, peak, n = queue.get()
    print(f"{n:,} opportunities: first load {first:.2f} s, with_params {again:.3f} s; the metrics agree with a fresh "
          f"load of the changed params")
    print(json.dumps({"bench": "pipeline", "rows": args.rows, "funnel_lab_s": round(again, 4),
                      "reference": "first load of the same pipeline (read, clean, features, stages)",
                      "reference_s": round(first, 3), "ratio": round(again / first, 4), "peak_mb": round(peak)}))


if __name__ == "__main__":
    main()
