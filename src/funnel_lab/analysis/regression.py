"""What drives the outcome: whitelisted formulas, statsmodels fits (logit, OLS), tidy tables and readings.

Formulas come from a params file that may not be trusted, and patsy evaluates formula terms as Python code. So a
formula is parsed here with :mod:`ast` and checked against a short whitelist *before* patsy sees it, and patsy only
ever receives the formula re-rendered from the checked tree, with ``np`` as its only name.

Formula language (anything else is a ``ParamsError`` naming the offending fragment)

- ``outcome ~ rhs``: exactly one ``~``; the outcome is a plain column name and may not appear on the right;
- terms joined by ``+``: a column name (a text column is treated as categorical, reference = first level in sorted
  order), ``C(col)``, ``C(col, Treatment(reference='x'))`` (or ``Treatment('x')``), ``np.log(col)``,
  ``np.log1p(col)``, ``I(col ** 2)`` / ``I(col ** 3)``;
- the intercept: ``- 1`` or ``+ 0`` drop it, ``+ 1`` keeps it (the default; ``- 0`` is refused as obscure);
- names starting with ``__`` are refused; no other calls, attribute access, operators (``*``, ``:``, ``/``, ``**``
  outside ``I()``), lambdas, subscripts or literals.

Rows with a missing value in any column a fit uses are left out and counted; so are rows outside a transform's
domain (``np.log``: value <= 0; ``np.log1p``: value <= -1). Separation, non-convergence and too few events or
clusters never raise: they are returned as problem records (``{"code": ..., numbers...}``) for the report layer
to put into words.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError, PerfectSeparationWarning

from ..errors import ParamsError, did_you_mean
from ..result import Result

__all__ = ["AnalysisFrame", "COEFFICIENT_COLUMNS", "LinearFit", "LogitFit", "analysis_frame", "calibration_by_decile",
           "check_formula", "coefficients_csv", "fit_linear", "fit_logit", "holdout_auc", "strongest_drivers",
           "vif_table"]

#: ``regression_coefficients.csv``'s leading columns (DESIGN.md).
COEFFICIENT_COLUMNS = ["term", "coef", "std_err", "p_value", "ci_low", "ci_high", "odds_ratio"]
#: Longest formula accepted (characters).
MAX_FORMULA_LENGTH = 2_000
#: The ``np.<name>(col)`` transforms allowed -> the bound a value must exceed to be inside the domain.
TRANSFORMS = {"log": 0.0, "log1p": -1.0}
#: Powers allowed inside ``I(col ** k)``.
POWERS = (2, 3)
#: Below these the report warns: events (the rarer outcome) per estimated term, and clusters.
MIN_EVENTS_PER_TERM = 10
MIN_CLUSTERS = 20
#: A fitted logit coefficient this large with a standard error this large means the likelihood has no maximum in
#: that direction (separation that the one-term data checks did not see, e.g. two terms separating jointly).
HUGE_COEF = 10.0
HUGE_STD_ERR = 100.0

_ALLOWED = ("allowed: column names, C(col), C(col, Treatment(reference='x')), np.log(col), np.log1p(col), "
            "I(col ** 2), '- 1', '+ 0'")
_META_COLUMNS = ["variable", "level", "transform", "note"]


# ----------------------------------------------------------------------------------------------- formula whitelist

@dataclass(frozen=True)
class _Term:
    code: str  # the canonical text handed to patsy
    variable: str
    transform: str  # "" | "categorical" | "log" | "log1p" | "power2" | "power3"
    reference: Any = None


@dataclass(frozen=True)
class _Formula:
    outcome: str
    terms: tuple[_Term, ...]
    intercept: bool

    @property
    def variables(self) -> list[str]:
        return list(dict.fromkeys([self.outcome, *(t.variable for t in self.terms)]))

    @property
    def rhs(self) -> str:
        parts = [t.code for t in self.terms]
        if not parts:
            return "1" if self.intercept else "0"
        return " + ".join(parts) + ("" if self.intercept else " - 1")


def _refuse(fragment: str, why: str = _ALLOWED) -> ParamsError:
    return ParamsError(f"formula: '{fragment}' is not allowed ({why})")


def _name(node: ast.AST, fragment: str) -> str:
    if not isinstance(node, ast.Name):
        raise _refuse(fragment)
    if node.id.startswith("__"):
        raise _refuse(fragment, "names starting with '__' are refused")
    return node.id


def _constant(node: ast.AST, fragment: str) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float):
        return node.value
    raise _refuse(fragment, "a reference level must be a string or number literal")


def _parse_term(node: ast.AST, text: str) -> _Term:
    frag = ast.get_source_segment(text, node) or ast.unparse(node)
    if isinstance(node, ast.Name):
        name = _name(node, frag)
        return _Term(name, name, "")
    if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
        raise _refuse(frag)
    func, args, kws = node.func, node.args, node.keywords
    if isinstance(func, ast.Name) and func.id == "C" and 1 <= len(args) <= 2 and not kws:
        name = _name(args[0], frag)
        if len(args) == 1:
            return _Term(f"C({name})", name, "categorical")
        contrast = args[1]
        if not (isinstance(contrast, ast.Call) and isinstance(contrast.func, ast.Name)
                and contrast.func.id == "Treatment"):
            raise _refuse(frag, "the only contrast allowed is Treatment(reference='x')")
        if len(contrast.args) == 1 and not contrast.keywords:
            ref = _constant(contrast.args[0], frag)
        elif not contrast.args and len(contrast.keywords) == 1 and contrast.keywords[0].arg == "reference":
            ref = _constant(contrast.keywords[0].value, frag)
        else:
            raise _refuse(frag, "the only contrast allowed is Treatment(reference='x')")
        return _Term(f"C({name}, Treatment(reference={ref!r}))", name, "categorical", ref)
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"
            and func.attr in TRANSFORMS and len(args) == 1 and not kws):
        name = _name(args[0], frag)
        return _Term(f"np.{func.attr}({name})", name, func.attr)
    if isinstance(func, ast.Name) and func.id == "I" and len(args) == 1 and not kws:
        inner = args[0]
        if (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Pow) and isinstance(inner.right, ast.Constant)
                and type(inner.right.value) is int and inner.right.value in POWERS):
            name = _name(inner.left, frag)
            return _Term(f"I({name} ** {inner.right.value})", name, f"power{inner.right.value}")
    raise _refuse(frag)


def _parse_formula(formula: str) -> _Formula:
    """The checked formula; nothing is evaluated."""
    if not isinstance(formula, str) or not formula.strip():
        raise ParamsError("formula: expected text such as 'won ~ meetings + C(source)'")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise ParamsError(f"formula: longer than {MAX_FORMULA_LENGTH} characters")
    if formula.count("~") != 1:
        raise ParamsError(f"formula: '{formula}' needs exactly one '~' (outcome ~ terms)")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs.isidentifier():
        raise _refuse(lhs, "the left of '~' must be one column name")
    if lhs.startswith("__"):
        raise _refuse(lhs, "names starting with '__' are refused")
    try:
        tree = ast.parse(rhs, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refuse(rhs) from None
    # flattened without recursion: a long chain of '+' is a deep tree
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    items: list[tuple[ast.AST, int]] = []
    while stack:
        node, sign = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            stack.append((node.right, 1 if isinstance(node.op, ast.Add) else -1))
            stack.append((node.left, sign))
        else:
            items.append((node, sign))
    terms: dict[str, _Term] = {}
    intercept = True
    for node, sign in items:
        frag = ast.get_source_segment(rhs, node) or ast.unparse(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node, sign = node.operand, -sign
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in (0, 1):
            # patsy's intercept algebra: '+1' keeps, '-1' and '+0' drop; '-0' would add it back, refused as obscure
            if (sign, node.value) == (-1, 0):
                raise _refuse("- 0", "use '+ 1' to keep the intercept")
            intercept = sign == 1 and node.value == 1
            continue
        if sign == -1:
            raise _refuse(f"- {frag}", "only '- 1' may be subtracted")
        term = _parse_term(node, rhs)
        if term.variable == lhs:
            raise ParamsError(f"formula: the outcome '{lhs}' also appears on the right of '~' ('{frag}')")
        terms.setdefault(term.code, term)
    if not terms and not intercept:
        raise ParamsError(f"formula: '{formula}' has no terms and no intercept")
    return _Formula(lhs, tuple(terms.values()), intercept)


def check_formula(formula: str, columns) -> list[str]:
    """Check an untrusted formula against the whitelist (module docstring) and the available columns.

    Parameters
    ----------
    formula : str
        E.g. ``"won ~ meetings + np.log1p(visits) + C(source, Treatment(reference='Web'))"``.
    columns : iterable of str
        The columns of the frame the formula will be fitted on.

    Returns
    -------
    list of str
        The columns used: the outcome first, then the right-hand side's in order of appearance, each once.

    Raises
    ------
    ParamsError
        Naming the refused fragment, or an unknown column with a did-you-mean.

    Examples
    --------
    >>> check_formula("won ~ meetings + C(source)", ["won", "meetings", "source"])
    ['won', 'meetings', 'source']
    """
    parsed = _parse_formula(formula)
    choices = [str(c) for c in columns]
    for name in parsed.variables:
        if name not in choices:
            raise ParamsError(f"formula: unknown column '{name}'{did_you_mean(name, choices)}")
    return parsed.variables


# ------------------------------------------------------------------------------------------------- frames

def _plain(values: pd.Series) -> pd.Series:
    """Nullable booleans/integers as numpy numbers (0/1 for booleans), which patsy and statsmodels take as numbers."""
    dtype = values.dtype
    if dtype == object:
        known = values.dropna()
        if len(known) and known.map(type).isin([bool, np.bool_]).all():
            values = values.astype("boolean")
            dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) or (
            pd.api.types.is_float_dtype(dtype) and isinstance(dtype, pd.api.extensions.ExtensionDtype)):
        if values.isna().any():
            return values.astype("float64")
        return values.astype("float64" if pd.api.types.is_float_dtype(dtype) else "int64")
    return values


@dataclass(frozen=True)
class AnalysisFrame:
    """The rows an outcome can be analysed on, and what was left out.

    Attributes
    ----------
    data : DataFrame
        The kept rows (original index), every column of the input; booleans and nullable integers as 0/1 / int64
        (float64 where values are missing); the outcome as int64 0/1 for ``won`` and ``converted``.
    outcome : str
    n_in : int
        Rows in the input.
    left_out : dict of str to int
        Reason code -> rows left out: ``open`` (an open deal has no outcome yet), ``status_missing`` (no status),
        ``outcome_missing`` (the outcome column is empty).
    """

    data: pd.DataFrame
    outcome: str
    n_in: int
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def n_left_out(self) -> int:
        return sum(self.left_out.values())


def analysis_frame(opportunities: pd.DataFrame, outcome: str = "won") -> AnalysisFrame:
    """The rows and columns an outcome model is fitted on.

    Parameters
    ----------
    opportunities : DataFrame
        The cleaned opportunities (or an experiment table for ``converted``).
    outcome : str, default "won"
        ``"won"``: closed deals only, ``won`` = 1 for won and 0 for lost, taken from ``status`` (or from ``won``
        when there is no status). ``"converted"``: rows where ``converted`` is present; it must be 0/1. Any other
        column: rows where it is present (e.g. ``amount`` for :func:`fit_linear`).

    Returns
    -------
    AnalysisFrame
        ``data`` (every input column; booleans as 0/1), ``outcome``, ``n_in`` and ``left_out`` (reason -> rows).

    Raises
    ------
    ParamsError
        The outcome column does not exist (with a did-you-mean), or ``converted`` is not 0/1.

    Examples
    --------
    >>> af = analysis_frame(ctx.opportunities, "won")  # doctest: +SKIP
    >>> af.n, af.left_out  # doctest: +SKIP
    (1302, {'open': 198})
    """
    df = opportunities
    left_out: dict[str, int] = {}
    if outcome == "won" and "status" in df.columns:
        status = df["status"].astype("str").where(df["status"].notna())
        closed = status.isin(["won", "lost"])
        open_ = status.eq("open")
        left_out = {"open": int(open_.sum()), "status_missing": int((~closed & ~open_).sum())}
        data = df[closed].assign(won=(status[closed] == "won").astype("int64"))
    else:
        if outcome not in df.columns:
            choices = [str(c) for c in df.columns]
            raise ParamsError(f"outcome: unknown column '{outcome}'{did_you_mean(outcome, choices)}")
        present = df[outcome].notna()
        left_out = {"outcome_missing": int((~present).sum())}
        data = df[present]
    data = data.apply(_plain)
    if outcome in ("won", "converted"):
        y = data[outcome]
        bad = ~y.isin([0, 1])
        if bad.any():
            raise ParamsError(f"outcome '{outcome}' must be 0/1; found {sorted(map(str, y[bad].unique()))[:5]}")
        data = data.assign(**{outcome: y.astype("int64")})
    return AnalysisFrame(data, outcome, len(df), {k: v for k, v in left_out.items() if v})


@dataclass(frozen=True)
class _Prepared:
    data: pd.DataFrame  # complete rows of the used columns
    n_dropped_missing: int
    n_dropped_nonpositive: int


def _prepare(frame: pd.DataFrame, parsed: _Formula, *, extra: tuple[str, ...] = (),
             positive_outcome: bool = False) -> _Prepared:
    """Complete rows of the used columns, inside every transform's domain, with reference levels checked."""
    choices = [str(c) for c in frame.columns]
    for name in [*parsed.variables, *extra]:
        if name not in choices:
            raise ParamsError(f"unknown column '{name}'{did_you_mean(name, choices)}")
    cols = list(dict.fromkeys([*parsed.variables, *extra]))
    sub = frame[cols].apply(_plain)
    complete = sub.notna().all(axis=1)
    sub = sub[complete]
    domain = pd.Series(True, index=sub.index)
    bounded = [(t.variable, TRANSFORMS[t.transform]) for t in parsed.terms if t.transform in TRANSFORMS]
    if positive_outcome:
        bounded.append((parsed.outcome, 0.0))
    for var in {t.variable for t in parsed.terms if t.transform.startswith(("log", "power"))} | (
            {parsed.outcome} if positive_outcome else set()):
        if not pd.api.types.is_numeric_dtype(sub[var]):
            raise ParamsError(f"column '{var}' is {sub[var].dtype}, not numbers: it cannot be transformed")
    for var, bound in bounded:
        domain &= sub[var] > bound
    sub = sub[domain]
    for var in {t.variable for t in parsed.terms}:
        if pd.api.types.is_string_dtype(sub[var].dtype) and not isinstance(sub[var].dtype, pd.CategoricalDtype):
            # patsy sniffs text cell by cell; a categorical of the levels present (sorted, patsy's own order) is
            # read at once and has no empty levels
            sub[var] = pd.Categorical(sub[var], categories=sorted(pd.unique(sub[var])))
    for term in parsed.terms:
        if term.reference is None:
            continue
        levels = pd.unique(sub[term.variable])
        if not any(lv == term.reference or str(lv) == str(term.reference) for lv in levels):
            raise ParamsError(f"formula: reference level {term.reference!r} not found in column '{term.variable}'"
                             f"{did_you_mean(str(term.reference), sorted(str(lv) for lv in levels))}")
    return _Prepared(sub, int((~complete).sum()), int((~domain).sum()))


