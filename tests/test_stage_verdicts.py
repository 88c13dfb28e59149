"""Every stage-design verdict on a case built to pass it and one built to fail it.

Each case is a table of deals with exact counts, so the quantity a verdict reads (a two-proportion p-value, the AUC,
the unassigned share, the PSI) is computed here independently (statsmodels, scikit-learn, by hand) and the verdict
follows from the report's stated thresholds.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportions_ztest

from funnel_lab.analysis.stages import assign_stages, build_model, check_model
from funnel_lab.config import Stages

ORDER = ["potential", "intent", "evaluation", "decision"]
NESTED = {"potential": "lvl >= 0", "intent": "lvl >= 1", "evaluation": "lvl >= 2", "decision": "lvl >= 3"}
MONTHS = pd.date_range("2024-01-01", periods=6, freq="MS")


def model(rules=NESTED):
    return build_model(Stages.model_validate({"model": "m", "order": ORDER, "method": "rules", "rules": rules}))


def deals(closed: dict[int, tuple[int, int]], *, open_per_level: int = 0) -> pd.DataFrame:
    """``closed``: level -> (deals closed, of which won); level -1 is no stage's rule. Each level's deals are created
    in turn in each of six months; a closed deal closes 20 days after."""
    rows = []
    for lvl, (n, won) in closed.items():
        for i in range(n + open_per_level):
            status = "open" if i >= n else "won" if i < won else "lost"
            rows.append({"lvl": lvl, "status": status, "created_at": MONTHS[i % len(MONTHS)]})
    df = pd.DataFrame(rows)
    df.insert(0, "opportunity_id", [f"D{i}" for i in range(len(df))])
    df["won"] = df["status"].map({"won": 1.0, "lost": 0.0})
    df["closed_at"] = (df["created_at"] + pd.Timedelta(days=20)).where(df["status"] != "open")
    return df


def check(df, rules=NESTED):
    m = model(rules)
    return check_model(df, assign_stages(df, m), m)


RISING = {0: (200, 20), 1: (200, 50), 2: (200, 90), 3: (200, 140)}


def adjacent_p(counts, a, b):
    """statsmodels' pooled two-proportion z-test of level b against level a."""
    return proportions_ztest([counts[b][1], counts[a][1]], [counts[b][0], counts[a][0]])[1]


def auc(counts):
    lvl = np.concatenate([[k] * n for k, (n, _) in counts.items()])
    won = np.concatenate([[1] * w + [0] * (n - w) for _, (n, w) in counts.items()])
    return roc_auc_score(won, np.where(lvl < 0, 0, lvl + 1))


def test_rising_win_rates_pass_monotonicity_trend_separation_and_discrimination():
    c = check(deals(RISING))
    assert all(adjacent_p(RISING, a, a + 1) < 0.05 for a in range(3))
    assert c.auc == pytest.approx(auc(RISING), abs=1e-12) and c.auc >= 0.7
    assert c.trend_z > 0 and c.trend_p < 0.05
    assert {k: c.verdicts[k] for k in ("monotonicity", "trend", "separation", "discrimination")} == {
        "monotonicity": "ok", "trend": "ok", "separation": "ok", "discrimination": "ok"}


def test_an_inversion_within_chance_warns_and_a_significant_one_fails():
    slight = {**RISING, 2: (200, 45)}  # 22.5% after 25%: p well above 0.05
    assert adjacent_p(slight, 1, 2) > 0.05
    c = check(deals(slight))
    assert c.verdicts["monotonicity"] == "warn" and len(c.inversions) == 1
    assert c.inversions.iloc[0][["stage_from", "stage_to"]].tolist() == ["intent", "evaluation"]
    assert c.inversions.iloc[0]["p_value"] == pytest.approx(adjacent_p(slight, 1, 2), rel=1e-9)

    steep = {**RISING, 3: (200, 20)}  # decision 10% after evaluation 45%
    assert adjacent_p(steep, 2, 3) < 1e-6
    assert check(deals(steep)).verdicts["monotonicity"] == "fail"


