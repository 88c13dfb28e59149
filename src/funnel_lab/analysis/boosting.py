"""The order of the target list: gradient-boosted trees, tuned lightly, with chances calibrated on held-out folds;
and for each deal, the columns that raise or lower its chance most.

:func:`fit_boosted` gives a :class:`BoostedModel` (scikit-learn's HistGradientBoostingClassifier: text columns as
native categories, gaps as native missing values, early stopping); :func:`score_drivers` measures each column's
part in a deal's chance and :func:`drivers_text` puts the strongest into words. As in :mod:`.targeting`, nothing
here prints or plots, and every random step takes ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from ..errors import ParamsError
from .model_inputs import as_float, as_text, column_kind, outcome01, short_number, split_kinds, stratified_sample

__all__ = ["BoostedModel", "DEPTHS", "DRIVER_WORDS", "drivers_text", "fit_boosted", "refit_boosted", "score_drivers"]

#: The depths compared: depth 1 adds up one column's effect per tree (an additive model, a logit with curves
#: instead of lines), depths 2 and 3 let pairs and triples of columns act together.
DEPTHS = (1, 2, 3)
#: Settings every candidate shares: each fit stops when 20 more trees do not improve the loss on 10% of its rows.
SETTINGS = {"learning_rate": 0.1, "max_iter": 500, "l2_regularization": 1.0, "early_stopping": True,
            "validation_fraction": 0.1, "n_iter_no_change": 20}
#: Folds of the depth search and of the calibration.
TUNING_FOLDS = 3
CALIBRATION_FOLDS = 3
#: Above this many rows the depth is chosen on a stratified sample of this size (as the tree's search).
TUNING_ROWS = 30_000
#: Above this many rows the model and its calibration are fitted on a stratified sample of this size: a few
#: hundred trees of depth 1 to 3 are grown as well from 100,000 deals as from a million, in a tenth of the time.
FIT_ROWS = 100_000
#: Rows scored at a time.
SCORE_ROWS = 100_000
#: Drivers are measured against this many training deals (each column's value swapped in from each of them).
DRIVER_BACKGROUND = 10


def _as_boost_types(X: pd.DataFrame, numeric: Sequence[str] = (), categorical: Sequence[str] = ()) -> pd.DataFrame:
    """Numbers and flags as float64 (gaps NaN), text as pandas categories: what the boosted trees take natively.

    The model learns the levels it saw; a level it did not see is read as missing."""
    num, cat = set(numeric), set(categorical)
    order = [c for c in X.columns if c in num or c in cat]
    return pd.DataFrame({c: as_float(X[c]) if c in num else pd.Categorical(as_text(X[c])) for c in order},
                        index=X.index, columns=order)


def _types(X: pd.DataFrame) -> FunctionTransformer:
    numeric, categorical, _ = split_kinds(X)
    if not numeric and not categorical:
        raise ParamsError("no input columns to fit on")
    return FunctionTransformer(_as_boost_types, kw_args={"numeric": numeric, "categorical": categorical})


def _booster(max_depth: int, seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_depth=max_depth, categorical_features="from_dtype", random_state=seed,
                                          **SETTINGS)


@dataclass(repr=False)
class BoostedModel:
    """Boosted trees whose calibrated chances order the target list.

    Attributes
    ----------
    calibrated : CalibratedClassifierCV
        ``Pipeline(types, model)`` (types: numbers -> float, text -> categories; model: the
        HistGradientBoostingClassifier) fitted on the training rows, with a sigmoid (Platt) calibration fitted on
        the predictions of :data:`CALIBRATION_FOLDS` held-out folds (``ensemble=False``). The sigmoid is
        increasing, so the calibrated chances order the deals exactly as the trees do.
    best_params : dict
        ``max_depth`` chosen by cross-validated ROC AUC; ``n_iter``, the trees the final fit grew.
    cv_auc : dict
        ``mean`` and ``sd`` of the chosen depth's fold AUCs.
    search : DataFrame
        ``max_depth, mean_auc, sd_auc, mean_trees, rank`` per candidate depth.
    input_columns : list of str
    n_train : int
        Training rows given; ``n_fit`` the rows fitted on (a stratified sample above :data:`FIT_ROWS`).
    background : DataFrame
        :data:`DRIVER_BACKGROUND` training rows (input columns), the reference of :func:`score_drivers`.
    """

    calibrated: CalibratedClassifierCV
    best_params: dict
    cv_auc: dict
    search: pd.DataFrame
    input_columns: list[str]
    n_train: int
    n_fit: int
    background: pd.DataFrame

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated (P(lost), P(won)) per row, scored :data:`SCORE_ROWS` rows at a time."""
        X = X[self.input_columns]
        if not len(X):
            return np.empty((0, 2))
        return np.concatenate([self.calibrated.predict_proba(X.iloc[i:i + SCORE_ROWS])
                               for i in range(0, len(X), SCORE_ROWS)])

    def predict_probability(self, X: pd.DataFrame) -> pd.Series:
        """Each row's calibrated chance of winning, indexed like ``X``."""
        return pd.Series(self.predict_proba(X)[:, 1], index=X.index, name="probability", dtype="float64")


