"""Stage models: statistics against independent computations, and the demo's ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from funnel_lab.analysis.stages import (assign_stages, build_model, check_model, cochran_armitage, compare_models,
                                        propose_bands, psi, rank_auc, stage_metrics)
from funnel_lab.config import ParamsError, Stages, load_params
from funnel_lab.data.demo import write_demo_data
from funnel_lab.pipeline import Pipeline

GOOD = {"potential": "True", "intent": "meetings >= 1 or emails_replied >= 2", "evaluation": "demo or trial",
        "decision": "quote_sent and budget_confirmed"}
# the least engaged deals called "decision": win rates must fall, and the checks must say so
INVERTED = {"potential": "True", "intent": "quote_sent and budget_confirmed", "evaluation": "demo or trial",
            "decision": "meetings == 0 and emails_replied == 0"}
ORDER = ["potential", "intent", "evaluation", "decision"]


@pytest.fixture(scope="module")
def demo_opps(tmp_path_factory, demo_project):
    folder = tmp_path_factory.mktemp("stages_demo")
    write_demo_data(folder / "data" / "demo", rows=6000, seed=5)
    (folder / "params").mkdir()
    (folder / "params" / "demo.yaml").write_text((demo_project / "params" / "demo.yaml").read_text(encoding="utf-8"),
                                                 encoding="utf-8")
    return Pipeline(load_params([folder / "params" / "demo.yaml"])).cleaned_table("opportunities").data


def model(rules=None, **kw):
    cfg = {"model": "m", "order": ORDER, **({"method": "rules", "rules": rules} if rules else kw)}
    return build_model(Stages.model_validate(cfg))


def test_rank_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(3)
    rank = rng.integers(0, 5, 500)
    won = (rng.random(500) < 0.1 + 0.15 * rank).astype(int)
    assert rank_auc(rank, won) == pytest.approx(roc_auc_score(won, rank), abs=1e-12)


def test_psi_by_hand():
    e, a = np.array([50, 30, 20]), np.array([30, 30, 40])
    by_hand = (0.3 - 0.5) * np.log(0.3 / 0.5) + 0 + (0.4 - 0.2) * np.log(0.4 / 0.2)
    assert psi(e, a) == pytest.approx(by_hand, rel=1e-9)
    assert psi(e, e) == 0


def test_cochran_armitage_reproduces_agresti():
    # Agresti, Categorical Data Analysis (2nd ed.), sec. 5.3.5: maternal alcohol and malformation, scores 0, .5,
    # 1.5, 4, 7; reported M^2 = 6.57 (z = 2.56), P = 0.01 for the one-sided trend.
    present = np.array([48, 38, 5, 1, 1])
    n = present + np.array([17066, 14464, 788, 126, 37])
    z, p = cochran_armitage(present, n, np.array([0, 0.5, 1.5, 4.0, 7.0]))
    assert z == pytest.approx(2.56, abs=0.01)
    assert p == pytest.approx(0.0052, abs=0.0005)  # one-sided; Agresti's 0.01 is two-sided


def test_assign_rules_takes_the_highest_true_stage():
    df = pd.DataFrame({"opportunity_id": list("abcd"), "meetings": [0, 1, 3, 0], "demo": [False, False, True, True],
                       "quote_sent": [False, False, True, False], "budget_confirmed": [False, False, True, True],
                       "emails_replied": [0, 0, 0, 5], "trial": [False] * 4})
    out = assign_stages(df, model(GOOD))
    assert out["stage"].tolist() == ["potential", "intent", "decision", "evaluation"]
    assert out["stage_rank"].tolist() == [1, 2, 4, 3] and out["score"].isna().all()
    strict = model({**GOOD, "potential": "meetings >= 1"})
    assert assign_stages(df, strict)["stage"].tolist()[0] == "unassigned"


def test_assign_score_sums_points_into_bands():
    df = pd.DataFrame({"opportunity_id": list("abc"), "visits": [1, 6, 9], "budget_confirmed": [False, True, True]})
    m = model(method="score", score={"points": [{"when": "visits >= 5", "points": 10},
                                                {"when": "budget_confirmed", "points": 25}],
                                     "bands": {"potential": 0, "intent": 20, "evaluation": 30, "decision": 70}})
    out = assign_stages(df, m)
    assert out["score"].tolist() == [0, 35, 35] and out["stage"].tolist() == ["potential", "evaluation", "evaluation"]


def test_stage_metrics_counts_by_hand():
    st = pd.DataFrame({"stage_rank": [0, 1, 1, 1, 2, 2]})
    won = pd.Series([np.nan, 1, 0, np.nan, 1, 1])
    m = stage_metrics(st, won, model(GOOD))
    assert m["stage"].tolist() == ["unassigned"] + ORDER
    assert m["n"].tolist() == [1, 3, 2, 0, 0] and m["n_closed"].tolist() == [0, 2, 2, 0, 0]
    assert m["won"].tolist() == [0, 1, 2, 0, 0] and m["win_rate"].tolist()[1:3] == [0.5, 1.0]


def test_the_good_model_passes_and_the_inverted_one_is_flagged(demo_opps):
    good = check_model(demo_opps, assign_stages(demo_opps, model(GOOD)), model(GOOD))
    assert good.verdicts["monotonicity"] == "ok" and good.verdicts["trend"] == "ok"
    assert good.metrics.loc[1:, "win_rate"].is_monotonic_increasing and good.auc > 0.65
    bad_model = model(INVERTED)
    bad = check_model(demo_opps, assign_stages(demo_opps, bad_model), bad_model)
    assert bad.verdicts["monotonicity"] == "fail" and bad.inversions["significant"].any()
    assert bad.auc < good.auc


def test_rules_that_do_not_nest_are_reported(demo_opps):
    c = check_model(demo_opps, assign_stages(demo_opps, model(GOOD)), model(GOOD))
    by_hand = int((demo_opps["quote_sent"].fillna(False) & demo_opps["budget_confirmed"].fillna(False)
                   & ~(demo_opps["demo"].fillna(False) | demo_opps["trial"].fillna(False))).sum())
    got = c.skipped.set_index(["higher", "lower"])["n"]
    assert got.get(("decision", "evaluation"), 0) == by_hand


def test_compare_models_transition_matrix_by_hand():
    df = pd.DataFrame({"opportunity_id": list("abcdef"), "meetings": [0, 1, 1, 0, 2, 0],
                       "emails_replied": [0, 0, 3, 0, 0, 0], "demo": [False, False, False, True, False, False],
                       "trial": [False] * 6, "quote_sent": [False, True, True, False, True, False],
                       "budget_confirmed": [False, True, True, True, True, False]})
    a, b = model(GOOD), model(INVERTED)
    sa, sb = assign_stages(df, a), assign_stages(df, b)
    # GOOD:     potential, decision, decision, evaluation, decision, potential
    # INVERTED: decision,  intent,   intent,   decision,   intent,   decision
    cmp = compare_models(df, sa, sb, a, b)
    t = cmp["transitions"]
    assert t.loc["potential", "decision"] == 2 and t.loc["decision", "intent"] == 3
    assert t.loc["evaluation", "decision"] == 1 and (t.to_numpy() > 0).sum() == 3
    moves = cmp["moves"].set_index(["from", "to"])
    assert moves["n"].to_dict() == {("decision", "intent"): 3, ("potential", "decision"): 2,
                                    ("evaluation", "decision"): 1}
    assert moves.loc[("potential", "decision"), "rule"] == INVERTED["decision"]


def test_proposed_bands_find_the_scores_where_the_win_rate_jumps():
    """Scores 0-39 whose win rate steps up at 10, 20 and 30: the proposal's minimums are those steps, and each
    proposed band's win rate and count are a plain recount of the closed deals in it."""
    rng = np.random.default_rng(4)
    score = pd.Series(rng.integers(0, 40, 8000).astype(float))
    won = pd.Series((rng.random(8000) < np.array([0.05, 0.3, 0.6, 0.9])[score.to_numpy().astype(int) // 10])
                    .astype(float))
    won[rng.random(8000) < 0.1] = np.nan  # open deals: not counted
    m = model(method="score", score={"points": [{"when": "visits >= 1", "points": 1}],
                                     "bands": {"potential": 0, "intent": 5, "evaluation": 15, "decision": 25}})
    prop = propose_bands(score, won, m)
    assert prop["proposed_min"].tolist() == [0.0, 9.5, 19.5, 29.5]
    closed = won.notna()
    for row, lo, hi in zip(prop.itertuples(), [0, 9.5, 19.5, 29.5], [9.5, 19.5, 29.5, np.inf]):
        inside = closed & (score >= lo) & (score < hi)
        assert row.n_proposed == inside.sum() and row.win_rate_proposed == pytest.approx(won[inside].mean())
    current = closed & (score >= 5) & (score < 15)
    assert prop.loc[1, "n_current"] == current.sum()
    assert prop.loc[1, "win_rate_current"] == pytest.approx(won[current].mean())


def test_model_errors_name_the_stage():
    with pytest.raises(ParamsError, match="stages.rules: no rule for stage 'decision'"):
        model({k: v for k, v in GOOD.items() if k != "decision"})
    with pytest.raises(ParamsError, match="stages.rules.intent"):
        model({**GOOD, "intent": "__import__('os').system('x')"})


def test_psi_with_an_empty_category_floors_shares():
    # shares 2/3, 0, 1/3 vs 0.6, 1/30, 11/30 with the empty share floored at 1e-4
    e, a = np.array([2 / 3, 1e-4, 1 / 3]), np.array([0.6, 1 / 30, 11 / 30])
    assert psi([100, 0, 50], [90, 5, 55]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))), rel=1e-9)


