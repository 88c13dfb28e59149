"""funnel_lab.abtest: every statistic against statsmodels/scipy called here, a hand calculation or a known result."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint, proportion_effectsize,
                                          proportions_ztest)

from conftest import ROOT
from funnel_lab.analysis import abtest as ab


def _units(arms: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """One row per unit: ``variant`` -> (conversions, n)."""
    parts = [pd.DataFrame({"variant": v, "converted": [1] * x + [0] * (n - x)}) for v, (x, n) in arms.items()]
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "unit_id", [f"u{i}" for i in range(len(out))])
    return out


# --------------------------------------------------------------------------- hygiene


def _mirror_frame() -> pd.DataFrame:
    """30 rows, landing_page mirrors the variant in 27: two rows disagree, one has no page."""
    variant = ["A"] * 15 + ["B"] * 15
    page = ["old"] * 15 + ["new"] * 15
    page[3], page[20] = "new", "old"  # mismatches
    page[7] = None  # no page: not evidence of a mismatch
    return pd.DataFrame({"unit_id": [f"u{i:02d}" for i in range(30)], "variant": variant, "landing_page": page,
                         "converted": [i % 2 for i in range(30)]})


def test_mismatch_rows_are_excluded_with_their_reason():
    df = _mirror_frame()
    h = ab.clean_assignment(df)
    assert sorted(h.excluded.index) == [3, 20]
    assert (h.excluded["reason"] == "assignment_mismatch").all()
    assert h.excluded.loc[3, "rule"] == "landing_page != old" and h.excluded.loc[20, "rule"] == "landing_page != new"
    assert 7 in h.units.index and len(h.units) == 28
    # the excluded rows are the rows as read
    pd.testing.assert_frame_equal(h.excluded.drop(columns=["reason", "rule"]), df.loc[[3, 20]])
    counts = h.counts.set_index("rule")
    assert counts.loc["input", "rows"] == 30 == counts.loc["kept", "rows"] + counts.loc["excluded", "rows"]
    assert counts.loc["assignment_mismatch", "rows"] == 2 and counts.loc["assignment_mismatch", "units_lost"] == 2
    assert list(h.counts["rule"]) == ["input", *ab.RULES, "excluded", "kept"]
    mirrors = h.mirrors.set_index("variant")
    assert mirrors.loc["A", "usual_value"] == "old" and mirrors.loc["B", "rows_disagreeing"] == 1


def test_a_strong_effect_does_not_make_the_outcome_a_mirror():
    # converted follows the variant in 29 of 30 rows; it is an outcome, not an assignment column
    df = pd.DataFrame({"unit_id": [f"u{i}" for i in range(30)], "variant": ["A"] * 15 + ["B"] * 15,
                       "converted": [0] * 14 + [1] + [1] * 15})
    h = ab.clean_assignment(df)
    assert h.excluded.empty and len(h.units) == 30


def test_multiple_variants_after_mismatches_and_repeats_keep_the_first():
    at = pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02", "2024-01-02", None, "2024-01-01",
                         "2024-01-01", "2024-01-04", "2024-01-02"] + ["2024-01-01"] * 20)
    rows = [
        ("m1", "A", "old"), ("m1", "B", "new"),  # 0, 1: really in two arms -> both out
        ("s1", "A", "old"), ("s1", "B", "old"),  # 2, 3: the B row disagrees with its page (a) -> s1 stays in A
        ("r1", "A", "old"),                      # 4: ties with 9 on time, earlier in the file -> kept
        ("r1", "A", "old"),                      # 5: no time -> last
        ("r2", "B", "new"),                      # 6: earliest of r2 -> kept
        ("r3", "B", "new"),                      # 7
        ("r2", "B", "new"),                      # 8: later -> repeated
        ("r1", "A", "old"),                      # 9: same time as 4, later in the file -> repeated
    ] + [(f"x{i}", "A" if i < 10 else "B", "old" if i < 10 else "new") for i in range(20)]
    df = pd.DataFrame(rows, columns=["unit_id", "variant", "landing_page"]).assign(assigned_at=at, converted=0)
    h = ab.clean_assignment(df)
    reasons = h.excluded["reason"].to_dict()
    assert reasons == {0: "multiple_variants", 1: "multiple_variants", 3: "assignment_mismatch",
                       5: "repeated_unit", 8: "repeated_unit", 9: "repeated_unit"}
    assert h.excluded.loc[0, "rule"] == "variants: A|B"
    assert h.excluded.loc[5, "rule"] == "first_row: 4" and h.excluded.loc[8, "rule"] == "first_row: 6"
    assert h.units["unit_id"].is_unique and sorted(h.units.index[:5]) == [2, 4, 6, 7, 10]
    counts = h.counts.set_index("rule")
    assert counts.loc["multiple_variants", ["rows", "units", "units_lost"]].tolist() == [2, 1, 1]
    assert counts.loc["repeated_unit", ["rows", "units", "units_lost"]].tolist() == [3, 2, 0]
    assert counts.loc["assignment_mismatch", "units_lost"] == 0  # s1 still has its A row
    assert counts.loc["input", "rows"] == len(df) == len(h.units) + len(h.excluded)
    assert counts.loc["kept", "units"] == df["unit_id"].nunique() - 1  # only m1 is gone


def test_missing_variant_is_excluded_not_dropped():
    df = pd.DataFrame({"unit_id": ["a", "b", "c", "d"], "variant": ["A", None, "B", "A"], "converted": [0, 1, 0, 1]})
    h = ab.clean_assignment(df)
    assert h.excluded.index.tolist() == [1] and h.excluded["reason"].tolist() == ["missing_assignment"]
    assert len(h.units) + len(h.excluded) == 4


# --------------------------------------------------------------------------- SRM


def test_sample_ratio_test_against_hand_and_scipy():
    chi2, p = ab.sample_ratio_test({"A": 500, "B": 600})
    assert chi2 == pytest.approx(2 * 50**2 / 550)  # (500-550)^2/550 + (600-550)^2/550
    assert p == pytest.approx(stats.chi2.sf(2 * 50**2 / 550, 1))
    chi2, p = ab.sample_ratio_test(pd.Series({"A": 400, "B": 600}), expected={"A": 40, "B": 60})
    assert chi2 == pytest.approx(0.0) and p == pytest.approx(1.0)
    units = _units({"A": (1, 300), "B": (2, 330), "C": (3, 310)})
    assert ab.sample_ratio_test(units) == pytest.approx(tuple(stats.chisquare([300, 330, 310])))
    with pytest.raises(ValueError, match="no expected share"):
        ab.sample_ratio_test({"A": 1, "B": 2}, expected={"A": 0.5})


# --------------------------------------------------------------------------- binary


def test_binary_comparison_matches_statsmodels_and_scipy():
    counts = {"ctl": (120, 1000), "t1": (150, 1010), "t2": (131, 990)}
    out = ab.binary_comparison(_units(counts), control="ctl", alpha=0.05)
    assert out["variant"].tolist() == ["ctl", "t1", "t2"] and list(out.columns) == ab.BINARY_COLUMNS
    x0, n0 = counts["ctl"]
    for _, r in out.iterrows():
        x, n = counts[r["variant"]]
        lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
        assert (r["n"], r["conversions"], r["rate"]) == (n, x, pytest.approx(x / n))
        assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        if r["variant"] == "ctl":
            assert math.isnan(r["diff"]) and math.isnan(r["p_value"])
            continue
        z, p = proportions_ztest([x, x0], [n, n0])
        assert (r["z"], r["p_value"]) == (pytest.approx(z), pytest.approx(p))
        assert r["diff"] == pytest.approx(x / n - x0 / n0)
        lo, hi = confint_proportions_2indep(x, n, x0, n0, method="newcomb", compare="diff")
        assert (r["diff_ci_low"], r["diff_ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        lo, hi = confint_proportions_2indep(x, n, x0, n0, method="log", compare="ratio")
        assert r["relative_lift"] == pytest.approx((x / n) / (x0 / n0) - 1)
        assert (r["lift_ci_low"], r["lift_ci_high"]) == (pytest.approx(lo - 1), pytest.approx(hi - 1))
        table = [[x, n - x], [x0, n0 - x0]]
        assert r["chi2_p"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
        assert r["fisher_p"] == pytest.approx(stats.fisher_exact(table).pvalue)
        assert r["test"] == "z-test" and r["p_headline"] == r["p_value"]
    holm = multipletests(out["p_value"].iloc[1:].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(out["p_holm"].iloc[1:], holm)
    assert (out["p_holm"].iloc[1:] >= out["p_value"].iloc[1:]).all()


def test_small_counts_make_fisher_the_headline():
    out = ab.binary_comparison(_units({"A": (1, 20), "B": (7, 20)}), control="A")
    r = out.iloc[1]
    # expected conversions per arm are 4 < 5
    assert r["test"] == "fisher"
    assert r["fisher_p"] == pytest.approx(stats.fisher_exact([[7, 13], [1, 19]]).pvalue)
    assert r["p_headline"] == r["fisher_p"] == r["p_holm"]
    assert r["p_value"] == pytest.approx(proportions_ztest([7, 1], [20, 20])[1])


def test_units_without_outcome_are_counted_as_missing():
    units = _units({"A": (10, 100), "B": (20, 100)})
    units["converted"] = units["converted"].astype("Int64")
    units.loc[[0, 150], "converted"] = pd.NA
    out = ab.binary_comparison(units, control="A").set_index("variant")
    assert out.loc["A", ["n", "conversions", "missing"]].tolist() == [99, 9, 1]
    assert out.loc["B", ["n", "conversions", "missing"]].tolist() == [99, 20, 1]
    with pytest.raises(ValueError, match="control 'Z'"):
        ab.binary_comparison(units, control="Z")


def test_diff_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(20240611)
    p_c, p_t, n, sims = 0.10, 0.12, 1500, 1000
    variant = np.repeat(["c", "t"], n)
    covered = 0
    for _ in range(sims):
        conv = np.concatenate([rng.random(n) < p_c, rng.random(n) < p_t]).astype(int)
        r = ab.binary_comparison(pd.DataFrame({"variant": variant, "converted": conv}), control="c").iloc[1]
        covered += r["diff_ci_low"] <= p_t - p_c <= r["diff_ci_high"]
    assert 0.93 <= covered / sims <= 0.97


# --------------------------------------------------------------------------- continuous


def _continuous_frame(seed: int = 3, n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pre = rng.gamma(2.0, 50.0, 2 * n)
    treated = np.repeat([False, True], n)
    value = 20 + 0.8 * pre + rng.normal(0, 40, 2 * n) + 6 * treated
    return pd.DataFrame({"unit_id": [f"u{i}" for i in range(2 * n)], "variant": np.where(treated, "B", "A"),
                         "value": value, "pre_value": pre})


def test_welch_matches_scipy():
    df = _continuous_frame()
    r = ab.continuous_comparison(df, control="A").iloc[0]
    a, b = df.loc[df["variant"] == "A", "value"], df.loc[df["variant"] == "B", "value"]
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (r["t"], r["p_value"], r["df"]) == (pytest.approx(res.statistic), pytest.approx(res.pvalue),
                                               pytest.approx(res.df))
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert r["diff"] == pytest.approx(b.mean() - a.mean()) and r["mean_control"] == pytest.approx(a.mean())


def test_cuped_by_hand():
    df = _continuous_frame()
    r = ab.continuous_comparison(df, control="A").iloc[0]
    y, x = df["value"].to_numpy(), df["pre_value"].to_numpy()
    theta = np.polyfit(x, y, 1)[0]  # OLS slope = cov(y, x) / var(x)
    adj = y - theta * (x - x.mean())
    treated = (df["variant"] == "B").to_numpy()
    res = stats.ttest_ind(adj[treated], adj[~treated], equal_var=False)
    assert r["theta"] == pytest.approx(theta)
    assert r["cuped_diff"] == pytest.approx(adj[treated].mean() - adj[~treated].mean())
    assert r["cuped_p_value"] == pytest.approx(res.pvalue)
    assert r["variance_reduction"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    assert r["cuped_ci_high"] - r["cuped_ci_low"] < r["ci_high"] - r["ci_low"]


def test_cuped_missing_without_covariate():
    df = _continuous_frame().drop(columns="pre_value")
    r = ab.continuous_comparison(df, control="A").iloc[0]
    assert math.isnan(r["cuped_diff"]) and not math.isnan(r["p_value"])


# --------------------------------------------------------------------------- power


@pytest.mark.parametrize("p, mde, alpha, power", [(0.10, 0.02, 0.05, 0.8), (0.12, 0.01, 0.05, 0.9),
                                                   (0.5, -0.05, 0.01, 0.8)])
def test_sample_size_matches_statsmodels(p, mde, alpha, power):
    h = proportion_effectsize(p + mde, p)
    sm = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0)
    n = ab.required_sample_size(p, mde, alpha=alpha, power=power)
    assert n == math.ceil(sm - 1e-6)
    # the textbook (Fleiss) formula lands within 1%
    q = p + mde
    za, zb = stats.norm.isf(alpha / 2), stats.norm.isf(1 - power)
    fleiss = (za * math.sqrt(2 * (p + q) / 2 * (1 - (p + q) / 2)) + zb * math.sqrt(p * (1 - p) + q * (1 - q))) ** 2
    assert n == pytest.approx(fleiss / mde**2, rel=0.01)


def test_achieved_power_matches_statsmodels():
    h = proportion_effectsize(0.12, 0.10)
    sm = NormalIndPower().power(effect_size=h, nobs1=2000, alpha=0.05, ratio=2500 / 2000)
    assert ab.achieved_power(0.10, 0.02, 2000, 2500) == pytest.approx(sm)


# --------------------------------------------------------------------------- Bayes


def test_bayes_matches_numerical_integration():
    units = _units({"A": (40, 400), "B": (55, 410)})
    draws = 200_000
    out = ab.bayes_beta_binomial(units, control="A", draws=draws, seed=1).set_index("variant")
    a, b = stats.beta(1 + 40, 1 + 360), stats.beta(1 + 55, 1 + 355)
    p_exact = integrate.quad(lambda t: b.pdf(t) * a.cdf(t), 0, 1, limit=200)[0]  # P(B > A)
    # E[max(A - B, 0)] = int f_B(t) [E(A; A > t) - t P(A > t)] dt, with E(A; A > t) = mean_A P(A1 > t),
    # A1 ~ Beta(a + 1, b)
    a1 = stats.beta(2 + 40, 1 + 360)
    loss_exact = integrate.quad(lambda t: b.pdf(t) * (a.mean() * a1.sf(t) - t * a.sf(t)), 0, 1, limit=200)[0]
    mc_se = math.sqrt(p_exact * (1 - p_exact) / draws)
    assert out.loc["B", "prob_beats_control"] == pytest.approx(p_exact, abs=5 * mc_se)
    assert out.loc["B", "expected_loss"] == pytest.approx(loss_exact, rel=0.05)
    assert out.loc["B", "posterior_mean"] == pytest.approx(56 / 412)
    assert out.loc["B", "ci_low"] == pytest.approx(b.ppf(0.025))
    assert out.loc["B", "prob_best"] == pytest.approx(p_exact, abs=5 * mc_se)  # two arms: best = beats the other
    assert math.isnan(out.loc["A", "prob_beats_control"])


# --------------------------------------------------------------------------- Simpson


def _stratified(cells: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    parts = [_units({v: xn}).assign(segment=s) for (s, v), xn in cells.items()]
    out = pd.concat(parts, ignore_index=True)
    out["unit_id"] = [f"u{i}" for i in range(len(out))]
    return out


def test_kidney_stones_flag_simpson():
    # Charig et al. 1986: open surgery (A) wins in both stone sizes, PCNL (B) wins pooled (78% vs 83%)
    df = _stratified({("small", "A"): (81, 87), ("small", "B"): (234, 270),
                      ("large", "A"): (192, 263), ("large", "B"): (55, 80)})
    table, paradox = ab.segment_breakdown(df, by="segment", control="B")
    assert paradox
    small = table.set_index("segment").loc["small"]
    assert small["diff"] == pytest.approx(81 / 87 - 234 / 270)
    assert small["p_value"] == pytest.approx(proportions_ztest([81, 234], [87, 270])[1])
    assert table["pooled_diff"].iloc[0] == pytest.approx(273 / 350 - 289 / 350)
    assert table["opposite_to_pooled"].all()


def test_consistent_segments_do_not_flag_simpson():
    df = _stratified({("small", "A"): (50, 100), ("small", "B"): (40, 100),
                      ("large", "A"): (30, 100), ("large", "B"): (20, 100)})
    table, paradox = ab.segment_breakdown(df, by="segment", control="B")
    assert not paradox and not table["opposite_to_pooled"].any()


# --------------------------------------------------------------------------- verdict


def _row(diff, p, **extra):
    return {"variant": "B", "diff": diff, "diff_ci_low": diff - 0.01, "diff_ci_high": diff + 0.01, "p_value": p,
            "p_headline": p, "p_holm": p, "test": "z-test"} | extra


def test_verdict_rules():
    ship = ab.verdict(_row(0.02, 0.001), srm_p=0.5)
    assert ship["decision"] == "ship" and ship["reasons"][0]["code"] == "significant_gain"
    assert ship["reasons"][0]["p"] == 0.001 and ship["reasons"][0]["diff"] == 0.02
    assert ab.verdict(_row(-0.02, 0.001), srm_p=0.5)["decision"] == "do_not_ship"
    assert ab.verdict(_row(-0.02, 0.001), srm_p=0.5)["reasons"][0]["code"] == "significant_loss"
    broken = ab.verdict(_row(0.02, 0.001), srm_p=1e-5)
    assert broken["decision"] == "inconclusive" and [r["code"] for r in broken["reasons"]][0] == "srm_failed"
    flat = ab.verdict(_row(0.001, 0.6), srm_p=0.5, power=0.3, mde=0.01)
    assert flat["decision"] == "inconclusive"
    assert [r["code"] for r in flat["reasons"]] == ["no_significant_difference", "underpowered"]
    assert [r["code"] for r in ab.verdict(_row(0.001, 0.6), srm_p=0.5, power=0.95)["reasons"]] == [
        "no_significant_difference"]
    # the target is ab_test.power: 85% is enough for 0.8, not for 0.9
    assert len(ab.verdict(_row(0.001, 0.6), srm_p=0.5, power=0.85)["reasons"]) == 1
    under = ab.verdict(_row(0.001, 0.6), srm_p=0.5, power=0.85, mde=0.01, target_power=0.9)["reasons"][-1]
    assert under == {"code": "underpowered", "power": 0.85, "mde": 0.01, "target": 0.9}
    # the Holm-adjusted p decides when it is there
    assert ab.verdict(_row(0.02, 0.03, p_holm=0.09), srm_p=0.5)["decision"] == "inconclusive"
    # power from the row's own counts when only the mde is given
    row = _row(0.001, 0.6, rate_control=0.10, n_control=500, n=500)
    under = ab.verdict(row, srm_p=0.5, mde=0.02)
    assert under["power"] == pytest.approx(NormalIndPower().power(proportion_effectsize(0.12, 0.10), 500, 0.05))
    assert under["reasons"][-1]["code"] == "underpowered"


def test_verdict_on_continuous_rows_uses_cuped():
    r = ab.continuous_comparison(_continuous_frame(), control="A").iloc[0]
    v = ab.verdict(r, srm_p=0.9)
    assert v["estimate"] == "cuped" and v["p_value"] == pytest.approx(r["cuped_p_value"])


def test_summary_json_is_native_and_has_the_design_keys():
    units = _units({"A": (100, 1000), "B": (140, 1000)})
    h = ab.clean_assignment(units)
    srm = ab.sample_ratio_test(h.units)
    binary = ab.binary_comparison(h.units, control="A")
    out = ab.ab_summary_json(h, srm, binary, bayes=ab.bayes_beta_binomial(h.units, control="A", draws=1000),
                             mde=0.02)
    json.dumps(out, allow_nan=False)
    for key in ("srm_p_value", "variants", "diff", "diff_ci", "relative_lift", "p_value", "test", "decision",
                "reasons"):
        assert key in out
    assert out["variants"][1] | {} == {"name": "B", "n": 1000, "conversions": 140, "rate": 0.14,
                                       "ci_low": pytest.approx(proportion_confint(140, 1000, method="wilson")[0]),
                                       "ci_high": pytest.approx(proportion_confint(140, 1000, method="wilson")[1])}
    assert out["p_value"] == pytest.approx(proportions_ztest([140, 100], [1000, 1000])[1])
    assert out["decision"] == "ship" and out["hygiene"]["rows_excluded"] == 0


# --------------------------------------------------------------------------- the demo's ground truth


@pytest.fixture(scope="module")
def demo_experiment(demo_project):
    import funnel_lab

    run = funnel_lab.load(demo_project / "params" / "demo.yaml")
    truth = json.loads((demo_project / "data" / "demo" / "ground_truth.json").read_text())["experiment"]
    return run.cleaned["experiment"].data, truth


def test_demo_lift_inside_the_interval_and_dirty_units_excluded(demo_experiment):
    exp, truth = demo_experiment
    h = ab.clean_assignment(exp)
    multi = h.excluded[h.excluded["unit_id"].isin(truth["multi_variant_unit_ids"])]
    assert set(multi["unit_id"]) == set(truth["multi_variant_unit_ids"])
    assert (multi["reason"] == "multiple_variants").all()
    assert not h.units["unit_id"].isin(truth["multi_variant_unit_ids"]).any()
    assert len(multi) == (exp["unit_id"].isin(truth["multi_variant_unit_ids"])).sum()
    dup = h.excluded[h.excluded["reason"] == "repeated_unit"]
    assert sorted(dup["unit_id"]) == sorted(truth["duplicate_unit_ids"])
    assert h.units["unit_id"].isin(truth["duplicate_unit_ids"]).sum() == len(truth["duplicate_unit_ids"])
    assert len(h.units) == truth["n_units"] - len(truth["multi_variant_unit_ids"])
    out = ab.binary_comparison(h.units, control=truth["control"]).set_index("variant")
    r = out.loc[truth["treatment"]]
    assert r["diff_ci_low"] < truth["abs_lift"] < r["diff_ci_high"]
    cont = ab.continuous_comparison(h.units, control=truth["control"]).iloc[0]
    assert cont["variance_reduction"] > 0.2  # pre_value tracks revenue (ground-truth correlation)


# --------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_ab_udacity(shared_data):
    import funnel_lab as fl

    exp = fl.load(ROOT / "params" / "examples" / "ab_udacity.yaml").cleaned_table("experiment").data
    h = ab.clean_assignment(exp)

    raw = pd.read_csv(shared_data / "ab_udacity" / "ab_data.csv")
    mismatch = (raw["group"] == "treatment") != (raw["landing_page"] == "new_page")
    rest = raw[~mismatch]
    multi = rest.groupby("user_id")["group"].transform("nunique") > 1
    repeated = rest[~multi].duplicated("user_id")
    excluded = h.counts.set_index("rule")["rows"]
    assert mismatch.sum() == 3893 == excluded["assignment_mismatch"]
    assert excluded["multiple_variants"] == multi.sum() == 0
    assert excluded["repeated_unit"] == repeated.sum()
    assert excluded["excluded"] == 3893 + repeated.sum() and excluded["kept"] + excluded["excluded"] == len(raw)

    srm = ab.sample_ratio_test(h.units)
    out = ab.binary_comparison(h.units, control="control").set_index("variant")
    assert out.loc["control", "n"] == 145_274 and round(out.loc["control", "rate"], 4) == 0.1204
    assert out.loc["treatment", "n"] == 145_310 and round(out.loc["treatment", "rate"], 4) == 0.1188
    p = out.loc["treatment", "p_value"]
    assert 0.18 < p < 0.20 and out.loc["treatment", "test"] == "z-test"
    summary = ab.ab_summary_json(h, srm, out.reset_index())
    assert summary["decision"] == "inconclusive" and summary["srm_p_value"] > 0.5
    json.dumps(summary, allow_nan=False)


def test_hygiene_and_exclusions_agree_on_a_tied_usual_value():
    """A variant whose six pages tie (one unit each): the hygiene table and the exclusions both take the first in
    sort order. 18 (variant, page) pairs: enough for an unstable sort to pick another (it picked p2)."""
    from funnel_lab.analysis.abtest import experiment_hygiene

    rows = ([("A", f"p{i}") for i in range(1, 7)] + [("B", "q0")] * 200 + [("B", f"q{i}") for i in range(1, 7)]
            + [("C", "r0")] * 200 + [("C", f"r{i}") for i in range(1, 5)])
    df = pd.DataFrame(rows, columns=["variant", "page"])
    df.insert(0, "unit_id", [f"u{i}" for i in range(len(df))])
    df["converted"] = np.arange(len(df)) % 2
    odd = experiment_hygiene(df)["mismatches"]
    assert odd.loc[odd["variant"] == "A", "value"].tolist() == ["p2", "p3", "p4", "p5", "p6"]
    h = ab.clean_assignment(df)
    assert h.mirrors.set_index("variant").loc["A", "usual_value"] == "p1"
    assert sorted(h.excluded.loc[h.excluded["variant"] == "A", "page"]) == ["p2", "p3", "p4", "p5", "p6"]


# --------------------------------------------------------------------------- the whole analysis on a pipeline


def _experiment(n: int = 2000, seed: int = 1) -> pd.DataFrame:
    """Two arms, B converting at 16% against A's 12%; a value on each conversion; two segments."""
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(n) < 0.5, "A", "B")
    converted = (rng.random(n) < np.where(variant == "B", 0.16, 0.12)).astype(int)
    return pd.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "variant": variant, "converted": converted,
                         "value": np.where(converted == 1, rng.gamma(2, 500, n), 0.0),
                         "segment": rng.choice(["smb", "ent"], n)})


