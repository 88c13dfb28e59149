"""The ``10_stage_design`` page: do the stage criteria mean anything, said in plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.stages import (CHECKS, UNASSIGNED, StageDesign, StageModel, check_sentences, checks_table,
                               stage_labels)
from ..i18n import format_percent, t
from .plots import plot_stage_mix, plot_win_rates
from .wording import rule


def definitions(model: StageModel, lang: str) -> pd.DataFrame:
    """The model as readable text: one row per stage (rules) or per point and band (score)."""
    labels = stage_labels(model, lang)
    if model.method == "rules":
        return pd.DataFrame({"stage": [labels[s] for s in model.order],
                             "rule": [rule(model.rules[s].text, lang) for s in model.order]})
    points = pd.DataFrame({"rule": [rule(e.text, lang) for e, _ in model.points], "points": [p for _, p in model.points]})
    bands = pd.DataFrame({"stage": [labels[s] for s in model.bands], "min_score": list(model.bands.values())})
    return pd.concat([points, bands], ignore_index=True)


def summary_sentences(r: StageDesign, lang: str) -> list[str]:
    """The report's opening: the overall verdict and the two or three facts behind it."""
    c, model = r.checks, r.model
    bad = [k for k in CHECKS if c.verdicts[k] == "fail"]
    warn = [k for k in CHECKS if c.verdicts[k] == "warn"]
    key = "sd.summary_fail" if bad else "sd.summary_warn" if warn else "sd.summary_ok"
    names = ", ".join(t(f"sd.check.{k}", lang) for k in (bad or warn))
    closed = c.metrics[(c.metrics["stage_rank"] > 0) & (c.metrics["n_closed"] > 0)]
    labels = stage_labels(model, lang)
    out = [t(key, lang, model=model.name, checks=names)]
    if len(closed) >= 2 and not np.isnan(c.auc):
        first, last = closed.iloc[0], closed.iloc[-1]
        out.append(t("sd.summary_range", lang, a=labels[first["stage"]], wa=format_percent(first["win_rate"], lang),
                     b=labels[last["stage"]], wb=format_percent(last["win_rate"], lang), auc=f"{c.auc:.2f}"))
    if any(c.verdicts[k] == "na" for k in CHECKS):
        out.append(t("sd.summary_na", lang, checks=", ".join(t(f"sd.check.{k}", lang) for k in CHECKS
                                                               if c.verdicts[k] == "na")))
    return out + [check_sentences(c, model, lang)["coverage"]]


def show_definitions(run, r: StageDesign) -> None:
    """The stage criteria as readable text, with the stage labels of the report language."""
    run.heading("sd.definitions")
    d = definitions(r.model, run.lang)
    run.table(d, labels={c: f"col.{c}" for c in d.columns})


def show_distribution(run, r: StageDesign) -> None:
    """Counts and win rates per stage, and the win-rate chart with interval bars."""
    labels = stage_labels(r.model, run.lang)
    run.heading("sd.distribution")
    m = r.metrics.assign(stage=r.metrics["stage"].map(labels))
    run.table(m, labels={c: f"col.{c}" for c in m.columns}, percent=("win_rate", "ci_low", "ci_high"))
    run.figure(plot_win_rates(r.metrics, labels=labels, title=run.t("sd.win_chart")))


def show_checks(run, r: StageDesign) -> None:
    """Every check with its verdict, then the evidence: criterion lift, calibration, stage mix over time."""
    checks, model = r.checks, r.model
    labels = stage_labels(model, run.lang)
    run.heading("sd.checks")
    table = checks_table(checks, model, run.lang)
    run.table(table, labels={"check": "col.check", "verdict": "col.verdict", "finding": "col.finding"})
    run.heading("sd.lift", level=3)
    run.say("sd.lift_note")
    lift = checks.lift.copy()
    if model.method == "rules":
        lift["rule"] = [f"{labels[s]}: {rule(model.rules[s].text, run.lang)}" for s in lift["rule"]]
    lift["lift"] = lift["lift"].round(2)
    run.table(lift, labels={c: f"col.{c}" for c in lift.columns}, percent=("win_rate_true", "win_rate_false"))
    if len(checks.calibration):
        run.heading("sd.calibration", level=3)
        cal = checks.calibration.assign(stage=checks.calibration["stage"].map(labels))
        run.table(cal, labels={c: f"col.{c}" for c in cal.columns}, percent=("stated", "observed"))
    opp = run.pipeline.opportunities
    if "crm_stage" in opp.columns and opp["crm_stage"].notna().any():
        run.heading("sd.crm_stage", level=3)
        cross = pd.crosstab(opp["crm_stage"], r.stages["stage"]).reindex(
            columns=[s for s in [UNASSIGNED] + model.order if s in set(r.stages["stage"])], fill_value=0)
        cross = cross.rename(columns=labels)
        run.table(cross.reset_index().rename(columns={"crm_stage": run.t("col.crm_stage")}))
    if len(checks.mix):
        run.figure(plot_stage_mix(run.periods(checks.mix), labels=labels, title=run.t("sd.mix_chart")))


def show_comparison(run, r: StageDesign) -> None:
    """With ``stages.compare_with``: both models' verdicts side by side, the transition matrix and the moves."""
    if r.other_model is None:
        return
    other, oc, checks = r.other_model, r.other_checks, r.checks
    run.heading("sd.compare", other=other.name)
    side = pd.DataFrame({
        "check": [t(f"sd.check.{k}", run.lang) for k in CHECKS],
        other.name: [t(f"verdict.{oc.verdicts[k]}", run.lang) for k in CHECKS],
        r.model.name: [t(f"verdict.{checks.verdicts[k]}", run.lang) for k in CHECKS]})
    side.loc[len(side)] = ["AUC", f"{oc.auc:.3f}", f"{checks.auc:.3f}"]
    side.loc[len(side)] = [run.t("sd.check.coverage"), run.percent(1 - oc.unassigned_share),
                           run.percent(1 - checks.unassigned_share)]
    run.table(side, labels={"check": "col.check"})
    old_labels, new_labels = stage_labels(other, run.lang), stage_labels(r.model, run.lang)
    trans = r.comparison["transitions"].rename(index=old_labels, columns=new_labels)
    run.table(trans.reset_index().rename(columns={"stage": f"{other.name} \\ {r.model.name}"}))
    moves = r.comparison["moves"]
    moves = moves.assign(**{"from": moves["from"].map(old_labels), "to": moves["to"].map(new_labels),
                            "rule": moves["rule"].map(lambda x: rule(x, run.lang))})
    if set(other.order) == set(r.model.order):
        run.say("sd.compare_moves", n=f"{int(moves['n'].sum()) if len(moves) else 0:,}")
    else:
        run.say("sd.compare_renamed")
    run.table(moves.head(10), labels={c: f"col.{c}" for c in moves.columns})


def show_proposal(run, r: StageDesign) -> None:
    """For the score method: band minimums learnt from the data next to the current ones."""
    if r.proposal is None:
        return
    run.heading("sd.proposal")
    run.say("sd.proposal_note")
    shown = r.proposal.assign(stage=r.proposal["stage"].map(stage_labels(r.model, run.lang)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns},
              percent=("win_rate_current", "win_rate_proposed"))