def test_a_flat_funnel_fails_the_trend_and_discrimination_and_its_stages_merge():
    flat = {k: (200, 50) for k in range(4)}
    c = check(deals(flat))
    assert c.auc == pytest.approx(0.5) and c.trend_p > 0.05
    assert c.verdicts["trend"] == "fail" and c.verdicts["discrimination"] == "fail"
    assert c.verdicts["separation"] == "warn" and c.separation["merge_candidate"].all()
    # falling win rates: a strong trend, the wrong way (the test is one-sided, for rising rates)
    falling = {k: (200, 140 - 40 * k) for k in range(4)}
    c = check(deals(falling))
    assert c.trend_z < -10 and c.trend_p > 0.999 and c.verdicts["trend"] == "fail"


def test_discrimination_warns_between_0_6_and_0_7():
    modest = {0: (200, 40), 1: (200, 50), 2: (200, 64), 3: (200, 80)}
    assert 0.6 <= auc(modest) < 0.7
    assert check(deals(modest)).verdicts["discrimination"] == "warn"


def test_one_pair_that_chance_could_explain_is_a_merge_candidate():
    close = {**RISING, 2: (200, 58)}  # 29% after 25%
    assert adjacent_p(close, 1, 2) > 0.05
    c = check(deals(close))
    assert c.verdicts["separation"] == "warn"
    assert c.separation.loc[c.separation["merge_candidate"], ["stage_from", "stage_to"]].values.tolist() == [
        ["intent", "evaluation"]]