def _stub(experiment: pd.DataFrame, **ab_test):
    """What :func:`analyse_ab_test` reads of a :class:`funnel_lab.Pipeline`."""
    from types import SimpleNamespace as NS

    from funnel_lab.config import ABTest

    return NS(params=NS(ab_test=ABTest(**ab_test)), cleaned_table=lambda name: NS(data=experiment))


def test_the_ab_analysis_against_statsmodels_and_scipy():
    exp = _experiment()
    r = ab.analyse_ab_test(_stub(exp, outcome="converted", control="A", mde=0.02))
    n = exp.groupby("variant")["converted"].agg(["sum", "size"])
    x, m = n["sum"].to_numpy(), n["size"].to_numpy()
    d = r.decision
    assert d["control"] == "A" and d["treatment"] == "B" and d["alpha"] == 0.05 and d["mde"] == 0.02
    assert [(v["name"], v["n"], v["conversions"]) for v in d["variants"]] == [("A", m[0], x[0]), ("B", m[1], x[1])]
    chi2, p_srm = stats.chisquare(m)
    assert d["srm_chi2"] == pytest.approx(chi2) and d["srm_p_value"] == pytest.approx(p_srm) and not d["srm_failed"]
    assert d["p_value"] == pytest.approx(proportions_ztest(x[::-1], m[::-1])[1])
    assert d["fisher_p"] == pytest.approx(stats.fisher_exact([[x[1], m[1] - x[1]], [x[0], m[0] - x[0]]])[1])
    assert d["diff"] == pytest.approx(x[1] / m[1] - x[0] / m[0]) and d["decision"] == "ship"
    assert d["hygiene"]["rows_in"] == d["hygiene"]["units_kept"] == len(exp)
    # power to see the observed lift, and the sample needed for the 2-point MDE, by statsmodels
    es = proportion_effectsize(x[0] / m[0] + 0.02, x[0] / m[0])
    assert r.required_n == math.ceil(NormalIndPower().solve_power(es, alpha=0.05, power=0.8))
    assert d["power"] == pytest.approx(NormalIndPower().power(proportion_effectsize(x[0] / m[0] + 0.02, x[0] / m[0]),
                                                              nobs1=m[0], ratio=m[1] / m[0], alpha=0.05), rel=1e-6)
    s = r.summary.iloc[0]
    assert (s["variant"], s["control"], s["decision"]) == ("B", "A", "ship") and s["p_value"] == d["p_value"]
    assert (s["ci_low"], s["ci_high"]) == tuple(d["diff_ci"])
    assert r.split.to_dict("list") == {"variant": ["A", "B"], "units": list(m), "observed_share": list(m / m.sum()),
                                       "expected_share": [0.5, 0.5]}
    # the value by Welch's t-test; the segments each compared on their own
    welch = stats.ttest_ind(exp.loc[exp["variant"] == "B", "value"], exp.loc[exp["variant"] == "A", "value"],
                            equal_var=False)
    assert d["continuous"][0]["p_value"] == pytest.approx(welch.pvalue)
    for name, part in exp.groupby("segment"):
        k = part.groupby("variant")["converted"].agg(["sum", "size"])
        row = r.segments[(r.segments["segment"] == name) & (r.segments["variant"] == "B")].iloc[0]
        assert row["p_value"] == pytest.approx(proportions_ztest(k["sum"].to_numpy()[::-1],
                                                                 k["size"].to_numpy()[::-1])[1])
    assert set(r.outputs) == {"ab_test.json", "ab_excluded.csv", "ab_segments.csv"}
    # a 60/40 split expected: the observed 50/50 fails the sample ratio check, and the verdict says so
    skew = ab.analyse_ab_test(_stub(exp, outcome="converted", control="A", expected_split={"A": 0.6, "B": 0.4}))
    chi2, p_srm = stats.chisquare(m, m.sum() * np.array([0.6, 0.4]))
    assert skew.decision["srm_p_value"] == pytest.approx(p_srm) and skew.decision["srm_failed"]
    assert skew.split["expected_share"].tolist() == [0.6, 0.4] and skew.decision["decision"] != "ship"
    assert skew.required_n is None


