"""The funnel on a small history computed by hand: skips, a backward move, re-entries, a lost and a won deal."""

import numpy as np
import pandas as pd
import pytest

from funnel_lab.analysis.funnel import (deal_reach, funnel_table, shrunk_win_rates, stage_dynamics, stage_durations,
                               time_in_stage, unmapped_stages, win_rates)
from funnel_lab.config import EngineSettings
from funnel_lab.engine import open_engine

ORDER = ["a", "b", "c"]
HISTORY = [  # deal, stage, day of January 2024
    ("D1", "a", 1), ("D1", "b", 2), ("D1", "c", 3), ("D1", "won", 4),      # straight through, won
    ("D2", "a", 1), ("D2", "c", 5), ("D2", "won", 6),                      # won after skipping b
    ("D3", "a", 1), ("D3", "b", 2), ("D3", "a", 3), ("D3", "b", 4), ("D3", "lost", 5),  # back and forth, lost
    ("D4", "b", 1), ("D4", "a", 2), ("D4", "c", 3),                        # open; b entered before a
    ("D5", "a", 1),                                                        # open, just started
    ("D6", "a", 1), ("D6", "lost", 2), ("D6", "a", 3),                     # lost, then reopened
    ("D7", "Qualification", 1),                                            # a name the params do not map
]
STATUS = {"D1": "won", "D2": "won", "D3": "lost", "D4": "open", "D5": "open", "D6": "open", "D7": "open"}


@pytest.fixture
def history():
    return pd.DataFrame({"opportunity_id": [h[0] for h in HISTORY], "stage": pd.array([h[1] for h in HISTORY], dtype="str"),
                         "entered_at": pd.to_datetime([f"2024-01-{h[2]:02d}" for h in HISTORY])})


@pytest.fixture
def opps():
    ids = list(STATUS)
    return pd.DataFrame({"opportunity_id": ids, "status": [STATUS[i] for i in ids],
                         "won": pd.array([1 if STATUS[i] == "won" else 0 if STATUS[i] == "lost" else None for i in ids],
                                         dtype="Int64"),
                         "created_at": pd.to_datetime(["2024-01-01"] * 7),
                         "closed_at": pd.to_datetime(["2024-01-04", "2024-01-06", "2024-01-05", None, None, None, None]),
                         "amount": [100.0, 300.0, 50.0, 10.0, 10.0, 10.0, 10.0]})


@pytest.fixture(params=["duckdb", "spark"])
def engine(request):
    """The embedded engine and Spark local[2]: the same hand-counted answers from both."""
    with open_engine(EngineSettings(backend=request.param)) as e:
        yield e


def test_reach_per_deal_by_hand(history, opps, engine):
    reach = deal_reach(history, opps, ORDER, engine=engine).set_index("opportunity_id")
    assert reach["any_reach"].to_dict() == {"D1": 4, "D2": 4, "D3": 2, "D4": 3, "D5": 1, "D6": 1, "D7": 0}
    assert reach["strict_reach"].to_dict() == {"D1": 4, "D2": 1, "D3": 2, "D4": 1, "D5": 1, "D6": 1, "D7": 0}


def test_funnel_any_and_strict_exact(history, opps):
    f = funnel_table(deal_reach(history, opps, ORDER), ORDER).set_index(["mode", "stage"])
    assert f.loc["any", "reached"].tolist() == [6, 4, 3, 2]
    assert f.loc["strict", "reached"].tolist() == [6, 2, 1, 1]
    assert f.loc["any", "advanced"].tolist()[:3] == [4, 3, 2] and pd.isna(f.loc[("any", "won"), "advanced"])
    np.testing.assert_allclose(f.loc["any", "conversion_rate"].to_numpy()[:3], [4 / 6, 3 / 4, 2 / 3])
    np.testing.assert_allclose(f.loc["strict", "cumulative_rate"].to_numpy(), [1, 2 / 6, 1 / 6, 1 / 6])


def test_unmapped_names_are_counted(history):
    assert unmapped_stages(history, ORDER).to_dict("records") == [{"stage": "Qualification", "rows": 1}]


