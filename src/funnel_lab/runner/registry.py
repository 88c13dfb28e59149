"""The report notebooks: what each needs to run, and the check that stops a run before its notebooks start.

One entry per notebook (DESIGN.md names them). A report runs when one of the tables in ``needs`` is configured and
its ``check`` passes on the run's pipeline; the check returns the catalogue key of the reason to skip it (shown in
the index), or None to run it, and raises :class:`~funnel_lab.ParamsError` for params that cannot work (exit 2
before anything runs). The checks ask the analysis modules, never the report pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import TABLES


def _always(p) -> str | None:
    return None


def _stage_order(p) -> str | None:
    return None if p.params.stages is not None else "index.skip.no_stage_order"


def _stage_design(p) -> str | None:
    if p.params.stages is None:
        return "index.skip.no_stage_order"
    if not (p.params.stages.rules or p.params.stages.score):
        return "index.skip.no_stage_model"
    p.stage_model  # parses and whitelists the rules (and the compare_with model) against the columns  # noqa: B018
    return None


def _regression(p) -> str | None:
    from ..analysis.regression import check_params

    if p.params.regression.formula is None:
        return "index.skip.no_formula"
    check_params(p.params, p.opportunities.columns)
    return None


def _ab_test(p) -> str | None:
    from ..analysis.abtest import check_params

    check_params(p.params.ab_test, p.cleaned_table("experiment").data)
    return None


def _targeting(p) -> str | None:
    from ..analysis.targeting import enough_outcomes

    return None if enough_outcomes(p.opportunities, p.params.targeting.outcome) else "index.skip.too_few_closed"


def _forecast(p) -> str | None:
    if p.params.stages is None:
        return "index.skip.no_stage_order"
    return None if "amount" in p.opportunities.columns else "index.skip.no_amount"


@dataclass(frozen=True)
class ReportSpec:
    """A report notebook: the tables it needs (any one of them) and its pre-run check."""

    name: str
    needs: tuple[str, ...]
    check: Callable = _always


#: Every report, in run order.
REGISTRY: dict[str, ReportSpec] = {s.name: s for s in (
    ReportSpec("00_data_quality", needs=TABLES),
    ReportSpec("10_stage_design", needs=("opportunities",), check=_stage_design),
    ReportSpec("20_funnel", needs=("opportunities",), check=_stage_order),
    ReportSpec("30_regression", needs=("opportunities",), check=_regression),
    ReportSpec("40_ab_test", needs=("experiment",), check=_ab_test),
    ReportSpec("50_targeting", needs=("opportunities",), check=_targeting),
    ReportSpec("60_forecast_monitoring", needs=("opportunities",), check=_forecast),
)}
#: The notebook names, in run order (``--only`` takes these).
NOTEBOOKS = tuple(REGISTRY)