def test_a_value_only_experiment_is_judged_on_its_value():
    exp = _experiment().drop(columns=["converted", "segment"])
    r = ab.analyse_ab_test(_stub(exp, outcome="value"))
    welch = stats.ttest_ind(exp.loc[exp["variant"] == "B", "value"], exp.loc[exp["variant"] == "A", "value"],
                            equal_var=False)
    d = r.decision
    assert d["control"] == "A" and d["test"] == "welch" and r.binary is None and r.bayes is None
    assert d["continuous"][0]["p_value"] == pytest.approx(welch.pvalue)
    assert welch.pvalue < 0.05 and welch.statistic > 0  # B converts more, so it earns more
    assert d["decisions"]["B"]["decision"] == "ship" and r.summary["decision"].tolist() == ["ship"]
    assert r.summary["p_value"].iloc[0] == pytest.approx(welch.pvalue) and r.summary["power"].isna().all()
    # the same values dealt to the arms at random: no difference to find
    even = exp.assign(variant=np.random.default_rng(3).permutation(exp["variant"].to_numpy()))
    assert ab.analyse_ab_test(_stub(even, outcome="value")).decision["decisions"]["B"]["decision"] == "inconclusive"
    assert set(r.outputs) == {"ab_test.json", "ab_excluded.csv"}
    with pytest.raises(ValueError, match="ab_test.outcome: 'converted' has no values"):
        ab.analyse_ab_test(_stub(exp, outcome="converted"))