def test_dynamics_by_hand(history):
    d = stage_dynamics(history, ORDER).set_index("opportunity_id")
    assert d["skips"].to_dict() == {"D1": 0, "D2": 1, "D3": 0, "D4": 1, "D5": 0, "D6": 0}
    assert d["backward"].to_dict() == {"D1": 0, "D2": 0, "D3": 1, "D4": 1, "D5": 0, "D6": 0}
    assert d["re_entries"].to_dict() == {"D1": 0, "D2": 0, "D3": 2, "D4": 0, "D5": 0, "D6": 1}
    assert d["reopened"].to_dict() == {"D1": 0, "D2": 0, "D3": 0, "D4": 0, "D5": 0, "D6": 1}


def test_durations_censor_open_deals(history, opps, engine):
    d = stage_durations(history, opps, ORDER, as_of=pd.Timestamp("2024-01-11"), engine=engine)
    d = d.set_index(["opportunity_id", "stage"])
    assert d.loc[("D3", "a"), "days"] == 2 and d.loc[("D3", "b"), "days"] == 2  # 1->2 + 3->4; 2->3 + 4->5
    assert d.loc[("D5", "a"), "days"] == 10 and not d.loc[("D5", "a"), "left"]   # still there on the 11th
    assert d.loc[("D2", "c"), "days"] == 1 and d.loc[("D2", "c"), "left"]
    assert d.loc[("D4", "c"), "days"] == 8 and d.loc[("D4", "c"), "current"] and d["current"].sum() == 3  # D4-6
    # per deal in the order its stages were first entered (D4 entered b before a)
    assert d.loc["D4"].index.tolist() == ["b", "a", "c"] and d.index.get_level_values(0).is_monotonic_increasing


def test_kaplan_meier_median_by_hand():
    # days 2, 3, 3+, 5, 8+ (+ = still in stage): S(2) = 4/5, S(3) = 3/5, S(5) = 3/10 -> median 5
    durations = pd.DataFrame({"stage": "a", "days": [2.0, 3, 3, 5, 8], "left": [True, True, False, True, False]})
    t = time_in_stage(durations, ["a"]).iloc[0]
    assert t["median_days"] == 5 and t["still_in_stage"] == 2
    assert t["naive_median_days"] == 3  # dropping the open deals would halve the answer


def test_win_rates_by_hand(opps):
    w = win_rates(opps)
    assert w["closed_win_rate"] == pytest.approx(2 / 3) and w["cohort_win_rate"] == pytest.approx(2 / 7)
    assert w["cycle_days"] == 4  # won after 3 and 5 days
    assert w["velocity_per_day"] == pytest.approx(4 * 200 * (2 / 3) / 4)


def test_shrinkage_keeps_a_rep_with_three_deals_off_the_top():
    won = [30, 35, 32, 38, 28, 33, 36, 31, 34, 29]  # ten reps with 100 closed deals each, and a star with 3 of 3
    rows = [(f"r{i}", s) for i, w in enumerate(won) for s in ["won"] * w + ["lost"] * (100 - w)] + [("star", "won")] * 3
    o = pd.DataFrame(rows, columns=["owner", "status"])
    o["won"] = (o["status"] == "won").astype(int)
    s = shrunk_win_rates(o, "owner").set_index("group")
    assert s.loc["star", "win_rate"] == 1.0 and s.index[0] == "r3"
    # by hand: k = 11, N = 1003, mean = 329/1003; sum n (p - mean)^2 = 2.5876 -> spread 0.3833 after removing
    # 10 mean (1 - mean); between = spread / (1003 - 100009/1003) = 4.242e-4; a + b = mean (1 - mean) / between - 1
    mean = 329 / 1003
    spread = sum(100 * (w / 100 - mean) ** 2 for w in won) + 3 * (1 - mean) ** 2 - 10 * mean * (1 - mean)
    strength = mean * (1 - mean) / (spread / (1003 - (10 * 100**2 + 9) / 1003)) - 1
    assert s.loc["star", "shrunk_win_rate"] == pytest.approx((3 + mean * strength) / (3 + strength))
    assert mean < s.loc["star", "shrunk_win_rate"] < s.loc["r3", "shrunk_win_rate"]


