"""The runner: papermill execution, offline HTML, the run's index page and manifest."""

from __future__ import annotations

import copy
import html
import json
import multiprocessing
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path
from typing import Callable, TextIO

import pandas as pd
import yaml

from . import __version__, files
from .config import (KERNEL_NAME, NOTEBOOKS, TABLES, Params, ParamsError, did_you_mean, load_params, masked_dict,
                     resolved_dict)
from .i18n import catalogue, format_number, format_percent, t
from .activities import (RUN_CACHE, ActivityLog, activity_log_for, activity_log_key, save_activity_log, saved_log_dir,
                         with_features)
from .funnel import data_as_of
from .clean import clean_tables
from .ingest import file_sha256, load_tables
from .schemas import validate_tables

TEMPLATES = Path(str(resources.files("funnel_lab") / "templates"))
#: Cells with these tags are for analysts in JupyterLab and never reach the stakeholder HTML.
HIDDEN_TAGS = {"analyst-note", "remove-cell", "parameters", "injected-parameters"}
PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "scikit-learn", "seaborn", "matplotlib", "papermill",
            "nbconvert", "duckdb", "pyarrow", "pandera", "pydantic")


@dataclass(frozen=True)
class NotebookSpec:
    """A report notebook and the tables it needs (it runs when any of them is configured)."""

    name: str
    needs: tuple[str, ...]
    needs_stages: str | None = None  # "order": stages.order; "model": stages.rules or stages.score too
    needs_columns: tuple[str, ...] = ()  # canonical columns of the opportunities


#: What each report needs; a report whose tables are absent is skipped with a note in the index.
REGISTRY = {
    "00_data_quality": NotebookSpec("00_data_quality", needs=TABLES),
    "10_stage_design": NotebookSpec("10_stage_design", needs=("opportunities",), needs_stages="model"),
    "20_funnel": NotebookSpec("20_funnel", needs=("opportunities",), needs_stages="order"),
    "30_regression": NotebookSpec("30_regression", needs=("opportunities",)),
    "40_ab_test": NotebookSpec("40_ab_test", needs=("experiment",)),
    "50_targeting": NotebookSpec("50_targeting", needs=("opportunities",)),
    "60_forecast_monitoring": NotebookSpec("60_forecast_monitoring", needs=("opportunities",), needs_stages="order",
                                           needs_columns=("amount",)),
}


@dataclass
class NotebookResult:
    name: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    error: str | None = None
    reason: str | None = None  # why skipped: a catalogue key


@dataclass
class Job:
    name: str
    notebook: Path
    run_dir: Path
    params_file: Path
    out_root: Path
    lang: str
    kernel: str = KERNEL_NAME


@dataclass
class Plan:
    """What a run will do: the params, its inputs, and the notebooks to run or skip."""

    params: Params
    inputs: list[dict] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    skipped: list[NotebookResult] = field(default_factory=list)
    notebooks: dict[str, Path] = field(default_factory=dict)
    validation: pd.DataFrame | None = None
    removed: list[dict] = field(default_factory=list)  # audit rows of the cleaning steps that removed rows
    activity_log: ActivityLog | None = None
    activity_key: str = ""  # activities.activity_log_key: what the log was computed from


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the checkout this package runs from, else of the working directory."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def available_notebooks(notebooks_dir: Path) -> dict[str, Path]:
    """Notebooks in the folder named ``NN_name.ipynb``, in run order."""
    found = {p.stem: p for p in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))}
    return dict(sorted(found.items()))