def test_the_control_is_the_configured_one_or_control_or_the_first():
    assert ab.choose_control(["B", "A"], None) == "A"
    assert ab.choose_control(["treat", "control"], None) == "control"
    assert ab.choose_control(["A", "B"], "B") == "B"
    with pytest.raises(ValueError, match="ab_test.control: no variant 'C'"):
        ab.choose_control(["A", "B"], "C")
    from types import SimpleNamespace as NS

    exp = _experiment(200)
    ab.check_params(NS(control="A", outcome="converted"), exp)
    with pytest.raises(ValueError, match="ab_test.outcome: the experiment table has no 'convert' column"):
        ab.check_params(NS(control=None, outcome="convert"), exp)


def test_sample_size_defaults_are_5_percent_and_80_percent_power():
    h = proportion_effectsize(0.12, 0.10)
    assert ab.required_sample_size(0.10, 0.02) == math.ceil(NormalIndPower().solve_power(h, alpha=0.05, power=0.8))
    assert ab.achieved_power(0.10, 0.02, 2000, 2000) == pytest.approx(
        NormalIndPower().power(h, nobs1=2000, alpha=0.05, ratio=1.0))


def test_segments_without_both_arms_or_without_a_value_are_shown_not_judged():
    df = _stratified({("b_small", "A"): (30, 100), ("b_small", "B"): (20, 100),
                      ("a_large", "A"): (30, 100), ("a_large", "B"): (20, 100), ("c_only_a", "A"): (5, 10)})
    df.loc[df.index[:7], "segment"] = None  # no segment: left out of the segments and of the pooled difference
    df.loc[df.index[-3:], "converted"] = np.nan
    table, paradox = ab.segment_breakdown(df, by="segment", control="B")
    assert table["segment"].tolist() == ["a_large", "b_small", "c_only_a"] and not paradox
    kept = df.dropna(subset=["segment", "converted"])
    k = kept.groupby("variant")["converted"].agg(["sum", "size"])
    assert table["pooled_diff"].iloc[0] == pytest.approx(k.loc["A", "sum"] / k.loc["A", "size"]
                                                         - k.loc["B", "sum"] / k.loc["B", "size"])
    only = table.set_index("segment").loc["c_only_a"]
    assert (only["n_control"], only["conversions_control"], only["n_treatment"]) == (0, 0, 7)
    assert np.isnan(only["rate_control"]) and np.isnan(only["diff"]) and np.isnan(only["p_value"])
    assert not only["opposite_to_pooled"]
    small = table.set_index("segment").loc["b_small"]
    seg = kept[kept["segment"] == "b_small"].groupby("variant")["converted"].agg(["sum", "size"])
    assert (small["n_control"], small["conversions_control"]) == (seg.loc["B", "size"], seg.loc["B", "sum"])
    with pytest.raises(ValueError, match=r"the experiment has no 'region' column \(columns: \['unit_id', 'variant'"):
        ab.segment_breakdown(df, by="region", control="B")


