"""The ``funnel-lab`` command: a thin layer over the runner, the config checks and the demo data."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ParamsError
from .runner.registry import NOTEBOOKS
from .scaffold import PRESETS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="funnel-lab", description="From a CRM export to a decision: reports as offline HTML.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def params_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("params", nargs="+", metavar="PARAMS.yaml", help="params files, deep-merged left to right")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                        help="override one key after the merge (repeatable)")
        sp.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these reports: {', '.join(NOTEBOOKS)}")
        sp.add_argument("--notebooks", type=Path, metavar="DIR",
                        help="folder of your own edited report notebooks (default: the ones this version ships)")

    run = sub.add_parser("run", help="run the reports into <out>/<run_name>/")
    params_args(run)
    run.add_argument("--out", type=Path, metavar="DIR", help="root folder of the reports (default: ./reports)")
    run.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                     help="reports executed in parallel (default: %(default)s)")
    check = sub.add_parser("check", help="validate params and inputs without running notebooks")
    params_args(check)
    st = sub.add_parser("stages", help="stage assignment and its quality checks as a terminal table (fast)")
    params_args(st)
    hist = sub.add_parser("history", help="the run history of a params file: one row per run, its headline numbers")
    hist.add_argument("params", nargs="+", metavar="PARAMS.yaml", help="params files, deep-merged left to right")
    hist.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value")
    hist.add_argument("--out", type=Path, metavar="DIR", help="root folder of the reports (default: ./reports)")
    hist.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    init = sub.add_parser("init", help="a new analysis project: params, notebooks, data/raw, reports, README")
    init.add_argument("dir", type=Path)
    init.add_argument("--preset", default="none", choices=PRESETS, help="the CRM the starter params read")
    init.add_argument("--demo", action="store_true", help="include the demo params and a synthetic CRM in data/demo")
    init.add_argument("--rows", type=int, default=20_000, help="demo opportunities with --demo (default: %(default)s)")
    demo = sub.add_parser("demo-data", help="write the synthetic demo CRM (CSV) and its ground truth")
    demo.add_argument("dir", type=Path)
    demo.add_argument("--rows", type=int, default=20_000, help="distinct opportunities (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a report failed, 2 bad params or input)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from .runner import run_reports

            if args.jobs < 1:
                raise ParamsError(f"--jobs {args.jobs}: expected a whole number >= 1")
            code, run_dir = run_reports(args.params, overrides=args.overrides, only=args.only, out=args.out,
                                        jobs=args.jobs, notebooks_dir=args.notebooks)
            print(run_dir / "index.html")
            return code
        if args.command == "check":
            return _check(args)
        if args.command == "stages":
            return _stages(args)
        if args.command == "init":
            from .scaffold import init_project

            if args.rows < 100:
                raise ParamsError(f"--rows {args.rows}: expected at least 100")
            init_project(args.dir, preset=args.preset, demo=args.demo, rows=args.rows)
            first = "params/demo.yaml" if args.demo else f"params/{'pipeline' if args.preset == 'none' else args.preset}.yaml"
            print(f"{args.dir}: new funnel_lab project; next: cd {args.dir} && funnel-lab run {first}")
            return EXIT_OK
        if args.command == "history":
            return _history(args)
        if args.command == "demo-data":
            from .data.demo import write_demo_data

            if args.rows < 100:
                raise ParamsError(f"--rows {args.rows}: expected at least 100")
            write_demo_data(args.dir, rows=args.rows, seed=args.seed)
            print(args.dir)
            return EXIT_OK
    except ParamsError as e:
        print(f"funnel-lab: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("funnel-lab: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from .runner.plan import plan_run
    from .runner.render import skip_note

    plan = plan_run(args.params, overrides=args.overrides, only=args.only, notebooks_dir=args.notebooks)
    print(f"params ok: run_name={plan.params.run_name} language={plan.params.language}")
    for i in plan.inputs:
        after = f"{i['rows_clean']:>9,} after cleaning" if "rows_clean" in i else " " * 24  # lookups, snapshots
        print(f"  {i['table']:<14} {i['rows']:>9,} rows read, {after}  {i['path']}")
    for step in plan.removed:
        print(f"  removed by cleaning: {step['table']}: {step['step']}: {step['rows_removed']:,} rows ({step['detail']})")
    v = plan.validation
    if v is not None and len(v):
        print(f"schema check failures after cleaning: {len(v):,}")
        for (table, column, check), part in v.groupby(["table", "column", "check"]):
            rows = ", ".join(str(r) for r in part["source_row"].dropna().head(5))
            print(f"  {table}.{column}: {check}: {len(part):,} rows (e.g. rows {rows})")
    store = plan.pipeline.history_store()
    runs = store.records() if store.folder.is_dir() else []
    print(f"run history: {store.folder} ({len(runs)} run(s) recorded" +
          (f", the last on data up to {runs[-1]['as_of']})" if runs else ")"))
    for name, line in _alert_channels(plan.params).items():
        print(f"  alerts by {name}: {line}")
    if plan.kernel is not None:
        print(f"{plan.kernel.describe()}; notebooks from {plan.notebooks_dir}")
    for name in plan.run:
        print(f"  will run  {name}")
    for r in plan.skipped:
        print(f"  skip      {r.name}: {skip_note(r, 'en')}")
    return EXIT_OK


def _alert_channels(params) -> dict[str, str]:
    """Each alert channel as ``check`` shows it: where it sends (secrets masked), and an unset variable named."""
    import re

    from .config import mask_url, mask_webhook

    out = {}
    for name, cfg in params.alerts.channels().items():
        target = cfg.url if name == "webhook" else cfg.smtp_url
        unset = [v for v in re.findall(r"\$\{(\w+)\}", target) if v not in os.environ]
        where = mask_webhook(target) if name == "webhook" else f"{mask_url(target)} to {', '.join(cfg.to)}"
        out[name] = where + (f" (environment variable {unset[0]} is not set: this channel will fail)" if unset else "")
    return out


def _stages(args: argparse.Namespace) -> int:
    """Read, clean, build the behaviour features, assign and check: no notebooks, no kernel, a few seconds."""
    from .pipeline import load

    pipeline = load(*args.params, overrides=args.overrides)
    if pipeline.params.data.opportunities is None or pipeline.params.stages is None:
        raise ParamsError("stages needs data.opportunities and a stages: model (rules or score) in the params")
    print(pipeline.stage_design().text())
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    """The run history as a table: reads no input, only the history folder."""
    import pandas as pd

    from .pipeline import load

    pipeline = load(*args.params, overrides=args.overrides)
    params = pipeline.params
    folder = params.monitoring.history or (args.out or Path.cwd() / "reports").resolve() / params.run_name / "history"
    table = pipeline.history_store(folder).table()
    if table.empty:
        print(f"funnel-lab: no run of {params.run_name} recorded yet in {folder}", file=sys.stderr)
        return EXIT_OK
    if args.csv:
        print(table.to_csv(index=False), end="")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", None):
            print(f"{params.run_name}: {len(table)} run(s) in {folder}")
            print(table.to_string(index=False, na_rep=""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