def plan_run(params_files: list, *, overrides=None, only=None, notebooks_dir: Path | None = None) -> Plan:
    """Validate params and inputs and decide which notebooks run: everything ``funnel-lab check`` does.

    Raises
    ------
    ParamsError
        Bad params, unknown ``--only`` name, unreadable input, or the kernel is not installed.
    """
    params = load_params(params_files, overrides)
    notebooks = available_notebooks(notebooks_dir or default_notebooks_dir())
    known = sorted(set(NOTEBOOKS) | set(notebooks))
    for name in only or []:
        if name not in known:
            raise ParamsError(f"--only {name}: no such report{did_you_mean(name, known)}")
        if name not in notebooks:
            raise ParamsError(f"--only {name}: this report is not part of this version yet")
    tables = load_tables(params)
    cleaned = clean_tables(tables, params)  # type and status errors stop the run here (exit 2), not in a notebook
    as_of = data_as_of(cleaned["opportunities"].data, cleaned["stage_history"].data if "stage_history" in cleaned
                       else None, params.features.as_of) if "opportunities" in cleaned else None
    log = activity_log_for(params, cleaned, as_of)  # so do an unreadable activity log and a clashing feature name
    audits = [c.audit for c in cleaned.values()] + ([log.audit] if log else [])
    plan = Plan(params=params, notebooks=notebooks, validation=validate_tables(cleaned),
                removed=[r for a in audits for r in a.to_dict("records") if r["rows_removed"] and r["step"] != "overall"])
    if log is not None:
        plan.activity_log, plan.activity_key = log, activity_log_key(params, tables, log.sha256, as_of)
    opportunities = with_features(cleaned["opportunities"].data, log) if "opportunities" in cleaned else None
    plan.inputs = [
        {"table": name, "path": tbl.source, "sha256": tbl.sha256,
         "rows": len(tbl.raw) + (len(tbl.rejected) if tbl.rejected is not None else 0),
         "rows_clean": len(cleaned[name].data), "ids_generated": tbl.ids_generated}
        for name, tbl in tables.items()
    ] + [
        {"table": f"{name} lookup", "path": j["path"], "sha256": j["sha256"], "rows": j["lookup_rows"]}
        for name, tbl in tables.items() for j in tbl.joins or []
    ] + ([{"table": "activities", "path": log.source, "sha256": log.sha256, "rows": log.rows,
           "rows_clean": int(log.audit.iloc[-1]["rows_out"]), "ids_generated": False}] if log else [])
    for name in sorted(set(NOTEBOOKS) | set(notebooks)):
        spec = REGISTRY.get(name, NotebookSpec(name, needs=()))
        if name not in notebooks:
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.not_available"))
        elif only and name not in only:
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.not_selected"))
        elif spec.needs and not any(n in tables for n in spec.needs):
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.no_input"))
        elif name == "50_targeting" and not _enough_outcomes(opportunities, params.targeting.outcome):
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.too_few_closed"))
        elif name == "30_regression" and params.regression.formula is None:
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.no_formula"))
        elif spec.needs_stages and params.stages is None:
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.no_stage_order"))
        elif spec.needs_stages == "model" and not (params.stages.rules or params.stages.score):
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.no_stage_model"))
        elif opportunities is not None and not set(spec.needs_columns) <= set(opportunities.columns):
            plan.skipped.append(NotebookResult(name, "skipped", reason="index.skip.no_amount"))
        else:
            plan.run.append(name)
    if "30_regression" in plan.run:
        from .regression_report import check_params

        check_params(params, opportunities.columns)  # a bad formula stops the run here (exit 2)
    if "40_ab_test" in plan.run:
        from .ab_report import choose_control

        units = cleaned["experiment"].data
        choose_control(units["variant"].dropna(), params.ab_test.control)  # a misspelt control stops the run here
        if params.ab_test.outcome not in units:
            raise ParamsError(f"ab_test.outcome: the experiment table has no {params.ab_test.outcome!r} column"
                              f"{did_you_mean(params.ab_test.outcome, list(units.columns))}")
    if "10_stage_design" in plan.run and "opportunities" in cleaned:
        from .stages import load_models

        load_models(params.stages, opportunities.columns)
    if plan.run:
        _check_kernel()
    return plan


def _enough_outcomes(opportunities: pd.DataFrame | None, outcome: str) -> bool:
    """A tree needs closed deals of both outcomes to learn from: the rows and thresholds ``run_targeting`` uses for
    ``targeting.outcome``.

    Raises
    ------
    ParamsError
        ``targeting.outcome`` names no column, or one that is not 0/1.
    """
    from .regression import analysis_frame
    from .targeting import MIN_CLOSED, MIN_PER_CLASS

    if opportunities is None:
        return False
    try:
        # only the columns that define the outcome: analysis_frame would copy every column of every closed deal
        y = analysis_frame(opportunities[[c for c in dict.fromkeys(("status", "won", outcome))
                                          if c in opportunities.columns]], outcome).data[outcome]
    except ValueError as e:
        raise ParamsError(f"targeting.{e}") from None
    if not y.isin([0, 1]).all():
        odd = sorted({str(v) for v in y[~y.isin([0, 1])]})[:5]
        raise ParamsError(f"targeting.outcome: the column '{outcome}' must hold 0/1 or yes/no; found {', '.join(odd)}")
    wins = int((y == 1).sum())
    return len(y) >= MIN_CLOSED and min(wins, len(y) - wins) >= MIN_PER_CLASS