def test_summary_json_with_three_arms_heads_with_the_smallest_holm_p():
    units = _units({"A": (100, 1000), "B": (104, 1000), "C": (150, 1000)})
    units.loc[units.index[:3], "variant"] = None  # no assignment: set aside, and counted
    h = ab.clean_assignment(units)
    srm = ab.sample_ratio_test(h.units)
    binary = ab.binary_comparison(h.units, control="A")
    seg = ab.segment_breakdown(h.units.assign(segment="all"), by="segment", control="A")
    out = ab.ab_summary_json(h, srm, binary, segments=seg, continuous=binary.iloc[:0], alpha=0.05)
    assert [c["treatment"] for c in out["comparisons"]] == ["B", "C"]
    holm = multipletests([proportions_ztest([104, 97], [1000, 997])[1], proportions_ztest([150, 97], [1000, 997])[1]],
                         method="holm")[1]
    assert [c["p_holm"] for c in out["comparisons"]] == pytest.approx(list(holm))
    assert out["treatment"] == "C" and out["p_holm"] == pytest.approx(holm[1]) and out["decision"] == "ship"
    assert [c["decision"] for c in out["comparisons"]] == ["inconclusive", "ship"]
    assert out["hygiene"] == {"rows_in": 3000, "rows_kept": 2997, "rows_excluded": 3, "units_in": 3000,
                              "units_kept": 2997, "excluded_by_rule": {"missing_assignment": 3,
                                                                       "assignment_mismatch": 0,
                                                                       "multiple_variants": 0, "repeated_unit": 0}}
    assert out["simpson_paradox"] is False and len(out["segments"]) == 2 and out["continuous"] == []
    assert "bayes" not in out and out["alpha"] == 0.05 and out["mde"] is None
    # a split right on the threshold is not a failure; below it is, and every decision says so
    assert not ab.ab_summary_json(h, (10.0, 0.001), binary, srm_threshold=0.001)["srm_failed"]
    failed = ab.ab_summary_json(h, (20.0, 0.0009), binary, srm_threshold=0.001)
    assert failed["srm_failed"] and [c["decision"] for c in failed["comparisons"]] == ["inconclusive"] * 2
    assert [c["reasons"][0]["code"] for c in failed["comparisons"]] == ["srm_failed"] * 2
    # verdicts given (the report judged another outcome): the file carries them
    given = {"B": {"decision": "stop", "reasons": [], "power": 0.5}, "C": {"decision": "ship", "reasons": [],
                                                                         "power": 0.9}}
    mine = ab.ab_summary_json(h, srm, binary, verdicts=given)
    assert [c["decision"] for c in mine["comparisons"]] == ["stop", "ship"] and mine["power"] == 0.9
    # the control alone: nothing to compare, said so
    alone = ab.ab_summary_json(h, srm, binary.iloc[:1])
    assert alone["treatment"] is None and alone["decision"] == "inconclusive" and alone["comparisons"] == []
    assert alone["reasons"] == [{"code": "not_testable", "diff": None}] and alone["diff_ci"] == [None, None]
    value = ab.value_summary_json((20.0, 0.0009), binary.iloc[:0], control="A", verdicts={}, srm_threshold=0.001)
    assert value == {"srm_chi2": 20.0, "srm_p_value": 0.0009, "control": "A", "test": "welch", "srm_failed": True,
                     "continuous": [], "decisions": {}}
    assert not ab.value_summary_json((1.0, 0.5), binary.iloc[:0], control="A", verdicts={})["srm_failed"]


