"""Whom to call first: boosted trees order the open deals, a tuned decision tree says why, both checked for leakage
and against a logistic baseline, on held-out deals and on deals that closed later.

The steps, each a pure function on DataFrames (the notebook ``50_targeting`` and :func:`run_targeting` chain them):

1. :func:`candidate_features` -- which columns a model may use, and why each other column is left out;
2. :func:`leakage_scan` -- columns that give the outcome away (they predict it alone, are filled in only once a deal
   closes, or hold values that occur almost only with wins and others almost only with losses);
3. :func:`~funnel_lab.analysis.boosting.fit_boosted` -- gradient-boosted trees with calibrated chances (the list's
   order); :func:`fit_tree` -- a cross-validated, tuned :class:`~sklearn.tree.DecisionTreeClassifier` (the rules);
   :func:`fit_baseline` -- a logistic regression on the same inputs, the yardstick;
4. :func:`evaluate` / :func:`evaluate_lists` -- AUC, PR-AUC, precision in the top N, lift in the top decile with
   its interval, Brier score, gains and calibration tables, for each list on the same rows;
5. :func:`tree_rules` -- one plain-text rule per leaf in terms of the input columns, with its training win rate;
6. :func:`score_open` -- the open deals ranked by their boosted chance, with their leaf's rule and the columns that
   move their chance most (``targets.csv``);
7. :func:`targeting_metrics` -- ``targeting_metrics.json``;
8. :func:`time_ordered_check` -- the lists as they would have been drawn at a past date, against what closed since.

Nothing here prints, plots or writes sentences: results are numbers, tables and codes (reason codes such as
``"identifier"`` or ``"predicts_alone"``) that the report layer puts into words. Every random step takes ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import ParameterGrid, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from ..errors import ParamsError, did_you_mean
from ..result import Result
from .boosting import BoostedModel, DRIVER_WORDS, drivers_text, fit_boosted, refit_boosted, score_drivers
from .model_inputs import (as_float, as_text, column_kind, integer_columns, outcome01, short_number, split_kinds,
                           stratified_sample)
from .regression import analysis_frame
from .stats import wilson_interval
from .uplift import UpliftModel, enough_units, experiment_deals, fit_uplift

__all__ = ["CANDIDATE_REASONS", "LEAKAGE_REASONS", "LISTS", "MIN_CLOSED", "TARGET_COLUMNS", "TargetingResult",
           "TreeModel", "candidate_features", "evaluate", "evaluate_lists", "fit_baseline", "fit_tree", "gains_table",
           "leaf_of", "leakage_scan", "list_comparison", "predict_probability", "run_targeting", "score_open",
           "targeting_metrics", "time_ordered_check", "tree_nodes", "tree_rules"]

#: ``targets.csv``'s leading columns (DESIGN.md).
TARGET_COLUMNS = ["opportunity_id", "probability", "rank", "rule"]
#: Why a column is not a model input, in the order they are checked (the first that applies is reported).
CANDIDATE_REASONS = ("outcome", "excluded", "dropped", "not_selected", "identifier", "date", "unsupported",
                     "constant", "high_cardinality")
#: Why :func:`leakage_scan` flags a column, in order of precedence.
LEAKAGE_REASONS = ("predicts_alone", "filled_after_outcome", "outcome_levels")
#: Fewer closed deals than this and a tree, its tuning and a held-out test are all noise.
MIN_CLOSED = 50
#: The rarer outcome needs at least this many deals (stratified folds and a test split need some of each).
MIN_PER_CLASS = 10


def _enough_to_learn(n_closed: int, wins: int) -> bool:
    """The one minimum-deal rule: :data:`MIN_CLOSED` closed deals, :data:`MIN_PER_CLASS` of each outcome."""
    return n_closed >= MIN_CLOSED and min(wins, n_closed - wins) >= MIN_PER_CLASS

#: Columns that define the outcome or are only known once it is: never inputs.
OUTCOME_COLUMNS = ("status", "won", "closed_at")
#: Always identifiers, whatever their uniqueness (an account recurs, but a tree that learns account names has
#: learned the past customers, not what makes a deal win).
ID_COLUMNS = ("opportunity_id", "account")
#: A text column with distinct values on at least this share of rows names rows rather than describes them.
ID_UNIQUE_SHARE = 0.9
#: A text column with more levels than this is left out: one-hot encoding it makes a tree chase rare levels.
MAX_LEVELS = 50
#: Levels rarer than this share of the training rows (and at least MIN_LEVEL_ROWS rows) are pooled into one
#: "rare" level: a leaf needs at least 1% of the rows anyway (see ``_leaf_sizes``), so a rarer level cannot
#: carry a split on its own, and pooling keeps the encoded table small.
MIN_LEVEL_SHARE = 0.01
MIN_LEVEL_ROWS = 5
#: Shown for a missing text value inside the model (and read back as "is missing" in the rules).
MISSING_LEVEL = "(missing)"
#: Leakage: "filled after the outcome" = mostly missing on open rows but mostly filled on closed ones.
OPEN_MISSING_MIN = 0.9
CLOSED_MISSING_MAX = 0.5
#: Leakage: a level is "near-pure" when its Wilson 95% interval of the win rate lies above ``purity`` (or below
#: ``1 - purity``) and it holds at least this many rows and this share of the training rows.
PURE_LEVEL_MIN_ROWS = 20
PURE_LEVEL_MIN_SHARE = 0.01
#: The shares of training rows tried as ``min_samples_leaf`` (at least 5 rows), and the pruning strengths.
LEAF_SHARES = (0.01, 0.02, 0.05)
MIN_LEAF_ROWS = 5
CCP_ALPHAS = (0.0, 1e-4, 1e-3)
#: Above this many training rows the search runs on a stratified sample of this size (a tree's best depth, leaf
#: share and pruning do not need every row, and 135 fits on 150,000 rows took six minutes); the chosen tree is then
#: fitted on every row, with the leaf size kept as the same share of the rows.
TUNING_ROWS = 30_000
#: Above this many training rows the logistic baseline is fitted on a stratified sample of this size.
BASELINE_ROWS = 200_000
#: Rows encoded at a time when a fitted pipeline scores or places rows (:func:`_by_chunks`).
SCORE_ROWS = 100_000
#: The open deals, from the top of the list, whose drivers :func:`score_open` names (each costs about a
#: thousand predictions; a list is worked from the top).
DRIVER_ROWS = 1_000
#: Fixed-width probability bins of the calibration table.
CALIBRATION_BINS = 10


# -------------------------------------------------------------------------------------------------- model types

def _as_model_types(X: pd.DataFrame, numeric: Sequence[str] = (), categorical: Sequence[str] = (),
                    dtype: str = "float64") -> pd.DataFrame:
    """The first step of every pipeline here: nullable numbers/booleans -> ``dtype``, text -> object str.

    Kept inside the pipeline so that ``pipeline.predict_proba(raw_rows)`` works on the cleaned table as it is.
    """
    num, cat = set(numeric), set(categorical)
    order = [c for c in X.columns if c in num or c in cat]  # input order: the names the next step was fitted on
    return pd.DataFrame({c: as_float(X[c]).astype(dtype, copy=False) if c in num else as_text(X[c])
                         for c in order}, index=X.index, columns=order)


def _fixed_width_text(X) -> np.ndarray:
    return np.asarray(X, dtype=str)


# ------------------------------------------------------------------------------------------- 1. candidate features

def candidate_features(opportunities: pd.DataFrame, *, outcome: str = "won", features: Sequence[str] = (),
                       exclude: Sequence[str] = (), drop_columns: Sequence[str] = ()
                       ) -> tuple[list[str], pd.DataFrame]:
    """The columns a targeting model may use, and why every other column is left out.

    Parameters
    ----------
    opportunities : DataFrame
        The cleaned opportunities (open and closed rows).
    outcome : str, default "won"
        The outcome column; it and ``status``, ``won``, ``closed_at`` define or follow the outcome.
    features : sequence of str, optional
        ``targeting.features``: when given, only these columns are considered (still subject to ``exclude`` and
        the checks below).
    exclude : sequence of str, optional
        ``targeting.exclude``: columns never to use (e.g. fields filled in after contact).
    drop_columns : sequence of str, optional
        ``cleaning.drop_columns``: normally already gone after cleaning; reported as ``dropped`` if still present.

    Returns
    -------
    features : list of str
        The usable columns, in table order.
    left_out : DataFrame
        ``column, reason``: one row per other column, with the first reason code that applies, in this order:
        ``outcome`` (status, won, the outcome, closed_at: they define or follow the outcome), ``excluded``
        (targeting.exclude), ``dropped`` (cleaning.drop_columns), ``not_selected`` (not in a non-empty
        ``features``), ``identifier`` (opportunity_id, account, or a text column unique on >= 90% of rows),
        ``date`` (date/time columns: left out because their meaning shifts between training and scoring -- a
        closed deal's dates lie in the past, an open deal's are recent or in the future, so a tree would learn
        the calendar, not the deal), ``unsupported`` (durations and other types), ``constant`` (one value, or
        all missing), ``high_cardinality`` (text with more than 50 levels).

    Raises
    ------
    ParamsError
        A column named in ``features`` or ``exclude`` does not exist (with a did-you-mean); columns in
        ``exclude`` that ``drop_columns`` already removed are fine.

    Examples
    --------
    >>> cols, left_out = candidate_features(ctx.opportunities,
    ...                                     exclude=["crm_stage", "crm_probability"])  # doctest: +SKIP
    >>> left_out.set_index("column")["reason"]["account"]  # doctest: +SKIP
    'identifier'
    """
    df = opportunities
    names = [str(c) for c in df.columns]
    for key, wanted, allowed_missing in (("features", features, ()), ("exclude", exclude, drop_columns)):
        for name in wanted:
            if name not in df.columns and name not in allowed_missing:
                raise ParamsError(f"targeting.{key}: unknown column '{name}'{did_you_mean(str(name), names)}")
    chosen = set(features)
    kept: list[str] = []
    rows: list[dict[str, str]] = []
    n = len(df)
    for col in df.columns:
        s = df[col]
        kind = column_kind(s)
        reason = None
        if col in (*OUTCOME_COLUMNS, outcome):
            reason = "outcome"
        elif col in exclude:
            reason = "excluded"
        elif col in drop_columns:
            reason = "dropped"
        elif chosen and col not in chosen:
            reason = "not_selected"
        elif col in ID_COLUMNS or (kind == "text" and n and s.nunique(dropna=True) >= ID_UNIQUE_SHARE * n):
            reason = "identifier"
        elif kind == "date":
            reason = "date"
        elif kind == "other":
            reason = "unsupported"
        elif s.nunique(dropna=False) <= 1:
            # one value and no gaps (or no value at all) cannot split anything; "one value or missing" can
            reason = "constant"
        elif kind == "text" and s.nunique(dropna=True) > MAX_LEVELS:
            reason = "high_cardinality"
        if reason is None:
            kept.append(col)
        else:
            rows.append({"column": col, "reason": reason})
    return kept, pd.DataFrame(rows, columns=["column", "reason"]).astype({"column": "str", "reason": "str"})


# ----------------------------------------------------------------------------------------------- 2. leakage scan

def _auc(y: np.ndarray, score: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, score))


def _numeric_auc_alone(y: np.ndarray, values: np.ndarray) -> float:
    """max(AUC, 1 - AUC) of the value itself; missing values ranked at the bottom, then at the top, the stronger.

    Ranking the gaps at either end lets a number that is filled for one outcome only (a "lost reason code")
    show up as the perfect predictor it is.
    """
    known = ~np.isnan(values)
    if not known.any():
        return float("nan")
    if known.all():
        a = _auc(y, values)
        return max(a, 1 - a) if a == a else a
    lo, hi = np.nanmin(values), np.nanmax(values)
    best = float("nan")
    for fill in (lo - 1.0, hi + 1.0):
        a = _auc(y, np.where(known, values, fill))
        if a == a:
            best = max(a, 1 - a) if best != best else max(best, a, 1 - a)
    return best


def _level_auc_alone(y: np.ndarray, levels: pd.Series, seed: int) -> float:
    """AUC of each row's out-of-fold level win rate: a level seen only in the other folds scores as average.

    In-sample level rates would make any column with many small levels look perfect (each level memorises its
    own rows); out of fold, an identifier-like column scores about 0.5, as it should.
    """
    counts = np.bincount(y, minlength=2)
    n_splits = int(min(5, counts.min()))
    if n_splits < 2:
        return float("nan")
    oof = np.empty(len(y), dtype=float)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    codes = levels.to_numpy()
    for train, test in folds.split(np.zeros(len(y)), y):
        rates = pd.Series(y[train]).groupby(codes[train]).mean()
        oof[test] = pd.Series(codes[test]).map(rates).fillna(y[train].mean()).to_numpy()
    a = _auc(y, oof)
    return max(a, 1 - a) if a == a else a


def _pure_levels(y: np.ndarray, levels: pd.Series, purity: float) -> tuple[int, int, str]:
    """(near-pure won levels, near-pure lost levels, the largest such level) of one categorical column."""
    n_rows = len(y)
    stats = pd.DataFrame({"level": levels.to_numpy(), "y": y}).groupby("level", sort=True)["y"].agg(["sum", "size"])
    stats = stats[stats["size"] >= max(PURE_LEVEL_MIN_ROWS, PURE_LEVEL_MIN_SHARE * n_rows)]
    if stats.empty:
        return 0, 0, ""
    low, high = wilson_interval(stats["sum"].to_numpy(float), stats["size"].to_numpy(float))
    won, lost = low > purity, high < 1 - purity
    pure = stats[won | lost].sort_values("size", ascending=False, kind="stable")
    return int(won.sum()), int(lost.sum()), (str(pure.index[0]) if len(pure) else "")


def leakage_scan(frame: pd.DataFrame, y, columns: Sequence[str], *, open_frame: pd.DataFrame | None = None,
                 threshold: float = 0.98, purity: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Columns that give the outcome away: too good alone, filled only once a deal closes, or outcome-specific.

    Parameters
    ----------
    frame : DataFrame
        The training rows (closed deals).
    y : array-like of 0/1
        The outcome of each row of ``frame``, in row order.
    columns : sequence of str
        The columns to scan (the candidates).
    open_frame : DataFrame, optional
        The rows to be scored (open deals); without it ``missing_open`` is NaN and ``filled_after_outcome``
        cannot be detected.
    threshold : float, default 0.98
        ``auc_alone`` above this is flagged ``predicts_alone``: no honest single field ranks deals that well.
    purity : float, default 0.95
        A level whose win rate lies, with 95% confidence (Wilson interval), above ``purity`` is a "won level";
        below ``1 - purity`` a "lost level". Levels need at least 20 rows and 1% of the rows.
    seed : int, default 0
        Seed of the folds of the out-of-fold level rates.

    Returns
    -------
    DataFrame
        One row per column, sorted by ``auc_alone`` (descending, stable): ``column``, ``kind`` (number, flag,
        text), ``auc_alone`` (ROC AUC of the column alone, max(AUC, 1 - AUC): numbers and flags by their value,
        missing ranked at whichever end is stronger; text by the out-of-fold win rate of its level, missing
        being a level), ``missing_closed`` and ``missing_open`` (share of missing cells among training and
        open rows), ``won_levels`` and ``lost_levels`` (near-pure levels of a text column), ``example_level``
        (the largest near-pure level), ``flagged`` (bool) and ``reason``: ``predicts_alone`` (auc_alone >
        threshold), ``filled_after_outcome`` (missing on >= 90% of open rows but on <= 50% of closed rows: it is
        filled in when a deal closes), ``outcome_levels`` (at least one won level and one lost level: values such
        as "Closed by partner" / "Lost to competitor" that are written once the outcome is known), or "" when
        not flagged. The first applicable reason is given.

    Examples
    --------
    >>> leakage_scan(closed, closed["won"], ["tags", "visits"])  # doctest: +SKIP
    """
    y = outcome01(y)
    if len(y) != len(frame):
        raise ParamsError(f"leakage_scan: y has {len(y)} values for {len(frame)} rows")
    rows = []
    for col in columns:
        s = frame[col]
        kind = column_kind(s)
        won_levels = lost_levels = 0
        example = ""
        if kind in ("number", "flag"):
            auc = _numeric_auc_alone(y, as_float(s))
        else:
            levels = pd.Series(as_text(s)).fillna(MISSING_LEVEL)
            auc = _level_auc_alone(y, levels, seed)
            won_levels, lost_levels, example = _pure_levels(y, levels, purity)
        miss_closed = float(s.isna().mean()) if len(s) else float("nan")
        miss_open = (float(open_frame[col].isna().mean()) if open_frame is not None and col in open_frame
                     and len(open_frame) else float("nan"))
        reason = ""
        if auc == auc and auc > threshold:
            reason = "predicts_alone"
        elif miss_open == miss_open and miss_open >= OPEN_MISSING_MIN and miss_closed <= CLOSED_MISSING_MAX:
            reason = "filled_after_outcome"
        elif won_levels and lost_levels:
            reason = "outcome_levels"
        rows.append({"column": col, "kind": kind, "auc_alone": auc, "missing_closed": miss_closed,
                     "missing_open": miss_open, "won_levels": won_levels, "lost_levels": lost_levels,
                     "example_level": example, "flagged": bool(reason), "reason": reason})
    out = pd.DataFrame(rows, columns=["column", "kind", "auc_alone", "missing_closed", "missing_open", "won_levels",
                                      "lost_levels", "example_level", "flagged", "reason"])
    out = out.astype({"column": "str", "kind": "str", "auc_alone": "float64", "missing_closed": "float64",
                      "missing_open": "float64", "won_levels": "int64", "lost_levels": "int64",
                      "example_level": "str", "flagged": "bool", "reason": "str"})
    return out.sort_values("auc_alone", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- 3. the tree

@dataclass
class TreeModel:
    """A fitted targeting tree and what is needed to read it.

    Attributes
    ----------
    pipeline : sklearn Pipeline
        ``types`` (numbers and flags -> float, text -> str) -> ``prepare`` (ColumnTransformer: numbers median-
        imputed with missing indicators; text with missing as "(missing)", one-hot, rare levels pooled) ->
        ``tree`` (DecisionTreeClassifier, class_weight="balanced"). ``pipeline[-1]`` is the tree; the pipeline
        takes the cleaned rows as they are.
    best_params : dict
        ``max_depth``, ``min_samples_leaf``, ``ccp_alpha`` chosen by cross-validated ROC AUC.
    cv_auc : dict
        ``mean`` and ``sd`` of the chosen candidate's fold AUCs.
    search : DataFrame
        Every candidate: ``max_depth, min_samples_leaf, ccp_alpha, mean_auc, sd_auc, rank`` (1 = best).
    feature_names : list of str
        The encoded features, as the ColumnTransformer names them (``num__visits``, ``cat__source_Referral``).
    input_columns : list of str
        The input columns, in the order the pipeline takes them.
    encoded : DataFrame
        ``feature, column, kind, level`` per encoded feature: kind ``number``, ``flag``, ``missing`` (missing
        indicator of a number), ``level`` (one-hot of a text level) or ``rare`` (the pooled rare levels; ``level``
        holds them as a tuple).
    leaf_win_rate : Series
        Leaf id -> the unweighted win rate of the training rows in that leaf.
    n_train : int
        Rows the tree was fitted on.
    integer_columns : list of str
        Numeric inputs whose training values are all whole numbers (their thresholds read as ">= 2", not "> 1.5").
    """

    pipeline: Pipeline
    best_params: dict
    cv_auc: dict
    search: pd.DataFrame
    feature_names: list[str]
    input_columns: list[str]
    encoded: pd.DataFrame
    leaf_win_rate: pd.Series
    n_train: int
    integer_columns: list[str] = field(default_factory=list)

    @property
    def tree(self) -> DecisionTreeClassifier:
        return self.pipeline[-1]

    def features_used(self) -> list[str]:
        """The input columns the tree splits on, in input order."""
        t = self.tree.tree_
        used = {self.encoded["column"].iloc[f] for f in t.feature[t.children_left != -1]}
        return [c for c in self.input_columns if c in used]





def _min_frequency(n: int) -> int:
    return max(MIN_LEVEL_ROWS, int(round(MIN_LEVEL_SHARE * n)))


def _preprocessor(numeric: list[str], categorical: list[str], n: int, *, scale: bool,
                  dtype: str = "float64") -> ColumnTransformer:
    parts = []
    if numeric:
        # keep_empty_features: a column with no value in some training fold stays in place (as 0) rather than
        # vanishing, so the encoded layout -- and the rules read from it -- always match the inputs
        num: Any = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        if scale:
            num = Pipeline([("impute", num), ("scale", StandardScaler())])
        parts.append(("num", num, numeric))
    if categorical:
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL)),
            # fixed-width str instead of object: the encoder then counts levels with numpy, not a Python Counter
            # (a 5-fold search over 27 trees refits it 135 times; this is most of the search's time)
            ("text", FunctionTransformer(_fixed_width_text, feature_names_out="one-to-one")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=_min_frequency(n), sparse_output=False,
                                      dtype=dtype)),
        ]), categorical))
    return ColumnTransformer(parts, remainder="drop")