def test_demo_history_recovers_the_generators_ground_truth(demo_project):
    import json

    import funnel_lab as fl

    truth = json.loads((demo_project / "data" / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    p = fl.load(demo_project / "params" / "demo.yaml")
    r = p.funnel()
    dyn = r.dynamics[["skips", "backward", "re_entries"]].sum().to_dict()
    sh = truth["stage_history"]
    assert dyn == {"skips": sh["skips"], "backward": sh["backward_moves"], "re_entries": sh["re_entries"]}
    won = r.funnel[(r.funnel["mode"] == "any") & (r.funnel["stage"] == "won")]["reached"].item()
    assert won == truth["outcome_counts"]["won"]  # merged duplicates take their history along
    assert r.unmapped.empty and r.deals_with_history == truth["rows"]
    # the deals the generator left without a move for 120 days are among the stalled ones, every one still there
    planted = set(sh["stalled_open_ids"])
    kept = planted & set(p.opportunities["opportunity_id"])
    assert len(kept) >= 0.9 * len(planted) and kept <= set(r.stalled["opportunity_id"])


def test_reach_from_parquet_files_equals_reach_from_frames(history, opps, tmp_path):
    history.to_parquet(tmp_path / "h.parquet")
    opps.to_parquet(tmp_path / "o.parquet")
    from_files = deal_reach(tmp_path / "h.parquet", tmp_path / "o.parquet", ORDER)
    pd.testing.assert_frame_equal(from_files, deal_reach(history, opps, ORDER))


def test_reach_edge_cases_one_row_per_deal_sorted_by_id():
    rows = [("E0", "c", 1), ("E0", None, 2), ("E0", "a", 3), ("E0", "b", 4),  # c first entered before b
            ("E1", "a", 1), ("E1", "b", None), ("E1", "c", 3),                # b entered, its time missing: no break
            ("E2", "a", 1), ("E2", "b", 2),                                   # not among the opportunities
            ("E3", "won", 1),                                                 # only the outcome
            (None, "a", 1), (None, "b", 2)]                                   # no id: matches no opportunity
    history = pd.DataFrame({"opportunity_id": pd.array([r[0] for r in rows], dtype="str"),
                            "stage": pd.array([r[1] for r in rows], dtype="str"),
                            "entered_at": pd.to_datetime([f"2024-01-{r[2]:02d}" if r[2] else None for r in rows])})
    opps = pd.DataFrame({"opportunity_id": ["E0", "E1", "E3", "E9"], "status": ["open", "won", "won", "lost"]})
    reach = deal_reach(history, opps, ORDER)
    assert reach["opportunity_id"].tolist()[:4] == ["E0", "E1", "E2", "E3"] and pd.isna(reach["opportunity_id"].iloc[4])
    assert reach["any_reach"].tolist() == [3, 4, 2, 4, 0] and reach["strict_reach"].tolist() == [2, 4, 2, 0, 0]
    assert reach["status"].iloc[[0, 1, 3]].tolist() == ["open", "won", "won"]
    assert reach["status"].iloc[[2, 4]].isna().all()
    assert reach["any_reach"].dtype == "int64" and reach["strict_reach"].dtype == "int64"


def test_funnel_by_group_counts_each_groups_deals_with_wilson_intervals():
    from statsmodels.stats.proportion import proportion_confint

    from funnel_lab.analysis.funnel import funnel_by_group

    reach = pd.DataFrame({"opportunity_id": [f"d{i}" for i in range(7)], "any_reach": [1, 2, 3, 1, 1, 2, 5]})
    opp = pd.DataFrame({"opportunity_id": [f"d{i}" for i in range(7)],
                        "segment": ["A", "A", "A", "B", "B", "B", None]})
    out = funnel_by_group(reach, opp, "segment", ["s1", "s2", "s3", "s4"]).set_index(["group", "stage"])
    assert out.loc["A", "reached"].tolist() == [3, 2, 1, 0, 0]
    assert out.loc["B", "reached"].tolist() == [3, 1, 0, 0, 0]  # the deal without a segment is in no group
    assert out.loc[("A", "s1"), "conversion_rate"] == pytest.approx(2 / 3)
    low, high = proportion_confint(2, 3, method="wilson")
    assert (out.loc[("A", "s1"), "ci_low"], out.loc[("A", "s1"), "ci_high"]) == pytest.approx((low, high))
    assert np.isnan(out.loc[("A", "s4"), "conversion_rate"]) and np.isnan(out.loc[("A", "won"), "ci_low"])


@pytest.mark.parametrize("col", ["owner", "source", "segment"])
def test_win_rates_by_group_files_equal_a_plain_groupby(demo_run, col):
    from statsmodels.stats.proportion import proportion_confint

    clean = pd.read_csv(demo_run / "data" / "opportunities_clean.csv", usecols=[col, "status"])
    closed = clean[clean["status"].isin(["won", "lost"])]
    plain = closed.groupby(col)["status"].agg(closed="size", won=lambda s: int((s == "won").sum()))
    got = pd.read_csv(demo_run / "data" / f"win_rates_by_{col}.csv").set_index("group")
    assert sorted(got.index) == sorted(plain.index)
    pd.testing.assert_series_equal(got["closed"].sort_index(), plain["closed"].sort_index(), check_names=False)
    pd.testing.assert_series_equal(got["won"].sort_index(), plain["won"].sort_index(), check_names=False)
    low, high = proportion_confint(plain["won"], plain["closed"], method="wilson")
    np.testing.assert_allclose(got.loc[plain.index, "ci_low"], low, atol=1e-9)
    np.testing.assert_allclose(got.loc[plain.index, "ci_high"], high, atol=1e-9)
    # shrinkage pulls every group toward the pooled rate, never past it
    pooled = plain["won"].sum() / plain["closed"].sum()
    raw, shrunk = got["won"] / got["closed"], got["shrunk_win_rate"]
    assert ((shrunk - pooled).abs() <= (raw - pooled).abs() + 1e-12).all()


# --------------------------------------------------------------------------- edges, and the funnel without a history


def test_time_in_stage_and_stalled_deals_at_their_edges():
    from funnel_lab.analysis.funnel import stalled_deals

    # stage b has no stays; a stay recorded backwards (negative days) counts as none; half a day is half a day
    durations = pd.DataFrame({"opportunity_id": ["d1", "d2", "d3", "d4", "d5", "d6"], "stage": ["a", "a", "a", "c", "c", "c"],
                              "days": [0.5, -2.0, 9.0, 4.0, 10.0, 10.0], "left": [True, True, True, True, False, False],
                              "current": [False, False, False, False, True, True]})
    t = time_in_stage(durations, ["a", "b", "c"]).set_index("stage")
    assert t.loc["b"].to_dict() == pytest.approx({"deals": 0, "still_in_stage": 0, "median_days": np.nan,
                                                  "p90_days": np.nan, "naive_median_days": np.nan}, nan_ok=True)
    assert t.loc["a", "median_days"] == 0.5 and t.loc["a", "naive_median_days"] == 0.5
    # c: one stay of 4 days ended, two still going at 10: the curve never falls to 10%
    assert t.loc["c", "deals"] == 3 and t.loc["c", "still_in_stage"] == 2 and np.isnan(t.loc["c", "p90_days"])
    assert list(t.columns) == ["deals", "still_in_stage", "median_days", "p90_days", "naive_median_days"]
    times = pd.DataFrame({"stage": ["a", "c"], "p90_days": [9.0, 5.0]})
    cur = durations.assign(current=[False, False, True, False, True, True], days=[0.5, -2.0, 9.0, 4.0, 12.0, 30.0])
    s = stalled_deals(cur, times)
    # d3 has exactly its stage's 90th percentile: not beyond it; the longest first, numbered from 0
    assert s.to_dict("list") == {"opportunity_id": ["d6", "d5"], "stage": ["c", "c"], "days": [30.0, 12.0],
                                 "p90_days": [5.0, 5.0]}
    assert s.index.tolist() == [0, 1]


def test_win_rates_keys_and_what_they_cannot_tell(opps):
    w = win_rates(opps)
    assert w == pytest.approx({"won": 2, "lost": 1, "open": 4, "closed_win_rate": 2 / 3, "cohort_win_rate": 2 / 7,
                               "cycle_days": 4.0, "avg_won_amount": 200.0, "velocity_per_day": 4 * 200 * (2 / 3) / 4})
    bare = win_rates(opps[opps["status"] == "open"][["opportunity_id", "status"]])
    assert bare == pytest.approx({"won": 0, "lost": 0, "open": 4, "closed_win_rate": np.nan, "cohort_win_rate": 0.0,
                                  "cycle_days": np.nan, "avg_won_amount": np.nan, "velocity_per_day": np.nan},
                                 nan_ok=True)
    undated = win_rates(opps.drop(columns=["created_at"]).assign(amount=np.nan))
    assert np.isnan(undated["cycle_days"]) and np.isnan(undated["avg_won_amount"]) and undated["won"] == 2
    # a won deal closed the day it was created: a cycle of 0 days gives no speed, not a division by zero
    same_day = opps.assign(closed_at=opps["created_at"].where(opps["status"] != "open"))
    assert win_rates(same_day)["cycle_days"] == 0 and np.isnan(win_rates(same_day)["velocity_per_day"])


def test_cohorts_by_hand():
    from funnel_lab.analysis.funnel import cohort_table

    o = pd.DataFrame({"status": ["won", "won", "lost", "open", "won", "open"],
                      "created_at": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-01-10", "2024-01-15",
                                                    "2024-03-01", None]),
                      "closed_at": pd.to_datetime(["2024-01-25", "2024-03-10", "2024-02-01", None, "2024-03-20",
                                                   None])})
    c = cohort_table(o, as_of=pd.Timestamp("2024-04-10"), max_months=3)
    assert c.index.astype(str).tolist() == ["2024-01", "2024-03"] and list(c.columns) == [0, 1, 2, 3]
    # January: 4 deals, won after 20 days (month 0) and 50 days (month 1); March: 1 deal won in month 0, and at
    # 1 month old in April it has no months 2 and 3 yet
    assert c.loc[pd.Period("2024-01", "M")].tolist() == [0.25, 0.5, 0.5, 0.5]
    assert c.loc[pd.Period("2024-03", "M")].tolist()[:2] == [1.0, 1.0] and c.loc[pd.Period("2024-03", "M")].isna().tolist()[2:] == [True, True]
    assert cohort_table(o, as_of=pd.Timestamp("2024-04-10")).columns.tolist() == list(range(13))


