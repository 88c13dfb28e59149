"""The funnel on the real CRM exports in ../shared/data, with exact counts.

Each count is checked three ways: funnel_lab's result, an independent computation in this file that reads the raw CSV
files with plain pandas (no funnel_lab code on the expected side), and the literal numbers measured on the files, so
that a change in either the library or the data fails the test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from funnel_lab import open_run
from funnel_lab.analysis.funnel import deal_reach, funnel_table, stage_dynamics
from funnel_lab.config import load_params
from funnel_lab.pipeline import Pipeline

EXAMPLES = ROOT / "params" / "examples"
pytestmark = pytest.mark.shared_data

# measured on the files (see the tests for how each is derived independently)
SF_ORDER = ["prospecting", "qualified", "proposal", "negotiation"]
SF_ANY = [31, 30, 28, 20, 18]
SF_STRICT = [1, 0, 0, 0, 0]
MAVEN_ORDER = ["prospecting", "engaging", "large_account"]
MAVEN_ANY = [8800, 8300, 6683, 4238]


def cleaned_example(name: str):
    params = load_params([EXAMPLES / f"{name}.yaml"])
    return params, Pipeline(params).cleaned


# ---------------------------------------------------------------------------------------- independent (plain pandas)

def expected_funnel(reach: dict[str, pd.Series], names: list[str]) -> pd.DataFrame:
    """The funnel by its definition, from per-deal reach (0 = nothing; i = the i-th row of ``names``)."""
    rows = []
    for mode, r in reach.items():
        reached = [int((r >= i).sum()) for i in range(1, len(names) + 1)]
        for i, stage in enumerate(names):
            adv = reached[i + 1] if i + 1 < len(names) else None
            rows.append({"mode": mode, "stage": stage, "reached": reached[i], "advanced": adv,
                         "conversion_rate": adv / reached[i] if adv is not None and reached[i] else math.nan,
                         "cumulative_rate": reached[i] / reached[0] if reached[0] else math.nan})
    return pd.DataFrame(rows)


def assert_same_funnel(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.reset_index(drop=True)
    assert got["mode"].tolist() == want["mode"].tolist()
    assert got["stage"].tolist() == want["stage"].tolist()
    assert got["reached"].tolist() == want["reached"].tolist()
    as_ints = lambda col: [None if pd.isna(a) else int(a) for a in col]  # noqa: E731 (the last row has none)
    assert as_ints(got["advanced"]) == as_ints(want["advanced"])
    for col in ("conversion_rate", "cumulative_rate"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), equal_nan=True)


def raw_salesforce(shared_data):
    """OpportunityHistory and Opportunity as read by pandas, every cell text."""
    folder = shared_data / "salesforce_devorg"
    hist = pd.read_csv(folder / "OpportunityHistory.csv", dtype=str, keep_default_na=False)
    opp = pd.read_csv(folder / "opportunity.csv", dtype=str, keep_default_na=False)
    return hist, opp


def salesforce_reach_by_hand(shared_data) -> pd.DataFrame:
    """Per deal with history: any_reach and strict_reach by the DESIGN definition, from the raw files.

    The stage map and order are read from the params YAML with plain ``yaml`` (the test follows the params; the
    literal numbers pin the result).
    """
    doc = yaml.safe_load((EXAMPLES / "salesforce_devorg.yaml").read_text())
    order = doc["stages"]["order"]
    stage_map = doc["data"]["stage_history"]["values"]["stage"]
    assert order == SF_ORDER
    hist, opp = raw_salesforce(shared_data)
    k = len(order)
    rank_of = {s: i for i, s in enumerate(order, start=1)}
    h = pd.DataFrame({"opportunity_id": hist["OpportunityId"],
                      "rank": hist["StageName"].map(stage_map).map(rank_of),  # NaN: won/lost/unmapped
                      "at": pd.to_datetime(hist["CreatedDate"], format="%Y-%m-%d %H:%M:%S")})
    won = set(opp.loc[(opp["IsClosed"] == "1") & (opp["IsWon"] == "1"), "Id"])
    rows = []
    for deal, g in h.groupby("opportunity_id", sort=True):
        ranks = g["rank"].dropna().astype(int)
        any_reach = int(ranks.max()) if len(ranks) else 0
        first = g.dropna(subset=["rank"]).groupby("rank")["at"].min()
        strict, prev = 0, None
        for stage in range(1, k + 1):  # every stage 1..k present, first entries in non-decreasing time
            if stage not in first.index or (prev is not None and first[stage] < prev):
                break
            strict, prev = stage, first[stage]
        if deal in won:
            any_reach = k + 1
            strict = k + 1 if strict == k else strict
        rows.append({"opportunity_id": deal, "any_reach": any_reach, "strict_reach": strict})
    return pd.DataFrame(rows)


def maven_reach_by_hand(shared_data) -> pd.Series:
    """Per deal, the rank by the maven example's rules, from sales_pipeline.csv and accounts.csv; won -> K + 1.

    Rules (params/examples/maven_crm.yaml): prospecting True; engaging: an engage date; large_account: an engage
    date and an account with >= 1000 employees. The stage is the highest rule that holds.
    """
    folder = shared_data / "maven_crm"
    pipe = pd.read_csv(folder / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    acc = pd.read_csv(folder / "accounts.csv", dtype={"account": str, "employees": "int64"})
    employees = pipe["account"].map(acc.set_index("account")["employees"])  # blank account -> NaN
    engaged = pipe["engage_date"] != ""
    rank = pd.Series(1, index=pipe.index)
    rank[engaged] = 2
    rank[engaged & (employees >= 1000)] = 3
    rank[pipe["deal_stage"] == "Won"] = 4
    return rank


# ------------------------------------------------------------------------------------------------ salesforce_devorg

def test_salesforce_history_holds_only_the_current_stage(shared_data):
    """Why the strict funnel is 1/0/0/0/0: the history records no stage path at all.

    The org was filled by Salesforce's sample-data loader, which inserted each opportunity directly at its current
    stage and then updated its CloseDate (from the 2018-10-01 default to the real date). OpportunityHistory therefore
    holds two rows per deal, both with the deal's current StageName, all 62 written at the same second. No deal has a
    recorded move between stages; strict mode needs Prospecting first, so only the one deal that is currently in
    Prospecting reaches strict stage 1, and the 18 won deals (whose history holds only Closed Won) reach nothing.
    The `any` funnel is then simply "current stage or later" and is not affected.
    """
    hist, opp = raw_salesforce(shared_data)
    assert len(hist) == 62 and hist["OpportunityId"].nunique() == 31
    assert hist["CreatedDate"].unique().tolist() == ["2023-10-28 20:45:25"]  # one instant: no time order
    assert (hist.groupby("OpportunityId").size() == 2).all()
    assert (hist.groupby("OpportunityId")["StageName"].nunique() == 1).all()  # same stage twice: no transition
    current = opp.set_index("Id")["StageName"]
    assert (hist["StageName"] == hist["OpportunityId"].map(current)).all()
    # the second row of each deal is a CloseDate change, not a stage change
    dates = hist.groupby("OpportunityId")["CloseDate"].agg(set)
    assert all(len(d) == 2 and "2018-10-01 00:00:00" in d for d in dates)
    assert hist.loc[hist["StageName"] == "Prospecting", "OpportunityId"].nunique() == 1
    assert opp["StageName"].value_counts().to_dict() == {
        "Closed Won": 18, "Id. Decision Makers": 3, "Negotiation/Review": 2, "Proposal/Price Quote": 2,
        "Value Proposition": 2, "Qualification": 1, "Prospecting": 1, "Perception Analysis": 1, "Needs Analysis": 1}


def test_salesforce_deal_reach_matches_raw_csv(shared_data):
    params, cleaned = cleaned_example("salesforce_devorg")
    order = list(params.stages.order)
    assert order == SF_ORDER
    reach = deal_reach(cleaned["stage_history"].data, cleaned["opportunities"].data, order)
    want = salesforce_reach_by_hand(shared_data)
    got = reach[["opportunity_id", "any_reach", "strict_reach"]].sort_values("opportunity_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # per deal: 1 prospecting, 2 qualified (Qualification, Needs Analysis), 8 proposal, 2 negotiation, 18 won
    assert want["any_reach"].value_counts().sort_index().to_dict() == {1: 1, 2: 2, 3: 8, 4: 2, 5: 18}
    assert want["strict_reach"].value_counts().to_dict() == {0: 30, 1: 1}


def test_salesforce_funnel_exact_counts(shared_data):
    params, cleaned = cleaned_example("salesforce_devorg")
    order = list(params.stages.order)
    got = funnel_table(deal_reach(cleaned["stage_history"].data, cleaned["opportunities"].data, order), order)
    by_hand = salesforce_reach_by_hand(shared_data)
    want = expected_funnel({"any": by_hand["any_reach"], "strict": by_hand["strict_reach"]}, order + ["won"])
    assert_same_funnel(got, want)
    assert got.loc[got["mode"] == "any", "reached"].tolist() == SF_ANY
    assert got.loc[got["mode"] == "strict", "reached"].tolist() == SF_STRICT
    anyf = got[got["mode"] == "any"].set_index("stage")
    assert anyf.loc["proposal", "conversion_rate"] == pytest.approx(20 / 28)
    assert anyf.loc["won", "cumulative_rate"] == pytest.approx(18 / 31)


def test_salesforce_analyse_funnel_through_a_run(shared_data, tmp_path):
    run = open_run(EXAMPLES / "salesforce_devorg.yaml", out_dir=tmp_path, notebook="20_funnel")
    r = run.pipeline.funnel()
    assert r.from_history and r.deals_with_history == 31 and r.unmapped.empty
    by_hand = salesforce_reach_by_hand(shared_data)
    assert_same_funnel(r.funnel, expected_funnel({"any": by_hand["any_reach"], "strict": by_hand["strict_reach"]},
                                                 SF_ORDER + ["won"]))
    assert r.funnel.loc[r.funnel["mode"] == "any", "reached"].tolist() == SF_ANY
    assert r.funnel.loc[r.funnel["mode"] == "strict", "reached"].tolist() == SF_STRICT


def test_salesforce_stage_dynamics_consecutive_rows_of_one_stage_are_one_stay(shared_data):
    """OpportunityHistory writes a row on any change (amount, close date, probability), so consecutive rows may
    hold the same stage: that is one stay in the stage, not a re-entry. Here every deal has two rows of its current
    stage and no transition, so no deal has a skip, a backward move, a re-entry or a reopening.

    (At the time of writing funnel_lab counts the second row as a re-entry: 13 re-entries, one per open deal; the
    won deals escape only because won/lost rows are not counted as entries.)
    """
    params, cleaned = cleaned_example("salesforce_devorg")
    hist = cleaned["stage_history"].data
    d = stage_dynamics(hist, list(params.stages.order)).set_index("opportunity_id")
    assert len(d) == 31

    # by hand from the raw file: collapse runs of the same (mapped) stage in time order, then count the entries
    doc = yaml.safe_load((EXAMPLES / "salesforce_devorg.yaml").read_text())
    stage_map = doc["data"]["stage_history"]["values"]["stage"]
    raw, _ = raw_salesforce(shared_data)
    raw = raw.assign(stage=raw["StageName"].map(stage_map)).sort_values(["OpportunityId", "CreatedDate"], kind="stable")
    runs = raw[raw["stage"] != raw.groupby("OpportunityId")["stage"].shift()]
    open_runs = runs[runs["stage"].isin(SF_ORDER)]
    re_entries = (open_runs.groupby(["OpportunityId", "stage"]).size() - 1).groupby(level=0).sum()
    assert int(re_entries.sum()) == 0 and len(runs) == 31  # one stay per deal

    assert d["re_entries"].sum() == 0, (
        f"{int((d['re_entries'] > 0).sum())} deals counted as re-entering a stage: consecutive history rows with the "
        "same stage (amount / close-date updates) are counted as new entries")
    assert d[["skips", "backward", "reopened"]].sum().to_dict() == {"skips": 0, "backward": 0, "reopened": 0}


def test_stage_dynamics_repeated_row_is_not_a_re_entry_minimal():
    """The minimal case of the above, no data needed: a, a (an amount change), b is one stay in a; a, b, a is a
    re-entry into a."""
    hist = pd.DataFrame({"opportunity_id": ["D1", "D1", "D1", "D2", "D2", "D2"],
                         "stage": pd.array(["a", "a", "b", "a", "b", "a"], dtype="str"),
                         "entered_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"] * 2)})
    d = stage_dynamics(hist, ["a", "b", "c"]).set_index("opportunity_id")
    assert d["re_entries"].to_dict() == {"D1": 0, "D2": 1}


# --------------------------------------------------------------------------------------------------------- maven_crm

def test_maven_pipeline_stages_on_the_raw_file(shared_data):
    """Prospecting -> Engaging -> Won/Lost as the file has it: every deal that is not in Prospecting was engaged (it
    has an engage_date), so 8,800 deals, 8,300 engaged, 4,238 won (and 2,473 lost after engaging)."""
    pipe = pd.read_csv(shared_data / "maven_crm" / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    engaged = pipe["engage_date"] != ""
    assert len(pipe) == 8800 and int(engaged.sum()) == 8300
    assert (~engaged).sum() == (pipe["deal_stage"] == "Prospecting").sum() == 500
    assert engaged[pipe["deal_stage"].isin(["Won", "Lost", "Engaging"])].all()
    assert pipe["deal_stage"].value_counts().to_dict() == {"Won": 4238, "Lost": 2473, "Engaging": 1589,
                                                          "Prospecting": 500}


def test_maven_funnel_without_history_exact_counts(shared_data, tmp_path):
    """maven_crm has no stage_history: the funnel is built from the stage model of the example params (current
    stage and every stage before it; won deals reach every row), `any` mode only."""
    params = load_params([EXAMPLES / "maven_crm.yaml"])
    assert params.data.stage_history is None
    run = open_run(EXAMPLES / "maven_crm.yaml", out_dir=tmp_path, notebook="20_funnel")
    r = run.pipeline.funnel()
    assert not r.from_history and r.deals_with_history == 0 and r.order == MAVEN_ORDER
    assert set(r.funnel["mode"]) == {"any"}
    want = expected_funnel({"any": maven_reach_by_hand(shared_data)}, MAVEN_ORDER + ["won"])
    assert_same_funnel(r.funnel, want)
    assert r.funnel["reached"].tolist() == MAVEN_ANY
    # 6,683 = 4,238 won + 2,445 engaged, not won, with a large (>= 1,000 employees) account (2,070 lost, 375 open)
    f = r.funnel.set_index("stage")
    assert f.loc["won", "cumulative_rate"] == pytest.approx(4238 / 8800)
    assert f.loc["engaging", "conversion_rate"] == pytest.approx(6683 / 8300)
    assert r.rates["won"] == 4238 and r.rates["lost"] == 2473 and r.rates["open"] == 2089