def _pipeline(X: pd.DataFrame, estimator, *, scale: bool = False) -> Pipeline:
    numeric, categorical, _ = split_kinds(X)
    if not numeric and not categorical:
        raise ParamsError("no input columns to fit on")
    is_tree = isinstance(estimator, DecisionTreeClassifier)
    # a tree splits float32 values whatever it is given (it copies float64 input to float32): encoding in float32
    # gives the same tree from half the memory and without that copy
    dtype = "float32" if is_tree else "float64"
    types = FunctionTransformer(_as_model_types, kw_args={"numeric": numeric, "categorical": categorical,
                                                          "dtype": dtype}, feature_names_out="one-to-one")
    return Pipeline([("types", types),
                     ("prepare", _preprocessor(numeric, categorical, len(X), scale=scale, dtype=dtype)),
                     ("tree" if is_tree else "model", estimator)])


def _by_chunks(X: pd.DataFrame, score: Callable[[pd.DataFrame], Any]) -> list:
    """``score`` of :data:`SCORE_ROWS` rows of ``X`` at a time, one result per chunk (none for no rows): the
    encoded matrix of every row at once is the largest thing targeting would hold."""
    return [score(X.iloc[i:i + SCORE_ROWS]) for i in range(0, len(X), SCORE_ROWS)]


