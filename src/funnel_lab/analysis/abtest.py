"""A/B tests: clean the assignment, check the split, compare the arms and reach a decision (codes and numbers only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..data.schemas import canonical_columns
from ..errors import ParamsError, did_you_mean
from ..result import Result
from .stats import newcombe_interval, two_proportion_test, wilson_interval

#: The exclusion rules of :func:`clean_assignment`, in the order they are applied.
RULES = ("missing_assignment", "assignment_mismatch", "multiple_variants", "repeated_unit")
#: Canonical columns that describe the unit or its outcome, never the assignment: a strong effect must not make
#: ``converted`` look like a copy of the variant (and get its rows thrown away).
NOT_MIRRORS = tuple(c for c in canonical_columns("experiment") if c not in ("unit_id", "variant"))
BINARY_COLUMNS = ["variant", "n", "conversions", "rate", "ci_low", "ci_high", "missing", "n_control", "rate_control",
                  "diff", "diff_ci_low", "diff_ci_high", "relative_lift", "lift_ci_low", "lift_ci_high", "z",
                  "p_value", "chi2_p", "fisher_p", "test", "p_headline", "p_holm"]
CONTINUOUS_COLUMNS = ["variant", "n_control", "n_treatment", "mean_control", "mean_treatment", "diff", "ci_low",
                      "ci_high", "t", "df", "p_value", "p_holm", "theta", "cuped_diff", "cuped_ci_low",
                      "cuped_ci_high", "cuped_p_value", "cuped_p_holm", "variance_reduction"]
BAYES_COLUMNS = ["variant", "n", "conversions", "posterior_mean", "ci_low", "ci_high", "prob_beats_control",
                 "expected_loss", "prob_best"]
SEGMENT_COLUMNS = ["segment", "variant", "n_control", "conversions_control", "rate_control", "n_treatment",
                   "conversions_treatment", "rate_treatment", "diff", "diff_ci_low", "diff_ci_high", "p_value",
                   "pooled_diff", "opposite_to_pooled"]
MIN_POWER = 0.8


# --------------------------------------------------------------------------- assignment hygiene


@dataclass
class Hygiene:
    """The experiment after :func:`clean_assignment`.

    Attributes
    ----------
    units : DataFrame
        One row per kept unit: the input columns, index of the input kept so every row can be traced (an input
        whose index is not unique is renumbered 0..n-1 first).
    excluded : DataFrame
        Every excluded row as read (input index kept), plus ``reason`` (a code of :data:`RULES`) and ``rule`` (the
        exact condition, e.g. ``landing_page != old_page``, ``variants: control|treatment``, ``first_row: 17``).
    counts : DataFrame
        ``rule``, ``rows``, ``units``, ``units_lost``: ``input`` first, then one row per rule of :data:`RULES` in
        order, then ``excluded`` and ``kept``; ``rows`` of input = kept + excluded.
    mirrors : DataFrame
        The columns found to mirror the variant: ``column``, ``variant``, ``usual_value``, ``rows_disagreeing``.
    """

    units: pd.DataFrame
    excluded: pd.DataFrame
    counts: pd.DataFrame
    mirrors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["column", "variant", "usual_value", "rows_disagreeing"]))

    def _repr_html_(self) -> str:
        return self.counts.to_html(index=False)


def variant_values(df: pd.DataFrame, col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows per variant and value of ``col`` (``variant, <col>, rows``, missing values included), and the same
    cut to each variant's usual value: its most frequent (ties: the first in sort order)."""
    pairs = df.groupby(["variant", col], dropna=False, sort=True).size().rename("rows").reset_index()
    return pairs, pairs.sort_values("rows", ascending=False, kind="stable").drop_duplicates("variant")


def experiment_hygiene(df: pd.DataFrame, *, min_agreement: float = 0.9) -> dict[str, pd.DataFrame]:
    """What an A/B table's assignment looks like before any test: repeated units and inconsistent rows.

    Returns
    -------
    dict of DataFrame
        ``repeated``: units with more than one row (``unit_id``, ``rows``, ``variants``);
        ``mismatches``: for every column that follows ``variant`` in at least ``min_agreement`` of rows (e.g. a
        landing page per group), ``column``, ``variant``, ``value``, ``rows`` where it does not.
    """
    per_unit = df.groupby("unit_id", sort=True).agg(rows=("variant", "size"), variants=("variant", "nunique"))
    repeated = per_unit[per_unit["rows"] > 1].reset_index()
    mismatches = []
    for col in df.columns:
        if col in ("unit_id", "variant") or df[col].nunique() > 20 or df[col].nunique() < 2:
            continue
        pairs, usual = variant_values(df, col)
        if usual[col].nunique() < len(usual):
            continue  # two variants share their usual value: this column does not follow the variant
        agree = usual["rows"].sum() / len(df)
        if min_agreement <= agree < 1:
            odd = pairs.merge(usual[["variant", col]], how="left", on="variant", suffixes=("", "_usual"))
            odd = odd[odd[col] != odd[f"{col}_usual"]]
            mismatches += [{"column": col, "variant": r["variant"], "value": r[col], "rows": int(r["rows"])}
                           for r in odd.to_dict("records")]
    return {"repeated": repeated,
            "mismatches": pd.DataFrame(mismatches, columns=["column", "variant", "value", "rows"])}