def _no_history_pipeline(opportunities, *, rules=None, stages=None):
    from types import SimpleNamespace as NS

    return NS(opportunities=opportunities, history=None, as_of=pd.Timestamp("2024-02-01"), stages=stages,
              params=NS(stages=NS(order=ORDER, rules=rules, score=None)))


def test_the_funnel_without_a_history_from_the_crm_stage_or_the_stage_model(opps):
    from funnel_lab.analysis.funnel import analyse_funnel

    opp = opps.assign(crm_stage=["won", "won", "lost", "b", "a", "zz", None], owner=["x", "x", "y", "y", "y", None, "x"])
    r = analyse_funnel(_no_history_pipeline(opp))
    # the CRM stage's rank: won deals passed every stage; the lost one at least entered the first; an unknown name
    # and a missing stage reached none
    assert r.reach["any_reach"].tolist() == [4, 4, 1, 2, 1, 0, 0] and r.reach["strict_reach"].equals(r.reach["any_reach"])
    assert r.funnel["mode"].unique().tolist() == ["any"] and r.funnel["reached"].tolist() == [5, 3, 2, 2]
    assert not r.from_history and r.deals_with_history == 0 and r.unmapped.empty and r.times.empty
    assert r.by_month is None and r.summary is r.funnel and r.rates == win_rates(opp)
    assert set(r.outputs) == {"funnel.csv", "time_in_stage.csv", "stalled_deals.csv", "win_rates_by_owner.csv",
                              "funnel_by_owner.csv"}
    assert r.funnel_by["owner"].set_index(["group", "stage"]).loc[("y", "a"), "reached"] == 3
    assert r.win_rates_by["owner"].set_index("group")["closed"].to_dict() == {"x": 2, "y": 1}
    assert r.cohorts.index.astype(str).tolist() == ["2024-01"]
    # with rules, the stage model's stages stand for how far a deal got
    model_stages = pd.DataFrame({"stage_rank": [1, 2, 3, 1, 2, 3, 0]})
    r = analyse_funnel(_no_history_pipeline(opp, rules={"a": "True"}, stages=model_stages))
    assert r.reach["any_reach"].tolist() == [4, 4, 3, 1, 2, 3, 0]