def test_the_model_to_compare_with_is_read_from_its_file_and_checked_against_the_columns(tmp_path):
    from funnel_lab.analysis.stages import load_models, stage_labels

    old = tmp_path / "old.yaml"
    old.write_text("stages:\n  model: v0\n  order: [potential, intent, evaluation, decision]\n  method: rules\n"
                   "  labels: {zh: {intent: 意向客户}}\n  rules: {potential: 'True', intent: 'meetings >= 1',\n"
                   "          evaluation: demo, decision: quote_sent}\n", encoding="utf-8")
    cfg = Stages.model_validate({"model": "v1", "order": ORDER, "method": "rules", "rules": GOOD,
                                 "labels": {"zh": {"potential": "潜在客户"}}, "compare_with": str(old)})
    columns = ["meetings", "emails_replied", "demo", "trial", "quote_sent", "budget_confirmed"]
    model_, other = load_models(cfg, columns)
    assert (model_.name, other.name) == ("v1", "v0") and other.rules["intent"].text == "meetings >= 1"
    assert stage_labels(model_, "zh") == {"unassigned": "未分配", "potential": "潜在客户", "intent": "intent",
                                          "evaluation": "evaluation", "decision": "decision"}
    assert other.label("intent", "zh") == "意向客户" and other.label("intent", "en") == "intent"
    assert stage_labels(model_, "en")["unassigned"] == "unassigned"
    # without compare_with, no second model; an unknown column in either model is named
    assert load_models(cfg.model_copy(update={"compare_with": None}), columns)[1] is None
    with pytest.raises(ParamsError, match=r"unknown column 'quote_sent'"):
        load_models(cfg, [c for c in columns if c != "quote_sent"])
    with pytest.raises(ParamsError, match=r"stages.rules.intent: unknown column 'meetings'.*did you mean 'meeting'"):
        load_models(cfg.model_copy(update={"compare_with": None}), ["meeting"] + columns[1:])
    old.write_text("stages:\n  model: v0\n  order: [a]\n  method: rules\n  rules: {a: 'import os'}\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"old.yaml.rules.a"):
        load_models(cfg, columns)
    old.write_text("stages:\n  model: v0\n  order: a\n  colour: red\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"old.yaml: not a valid stage model"):
        load_models(cfg, columns)
    with pytest.raises(ParamsError, match=r"^stages.compare_with: .*missing.yaml"):
        load_models(cfg.model_copy(update={"compare_with": str(tmp_path / "missing.yaml")}), columns)


def test_proposed_bands_with_a_stage_without_a_band_and_fewer_cuts_than_stages():
    # two score levels only: one cut, so the last two stages get no proposed minimum
    score = pd.Series([0.0] * 60 + [10.0] * 60)
    won = pd.Series([0.0] * 50 + [1.0] * 10 + [1.0] * 50 + [0.0] * 10)
    m = model(method="score", score={"points": [{"when": "visits >= 1", "points": 10}],
                                     "bands": {"potential": 0, "evaluation": 5, "decision": 50}})
    prop = propose_bands(score, won, m)
    assert prop.columns.tolist() == ["stage", "current_min", "proposed_min", "n_current", "win_rate_current",
                                     "n_proposed", "win_rate_proposed"]
    assert prop["proposed_min"].tolist()[:2] == [0.0, 5.0] and prop["proposed_min"].isna().tolist()[2:] == [True, True]
    assert np.isnan(prop.loc[1, "current_min"])  # intent has no band of its own
    # potential's current band runs to evaluation's minimum (5), the next band that exists
    assert prop.loc[0, "n_current"] == 60 and prop.loc[0, "win_rate_current"] == pytest.approx(10 / 60)
    assert prop.loc[3, "n_current"] == 0 and np.isnan(prop.loc[3, "win_rate_current"])
    assert prop.loc[1, "n_proposed"] == 60 and prop.loc[1, "win_rate_proposed"] == pytest.approx(50 / 60)
    assert prop.loc[2, "n_proposed"] == 0 and np.isnan(prop.loc[2, "win_rate_proposed"])
    # a smallest band of 5% of the closed deals: a 3-deal step is no band
    few = pd.Series([0.0] * 117 + [10.0] * 3)
    assert propose_bands(few, won, m)["proposed_min"].notna().sum() == 1
    assert propose_bands(few, won, m, min_share=0.01)["proposed_min"].notna().sum() == 2
