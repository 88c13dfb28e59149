"""Regression fits against statsmodels and scikit-learn called directly, hand calculations and the demo's truth."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import funnel_lab
from conftest import ROOT
from funnel_lab.analysis.regression import (COEFFICIENT_COLUMNS, analysis_frame, calibration_by_decile, check_formula,
                                   coefficients_csv, fit_linear, fit_logit, holdout_auc, strongest_drivers, vif_table)

TRUE_FORMULA = ("won ~ meetings + emails_replied + demo + trial + quote_sent + budget_confirmed"
                " + decision_maker_engaged + np.log1p(visits) + C(source, Treatment(reference='Web'))"
                " + C(segment, Treatment(reference='SMB'))")


def _synthetic(n: int = 1500, seed: int = 5) -> pd.DataFrame:
    """A logit world with owner clusters, a yes/no feature, a count and a text category; a few missing cells."""
    rng = np.random.default_rng(seed)
    owners = np.array([f"owner_{i:02d}" for i in range(30)])
    df = pd.DataFrame({
        "owner": rng.choice(owners, n),
        "x1": rng.normal(size=n),
        "demo": rng.random(n) < 0.4,
        "visits": rng.poisson(4, n),
        "seg": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    })
    owner_effect = pd.Series(rng.normal(0, 0.4, len(owners)), index=owners)
    eta = (-0.5 + 0.8 * df["x1"] + 0.6 * df["demo"] + 0.3 * np.log1p(df["visits"])
           + df["seg"].map({"a": 0.0, "b": -0.5, "c": 0.4}) + df["owner"].map(owner_effect))
    df["won"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["amount"] = np.round(np.exp(8 + 0.3 * df["x1"] + 0.5 * df["demo"] + rng.normal(0, 0.6, n)), 2)
    df.loc[df.index[::97], "x1"] = np.nan
    df.loc[df.index[5::131], "amount"] = 0.0
    df.loc[df.index[7::149], "amount"] = -10.0
    return df.astype({"seg": "str", "owner": "str", "demo": "boolean"})


def _for_statsmodels(df: pd.DataFrame) -> pd.DataFrame:
    """The same rows as plain numpy types (patsy reads a bool column as a category), complete on x1."""
    return df.dropna(subset=["x1"]).astype({"demo": "int64", "seg": "object", "owner": "object"})


FORMULA = "won ~ x1 + demo + np.log1p(visits) + C(seg, Treatment(reference='b'))"


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return _synthetic()


# ----------------------------------------------------------------------------------------------- logit vs statsmodels

@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_fit_logit_equals_statsmodels_with_cluster_errors(synthetic, alpha):
    plain = _for_statsmodels(synthetic)
    ref = smf.logit(FORMULA, data=plain).fit(disp=0, cov_type="cluster", cov_kwds={"groups": plain["owner"]})
    fit = fit_logit(synthetic, FORMULA, cluster="owner", alpha=alpha)
    c = fit.coefficients.set_index("term")
    assert list(c.index) == list(ref.params.index)
    ci = ref.conf_int(alpha=alpha)
    np.testing.assert_allclose(c["coef"], ref.params, rtol=1e-8)
    np.testing.assert_allclose(c["std_err"], ref.bse, rtol=1e-8)
    np.testing.assert_allclose(c["z"], ref.tvalues, rtol=1e-8)
    np.testing.assert_allclose(c["p_value"], ref.pvalues, rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(c["ci_low"], ci[0], rtol=1e-8)
    np.testing.assert_allclose(c["ci_high"], ci[1], rtol=1e-8)
    np.testing.assert_allclose(c["odds_ratio"], np.exp(ref.params), rtol=1e-8)
    np.testing.assert_allclose(c["or_ci_low"], np.exp(ci[0]), rtol=1e-8)
    np.testing.assert_allclose(c["or_ci_high"], np.exp(ci[1]), rtol=1e-8)
    assert fit.cov_type == "cluster" and fit.n_clusters == plain["owner"].nunique() == 30
    assert fit.n == fit.n_fit == ref.nobs == len(plain) and fit.events == plain["won"].sum()
    assert fit.n_dropped_missing == synthetic["x1"].isna().sum() > 0
    assert fit.converged and fit.problems == []
    # the levels and transforms the report layer reads
    assert c.loc["C(seg, Treatment(reference='b'))[T.c]", ["variable", "level"]].tolist() == ["seg", "c"]
    assert c.loc["np.log1p(visits)", ["variable", "transform"]].tolist() == ["visits", "log1p"]

    me = ref.get_margeff(at="overall").summary_frame(alpha=alpha)
    got = fit.marginal_effects.set_index("term")
    assert list(got.index) == list(me.index)
    for mine, theirs in (("dydx", "dy/dx"), ("std_err", "Std. Err."), ("z", "z"), ("p_value", "Pr(>|z|)"),
                         ("ci_low", "Conf. Int. Low"), ("ci_high", "Cont. Int. Hi.")):
        np.testing.assert_allclose(got[mine], me[theirs], rtol=1e-6, err_msg=mine)


def test_fit_logit_without_cluster_is_nonrobust(synthetic):
    plain = _for_statsmodels(synthetic)
    ref = smf.logit(FORMULA, data=plain).fit(disp=0)
    fit = fit_logit(synthetic, FORMULA)
    assert fit.cov_type == "nonrobust" and fit.n_clusters is None
    np.testing.assert_allclose(fit.coefficients["std_err"], ref.bse, rtol=1e-8)


def test_few_clusters_and_few_events_are_reported(synthetic):
    small = synthetic.iloc[:80].assign(owner=lambda d: d["owner"].str[:-1])  # 3 owners
    fit = fit_logit(small, FORMULA, cluster="owner")
    codes = {p["code"]: p for p in fit.problems}
    assert codes["cluster_too_few"]["n_clusters"] == small["owner"].nunique() == 3
    y = small.dropna(subset=["x1"])["won"]
    assert codes["few_events_per_term"]["events_per_term"] == pytest.approx(min(y.sum(), len(y) - y.sum()) / 5)


# ------------------------------------------------------------------------------------------------------- the demo

def _truth_names(logistic: dict) -> dict[str, float]:
    """The generator's coefficient names as they come out of TRUE_FORMULA."""
    out = {"Intercept": logistic["intercept"]}
    for name, beta in logistic["coefficients"].items():
        if name == "log_visits":
            name = "np.log1p(visits)"
        elif name.startswith("source["):
            name = "C(source, Treatment(reference='Web'))" + name.removeprefix("source")
        elif name.startswith("segment["):
            name = "C(segment, Treatment(reference='SMB'))" + name.removeprefix("segment")
        out[name] = beta
    return out