def _encoded(pipeline: Pipeline, method: str) -> Callable[[pd.DataFrame], Any]:
    """Rows -> ``pipeline[-1].<method>`` of them as ``pipeline[:-1]`` encodes them."""
    prepare, model = pipeline[:-1], pipeline[-1]
    return lambda rows: getattr(model, method)(prepare.transform(rows))


def _leaf_sizes(n: int) -> list[int]:
    return sorted({max(MIN_LEAF_ROWS, int(round(share * n))) for share in LEAF_SHARES})


def _encoded_map(pipeline: Pipeline, flags: Sequence[str]) -> pd.DataFrame:
    """Encoded feature -> (input column, kind, level), read from the fitted transformers (not parsed from names)."""
    ct: ColumnTransformer = pipeline.named_steps["prepare"]
    rows: list[tuple] = []
    for name, trans, cols in ct.transformers_:
        if name == "num":
            imp = trans if isinstance(trans, SimpleImputer) else trans.named_steps["impute"]
            rows += [(c, "flag" if c in flags else "number", None) for c in cols]
            if imp.indicator_ is not None:
                rows += [(cols[j], "missing", None) for j in imp.indicator_.features_]
        elif name == "cat":
            ohe: OneHotEncoder = trans.named_steps["onehot"]
            infrequent = ohe.infrequent_categories_
            for i, c in enumerate(cols):
                rare = infrequent[i]
                rare_set = set() if rare is None else set(rare)
                rows += [(c, "level", str(v)) for v in ohe.categories_[i] if v not in rare_set]
                if rare is not None:
                    rows.append((c, "rare", tuple(str(v) for v in rare)))
    names = list(ct.get_feature_names_out())
    if len(names) != len(rows):  # the encoders' layout changed: better loud than silently mislabelled rules
        raise RuntimeError(f"encoded features: {len(names)} names for {len(rows)} mapped columns")
    return pd.DataFrame({"feature": names, "column": [r[0] for r in rows], "kind": [r[1] for r in rows],
                         "level": [r[2] for r in rows]})


def _finish(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, *, best_params: dict, cv_auc: dict,
            search: pd.DataFrame) -> TreeModel:
    numeric, _, flags = split_kinds(X)
    encoded = _encoded_map(pipeline, flags)
    leaves = np.concatenate(_by_chunks(X, _encoded(pipeline, "apply")))
    rate = pd.Series(y).groupby(leaves).mean()
    return TreeModel(pipeline=pipeline, best_params=best_params, cv_auc=cv_auc, search=search,
                     feature_names=list(encoded["feature"]), input_columns=list(X.columns), encoded=encoded,
                     leaf_win_rate=rate.rename("win_rate").rename_axis("leaf"), n_train=len(X),
                     integer_columns=integer_columns(X, numeric))


def fit_tree(X: pd.DataFrame, y, *, max_depth: int = 4, seed: int = 0, cv: int = 5) -> TreeModel:
    """A decision tree tuned by stratified cross-validation on ROC AUC.

    Parameters
    ----------
    X : DataFrame
        The input columns of the training rows, as cleaned: numbers, yes/no flags (used as 0/1) and text
        (categories; one-hot encoded, levels rarer than 1% of rows pooled into one "rare" level).
    y : array-like of 0/1
        The outcome, in row order.
    max_depth : int, default 4
        The deepest tree tried; depths 2..max_depth are compared (a depth-4 tree still reads as rules).
    seed : int, default 0
        Seed of the folds and of the tree's tie-breaking between equally good splits.
    cv : int, default 5
        Folds (fewer when the rarer outcome has fewer rows).

    Returns
    -------
    TreeModel
        The tree refitted on all of ``X`` with the best parameters; ``search`` lists every candidate.

    Notes
    -----
    The grid: ``max_depth`` in 2..max_depth, ``min_samples_leaf`` in 1%, 2% and 5% of the rows (at least 5), and
    cost-complexity pruning ``ccp_alpha`` in (0, 1e-4, 1e-3). ``class_weight="balanced"`` makes a rare outcome
    count as much as a common one when choosing splits; it also distorts ``predict_proba``, which is why the
    probabilities reported are the leaves' unweighted training win rates (:func:`predict_probability`).

    Above :data:`TUNING_ROWS` rows the search runs on a stratified sample of that many rows, and the tree chosen
    is fitted on all of them with ``min_samples_leaf`` scaled to the same share of the rows (``search`` then lists
    the sample's leaf sizes).

    The search gives the scores, ranks and choice of ``GridSearchCV(pipeline, grid, scoring="roc_auc",
    cv=StratifiedKFold(cv, shuffle=True, random_state=seed))``, but fits the preprocessing (which has nothing to
    tune) once per fold instead of once per candidate and fold, several times faster.

    Examples
    --------
    >>> model = fit_tree(closed[cols], closed["won"], max_depth=4, seed=0)  # doctest: +SKIP
    >>> model.best_params, model.cv_auc  # doctest: +SKIP
    """
    X = X.reset_index(drop=True)
    y = outcome01(y)
    if len(y) != len(X):
        raise ParamsError(f"fit_tree: y has {len(y)} values for {len(X)} rows")
    counts = np.bincount(y, minlength=2)
    n_splits = int(min(cv, counts.min()))
    if n_splits < 2:
        raise ParamsError(f"fit_tree: need at least 2 rows of each outcome for cross-validation; got {counts[1]} "
                         f"wins and {counts[0]} losses")
    X_all, y_all = X, y
    if len(X) > TUNING_ROWS:
        keep = stratified_sample(len(X), y, TUNING_ROWS, seed)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        n_splits = int(min(n_splits, np.bincount(y, minlength=2).min()))
    pipe = _pipeline(X, DecisionTreeClassifier(class_weight="balanced", random_state=seed))
    grid = ParameterGrid({"max_depth": list(range(min(2, max_depth), max_depth + 1)),
                          "min_samples_leaf": _leaf_sizes(len(X)), "ccp_alpha": list(CCP_ALPHAS)})
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # GridSearchCV(pipe, grid, cv=folds, scoring="roc_auc") step for step -- same folds, preprocessing fitted
    # inside each fold, same candidate order, ranks and tie-breaking (tests compare the two) -- except that the
    # preprocessing, which has nothing to tune, is fitted once per fold rather than once per candidate and fold:
    # refitting the encoders 135 times was 90% of the time on 9,000 rows.
    scores = np.empty((len(grid), n_splits))
    for j, (train, test) in enumerate(folds.split(np.zeros(len(y)), y)):
        prep = clone(pipe[:-1])
        Xt_train = prep.fit_transform(X.iloc[train], y[train])
        Xt_test = prep.transform(X.iloc[test])
        for i, params in enumerate(grid):
            tree = clone(pipe[-1]).set_params(**params).fit(Xt_train, y[train])
            scores[i, j] = roc_auc_score(y[test], tree.predict_proba(Xt_test)[:, 1])
    mean, sd = scores.mean(axis=1), scores.std(axis=1)
    rank = rankdata(-mean, method="min").astype("int64")
    table = pd.DataFrame({
        "max_depth": np.array([p["max_depth"] for p in grid], dtype="int64"),
        "min_samples_leaf": np.array([p["min_samples_leaf"] for p in grid], dtype="int64"),
        "ccp_alpha": np.array([p["ccp_alpha"] for p in grid], dtype="float64"),
        "mean_auc": mean, "sd_auc": sd, "rank": rank,
    })
    i = int(np.flatnonzero(rank == 1)[0])  # the first best candidate, as GridSearchCV's best_index_
    best_params = {"max_depth": int(grid[i]["max_depth"]), "min_samples_leaf": int(grid[i]["min_samples_leaf"]),
                   "ccp_alpha": float(grid[i]["ccp_alpha"])}
    cv_auc = {"mean": float(mean[i]), "sd": float(sd[i])}
    if len(X) < len(X_all):  # tuned on a sample: the leaf keeps its share of the rows
        best_params["min_samples_leaf"] = max(MIN_LEAF_ROWS, int(round(
            best_params["min_samples_leaf"] * len(X_all) / len(X))))
    final = pipe if len(X) == len(X_all) else _pipeline(X_all, clone(pipe[-1]))
    best = final.set_params(**{f"tree__{k}": v for k, v in best_params.items()}).fit(X_all, y_all)
    return _finish(best, X_all, y_all, best_params=best_params, cv_auc=cv_auc, search=table)


