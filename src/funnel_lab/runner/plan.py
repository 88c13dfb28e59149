"""What a run will do, decided before any notebook starts: ``funnel-lab check`` prints it, ``funnel-lab run`` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..bundled import report_notebooks
from ..config import Params
from ..errors import ParamsError, did_you_mean
from ..pipeline import Pipeline, load
from .execute import NotebookResult
from .kernel import Kernel, ensure_kernel, find_kernel
from .registry import NOTEBOOKS, REGISTRY, ReportSpec


@dataclass
class Plan:
    """What a run will do: its pipeline (tables read and cleaned), its inputs, and the notebooks to run or skip."""

    pipeline: Pipeline | None
    params: Params
    inputs: list[dict] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    skipped: list[NotebookResult] = field(default_factory=list)
    notebooks: dict[str, Path] = field(default_factory=dict)
    validation: pd.DataFrame | None = None
    removed: list[dict] = field(default_factory=list)  # audit rows of the cleaning steps that removed rows
    kernel: Kernel | None = None  # the kernel the notebooks run in (None when none runs)
    notebooks_dir: Path | None = None


def default_notebooks_dir() -> Path:
    """The report notebooks of this version of the package (the checkout's ``notebooks/`` in a checkout)."""
    return report_notebooks()


def available_notebooks(notebooks_dir: Path) -> dict[str, Path]:
    """Notebooks in the folder named ``NN_name.ipynb``, in run order."""
    found = {p.stem: p for p in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))}
    return dict(sorted(found.items()))


def plan_run(params_files: list, *, overrides=None, only=None, notebooks_dir: Path | None = None,
             register_kernel: bool = False) -> Plan:
    """Validate params and inputs and decide which notebooks run: everything ``funnel-lab check`` does.

    The run's pipeline reads and cleans every table, builds the behaviour features and runs each report's pre-run
    check (:mod:`funnel_lab.runner.registry`), so that bad input stops the run here, with exit 2, not in a notebook.

    ``register_kernel`` registers the ``funnel-lab`` kernel for this interpreter when it is missing (a run does;
    ``check`` only says it will).

    Raises
    ------
    ParamsError
        Bad params, unknown ``--only`` name, unreadable input, a report's params that cannot run, no notebooks in
        ``notebooks_dir``, or a missing kernel that cannot be registered.
    """
    pipeline = load(*params_files, overrides=overrides)
    folder = Path(notebooks_dir or default_notebooks_dir())
    notebooks = available_notebooks(folder)
    if not notebooks:
        raise ParamsError(f"{'--notebooks ' if notebooks_dir else ''}{folder}: no report notebooks (NN_name.ipynb) "
                          f"in this folder")
    known = sorted(set(NOTEBOOKS) | set(notebooks))
    for name in only or []:
        if name not in known:
            raise ParamsError(f"--only {name}: no such report{did_you_mean(name, known)}")
        if name not in notebooks:
            raise ParamsError(f"--only {name}: this report is not part of this version yet")
    # type and status errors stop the run here (exit 2), not in a notebook; so do an unreadable activity log and a
    # behaviour feature named like a column of the opportunities
    cleaned, log = pipeline.cleaned, pipeline.activity_log
    if "opportunities" in cleaned:
        pipeline.opportunities, pipeline.as_of  # noqa: B018 - computed once here, kept for the notebooks
    logs = [c.audit for c in cleaned.values()] + ([log.audit] if log is not None else [])
    plan = Plan(pipeline, pipeline.params, inputs=pipeline.inputs(), notebooks=notebooks, notebooks_dir=folder,
                validation=pipeline.validation,
                removed=[r for a in logs for r in a.to_dict("records") if r["rows_removed"] and r["step"] != "overall"])
    configured = set(pipeline.params.tables())
    for name in known:
        spec = REGISTRY.get(name, ReportSpec(name, needs=()))
        reason = ("index.skip.not_available" if name not in notebooks else
                  "index.skip.not_selected" if only and name not in only else
                  "index.skip.no_input" if spec.needs and not configured & set(spec.needs) else
                  spec.check(pipeline))
        if reason:
            plan.skipped.append(NotebookResult(name, "skipped", reason=reason))
        else:
            plan.run.append(name)
    if plan.run:
        plan.kernel = ensure_kernel() if register_kernel else find_kernel()
    return plan