@pytest.mark.parametrize("unassigned, verdict", [(0, "ok"), (40, "ok"), (100, "warn"), (300, "fail")])
def test_coverage_by_the_share_no_rule_takes(unassigned, verdict):
    counts = {**RISING, -1: (unassigned, unassigned // 10)} if unassigned else RISING
    c = check(deals(counts))
    assert c.unassigned_share == pytest.approx(unassigned / (800 + unassigned))
    assert c.verdicts["coverage"] == verdict


def test_rules_that_do_not_nest_warn_with_the_deals_counted():
    df = deals(RISING)
    df["call"] = df["lvl"] >= 1
    df["demo"] = (df["lvl"] >= 2) | (df.index % 50 == 0)  # 1 in 50 had a demo without a call
    nested = {**NESTED, "intent": "call", "evaluation": "call and demo"}
    assert check(df, nested).verdicts["consistency"] == "ok"
    loose = {**NESTED, "intent": "call", "evaluation": "demo"}
    c = check(df, loose)
    assert c.verdicts["consistency"] == "warn"
    skipped = c.skipped.set_index(["higher", "lower"])["n"]
    assert skipped[("evaluation", "intent")] == int((df["demo"] & ~df["call"]).sum()) > 0


def _mix_psi(df, first, last):
    """PSI by hand of the stage mix of two creation months (every deal here gets the stage of its level)."""
    a = df[df["created_at"] == MONTHS[first]]["lvl"].value_counts(normalize=True).reindex(range(4), fill_value=0)
    b = df[df["created_at"] == MONTHS[last]]["lvl"].value_counts(normalize=True).reindex(range(4), fill_value=0)
    a, b = a.clip(lower=1e-4), b.clip(lower=1e-4)
    return float(((b - a) * np.log(b / a)).sum())


@pytest.mark.parametrize("moved, verdict", [(0, "ok"), (24, "warn"), (32, "fail")])
def test_stability_by_the_psi_of_the_first_and_last_comparable_months(moved, verdict):
    """``moved`` of the last comparable month's 40 potential deals are decision deals instead (of 160 that month)."""
    df = deals({k: (240, 24 + 40 * k) for k in range(4)})
    # the last comparable month: created before the latest creation (June) minus the median cycle (20 days)
    swap = df.index[(df["created_at"] == MONTHS[4]) & (df["lvl"] == 0)][:moved]
    df.loc[swap, "lvl"] = 3
    c = check(df)
    assert c.psi_periods == ("2024-01", "2024-05")
    assert c.psi == pytest.approx(_mix_psi(df, 0, 4), rel=1e-6)
    assert c.verdicts["stability"] == verdict


def test_what_the_data_cannot_tell_is_na_not_ok():
    no_losses = {k: (50, 50) for k in range(4)}
    c = check(deals(no_losses))
    assert c.verdicts["trend"] == "na" and c.verdicts["discrimination"] == "na"
    one_stage = check(deals({0: (100, 30)}, open_per_level=10))
    assert one_stage.verdicts["separation"] == "na"


# --------------------------------------------------------------------------- what the report and the terminal say


def test_the_findings_say_each_verdicts_numbers_in_both_languages():
    from funnel_lab.analysis.stages import CHECKS, checks_table

    slight = {**RISING, 2: (200, 45), -1: (100, 10)}
    c = check(deals(slight))
    en = checks_table(c, model(), "en").set_index("check")
    assert en.index.tolist() == ["Win rate rises with stage", "Overall trend", "Separates won from lost",
                                 "Stages differ from their neighbours", "Coverage", "Rules nest", "Stable over time"]
    assert [c.verdicts[k] for k in CHECKS] == ["warn", "ok", "ok", "warn", "warn", "ok", "ok"]
    assert en["verdict"].tolist() == ["check", "ok", "ok", "check", "check", "ok", "ok"]
    p12 = adjacent_p(slight, 1, 2)
    assert en.loc["Win rate rises with stage", "finding"] == (
        f"1 step(s) where the win rate falls; the worst: intent 25.0% → evaluation 22.5% (p = {p12:.3f}).")
    assert en.loc["Overall trend", "finding"].startswith(f"Cochran-Armitage trend test across stages: z = {c.trend_z:.1f}")
    assert f"AUC {auc(slight):.2f} " in en.loc["Separates won from lost", "finding"]
    assert en.loc["Stages differ from their neighbours", "finding"] == (
        f"Not significantly different, candidates to merge: intent / evaluation (25.0% vs 22.5%, p = {p12:.3f}).")
    assert en.loc["Coverage", "finding"].startswith(f"{100 / 900:.1%} of opportunities meet no stage")
    zh = checks_table(c, model(), "zh")
    assert zh["check"].iloc[0] == "赢率随阶段上升" and zh["verdict"].tolist()[:2] == ["需关注", "通过"]
    assert zh["finding"].iloc[0] == f"有 1 处阶段赢率下降；最明显的是：intent 25.0% → evaluation 22.5%（p = {p12:.3f}）。"
    assert zh["finding"].iloc[3] == f"差异不显著、可考虑合并的阶段：intent / evaluation (25.0% 对 22.5%, p = {p12:.3f})。"

    df = deals(RISING)
    df["call"] = df["lvl"] >= 1
    df["demo"] = (df["lvl"] >= 2) | (df.index % 50 == 0)
    loose = {**NESTED, "intent": "call", "evaluation": "demo"}
    skipped = int((df["demo"] & ~df["call"]).sum())
    nest = checks_table(check(df, loose), model(loose), "en").set_index("check").loc["Rules nest", "finding"]
    assert nest == (f"{skipped} times an opportunity meets a higher stage's rule but not a lower one's "
                    f"(evaluation > intent: {skipped}).")


def test_the_findings_of_a_model_that_passes_and_one_that_cannot_be_measured():
    from funnel_lab.analysis.stages import checks_table

    good = checks_table(check(deals(RISING)), model(), "en").set_index("check")["finding"]
    assert good["Win rate rises with stage"] == "The closed win rate rises at every step."
    assert good["Stages differ from their neighbours"] == "Every stage's win rate differs significantly from the next one's."
    assert good["Rules nest"].startswith("Every opportunity that meets a stage's rule")
    assert good["Coverage"].startswith("0.0% of opportunities")
    blind = checks_table(check(deals({k: (50, 50) for k in range(4)})), model(), "en").set_index("check")["finding"]
    cannot = "Cannot be measured: it needs won and lost deals in at least two stages."
    assert blind["Overall trend"] == blind["Separates won from lost"] == cannot
    one = checks_table(check(deals({0: (100, 30)}, open_per_level=10)), model(), "en").set_index("check")["finding"]
    assert one["Stages differ from their neighbours"] == cannot


def test_the_stability_finding_names_the_months_and_the_psi():
    from funnel_lab.analysis.stages import checks_table

    df = deals({k: (240, 24 + 40 * k) for k in range(4)})
    c = check(df)
    finding = checks_table(c, model(), "en").set_index("check").loc["Stable over time", "finding"]
    assert finding.startswith("Stage mix of new opportunities, 2024-01 vs 2024-05 (") and f"PSI {c.psi:.3f} (" in finding
    zh = checks_table(c, model(), "zh").set_index("check").loc["随时间稳定", "finding"]
    assert zh.startswith("新建商机的阶段构成，2024年1月 对比 2024年5月") and f"PSI 为 {c.psi:.3f}" in zh
    undated = check(df.drop(columns=["created_at"]))
    assert checks_table(undated, model(), "en").set_index("check").loc["Stable over time", "finding"] == (
        "No creation dates: stability over time cannot be measured.")


def _stub(df, m, *, compare=None, language="en", alpha=0.05):
    """What :func:`analyse_stage_design` reads of a :class:`funnel_lab.Pipeline`."""
    from types import SimpleNamespace as NS

    return NS(opportunities=df, stage_model=m, stages=assign_stages(df, m), compare_model=compare,
              params=NS(stages=NS(alpha=alpha), language=language))


def test_the_stage_design_beside_the_model_it_replaces():
    from funnel_lab.analysis.stages import analyse_stage_design

    df = deals(RISING)
    old = model({**NESTED, "evaluation": "lvl >= 3"})  # evaluation deals were intent deals under the old model
    r = analyse_stage_design(_stub(df, model(), compare=old, language="zh"))
    assert r.checks.auc == pytest.approx(auc(RISING), abs=1e-12) and r.proposal is None and r.lang == "zh"
    merged = {0: RISING[0], 1: (400, 140), 3: RISING[3]}
    assert r.other_checks.auc == pytest.approx(auc(merged), abs=1e-12)
    assert r.other_stages["stage"].value_counts()[lambda n: n > 0].to_dict() == {"intent": 400, "potential": 200,
                                                                            "decision": 200}
    t = r.comparison["transitions"]
    assert t.loc["intent", "evaluation"] == t.loc["intent", "intent"] == 200 and t.to_numpy().trace() == 600
    assert r.comparison["moves"].to_dict("records") == [
        {"from": "intent", "to": "evaluation", "n": 200, "rule": "lvl >= 2"}]
    assert r.summary["check"].iloc[0] == "赢率随阶段上升" and r.outputs["stage_checks.csv"]["check"].iloc[0] == (
        "Win rate rises with stage")
    assert r.metrics is r.checks.metrics and r.outputs["stage_metrics.csv"]["n"].tolist() == [0, 200, 200, 200, 200]
    text = r.text().splitlines()
    assert text[0] == "stage model 'm' (rules): 4 stages" and text[1] == text[8] == text[-2] == ""
    assert text[3].split() == ["unassigned", "0", "0", "0", "0"]  # no win rate to show: blank, not "nan%"
    assert text[4].split() == ["potential", "1", "200", "200", "20", "10.0%", "6.6%", "14.9%"]  # Wilson interval
    assert text[9].startswith("Win rate rises with stage            OK     The closed win rate rises")
    assert text[-1] == (f"compared with 'm': AUC {auc(merged):.3f} -> {auc(RISING):.3f}, unassigned 0.0% -> 0.0%, "
                        f"trend z {r.other_checks.trend_z:.1f} -> {r.checks.trend_z:.1f}")


def test_a_score_model_gets_its_bands_proposed():
    from funnel_lab.analysis.stages import analyse_stage_design, propose_bands

    df = deals(RISING)
    m = build_model(Stages.model_validate({"model": "s", "order": ORDER, "method": "score", "score": {
        "points": [{"when": "lvl >= 1", "points": 10}, {"when": "lvl >= 2", "points": 10},
                   {"when": "lvl >= 3", "points": 10}],
        "bands": {"potential": 0, "intent": 10, "evaluation": 25, "decision": 30}}}))
    r = analyse_stage_design(_stub(df, m))
    assert r.other_checks is None and r.comparison is None
    assert r.stages["stage"].value_counts()[lambda n: n > 0].to_dict() == {"potential": 200, "intent": 400,
                                                                      "decision": 200}
    expected = propose_bands(df["lvl"] * 10.0, df["won"], m)
    pd.testing.assert_frame_equal(r.proposal, expected)
    assert r.proposal["proposed_min"].tolist() == [0.0, 5.0, 15.0, 25.0]
    assert r.proposal["n_proposed"].tolist() == [200] * 4


def test_the_design_is_judged_at_the_params_alpha_and_a_score_model_moves_deals_by_band():
    from funnel_lab.analysis.stages import analyse_stage_design, compare_models

    slight = {**RISING, 2: (200, 45)}
    assert 0.5 < adjacent_p(slight, 1, 2) < 0.6
    df = deals(slight)
    strict = model({**NESTED, "decision": "lvl >= 4"})  # no deal is a decision deal under it
    r = analyse_stage_design(_stub(df, model(), compare=strict, alpha=0.6))
    assert r.checks.verdicts["monotonicity"] == "fail" and r.checks.separation["merge_candidate"].sum() == 0
    assert r.other_checks.inversions["significant"].all() and r.other_checks.separation["merge_candidate"].sum() == 0
    assert r.comparison["moves"].to_dict("records") == [
        {"from": "evaluation", "to": "decision", "n": 200, "rule": "lvl >= 3"}]
    scored = build_model(Stages.model_validate({"model": "s", "order": ORDER, "method": "score", "score": {
        "points": [{"when": "lvl >= 1", "points": 10}], "bands": {"intent": 10}}}))
    moves = compare_models(df, assign_stages(df, model()), assign_stages(df, scored), model(), scored)["moves"]
    # under the score every deal with a point is an intent deal, those without none: unassigned
    assert moves.set_index(["from", "to"])["rule"].to_dict() == {
        ("evaluation", "intent"): "score band", ("decision", "intent"): "score band",
        ("potential", "unassigned"): "score band"}
    back = compare_models(df, assign_stages(df, scored), assign_stages(df, model()), scored, model())["moves"]
    assert back.set_index(["from", "to"])["rule"].to_dict()[("unassigned", "potential")] == "lvl >= 0"


def test_every_finding_is_worded_in_chinese_for_a_chinese_report():
    import re

    from funnel_lab.analysis.stages import checks_table

    han = re.compile("[\u4e00-\u9fff]")
    df = deals({**RISING, 2: (200, 45), -1: (100, 10)})
    for d in (df, df.drop(columns="created_at"), deals({k: (50, 50) for k in range(4)}),
              deals({k: (240, 24 + 40 * k) for k in range(4)})):
        zh = checks_table(check(d), model(), "zh")
        assert all(han.search(f) for f in zh["finding"]), zh["finding"].tolist()
        assert all(han.search(v) for v in zh["verdict"])
    # rules that skip in five ways: the first four pairs are named, joined as the language joins them
    df = deals(RISING)
    for i, name in enumerate(["f0", "f1", "f2", "f3"]):
        df[name] = (df.index % (i + 2)) == 0
    loose = {"potential": "f0", "intent": "f1", "evaluation": "f2", "decision": "f3"}
    c = check(df, loose)
    assert len(c.skipped) >= 5
    en = checks_table(c, model(loose), "en").set_index("check").loc["Rules nest", "finding"]
    shown = [f"{r.higher} > {r.lower}: {r.n:,}" for r in c.skipped.head(4).itertuples()]
    assert en.endswith("(" + "; ".join(shown) + ").") and f"{c.skipped['n'].sum():,} times" in en
