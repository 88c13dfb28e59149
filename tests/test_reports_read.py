"""Every report read in Chromium as a stakeholder reads it, in English and in Chinese: the summary's numbers against
the run's data files, and the data files against an independent computation (plain pandas recounts, statsmodels,
scikit-learn, the demo's ground truth).

A paragraph "shows" a number when one of its numbers rounds to it as the page rounds (``tests/reading.py`` parses
``12,345``, ``12.3%``, ``1.94万`` and ``1.35亿`` itself), so the same check reads both languages.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportions_ztest

from funnel_lab.i18n import t
from reading import read_report, recount_any_funnel, said, shows

pytestmark = pytest.mark.browser
ORDER = ["potential", "intent", "evaluation", "decision"]
HORIZON_DAYS = 90
AS_OF = pd.Timestamp("2026-07-01")  # the demo's data run to 2026-06-30


@dataclass
class Run:
    lang: str
    folder: Path
    demo: Path  # the demo data the run read

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def csv(self, name: str, **kw) -> pd.DataFrame:
        return pd.read_csv(self.data / name, **kw)

    def opportunities(self) -> pd.DataFrame:
        return self.csv("opportunities_clean.csv", parse_dates=["created_at", "closed_at", "expected_close_at"])


@pytest.fixture(params=["en", "zh"])
def run(request, demo_project) -> Run:
    folder = request.getfixturevalue("demo_run" if request.param == "en" else "zh_run")
    return Run(request.param, folder, demo_project / "data" / "demo")


def test_data_quality_counts_every_row(run, browser):
    page = read_report(browser, run.folder / "00_data_quality.html")
    quarantine = run.csv("quarantine.csv", usecols=["table", "reason"])
    truth = json.loads((run.demo / "ground_truth.json").read_text(encoding="utf-8"))
    kept = {"opportunities": len(run.csv("opportunities_clean.csv", usecols=["opportunity_id"])),
            "stage_history": len(run.csv("stage_history_clean.csv", usecols=["opportunity_id"])),
            "experiment": len(run.csv("experiment_clean.csv", usecols=["unit_id"]))}
    for table, raw in [("opportunities", "opportunities.csv"), ("stage_history", "stage_history.csv"),
                       ("experiment", "experiment.csv"), ("activities", "activities.csv")]:
        read = len(pd.read_csv(run.demo / raw, dtype=str, keep_default_na=False))
        removed = int((quarantine["table"] == table).sum())
        assert read == truth["files"][raw]
        if table in kept:
            assert kept[table] == read - removed, table
        said(page.summary, read, read - removed, removed)
    # what was removed, by step, is what the generator injected
    dirt = truth["dirt"]
    said(page.summary, len(dirt["exact_duplicate_ids"]), len(dirt["near_duplicates"]))
    bad = truth["activities"]["bad"]
    said(page.summary, len(bad["unparsable_time"]), len(bad["missing_type"]), len(bad["unknown_opportunity"]))
    reasons = quarantine.loc[quarantine["table"] == "opportunities", "reason"]
    assert reasons.str.startswith("duplicate of").sum() == len(dirt["exact_duplicate_ids"])
    assert reasons.str.startswith("near duplicate of").sum() == len(dirt["near_duplicates"])


def _closed_rate_by_stage(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deals, closed deals, wins and win rate per stage recounted from stages.csv; and stages.csv with `won`."""
    stages = run.csv("stages.csv").merge(run.csv("opportunities_clean.csv", usecols=["opportunity_id", "won"]),
                                         on="opportunity_id", validate="one_to_one")
    g = stages.groupby("stage")
    return pd.DataFrame({"n": g.size(), "n_closed": g["won"].count(), "won": g["won"].sum()}).assign(
        win_rate=lambda x: x["won"] / x["n_closed"]), stages


def test_stage_design_says_what_the_stages_do(run, browser):
    page = read_report(browser, run.folder / "10_stage_design.html")
    by_stage, stages = _closed_rate_by_stage(run)
    closed = stages[stages["won"].notna()]
    auc = roc_auc_score(closed["won"], closed["stage_rank"])
    said(page.summary, by_stage.loc["potential", "win_rate"], by_stage.loc["decision", "win_rate"], auc)
    unassigned = float((stages["stage"] == "unassigned").mean())
    said(page.summary, unassigned)
    metrics = run.csv("stage_metrics.csv").set_index("stage").loc[ORDER]
    assert metrics[["n", "n_closed", "won"]].astype(int).equals(by_stage.loc[ORDER, ["n", "n_closed", "won"]].astype(int))

    # the verdicts the page shows are the data file's, and three of them follow from the recount
    checks = run.csv("stage_checks.csv")
    word_key = {t(f"verdict.{k}", "en"): k for k in ("ok", "warn", "fail", "na")}
    keys = checks["verdict"].map(word_key)
    shown = next(rows for rows in page.tables if len(rows) == len(checks) and {len(r) for r in rows} == {3})
    assert [r[1] for r in shown] == [t(f"verdict.{k}", run.lang) for k in keys]
    verdict = dict(zip(["monotonicity", "trend", "discrimination", "separation", "coverage", "consistency",
                        "stability"], keys))
    rates = by_stage.loc[ORDER]
    inversions = [ztest_p(rates, a, b) for a, b in zip(ORDER, ORDER[1:])
                  if rates.loc[b, "win_rate"] < rates.loc[a, "win_rate"]]
    assert verdict["monotonicity"] == ("fail" if any(p <= 0.05 for p in inversions) else
                                       "warn" if inversions else "ok")
    assert verdict["discrimination"] == ("ok" if auc >= 0.7 else "warn" if auc >= 0.6 else "fail")
    assert verdict["coverage"] == ("ok" if unassigned <= 0.05 else "warn" if unassigned <= 0.2 else "fail")
    merge = [ztest_p(rates, a, b) > 0.05 for a, b in zip(ORDER, ORDER[1:])]
    assert verdict["separation"] == ("warn" if any(merge) else "ok")