def _demo_fit(project, alpha):
    ctx = funnel_lab.load(project / "params" / "demo.yaml")
    frame = analysis_frame(ctx.opportunities, "won")
    truth = json.loads((project / "data" / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    fit = fit_logit(frame.data, TRUE_FORMULA, cluster="owner", alpha=alpha)
    return ctx, frame, fit, _truth_names(truth["logistic"])


@pytest.fixture(scope="module")
def demo_small(demo_project):
    """The shared 1,500-row demo with the true formula fitted at a 99% level that holds for all 16 at once."""
    return _demo_fit(demo_project, 0.01 / 16)


def test_demo_analysis_frame_counts(demo_small):
    ctx, frame, _, _ = demo_small
    status = ctx.opportunities["status"].value_counts()
    assert frame.n_in == len(ctx.opportunities) and frame.n == status["won"] + status["lost"]
    assert frame.left_out == {"open": status["open"]}
    assert frame.data["won"].dtype == "int64" and frame.data["won"].sum() == status["won"]
    assert frame.data["demo"].dtype == "int64" and set(frame.data["demo"]) <= {0, 1}
    assert (frame.data["demo"] == ctx.opportunities.loc[frame.data.index, "demo"].astype(int)).all()


def _truth_outside_intervals(coefficients: pd.DataFrame, truth: dict) -> dict:
    """True coefficients that fall outside their fitted interval, with the interval (empty when all are inside)."""
    return {k: (v, coefficients.loc[k, "ci_low"], coefficients.loc[k, "ci_high"]) for k, v in truth.items()
            if not coefficients.loc[k, "ci_low"] <= v <= coefficients.loc[k, "ci_high"]}


def test_demo_true_model_within_simultaneous_99pct_intervals(demo_small):
    # 1,500 rows: this seed's sample puts Event (true 0.15) 3.3 standard errors away even on the generator's own
    # clean table, so per-coefficient 99% intervals would miss by chance; Bonferroni's 99% for all 16 holds
    _, _, fit, truth = demo_small
    c = fit.coefficients.set_index("term")
    assert set(c.index) == set(truth) and not _truth_outside_intervals(c, truth)
    # every coefficient that is clearly non-zero (p < 1%) has the true sign
    clear = c[c["p_value"] < 0.01]
    assert len(clear) >= 8
    assert all(np.sign(clear.loc[k, "coef"]) == np.sign(truth[k]) for k in clear.index)
    assert fit.cov_type == "cluster" and fit.n_clusters == 40 and fit.converged


def test_demo_params_formula_runs_and_reads(demo_small):
    ctx, frame, _, _ = demo_small
    reg = ctx.params.regression
    fit = fit_logit(frame.data, reg.formula, cluster=reg.cluster)
    assert fit.converged and not {p["code"] for p in fit.problems} & {"perfect_separation", "fit_failed"}
    plain = frame.data.dropna(subset=["meetings", "emails_replied", "demo", "budget_confirmed", "source", "owner"])
    assert fit.n == len(plain) and fit.events == plain["won"].sum()
    top = strongest_drivers(fit)
    # the demo's truth: meetings, demo and budget raise the odds of winning
    assert len(top) == 3 and (top["direction"] == "up").all()


@pytest.fixture(scope="module")
def demo_large(demo_default):
    """The demo at the generator's default size and seed (20,000 rows, seed 7), through the same params."""
    return _demo_fit(demo_default, 0.01)


def test_demo_true_model_within_each_99pct_interval_and_signs(demo_large):
    _, _, fit, truth = demo_large
    c = fit.coefficients.set_index("term")
    assert set(c.index) == set(truth) and not _truth_outside_intervals(c, truth)
    assert all(np.sign(c.loc[k, "coef"]) == np.sign(v) for k, v in truth.items())
    # "each extra meeting multiplies the odds of winning by ...": exp(0.27) = 1.31 inside the reading's interval
    top = strongest_drivers(fit, k=20).set_index("term")
    assert top.loc["meetings", "or_ci_low"] <= np.exp(truth["meetings"]) <= top.loc["meetings", "or_ci_high"]


# ------------------------------------------------------------------------------------ separation, convergence

def test_perfect_separation_is_reported_not_raised():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["won"] = (rng.random(300) < 0.4).astype(int)
    df["budget_confirmed"] = df["won"].astype(bool)  # the outcome itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks either
        fit = fit_logit(df, "won ~ x + budget_confirmed")
    sep = [p for p in fit.problems if p["code"] == "perfect_separation"]
    assert sep and sep[0]["terms"] == ["budget_confirmed"] and sep[0]["kind"] == "complete"
    assert sep[0]["action"] == "refit_without_terms"
    c = fit.coefficients.set_index("term")
    assert c.loc["budget_confirmed", "note"] == "perfect_separation" and np.isnan(c.loc["budget_confirmed", "coef"])
    ref = smf.logit("won ~ x", data=df).fit(disp=0)
    np.testing.assert_allclose(c.loc[["Intercept", "x"], "coef"], ref.params, rtol=1e-8)
    assert strongest_drivers(fit)["term"].tolist() in ([], ["x"])


def test_quasi_separation_by_a_level_sets_its_rows_aside():
    rng = np.random.default_rng(4)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "source": rng.choice(["Web", "Event"], n)})
    df["won"] = (rng.random(n) < 1 / (1 + np.exp(-0.7 * df["x"]))).astype(int)
    df.loc[:6, "source"] = "Partner"  # seven deals, all won
    df.loc[:6, "won"] = 1
    fit = fit_logit(df.astype({"source": "str"}), "won ~ x + C(source)")
    sep = next(p for p in fit.problems if p["code"] == "perfect_separation")
    assert sep["terms"] == ["C(source)[T.Partner]"] and sep["kind"] == "quasi" and sep["rows_set_aside"] == 7
    assert fit.n == n and fit.n_fit == n - 7 and fit.events_fit == fit.events - 7 and fit.n_set_aside == 7
    ref = smf.logit("won ~ x + C(source)", data=df[df["source"] != "Partner"]).fit(disp=0)
    c = fit.coefficients.set_index("term")
    np.testing.assert_allclose(c.loc[ref.params.index, "coef"], ref.params, rtol=1e-8)