def _design(data: pd.DataFrame, parsed: _Formula) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The design matrix of the right-hand side and, per column, its variable, level and transform."""
    try:
        # np is the only name patsy may look up besides the data and its own C/I/Treatment
        X = patsy.dmatrix(parsed.rhs, data, eval_env=patsy.EvalEnvironment([{"np": np}]), NA_action="raise",
                          return_type="dataframe")
    except patsy.PatsyError as err:
        raise ParamsError(f"formula: {parsed.rhs}: {err}") from None
    by_code = {t.code: t for t in parsed.terms}
    meta = {}
    info = X.design_info
    for term, span in info.term_slices.items():
        names = info.column_names[span]
        if not term.factors:
            meta.update({n: ("", "", "") for n in names})
            continue
        # re-parse patsy's normalised code of the (already checked) factor to find which of our terms it is
        found = _parse_term(ast.parse(term.factors[0].name(), mode="eval").body, term.factors[0].name())
        t = by_code.get(found.code, found)
        prefix = term.name()
        for n in names:
            level = n[len(prefix):] if n.startswith(prefix) else ""
            level = level.removeprefix("[T.").removeprefix("[").removesuffix("]")
            meta[n] = (t.variable, level, "categorical" if level else t.transform)
    info_frame = pd.DataFrame.from_dict(meta, orient="index", columns=["variable", "level", "transform"])
    info_frame.index.name = "term"
    return X, info_frame


def _independent(X: pd.DataFrame) -> list[str]:
    """Columns kept greedily in formula order while each adds rank: later duplicates and constants go."""
    if X.shape[1] == 0:
        return []
    # X[:, :k] = Q R[:, :k] with Q orthonormal, so the small R carries every rank we need (an SVD of the tall X
    # per candidate column is slow on big frames)
    r = np.linalg.qr(X.to_numpy(dtype=float), mode="r")
    tol = np.abs(np.linalg.svd(r, compute_uv=False)).max(initial=0.0) * max(X.shape) * np.finfo(float).eps
    kept: list[int] = []
    rank = 0
    for j in range(X.shape[1]):
        trial = np.linalg.matrix_rank(r[:, kept + [j]], tol=tol) if tol > 0 else 0
        if trial > rank:
            kept.append(j)
            rank = trial
    return [X.columns[j] for j in kept]


def _separating(X: pd.DataFrame, y: np.ndarray) -> list[tuple[str, str, np.ndarray | None]]:
    """Columns that alone predict the outcome: (column, "complete" | "quasi", rows whose outcome they fix)."""
    found = []
    for col in X.columns:
        if col == "Intercept":
            continue
        x = X[col].to_numpy(dtype=float)
        values = np.unique(x)
        if values.size < 2:
            continue
        if values.size == 2 and set(values) == {0.0, 1.0}:
            ones = x == 1.0
            fixed1, fixed0 = np.ptp(y[ones]) == 0, np.ptp(y[~ones]) == 0
            if fixed1 and fixed0:
                found.append((col, "complete", None))
            elif fixed1:
                found.append((col, "quasi", ones))
            elif fixed0:
                found.append((col, "quasi", ~ones))
        elif x[y == 0].max() < x[y == 1].min() or x[y == 1].max() < x[y == 0].min():
            found.append((col, "complete", None))
    return found


# -------------------------------------------------------------------------------------------------- logit

@dataclass
class LogitFit:
    """A fitted logit, as tables and numbers.

    Attributes
    ----------
    formula : str
        As given.
    outcome : str
    coefficients : DataFrame
        One row per design column: ``term``, ``coef``, ``std_err``, ``z``, ``p_value``, ``ci_low``, ``ci_high``,
        ``odds_ratio``, ``or_ci_low``, ``or_ci_high`` (exp of coef and of the CI), then ``variable`` (the data
        column), ``level`` (a categorical's level, else ""), ``transform`` ("", "categorical", "log", "log1p",
        "power2", "power3"), ``note`` ("" for estimated terms; "perfect_separation" or "collinear" for terms left
        out of the final fit, whose numbers are missing).
    marginal_effects : DataFrame
        Average marginal effects (``get_margeff(at="overall")``): ``term``, ``dydx``, ``std_err``, ``z``,
        ``p_value``, ``ci_low``, ``ci_high``.
    n, events : int
        Complete rows analysed (after missing and out-of-domain rows) and how many had outcome 1.
    n_fit, events_fit : int
        The same for the final fit: ``n`` minus rows set aside because a separating term fixed their outcome.
    n_dropped_missing, n_dropped_nonpositive, n_set_aside : int
        Rows left out: a used column (or the cluster) missing; outside a log's domain; fixed by separation.
    cov_type : str
        ``"cluster"`` or ``"nonrobust"``.
    n_clusters : int or None
        Clusters in the final fit when ``cov_type == "cluster"``.
    converged : bool
        The final fit's optimiser converged.
    problems : list of dict
        ``{"code": ...}`` plus numbers; codes: ``perfect_separation`` (``terms``, ``kind`` complete/quasi,
        ``detected_by`` data/fit, ``action`` refit_without_terms / refit_without_terms_and_rows / none,
        ``rows_set_aside``), ``collinear_terms`` (``terms``), ``not_converged`` (``iterations``, ``maxiter``),
        ``few_events_per_term`` (``events_per_term``, ``threshold``), ``cluster_too_few`` (``n_clusters``,
        ``threshold``), ``outcome_constant`` (``value``), ``fit_failed`` (``error``: the exception's class),
        ``no_rows`` (no complete row to fit).
    alpha : float
        Confidence intervals are ``1 - alpha``.
    result : statsmodels results or None
        The final fit (None when nothing could be fitted).
    """

    formula: str
    outcome: str
    coefficients: pd.DataFrame
    marginal_effects: pd.DataFrame
    n: int
    events: int
    n_fit: int
    events_fit: int
    n_dropped_missing: int
    n_dropped_nonpositive: int
    n_set_aside: int
    cov_type: str
    n_clusters: int | None
    converged: bool
    problems: list[dict]
    alpha: float
    result: Any = None


_LOGIT_COLUMNS = ["term", "coef", "std_err", "z", "p_value", "ci_low", "ci_high", "odds_ratio", "or_ci_low",
                  "or_ci_high"]
_MARGEFF_COLUMNS = ["term", "dydx", "std_err", "z", "p_value", "ci_low", "ci_high"]


def _outcome01(data: pd.DataFrame, outcome: str) -> np.ndarray:
    y = data[outcome]
    if not pd.api.types.is_numeric_dtype(y) or not y.isin([0, 1]).all():
        shown = sorted(map(str, pd.unique(y[~y.isin([0, 1])])))[:5] if pd.api.types.is_numeric_dtype(y) else [
            str(y.dtype)]
        raise ParamsError(f"outcome '{outcome}' must be 0/1 for a logit; found {shown}")
    return y.to_numpy(dtype=float)


def _fit_once(y, X, groups, maxiter) -> tuple[Any, set, str | None]:
    """One statsmodels fit; warnings collected, separation and singular matrices returned instead of raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if groups is not None else {}
            res = sm.Logit(y, X).fit(disp=0, maxiter=maxiter, **kw)
            error = None
        except PerfectSeparationError:
            res, error = None, "PerfectSeparationError"
        except (np.linalg.LinAlgError, ValueError) as err:
            res, error = None, type(err).__name__
    kinds = {w.category for w in caught}
    if error == "PerfectSeparationError":
        kinds.add(PerfectSeparationWarning)
    return res, kinds, error


def _coef_table(res, alpha: float, columns: list[str], stat: str) -> pd.DataFrame:
    ci = res.conf_int(alpha=alpha)
    return pd.DataFrame({
        "term": list(res.params.index), "coef": res.params.to_numpy(), "std_err": res.bse.to_numpy(),
        stat: res.tvalues.to_numpy(), "p_value": res.pvalues.to_numpy(), "ci_low": ci.iloc[:, 0].to_numpy(),
        "ci_high": ci.iloc[:, 1].to_numpy()})[columns[:7]]


def _with_meta(table: pd.DataFrame, meta: pd.DataFrame, all_terms: list[str], notes: dict[str, str]) -> pd.DataFrame:
    """Every design column in formula order (left-out ones with missing numbers and a note), then its metadata."""
    full = pd.DataFrame({"term": all_terms}).merge(table, on="term", how="left")
    full = full.join(meta[["variable", "level", "transform"]], on="term")
    full["note"] = pd.Series([notes.get(t, "") for t in full["term"]], index=full.index, dtype="str")
    return full


def fit_logit(frame: pd.DataFrame, formula: str, *, cluster: str | None = None, alpha: float = 0.05,
              maxiter: int = 100) -> LogitFit:
    """A logit of a 0/1 outcome, robust to separation and non-convergence.

    Steps: check the formula (:func:`check_formula`); keep complete rows of the used columns (and ``cluster``) inside
    the transforms' domain; build the design with patsy; drop collinear columns; find terms that alone predict the
    outcome and refit without them (a term whose rows with one value all share an outcome - a level with only wins,
    say - is dropped with those rows, which is where the other coefficients' estimates converge as its own goes to
    infinity; a term that predicts every row is dropped and the rest refitted on all rows, which answers the
    question without that term); fit with statsmodels (Newton); if a coefficient still runs off (|coef| > 10 with
    std. error > 100) drop those terms and refit. Everything done is listed in ``problems``.

    Parameters
    ----------
    frame : DataFrame
        E.g. ``analysis_frame(opportunities, "won").data``; nullable types are converted.
    formula : str
        Whitelisted formula (module docstring); the outcome must be 0/1.
    cluster : str, optional
        Column whose values are clusters (e.g. ``owner``): cluster-robust (CRV1) standard errors.
    alpha : float, default 0.05
        For the confidence intervals and :func:`strongest_drivers`.
    maxiter : int, default 100
        Newton iterations before the fit counts as not converged.

    Returns
    -------
    LogitFit
        ``coefficients`` (term, coef, std_err, z, p_value, ci_low, ci_high, odds_ratio, or_ci_low, or_ci_high,
        variable, level, transform, note), ``marginal_effects`` (term, dydx, std_err, z, p_value, ci_low, ci_high),
        counts, ``cov_type``/``n_clusters``, ``converged``, ``problems``, ``result``; see :class:`LogitFit`.

    Raises
    ------
    ParamsError
        A refused formula, unknown column or reference level, or an outcome that is not 0/1.

    Examples
    --------
    >>> af = analysis_frame(ctx.opportunities, "won")  # doctest: +SKIP
    >>> fit = fit_logit(af.data, "won ~ meetings + demo + C(source)", cluster="owner")  # doctest: +SKIP
    """
    parsed = _parse_formula(formula)
    prep = _prepare(frame, parsed, extra=(cluster,) if cluster else ())
    data = prep.data
    y_all = _outcome01(data, parsed.outcome)
    if not len(data):
        # nothing to fit (every row missing something): a finding for the report, not a crash of the notebook
        return LogitFit(
            formula=formula, outcome=parsed.outcome, coefficients=_empty(_LOGIT_COLUMNS + _META_COLUMNS),
            marginal_effects=_empty(_MARGEFF_COLUMNS), n=0, events=0, n_fit=0, events_fit=0,
            n_dropped_missing=prep.n_dropped_missing, n_dropped_nonpositive=prep.n_dropped_nonpositive, n_set_aside=0,
            cov_type="cluster" if cluster else "nonrobust", n_clusters=0 if cluster else None, converged=False,
            problems=[{"code": "no_rows"}], alpha=alpha, result=None)
    X_all, meta = _design(data, parsed)
    all_terms = list(X_all.columns)
    n, events = len(data), int(y_all.sum())
    problems: list[dict] = []
    notes: dict[str, str] = {}
    keep_rows = np.ones(n, dtype=bool)

    cols = _independent(X_all)
    if dropped := [c for c in all_terms if c not in cols]:
        problems.append({"code": "collinear_terms", "terms": dropped})
        notes.update(dict.fromkeys(dropped, "collinear"))

    # one-term separation, found in the data (no fit needed); repeated because setting rows aside can reveal more
    for _ in range(len(all_terms)):
        y = y_all[keep_rows]
        if np.ptp(y) == 0:
            break
        found = _separating(X_all.loc[keep_rows, cols], y)
        if not found:
            break
        complete = [c for c, kind, _ in found if kind == "complete"]
        chosen = [(c, k, r) for c, k, r in found if k == "complete"] if complete else found
        aside = np.zeros(n, dtype=bool)
        for _c, _k, rows in chosen:
            if rows is not None:
                aside[np.flatnonzero(keep_rows)[rows]] = True
        terms = [c for c, _, _ in chosen]
        problems.append({"code": "perfect_separation", "terms": terms, "kind": "complete" if complete else "quasi",
                         "detected_by": "data",
                         "action": "refit_without_terms_and_rows" if aside.any() else "refit_without_terms",
                         "rows_set_aside": int(aside.sum())})
        notes.update(dict.fromkeys(terms, "perfect_separation"))
        keep_rows &= ~aside
        cols = [c for c in cols if c not in terms]
        cols = _independent(X_all.loc[keep_rows, cols])  # a level's rows gone can leave other columns constant
        if extra := [c for c in all_terms if c not in cols and c not in notes]:
            problems.append({"code": "collinear_terms", "terms": extra})
            notes.update(dict.fromkeys(extra, "collinear"))

    y = y_all[keep_rows]
    n_fit, events_fit = int(keep_rows.sum()), int(y.sum())
    groups = pd.factorize(data.loc[keep_rows, cluster])[0] if cluster else None
    res, kinds, error = None, set(), None
    if np.ptp(y) == 0:
        problems.append({"code": "outcome_constant", "value": int(y[0]) if len(y) else None})
    else:
        while True:  # ends: every pass without a break drops at least one column, and never the intercept
            res, kinds, error = _fit_once(y, X_all.loc[keep_rows, cols], groups, maxiter)
            if res is None:
                break
            huge = [c for c in cols if c != "Intercept" and abs(res.params[c]) > HUGE_COEF
                    and not res.bse[c] < HUGE_STD_ERR]
            if not huge:
                if PerfectSeparationWarning in kinds:
                    problems.append({"code": "perfect_separation", "terms": [], "kind": "complete",
                                     "detected_by": "fit", "action": "none", "rows_set_aside": 0})
                break
            # every row predicted (almost) exactly: complete separation, nothing is estimable; else quasi
            with np.errstate(over="ignore"):  # exp of a runaway linear predictor; 0 and 1 are the right limits
                exact = bool(np.abs(np.asarray(res.predict()) - y).max() < 1e-3)
            problems.append({"code": "perfect_separation", "terms": huge, "kind": "complete" if exact else "quasi",
                             "detected_by": "fit", "action": "refit_without_terms", "rows_set_aside": 0})
            notes.update(dict.fromkeys(huge, "perfect_separation"))
            cols = [c for c in cols if c not in huge]
        if res is None:
            problems.append({"code": "fit_failed", "error": error})

    converged = bool(res is not None and res.mle_retvals.get("converged", False))
    if res is not None and not converged:
        problems.append({"code": "not_converged", "iterations": res.mle_retvals.get("iterations"), "maxiter": maxiter})
    n_terms = sum(c != "Intercept" for c in cols)
    if res is not None and n_terms:
        epv = min(events_fit, n_fit - events_fit) / n_terms
        if epv < MIN_EVENTS_PER_TERM:
            problems.append({"code": "few_events_per_term", "events_per_term": float(epv),
                             "threshold": MIN_EVENTS_PER_TERM})
    n_clusters = int(len(np.unique(groups))) if groups is not None else None
    if n_clusters is not None and n_clusters < MIN_CLUSTERS:
        problems.append({"code": "cluster_too_few", "n_clusters": n_clusters, "threshold": MIN_CLUSTERS})

    if res is not None:
        table = _coef_table(res, alpha, _LOGIT_COLUMNS, "z")
        table["odds_ratio"] = np.exp(table["coef"])
        table["or_ci_low"] = np.exp(table["ci_low"])
        table["or_ci_high"] = np.exp(table["ci_high"])
        margeff = _margeff(res, alpha)
    else:
        table = _empty(_LOGIT_COLUMNS)
        margeff = _empty(_MARGEFF_COLUMNS)
    return LogitFit(
        formula=formula, outcome=parsed.outcome, coefficients=_with_meta(table, meta, all_terms, notes),
        marginal_effects=margeff, n=n, events=events, n_fit=n_fit, events_fit=events_fit,
        n_dropped_missing=prep.n_dropped_missing, n_dropped_nonpositive=prep.n_dropped_nonpositive,
        n_set_aside=n - n_fit, cov_type="cluster" if cluster else "nonrobust", n_clusters=n_clusters,
        converged=converged, problems=problems, alpha=alpha, result=res)


def _empty(columns: list[str]) -> pd.DataFrame:
    text = {"term", *_META_COLUMNS}
    return pd.DataFrame({c: pd.Series(dtype="str" if c in text else "float64") for c in columns})


def _margeff(res, alpha: float) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow in exp for a separated term: the numbers show it anyway
            m = res.get_margeff(at="overall").summary_frame(alpha=alpha)
    except (np.linalg.LinAlgError, ValueError):
        return _empty(_MARGEFF_COLUMNS)
    m = m.reset_index()
    m.columns = _MARGEFF_COLUMNS
    return m.astype({"term": "str"})


# ------------------------------------------------------------------------------------- diagnostics and holdout

def vif_table(frame: pd.DataFrame, formula: str) -> pd.DataFrame:
    """Variance inflation factors of the design matrix's columns.

    ``statsmodels.stats.outliers_influence.variance_inflation_factor`` on the design (complete rows, intercept
    included so that each VIF is the centred ``1 / (1 - R^2)`` of a column on all the others; a formula without
    intercept gives uncentred VIFs). A column that is an exact combination of others has VIF ``inf``.

    Parameters
    ----------
    frame : DataFrame
    formula : str
        Whitelisted formula; only its right-hand side matters.

    Returns
    -------
    DataFrame
        ``term``, ``vif``, ``variable``, ``level``; one row per design column except the intercept.
    """
    parsed = _parse_formula(formula)
    prep = _prepare(frame, parsed)
    X, meta = _design(prep.data, parsed)
    exog = X.to_numpy(dtype=float)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exact collinearity divides by zero: VIF = inf
        for j, col in enumerate(X.columns):
            if col != "Intercept":
                rows.append((col, float(variance_inflation_factor(exog, j))))
    out = pd.DataFrame(rows, columns=["term", "vif"])
    out[["variable", "level"]] = meta.loc[out["term"], ["variable", "level"]].to_numpy()
    return out


def calibration_by_decile(y, p) -> pd.DataFrame:
    """Observed outcome rate against mean predicted probability, by decile of the prediction.

    Deciles are equal-sized by rank: with ``n`` pairs sorted by ``p`` (ties in input order), the pair at 0-based
    rank ``r`` is in decile ``floor(10 r / n) + 1``. Pairs with a missing value are left out.

    Parameters
    ----------
    y : array-like of 0/1
    p : array-like of float
        Predicted probabilities, same length.

    Returns
    -------
    DataFrame
        ``decile`` (1..10; fewer when n < 10), ``n``, ``events``, ``mean_predicted``, ``observed_rate``.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape:
        raise ParamsError(f"y and p differ in length: {y.shape} vs {p.shape}")
    ok = ~(np.isnan(y) | np.isnan(p))
    y, p = y[ok], p[ok]
    rank = np.empty(len(p), dtype=np.int64)
    rank[np.argsort(p, kind="stable")] = np.arange(len(p))
    decile = rank * 10 // max(len(p), 1) + 1
    df = pd.DataFrame({"decile": decile, "y": y, "p": p})
    out = df.groupby("decile", sort=True).agg(n=("y", "size"), events=("y", "sum"), mean_predicted=("p", "mean"),
                                              observed_rate=("y", "mean")).reset_index()
    return out.astype({"decile": "int64", "n": "int64", "events": "int64"})


def holdout_auc(frame: pd.DataFrame, formula: str, *, test_share: float = 0.3, seed: int = 0) -> float:
    """Area under the ROC curve of a logit on held-out rows.

    The complete rows (as in :func:`fit_logit`, in frame order) are split by
    ``sklearn.model_selection.train_test_split(np.arange(n), test_size=test_share, stratify=y, random_state=seed)``;
    the logit is fitted on the training rows (design columns constant or collinear there are left out) and
    ``sklearn.metrics.roc_auc_score`` scores its predictions on the test rows.

    Parameters
    ----------
    frame : DataFrame
    formula : str
        Whitelisted formula with a 0/1 outcome.
    test_share : float, default 0.3
    seed : int, default 0

    Returns
    -------
    float
    """
    parsed = _parse_formula(formula)
    data = _prepare(frame, parsed).data
    y = _outcome01(data, parsed.outcome)
    X, _ = _design(data, parsed)
    train, test = train_test_split(np.arange(len(y)), test_size=test_share, stratify=y, random_state=seed)
    cols = _independent(X.iloc[train])
    with warnings.catch_warnings():
        # a separated level only makes its predictions extreme, which still ranks them correctly
        warnings.simplefilter("ignore", (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning))
        model = sm.Logit(y[train], X.iloc[train][cols])
        try:
            res = model.fit(disp=0, maxiter=100)
        except (np.linalg.LinAlgError, PerfectSeparationError):
            res = model.fit(disp=0, method="bfgs", maxiter=1000)
        p = np.asarray(res.predict(X.iloc[test][cols]))
    return float(roc_auc_score(y[test], p))


# ------------------------------------------------------------------------------------------------- linear

@dataclass
class LinearFit:
    """An OLS fit with HC3 standard errors.

    Attributes
    ----------
    formula, outcome : str
    coefficients : DataFrame
        ``term``, ``coef``, ``std_err``, ``t``, ``p_value``, ``ci_low``, ``ci_high``; with ``log_outcome`` also
        ``pct_effect`` (``exp(coef) - 1``: the relative change of the outcome per unit of the term),
        ``pct_ci_low``, ``pct_ci_high`` (missing for the intercept); then ``variable``, ``level``, ``transform``,
        ``note`` (as in :class:`LogitFit`).
    fitted, residuals : Series
        On the fitted rows (original index); on the log scale with ``log_outcome``.
    n : int
        Rows fitted.
    r_squared, adj_r_squared : float
    n_dropped_missing, n_dropped_nonpositive : int
        Rows left out: a used column missing; outcome <= 0 with ``log_outcome`` or outside a log term's domain.
    log_outcome : bool
    problems : list of dict
        ``collinear_terms`` (``terms``) when design columns were left out.
    alpha : float
    result : statsmodels results
        Fitted with HC3 (heteroscedasticity-robust) standard errors.
    """

    formula: str
    outcome: str
    coefficients: pd.DataFrame
    fitted: pd.Series
    residuals: pd.Series
    n: int
    r_squared: float
    adj_r_squared: float
    n_dropped_missing: int
    n_dropped_nonpositive: int
    log_outcome: bool
    problems: list[dict]
    alpha: float
    result: Any = None


_LINEAR_COLUMNS = ["term", "coef", "std_err", "t", "p_value", "ci_low", "ci_high"]


def fit_linear(frame: pd.DataFrame, formula: str, *, log_outcome: bool = False, alpha: float = 0.05) -> LinearFit:
    """OLS with heteroskedasticity-robust (HC3) standard errors, optionally of ``log(outcome)``.

    Parameters
    ----------
    frame : DataFrame
    formula : str
        Whitelisted formula; the outcome is a numeric column (e.g. ``amount``).
    log_outcome : bool, default False
        Fit ``np.log(outcome)``: rows with outcome <= 0 are left out and counted, and ``pct_effect`` reads each
        coefficient as a relative change.
    alpha : float, default 0.05

    Returns
    -------
    LinearFit
        ``coefficients`` (term, coef, std_err, t, p_value, ci_low, ci_high[, pct_effect, pct_ci_low, pct_ci_high],
        variable, level, transform, note), ``fitted``, ``residuals``, ``n``, ``r_squared``; see :class:`LinearFit`.

    Examples
    --------
    >>> fit = fit_linear(won_deals, "amount ~ C(segment) + meetings", log_outcome=True)  # doctest: +SKIP
    """
    parsed = _parse_formula(formula)
    prep = _prepare(frame, parsed, positive_outcome=log_outcome)
    data = prep.data
    if not pd.api.types.is_numeric_dtype(data[parsed.outcome]):
        raise ParamsError(f"outcome '{parsed.outcome}' is {data[parsed.outcome].dtype}, not numbers")
    y = data[parsed.outcome].astype("float64")
    if log_outcome:
        y = np.log(y)
    X, meta = _design(data, parsed)
    cols = _independent(X)
    problems, notes = [], {}
    if dropped := [c for c in X.columns if c not in cols]:
        problems.append({"code": "collinear_terms", "terms": dropped})
        notes = dict.fromkeys(dropped, "collinear")
    res = sm.OLS(y, X[cols]).fit(cov_type="HC3")
    table = _coef_table(res, alpha, _LINEAR_COLUMNS, "t")
    if log_outcome:
        slope = table["term"] != "Intercept"
        for src, dst in (("coef", "pct_effect"), ("ci_low", "pct_ci_low"), ("ci_high", "pct_ci_high")):
            table[dst] = np.expm1(table[src]).where(slope)
    return LinearFit(
        formula=formula, outcome=parsed.outcome, coefficients=_with_meta(table, meta, list(X.columns), notes),
        fitted=res.fittedvalues, residuals=res.resid, n=int(res.nobs), r_squared=float(res.rsquared),
        adj_r_squared=float(res.rsquared_adj), n_dropped_missing=prep.n_dropped_missing,
        n_dropped_nonpositive=prep.n_dropped_nonpositive, log_outcome=log_outcome, problems=problems, alpha=alpha,
        result=res)


# ------------------------------------------------------------------------------------------------- readings

def strongest_drivers(fit: LogitFit | LinearFit, k: int = 3) -> pd.DataFrame:
    """The ``k`` significant terms (p < ``fit.alpha``, intercept excluded) with the smallest p-values.

    Ranked by the absolute test statistic, which orders like the p-value but does not tie when p-values underflow
    to 0.

    Parameters
    ----------
    fit : LogitFit or LinearFit
    k : int, default 3

    Returns
    -------
    DataFrame
        For a logit: ``term``, ``variable``, ``level``, ``transform``, ``odds_ratio``, ``or_ci_low``,
        ``or_ci_high``, ``p_value``, ``direction`` ("up" when the coefficient is positive, else "down"). For a linear
        fit ``coef``, ``ci_low``, ``ci_high`` (and ``pct_effect``, ``pct_ci_low``, ``pct_ci_high`` with a log
        outcome) take the odds ratio's place.
    """
    c = fit.coefficients
    stat = "z" if "z" in c.columns else "t"
    sig = c[(c["term"] != "Intercept") & c["p_value"].notna() & (c["p_value"] < fit.alpha)]
    top = sig.assign(_rank=-sig[stat].abs()).sort_values("_rank", kind="stable").head(k)
    if "odds_ratio" in c.columns:
        effect = ["odds_ratio", "or_ci_low", "or_ci_high"]
    else:
        effect = ["coef", "ci_low", "ci_high"] + [x for x in ("pct_effect", "pct_ci_low", "pct_ci_high") if x in c]
    out = top[["term", "variable", "level", "transform", *effect, "p_value"]].reset_index(drop=True)
    out["direction"] = np.where(top["coef"].to_numpy() > 0, "up", "down")
    return out.astype({"direction": "str"})


def coefficients_csv(fit: LogitFit | LinearFit) -> pd.DataFrame:
    """``regression_coefficients.csv``: DESIGN.md's columns first, then the rest of ``fit.coefficients``.

    Returns
    -------
    DataFrame
        ``term``, ``coef``, ``std_err``, ``p_value``, ``ci_low``, ``ci_high``, ``odds_ratio`` (missing, i.e. an
        empty cell, for a linear fit), then the fit's other columns (``z`` or ``t``, ``or_ci_low``, ``or_ci_high``
        or ``pct_effect``..., ``variable``, ``level``, ``transform``, ``note``).
    """
    c = fit.coefficients
    if "odds_ratio" not in c.columns:
        c = c.assign(odds_ratio=np.nan)
    return c[COEFFICIENT_COLUMNS + [x for x in c.columns if x not in COEFFICIENT_COLUMNS]].reset_index(drop=True)


# --------------------------------------------------------------------------- the analysis on a pipeline


@dataclass(repr=False)
class RegressionResult(Result):
    """What drives wins (:meth:`funnel_lab.Pipeline.regression`): the logit of ``regression.outcome`` with its
    diagnostics, and the linear model when ``regression.linear`` is set.

    Attributes
    ----------
    frame : AnalysisFrame
        The rows analysed and those left out.
    fit : LogitFit
    drivers : DataFrame
        :func:`strongest_drivers`.
    vif, calibration : DataFrame
    auc : float or None
        Hold-out AUC (None when too few rows of a class to hold some out).
    linear : LinearFit or None
    """

    title = "regression"
    frame: AnalysisFrame
    fit: LogitFit
    drivers: pd.DataFrame
    vif: pd.DataFrame
    calibration: pd.DataFrame
    auc: float | None
    linear: LinearFit | None

    @property
    def summary(self) -> pd.DataFrame:
        """The logit's terms: odds ratio with its 95% interval and p-value."""
        c = self.fit.coefficients
        return c[[col for col in ("term", "odds_ratio", "or_ci_low", "or_ci_high", "p_value") if col in c.columns]]

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        """DESIGN's coefficient table, and the marginal effects, VIF, calibration and linear model."""
        out = {"regression_coefficients.csv": coefficients_csv(self.fit),
               "regression_marginal_effects.csv": self.fit.marginal_effects,
               "regression_vif.csv": self.vif, "regression_calibration.csv": self.calibration}
        if self.linear is not None:
            out["linear_coefficients.csv"] = coefficients_csv(self.linear)
        return out