def test_the_estimate_each_kind_of_row_is_judged_on():
    nan = float("nan")
    cuped = {"variant": "B", "diff": 5.0, "ci_low": -1.0, "ci_high": 11.0, "p_value": 0.2, "p_holm": 0.3,
             "cuped_diff": 4.0, "cuped_ci_low": 1.0, "cuped_ci_high": 7.0, "cuped_p_value": 0.01, "cuped_p_holm": 0.02}
    assert ab._estimate(cuped) == {"estimate": "cuped", "diff": 4.0, "p": 0.02, "ci": [1.0, 7.0]}
    assert ab._estimate({**cuped, "cuped_p_holm": None})["p"] == 0.01
    welch = {**cuped, "cuped_p_value": nan}
    assert ab._estimate(welch) == {"estimate": "welch", "diff": 5.0, "p": 0.3, "ci": [-1.0, 11.0]}
    assert ab._estimate({**welch, "p_holm": nan})["p"] == 0.2
    binary = {"variant": "B", "diff": 0.02, "diff_ci_low": 0.01, "diff_ci_high": 0.03, "p_value": 0.04,
              "p_headline": 0.05, "p_holm": nan, "test": "fisher"}
    assert ab._estimate(binary) == {"estimate": "fisher", "diff": 0.02, "p": 0.05, "ci": [0.01, 0.03]}
    plain = {k: v for k, v in binary.items() if k not in ("p_headline", "test")}
    assert ab._estimate(plain) == {"estimate": "z-test", "diff": 0.02, "p": 0.04, "ci": [0.01, 0.03]}
    assert ab._estimate({**binary, "p_holm": 0.07})["p"] == 0.07