def test_joint_separation_found_by_the_fit():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    df["won"] = (df["x1"] + df["x2"] > 0).astype(int)  # neither alone separates
    fit = fit_logit(df, "won ~ x1 + x2")
    sep = next(p for p in fit.problems if p["code"] == "perfect_separation")
    assert sep["detected_by"] == "fit" and set(sep["terms"]) == {"x1", "x2"} and sep["kind"] == "complete"


def test_non_convergence_is_reported(synthetic):
    plain = _for_statsmodels(synthetic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.logit(FORMULA, data=plain).fit(disp=0, maxiter=1)
    fit = fit_logit(synthetic, FORMULA, maxiter=1)
    assert not fit.converged and not ref.mle_retvals["converged"]
    assert {"code": "not_converged", "iterations": 1, "maxiter": 1} in fit.problems
    np.testing.assert_allclose(fit.coefficients["coef"], ref.params, rtol=1e-8)


def test_constant_outcome_is_a_problem_not_an_error():
    df = pd.DataFrame({"won": [1] * 30, "x": np.arange(30.0)})
    fit = fit_logit(df, "won ~ x")
    assert fit.result is None and {"code": "outcome_constant", "value": 1} in fit.problems
    assert fit.coefficients["coef"].isna().all()


def test_collinear_column_is_left_out():
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["x_again"] = df["x"]  # an exact copy: not identifiable
    df["won"] = (rng.random(200) < 1 / (1 + np.exp(-df["x"]))).astype(int)
    fit = fit_logit(df, "won ~ x + x_again")
    assert {"code": "collinear_terms", "terms": ["x_again"]} in fit.problems
    np.testing.assert_allclose(fit.coefficients["coef"].iloc[:2], smf.logit("won ~ x", df).fit(disp=0).params)


# ------------------------------------------------------------------------------------------- diagnostics, holdout

def test_vif_is_one_over_one_minus_r_squared():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    df = pd.DataFrame({"won": rng.integers(0, 2, 500), "a": a, "b": 0.8 * a + rng.normal(0, 0.6, 500)})
    r2 = np.corrcoef(df["a"], df["b"])[0, 1] ** 2
    vif = vif_table(df, "won ~ a + b").set_index("term")["vif"]
    assert list(vif.index) == ["a", "b"]
    np.testing.assert_allclose(vif, [1 / (1 - r2)] * 2, rtol=1e-10)


def test_calibration_by_decile_by_hand():
    p = np.array([0.05, 0.95, 0.10, 0.90, 0.15, 0.85, 0.20, 0.80, 0.25, 0.75,
                  0.30, 0.70, 0.35, 0.65, 0.40, 0.60, 0.45, 0.55, 0.50, 0.52])
    y = np.array([0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1])
    out = calibration_by_decile(y, p)
    # sorted p: .05 .10 | .15 .20 | .25 .30 | .35 .40 | .45 .50 | .52 .55 | .60 .65 | .70 .75 | .80 .85 | .90 .95
    # their y:   0   0  |  0   1  |  0   0  |  0   1  |  0   1  |  1   1  |  0   1  |  1   0  |  1   1  |  1   1
    assert out["decile"].tolist() == list(range(1, 11)) and (out["n"] == 2).all()
    np.testing.assert_allclose(out["mean_predicted"], [0.075, 0.175, 0.275, 0.375, 0.475, 0.535, 0.625, 0.725,
                                                       0.825, 0.925])
    np.testing.assert_allclose(out["observed_rate"], [0, 0.5, 0, 0.5, 0.5, 1, 0.5, 0.5, 1, 1])
    # a missing pair is left out, and 11 pairs give deciles of one or two
    odd = calibration_by_decile(np.append(y[:11], 1), np.append(p[:11], np.nan))
    assert odd["n"].sum() == 11 and odd["decile"].max() == 10


def test_holdout_auc_equals_sklearn_on_the_same_split(synthetic):
    plain = _for_statsmodels(synthetic).reset_index(drop=True)
    idx = np.arange(len(plain))
    train, test = train_test_split(idx, test_size=0.25, stratify=plain["won"], random_state=3)
    ref = smf.logit(FORMULA, data=plain.iloc[train]).fit(disp=0)
    expected = roc_auc_score(plain["won"].iloc[test], ref.predict(plain.iloc[test]))
    assert holdout_auc(synthetic, FORMULA, test_share=0.25, seed=3) == pytest.approx(expected, abs=1e-12)
    assert 0.6 < expected < 0.9


# ----------------------------------------------------------------------------------------------------------- OLS

def test_fit_linear_hc3_equals_statsmodels(synthetic):
    plain = _for_statsmodels(synthetic)
    formula = "amount ~ x1 + demo + C(seg) + I(visits ** 2)"
    ref = smf.ols(formula, data=plain).fit(cov_type="HC3")
    fit = fit_linear(synthetic, formula)
    c = fit.coefficients.set_index("term")
    assert list(c.index) == list(ref.params.index) and "pct_effect" not in c
    ci = ref.conf_int()
    for mine, theirs in (("coef", ref.params), ("std_err", ref.bse), ("t", ref.tvalues), ("p_value", ref.pvalues),
                         ("ci_low", ci[0]), ("ci_high", ci[1])):
        np.testing.assert_allclose(c[mine], theirs, rtol=1e-8, err_msg=mine)
    assert fit.n == ref.nobs and fit.r_squared == pytest.approx(ref.rsquared)
    pd.testing.assert_series_equal(fit.fitted, ref.fittedvalues, check_names=False)
    pd.testing.assert_series_equal(fit.residuals, ref.resid, check_names=False)
    assert c.loc["I(visits ** 2)", "transform"] == "power2"
    out = coefficients_csv(fit)
    assert list(out.columns[:7]) == COEFFICIENT_COLUMNS and out["odds_ratio"].isna().all()


def test_fit_linear_log_outcome(synthetic):
    plain = _for_statsmodels(synthetic)
    positive = plain[plain["amount"] > 0]
    ref = smf.ols("np.log(amount) ~ x1 + demo", data=positive).fit(cov_type="HC3")
    fit = fit_linear(synthetic, "amount ~ x1 + demo", log_outcome=True)
    c = fit.coefficients.set_index("term")
    np.testing.assert_allclose(c["coef"], ref.params, rtol=1e-8)
    np.testing.assert_allclose(c["std_err"], ref.bse, rtol=1e-8)
    np.testing.assert_allclose(c.loc[["x1", "demo"], "pct_effect"], np.exp(ref.params[["x1", "demo"]]) - 1)
    np.testing.assert_allclose(c.loc[["x1", "demo"], "pct_ci_low"], np.exp(ref.conf_int()[0][["x1", "demo"]]) - 1)
    assert np.isnan(c.loc["Intercept", "pct_effect"])
    assert fit.n_dropped_nonpositive == (plain["amount"] <= 0).sum() > 0
    assert fit.n_dropped_missing == synthetic["x1"].isna().sum()
    assert fit.n == len(positive) and c.loc["demo", "pct_effect"] == pytest.approx(np.exp(0.5) - 1, abs=0.15)


# ------------------------------------------------------------------------------------------------------- readings

def test_strongest_drivers_and_csv_columns(synthetic):
    plain = _for_statsmodels(synthetic)
    ref = smf.logit(FORMULA, data=plain).fit(disp=0)
    fit = fit_logit(synthetic, FORMULA)
    p = ref.pvalues.drop("Intercept")
    expected = p[p < 0.05].sort_values().index[:2].tolist()
    top = strongest_drivers(fit, k=2)
    assert top["term"].tolist() == expected
    assert list(top.columns) == ["term", "variable", "level", "transform", "odds_ratio", "or_ci_low", "or_ci_high",
                                 "p_value", "direction"]
    assert top["direction"].tolist() == ["up" if ref.params[t] > 0 else "down" for t in expected]
    np.testing.assert_allclose(top["odds_ratio"], np.exp(ref.params[expected]))
    out = coefficients_csv(fit)
    assert list(out.columns[:7]) == COEFFICIENT_COLUMNS
    np.testing.assert_allclose(out["odds_ratio"], np.exp(ref.params))


def test_analysis_frame_for_converted_and_bad_outcomes():
    df = pd.DataFrame({"converted": pd.array([1, 0, None, 1], dtype="Int64"),
                       "flag": pd.array([True, False, True, None], dtype="boolean")})
    frame = analysis_frame(df, "converted")
    assert frame.left_out == {"outcome_missing": 1} and frame.n == 3 and frame.n_in == 4
    assert frame.data["converted"].dtype == "int64"
    assert frame.data["flag"].tolist()[:2] == [1.0, 0.0] and np.isnan(frame.data["flag"].iloc[2])
    with pytest.raises(ValueError, match="did you mean 'converted'"):
        analysis_frame(df, "convertd")
    with pytest.raises(ValueError, match="0/1"):
        analysis_frame(df.assign(converted=pd.array([2, 0, 1, 1], dtype="Int64")), "converted")


# ------------------------------------------------------------------------------------------------ formula whitelist

COLUMNS = ["won", "x", "meetings", "source", "segment", "visits", "amount"]


@pytest.mark.parametrize("formula, fragment", [
    ('won ~ __import__("os")', '__import__("os")'),
    ("won ~ x.__class__", "x.__class__"),
    ('won ~ eval("1")', 'eval("1")'),
    ("won ~ np.exp(x)", "np.exp(x)"),
    ("won ~ x + os.system('ls')", "os.system('ls')"),
    ("won ~ (lambda: 1)()", "(lambda: 1)()"),
    ("won ~ x * meetings", "x * meetings"),
    ("won ~ x:meetings", "x:meetings"),
    ("won ~ x[0]", "x[0]"),
    ("won ~ C(__builtins__)", "C(__builtins__)"),
    ("won ~ C(source, Sum)", "C(source, Sum)"),
    ("won ~ C(source, Treatment(reference=x))", "C(source, Treatment(reference=x))"),
    ("won ~ np.log(x + 1)", "np.log(x + 1)"),
    ("won ~ I(x ** 2 + meetings)", "I(x ** 2 + meetings)"),
    ("won ~ I(x ** 9)", "I(x ** 9)"),
    ("won ~ x - meetings", "- meetings"),
    ("won ~ 'text'", "'text'"),
    ("np.log(won) ~ x", "np.log(won)"),
])
def test_whitelist_refuses(formula, fragment):
    with pytest.raises(ValueError) as err:
        check_formula(formula, COLUMNS)
    assert fragment in str(err.value)
    with pytest.raises(ValueError):
        fit_logit(pd.DataFrame({c: [0, 1] for c in COLUMNS}), formula)


@pytest.mark.parametrize("formula, used", [
    ("won ~ x", ["won", "x"]),
    ("won ~ x + meetings - 1", ["won", "x", "meetings"]),
    ("won ~ 0 + x", ["won", "x"]),
    ("won ~ x + 1", ["won", "x"]),
    ("won ~ C(source) + C(segment, Treatment(reference='SMB'))", ["won", "source", "segment"]),
    ('won ~ C(source, Treatment("Web"))', ["won", "source"]),
    ("won ~ np.log1p(visits) + np.log(amount) + I(x ** 2) + x", ["won", "visits", "amount", "x"]),
    ("won ~ source", ["won", "source"]),
    ("won ~ 1", ["won"]),
])
def test_whitelist_accepts(formula, used):
    assert check_formula(formula, COLUMNS) == used


def test_unknown_column_and_reference_level_get_did_you_mean(synthetic):
    with pytest.raises(ValueError, match="unknown column 'meetigns'; did you mean 'meetings'"):
        check_formula("won ~ meetigns", COLUMNS)
    with pytest.raises(ValueError, match="unknown column 'onwer'; did you mean 'owner'"):
        fit_logit(synthetic, "won ~ x1", cluster="onwer")
    with pytest.raises(ValueError, match="reference level 'cc' .* did you mean 'c'"):
        fit_logit(synthetic, "won ~ x1 + C(seg, Treatment(reference='cc'))")
    with pytest.raises(ValueError, match="0/1"):
        fit_logit(synthetic, "amount ~ x1")


# ------------------------------------------------------------------------------------------------------ real data

@pytest.mark.shared_data
def test_xeducation_logit_counts_and_time_on_site(shared_data):
    opp = funnel_lab.load(ROOT / "params" / "examples" / "xeducation_leads.yaml").cleaned_table("opportunities").data
    frame = analysis_frame(opp, "won")
    formula = "won ~ total_time_spent_on_website + total_visits + C(lead_origin)"
    fit = fit_logit(frame.data, formula)

    raw = pd.read_csv(shared_data / "xeducation_leads" / "Leads.csv")
    assert len(raw) == 9240
    used = ["Total Time Spent on Website", "TotalVisits", "Lead Origin"]
    complete = raw.dropna(subset=used + ["Converted"])
    # a level whose leads all share one outcome is set aside with its rows
    per_level = complete.groupby("Lead Origin")["Converted"].agg(["size", "nunique", "sum"])
    fixed = per_level[per_level["nunique"] == 1]
    assert fit.n == len(complete) and fit.events == complete["Converted"].sum()
    assert fit.n_dropped_missing == len(raw) - len(complete)
    assert fit.n_fit == len(complete) - fixed["size"].sum()
    assert fit.events_fit == complete["Converted"].sum() - fixed["sum"].sum()
    assert (fit.n, fit.events) == (9103, 3461)

    kept = complete[~complete["Lead Origin"].isin(fixed.index)].rename(columns=lambda c: c.replace(" ", "_"))
    ref = smf.logit("Converted ~ Total_Time_Spent_on_Website + TotalVisits + C(Lead_Origin)", data=kept).fit(disp=0)
    c = fit.coefficients[fit.coefficients["note"] == ""]
    np.testing.assert_allclose(c["coef"], ref.params.to_numpy(), rtol=1e-7)
    time_on_site = fit.coefficients.set_index("term").loc["total_time_spent_on_website"]
    assert time_on_site["odds_ratio"] > 1 and time_on_site["or_ci_low"] > 1
    assert fit.converged


# ------------------------------------------------------------------------------------- the analysis on a pipeline


def _stub(opportunities: pd.DataFrame, **regression):
    """What :func:`analyse_regression` and :func:`check_params` read of a :class:`funnel_lab.Pipeline`."""
    from types import SimpleNamespace as NS

    from funnel_lab.config import Regression

    return NS(opportunities=opportunities, params=NS(regression=Regression.model_validate(regression)))


def test_the_regression_analysis_against_statsmodels(synthetic):
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    from funnel_lab.analysis.regression import analyse_regression

    opp = synthetic.assign(opportunity_id=[f"d{i}" for i in range(len(synthetic))],
                           status=np.where(synthetic["won"] == 1, "won", "lost"), unused=1.0)
    r = analyse_regression(_stub(opp, formula=FORMULA, cluster="owner",
                                 linear={"formula": "amount ~ x1 + demo", "log": True}))
    plain = _for_statsmodels(synthetic)
    ref = smf.logit(FORMULA, data=plain).fit(disp=0, cov_type="cluster", cov_kwds={"groups": plain["owner"]})
    s = r.summary.set_index("term")
    assert list(s.columns) == ["odds_ratio", "or_ci_low", "or_ci_high", "p_value"]
    np.testing.assert_allclose(s["odds_ratio"], np.exp(ref.params), rtol=1e-8)
    np.testing.assert_allclose(s["p_value"], ref.pvalues, rtol=1e-6)
    assert "unused" not in r.frame.data.columns and r.frame.n == len(synthetic)
    # the calibration by decile of the fitted chances (rank r of n in decile 10 r // n + 1), counted here
    fitted = np.asarray(ref.predict())
    decile = np.empty(len(fitted), dtype="int64")
    decile[np.argsort(fitted, kind="stable")] = np.arange(len(fitted)) * 10 // len(fitted) + 1
    by_decile = pd.DataFrame({"d": decile, "p": fitted, "y": ref.model.endog}).groupby("d")
    cal = r.calibration.set_index("decile")
    assert cal.index.tolist() == list(range(1, 11)) and cal["n"].tolist() == by_decile.size().tolist()
    np.testing.assert_allclose(cal["events"], by_decile["y"].sum(), rtol=1e-12)
    np.testing.assert_allclose(cal["mean_predicted"], by_decile["p"].mean(), rtol=1e-12)
    np.testing.assert_allclose(cal["observed_rate"], by_decile["y"].mean(), rtol=1e-12)
    # the VIFs: statsmodels' on the design it fitted, the intercept left out
    exog = ref.model.exog
    np.testing.assert_allclose(r.vif["vif"], [variance_inflation_factor(exog, j) for j in range(1, exog.shape[1])],
                               rtol=1e-9)
    # the hold-out AUC and the drivers from statsmodels and scikit-learn directly, not from the package's helpers
    train, test = train_test_split(np.arange(len(plain)), test_size=0.3, stratify=plain["won"], random_state=0)
    held = smf.logit(FORMULA, data=plain.iloc[train]).fit(disp=0)
    assert r.auc == pytest.approx(roc_auc_score(plain["won"].iloc[test], held.predict(plain.iloc[test])), abs=1e-12)
    p = ref.pvalues.drop("Intercept")
    assert r.drivers["term"].tolist() == ref.tvalues[p[p < 0.05].index].abs().sort_values(
        ascending=False).index[:3].tolist()
    positive = plain[plain["amount"] > 0]
    lin = smf.ols("np.log(amount) ~ x1 + demo", data=positive).fit(cov_type="HC3")
    np.testing.assert_allclose(r.linear.coefficients.set_index("term")["coef"], lin.params, rtol=1e-8)
    assert set(r.outputs) == {"regression_coefficients.csv", "regression_marginal_effects.csv",
                              "regression_vif.csv", "regression_calibration.csv", "linear_coefficients.csv"}
    # a single class in the outcome: no fit, no diagnostics, no crash
    flat = analyse_regression(_stub(opp.assign(won=0, status="lost"), formula=FORMULA))
    assert flat.fit.result is None and flat.auc is None and flat.vif.empty and flat.linear is None
    assert "linear_coefficients.csv" not in flat.outputs


def test_regression_params_are_refused_before_any_notebook_starts(synthetic):
    from funnel_lab.analysis.regression import check_params

    cols = list(synthetic.columns)
    check_params(_stub(synthetic, formula=FORMULA, cluster="owner", linear={"formula": "amount ~ x1"}).params, cols)
    check_params(_stub(synthetic).params, cols)  # no formula: nothing to check
    with pytest.raises(ValueError, match=r"^regression.formula: .*'x9'"):
        check_params(_stub(synthetic, formula="won ~ x9").params, cols)
    with pytest.raises(ValueError, match=r"^regression.linear.formula: .*'amout'.*did you mean 'amount'"):
        check_params(_stub(synthetic, linear={"formula": "amout ~ x1"}).params, cols)
    with pytest.raises(ValueError, match=r"^regression.formula: the outcome is 'won' but regression.outcome is 'converted'"):
        check_params(_stub(synthetic, outcome="converted", formula=FORMULA).params, cols)
    with pytest.raises(ValueError, match=r"^regression.cluster: no column 'ownr'.*did you mean 'owner'"):
        check_params(_stub(synthetic, formula=FORMULA, cluster="ownr").params, cols)


def test_a_linear_fits_drivers_and_its_collinear_terms(synthetic):
    plain = _for_statsmodels(synthetic)
    positive = plain[plain["amount"] > 0]
    fit = fit_linear(synthetic, "amount ~ x1 + demo + visits + C(seg)", log_outcome=True, alpha=0.1)
    ref = smf.ols("np.log(amount) ~ x1 + demo + visits + C(seg)", data=positive).fit(cov_type="HC3")
    assert (fit.formula, fit.outcome, fit.log_outcome, fit.alpha) == ("amount ~ x1 + demo + visits + C(seg)", "amount",
                                                                      True, 0.1)
    assert fit.adj_r_squared == pytest.approx(ref.rsquared_adj) and fit.result is not None and fit.problems == []
    top = strongest_drivers(fit)
    p = ref.pvalues.drop("Intercept")
    expected = ref.tvalues[p[p < 0.1].index].abs().sort_values(ascending=False).index[:3].tolist()
    assert top["term"].tolist() == expected
    assert list(top.columns) == ["term", "variable", "level", "transform", "coef", "ci_low", "ci_high", "pct_effect",
                                 "pct_ci_low", "pct_ci_high", "p_value", "direction"]
    np.testing.assert_allclose(top["pct_ci_high"], np.exp(ref.conf_int(alpha=0.1)[1][expected]) - 1)
    assert top["direction"].tolist() == ["up" if ref.params[t] > 0 else "down" for t in expected]
    twin = synthetic.assign(x1_again=synthetic["x1"])
    fit = fit_linear(twin, "amount ~ x1 + x1_again + demo")
    assert fit.problems == [{"code": "collinear_terms", "terms": ["x1_again"]}]
    c = fit.coefficients.set_index("term")
    assert c.loc["x1_again", "note"] == "collinear" and np.isnan(c.loc["x1_again", "coef"])
    with pytest.raises(ValueError, match=r"amount"):
        fit_linear(synthetic.drop(columns="amount").assign(amount="x"), "amount ~ x1")


def test_the_strongest_drivers_are_the_three_largest_significant_statistics():
    from types import SimpleNamespace as NS

    c = pd.DataFrame({"term": ["Intercept", "a", "b", "c", "d", "e", "f"], "variable": list("iabcdef"),
                      "level": "", "transform": "", "coef": [9.0, 1.0, -2.0, 0.5, 3.0, 0.1, 0.2],
                      "ci_low": 0.0, "ci_high": 1.0, "t": [50.0, 2.5, -4.0, 3.0, 2.1, 9.0, 8.0],
                      "p_value": [0.0, 0.012, 0.0001, 0.003, 0.04, 0.05, np.nan]})
    top = strongest_drivers(NS(coefficients=c, alpha=0.05))
    # e sits on alpha (not below it), f has no p-value, the intercept is no driver
    assert top["term"].tolist() == ["b", "c", "a"] and top["direction"].tolist() == ["down", "up", "up"]
    assert strongest_drivers(NS(coefficients=c, alpha=0.05), k=4)["term"].tolist() == ["b", "c", "a", "d"]
    assert list(top.columns) == ["term", "variable", "level", "transform", "coef", "ci_low", "ci_high", "p_value",
                                 "direction"]
    tied = c.assign(t=[50.0, 3.0, -3.0, 3.0, 2.0, 1.0, 1.0])
    assert strongest_drivers(NS(coefficients=tied, alpha=0.05))["term"].tolist() == ["a", "b", "c"]  # ties keep order


def test_separating_columns_by_hand():
    from funnel_lab.analysis.regression import _separating

    y = np.array([1, 1, 0, 0, 1, 0, 0, 1])
    X = pd.DataFrame({
        "Intercept": 1.0,
        "constant": 3.0,                                   # one value: nothing to tell
        "ones_win": [1, 1, 0, 0, 0, 0, 0, 0],              # every row with a one won: quasi, those rows fixed
        "zeros_lose": [1, 1, 0, 0, 1, 0, 1, 1],            # every row with a zero lost: quasi, the zero rows fixed
        "copy": y,                                         # the outcome itself: complete
        "big_wins": [9.0, 8.0, 1.0, 2.0, 7.0, 3.0, 0.5, 6.5],  # a number above every loss: complete
        "small_wins": [-9.0, -8.0, 1.0, 2.0, -7.0, 3.0, 0.5, -6.5],
        "mixed": [1.0, 2.0, 2.0, 1.0, 3.0, 3.0, 1.0, 2.0],
        "two_levels": [0.0, 2.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0],  # two values, not 0/1, overlapping
    })
    found = {col: (kind, None if rows is None else rows.tolist()) for col, kind, rows in _separating(X, y)}
    assert found == {"ones_win": ("quasi", [True, True, False, False, False, False, False, False]),
                     "zeros_lose": ("quasi", [False, False, True, True, False, True, False, False]),
                     "copy": ("complete", None), "big_wins": ("complete", None), "small_wins": ("complete", None)}


def test_holdout_auc_by_default_holds_out_30_percent_with_seed_0(synthetic):
    plain = _for_statsmodels(synthetic).reset_index(drop=True)
    train, test = train_test_split(np.arange(len(plain)), test_size=0.3, stratify=plain["won"], random_state=0)
    ref = smf.logit(FORMULA, data=plain.iloc[train]).fit(disp=0)
    assert holdout_auc(synthetic, FORMULA) == pytest.approx(
        roc_auc_score(plain["won"].iloc[test], ref.predict(plain.iloc[test])), abs=1e-12)


def test_vif_names_each_terms_variable_and_level(synthetic):
    vif = vif_table(synthetic, FORMULA).set_index("term")
    assert vif.loc["C(seg, Treatment(reference='b'))[T.c]", ["variable", "level"]].tolist() == ["seg", "c"]
    assert vif.loc["x1", ["variable", "level"]].tolist()[0] == "x1" and "Intercept" not in vif.index
    # with 0/1 data the calibration's counts are whole numbers
    cal = calibration_by_decile([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3])
    assert cal.dtypes[["decile", "n", "events"]].tolist() == [np.dtype("int64")] * 3
    with pytest.raises(ValueError, match=r"y and p differ in length: \(3,\) vs \(2,\)"):
        calibration_by_decile([0, 1, 1], [0.1, 0.9])


def test_a_logit_with_no_complete_row_is_an_empty_fit_that_says_so():
    df = pd.DataFrame({"won": [1, 0, 1, 0], "x": np.nan, "owner": ["a", "b", "a", "b"]})
    fit = fit_logit(df, "won ~ x", cluster="owner", alpha=0.1)
    assert fit.problems == [{"code": "no_rows"}] and fit.result is None and not fit.converged
    assert (fit.formula, fit.outcome, fit.alpha, fit.cov_type, fit.n_clusters) == ("won ~ x", "won", 0.1, "cluster", 0)
    assert (fit.n, fit.events, fit.n_fit, fit.events_fit, fit.n_set_aside, fit.n_dropped_missing) == (0, 0, 0, 0, 0, 4)
    assert list(fit.coefficients.columns[:4]) == ["term", "coef", "std_err", "z"] and fit.coefficients.empty
    assert "dydx" in fit.marginal_effects.columns and fit.marginal_effects.empty
    plain = fit_logit(df, "won ~ x")
    assert plain.cov_type == "nonrobust" and plain.n_clusters is None and plain.alpha == 0.05


def test_the_separated_and_collinear_terms_are_named_in_the_coefficients():
    rng = np.random.default_rng(4)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "source": rng.choice(["Web", "Event"], n)})
    df["won"] = (rng.random(n) < 1 / (1 + np.exp(-0.7 * df["x"]))).astype(int)
    df.loc[:6, "source"] = "Partner"
    df.loc[:6, "won"] = 1
    df["x_again"] = df["x"]
    fit = fit_logit(df.astype({"source": "str"}), "won ~ x + x_again + C(source)")
    sep = next(p for p in fit.problems if p["code"] == "perfect_separation")
    assert sep["detected_by"] == "data"
    notes = fit.coefficients.set_index("term")["note"]
    assert notes.to_dict() == {"Intercept": "", "C(source)[T.Partner]": "perfect_separation", "C(source)[T.Web]": "",
                               "x": "", "x_again": "collinear"}
