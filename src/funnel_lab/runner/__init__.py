"""Running the report notebooks: the registry of reports (:mod:`.registry`), the plan (:mod:`.plan`), papermill
execution (:mod:`.execute`), offline HTML and the index page (:mod:`.render`), and the run (:mod:`.run`).

``run_reports`` is what ``funnel-lab run`` does; ``plan_run`` what ``funnel-lab check`` prints.
"""

from __future__ import annotations

import importlib

__all__ = ["plan_run", "run_reports"]


def __getattr__(name: str):
    # imported when first used, so that importing the registry (the CLI's help) loads no pipeline
    if name == "plan_run":
        return importlib.import_module(".plan", __name__).plan_run
    if name == "run_reports":
        return importlib.import_module(".run", __name__).run_reports
    if name in ("execute", "plan", "registry", "render", "run"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