def ztest_p(rates: pd.DataFrame, a: str, b: str) -> float:
    return proportions_ztest(rates.loc[[b, a], "won"].to_numpy(), rates.loc[[b, a], "n_closed"].to_numpy())[1]


def test_funnel_counts_each_deal_once(run, browser):
    page = read_report(browser, run.folder / "20_funnel.html")
    reach = recount_any_funnel(run.data, ORDER)
    funnel = run.csv("funnel.csv")
    assert funnel[funnel["mode"] == "any"].set_index("stage")["reached"].to_dict() == reach
    first = reach["potential"]
    said(page.summary, first, reach["decision"] / first, reach["won"] / first)
    steps = list(reach.values())
    said(page.summary, min(b / a for a, b in zip(steps, steps[1:])))

    opp = run.opportunities()
    won, lost = (opp["status"] == "won").sum(), (opp["status"] == "lost").sum()
    days = (opp.loc[opp["status"] == "won", "closed_at"] - opp.loc[opp["status"] == "won", "created_at"]).dt.days
    said(page.summary, won / (won + lost), won / len(opp), days.median(), (opp["status"] == "open").sum())

    # stalled: open deals whose days in their current stage (summed over its visits; a visit lasts until the
    # deal's next history row, the last until the analysis date) exceed the stage's 90th percentile
    stalled = run.csv("stalled_deals.csv")
    said(page.summary, len(stalled))
    h = run.csv("stage_history_clean.csv", parse_dates=["entered_at"]).sort_values(["opportunity_id", "entered_at"])
    h["days"] = (h.groupby("opportunity_id")["entered_at"].shift(-1).fillna(AS_OF) - h["entered_at"]).dt.total_seconds()
    in_stage = h.groupby(["opportunity_id", "stage"])["days"].sum() / 86400
    current = h.groupby("opportunity_id")["stage"].last()
    s = stalled.set_index("opportunity_id")
    assert set(s.index) <= set(opp.loc[opp["status"] == "open", "opportunity_id"])
    assert (current[s.index] == s["stage"]).all()
    np.testing.assert_allclose(s["days"], in_stage[list(zip(s.index, s["stage"]))].to_numpy())
    assert (s["days"] > s["p90_days"]).all()


def test_regression_odds_ratios_are_statsmodels(run, browser):
    page = read_report(browser, run.folder / "30_regression.html")
    opp = run.csv("opportunities_clean.csv")
    terms = ["meetings", "emails_replied", "demo", "budget_confirmed", "source"]
    fit_rows = opp[opp["status"] != "open"].dropna(subset=terms + ["won", "owner"]).copy()
    for flag in ("demo", "budget_confirmed"):
        fit_rows[flag] = fit_rows[flag].astype("str").map({"True": 1, "False": 0})
    said(page.summary, len(fit_rows), fit_rows["won"].sum(), fit_rows["won"].mean(), len(opp) - len(fit_rows))
    model = smf.logit("won ~ meetings + emails_replied + demo + budget_confirmed + C(source)", fit_rows).fit(
        disp=0, cov_type="cluster", cov_kwds={"groups": pd.factorize(fit_rows["owner"])[0]})
    odds, ci = np.exp(model.params), np.exp(model.conf_int())
    drivers = page.summary[1].replace("；", ";").split(";")
    named = 0
    for clause in drivers:
        for term in ("meetings", "emails_replied", "demo", "budget_confirmed"):
            if term in clause:
                for value in (odds[term], *ci.loc[term]):
                    assert shows(clause, value), (term, clause, value)
                named += 1
    assert named >= 2


def test_ab_test_is_a_two_proportion_test_of_the_units_kept(run, browser):
    page = read_report(browser, run.folder / "40_ab_test.html")
    rows = run.csv("experiment_clean.csv")
    # the hygiene, recounted: every row of a unit seen in two variants out, then a unit's repeated rows after its first
    multi = rows.groupby("unit_id")["variant"].transform("nunique") > 1
    kept = rows[~multi]
    kept = kept[~kept.duplicated("unit_id", keep="first")]
    g = kept.groupby("variant")["converted"].agg(["sum", "count"])
    z, p = proportions_ztest(g.loc[["script_B", "script_A"], "sum"], g.loc[["script_B", "script_A"], "count"])
    rate = g["sum"] / g["count"]
    result = json.loads((run.data / "ab_test.json").read_text(encoding="utf-8"))
    assert result["p_value"] == pytest.approx(p, rel=1e-9) and result["z"] == pytest.approx(z, rel=1e-9)
    said(page.summary, rate["script_B"], rate["script_A"], 100 * (rate["script_B"] - rate["script_A"]), p)
    said(page.summary, len(rows) - len(kept), len(rows), len(kept))
    assert len(run.csv("ab_excluded.csv")) == len(rows) - len(kept)