def _check_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise ParamsError(
            f"Jupyter kernel {KERNEL_NAME!r} is not installed; run `make report` once, or "
            f"`{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME}`"
        ) from None


# --------------------------------------------------------------------------- one notebook


def execute_notebook(job: Job) -> NotebookResult:
    """Run one notebook with papermill, then write its executed ``.ipynb`` and offline ``.html`` atomically.

    A failing notebook still gets both files, with the error at the top of the HTML.
    """
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    tmp = job.run_dir / f".{job.name}.executing.ipynb"
    error = None
    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                str(job.notebook), str(tmp),
                parameters={"params_file": str(job.params_file), "out_dir": str(job.out_root)},
                kernel_name=job.kernel, cwd=str(job.notebook.parent),
                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # the kernel's TCP notice is noise in cron mail
            )
        except pm.PapermillExecutionError as e:
            error = f"{e.ename}: {e.evalue}"
        except Exception as e:  # kernel died, timeout, unreadable notebook: still report it
            error = f"{type(e).__name__}: {e}"
            # kernels starting at the same moment can pick the same free port and one dies before running a cell;
            # nothing has run yet, so starting it once more is safe
            if attempt == 1 and "Kernel died before replying" in str(e):
                error = None
                continue
        break
    try:
        nb = nbformat.read(tmp if tmp.exists() else job.notebook, as_version=4)
    finally:
        tmp.unlink(missing_ok=True)
    if error:
        nb = add_error_banner(nb, error, lang=job.lang)
    files.write_text(job.run_dir / f"{job.name}.ipynb", nbformat.writes(nb))
    files.write_text(job.run_dir / f"{job.name}.html", render_html(nb, lang=job.lang, name=job.name,
                                                                           run_name=job.run_dir.name))
    status = "failed" if error else "ok"
    return NotebookResult(job.name, status, round(time.perf_counter() - start, 2), error)


def add_error_banner(nb, error: str, *, lang: str):
    """Replace papermill's error cell with a plain-language banner that links to the failing step."""
    import nbformat

    nb = copy.deepcopy(nb)
    # papermill tags two cells: its banner at the top (replaced here) and the anchor above the failing step (kept)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
                or 'id="papermill-error-cell"' in c.get("source", "")]
    banner = (
        f'<div class="fl-banner fl-banner-error" id="fl-error"><strong>{html.escape(t("status.failed", lang))}.</strong> '
        f"{html.escape(t('banner.failed', lang, error=error))} "
        f'<a href="#papermill-error-cell">{html.escape(t("banner.failed_link", lang))}</a></div>'
    )
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(banner, metadata={"tags": ["fl-error-banner"]}))
    return nb