def clean_assignment(experiment: pd.DataFrame, *, min_agreement: float = 0.9) -> Hygiene:
    """Exclude the rows that cannot be analysed as one unit in one arm, each with its reason; drop nothing silently.

    Rules, applied in this order (each to the rows the previous ones kept):

    0. ``missing_assignment``: no ``unit_id`` or no ``variant`` (cleaning usually removes these already).
    1. ``assignment_mismatch``: a column that mirrors the variant (detected as in
       :func:`experiment_hygiene`: it follows the variant in at least ``min_agreement`` of rows,
       e.g. a landing page per group) holds another value than the variant's usual one. A missing value is no
       evidence of a mismatch and is kept (``experiment_hygiene`` counts it). Columns of :data:`NOT_MIRRORS`
       (outcomes, covariate, segment, time) are never taken as mirrors.
    2. ``multiple_variants``: every row of a unit still seen in more than one variant.
    3. ``repeated_unit``: further rows of a unit in its one variant; the first by ``assigned_at`` (missing last),
       then by input order, is kept.

    Parameters
    ----------
    experiment : DataFrame
        The cleaned ``experiment`` table: ``unit_id``, ``variant``, outcomes and any other columns.
    min_agreement : float, default 0.9
        Share of rows a column must agree with the variant on to count as a mirror of it.

    Returns
    -------
    Hygiene
        ``units`` (kept rows, one per unit), ``excluded`` (input columns + ``reason``, ``rule``), ``counts``
        (``rule``, ``rows``, ``units``, ``units_lost``), ``mirrors``.
    """
    # every exclusion is recorded against the row's index label, so labels must name rows one-to-one
    df = experiment if experiment.index.is_unique else experiment.reset_index(drop=True)
    reason = pd.Series(pd.NA, index=df.index, dtype="str")
    rule = pd.Series(pd.NA, index=df.index, dtype="str")

    def exclude(mask: pd.Series, code: str, detail: pd.Series | str) -> None:
        reason[mask] = code
        rule[mask] = detail[mask] if isinstance(detail, pd.Series) else detail

    exclude(df["unit_id"].isna() | df["variant"].isna(), RULES[0], "isna(unit_id) or isna(variant)")

    live = df[reason.isna()]
    candidates = live.drop(columns=[c for c in NOT_MIRRORS if c in live.columns])
    found = experiment_hygiene(candidates, min_agreement=min_agreement)["mismatches"] if len(live) else None
    mirrors = []
    if found is not None and len(found):
        for col in dict.fromkeys(found["column"]):
            usual = variant_values(live, col)[1].set_index("variant")[col]
            expected = live["variant"].map(usual)
            bad = live[col].notna() & (expected.isna() | (live[col] != expected).fillna(True))
            bad = bad & reason.loc[live.index].isna()  # a row is excluded once, by its first failing column
            detail = col + " != " + expected.astype("str")
            exclude(bad.reindex(df.index, fill_value=False), RULES[1], detail.reindex(df.index))
            per = live[bad].groupby("variant").size()
            mirrors += [{"column": col, "variant": v, "usual_value": usual[v], "rows_disagreeing": int(per.get(v, 0))}
                        for v in usual.index]

    live = df[reason.isna()]
    n_var = live.groupby("unit_id")["variant"].nunique()
    multi_units = n_var.index[n_var > 1]
    multi = live["unit_id"].isin(multi_units)
    if multi.any():
        seen = live[multi].groupby("unit_id")["variant"].agg(lambda v: "|".join(sorted(v.unique())))
        exclude(multi.reindex(df.index, fill_value=False), RULES[2],
                ("variants: " + live.loc[multi, "unit_id"].map(seen)).reindex(df.index))

    live = df[reason.isna()]
    pos = pd.Series(np.arange(len(df)), index=df.index).loc[live.index]
    keys = pd.DataFrame({"unit_id": live["unit_id"], "pos": pos})
    if "assigned_at" in live.columns:
        keys["at"] = live["assigned_at"]
        keys = keys.sort_values(["at", "pos"], na_position="last", kind="stable")
    else:
        keys = keys.sort_values("pos", kind="stable")
    first = keys.groupby("unit_id", sort=False).head(1)
    repeat = ~live.index.isin(first.index)
    if repeat.any():
        first_row = pd.Series(first.index, index=first["unit_id"].to_numpy())
        detail = "first_row: " + live.loc[repeat, "unit_id"].map(first_row).astype("str")
        exclude(pd.Series(repeat, index=live.index).reindex(df.index, fill_value=False), RULES[3],
                detail.reindex(df.index))

    kept = df[reason.isna()]
    excluded = df[reason.notna()].assign(reason=reason[reason.notna()], rule=rule[reason.notna()])
    counts = _hygiene_counts(df, reason)
    assert counts.loc[0, "rows"] == len(kept) + len(excluded)  # nothing lost between the two frames
    return Hygiene(units=kept, excluded=excluded, counts=counts,
                   mirrors=pd.DataFrame(mirrors, columns=["column", "variant", "usual_value", "rows_disagreeing"]))


def _hygiene_counts(df: pd.DataFrame, reason: pd.Series) -> pd.DataFrame:
    """Rows and units per rule; ``units_lost`` are units that had rows before the rule and none after it."""
    codes, _ = pd.factorize(df["unit_id"])  # missing ids get -1 and are no unit
    # how far each row got: the index of the rule that excluded it, len(RULES) when kept; a unit survives up to
    # the furthest of its rows, so it is lost at rule k exactly when that furthest point is k
    stage = reason.map({c: i for i, c in enumerate(RULES)}).fillna(len(RULES)).to_numpy(dtype=int)
    has_id = codes >= 0
    furthest = np.full(codes.max() + 1 if has_id.any() else 0, -1)
    np.maximum.at(furthest, codes[has_id], stage[has_id])

    def units(mask: np.ndarray) -> int:
        return len(np.unique(codes[mask & has_id]))

    rows = [{"rule": "input", "rows": len(df), "units": len(furthest), "units_lost": 0}]
    for k, code in enumerate(RULES):
        hit = stage == k
        rows.append({"rule": code, "rows": int(hit.sum()), "units": units(hit),
                     "units_lost": int((furthest == k).sum())})
    excl = stage < len(RULES)
    rows.append({"rule": "excluded", "rows": int(excl.sum()), "units": units(excl),
                 "units_lost": int((furthest < len(RULES)).sum())})
    rows.append({"rule": "kept", "rows": int((~excl).sum()), "units": units(~excl), "units_lost": 0})
    return pd.DataFrame(rows).astype({"rows": "int64", "units": "int64", "units_lost": "int64"})


# --------------------------------------------------------------------------- sample ratio


def sample_ratio_test(counts, expected: Mapping[str, float] | None = None) -> tuple[float, float]:
    """Sample-ratio-mismatch check: chi-square goodness of fit of units per variant against the planned split.

    Parameters
    ----------
    counts : Series, dict or DataFrame
        Units per variant (variant -> count), or a units table with a ``variant`` column (one row per unit, as
        ``Hygiene.units``), whose rows are counted.
    expected : dict, optional
        Planned share per variant (normalised to sum to 1); an equal split when omitted. A planned variant with no
        units counts as 0.

    Returns
    -------
    (float, float)
        The chi-square statistic and its p-value (k - 1 degrees of freedom).
    """
    if isinstance(counts, pd.DataFrame):
        observed = counts["variant"].value_counts()
    else:
        observed = pd.Series(dict(counts), dtype="float64")
    if expected is not None:
        unknown = sorted(set(observed.index) - set(expected))
        if unknown:
            raise ParamsError(f"variants {unknown} have units but no expected share in {dict(expected)}")
        shares = pd.Series(dict(expected), dtype="float64")
        observed = observed.reindex(shares.index, fill_value=0)
    else:
        shares = pd.Series(1.0, index=observed.index)
    if len(observed) < 2:
        return math.nan, math.nan
    obs = observed.to_numpy(dtype=float)
    exp = shares.to_numpy() / shares.sum() * obs.sum()
    chi2, p = stats.chisquare(obs, exp)
    return float(chi2), float(p)