def test_the_analysis_date_is_the_datas_not_the_clocks(history, opps):
    from funnel_lab.analysis.funnel import data_as_of

    assert data_as_of(opps, None) == pd.Timestamp("2024-01-07")  # the latest close, Jan 6, plus a day
    assert data_as_of(opps, history.assign(entered_at=history["entered_at"] + pd.Timedelta(days=20))) == (
        pd.Timestamp("2024-01-27"))  # the latest history row, Jan 26 at 00:00
    assert data_as_of(opps[["opportunity_id", "status", "created_at"]], None) == pd.Timestamp("2024-01-02")
    assert data_as_of(opps, None, configured="2025-03-01") == pd.Timestamp("2025-03-01")
    assert data_as_of(opps[["opportunity_id"]], None) == pd.Timestamp("today").normalize()


def test_funnel_table_of_no_deals_and_its_columns():
    from funnel_lab.analysis.funnel import FUNNEL_COLUMNS

    none = funnel_table(pd.DataFrame({"any_reach": [0, 0], "strict_reach": [0, 0]}), ORDER)
    assert list(none.columns) == FUNNEL_COLUMNS and none["reached"].tolist() == [0] * 8
    assert none["conversion_rate"].isna().all() and none["cumulative_rate"].isna().all()
    assert str(none["advanced"].dtype) == "Int64" and none["advanced"].isna().tolist() == [False] * 3 + [True] + [False] * 3 + [True]


