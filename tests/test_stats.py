"""The statistics shared by several analyses, against statsmodels and scipy computed directly."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency, fisher_exact
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from funnel_lab.analysis.stats import two_proportion_test, wilson_interval


def test_wilson_matches_statsmodels():
    won, n = np.array([0, 3, 50, 99, 10]), np.array([10, 7, 120, 100, 10])
    low, high = wilson_interval(won, n)
    ref_low, ref_high = proportion_confint(won, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)


def test_wilson_matches_statsmodels_at_other_levels_on_many_counts():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 5000, 2000).astype(float)
    won = np.floor(rng.random(2000) * (n + 1))
    for alpha in (0.01, 0.05, 0.2):
        low, high = wilson_interval(won, n, alpha=alpha)
        ref_low, ref_high = proportion_confint(won, n, alpha=alpha, method="wilson")
        np.testing.assert_allclose(low, ref_low, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, atol=1e-12)


def test_wilson_bounds_contain_the_rate_at_zero_and_one():
    low, high = wilson_interval(np.array([0, 7, 3]), np.array([7, 7, 9]))
    p = np.array([0, 1, 3 / 9])
    assert (low <= p).all() and (p <= high).all() and low[0] == 0 and high[1] == 1
    assert np.isnan(wilson_interval([0], [0])[0][0])


def test_two_proportions_z_chi_square_and_fisher_match_statsmodels_and_scipy():
    r = two_proportion_test(60, 500, 45, 520)
    z, p = proportions_ztest([60, 45], [500, 520])  # pooled variance, two-sided
    assert r["z"] == pytest.approx(z, rel=1e-12) and r["p_value"] == pytest.approx(p, rel=1e-12)
    table = [[60, 440], [45, 475]]
    assert r["chi2_p"] == pytest.approx(chi2_contingency(table, correction=False)[1], rel=1e-12)
    assert r["fisher_p"] == pytest.approx(fisher_exact(table)[1], rel=1e-12)
    assert r["test"] == "z-test" and r["p_headline"] == r["p_value"]


def test_two_proportions_small_and_degenerate_counts():
    assert two_proportion_test(0, 7, 0, 4)["p_headline"] == 1.0  # both all lost: no difference seen
    small = two_proportion_test(3, 4, 1, 4)  # expected cells of 2: Fisher's exact test decides
    assert small["test"] == "fisher" and small["p_headline"] == pytest.approx(fisher_exact([[3, 1], [1, 3]])[1])
    assert np.isnan(two_proportion_test(3, 4, 0, 0)["p_headline"])  # an empty group: nothing to compare
