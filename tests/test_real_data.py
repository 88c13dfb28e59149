"""The real CRM exports in ../shared/data through the example params: exact counts measured on the files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, cli
from reading import recount_any_funnel
from funnel_lab.config import load_params
from funnel_lab.analysis.abtest import experiment_hygiene
from funnel_lab.pipeline import Pipeline

EXAMPLES = ROOT / "params" / "examples"
pytestmark = pytest.mark.shared_data


def cleaned_example(name: str):
    p = Pipeline(load_params([EXAMPLES / f"{name}.yaml"]))
    return p.tables, p.cleaned


def test_salesforce_devorg(shared_data):
    tables, cleaned = cleaned_example("salesforce_devorg")
    opp = cleaned["opportunities"].data
    assert len(opp) == 31 and opp["status"].value_counts().to_dict() == {"won": 18, "open": 13}
    assert opp.loc[opp["status"] == "open", "expected_close_at"].notna().all()
    assert opp.loc[opp["status"] == "open", "closed_at"].isna().all()
    assert str(opp.loc[opp["opportunity_id"] == "006Hp000015Yh7lIAC", "closed_at"].iloc[0]) == "2023-10-16 00:00:00"
    # the null-id sentinel is a placeholder, not an id
    ph = cleaned["opportunities"].placeholders
    assert ph.loc[ph["token"] == "000000000000000AAA", "cells"].sum() == 62  # CampaignId and ContactId, 31 each
    hist = cleaned["stage_history"].data
    assert len(hist) == 62 and hist["opportunity_id"].nunique() == 31
    assert hist["entered_at"].notna().all()


def test_maven_counts_and_the_gtxpro_join(shared_data):
    tables, cleaned = cleaned_example("maven_crm")
    opp = cleaned["opportunities"].data
    assert len(opp) == 8800
    assert opp["status"].value_counts().to_dict() == {"won": 4238, "lost": 2473, "open": 2089}
    assert opp["closed_at"].notna().sum() == 6711
    gtx = opp[opp["product"] == "GTXPro"]
    assert len(gtx) == 1480 and (gtx["series"] == "GTX").all() and (gtx["sales_price"] == 4821).all()
    assert opp["series"].notna().all()
    joins = {j["path"].rsplit("/", 1)[-1]: j for j in tables["opportunities"].joins}
    assert joins["products.csv"]["matched"] == 8800 and joins["products.csv"]["loose_only"] == ["GTXPro"]
    assert joins["accounts.csv"]["unmatched"] == 0 and joins["accounts.csv"]["matched"] == 8800 - 1425


def test_xeducation_select_is_missing_with_counts_per_column(shared_data):
    _, cleaned = cleaned_example("xeducation_leads")
    c = cleaned["opportunities"]
    assert len(c.data) == 9240
    assert c.data["status"].value_counts().to_dict() == {"lost": 5679, "won": 3561}
    select = c.placeholders[c.placeholders["token"] == "Select"].set_index("column")["cells"].to_dict()
    assert select == {"how_did_you_hear_about_x_education": 5043, "lead_profile": 4146, "city": 2249,
                      "specialization": 1942}
    assert not (c.data.astype("str") == "Select").any().any()
    # blank + Select together (PROVENANCE: 7,250 of 9,240 for "How did you hear")
    assert c.data["how_did_you_hear_about_x_education"].isna().sum() == 7250
    assert (c.data["source"] == "Google").sum() == 2868 + 5  # 'google' merged onto 'Google'
    flags = c.flags.set_index("column")["flag"].to_dict()
    assert flags["magazine"] == "constant" and flags["receive_more_updates_about_our_courses"] == "constant"


def test_ab_udacity_mismatches_and_repeated_users(shared_data):
    tables, cleaned = cleaned_example("ab_udacity")
    exp = cleaned["experiment"].data
    assert len(exp) == 294478 and exp["unit_id"].nunique() == 290584
    hy = experiment_hygiene(exp)
    mm = hy["mismatches"]
    assert set(mm["column"]) == {"landing_page"} and mm["rows"].sum() == 3893
    assert mm.set_index("variant")["rows"].to_dict() == {"control": 1928, "treatment": 1965}
    assert len(hy["repeated"]) == 3894 and (hy["repeated"]["rows"] == 2).all()
    assert exp["country"].notna().all() and tables["experiment"].joins[0]["matched"] == 294478


@pytest.mark.parametrize("name, reports", [
    ("salesforce_devorg", ["00_data_quality", "10_stage_design", "20_funnel", "60_forecast_monitoring"]),
    ("maven_crm", ["00_data_quality", "10_stage_design", "20_funnel", "50_targeting", "60_forecast_monitoring"]),
    ("xeducation_leads", ["00_data_quality", "10_stage_design", "20_funnel", "30_regression", "50_targeting"]),
    ("ab_udacity", ["00_data_quality", "40_ab_test"])])
def test_example_runs_end_to_end(shared_data, tmp_path, name, reports):
    res = cli("run", str(EXAMPLES / f"{name}.yaml"), "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.stdout.strip()).parent
    assert sorted(p.stem for p in run_dir.glob("[0-9][0-9]_*.html")) == reports
    assert (run_dir / "data" / "cleaning_audit.csv").is_file()
    if "20_funnel" in reports:
        funnel = pd.read_csv(run_dir / "data" / "funnel.csv")
        assert set(funnel["mode"]) <= {"any", "strict"}
        got = funnel[funnel["mode"] == "any"].set_index("stage")["reached"]
        order = list(load_params([EXAMPLES / f"{name}.yaml"]).stages.order)
        assert got.to_dict() == recount_any_funnel(run_dir / "data", order)
    if "30_regression" in reports:  # X Education: time on site raises conversion
        coef = pd.read_csv(run_dir / "data" / "regression_coefficients.csv").set_index("term")
        assert coef.loc["total_time_spent_on_website", "ci_low"] > 0
    if "50_targeting" in reports:  # DESIGN's files, and a list that beats random picks
        metrics = json.loads((run_dir / "data" / "targeting_metrics.json").read_text(encoding="utf-8"))
        later = metrics["later_check"]  # the list drawn at a past date against what closed since
        if name == "xeducation_leads":  # measured 2.3-2.5 over split seeds; maven's columns carry no signal (AUC 0.50)
            assert metrics["lift_at_10pct"] > 2 and metrics["auc"] > 0.8
            assert later == {"status": "no_dates"}  # the leads export has no dates
        else:
            assert 0.4 < metrics["auc"] < 0.6
            # measured: trained on 4,702 deals closed by 2017-09-29, 931 open then and closed since, lift 0.97
            # (0.81 to 1.13): the time-ordered check agrees there is nothing to find
            assert later["status"] == "ok" and later["cutoff"] == "2017-09-29" and later["n_checked"] == 931
            assert later["lift_low"] < 1 < later["lift_high"]
        targets = pd.read_csv(run_dir / "data" / "targets.csv")
        assert list(targets.columns[:4]) == ["opportunity_id", "probability", "rank", "rule"]
        assert targets["rank"].tolist() == list(range(1, len(targets) + 1))
    if "40_ab_test" in reports:  # the published numbers after removing mismatches and the repeated user
        ab = json.loads((run_dir / "data" / "ab_test.json").read_text(encoding="utf-8"))
        assert [(v["name"], v["n"], round(v["rate"], 4)) for v in ab["variants"]] == [
            ("control", 145_274, 0.1204), ("treatment", 145_310, 0.1188)]
        assert 0.18 < ab["p_value"] < 0.20 and ab["decision"] == "inconclusive" and not ab["srm_failed"]
    if "10_stage_design" in reports:
        metrics = pd.read_csv(run_dir / "data" / "stage_metrics.csv")
        stages = pd.read_csv(run_dir / "data" / "stages.csv")
        assert metrics["n"].sum() == len(stages) == pd.read_csv(run_dir / "data" / "opportunities_clean.csv").shape[0]


def test_xeducation_score_model_orders_leads(shared_data):
    from funnel_lab.analysis.stages import assign_stages, build_model, check_model

    params = load_params([EXAMPLES / "xeducation_leads.yaml"])
    opp = Pipeline(params).cleaned_table("opportunities").data
    model = build_model(params.stages)
    checks = check_model(opp, assign_stages(opp, model), model)
    # measured: AUC 0.83 and win rates rising at every band on this file
    assert checks.verdicts["monotonicity"] == "ok" and checks.auc > 0.8