def test_targeting_ranks_every_open_deal(run, browser):
    page = read_report(browser, run.folder / "50_targeting.html")
    targets = run.csv("targets.csv")
    opp = run.csv("opportunities_clean.csv", usecols=["opportunity_id", "status"])
    assert set(targets["opportunity_id"]) == set(opp.loc[opp["status"] == "open", "opportunity_id"])
    assert targets["rank"].tolist() == list(range(1, len(targets) + 1))
    said(page.summary, len(targets))
    m = json.loads((run.data / "targeting_metrics.json").read_text(encoding="utf-8"))
    said(page.summary, m["lift_at_10pct"], m["lift_low"], m["lift_high"], m["precision_at_top_n"], m["base_rate"])
    said(page.summary, m["auc"], m["baseline_auc"], m["tree_auc"], m["tree_lift_at_10pct"])
    rules = run.csv("targeting_rules.csv")
    best = rules.sort_values("win_rate", ascending=False).iloc[0]
    said(page.summary, best["win_rate"], best["n"])


def test_forecast_sums_its_periods_and_reads_its_backtest(run, browser):
    page = read_report(browser, run.folder / "60_forecast_monitoring.html")
    forecast = run.csv("forecast.csv")
    opp = run.opportunities()
    open_deals = opp[opp["status"] == "open"]
    said(page.summary, forecast["expected_amount"].sum())
    # the CRM's weighting: its probability x amount of the open deals due within the horizon (overdue: due now)
    due = open_deals[open_deals["expected_close_at"] < AS_OF + pd.Timedelta(days=HORIZON_DAYS)]
    crm = float((due["amount"] * due["crm_probability"] / 100).sum())
    assert forecast["crm_weighted"].sum() == pytest.approx(crm)
    said(page.summary, crm)

    bt = run.csv("forecast_backtest.csv")
    dated = bt[~bt["as_of"].isin(["bias", "mape", "coverage"])]
    own = dated[dated["method"] == "funnel_lab"]
    np.testing.assert_allclose(own["error"], own["forecast"] / own["actual"] - 1)
    mape = dated.groupby("method")["error"].apply(lambda e: e.abs().mean())
    said(page.summary, mape["funnel_lab"], own["error"].mean(), len(own), own["inside_band"].sum())
    assert mape["crm_weighted"] > 0.01  # a baseline that knew the outcomes would be exact

    # monitoring: each stage's c-chart recomputed from its own counts (center: the mean of up to 26 earlier
    # complete weeks, at least 8; limits +/- 3 sqrt(center)); the breaches are alerts.csv's entry alerts
    monitoring = run.csv("monitoring.csv").sort_values(["stage", "period_start"])
    counts = monitoring["entered"].astype(float).where(monitoring["complete"])
    center = counts.groupby(monitoring["stage"]).transform(lambda c: c.shift(1).rolling(26, min_periods=8).mean())
    np.testing.assert_allclose(monitoring["entered_center"], center)
    low, high = (center - 3 * np.sqrt(center)).clip(lower=0), center + 3 * np.sqrt(center)
    out = monitoring["complete"] & ((monitoring["entered"] < low) | (monitoring["entered"] > high))
    alerts = run.csv("alerts.csv")
    assert set(zip(monitoring.loc[out, "period"], monitoring.loc[out, "stage"])) == set(
        map(tuple, alerts.loc[alerts["metric"] == "entered", ["period", "stage"]].to_numpy()))
    latest = monitoring.loc[monitoring["complete"], "period"].max()
    for a in alerts[alerts["period"] == latest].itertuples():
        said(page.summary, a.value, a.center)


def test_index_cards_are_the_data_files_counts(run, browser):
    page = browser.new_page()
    page.goto((run.folder / "index.html").as_uri())
    cards = dict(zip(page.locator(".card .k").all_inner_texts(), page.locator(".card .v").all_inner_texts()))
    page.close()
    status = run.csv("opportunities_clean.csv", usecols=["status"])["status"].value_counts()
    expected = {"opportunities": status.sum(), "won": status["won"], "lost": status["lost"], "open": status["open"],
                "rows_removed": len(run.csv("quarantine.csv", usecols=["reason"])),
                "experiment_units": run.csv("experiment_clean.csv", usecols=["unit_id"])["unit_id"].nunique(),
                "stalled": len(run.csv("stalled_deals.csv")),
                "closed_win_rate": status["won"] / (status["won"] + status["lost"])}
    for key, value in expected.items():
        assert shows(cards[t(f"headline.{key}", run.lang)], value), (key, cards)