def fit_boosted(X: pd.DataFrame, y, *, seed: int = 0, max_depth: int | None = None) -> BoostedModel:
    """Gradient-boosted trees, their depth tuned by stratified cross-validation on ROC AUC, chances calibrated.

    Parameters
    ----------
    X : DataFrame
        The input columns of the training rows, as cleaned (numbers, yes/no flags, text; gaps allowed).
    y : array-like of 0/1
        The outcome, in row order.
    seed : int, default 0
        Seed of the folds, the samples and the trees' validation split.
    max_depth : int, optional
        Fit this depth without a search (``search`` is then empty and ``cv_auc`` NaN).

    Returns
    -------
    BoostedModel

    Notes
    -----
    The search compares :data:`DEPTHS` with :data:`SETTINGS` over :data:`TUNING_FOLDS` stratified folds (on a
    stratified sample of :data:`TUNING_ROWS` rows above that), each fit stopping early. The chosen depth is then
    fitted by ``CalibratedClassifierCV(method="sigmoid", cv=StratifiedKFold(3), ensemble=False)``: the trees
    fitted on every row (a sample of :data:`FIT_ROWS` above that), the sigmoid fitted on out-of-fold scores, so a
    chance of 30% means about 30 wins in 100 such deals. No class weights: they would bend the chances.

    Examples
    --------
    >>> model = fit_boosted(closed[cols], closed["won"], seed=0)  # doctest: +SKIP
    >>> model.predict_probability(open_deals).head()  # doctest: +SKIP
    """
    X = X.reset_index(drop=True)
    y = outcome01(y)
    if len(y) != len(X):
        raise ParamsError(f"fit_boosted: y has {len(y)} values for {len(X)} rows")
    counts = np.bincount(y, minlength=2)
    if counts.min() < 2:
        raise ParamsError(f"fit_boosted: need at least 2 rows of each outcome; got {counts[1]} wins and "
                          f"{counts[0]} losses")
    if max_depth is not None:
        return _calibrated(X, y, int(max_depth), seed, cv_auc={"mean": float("nan"), "sd": float("nan")},
                           search=pd.DataFrame(columns=["max_depth", "mean_auc", "sd_auc", "mean_trees", "rank"]))
    types = _types(X)
    keep = stratified_sample(len(X), y, TUNING_ROWS, seed)
    Xt, yt = types.transform(X.iloc[keep]).reset_index(drop=True), y[keep]
    folds = StratifiedKFold(int(min(TUNING_FOLDS, np.bincount(yt, minlength=2).min())), shuffle=True,
                            random_state=seed)
    scores = np.empty((len(DEPTHS), folds.n_splits))
    trees = np.empty_like(scores)
    for j, (train, test) in enumerate(folds.split(np.zeros(len(yt)), yt)):
        for i, depth in enumerate(DEPTHS):
            model = _booster(depth, seed).fit(Xt.iloc[train], yt[train])
            scores[i, j] = roc_auc_score(yt[test], model.predict_proba(Xt.iloc[test])[:, 1])
            trees[i, j] = model.n_iter_
    mean, sd = scores.mean(axis=1), scores.std(axis=1)
    rank = (-mean).argsort(kind="stable").argsort() + 1
    search = pd.DataFrame({"max_depth": np.array(DEPTHS, dtype="int64"), "mean_auc": mean, "sd_auc": sd,
                           "mean_trees": trees.mean(axis=1), "rank": rank.astype("int64")})
    best = int(np.argmax(mean))  # the first of equally good depths: the shallower
    return _calibrated(X, y, DEPTHS[best], seed, cv_auc={"mean": float(mean[best]), "sd": float(sd[best])},
                       search=search)


def refit_boosted(model: BoostedModel, X: pd.DataFrame, y, *, seed: int = 0) -> BoostedModel:
    """The same depth fitted and calibrated on other rows (all closed deals); the search is carried over.

    A model already fitted on :data:`FIT_ROWS` rows is returned as it is: another sample of the same size would be
    no better, and the list is then ordered by exactly the model the hold-out measured."""
    if model.n_fit >= FIT_ROWS:
        return model
    return _calibrated(X[model.input_columns].reset_index(drop=True), outcome01(y), model.best_params["max_depth"],
                       seed, cv_auc=dict(model.cv_auc), search=model.search)


