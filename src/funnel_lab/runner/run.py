"""``funnel-lab run``: plan, then execute the notebooks (in parallel), and write the run's index page and manifest."""

from __future__ import annotations

import json
import multiprocessing
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TextIO

import yaml

from .. import __version__, files
from ..config import Params, masked_dict, resolved_dict
from ..data.ingest import file_sha256
from ..history.changes import SinceLastRun
from ..pipeline import RUN_CACHE
from .execute import Job, NotebookResult, execute_notebook
from .plan import plan_run
from .render import render_index
from .watch import remember_run

PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "scikit-learn", "seaborn", "matplotlib", "papermill",
            "nbconvert", "duckdb", "pyarrow", "pandera", "pydantic")


def run_reports(
    params_files: list,
    *,
    overrides: list[str] | None = None,
    only: list[str] | None = None,
    out: str | Path | None = None,
    jobs: int = 1,
    notebooks_dir: Path | None = None,
    progress: TextIO | None = None,
) -> tuple[int, Path]:
    """Run the reports of a params file into ``<out>/<run_name>/``.

    Parameters
    ----------
    params_files : list of path
        Params YAML files, deep-merged left to right.
    overrides : list of str, optional
        ``dotted.key=value`` overrides.
    only : list of str, optional
        Notebook names to run; the others are listed as not selected.
    out : path, optional
        Root folder of the reports (``reports/`` in the working directory by default).
    jobs : int
        Notebooks executed in parallel.
    notebooks_dir : path, optional
        Where the notebooks are (the checkout's ``notebooks/`` by default).
    progress : text stream, optional
        Where progress lines go (stderr by default).

    Returns
    -------
    exit_code : int
        0 when every selected notebook succeeded, 1 when any failed.
    run_dir : Path

    Raises
    ------
    ParamsError
        Bad params or unreadable input (exit code 2 at the command line); nothing is run then.
    """
    progress = progress or sys.stderr
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    plan = plan_run(params_files, overrides=overrides, only=only, notebooks_dir=notebooks_dir, register_kernel=True)
    params = plan.params
    if plan.kernel is not None and (plan.kernel.registered_now or plan.kernel.other_interpreter):
        print(f"funnel-lab: {plan.kernel.describe()}", file=progress, flush=True)
    out_root = Path(out or Path.cwd() / "reports").resolve()
    run_dir = out_root / params.run_name
    # results of an earlier run must not pass for this run's: clear them (the inputs live elsewhere)
    for stale in ["data", ".headlines", RUN_CACHE]:
        shutil.rmtree(run_dir / stale, ignore_errors=True)
    for stale in run_dir.glob("[0-9][0-9]_*.*"):
        stale.unlink()
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    params_file = files.write_text(run_dir / "params.resolved.yaml",
                                   yaml.safe_dump(resolved_dict(params), allow_unicode=True, sort_keys=False))
    manifest = {
        "run_name": params.run_name, "title": params.title, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None, "status": "running", "params_files": [str(Path(f).resolve()) for f in params_files],
        "overrides": list(overrides or []), "params": masked_dict(params), "inputs": plan.inputs,
        "versions": _versions(), "funnel_lab_commit": _git_commit(), "fonts": _chart_fonts(),
        "kernel": asdict(plan.kernel) if plan.kernel else None, "notebooks_dir": str(Path(plan.notebooks_dir)),
        "notebooks": [],
    }
    results = {r.name: r for r in plan.skipped}
    _write_run_pages(run_dir, manifest, results, params, None, {})

    todo = [Job(n, plan.notebooks[n], run_dir, params_file, out_root, params.language) for n in plan.run]
    print(f"funnel-lab: {params.run_name}: {len(todo)} report(s), {max(1, jobs)} at a time -> {run_dir}",
          file=progress, flush=True)
    since, store, labels = None, None, plan.pipeline.stage_labels()
    try:
        if "opportunities" in params.tables():
            # this run against the last one in the history, before the notebooks: 60 shows it, the index too
            store = plan.pipeline.history_store(params.monitoring.history or run_dir / "history")
            since = plan.pipeline.since_last_run(store.folder)
            files.write_csv(run_dir / "data" / "changes.csv", since.changes)
            _write_run_pages(run_dir, manifest, results, params, since, labels)
        if plan.run:
            # the notebooks read the cleaned tables and the behaviour features from here instead of computing them
            # again (steps that cannot be kept, e.g. on a full disk, they compute themselves)
            plan.pipeline.save_cache(run_dir / RUN_CACHE)
        # read, clean, check and cache, before any notebook (bench/suite.py reports it)
        manifest["plan_seconds"] = round(time.perf_counter() - clock, 2)
        plan.pipeline = None  # the notebooks have the tables now; the runner need not hold them
        for i, res in enumerate(_execute_all(todo, jobs), start=1):
            results[res.name] = res
            line = f"[{i}/{len(todo)}] {res.name:<24} {res.status:<6} {res.seconds:6.1f} s"
            print(line + (f"  {res.error.splitlines()[0][:160]}" if res.error else ""), file=progress, flush=True)
            if res.missing_glyphs:
                print(f"funnel-lab: {res.name}: {len(res.missing_glyphs)} character(s) its charts could not draw "
                      f"({res.missing_glyphs[:20]}): no installed font has them; see the notice at the top of "
                      f"{res.name}.html", file=progress, flush=True)
    finally:
        shutil.rmtree(run_dir / RUN_CACHE, ignore_errors=True)
    # The raw exports are never written to; the manifest shows it with a second checksum after the run.
    for entry in manifest["inputs"]:
        if Path(entry["path"]).is_file():
            entry["sha256_after"] = file_sha256(entry["path"])
    failed = any(r.status == "failed" for r in results.values())
    manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest["status"] = "failed" if failed else "ok"
    alerts_ok = True
    if since is not None:
        alerts_ok = remember_run(run_dir, manifest, since, params, store, _headlines(run_dir), labels, progress)
    _write_run_pages(run_dir, manifest, results, params, since, labels)
    return (1 if failed or not alerts_ok else 0), run_dir


def _execute_all(todo: list[Job], jobs: int):
    if jobs <= 1 or len(todo) <= 1:
        for job in todo:
            yield execute_notebook(job)
        return
    # spawn, not fork: the parent may hold threads (zmq, matplotlib) that a forked child must not inherit.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(execute_notebook, job): job for job in todo}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                yield fut.result()
            except Exception as e:  # the worker itself died
                yield NotebookResult(job.name, "failed", 0.0, f"{type(e).__name__}: {e}")



def _write_run_pages(run_dir: Path, manifest: dict, results: dict[str, NotebookResult], params: Params,
                     since: SinceLastRun | None, labels: dict[str, str]) -> None:
    ordered = [results[n] for n in sorted(results)]
    manifest["notebooks"] = [{k: v for k, v in asdict(r).items() if v is not None} for r in ordered]
    files.write_json(run_dir / "manifest.json", manifest)
    files.write_text(run_dir / "index.html", render_index(
        manifest, ordered, _headlines(run_dir), lang=params.language, since=since, labels=labels,
        data_files=sorted(p.name for p in (run_dir / "data").glob("*.*"))))


def _headlines(run_dir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in sorted((run_dir / ".headlines").glob("*.json")):
        out.update((k, v) for k, v in json.loads(p.read_text(encoding="utf-8")))
    return out



def _chart_fonts() -> dict:
    """The fonts the notebooks' charts draw with: the kernels run in this environment, so they find the same."""
    from ..fonts import prepare_fonts

    return prepare_fonts().to_dict()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "funnel_lab": __version__}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None  # installed from a wheel: no checkout to ask
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None
