"""Who a sales action helps: an uplift model on an A/B test whose units are the opportunities.

:func:`experiment_deals` joins an experiment's clean units (one row per deal, from
:func:`~funnel_lab.analysis.abtest.clean_assignment`) to the deals' columns; :func:`fit_uplift` fits one boosted
model per arm (the two-model method) on part of the units and checks, on the units held out, that those it ranks
first do respond more to the action (:func:`qini_curve`, the uplift in the top tenth with its interval); the model
refitted on every unit then gives each open deal the change the action is expected to make to its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from ..errors import ParamsError
from .boosting import _booster, _types
from .model_inputs import outcome01
from .stats import newcombe_interval

__all__ = ["MIN_PER_ARM", "UpliftModel", "enough_units", "experiment_deals", "fit_uplift", "qini_curve"]

#: Fewer units than this in an arm (or fewer conversions than a tenth of it) and an uplift model is noise.
MIN_PER_ARM = 200
#: Share of the units held out to check the model.
HOLDOUT_SHARE = 0.3
#: Depth of each arm's boosted trees: pairs of columns, enough for "this segment without a demo".
DEPTH = 2


def experiment_deals(units: pd.DataFrame, opportunities: pd.DataFrame, features: Sequence[str], *,
                     control: str, treatment: str, id_col: str = "opportunity_id") -> tuple[pd.DataFrame, dict]:
    """The experiment's units that are deals, with the deals' columns: what the uplift model learns from.

    Parameters
    ----------
    units : DataFrame
        One row per unit (``unit_id``, ``variant``, ``converted``): the kept units of ``clean_assignment``.
    opportunities : DataFrame
        The cleaned opportunities (``id_col`` and ``features``).
    features : sequence of str
        The columns the models read (targeting's inputs).
    control, treatment : str
        The two variants compared; units of other variants are left out (and counted).

    Returns
    -------
    (DataFrame, dict)
        ``opportunity_id``, ``treated`` (0/1), ``converted`` (0/1) and ``features`` per matched unit; and counts:
        ``units``, ``matched`` (units with an outcome whose id is a deal), ``other_variants``, ``no_outcome``.
    """
    arms = units[units["variant"].isin([control, treatment])]
    known = arms[arms["converted"].notna()] if "converted" in arms else arms.iloc[:0]
    deals = opportunities.drop_duplicates(id_col).set_index(id_col)
    matched = known[known["unit_id"].isin(deals.index)]
    frame = deals.loc[matched["unit_id"].to_numpy(), list(features)].reset_index(names="opportunity_id")
    frame.insert(1, "treated", (matched["variant"] == treatment).to_numpy(dtype=int))
    frame.insert(2, "converted", outcome01(matched["converted"]))
    return frame, {"units": int(len(units)), "matched": int(len(matched)),
                   "other_variants": int(len(units) - len(arms)), "no_outcome": int(len(arms) - len(known))}


def enough_units(frame: pd.DataFrame) -> bool:
    """:data:`MIN_PER_ARM` units and a tenth as many conversions in each arm."""
    for arm in (0, 1):
        y = frame.loc[frame["treated"] == arm, "converted"]
        if len(y) < MIN_PER_ARM or y.sum() < MIN_PER_ARM / 10 or y.sum() == len(y):
            return False
    return True


def qini_curve(uplift: np.ndarray, treated: np.ndarray, y: np.ndarray, points: int = 101) -> pd.DataFrame:
    """The Qini curve of units ranked by predicted ``uplift``, best first.

    At each share of the units targeted, ``incremental`` = the treated conversions among them minus the control
    conversions scaled to as many treated units (Y_T - Y_C * N_T / N_C), as a share of all units; ``random`` is the
    straight line to the same end, what targeting at random gives.

    Returns
    -------
    DataFrame
        ``share_targeted`` (0, 0.01 .. 1), ``incremental``, ``random``.
    """
    order = np.argsort(-np.asarray(uplift, float), kind="stable")
    t, y = np.asarray(treated)[order], np.asarray(y)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(n_c > 0, y_t - y_c * n_t / np.maximum(n_c, 1), y_t) / len(t)
    q = np.r_[0.0, q]
    share = np.round(np.linspace(0, 1, points), 2)
    curve = np.interp(share * len(t), np.arange(len(t) + 1), q)
    return pd.DataFrame({"share_targeted": share, "incremental": curve, "random": share * q[-1]})


def _arms(treated: np.ndarray, y: np.ndarray) -> dict:
    """The two arms' conversion rates among these units, and their difference with Newcombe's 95% interval."""
    on, off = treated == 1, treated == 0
    x1, n1, x0, n0 = int(y[on].sum()), int(on.sum()), int(y[off].sum()), int(off.sum())
    low, high = newcombe_interval(x1, n1, x0, n0)
    return {"n": int(len(y)), "n_treated": n1, "n_control": n0,
            "rate_treated": x1 / n1 if n1 else float("nan"), "rate_control": x0 / n0 if n0 else float("nan"),
            "uplift": (x1 / n1 - x0 / n0) if n1 and n0 else float("nan"), "low": float(low), "high": float(high)}


def _top_tenth(uplift: np.ndarray, treated: np.ndarray, y: np.ndarray) -> dict:
    """:func:`_arms` of the tenth of units with the highest predicted uplift, and the uplift where it begins."""
    top = np.argsort(-uplift, kind="stable")[:max(1, round(0.1 * len(uplift)))]
    return {**_arms(treated[top], y[top]), "threshold": float(uplift[top[-1]])}


@dataclass(repr=False)
class UpliftModel:
    """Two boosted models, one per arm, whose difference is each deal's expected uplift.

    Attributes
    ----------
    treated_model, control_model : Pipeline
        ``types -> HistGradientBoostingClassifier`` fitted on every unit of its arm.
    input_columns : list of str
    holdout : dict
        The check on the held-out units: ``n`` (units), ``overall`` (the action's effect on all of them: each
        arm's units and rate, ``uplift`` with its 95% ``low`` / ``high``), ``top_tenth`` (the same for the tenth
        ranked first, with the ``threshold`` uplift where it begins), ``qini`` (:func:`qini_curve`), ``qini_area``
        (the area between the curve and random: positive when the ranking finds the responders), ``predicted``
        (each held-out unit's predicted uplift, indexed like the frame's rows).
    validated : bool
        The held-out top tenth's uplift interval lies above zero and above the overall effect's estimate: the
        model's ranking can be trusted to find who responds.
    threshold : float
        The predicted uplift at which the held-out top tenth began: open deals at or above it are marked.
    """

    treated_model: Pipeline
    control_model: Pipeline
    input_columns: list[str]
    holdout: dict
    validated: bool
    threshold: float

    def predict_uplift(self, X: pd.DataFrame) -> pd.Series:
        """P(converted | action) - P(converted | no action) per row, indexed like ``X``."""
        X = X[self.input_columns]
        if not len(X):
            return pd.Series([], index=X.index, dtype="float64", name="uplift")
        return pd.Series(self.treated_model.predict_proba(X)[:, 1] - self.control_model.predict_proba(X)[:, 1],
                         index=X.index, name="uplift", dtype="float64")


def _arm_models(X: pd.DataFrame, treated: np.ndarray, y: np.ndarray, seed: int) -> tuple[Pipeline, Pipeline]:
    fitted = []
    for arm in (1, 0):
        rows = treated == arm
        fitted.append(Pipeline([("types", _types(X)), ("model", _booster(DEPTH, seed))]).fit(X[rows], y[rows]))
    return fitted[0], fitted[1]


def fit_uplift(frame: pd.DataFrame, features: Sequence[str], *, seed: int = 0,
               holdout_share: float = HOLDOUT_SHARE) -> UpliftModel:
    """Fit the two-model uplift on part of the units, check it on the rest, refit it on all of them.

    Parameters
    ----------
    frame : DataFrame
        :func:`experiment_deals`: ``treated``, ``converted`` and the ``features``.
    features : sequence of str
    seed : int, default 0
        Seed of the split (stratified by arm and outcome) and of the trees.
    holdout_share : float, default 0.3

    Returns
    -------
    UpliftModel

    Raises
    ------
    ParamsError
        Fewer than :data:`MIN_PER_ARM` units, or too few conversions, in an arm.
    """
    if not enough_units(frame):
        counts = frame.groupby("treated")["converted"].agg(["size", "sum"]).to_dict("index")
        raise ParamsError(f"uplift: each arm needs {MIN_PER_ARM} deals and {MIN_PER_ARM // 10} conversions; got "
                          f"{counts}")
    X = frame[list(features)].reset_index(drop=True)
    t, y = frame["treated"].to_numpy(dtype=int), frame["converted"].to_numpy(dtype=int)
    fit, check = train_test_split(np.arange(len(X)), test_size=holdout_share, stratify=2 * t + y, random_state=seed)
    fit, check = np.sort(fit), np.sort(check)
    models = _arm_models(X.iloc[fit].reset_index(drop=True), t[fit], y[fit], seed)
    predicted = models[0].predict_proba(X.iloc[check])[:, 1] - models[1].predict_proba(X.iloc[check])[:, 1]
    tc, yc = t[check], y[check]
    overall, top = _arms(tc, yc), _top_tenth(predicted, tc, yc)
    qini = qini_curve(predicted, tc, yc)
    area = float(np.trapezoid(qini["incremental"] - qini["random"], qini["share_targeted"]))
    holdout = {"n": int(len(check)), "overall": overall, "top_tenth": top, "qini": qini, "qini_area": area,
               "predicted": pd.Series(predicted, index=frame.index[check], name="uplift")}
    final = _arm_models(X, t, y, seed)
    return UpliftModel(treated_model=final[0], control_model=final[1], input_columns=list(features),
                       holdout=holdout, validated=bool(top["low"] > 0 and top["uplift"] > overall["uplift"]),
                       threshold=top["threshold"])