def stakeholder_view(nb):
    """The notebook as a stakeholder sees it: no analyst notes, no empty code cells, no warnings on stderr."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def render_html(nb, *, lang: str, name: str, run_name: str = "") -> str:
    """Offline HTML with no code: the ``funnel_lab`` template (no CDN scripts), images embedded."""
    import nbformat
    from nbconvert import HTMLExporter

    view = stakeholder_view(nb)
    footer = t("footer.generated", lang, version=__version__, run=run_name or name,
               when=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    view.cells.append(nbformat.v4.new_markdown_cell(f'<p class="fl-footer">{html.escape(footer)}</p>'))
    view.metadata["title"] = t(f"report.{name}", lang) if name in REGISTRY else name
    exporter = HTMLExporter(
        template_name="funnel_lab", extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True,
        language_code=lang,
    )
    body, _ = exporter.from_notebook_node(view)
    return body


# --------------------------------------------------------------------------- the run


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
    started = datetime.now(timezone.utc)
    plan = plan_run(params_files, overrides=overrides, only=only, notebooks_dir=notebooks_dir)
    params = plan.params
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
        "versions": _versions(), "funnel_lab_commit": _git_commit(), "notebooks": [],
    }
    results = {r.name: r for r in plan.skipped}
    _write_run_pages(run_dir, manifest, results, params)

    todo = [Job(n, plan.notebooks[n], run_dir, params_file, out_root, params.language) for n in plan.run]
    print(f"funnel-lab: {params.run_name}: {len(todo)} report(s), {max(1, jobs)} at a time -> {run_dir}",
          file=progress, flush=True)
    try:
        if plan.activity_log is not None and plan.run:
            # the notebooks take the activity features from here instead of aggregating the events again (a log
            # that cannot be kept, e.g. on a full disk, they compute themselves)
            try:
                save_activity_log(plan.activity_log, saved_log_dir(run_dir), plan.activity_key)
            except OSError:
                shutil.rmtree(run_dir / RUN_CACHE, ignore_errors=True)
            plan.activity_log = None  # the notebooks have it now; the runner need not hold it
        for i, res in enumerate(_execute_all(todo, jobs), start=1):
            results[res.name] = res
            line = f"[{i}/{len(todo)}] {res.name:<24} {res.status:<6} {res.seconds:6.1f} s"
            print(line + (f"  {res.error.splitlines()[0][:160]}" if res.error else ""), file=progress, flush=True)
    finally:
        shutil.rmtree(run_dir / RUN_CACHE, ignore_errors=True)
    # The raw exports are never written to; the manifest shows it with a second checksum after the run.
    for entry in manifest["inputs"]:
        if Path(entry["path"]).is_file():
            entry["sha256_after"] = file_sha256(entry["path"])
    failed = any(r.status == "failed" for r in results.values())
    manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest["status"] = "failed" if failed else "ok"
    _write_run_pages(run_dir, manifest, results, params)
    return (1 if failed else 0), run_dir


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


def _write_run_pages(run_dir: Path, manifest: dict, results: dict[str, NotebookResult], params: Params) -> None:
    ordered = [results[n] for n in sorted(results)]
    manifest["notebooks"] = [{k: v for k, v in asdict(r).items() if v is not None} for r in ordered]
    files.write_json(run_dir / "manifest.json", manifest)
    files.write_text(run_dir / "index.html", render_index(manifest, ordered, _headlines(run_dir), lang=params.language,
                                                          data_files=sorted(p.name for p in (run_dir / "data").glob("*.*"))))


def _headlines(run_dir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in sorted((run_dir / ".headlines").glob("*.json")):
        out.update((k, v) for k, v in json.loads(p.read_text(encoding="utf-8")))
    return out


def skip_note(result: NotebookResult, lang: str) -> str:
    """Why a report was skipped, in words (the tables it would need are named)."""
    needs = REGISTRY[result.name].needs if result.name in REGISTRY else ()
    return t(result.reason, lang, tables=" / ".join(t(f"table.{n}", lang) for n in needs))


def render_index(manifest: dict, results: list[NotebookResult], headlines: dict, *, lang: str,
                 data_files: list[str]) -> str:
    """The run at a glance: status, headline numbers, one link per report with its status, inputs, data files."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    started = datetime.fromisoformat(manifest["started_at"])
    finished = datetime.fromisoformat(manifest["finished_at"]) if manifest["finished_at"] else None
    reports = []
    for r in results:
        reports.append({
            "name": r.name,
            "title": t(f"report.{r.name}", lang) if r.name in REGISTRY else r.name,
            "question": t(f"question.{r.name}", lang) if r.name in REGISTRY else "",
            "status": r.status, "status_label": t(f"status.{r.status}", lang),
            "seconds": f"{r.seconds:.1f}" if r.status != "skipped" else "",
            "href": f"{r.name}.html" if r.status in ("ok", "failed") else None,
            "note": skip_note(r, lang) if r.reason else (r.error or ""),
        })
    return env.get_template("run_index.html.j2").render(
        lang=lang, t=lambda k, **kw: t(k, lang, **kw), m=manifest, reports=reports,
        status_label=t({"ok": "status.ok", "failed": "status.partial", "running": "status.running"}[manifest["status"]], lang),
        headlines=[(t(f"headline.{k}", lang), format_percent(v, lang) if k.endswith("rate") else
                     format_number(v, lang, digits=0 if float(v).is_integer() else 2)) for k, v in headlines.items()],
        started=started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        finished=finished.strftime("%Y-%m-%d %H:%M:%S UTC") if finished else "",
        duration=f"{(finished - started).total_seconds():.0f} s" if finished else "",
        data_files=data_files, version=__version__, messages=catalogue(),
    )


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "funnel_lab": __version__}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None  # installed from a wheel: no checkout to ask
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None