def test_verdict_rules_in_order():
    row = {"variant": "B", "diff": -0.03, "diff_ci_low": -0.05, "diff_ci_high": -0.01, "p_value": 0.001,
           "p_headline": 0.001, "p_holm": 0.001, "test": "z-test", "rate_control": 0.10, "n_control": 500, "n": 500}
    v = ab.verdict(row, srm_p=0.001, srm_threshold=0.001)  # on the threshold: the split is fine
    assert v["decision"] == "do_not_ship" and v["reasons"][0]["code"] == "significant_loss" and v["power"] is None
    v = ab.verdict(row, srm_p=0.0005, srm_threshold=0.001)
    assert v["decision"] == "inconclusive" and [r["code"] for r in v["reasons"]] == ["srm_failed", "significant_loss"]
    assert v["reasons"][0] == {"code": "srm_failed", "p": 0.0005, "threshold": 0.001}
    flat = {**row, "diff": 0.005, "p_value": 0.6, "p_headline": 0.6, "p_holm": 0.6}
    v = ab.verdict(flat, srm_p=None, mde=0.02, alpha=0.05)
    power = ab.achieved_power(0.10, 0.02, 500, 500, alpha=0.05)
    assert v["power"] == pytest.approx(power) and power < 0.8
    assert v["reasons"][1] == {"code": "underpowered", "power": pytest.approx(power), "mde": 0.02, "target": 0.8}
    assert [r["code"] for r in ab.verdict(flat, srm_p=None, power=0.9)["reasons"]] == ["no_significant_difference"]
    assert [r["code"] for r in ab.verdict(flat, srm_p=None, power=0.9, target_power=0.95)["reasons"]] == [
        "no_significant_difference", "underpowered"]
    assert ab.verdict(flat, srm_p=None, alpha=0.7)["decision"] == "ship"
    empty = {**row, "p_value": None, "p_headline": None, "p_holm": None, "diff": None}
    assert ab.verdict(empty, srm_p=0.5)["reasons"] == [{"code": "not_testable", "diff": None}]
    # an mde that would take the rate past 1 gives no power to compute
    assert ab.verdict({**flat, "rate_control": 0.99}, srm_p=None, mde=0.02)["power"] is None


