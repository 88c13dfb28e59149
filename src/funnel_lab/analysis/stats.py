"""Statistics more than one analysis uses, written once: the Wilson interval, the Newcombe interval of a difference
of two proportions and the comparison of two proportions."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def wilson_interval(successes, n, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, elementwise (NaN where n is 0).

    The same interval as statsmodels' ``proportion_confint(successes, n, alpha, method="wilson")`` (to the last
    digits; the tests compare the two), clipped so that a bound never falls on the wrong side of the proportion.

    Examples
    --------
    >>> low, high = wilson_interval([3], [10])
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.1078, 0.6032)
    """
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        # at p = 0 or 1 the bound equals p; rounding can put it a hair on the wrong side
        return np.minimum(centre - half, p), np.maximum(centre + half, p)


def newcombe_interval(x1, n1, x0, n0, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval of p1 - p0 (his method 10), built from the two Wilson intervals."""
    l1, u1 = wilson_interval(x1, n1, alpha=alpha)
    l0, u0 = wilson_interval(x0, n0, alpha=alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p0 = np.asarray(x1, float) / np.asarray(n1, float), np.asarray(x0, float) / np.asarray(n0, float)
    d = p1 - p0
    return d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def two_proportion_test(x1: int, n1: int, x0: int, n0: int) -> dict[str, float | str]:
    """Compare the proportions x1 / n1 and x0 / n0 (e.g. treatment and control, or a stage and the one below).

    Returns
    -------
    dict
        ``z`` ((p1 - p0) over the pooled standard error) and its two-sided ``p_value``; ``chi2_p`` (Pearson's
        chi-square without continuity correction); ``fisher_p`` (Fisher's exact test); ``test``: ``"fisher"`` when an
        expected cell count is below 5 (the normal approximation does not hold), else ``"z-test"``; ``p_headline``:
        the p-value of ``test``. Two groups that are both all-successes or all-failures give ``p_headline`` 1 (no
        difference seen); an empty group gives NaN.

    Examples
    --------
    >>> r = two_proportion_test(60, 500, 50, 500)
    >>> r["test"], round(r["z"], 3), round(r["p_value"], 3)
    ('z-test', 1.008, 0.313)
    """
    nan = math.nan
    p1, p0 = (x1 / n1 if n1 else nan), (x0 / n0 if n0 else nan)
    out: dict[str, float | str] = {}
    pooled = (x1 + x0) / (n1 + n0) if n1 + n0 else nan
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0)) if n1 and n0 else nan
    if se0 and not math.isnan(se0):
        out["z"] = (p1 - p0) / se0
        out["p_value"] = float(2 * stats.norm.sf(abs(out["z"])))
    else:
        out["z"] = out["p_value"] = nan
    table = np.array([[x1, n1 - x1], [x0, n0 - x0]], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / max(table.sum(), 1)
    out["chi2_p"] = (float(stats.chi2_contingency(table, correction=False)[1])
                     if (expected > 0).all() else nan)
    out["fisher_p"] = float(stats.fisher_exact(table.astype(int))[1]) if n1 and n0 else nan
    out["test"] = "fisher" if (expected < 5).any() else "z-test"
    out["p_headline"] = out["fisher_p"] if out["test"] == "fisher" else out["p_value"]
    return out