# --------------------------------------------------------------------------- binary outcome


def _binary_counts(units: pd.DataFrame, control: str, column: str = "converted") -> pd.DataFrame:
    """Units, conversions and units without an outcome per variant; control first, then the others sorted."""
    if column not in units.columns:
        raise ParamsError(f"the experiment has no {column!r} column (columns: {list(units.columns)})")
    y = pd.to_numeric(units[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    seen = ~np.isnan(y)
    odd = seen & (y != 0) & (y != 1)
    if odd.any():
        raise ParamsError(f"{column!r} must be 0/1; found {sorted(np.unique(y[odd]))[:5]}")
    # counted with numpy: this runs once per simulated experiment in power and coverage studies
    codes, names = pd.factorize(units["variant"].astype("str"), sort=True)
    names = [str(v) for v in names]
    if control not in names:
        raise ParamsError(f"control {control!r} is not a variant of the experiment (variants: {names})")
    size = np.bincount(codes, minlength=len(names))
    n = np.bincount(codes, weights=seen, minlength=len(names)).astype("int64")
    x = np.bincount(codes, weights=np.where(seen, y, 0.0), minlength=len(names)).round().astype("int64")
    order = [names.index(control)] + [i for i, v in enumerate(names) if v != control]
    return pd.DataFrame({"variant": pd.array([names[i] for i in order], dtype="str"), "n": n[order],
                         "conversions": x[order], "missing": (size - n)[order].astype("int64")})


def _two_proportions(x1: int, n1: int, x0: int, n0: int, alpha: float) -> dict[str, float | str]:
    """All the frequentist comparisons of treatment (x1 of n1) with control (x0 of n0)."""
    out: dict[str, float | str] = {}
    nan = math.nan
    p1, p0 = (x1 / n1 if n1 else nan), (x0 / n0 if n0 else nan)
    out["diff"] = p1 - p0
    lo, hi = newcombe_interval(x1, n1, x0, n0, alpha=alpha)
    out["diff_ci_low"], out["diff_ci_high"] = float(lo), float(hi)
    z_crit = stats.norm.ppf(1 - alpha / 2)
    if x1 > 0 and x0 > 0:
        # Katz log interval of the rate ratio (delta method on log RR), shifted to a lift: RR - 1
        log_rr = math.log(p1 / p0)
        se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
        out["relative_lift"] = p1 / p0 - 1
        out["lift_ci_low"], out["lift_ci_high"] = math.exp(log_rr - z_crit * se) - 1, math.exp(log_rr + z_crit * se) - 1
    else:
        out["relative_lift"] = p1 / p0 - 1 if p0 > 0 else nan
        out["lift_ci_low"] = out["lift_ci_high"] = nan
    # the normal approximation (z and chi-square alike) needs every expected cell at 5 or more: Fisher's otherwise
    out.update(two_proportion_test(x1, n1, x0, n0))
    return out


def _holm(p: pd.Series) -> pd.Series:
    """Holm-adjusted p-values over the non-missing entries (identity for a single test)."""
    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.sum() == 1:
        out[ok] = p[ok]  # Holm over one test is the test; and multipletests' Holm runs gc.collect(), slow in loops
    elif ok.any():
        out[ok] = multipletests(p[ok].to_numpy(dtype=float), method="holm")[1]
    return out


def binary_comparison(units: pd.DataFrame, *, control: str, alpha: float = 0.05,
                      column: str = "converted") -> pd.DataFrame:
    """Conversion rate per variant and every treatment against the control.

    Units without an outcome are left out of ``n`` and counted in ``missing``.

    Methods
    -------
    - ``ci_low``/``ci_high``: Wilson score interval of each rate at 1 - alpha.
    - ``diff_ci_low``/``diff_ci_high``: Newcombe's hybrid score interval (method 10, built from the Wilson
      intervals; statsmodels ``confint_proportions_2indep(method="newcomb")``): it keeps its coverage with small
      counts and rates near 0, where the Wald interval does not, and never leaves [-1, 1].
    - ``relative_lift`` = diff / control rate; ``lift_ci_*``: Katz log interval of the rate ratio (delta method on
      log(p_t / p_c), se^2 = 1/x_t - 1/n_t + 1/x_c - 1/n_c), minus 1; missing when an arm has no conversion.
    - ``z``, ``p_value``: pooled two-proportion z-test, two-sided (statsmodels ``proportions_ztest``).
    - ``chi2_p``: Pearson chi-square of the 2x2 table without continuity correction (equals ``p_value``).
    - ``fisher_p``: Fisher's exact test, two-sided, always computed.
    - ``test``: the headline test, ``"fisher"`` when any expected cell of the 2x2 table is below 5, else
      ``"z-test"``; ``p_headline`` is that test's p-value.
    - ``p_holm``: ``p_headline`` Holm-adjusted across the treatments (equal to it with one treatment).

    Parameters
    ----------
    units : DataFrame
        One row per unit (``Hygiene.units``) with ``variant`` and the 0/1 outcome ``column``.
    control : str
        The control variant.
    alpha : float, default 0.05
        1 - confidence of the intervals.
    column : str, default "converted"
        The 0/1 outcome.

    Returns
    -------
    DataFrame
        One row per variant, control first, then the treatments in sorted order: ``variant``, ``n``,
        ``conversions``, ``rate``, ``ci_low``, ``ci_high``, ``missing``, ``n_control``, ``rate_control``, ``diff``,
        ``diff_ci_low``, ``diff_ci_high``, ``relative_lift``, ``lift_ci_low``, ``lift_ci_high``, ``z``,
        ``p_value``, ``chi2_p``, ``fisher_p``, ``test``, ``p_headline``, ``p_holm``; the comparison columns are
        missing on the control row.
    """
    counts = _binary_counts(units, control, column)
    x, n = counts["conversions"].to_numpy(), counts["n"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, x / np.maximum(n, 1), np.nan)
    lo, hi = wilson_interval(x, n, alpha=alpha)
    comp = [dict.fromkeys(BINARY_COLUMNS[9:-1], math.nan)] + [
        _two_proportions(int(x[i]), int(n[i]), int(x[0]), int(n[0]), alpha) for i in range(1, len(x))]
    # one constructor call: inserting columns one by one dominates the run time on small frames
    cols = {c: counts[c].to_numpy() for c in ("n", "conversions", "missing")}
    cols |= {"rate": rate, "ci_low": lo, "ci_high": hi, "n_control": np.full(len(n), n[0]),
             "rate_control": np.full(len(n), rate[0])}
    for col in BINARY_COLUMNS[9:-1]:
        values = [r[col] for r in comp]
        cols[col] = pd.array(values, dtype="str") if col == "test" else np.asarray(values, dtype="float64")
    cols["p_holm"] = _holm(pd.Series(cols["p_headline"])).to_numpy()
    return pd.DataFrame({"variant": counts["variant"].array} | cols)[BINARY_COLUMNS]


# --------------------------------------------------------------------------- continuous outcome


def _welch(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float, float, float, float]:
    """Welch's t-test of mean(a) - mean(b): diff, ci_low, ci_high, t, df, p (two-sided)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        d = float(a.mean() - b.mean()) if na and nb else math.nan
        return d, math.nan, math.nan, math.nan, math.nan, math.nan
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    d = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return d, math.nan, math.nan, math.nan, math.nan, math.nan
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = d / se
    q = stats.t.ppf(1 - alpha / 2, df)
    return d, d - q * se, d + q * se, t, float(df), float(2 * stats.t.sf(abs(t), df))


def continuous_comparison(units: pd.DataFrame, *, control: str, alpha: float = 0.05, column: str = "value",
                          covariate: str = "pre_value") -> pd.DataFrame:
    """Difference in the mean of a numeric outcome, treatment - control, by Welch's t-test and by CUPED.

    CUPED (Deng et al. 2013): per comparison, over the units of both arms with outcome and covariate,
    ``theta = cov(y, x) / var(x)`` and ``y_adj = y - theta (x - mean x)`` (pooled over both arms, so the adjustment
    cannot favour one); the adjusted difference is tested with Welch's t-test on ``y_adj`` (theta taken as known).
    ``variance_reduction = 1 - var(y_adj) / var(y)``, which equals corr(y, x)^2 on those units. The CUPED columns
    are missing when the covariate is absent or constant.

    Parameters
    ----------
    units : DataFrame
        One row per unit with ``variant``, ``column`` and optionally ``covariate``.
    control : str
        The control variant.
    alpha : float, default 0.05
        1 - confidence of the intervals.
    column, covariate : str
        The outcome and the pre-period covariate.

    Returns
    -------
    DataFrame
        One row per treatment (sorted): ``variant``, ``n_control``, ``n_treatment``, ``mean_control``,
        ``mean_treatment``, ``diff``, ``ci_low``, ``ci_high`` (Welch, 1 - alpha), ``t``, ``df`` (Welch-Satterthwaite),
        ``p_value`` (two-sided; scipy ``ttest_ind(equal_var=False)``), ``p_holm`` (Holm across treatments),
        ``theta``, ``cuped_diff``, ``cuped_ci_low``, ``cuped_ci_high``, ``cuped_p_value``, ``cuped_p_holm``,
        ``variance_reduction``.
    """
    if column not in units.columns:
        raise ParamsError(f"the experiment has no {column!r} column (columns: {list(units.columns)})")
    y = pd.to_numeric(units[column], errors="coerce").astype("float64")
    x = (pd.to_numeric(units[covariate], errors="coerce").astype("float64") if covariate in units.columns
         else pd.Series(np.nan, index=units.index))
    variant = units["variant"].astype("str")
    if control not in set(variant):
        raise ParamsError(f"control {control!r} is not a variant of the experiment (variants: {sorted(set(variant))})")
    rows = []
    for v in sorted(set(variant) - {control}):
        arms = variant.isin([control, v]) & y.notna()
        yc, yt = y[arms & (variant == control)].to_numpy(), y[arms & (variant == v)].to_numpy()
        d, lo, hi, t, df, p = _welch(yt, yc, alpha)
        row = {"variant": v, "n_control": len(yc), "n_treatment": len(yt),
               "mean_control": yc.mean() if len(yc) else math.nan, "mean_treatment": yt.mean() if len(yt) else math.nan,
               "diff": d, "ci_low": lo, "ci_high": hi, "t": t, "df": df, "p_value": p}
        both = arms & x.notna()
        xs, ys = x[both].to_numpy(), y[both].to_numpy()
        if len(xs) > 2 and xs.var() > 0 and ys.var() > 0:
            theta = np.cov(ys, xs, ddof=1)[0, 1] / xs.var(ddof=1)
            adj = ys - theta * (xs - xs.mean())
            treated = (variant[both] == v).to_numpy()
            cd, clo, chi, _, _, cp = _welch(adj[treated], adj[~treated], alpha)
            row |= {"theta": float(theta), "cuped_diff": cd, "cuped_ci_low": clo, "cuped_ci_high": chi,
                    "cuped_p_value": cp, "variance_reduction": float(1 - adj.var(ddof=1) / ys.var(ddof=1))}
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in CONTINUOUS_COLUMNS if c not in ("p_holm", "cuped_p_holm")])
    out["p_holm"] = _holm(out["p_value"].astype("float64"))
    out["cuped_p_holm"] = _holm(out["cuped_p_value"].astype("float64"))
    num = [c for c in CONTINUOUS_COLUMNS if c not in ("variant", "n_control", "n_treatment")]
    out[num] = out[num].astype("float64")
    out["variant"] = out["variant"].astype("str")
    return out[CONTINUOUS_COLUMNS]


# --------------------------------------------------------------------------- power


def _effect_size(p_control: float, mde: float) -> float:
    """Cohen's h of the planned lift (the arcsine-transformed difference statsmodels uses)."""
    p_t = p_control + mde
    if not (0 < p_control < 1 and 0 < p_t < 1) or mde == 0:
        raise ParamsError(f"need 0 < p_control < 1, 0 < p_control + mde < 1 and mde != 0; got {p_control}, {mde}")
    return abs(2 * math.asin(math.sqrt(p_t)) - 2 * math.asin(math.sqrt(p_control)))


def achieved_power(p_control: float, mde: float, n_control: int, n_treatment: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided test at level ``alpha`` to detect an absolute lift ``mde`` with these arm sizes.

    Normal approximation on Cohen's h (arcsine transform), both rejection tails counted: equal to statsmodels
    ``NormalIndPower().power(proportion_effectsize(p_control + mde, p_control), n_control, alpha,
    ratio=n_treatment / n_control)``.

    Returns
    -------
    float
        The probability of a significant result when the true lift is ``mde``.
    """
    if n_control <= 0 or n_treatment <= 0:
        return 0.0
    h = _effect_size(p_control, mde)
    crit = stats.norm.isf(alpha / 2)
    shift = h * math.sqrt(n_control * n_treatment / (n_control + n_treatment))
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def required_sample_size(p_control: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant (equal arms) for a two-sided test to detect an absolute lift ``mde`` with ``power``.

    The smallest n with :func:`achieved_power` >= ``power``: Cohen's h with the normal approximation, the method of
    statsmodels ``NormalIndPower().solve_power(proportion_effectsize(...), alpha=, power=)`` rounded up. (The
    textbook pooled/unpooled-variance formula of Fleiss gives numbers within about 1% of it for rates of 5-95%.)

    Returns
    -------
    int
        Units needed in each arm.
    """
    h = _effect_size(p_control, mde)
    n = math.ceil(2 * ((stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)) / h) ** 2)
    # the closed form ignores the far rejection tail, so it can only overshoot: step down while power holds
    while n > 1 and achieved_power(p_control, mde, n - 1, n - 1, alpha=alpha) >= power:
        n -= 1
    while achieved_power(p_control, mde, n, n, alpha=alpha) < power:
        n += 1
    return int(n)


# --------------------------------------------------------------------------- Bayesian


def bayes_beta_binomial(units: pd.DataFrame, *, control: str, draws: int = 200_000, seed: int = 0,
                        prior: tuple[float, float] = (1, 1), credible: float = 0.95,
                        column: str = "converted") -> pd.DataFrame:
    """Beta-binomial posterior of each variant's conversion rate, compared with the control by Monte Carlo.

    Each rate has posterior Beta(a + conversions, b + n - conversions) for the prior Beta(a, b); ``draws`` joint
    draws (seeded, so reruns agree) give the comparisons, with Monte Carlo error about sqrt(p(1-p)/draws).

    Parameters
    ----------
    units : DataFrame
        One row per unit with ``variant`` and the 0/1 ``column``.
    control : str
        The control variant.
    draws, seed : int
        Monte Carlo draws per variant and the generator's seed.
    prior : (float, float), default (1, 1)
        Beta prior parameters (uniform by default).
    credible : float, default 0.95
        Mass of the equal-tailed credible interval.

    Returns
    -------
    DataFrame
        One row per variant, control first: ``variant``, ``n``, ``conversions``, ``posterior_mean``, ``ci_low``,
        ``ci_high`` (equal-tailed credible interval, exact from the Beta quantiles), ``prob_beats_control``
        (P(p_variant > p_control)), ``expected_loss`` (E[max(p_control - p_variant, 0)]: the rate given up on
        average by choosing the variant over the control), ``prob_best`` (P(the variant has the highest rate)).
        ``prob_beats_control`` and ``expected_loss`` are missing on the control row.
    """
    counts = _binary_counts(units, control, column)
    a = prior[0] + counts["conversions"].to_numpy(dtype=float)
    b = prior[1] + (counts["n"] - counts["conversions"]).to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    sample = rng.beta(a[:, None], b[:, None], size=(len(a), draws))
    beats = (sample > sample[0]).mean(axis=1)
    loss = np.maximum(sample[0] - sample, 0.0).mean(axis=1)
    best = np.bincount(sample.argmax(axis=0), minlength=len(a)) / draws
    tail = (1 - credible) / 2
    out = pd.DataFrame({"variant": counts["variant"], "n": counts["n"], "conversions": counts["conversions"],
                        "posterior_mean": a / (a + b), "ci_low": stats.beta.ppf(tail, a, b),
                        "ci_high": stats.beta.isf(tail, a, b), "prob_beats_control": beats, "expected_loss": loss,
                        "prob_best": best})
    out.loc[0, ["prob_beats_control", "expected_loss"]] = np.nan
    return out[BAYES_COLUMNS]


# --------------------------------------------------------------------------- segments


def segment_breakdown(units: pd.DataFrame, *, by: str, control: str, alpha: float = 0.05,
                      column: str = "converted") -> tuple[pd.DataFrame, bool]:
    """The binary comparison within each segment, and whether the segments all reverse the pooled result.

    Units without a segment value or outcome are left out, of the segments and of the pooled difference alike, so
    a reversal is never an artefact of missing data. Per segment: Newcombe interval of the difference and the
    pooled two-proportion z-test (missing when the segment has no conversions or only conversions).

    Simpson's paradox rule: for some treatment, the pooled difference (over the units with a segment) is not zero,
    at least two segments have units in both arms, and in every such segment the difference is non-zero and of the
    opposite sign to the pooled one.

    Parameters
    ----------
    units : DataFrame
        One row per unit with ``variant``, ``column`` and ``by``.
    by : str
        The segment column.
    control : str
        The control variant.

    Returns
    -------
    (DataFrame, bool)
        One row per segment and treatment: ``segment``, ``variant``, ``n_control``, ``conversions_control``,
        ``rate_control``, ``n_treatment``, ``conversions_treatment``, ``rate_treatment``, ``diff``, ``diff_ci_low``,
        ``diff_ci_high``, ``p_value``, ``pooled_diff``, ``opposite_to_pooled``; and the paradox flag.
    """
    if by not in units.columns:
        raise ParamsError(f"the experiment has no {by!r} column (columns: {list(units.columns)})")
    y = pd.to_numeric(units[column], errors="coerce")
    data = units[units[by].notna() & y.notna()]
    pooled = _binary_counts(data, control, column).set_index("variant")
    rows, paradox = [], False
    for v in pooled.index[1:]:
        c, t = pooled.loc[control], pooled.loc[v]
        pooled_diff = t["conversions"] / t["n"] - c["conversions"] / c["n"] if t["n"] and c["n"] else math.nan
        signs = []
        for seg, part in data.groupby(by, sort=True):
            arms = part[part["variant"].isin([control, v])]
            k = arms.assign(y=pd.to_numeric(arms[column], errors="coerce")).groupby("variant")["y"].agg(["size", "sum"])
            nc, xc = (int(k.loc[control, "size"]), int(k.loc[control, "sum"])) if control in k.index else (0, 0)
            nt, xt = (int(k.loc[v, "size"]), int(k.loc[v, "sum"])) if v in k.index else (0, 0)
            comp = _two_proportions(xt, nt, xc, nc, alpha) if nc and nt else {}
            diff = comp.get("diff", math.nan)
            opposite = bool(nc and nt and diff * pooled_diff < 0)
            if nc and nt:
                signs.append(opposite)
            rows.append({"segment": seg, "variant": v, "n_control": nc, "conversions_control": xc,
                         "rate_control": xc / nc if nc else math.nan, "n_treatment": nt, "conversions_treatment": xt,
                         "rate_treatment": xt / nt if nt else math.nan, "diff": diff,
                         "diff_ci_low": comp.get("diff_ci_low", math.nan),
                         "diff_ci_high": comp.get("diff_ci_high", math.nan), "p_value": comp.get("p_value", math.nan),
                         "pooled_diff": pooled_diff, "opposite_to_pooled": opposite})
        if len(signs) >= 2 and pooled_diff != 0 and not math.isnan(pooled_diff) and all(signs):
            paradox = True
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS), paradox


# --------------------------------------------------------------------------- decision


def _num(value) -> float:
    """A float from a cell that may be missing (pd.NA, None, NaN)."""
    try:
        return math.nan if value is None or pd.isna(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def _estimate(row: Mapping) -> dict:
    """The estimate a decision rests on: CUPED when available, else the binary headline test or Welch."""
    get = row.get
    if not math.isnan(_num(get("cuped_p_value"))):
        p = _num(get("cuped_p_holm"))
        return {"estimate": "cuped", "diff": _num(get("cuped_diff")),
                "p": p if not math.isnan(p) else _num(get("cuped_p_value")),
                "ci": [_num(get("cuped_ci_low")), _num(get("cuped_ci_high"))]}
    p = _num(get("p_holm"))
    if "diff_ci_low" in row:  # a binary_comparison row
        head = _num(get("p_headline")) if "p_headline" in row else _num(get("p_value"))
        return {"estimate": str(get("test") or "z-test"), "diff": _num(get("diff")),
                "p": p if not math.isnan(p) else head, "ci": [_num(get("diff_ci_low")), _num(get("diff_ci_high"))]}
    return {"estimate": "welch", "diff": _num(get("diff")), "p": p if not math.isnan(p) else _num(get("p_value")),
            "ci": [_num(get("ci_low")), _num(get("ci_high"))]}


def verdict(binary_or_continuous_row, *, srm_p: float | None, srm_threshold: float = 0.001, alpha: float = 0.05,
            power: float | None = None, mde: float | None = None, target_power: float = MIN_POWER) -> dict:
    """Ship, do not ship, or inconclusive, with the reasons as codes and numbers (the report words them).

    Rules, in order:

    1. ``srm_p < srm_threshold`` -> ``inconclusive`` whatever the outcome (the split is broken, so the arms are
       not comparable); ``srm_failed`` is the first reason and the test's own reason follows it for information.
    2. No p-value (an empty arm, no variation) -> ``inconclusive``, ``not_testable``.
    3. ``p < alpha`` and diff > 0 -> ``ship`` (``significant_gain``); diff < 0 -> ``do_not_ship``
       (``significant_loss``).
    4. Otherwise ``inconclusive`` (``no_significant_difference``), plus ``underpowered`` when the achieved power
       is below 0.8.

    The p-value is the Holm-adjusted one when the row has it (equal to the plain one with a single treatment); for
    a :func:`binary_comparison` row the headline test's (``test``), for a :func:`continuous_comparison` row CUPED's
    when computed, else Welch's.

    Parameters
    ----------
    binary_or_continuous_row : Series or dict
        A treatment row of :func:`binary_comparison` or :func:`continuous_comparison`.
    srm_p : float or None
        p-value of :func:`sample_ratio_test`; None skips the check.
    power : float, optional
        The achieved power; when omitted and ``mde`` is given it is computed for a binary row from its
        ``rate_control``, ``n_control`` and ``n`` (:func:`achieved_power`).
    target_power : float, default 0.8
        Below it an inconclusive result is also ``underpowered`` (``ab_test.power``).
    mde : float, optional
        The smallest absolute lift worth detecting.

    Returns
    -------
    dict
        ``decision`` ("ship", "do_not_ship", "inconclusive"), ``reasons`` (list of dicts with ``code`` and
        numbers), ``estimate`` (which test), ``diff``, ``ci``, ``p_value``, ``power`` (None when unknown).
    """
    row = dict(binary_or_continuous_row)
    est = _estimate(row)
    if power is None and mde is not None and "rate_control" in row:
        rate, n_c, n_t = _num(row.get("rate_control")), _num(row.get("n_control")), _num(row.get("n"))
        if 0 < rate < 1 and 0 < rate + mde < 1 and n_c > 0 and n_t > 0:
            power = achieved_power(rate, mde, int(n_c), int(n_t), alpha=alpha)
    reasons: list[dict] = []
    srm_failed = srm_p is not None and not math.isnan(_num(srm_p)) and srm_p < srm_threshold
    if srm_failed:
        reasons.append({"code": "srm_failed", "p": float(srm_p), "threshold": srm_threshold})
    p, diff = est["p"], est["diff"]
    if math.isnan(p):
        decision = "inconclusive"
        reasons.append({"code": "not_testable", "diff": None if math.isnan(diff) else diff})
    elif p < alpha:
        decision = "ship" if diff > 0 else "do_not_ship"
        reasons.append({"code": "significant_gain" if diff > 0 else "significant_loss", "p": p, "diff": diff,
                        "ci": est["ci"], "alpha": alpha})
    else:
        decision = "inconclusive"
        reasons.append({"code": "no_significant_difference", "p": p, "diff": diff, "ci": est["ci"], "alpha": alpha})
        if power is not None and power < target_power:
            reasons.append({"code": "underpowered", "power": float(power), "mde": mde, "target": target_power})
    if srm_failed:
        decision = "inconclusive"
    return _native({"decision": decision, "reasons": reasons, "estimate": est["estimate"], "diff": diff,
                    "ci": est["ci"], "p_value": p, "power": power})


# --------------------------------------------------------------------------- ab_test.json


def _native(obj):
    """JSON-native copy: numpy scalars to Python, NaN/NA to None, tuples to lists."""
    if isinstance(obj, Mapping):
        return {str(k): _native(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_native(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) or math.isinf(obj) else float(obj)
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj if isinstance(obj, str) else str(obj)


def _records(df: pd.DataFrame | None) -> list[dict] | None:
    return None if df is None else [_native(r) for r in df.to_dict("records")]


def ab_summary_json(hygiene: Hygiene, srm: tuple[float, float], binary: pd.DataFrame, *,
                    continuous: pd.DataFrame | None = None, bayes: pd.DataFrame | None = None,
                    segments: tuple[pd.DataFrame, bool] | None = None, alpha: float = 0.05,
                    srm_threshold: float = 0.001, mde: float | None = None,
                    verdicts: Mapping[str, dict] | None = None) -> dict:
    """The content of ``data/ab_test.json`` (DESIGN.md), JSON-native types only (missing numbers are null).

    With several treatments the top-level comparison is the one with the smallest Holm-adjusted p-value (the first
    in order on ties); ``comparisons`` has every treatment with its own decision.

    Parameters
    ----------
    hygiene : Hygiene
        From :func:`clean_assignment`.
    srm : (float, float)
        From :func:`sample_ratio_test`.
    binary : DataFrame
        From :func:`binary_comparison`.
    continuous, bayes : DataFrame, optional
        From :func:`continuous_comparison` and :func:`bayes_beta_binomial`, included as records when given.
    segments : (DataFrame, bool), optional
        From :func:`segment_breakdown`: the flag is included as ``simpson_paradox``, the table as ``segments``.
    alpha, srm_threshold, mde :
        As for :func:`verdict`.
    verdicts : mapping, optional
        Treatment -> :func:`verdict`, when the report decided on another outcome (``value``) or power target: the
        file then carries the report's decisions. By default each binary row's own verdict.

    Returns
    -------
    dict
        ``srm_chi2``, ``srm_p_value``, ``srm_failed``, ``control``, ``treatment``, ``variants`` [{``name``, ``n``,
        ``conversions``, ``rate``, ``ci_low``, ``ci_high``}], ``diff``, ``diff_ci`` [low, high], ``relative_lift``,
        ``relative_lift_ci``, ``z``, ``p_value`` (the headline test's), ``test``, ``p_z``, ``chi2_p``,
        ``fisher_p``, ``p_holm``, ``alpha``, ``power``, ``mde``, ``decision``, ``reasons``, ``comparisons``,
        ``hygiene`` {``rows_in``, ``rows_kept``, ``rows_excluded``, ``units_in``, ``units_kept``,
        ``excluded_by_rule`` {code: rows}}, and ``continuous``, ``bayes``, ``segments``, ``simpson_paradox`` when
        given.
    """
    chi2, srm_p = srm
    control = str(binary["variant"].iloc[0])
    comparisons = []
    for _, r in binary.iloc[1:].iterrows():
        v = (verdicts or {}).get(r["variant"]) or verdict(r, srm_p=srm_p, srm_threshold=srm_threshold, alpha=alpha,
                                                           mde=mde)
        comparisons.append(_native({
            "treatment": r["variant"], "diff": r["diff"], "diff_ci": [r["diff_ci_low"], r["diff_ci_high"]],
            "relative_lift": r["relative_lift"], "relative_lift_ci": [r["lift_ci_low"], r["lift_ci_high"]],
            "z": r["z"], "p_value": r["p_headline"], "test": r["test"], "p_z": r["p_value"], "chi2_p": r["chi2_p"],
            "fisher_p": r["fisher_p"], "p_holm": r["p_holm"], "power": v["power"], "decision": v["decision"],
            "reasons": v["reasons"]}))
    counts = hygiene.counts.set_index("rule")
    out = {
        "srm_chi2": chi2, "srm_p_value": srm_p,
        "srm_failed": bool(srm_p is not None and not math.isnan(_num(srm_p)) and srm_p < srm_threshold),
        "control": control,
        "variants": [{"name": r["variant"], "n": r["n"], "conversions": r["conversions"], "rate": r["rate"],
                      "ci_low": r["ci_low"], "ci_high": r["ci_high"]} for _, r in binary.iterrows()],
        "alpha": alpha, "mde": mde,
        "hygiene": {"rows_in": counts.loc["input", "rows"], "rows_kept": counts.loc["kept", "rows"],
                    "rows_excluded": counts.loc["excluded", "rows"], "units_in": counts.loc["input", "units"],
                    "units_kept": counts.loc["kept", "units"],
                    "excluded_by_rule": {c: counts.loc[c, "rows"] for c in RULES}},
        "comparisons": comparisons,
    }
    if comparisons:
        holm = [_num(c["p_holm"]) if c["p_holm"] is not None else math.inf for c in comparisons]
        head = comparisons[int(np.argmin(holm))]
        out |= {k: head[k] for k in ("diff", "diff_ci", "relative_lift", "relative_lift_ci", "z", "p_value", "test",
                                     "p_z", "chi2_p", "fisher_p", "p_holm", "power", "decision", "reasons")}
        out["treatment"] = head["treatment"]
    else:
        out |= {"treatment": None, "diff": None, "diff_ci": [None, None], "relative_lift": None,
                "relative_lift_ci": [None, None], "z": None, "p_value": None, "test": None, "p_z": None,
                "chi2_p": None, "fisher_p": None, "p_holm": None, "power": None, "decision": "inconclusive",
                "reasons": [{"code": "not_testable", "diff": None}]}
    if continuous is not None:
        out["continuous"] = _records(continuous)
    if bayes is not None:
        out["bayes"] = _records(bayes)
    if segments is not None:
        out["segments"], out["simpson_paradox"] = _records(segments[0]), bool(segments[1])
    return _native(out)


def value_summary_json(srm: tuple[float, float], continuous: pd.DataFrame, *, control: str,
                       verdicts: Mapping[str, dict], srm_threshold: float = 0.001) -> dict:
    """``data/ab_test.json`` for an experiment with only a ``value`` outcome: DESIGN's conversion keys stay out.

    Returns
    -------
    dict
        ``srm_chi2``, ``srm_p_value``, ``srm_failed``, ``control``, ``test`` ("welch"), ``continuous`` (records of
        :func:`continuous_comparison`) and ``decisions`` (treatment -> :func:`verdict`); JSON-native (NaN as null).
    """
    chi2, srm_p = srm
    return _native({"srm_chi2": chi2, "srm_p_value": srm_p, "control": control, "test": "welch",
                    "srm_failed": bool(not math.isnan(_num(srm_p)) and srm_p < srm_threshold),
                    "continuous": _records(continuous), "decisions": dict(verdicts)})


# --------------------------------------------------------------------------- the analysis on a pipeline


@dataclass(repr=False)
class ABResult(Result):
    """Did the change work (:meth:`funnel_lab.Pipeline.ab_test`): every table of the A/B report (the functions
    above give the columns) and ``decision``, the content of ``data/ab_test.json``."""

    title = "A/B test"
    control: str
    outcome: str
    hygiene: Hygiene
    srm: tuple[float, float]
    split: pd.DataFrame
    binary: pd.DataFrame | None
    continuous: pd.DataFrame | None
    bayes: pd.DataFrame | None
    segments: pd.DataFrame | None
    simpson: bool
    required_n: int | None
    verdicts: dict[str, dict]
    decision: dict

    @property
    def summary(self) -> pd.DataFrame:
        """One row per treatment: the decision, the estimate, its difference from the control with the 95% interval,
        the p-value and the achieved power."""
        rows = [{"variant": variant, "control": self.control, "decision": v["decision"], "estimate": v["estimate"],
                 "diff": v["diff"], "ci_low": (v["ci"] or [None, None])[0], "ci_high": (v["ci"] or [None, None])[1],
                 "p_value": v["p_value"], "power": v["power"]} for variant, v in self.verdicts.items()]
        return pd.DataFrame(rows)

    @property
    def outputs(self) -> dict[str, pd.DataFrame | dict]:
        """``ab_test.json``, the rows set aside, and the segment breakdown when made."""
        out = {"ab_test.json": self.decision, "ab_excluded.csv": self.hygiene.excluded}
        if self.segments is not None:
            out["ab_segments.csv"] = self.segments
        return out


def choose_control(variants, configured: str | None) -> str:
    """``ab_test.control`` when it names a variant; unset, a variant called "control", else the first by name."""
    names = sorted(map(str, set(variants)))
    if configured is not None:
        if configured not in names:
            raise ParamsError(f"ab_test.control: no variant {configured!r} in the experiment table"
                              f"{did_you_mean(configured, names)}")
        return configured
    return "control" if "control" in names else names[0]


def check_params(cfg, experiment: pd.DataFrame) -> None:
    """Refuse an ``ab_test:`` block that cannot run on the cleaned experiment, before any notebook starts.

    Raises
    ------
    ParamsError
        ``ab_test.control`` names no variant, or ``ab_test.outcome`` no column (with a did-you-mean).
    """
    choose_control(experiment["variant"].dropna(), cfg.control)
    if cfg.outcome not in experiment:
        raise ParamsError(f"ab_test.outcome: the experiment table has no {cfg.outcome!r} column"
                          f"{did_you_mean(cfg.outcome, list(experiment.columns))}")


def analyse_ab_test(p) -> ABResult:
    """Hygiene, split check, the comparison of the configured outcome, power, Bayes, segments and the verdicts."""
    cfg = p.params.ab_test
    hygiene = clean_assignment(p.cleaned_table("experiment").data)
    units = hygiene.units
    control = choose_control(units["variant"], cfg.control)
    srm = sample_ratio_test(units, cfg.expected_split)
    counts = units["variant"].value_counts().sort_index()
    expected = pd.Series(cfg.expected_split or {v: 1.0 for v in counts.index}, dtype=float)
    split = pd.DataFrame({"variant": counts.index, "units": counts.to_numpy(),
                          "observed_share": (counts / counts.sum()).to_numpy(),
                          "expected_share": (expected / expected.sum()).reindex(counts.index).to_numpy()})
    has = lambda c: c in units and units[c].notna().any()  # noqa: E731
    binary = binary_comparison(units, control=control, alpha=cfg.alpha) if has("converted") else None
    continuous = (continuous_comparison(units, control=control, alpha=cfg.alpha)
                  if has("value") and units["value"].nunique() > 1 else None)
    bayes = bayes_beta_binomial(units, control=control) if binary is not None else None
    segments, simpson = None, False
    if binary is not None and cfg.segment and has(cfg.segment):
        segments, simpson = segment_breakdown(units, by=cfg.segment, control=control, alpha=cfg.alpha)
    headline = binary if cfg.outcome == "converted" else continuous
    if headline is None:
        raise ParamsError(f"ab_test.outcome: {cfg.outcome!r} has no values in the experiment table")
    rows = headline[headline["variant"] != control] if "diff_ci_low" in headline else headline
    required = None
    if cfg.outcome == "converted" and cfg.mde:
        p0 = float(binary.loc[binary["variant"] == control, "rate"].iloc[0])
        required = required_sample_size(p0, cfg.mde, alpha=cfg.alpha, power=cfg.power)
    verdicts = {row["variant"]: verdict(row, srm_p=srm[1], srm_threshold=cfg.srm_threshold, alpha=cfg.alpha,
                                               mde=cfg.mde if cfg.outcome == "converted" else None,
                                               target_power=cfg.power)
                for _, row in rows.iterrows()}
    if binary is not None:  # the file carries the decisions the page states, whatever the outcome judged
        decision = ab_summary_json(hygiene, srm, binary, continuous=continuous, bayes=bayes,
                                         segments=(segments, simpson) if segments is not None else None,
                                         alpha=cfg.alpha, srm_threshold=cfg.srm_threshold, mde=cfg.mde,
                                         verdicts=verdicts)
    else:  # a value-only experiment: DESIGN's conversion keys stay empty
        decision = value_summary_json(srm, continuous, control=control, verdicts=verdicts,
                                            srm_threshold=cfg.srm_threshold)
    return ABResult(control, cfg.outcome, hygiene, srm, split, binary, continuous, bayes, segments, simpson, required,
                    verdicts, decision)