def check_params(params, columns) -> None:
    """Refuse a formula, cluster or linear model that cannot run, before any notebook starts (exit 2).

    Raises
    ------
    ParamsError
        Naming the key (``regression.formula``, ``regression.cluster``, ...) and the fragment or column.
    """
    cfg = params.regression
    available = list(columns) + ["won"]
    for key, formula in (("regression.formula", cfg.formula),
                         ("regression.linear.formula", cfg.linear.formula if cfg.linear else None)):
        if formula is None:
            continue
        try:
            used = check_formula(formula, available)
        except ParamsError as e:
            raise ParamsError(f"{key}: {str(e).removeprefix('formula: ')}") from None
        if key == "regression.formula" and used[0] != cfg.outcome:
            raise ParamsError(f"{key}: the outcome is {used[0]!r} but regression.outcome is {cfg.outcome!r}")
    if cfg.cluster and cfg.cluster not in columns:
        raise ParamsError(f"regression.cluster: no column {cfg.cluster!r}{did_you_mean(cfg.cluster, list(columns))}")


def _model_columns(opportunities: pd.DataFrame, formula: str, *extra: str | None) -> list[str]:
    """The columns a model reads: the id, those defining the outcome, the formula's and ``extra`` (the cluster)
    -- :func:`analysis_frame` copies every column it is given, and a million rows of every column is gigabytes."""
    used = check_formula(formula, list(opportunities.columns) + ["won"])
    wanted = ["opportunity_id", "status", "won", *used, *(e for e in extra if e)]
    return [c for c in dict.fromkeys(wanted) if c in opportunities.columns]


def analyse_regression(p) -> RegressionResult:
    """The logit of the outcome with its diagnostics, and the linear model when configured."""
    cfg = p.params.regression
    opportunities = p.opportunities
    af = analysis_frame(opportunities[_model_columns(opportunities, cfg.formula, cfg.cluster)], cfg.outcome)
    fit = fit_logit(af.data, cfg.formula, cluster=cfg.cluster)
    calibration, vif, auc = pd.DataFrame(), pd.DataFrame(), None
    if fit.result is not None:
        model = fit.result.model
        calibration = calibration_by_decile(model.endog, fit.result.predict())
        vif = vif_table(af.data, cfg.formula)
        try:
            auc = holdout_auc(af.data, cfg.formula)
        except ValueError:  # too few rows of one class to hold some out: said in the report, not a crash
            auc = None
    linear = None
    if cfg.linear is not None:
        outcome = cfg.linear.formula.split("~")[0].strip()
        lf = analysis_frame(opportunities[_model_columns(opportunities, cfg.linear.formula)], outcome)
        linear = fit_linear(lf.data, cfg.linear.formula, log_outcome=cfg.linear.log)
    return RegressionResult(af, fit, strongest_drivers(fit), vif, calibration, auc, linear)