def test_dynamics_of_a_deal_closed_then_reopened_and_sorted_by_deal():
    h = pd.DataFrame({"opportunity_id": ["Z", "Z", "Z", "Z", "A", "A", "A"],
                      "stage": ["a", "c", "won", "c", "a", "a", "b"],
                      "entered_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04",
                                                    "2024-01-01", "2024-01-01", "2024-01-02"])})
    d = stage_dynamics(h, ORDER)
    assert d["opportunity_id"].tolist() == ["A", "Z"]
    # Z: a -> c skips b; won -> c reopens it (c again is not a re-entry: a stay in c, a close, a stay in c)
    assert d.set_index("opportunity_id").loc["Z"].to_dict() == {"skips": 1, "backward": 0, "reopened": 1,
                                                                "re_entries": 1}
    # A: two rows of a at once are one stay, then b: nothing unusual
    assert d.set_index("opportunity_id").loc["A"].to_dict() == {"skips": 0, "backward": 0, "reopened": 0,
                                                                "re_entries": 0}


def test_shrinkage_with_one_group_and_a_group_without_closed_deals():
    o = pd.DataFrame({"owner": ["x"] * 4 + ["y"] * 2, "status": ["won", "lost", "lost", "won", "open", "open"]})
    o["won"] = o["status"].map({"won": 1, "lost": 0})
    s = shrunk_win_rates(o, "owner")
    # y has no closed deal: no row; x alone: nothing to shrink towards but itself
    assert s["group"].tolist() == ["x"] and s.loc[0, "closed"] == 4 and s.loc[0, "won"] == 2
    assert s.loc[0, "shrunk_win_rate"] == pytest.approx(0.5)
    # 5 of 10 and 4 of 10: a spread well within chance, so both are pooled to the overall 45%
    two = pd.DataFrame({"owner": ["x"] * 10 + ["y"] * 10, "won": [1] * 5 + [0] * 5 + [1] * 4 + [0] * 6})
    two["status"] = two["won"].map({1: "won", 0: "lost"})
    s = shrunk_win_rates(two, "owner")
    assert s["shrunk_win_rate"].tolist() == pytest.approx([0.45, 0.45], abs=1e-5) and s["win_rate"].tolist() == [0.5, 0.4]
