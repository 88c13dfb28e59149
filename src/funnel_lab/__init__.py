"""funnel_lab: from a CRM export to a decision — stage design, funnel, regression, A/B tests and targeting.

In Python (JupyterLab)::

    import funnel_lab as fl
    p = fl.load("params/demo.yaml")            # a Pipeline; nothing is read until asked
    p.opportunities, p.stages, p.stage_metrics
    p.funnel(), p.stage_design(), p.regression(), p.ab_test(), p.targeting(), p.forecast(), p.monitoring()
    q = p.with_params({"stages.rules.intent": "meetings >= 2"})

The modules under it, by step of the data flow: :mod:`funnel_lab.data` (reading, cleaning, validation, activity
log), :mod:`funnel_lab.analysis` (stages and the statistics of each report), :mod:`funnel_lab.reports` (the notebooks'
pages, charts and session), :mod:`funnel_lab.runner` (papermill, HTML, the run). The analysis modules and the charts
are also reachable as ``fl.funnel``-style attributes: ``fl.abtest``, ``fl.targeting``, ``fl.plots``, ...
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .config import Params, load_params  # noqa: E402
from .errors import ParamsError  # noqa: E402
from .pipeline import Pipeline, load  # noqa: E402

#: Modules reachable as attributes of the package, imported when first used (``fl.abtest.binary_comparison``).
_MODULES = {
    "data": ".data", "analysis": ".analysis", "reports": ".reports", "runner": ".runner",
    "ingest": ".data.ingest", "clean": ".data.clean", "schemas": ".data.schemas", "activities": ".data.activities",
    "presets": ".data.presets", "demo": ".data.demo", "quality": ".data.quality",
    "expr": ".analysis.expr", "stats": ".analysis.stats", "stages": ".analysis.stages", "funnel": ".analysis.funnel",
    "monitoring": ".analysis.monitoring", "forecast": ".analysis.forecast", "regression": ".analysis.regression",
    "abtest": ".analysis.abtest", "targeting": ".analysis.targeting", "plots": ".reports.plots",
}


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(_MODULES[name], __name__)
    if name in ("open_run", "RunContext"):  # the notebooks' session (it imports IPython)
        return getattr(importlib.import_module(".reports.session", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES) | {"open_run", "RunContext"})


__all__ = ["Params", "ParamsError", "Pipeline", "RunContext", "__version__", "load", "load_params", "open_run"]