def _calibrated(X: pd.DataFrame, y: np.ndarray, depth: int, seed: int, *, cv_auc: dict,
                search: pd.DataFrame) -> BoostedModel:
    """Trees of ``depth`` on ``X`` (a sample above :data:`FIT_ROWS`), with their sigmoid fitted out of fold."""
    rows = stratified_sample(len(X), y, FIT_ROWS, seed)
    Xf, yf = X.iloc[rows].reset_index(drop=True), y[rows]
    folds = StratifiedKFold(int(min(CALIBRATION_FOLDS, np.bincount(yf, minlength=2).min())), shuffle=True,
                            random_state=seed)
    calibrated = CalibratedClassifierCV(Pipeline([("types", _types(X)), ("model", _booster(depth, seed))]),
                                        method="sigmoid", cv=folds, ensemble=False).fit(Xf, yf)
    trees = calibrated.calibrated_classifiers_[0].estimator[-1].n_iter_
    background = Xf.iloc[stratified_sample(len(Xf), yf, DRIVER_BACKGROUND, seed)].reset_index(drop=True)
    return BoostedModel(calibrated=calibrated, best_params={"max_depth": depth, "n_iter": int(trees)},
                        cv_auc=cv_auc, search=search, input_columns=list(X.columns), n_train=len(X),
                        n_fit=len(Xf), background=background)


# ------------------------------------------------------------------------------------------------------ drivers

def score_drivers(model: BoostedModel, X: pd.DataFrame) -> pd.DataFrame:
    """How much each column moves each row's chance: the chance as it is, minus its average with that column's
    value taken in turn from each background deal (:attr:`BoostedModel.background`), the others kept.

    For a model of depth 1 (a sum of one-column effects) this is exactly each column's Shapley value against the
    background deals; with deeper trees it is the column's effect with the deal's other values held as they are.

    Returns
    -------
    DataFrame
        Indexed like ``X``, one column per input column: the change in the chance of winning (0.12 = the column's
        value adds 12 percentage points to this deal's chance; negative: it lowers it).
    """
    cols = model.input_columns
    X = X[cols]
    bg = model.background
    n_bg = len(bg)
    out = np.empty((len(X), len(cols)))
    # every swap of a chunk of rows is scored in one call: the trees' fixed cost per call, not the rows, dominated
    chunk = max(1, SCORE_ROWS // max(n_bg * len(cols), 1))
    for start in range(0, len(X), chunk):
        part = X.iloc[start:start + chunk]
        repeated = part.iloc[np.repeat(np.arange(len(part)), n_bg)]
        take = np.tile(np.arange(n_bg), len(part))
        swapped = pd.concat([repeated.assign(**{c: bg[c].array.take(take)}) for c in cols], ignore_index=True)
        q = model.predict_proba(swapped)[:, 1].reshape(len(cols), len(part), n_bg).mean(axis=2).T
        out[start:start + len(part)] = model.predict_proba(part)[:, [1]] - q
    return pd.DataFrame(out, index=X.index, columns=cols)


def _value_text(v, kind: str, words: Mapping[str, str]) -> str:
    if pd.isna(v):
        return words["missing"]
    if kind == "flag":
        return f"= {words['yes'] if bool(v) else words['no']}"
    if kind == "number":
        return f"= {short_number(float(v))}"
    return f"= {v}"


#: The words a driver is written with (``drivers_text``'s ``words`` replaces any of them).
DRIVER_WORDS = {"missing": "is missing", "yes": "yes", "no": "no", "points": "pts", "sep": "; "}


def drivers_text(drivers: pd.DataFrame, X: pd.DataFrame, *, k: int = 3, min_points: float = 0.5,
                 words: Mapping[str, str] | None = None) -> pd.Series:
    """Each row's ``k`` strongest drivers in words: ``quote_sent = yes (+14 pts); source = Outbound (-6 pts)``.

    Parameters
    ----------
    drivers : DataFrame
        :func:`score_drivers`.
    X : DataFrame
        The same rows with their values (the input columns).
    k : int, default 3
    min_points : float, default 0.5
        Changes smaller than this many percentage points are not named.
    words : mapping, optional
        Replacements for :data:`DRIVER_WORDS` (the report language).

    Returns
    -------
    Series
        ``drivers`` (str), indexed like ``drivers``; "" where no column moves the chance by ``min_points``.
    """
    words = {**DRIVER_WORDS, **(words or {})}
    cols = list(drivers.columns)
    kinds = {c: column_kind(X[c]) for c in cols}
    values = drivers.to_numpy()
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    text = []
    for i, row in enumerate(order):
        parts = []
        for j in row:
            points = 100 * values[i, j]
            if abs(points) < min_points:
                break
            c = cols[j]
            parts.append(f"{c} {_value_text(X[c].iloc[i], kinds[c], words)} ({points:+.0f} {words['points']})")
        text.append(words["sep"].join(parts))
    return pd.Series(text, index=drivers.index, name="drivers", dtype="str")