def _refit(model: TreeModel, X: pd.DataFrame, y, *, seed: int) -> TreeModel:
    """The same tuned tree fitted on other rows (all closed deals); tuning results are carried over."""
    X = X[model.input_columns].reset_index(drop=True)
    y = outcome01(y)
    tree = DecisionTreeClassifier(class_weight="balanced", random_state=seed, **model.best_params)
    pipe = _pipeline(X, tree).fit(X, y)
    return _finish(pipe, X, y, best_params=dict(model.best_params), cv_auc=dict(model.cv_auc),
                   search=model.search)


def fit_baseline(X_train: pd.DataFrame, y_train, seed: int = 0) -> Pipeline:
    """A logistic regression on the same inputs, the yardstick the tree has to stand next to.

    Parameters
    ----------
    X_train : DataFrame
        The same input columns as the tree's.
    y_train : array-like of 0/1
    seed : int, default 0

    Returns
    -------
    Pipeline
        ``types`` -> ``prepare`` (as the tree's, numbers also standardised so that the default L2 penalty treats
        them alike) -> ``model`` (LogisticRegression, class_weight="balanced", max_iter=5000). Its
        ``predict_proba`` ranks deals; with balanced weights its level is not a calibrated probability.

    Notes
    -----
    Above :data:`BASELINE_ROWS` training rows it is fitted on a stratified sample of that many: a hundred-odd
    coefficients are estimated as well from 200,000 rows as from a million, in a fraction of the time and memory.
    """
    X, y = X_train.reset_index(drop=True), outcome01(y_train)
    if len(X) > BASELINE_ROWS:
        keep = stratified_sample(len(X), y, BASELINE_ROWS, seed)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
    lr = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)
    return _pipeline(X, lr, scale=True).fit(X, y)


# ------------------------------------------------------------------------------------------------- 4. evaluation

def leaf_of(model: TreeModel, X: pd.DataFrame) -> pd.Series:
    """The leaf (node id of the tree) each row falls in.

    Returns
    -------
    Series
        ``leaf`` (int64), indexed like ``X``.
    """
    if not len(X):
        return pd.Series([], index=X.index, dtype="int64", name="leaf")
    leaves = np.concatenate(_by_chunks(X[model.input_columns], _encoded(model.pipeline, "apply")))
    return pd.Series(leaves.astype("int64"), index=X.index, name="leaf")


def predict_probability(model: TreeModel, X: pd.DataFrame) -> pd.Series:
    """Each row's win probability: the unweighted training win rate of its leaf.

    ``class_weight="balanced"`` weighs the rarer outcome up while splitting, so ``predict_proba`` reports the
    weighted share in a leaf (with 25% wins overall, a leaf of 25% wins reads as 50%). The leaf's actual training
    win rate is the honest probability; it orders the leaves exactly as ``predict_proba`` does.

    Returns
    -------
    Series
        ``probability`` (float64), indexed like ``X``.
    """
    leaves = leaf_of(model, X)
    return leaves.map(model.leaf_win_rate).astype("float64").rename("probability")


def _scores(model, X: pd.DataFrame) -> np.ndarray:
    if isinstance(model, TreeModel):
        return predict_probability(model, X).to_numpy()
    if not len(X):
        return np.empty(0)
    return np.concatenate(_by_chunks(X, lambda rows: model.predict_proba(rows)[:, 1])).astype(float)