def test_the_ab_analysis_uses_every_setting_of_its_params():
    exp = _experiment()
    r = ab.analyse_ab_test(_stub(exp, outcome="converted", mde=0.02))
    assert r.control == "A" and r.outcome == "converted" and not r.simpson  # no control set: the first by name
    assert r.srm == ab.sample_ratio_test(ab.clean_assignment(exp).units)
    assert r.bayes["variant"].tolist() == ["A", "B"] and r.binary["variant"].tolist() == ["A", "B"]
    assert r.continuous["variant"].tolist() == ["B"] and r.decision["bayes"][0]["variant"] == "A"
    strict = ab.analyse_ab_test(_stub(exp, outcome="converted", mde=0.02, alpha=0.01, power=0.9, segment=None,
                                      srm_threshold=0.95))
    p0 = exp.loc[exp["variant"] == "A", "converted"].mean()
    assert strict.required_n == ab.required_sample_size(p0, 0.02, alpha=0.01, power=0.9) > r.required_n
    assert strict.decision["alpha"] == 0.01 and strict.segments is None and "segments" not in strict.decision
    # the split (p about 0.9) fails a 0.95 threshold, so no decision can stand
    assert strict.decision["srm_failed"] and strict.verdicts["B"]["decision"] == "inconclusive"
    assert strict.verdicts["B"]["reasons"][0]["threshold"] == 0.95
    weak = ab.analyse_ab_test(_stub(exp.iloc[:300], outcome="converted", mde=0.02, power=0.99))
    codes = [c["code"] for c in weak.verdicts["B"]["reasons"]]
    assert codes[-1] == "underpowered" and weak.verdicts["B"]["reasons"][-1]["target"] == 0.99
    # a value that does not vary is not compared
    same = ab.analyse_ab_test(_stub(exp.assign(value=1.0), outcome="converted"))
    assert same.continuous is None and "continuous" not in same.decision
