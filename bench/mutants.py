"""Benchmark: mutation testing of the analysis modules (mutmut 3) against the fast subset of their unit tests.

    .venv/bin/python bench/mutants.py [--modules stages,funnel] [--workers 2] [--keep | --retest | --resume | --report]
                                      [--diffs 30]

The configuration is pyproject.toml's [tool.mutmut]: which files are mutated (the seven analysis modules) and the
fast tests (their unit tests without the slow demo, real-data and Spark ones). mutmut copies src/, tests/ and
params/ into mutants/, puts every function behind a trampoline, records which tests call which function, then
runs each mutant against only those tests, in --workers forked processes (default 2: the machine's two cores;
BLAS and OpenMP are held to one thread per worker). Every run starts from an empty mutants/ unless --keep (the
chosen modules' mutants are tested again, the others' verdicts kept; with all modules, only the functions that
changed), --retest (only the chosen modules' mutants that survived last time: after new tests, minutes
instead of hours) or --resume (only those a stopped run left untested); then the seconds are not a benchmark.
--report only reads the verdicts already in mutants/ (seconds 0). Slow: each mutant is a fresh pytest session of
the tests that call its function (a stub pipeline or a small demo); funnel and monitoring, 2,334 mutants, took 26
min on 2 cores.

How a mutant counts, per module: killed = the tests failed (mutmut's "killed"), ran out of time ("timeout": the
tests hang or crawl under the mutant) or crashed ("segfault": killed by a signal); survived = the tests passed, or
no fast test calls the function ("no tests"), or an exit code mutmut cannot read ("suspicious"). killed_share =
killed / (killed + survived). Mutants that were skipped (pragma) or never run are left out of both; those never run
(a run stopped early) are counted in the JSON's "untested".
Prints each module's counts and surviving mutants (function: mutant ids; --diffs N shows the first N diffs), then
one JSON line (DESIGN.md "Benchmarks"): the number of mutants, the wall seconds of `mutmut run`, the killed share
of each module.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
KILLED = {"killed", "timeout", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}
MUTANT = re.compile(r"^(?P<module>.+?)\.x(?:_(?P<func>.+?)|ǁ(?P<cls>.+?)ǁ(?P<meth>.+?))__mutmut_(?P<id>\d+)$")


def configured_modules() -> dict[str, str]:
    """The files [tool.mutmut] only_mutate names, by module short name: {"stages": "src/funnel_lab/analysis/..."}."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    return {Path(p).stem: p for p in cfg["only_mutate"]}


def run_mutmut(names: list[str], workers: int, log: Path) -> tuple[float, int]:
    """`mutmut run` on the mutants ``names`` (globs or names; none: all, incrementally), its output in `log`:
    (seconds, exit)."""
    mutmut = Path(sys.executable).with_name("mutmut")
    # mutants named on the command line are always tested again; unnamed, mutmut keeps the verdicts it has
    globs = list(names)
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
    env = {**os.environ, **threads, "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run([str(mutmut), "run", "--max-children", str(workers), *globs], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, rc


def results(path: str) -> dict[str, str]:
    """mutmut's verdict on each mutant of one source file, read from its mutants/<path>.meta."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((MUTANTS / (path + ".meta")).read_text(encoding="utf-8"))
    return {key: status_by_exit_code[code] for key, code in meta["exit_code_by_key"].items()}


def function_and_id(key: str) -> tuple[str, int]:
    """funnel_lab.analysis.stages.x_build_model__mutmut_12 -> ("build_model", 12); methods as Class.method."""
    m = MUTANT.match(key)
    if not m:
        return key, -1
    return (m["func"] or f"{m['cls']}.{m['meth']}"), int(m["id"])


def show_diffs(keys: list[str]) -> None:
    """The change each of these mutants makes (mutmut's `show`), read in this process from mutants/."""
    from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        for key in keys:
            print(f"--- {key}")
            print(get_diff_for_mutant(key, path=find_mutant(key).path).strip())
    finally:
        os.chdir(here)


def main() -> None:
    known = configured_modules()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", default=",".join(known),
                    help=f"comma-separated, of: {','.join(known)} (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="mutants tested at once (default 2: one per core)")
    ap.add_argument("--keep", action="store_true",
                    help="reuse mutants/ from the last run (with all modules: only changed functions are tested)")
    ap.add_argument("--retest", action="store_true",
                    help="with mutants/ from the last run, test again only the modules' mutants that survived "
                         "(after new tests: minutes instead of hours)")
    ap.add_argument("--resume", action="store_true",
                    help="with mutants/ from a stopped run, test only the modules' mutants it left untested")
    ap.add_argument("--report", action="store_true", help="only read and print the results in mutants/")
    ap.add_argument("--diffs", type=int, default=0, metavar="N", help="print the diffs of the first N survivors")
    args = ap.parse_args()
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    unknown = sorted(set(modules) - set(known))
    if unknown or not modules:
        ap.error(f"unknown module(s) {unknown}; [tool.mutmut] only_mutate has {sorted(known)}")

    seconds = 0.0
    if not args.report:
        if args.retest or args.resume:
            wanted = SURVIVED if args.retest else {"not checked"}
            names = [key for m in modules for key, status in results(known[m]).items() if status in wanted]
        elif args.keep and set(modules) == set(known):
            names = []
        else:
            names = [f"funnel_lab.analysis.{m}.*" for m in modules]
        if not (args.keep or args.retest or args.resume) and MUTANTS.exists():
            shutil.rmtree(MUTANTS)
        MUTANTS.mkdir(exist_ok=True)
        log = MUTANTS / "bench-mutmut-run.log"
        seconds, rc = (run_mutmut(names, args.workers, log) if names or not (args.retest or args.resume)
                       else (0.0, 0))
        if rc != 0:
            print(log.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
            raise SystemExit(f"mutmut run failed (exit {rc}); its output: {log}")
        print(f"mutmut run: {seconds:.1f} s with {args.workers} workers (log: {log.relative_to(ROOT)})")

    total, shares, untested, survivors = 0, {}, {}, []
    for module in modules:
        verdicts = results(known[module])
        counts = Counter(verdicts.values())
        total += len(verdicts)
        if counts["not checked"]:  # a run stopped early: the share is of the mutants tested
            untested[module] = counts["not checked"]
        killed = sum(counts[s] for s in KILLED)
        survived = sum(counts[s] for s in SURVIVED)
        shares[module] = round(killed / (killed + survived), 3) if killed + survived else None
        print(f"\n{module}: {len(verdicts)} mutants, killed share {shares[module]} ("
              + ", ".join(f"{s} {n}" for s, n in sorted(counts.items(), key=lambda x: -x[1])) + ")")
        by_function: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for key, status in verdicts.items():
            if status in SURVIVED:
                func, ident = function_and_id(key)
                by_function[func][status].append(ident)
                if status == "survived":
                    survivors.append(key)
        for func, ids in sorted(by_function.items(), key=lambda x: -sum(map(len, x[1].values()))):
            parts = [" ".join(map(str, sorted(ids.pop("survived", []))))]
            parts += [f"{status}: {len(n)}" for status, n in ids.items()]  # "no tests: 42" (no fast test calls it)
            print(f"  {func}: " + "; ".join(p for p in parts if p))

    if args.diffs:
        print(f"\nthe first {min(args.diffs, len(survivors))} surviving mutants' diffs:")
        show_diffs(survivors[:args.diffs])
    print(json.dumps({"bench": "mutants", "mutants": total, "seconds": round(seconds, 1), "killed_share": shares,
                      **({"untested": untested} if untested else {})}))


if __name__ == "__main__":
    main()