def _cumulative_positives(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows contacted and wins found at the end of each block of equal scores, best block first, from (0, 0).

    Between two points the curve is a straight line: inside a block of ties the order is arbitrary, so the wins
    expected among its first k rows are k times its win rate. Interpolating on this curve gives counts that do
    not depend on the order of the rows.
    """
    if not len(score):
        return np.zeros(1), np.zeros(1)
    order = np.argsort(-score, kind="stable")
    s, cum = score[order], np.cumsum(y[order])
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    return np.r_[0.0, ends + 1.0], np.r_[0.0, cum[ends]]


def _wins_in_top(contacted: np.ndarray, found: np.ndarray, k: float) -> float:
    return float(np.interp(k, contacted, found))


def _calibration(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    idx = np.clip(np.floor(p * CALIBRATION_BINS), 0, CALIBRATION_BINS - 1).astype(int)
    frame = pd.DataFrame({"i": idx, "p": p, "y": y}).groupby("i", sort=True).agg(
        mean_predicted=("p", "mean"), observed_rate=("y", "mean"), n=("y", "size"))
    labels = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in frame.index]
    return pd.DataFrame({"bin": pd.Series(labels, dtype="str"), "mean_predicted": frame["mean_predicted"].to_numpy(),
                         "observed_rate": frame["observed_rate"].to_numpy(),
                         "n": frame["n"].to_numpy(dtype="int64")})


def evaluate(model, X_test: pd.DataFrame, y_test, *, top_n: int) -> dict:
    """How well the scores order held-out deals.

    Parameters
    ----------
    model : TreeModel, BoostedModel or fitted classifier
        A :class:`TreeModel` is scored by its leaves' training win rates (:func:`predict_probability`), anything
        else (the boosted list, :func:`fit_baseline`'s pipeline) by ``predict_proba(X)[:, 1]``.
    X_test : DataFrame
    y_test : array-like of 0/1
    top_n : int
        The size of the call list; capped at the number of test rows.

    Returns
    -------
    dict
        ``auc`` (ROC AUC; NaN with one class), ``pr_auc`` (average precision), ``precision_at_top_n`` (share of
        wins among the ``top_n`` best-scored rows), ``lift_at_10pct`` (share of wins in the best-scored 10% of
        rows / ``base_rate``) with ``lift_low`` / ``lift_high`` (95% Wilson interval of the top tenth's win rate,
        the tenth rounded to ``top10_n`` whole deals holding ``top10_wins`` wins, over ``base_rate``), ``brier``
        (mean squared error of the scores as chances: only meaningful for calibrated scores), ``base_rate``,
        ``n_test``, ``top_n`` (the N used), ``distinct_top_n`` (distinct scores among the top N: ties make an
        order arbitrary), ``n_train`` (the model's training rows, None when unknown); ``gains`` (DataFrame, 101
        rows: ``share_contacted`` 0, 0.01 .. 1, ``share_of_wins_found``, ``random`` (= share_contacted)) and
        ``calibration`` (DataFrame: ``bin`` ("0.2-0.3"; ten equal bins of the predicted probability, empty ones
        left out), ``mean_predicted``, ``observed_rate``, ``n``).

    Notes
    -----
    A tree gives many rows the same score. Rows tied at the cut of the top N or top 10% are counted pro rata
    (their block's win rate times the rows taken): the expected count over every order of the ties, so the
    numbers do not depend on the order of the rows. The top 10% is exactly 0.1 x n rows, fractional if need be,
    the same point the gains curve shows at 10%.
    """
    y = outcome01(y_test)
    score = _scores(model, X_test)
    n = len(y)
    wins = int(y.sum())
    base = wins / n if n else float("nan")
    contacted, found = _cumulative_positives(y, score)
    k = min(int(top_n), n)
    precision = _wins_in_top(contacted, found, k) / k if k else float("nan")
    lift = (_wins_in_top(contacted, found, 0.1 * n) / (0.1 * n)) / base if n and wins else float("nan")
    grid = np.round(np.linspace(0, 1, 101), 2)
    gains = pd.DataFrame({"share_contacted": grid,
                          "share_of_wins_found": (np.interp(grid * n, contacted, found) / wins if wins
                                                  else np.full(len(grid), np.nan)),
                          "random": grid})
    tenth = max(1, round(0.1 * n)) if n else 0
    tenth_wins = int(round(lift * base * tenth)) if n and wins else 0
    low, high = wilson_interval(np.array([tenth_wins], float), np.array([max(tenth, 1)], float))
    n_train = getattr(model, "n_train", None)
    out = {
        "auc": _auc(y, score),
        "pr_auc": float(average_precision_score(y, score)) if 0 < wins < n else float("nan"),
        "precision_at_top_n": float(precision), "lift_at_10pct": float(lift),
        "lift_low": float(low[0] / base) if wins else float("nan"),
        "lift_high": float(high[0] / base) if wins else float("nan"),
        "top10_n": int(tenth), "top10_wins": tenth_wins,
        "brier": float(brier_score_loss(y, np.clip(score, 0, 1))) if n else float("nan"),
        "base_rate": float(base), "n_test": int(n), "top_n": int(k),
        "n_train": None if n_train is None else int(n_train),
        "distinct_top_n": int(len(np.unique(np.sort(score)[::-1][:k]))),
        "gains": gains, "calibration": _calibration(y, score),
    }
    return out


#: The lists compared, in the order the report shows them: the boosted trees (the list's order), the tree alone
#: (the list's rules) and the logistic baseline.
LISTS = ("boosted", "tree", "baseline")
#: The measures :func:`list_comparison` tabulates.
COMPARED = ("auc", "pr_auc", "lift_at_10pct", "lift_low", "lift_high", "precision_at_top_n", "brier")


def evaluate_lists(models: Mapping[str, Any], X_test: pd.DataFrame, y_test, *, top_n: int) -> dict[str, dict]:
    """:func:`evaluate` of each model on the same rows, by name (e.g. :data:`LISTS`)."""
    return {name: evaluate(model, X_test, y_test, top_n=top_n) for name, model in models.items()}


def list_comparison(evaluations: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """The lists side by side: ``check`` (``holdout``, ``later``), ``list``, then :data:`COMPARED`, ``n``.

    ``evaluations`` maps a check's name to :func:`evaluate_lists` on its rows (a check that did not run is left
    out)."""
    rows = [{"check": check, "list": name, **{k: ev.get(k) for k in COMPARED}, "n": ev["n_test"]}
            for check, evs in evaluations.items() for name, ev in evs.items()]
    return pd.DataFrame(rows, columns=["check", "list", *COMPARED, "n"]).astype(
        {"check": "str", "list": "str", **{k: "float64" for k in COMPARED}, "n": "int64"})


def gains_table(evaluations: Mapping[str, dict]) -> pd.DataFrame:
    """``share_contacted``, one column of the share of wins found per list, and ``random``."""
    first = next(iter(evaluations.values()))["gains"]
    return pd.DataFrame({"share_contacted": first["share_contacted"],
                         **{name: ev["gains"]["share_of_wins_found"] for name, ev in evaluations.items()},
                         "random": first["random"]})


# ------------------------------------------------------------------------------------------------------ 5. rules

def _range_text(col: str, lo: float | None, hi: float | None, integer: bool) -> str:
    """``lo < col <= hi`` (either side optional), as the tree splits; whole numbers as ``>= / <= / =``."""
    if integer:
        a = None if lo is None else math.floor(lo) + 1  # x > 1.5 on whole numbers: x >= 2
        b = None if hi is None else math.floor(hi)      # x <= 1.5: x <= 1
        if a is not None and b is not None:
            return f"{col} = {a}" if a == b else f"{a} <= {col} <= {b}"
        return f"{col} >= {a}" if a is not None else f"{col} <= {b}"
    if lo is not None and hi is not None:
        return f"{short_number(lo)} < {col} <= {short_number(hi)}"
    return f"{col} > {short_number(lo)}" if lo is not None else f"{col} <= {short_number(hi)}"


def _set_text(values: Sequence[str], limit: int = 6) -> str:
    shown = list(values)[:limit]
    more = f", +{len(values) - limit}" if len(values) > limit else ""
    return "{" + ", ".join(shown) + more + "}"


def _medians(model: TreeModel) -> dict[str, float]:
    """Numeric column -> the median its missing cells were imputed with (only columns that had gaps)."""
    ct: ColumnTransformer = model.pipeline.named_steps["prepare"]
    if "num" not in ct.named_transformers_:
        return {}
    trans = ct.named_transformers_["num"]
    imp = trans if isinstance(trans, SimpleImputer) else trans.named_steps["impute"]
    cols = [c for name, _, cs in ct.transformers_ if name == "num" for c in cs]
    gaps = set() if imp.indicator_ is None else {cols[j] for j in imp.indicator_.features_}
    return {c: float(imp.statistics_[i]) for i, c in enumerate(cols) if c in gaps}


def _leaf_paths(tree: DecisionTreeClassifier) -> dict[int, list[tuple[int, bool, float]]]:
    """Leaf id -> the splits on its path from the root: (feature, went right (value > threshold), threshold)."""
    t = tree.tree_
    out: dict[int, list] = {}
    stack: list[tuple[int, list]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            out[node] = path
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        stack.append((int(t.children_right[node]), path + [(f, True, thr)]))
        stack.append((int(t.children_left[node]), path + [(f, False, thr)]))
    return out


def _rule_text(model: TreeModel, path: list[tuple[int, bool, float]], medians: dict[str, float],
               words: Mapping[str, str]) -> str:
    enc = model.encoded
    flags = set(enc.loc[enc["kind"] == "flag", "column"])
    order: list[str] = []  # columns by first appearance on the path: the root's question reads first
    cond: dict[str, dict] = {}
    for f, right, thr in path:
        col, kind, level = enc["column"].iloc[f], enc["kind"].iloc[f], enc["level"].iloc[f]
        c = cond.setdefault(col, {"lo": None, "hi": None, "missing": None, "eq": None, "neq": [], "in": None,
                                  "not_in": []})
        if col not in order:
            order.append(col)
        if kind in ("number", "flag"):
            if right:
                c["lo"] = thr if c["lo"] is None else max(c["lo"], thr)
            else:
                c["hi"] = thr if c["hi"] is None else min(c["hi"], thr)
        elif kind == "missing":
            c["missing"] = right
        elif kind == "level":
            if right:
                c["eq"] = level
            elif level not in c["neq"]:
                c["neq"].append(level)
        elif kind == "rare":
            if right:
                c["in"] = level
            else:
                c["not_in"].extend(v for v in level if v not in c["not_in"])
    parts = []
    for col in order:
        c = cond[col]
        kind = enc.loc[enc["column"] == col, "kind"].iloc[0]
        if kind in ("number", "flag", "missing"):
            if c["missing"] is True:
                # every missing cell holds the median, so the bounds on this path say nothing more
                parts.append(f"{col} {words['missing']}")
                continue
            if c["lo"] is None and c["hi"] is None:
                if c["missing"] is False:
                    parts.append(f"{col} {words['known']}")
                continue
            m = medians.get(col)
            takes_missing = m is not None and (c["lo"] is None or m > c["lo"]) and (c["hi"] is None or m <= c["hi"])
            if (col in model.integer_columns and c["lo"] is not None and c["hi"] is not None
                    and math.floor(c["lo"]) + 1 > math.floor(c["hi"])):
                # a sliver between two whole numbers (e.g. 4.25 < x <= 4.75 around a median of 4.5): no known
                # value lies there, only the imputed missing ones
                parts.append(f"{col} {words['missing']}" if takes_missing else f"{col} {words['known']}")
                continue
            if col in flags:
                yes = c["lo"] is not None  # a flag split at 0.5: right = yes
                text = f"{col} = {words['yes'] if yes else words['no']}"
            else:
                text = _range_text(col, c["lo"], c["hi"], col in model.integer_columns)
            if c["missing"] is False:
                text += f" {words['and']} {col} {words['known']}"
            elif takes_missing:  # a missing cell was imputed with the median: it follows the median's branch
                text += f" {words['or_missing']}"
            parts.append(text)
            continue
        # text columns: "= level" wins over everything else on the path; then the pooled rare levels
        if c["eq"] is not None:
            parts.append(f"{col} {words['missing']}" if c["eq"] == MISSING_LEVEL else f"{col} = {c['eq']}")
            continue
        if c["in"] is not None:
            rest = [v for v in c["in"] if v not in c["neq"]]
            parts.append(f"{col} {words['in']} {_set_text(rest)}")
            continue
        neq = [v for v in c["neq"] if v != MISSING_LEVEL]
        known = MISSING_LEVEL in c["neq"]
        if c["not_in"]:
            neq = neq + [v for v in c["not_in"] if v not in neq]
        if len(neq) == 1:
            parts.append(f"{col} ≠ {neq[0]}")
        elif neq:
            parts.append(f"{col} {words['not_in']} {_set_text(neq)}")
        if known:
            parts.append(f"{col} {words['known']}")
    return f" {words['and']} ".join(parts) if parts else words["all"]


#: The words a rule is written with (:func:`tree_rules`'s ``words`` replaces any of them, e.g. in another language).
RULE_WORDS = {"and": "and", "missing": "is missing", "known": "is known", "yes": "yes", "no": "no",
              "or_missing": "(or missing)", "in": "in", "not_in": "not in", "all": "(all)"}


def tree_rules(model: TreeModel, X_train: pd.DataFrame, y_train, *,
               words: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One plain-text rule per leaf, with how many training deals it holds and how many of them were won.

    Parameters
    ----------
    model : TreeModel
    X_train, y_train
        The rows the tree was fitted on (counts are unweighted: the class weights only shape the splits).
    words : mapping, optional
        Replacements for :data:`RULE_WORDS` (the English shown below).

    Returns
    -------
    DataFrame
        ``leaf`` (node id), ``rule`` (the path from the root in terms of the input columns: ``meetings >= 2 and
        source = Referral and demo = yes``; several bounds on one number merged into one range, ``2 <= meetings
        <= 4``; whole-number columns with ``>=``/``<=``/``=``, others with ``>``/``<=`` and about three
        significant digits; one-hot splits as ``= level`` / ``≠ level`` / ``not in {a, b}``, pooled rare levels
        as ``in {...}``; missing indicators and the "(missing)" level as ``is missing`` / ``is known``; a
        number's bound followed by ``(or missing)`` when its missing cells, imputed with the median, take that
        branch; ``(all)`` for a tree without splits), ``n``, ``wins``, ``win_rate`` (NaN for an empty leaf);
        sorted by ``win_rate`` descending, then leaf id.
    """
    leaves = tree_nodes(model, X_train, y_train, words=words).query("leaf")
    words = {**RULE_WORDS, **(words or {})}
    medians, paths = _medians(model), _leaf_paths(model.tree)
    out = pd.DataFrame({
        "leaf": leaves["node"].to_numpy(dtype="int64"),
        "rule": pd.Series([_rule_text(model, paths[i], medians, words) for i in leaves["node"]], dtype="str"),
        "n": leaves["n"].to_numpy(), "wins": leaves["wins"].to_numpy(), "win_rate": leaves["win_rate"].to_numpy(),
    })
    return out.sort_values(["win_rate", "leaf"], ascending=[False, True], na_position="last",
                           kind="stable").reset_index(drop=True)


def tree_nodes(model: TreeModel, X_train: pd.DataFrame, y_train, *,
               words: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every node of the tree with its question, its deals and their win rate: what a drawing of the tree needs.

    Parameters
    ----------
    model : TreeModel
    X_train, y_train
        The rows the tree was fitted on.
    words : mapping, optional
        As for :func:`tree_rules`.

    Returns
    -------
    DataFrame
        ``node``, ``parent`` (-1 for the root), ``depth``, ``leaf`` (bool), ``yes_branch`` (bool: the node is its
        parent's "yes" child), ``question`` (a split's "yes" condition in the words of :func:`tree_rules`, e.g.
        ``meetings >= 2``; empty for a leaf), ``n``, ``wins``, ``win_rate``, ``x`` (horizontal position: leaves
        0, 1, 2, ... left to right, each split centred over its children).
    """
    t = model.tree.tree_
    words = {**RULE_WORDS, **(words or {})}
    medians = _medians(model)
    y = outcome01(y_train)
    n = np.zeros(t.node_count, "int64")
    wins = np.zeros(t.node_count, "int64")
    for i, members in zip(range(0, len(y), SCORE_ROWS),
                          _by_chunks(X_train[model.input_columns], _encoded(model.pipeline, "decision_path"))):
        n += np.asarray(members.sum(axis=0)).ravel().astype("int64")
        wins += np.asarray(members.T @ y[i:i + SCORE_ROWS]).ravel().astype("int64")
    parent, depth, yes = np.full(t.node_count, -1), np.zeros(t.node_count, int), np.zeros(t.node_count, bool)
    for node in range(t.node_count):
        for child, is_yes in ((t.children_left[node], False), (t.children_right[node], True)):
            if child != -1:
                parent[child], depth[child], yes[child] = node, depth[node] + 1, is_yes
    x = np.zeros(t.node_count)

    def place(node: int, next_leaf: int) -> int:  # in-order: "no" subtree left, "yes" subtree right
        if t.children_left[node] == -1:
            x[node] = next_leaf
            return next_leaf + 1
        next_leaf = place(int(t.children_right[node]), place(int(t.children_left[node]), next_leaf))
        x[node] = (x[t.children_left[node]] + x[t.children_right[node]]) / 2
        return next_leaf

    place(0, 0)
    leaf = t.children_left == -1
    question = ["" if leaf[i] else _rule_text(model, [(int(t.feature[i]), True, float(t.threshold[i]))], medians, words)
                for i in range(t.node_count)]
    return pd.DataFrame({"node": np.arange(t.node_count), "parent": parent, "depth": depth, "leaf": leaf,
                         "yes_branch": yes, "question": pd.Series(question, dtype="str"), "n": n, "wins": wins,
                         "win_rate": np.where(n > 0, wins / np.maximum(n, 1), np.nan), "x": x})


# -------------------------------------------------------------------------------------------------- 6. targets

def score_open(model: TreeModel, rules: pd.DataFrame, open_frame: pd.DataFrame, *, id_col: str = "opportunity_id",
               boosted: BoostedModel | None = None, uplift: UpliftModel | None = None,
               next_actions: Mapping[str, str] | None = None,
               driver_words: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The open deals, best first: ``targets.csv``.

    Parameters
    ----------
    model : TreeModel
        The tree that gives each deal its rule and segment (normally refitted on every closed deal).
    rules : DataFrame
        :func:`tree_rules` of ``model`` on its training rows: each leaf's ``rule`` and ``win_rate``.
    open_frame : DataFrame
        The open deals, with ``id_col`` and the models' input columns (``crm_stage`` used when present).
    id_col : str, default "opportunity_id"
    boosted : BoostedModel, optional
        The model whose calibrated chances order the list, and whose drivers are named for the first
        :data:`DRIVER_ROWS` deals. Without it the list is the tree's alone (ordered by the leaf's win rate).
    uplift : UpliftModel, optional
        The uplift model of an experiment on the deals: each deal's expected change from the action (``uplift``),
        and ``action_helps`` where it is at least the held-out top tenth's and the model passed its check.
    next_actions : mapping, optional
        Stage -> the action to take (text given by the caller, in the report language).
    driver_words : mapping, optional
        :func:`~funnel_lab.analysis.boosting.drivers_text`'s ``words``.

    Returns
    -------
    DataFrame
        ``opportunity_id, probability, rank, rule, drivers, segment_win_rate, uplift, action_helps, leaf, stage,
        next_action``, sorted by
        rank. ``probability`` is the boosted model's calibrated chance (without it, the leaf's win rate);
        ``segment_win_rate`` the training win rate of the deal's leaf, whose ``rule`` says which segment it is in
        (the leaf's observed win rate, not the tree's ``predict_proba``, which ``class_weight="balanced"`` inflates
        towards the rarer outcome). ``rank`` 1..n: highest probability first, ties broken by ``opportunity_id``.
        ``drivers``: the columns that raise or lower the deal's chance most (""  below the first
        :data:`DRIVER_ROWS` deals and without ``boosted``); ``uplift`` NaN and ``action_helps`` False without an
        uplift model. ``stage`` is ``crm_stage`` (empty when absent);
        ``next_action`` the action mapped to it ("" when unmapped).
    """
    if id_col not in open_frame.columns:
        raise ParamsError(f"score_open: no id column '{id_col}'{did_you_mean(id_col, list(map(str, open_frame)))}")
    leaves = leaf_of(model, open_frame).to_numpy()
    by_leaf = rules.set_index("leaf")
    segment_rate = pd.Series(leaves).map(by_leaf["win_rate"]).astype("float64").to_numpy()
    prob = segment_rate if boosted is None else boosted.predict_probability(open_frame).to_numpy()
    stage = (open_frame["crm_stage"].astype("str") if "crm_stage" in open_frame.columns
             else pd.Series(np.nan, index=open_frame.index, dtype="str"))
    actions = {str(k): str(v) for k, v in (next_actions or {}).items()}
    out = pd.DataFrame({
        "opportunity_id": open_frame[id_col].astype("str").to_numpy(),
        "probability": prob,
        "rule": pd.Series(leaves).map(by_leaf["rule"]).astype("str").to_numpy(),
        "drivers": "",
        "segment_win_rate": segment_rate,
        "uplift": np.nan if uplift is None else uplift.predict_uplift(open_frame).to_numpy(),
        "action_helps": False,
        "leaf": leaves.astype("int64"),
        "stage": stage.to_numpy(),
        "next_action": [actions.get(s, "") if isinstance(s, str) else "" for s in stage.to_numpy()],
        "_row": np.arange(len(open_frame)),
    })
    out = out.sort_values(["probability", "opportunity_id"], ascending=[False, True], na_position="last",
                          kind="stable").reset_index(drop=True)
    out.insert(2, "rank", np.arange(1, len(out) + 1, dtype="int64"))
    if uplift is not None and uplift.validated:
        out["action_helps"] = (out["uplift"] >= uplift.threshold).to_numpy()
    if boosted is not None and len(out):
        top = out["_row"].to_numpy()[:DRIVER_ROWS]
        explained = open_frame.iloc[top][boosted.input_columns].reset_index(drop=True)
        text = drivers_text(score_drivers(boosted, explained), explained, words=driver_words)
        out.loc[: len(top) - 1, "drivers"] = text.to_numpy()
    return out.drop(columns="_row").astype({"stage": "str", "next_action": "str", "rule": "str", "drivers": "str"})


# -------------------------------------------------------------------------------------------------- 7. metrics

def _json_number(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def targeting_metrics(evaluations: Mapping[str, dict], boosted: BoostedModel, tree: TreeModel, *,
                      top_n: int) -> dict:
    """``targeting_metrics.json``: JSON-native numbers (NaN as null).

    Parameters
    ----------
    evaluations : mapping
        :func:`evaluate_lists` of :data:`LISTS` (fitted on the training split) on the test split.
    boosted : BoostedModel
        The model that orders the list (its inputs are ``features_used``).
    tree : TreeModel
        The tree that gives the rules (its splits give ``tree_features_used``).
    top_n : int
        The call-list size asked for (``targeting.top_n``).

    Returns
    -------
    dict
        The list's (the boosted model's) held-out ``auc``, ``lift_at_10pct``, ``precision_at_top_n``,
        ``features_used`` (the columns it reads), ``pr_auc``, ``lift_low`` / ``lift_high``, ``brier``,
        ``distinct_top_n`` (distinct chances among its top N on the test split); ``tree_*`` and ``baseline_*``:
        the same measures of the tree alone and of the logistic baseline; ``list`` ("boosted"), ``base_rate``,
        ``cv_auc`` ({mean, sd}) and ``best_params`` ({max_depth, n_iter}) of the boosted search, ``tree_cv_auc``,
        ``tree_best_params``, ``tree_features_used``, ``leaves``; ``n_train`` (training rows), ``n_test``,
        ``n_fit`` (closed deals the final models were fitted on), ``top_n`` (asked for), ``top_n_test`` (the N
        used on the test split).
    """
    e = evaluations["boosted"]
    keys = ("auc", "pr_auc", "lift_at_10pct", "lift_low", "lift_high", "precision_at_top_n", "brier")
    out = {"auc": _json_number(e["auc"]), "lift_at_10pct": _json_number(e["lift_at_10pct"]),
           "precision_at_top_n": _json_number(e["precision_at_top_n"]), "features_used": list(boosted.input_columns),
           "list": "boosted", **{k: _json_number(e[k]) for k in ("pr_auc", "lift_low", "lift_high", "brier",
                                                                  "distinct_top_n")}}
    for name in ("tree", "baseline"):
        out.update({f"{name}_{k}": _json_number(evaluations[name][k]) for k in keys})
    return {**out, "base_rate": _json_number(e["base_rate"]),
            "cv_auc": {k: _json_number(v) for k, v in boosted.cv_auc.items()},
            "best_params": {k: _json_number(v) for k, v in boosted.best_params.items()},
            "tree_cv_auc": {k: _json_number(v) for k, v in tree.cv_auc.items()},
            "tree_best_params": {k: _json_number(v) for k, v in tree.best_params.items()},
            "tree_features_used": tree.features_used(), "leaves": int(tree.tree.get_n_leaves()),
            "n_train": _json_number(e.get("n_train")), "n_test": _json_number(e["n_test"]),
            "n_fit": int(tree.n_train), "top_n": int(top_n), "top_n_test": _json_number(e["top_n"])}


# ---------------------------------------------------------------------------- 8. checked against what closed later

#: Share of closed deals (by close date) the time-ordered check trains on; the pipeline open at that date is scored.
TIME_TRAIN_SHARE = 0.7
#: The dates :func:`time_ordered_check` reads besides the model's inputs.
TIME_COLUMNS = ("closed_at", "created_at")
#: Fewest deals open at the cut-off and closed since for the time-ordered check to be reported.
MIN_LATER_CLOSED = 30


def time_ordered_check(closed: pd.DataFrame, y, features: Sequence[str], *, max_depth: int = 4, top_n: int = 200,
                       seed: int = 0, train_share: float = TIME_TRAIN_SHARE,
                       boosted_depth: int | None = None) -> dict:
    """Train only on deals closed by a past date, rank the deals open on that date, and score the ranking by how
    those deals actually closed since.

    The random hold-out of :func:`run_targeting` asks "does the list order deals it has not seen"; this asks the
    question a sales team cares about: had we used the list back then, would its top have held the deals that went
    on to win? Training rows and checked rows are separated in time, so a pattern that only held in the past (or a
    field filled in as deals close) shows up as a weak check.

    Parameters
    ----------
    closed : DataFrame
        The closed deals with ``closed_at`` and, if known, ``created_at`` (rows aligned with ``y``).
    y : array-like of 0/1
        Won (1) or lost (0) per row of ``closed``.
    features : sequence of str
        The models' input columns.
    max_depth, top_n, seed
        As for :func:`run_targeting`; the tree is tuned again on the training rows only.
    train_share : float, default 0.7
        The cut-off is the date by which this share of the closed deals had closed.
    boosted_depth : int, optional
        The boosted trees' depth (:func:`run_targeting` passes the one its hold-out search chose); searched again
        on the training rows when not given.

    Returns
    -------
    dict
        ``status``: ``"ok"`` or the reason it could not be run (``"no_dates"``, ``"too_few_before"``,
        ``"too_few_after"``). With ``"ok"``: ``cutoff`` (Timestamp), ``n_train``, ``n_checked`` (deals open at the
        cut-off that have closed since; without ``created_at``: every deal closed after it), ``wins_checked``,
        ``lists`` (:func:`evaluate_lists` of the boosted list, the tree and the baseline on the checked deals) and
        the boosted list's :func:`evaluate` keys at the top level, with ``tree_auc`` and ``baseline_auc``.
    """
    y = outcome01(y)
    if "closed_at" not in closed.columns or closed["closed_at"].isna().all():
        return {"status": "no_dates"}
    closed_at = pd.to_datetime(closed["closed_at"]).reset_index(drop=True)
    known = closed_at.notna().to_numpy()
    cutoff = closed_at[known].sort_values(kind="stable").iloc[int(train_share * known.sum()) - 1]
    before = known & (closed_at <= cutoff).to_numpy()
    after = known & (closed_at > cutoff).to_numpy()
    if "created_at" in closed.columns:  # the pipeline as it stood at the cut-off: created by then, still open
        created = pd.to_datetime(closed["created_at"]).reset_index(drop=True)
        after &= ~(created > cutoff).to_numpy()
    out: dict[str, Any] = {"cutoff": cutoff, "n_train": int(before.sum()), "n_checked": int(after.sum())}
    y_before, y_after = y[before], y[after]
    if not _enough_to_learn(int(before.sum()), int(y_before.sum())):
        return {"status": "too_few_before", **out}
    if after.sum() < MIN_LATER_CLOSED or y_after.sum() in (0, len(y_after)):
        return {"status": "too_few_after", **out}
    X = closed[list(features)].reset_index(drop=True)
    X_before, X_after = X[before].reset_index(drop=True), X[after].reset_index(drop=True)
    models = {"boosted": fit_boosted(X_before, y_before, seed=seed, max_depth=boosted_depth),
              "tree": fit_tree(X_before, y_before, max_depth=max_depth, seed=seed),
              "baseline": fit_baseline(X_before, y_before, seed)}
    lists = evaluate_lists(models, X_after, y_after, top_n=top_n)
    return {"status": "ok", **out, "wins_checked": int(y_after.sum()), **lists["boosted"], "lists": lists,
            "tree_auc": lists["tree"]["auc"], "baseline_auc": lists["baseline"]["auc"]}


def _later_check_json(check: dict) -> dict:
    keys = ("n_train", "n_checked", "auc", "tree_auc", "baseline_auc", "lift_at_10pct", "lift_low", "lift_high",
            "precision_at_top_n", "top_n", "base_rate")
    out = {"status": check["status"], **{k: _json_number(check[k]) for k in keys if k in check}}
    if "cutoff" in check:
        out["cutoff"] = pd.Timestamp(check["cutoff"]).strftime("%Y-%m-%d")
    return out


# ---------------------------------------------------------------------------------------------- 9. the whole run

@dataclass(repr=False)
class TargetingResult(Result):
    """Everything the targeting report shows, from one :func:`run_targeting`.

    Attributes
    ----------
    candidates : DataFrame
        ``column, reason`` of the columns left out before modelling (:func:`candidate_features`).
    leakage : DataFrame
        :func:`leakage_scan` of the candidates, plus ``removed`` (bool: flagged and not in ``allow``).
    features : list of str
        The input columns of the models (candidates minus the removed leakage).
    boosted : BoostedModel
        The boosted trees refitted on every closed deal (above ``FIT_ROWS`` training deals, the hold-out's, already
        fitted on as many as a refit would take): their calibrated chances order :attr:`targets`.
    model : TreeModel
        The tuned tree refitted on every closed deal: each deal's rule and segment.
    holdout_boosted, holdout_model, baseline
        The boosted trees, the tree and the logistic baseline fitted on the training split only: the lists
        :attr:`evaluations` measures.
    evaluations : dict
        :func:`evaluate_lists` of the three on the test split (``boosted``, ``tree``, ``baseline``).
    evaluation : dict
        ``evaluations["boosted"]``: the list's own measures.
    comparison : DataFrame
        :func:`list_comparison` of the hold-out and the time-ordered check.
    rules : DataFrame
        :func:`tree_rules` of ``model`` on every closed deal.
    nodes : DataFrame
        :func:`tree_nodes` of ``model`` on every closed deal (for the drawing).
    targets : DataFrame
        :func:`score_open` of the open deals.
    metrics : dict
        :func:`targeting_metrics`, with ``later_check`` (the time-ordered check's numbers).
    later_check : dict
        :func:`time_ordered_check`.
    uplift : UpliftModel or None
        Who the experiment's action helps (:func:`~funnel_lab.analysis.uplift.fit_uplift`), when the params carry
        an A/B test whose units are the deals.
    uplift_check : dict
        ``status`` (``ok``, ``no_experiment``, ``not_deals``: under half of its units are deals, ``not_two_arms``,
        ``too_few``) and the counts of :func:`~funnel_lab.analysis.uplift.experiment_deals`.
    n_closed, n_open : int
    """

    candidates: pd.DataFrame
    leakage: pd.DataFrame
    features: list[str]
    boosted: BoostedModel
    model: TreeModel
    holdout_boosted: BoostedModel
    holdout_model: TreeModel
    baseline: Pipeline
    evaluations: dict
    comparison: pd.DataFrame
    rules: pd.DataFrame
    nodes: pd.DataFrame
    targets: pd.DataFrame
    metrics: dict
    later_check: dict
    n_closed: int
    n_open: int
    uplift: UpliftModel | None = None
    uplift_check: dict = field(default_factory=lambda: {"status": "no_experiment"})
    title = "targeting"

    @property
    def evaluation(self) -> dict:
        return self.evaluations["boosted"]

    @property
    def summary(self) -> pd.DataFrame:
        """The lists side by side: each measure of the boosted list, the tree alone and the logistic baseline, on
        the held-out deals and on the deals that closed after the time-ordered check's cut-off."""
        return self.comparison

    @property
    def outputs(self) -> dict[str, pd.DataFrame | dict]:
        """``targets.csv`` (DESIGN's columns first), ``targeting_metrics.json``, the leaf rules, the leakage scan
        and the comparison of the lists."""
        return {"targets.csv": self.targets, "targeting_metrics.json": self.metrics,
                "targeting_rules.csv": self.rules, "targeting_leakage.csv": self.leakage,
                "targeting_comparison.csv": self.comparison}


def _open_rows(opportunities: pd.DataFrame, outcome: str) -> pd.DataFrame:
    if outcome == "won" and "status" in opportunities.columns:
        return opportunities[opportunities["status"].astype("str").eq("open").fillna(False).to_numpy(dtype=bool)]
    col = outcome if outcome in opportunities.columns else "won"
    return opportunities[opportunities[col].isna().to_numpy(dtype=bool)]


def run_targeting(opportunities: pd.DataFrame, *, outcome: str = "won", features: Sequence[str] = (),
                  exclude: Sequence[str] = (), drop_columns: Sequence[str] = (), allow: Sequence[str] = (),
                  max_depth: int = 4, top_n: int = 200, seed: int = 0, test_share: float = 0.25,
                  next_actions: Mapping[str, str] | None = None, rule_words: Mapping[str, str] | None = None,
                  driver_words: Mapping[str, str] | None = None, experiment: pd.DataFrame | None = None,
                  control: str | None = None, treatment: str | None = None) -> TargetingResult:
    """Candidates -> leakage guard -> stratified split -> boosted trees, tuned tree and baseline -> the three
    lists measured on the test split -> boosted trees and tree refitted on all closed deals -> rules -> open deals
    ranked by the boosted chance, each with its rule and drivers -> the time-ordered check.

    Parameters
    ----------
    opportunities : DataFrame
        The cleaned opportunities.
    outcome, features, exclude, max_depth, top_n
        The ``targeting:`` params block.
    drop_columns : sequence of str
        ``cleaning.drop_columns``.
    allow : sequence of str
        Columns kept even when the leakage scan flags them (after checking that they are known before the
        outcome).
    seed : int, default 0
        Seed of the split, the folds and the trees.
    test_share : float, default 0.25
        Share of closed deals held out for the test metrics.
    next_actions : mapping, optional
        Stage -> action text for the target list.
    rule_words : mapping, optional
        :func:`tree_rules`'s ``words`` (the report's language).
    driver_words : mapping, optional
        :func:`~funnel_lab.analysis.boosting.drivers_text`'s ``words`` (the report's language).
    experiment : DataFrame, optional
        An A/B test's units, one row each (``unit_id``, ``variant``, ``converted``: ``clean_assignment``'s
        ``units``). When most of its units are deals and it has two arms, an uplift model says which open deals
        the action is expected to change (``uplift``, ``action_helps`` in the list).
    control, treatment : str, optional
        The experiment's two variants.

    Returns
    -------
    TargetingResult

    Raises
    ------
    ParamsError
        Fewer than 50 closed deals, fewer than 10 of either outcome, an unknown column in ``features`` /
        ``exclude``, or no usable column left.

    Examples
    --------
    >>> t = ctx.params.targeting  # doctest: +SKIP
    >>> res = run_targeting(ctx.opportunities, outcome=t.outcome, features=t.features, exclude=t.exclude,
    ...                     max_depth=t.max_depth, top_n=t.top_n)  # doctest: +SKIP
    >>> res.metrics["auc"], res.targets.head()  # doctest: +SKIP
    """
    # analysis_frame turns yes/no flags into 0/1 numbers; the model takes the cleaned columns as they are (so a
    # flag reads "demo = yes" in the rules), and only the rows and the outcome come from analysis_frame
    opportunities = opportunities.reset_index(drop=True)
    known = _known_outcome(opportunities, outcome)
    rows, y = known.index, known.to_numpy(dtype=int)
    wins, n_closed = int(y.sum()), len(y)
    if not _enough_to_learn(n_closed, wins):
        raise ParamsError(
            f"targeting: {n_closed} closed deals with a known '{outcome}'; at least {MIN_CLOSED} are needed to fit "
            f"and test a tree" if n_closed < MIN_CLOSED else
            f"targeting: {wins} won and {n_closed - wins} lost of {n_closed} closed deals; at least {MIN_PER_CLASS} "
            f"of each are needed (a model of one outcome ranks nothing)")
    open_frame = _open_rows(opportunities, outcome)
    cols, left_out = candidate_features(opportunities, outcome=outcome, features=features, exclude=exclude,
                                        drop_columns=drop_columns)
    closed = opportunities.loc[rows, [c for c in opportunities.columns if c in cols or c in TIME_COLUMNS]]
    leak = leakage_scan(closed, y, cols, open_frame=open_frame, seed=seed)
    leak = leak.assign(removed=leak["flagged"] & ~leak["column"].isin(list(allow)))
    removed = set(leak.loc[leak["removed"], "column"])
    used = [c for c in cols if c not in removed]
    if not used:
        raise ParamsError("targeting: no usable column left after the candidate checks and the leakage guard "
                         "(see the candidates and leakage tables; `allow` keeps a flagged column)")
    X, y_s = closed[used].reset_index(drop=True), pd.Series(y)
    X_train, X_test, y_train, y_test = train_test_split(X, y_s, test_size=test_share, stratify=y,
                                                        random_state=seed)
    holdout = {"boosted": fit_boosted(X_train, y_train, seed=seed),
               "tree": fit_tree(X_train, y_train, max_depth=max_depth, seed=seed),
               "baseline": fit_baseline(X_train, y_train, seed)}
    evaluations = evaluate_lists(holdout, X_test, y_test, top_n=top_n)
    boosted = refit_boosted(holdout["boosted"], X, y, seed=seed)
    final = _refit(holdout["tree"], X, y, seed=seed)
    rules = tree_rules(final, X, y, words=rule_words)
    uplift, uplift_check = _uplift(experiment, opportunities, used, control=control, treatment=treatment, seed=seed)
    targets = score_open(final, rules, open_frame, boosted=boosted, uplift=uplift, next_actions=next_actions,
                         driver_words=driver_words)
    later = time_ordered_check(closed, y, used, max_depth=max_depth, top_n=top_n, seed=seed,
                               boosted_depth=holdout["boosted"].best_params["max_depth"])
    checks = {"holdout": evaluations, **({"later": later["lists"]} if later["status"] == "ok" else {})}
    metrics = {**targeting_metrics(evaluations, boosted, final, top_n=top_n), "later_check": _later_check_json(later),
               "uplift": _uplift_json(uplift_check, uplift, targets)}
    return TargetingResult(candidates=left_out, leakage=leak, features=used, boosted=boosted, model=final,
                           holdout_boosted=holdout["boosted"], holdout_model=holdout["tree"],
                           baseline=holdout["baseline"], evaluations=evaluations,
                           comparison=list_comparison(checks), rules=rules,
                           nodes=tree_nodes(final, X, y, words=rule_words),
                           targets=targets, metrics=metrics, later_check=later, n_closed=n_closed,
                           n_open=len(open_frame), uplift=uplift, uplift_check=uplift_check)


def _uplift(experiment: pd.DataFrame | None, opportunities: pd.DataFrame, features: Sequence[str], *,
            control: str | None, treatment: str | None, seed: int) -> tuple[UpliftModel | None, dict]:
    """The uplift model of an experiment on the deals, or None with the reason (``uplift_check``)."""
    if experiment is None or control is None:
        return None, {"status": "no_experiment"}
    if treatment is None:
        return None, {"status": "not_two_arms"}
    frame, counts = experiment_deals(experiment, opportunities, features, control=control, treatment=treatment)
    if counts["matched"] < 0.5 * counts["units"]:
        return None, {"status": "not_deals", **counts}
    if not enough_units(frame):
        return None, {"status": "too_few", **counts}
    return fit_uplift(frame, features, seed=seed), {"status": "ok", **counts, "control": control,
                                                    "treatment": treatment}


def _uplift_json(check: dict, model: UpliftModel | None, targets: pd.DataFrame) -> dict:
    out = {k: (v if isinstance(v, str) else _json_number(v)) for k, v in check.items()}
    if model is not None:
        h = model.holdout
        out.update({"validated": model.validated, "holdout_units": h["n"], "qini_area": _json_number(h["qini_area"]),
                    "overall": {k: _json_number(v) for k, v in h["overall"].items()},
                    "top_tenth": {k: _json_number(v) for k, v in h["top_tenth"].items()},
                    "marked": int(targets["action_helps"].sum())})
    return out


def _known_outcome(opportunities: pd.DataFrame, outcome: str) -> pd.Series:
    """The outcome of the rows where it is known (closed deals for ``won``), indexed like ``opportunities``."""
    # only the columns that define the outcome: analysis_frame copies (and converts) every column it is given
    return analysis_frame(opportunities[[c for c in dict.fromkeys(("status", "won", outcome))
                                         if c in opportunities.columns]], outcome).data[outcome]


def enough_outcomes(opportunities: pd.DataFrame, outcome: str) -> bool:
    """Whether :func:`run_targeting` has closed deals of both outcomes to learn from: the rows and the thresholds
    (:data:`MIN_CLOSED`, :data:`MIN_PER_CLASS`) it uses for ``outcome``.

    Raises
    ------
    ParamsError
        ``targeting.outcome`` names no column, or one that is not 0/1.
    """
    try:
        y = _known_outcome(opportunities, outcome)
    except ParamsError as e:
        raise ParamsError(f"targeting.{e}") from None
    if not y.isin([0, 1]).all():
        odd = sorted({str(v) for v in y[~y.isin([0, 1])]})[:5]
        raise ParamsError(f"targeting.outcome: the column '{outcome}' must hold 0/1 or yes/no; found {', '.join(odd)}")
    return _enough_to_learn(len(y), int((y == 1).sum()))


def analyse_targeting(p) -> TargetingResult:
    """:func:`run_targeting` with a pipeline's ``targeting:`` params, its rules worded in the report language."""
    from ..i18n import t

    c = p.params.targeting
    enough_outcomes(p.opportunities, c.outcome)  # an outcome that is no 0/1 column is named as the params key
    experiment = control = treatment = None
    if p.params.data.experiment is not None:
        from .abtest import choose_control, clean_assignment

        experiment = clean_assignment(p.cleaned_table("experiment").data).units
        variants = sorted(map(str, experiment["variant"].dropna().unique()))
        control = choose_control(variants, p.params.ab_test.control)
        others = [v for v in variants if v != control]
        treatment = others[0] if len(others) == 1 else None
    return run_targeting(p.opportunities, outcome=c.outcome, features=c.features, exclude=c.exclude,
                         drop_columns=p.params.cleaning.drop_columns, allow=c.allow, max_depth=c.max_depth,
                         top_n=c.top_n, seed=c.seed, next_actions=c.next_actions,
                         rule_words={k: t(f"tg.rule.{k}", p.params.language) for k in RULE_WORDS},
                         driver_words={k: t(f"tg.{'rule' if k in RULE_WORDS else 'driver'}.{k}", p.params.language)
                                       for k in DRIVER_WORDS},
                         experiment=experiment, control=control, treatment=treatment)
