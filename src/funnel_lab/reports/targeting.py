"""The targeting report (``50_targeting``): the short list first, then why each name is on it and how good it is."""

from __future__ import annotations

import pandas as pd

from ..analysis import targeting as tg
from ..i18n import format_number, format_percent, t
from .plots import plot_calibration, plot_gains, plot_tree_diagram


def summary_sentences(r: tg.TargetingResult, lang: str) -> list[str]:
    """Whether the columns carry signal, what to do with the list, how much better than random it is (on held-out
    deals, then on deals that closed later), the best group, and what was kept out of the model."""
    m, later, out = r.metrics, r.later_check, []
    if max(m["auc"], m["baseline_auc"] or 0) < 0.6:  # neither model beats a coin by much: say so before the list
        out.append(t("tg.no_signal", lang, auc=format_number(m["auc"], lang, digits=2)))
    out.append(t("tg.summary_list", lang, n=format_number(len(r.targets), lang), top=format_number(m["top_n"], lang)))
    out.append(t("tg.summary_quality", lang, lift=format_number(m["lift_at_10pct"], lang, digits=1),
                 auc=format_number(m["auc"], lang, digits=2), base=format_number(m["baseline_auc"], lang, digits=2),
                 precision=format_percent(m["precision_at_top_n"], lang), rate=format_percent(m["base_rate"], lang),
                 n=format_number(m["top_n_test"], lang)))
    if later["status"] == "ok":
        out.append(t("tg.summary_later", lang, cutoff=later["cutoff"].strftime("%Y-%m-%d"),
                     lift=format_number(later["lift_at_10pct"], lang, digits=1),
                     low=format_number(later["lift_low"], lang, digits=1),
                     high=format_number(later["lift_high"], lang, digits=1)))
    if len(r.rules):
        best = r.rules.iloc[0]
        out.append(t("tg.summary_best_rule", lang, rule=best["rule"], rate=format_percent(best["win_rate"], lang),
                     n=format_number(int(best["n"]), lang)))
    flagged = r.leakage[r.leakage["flagged"]]
    if len(flagged):
        out.append(t("tg.summary_leakage", lang, columns=", ".join(flagged["column"])))
    return out


def show_targets(run, r: tg.TargetingResult) -> None:
    """The top of the list with the reason and the next action for each deal."""
    run.heading("tg.list")
    run.say("tg.list_note", n=format_number(run.params.targeting.top_n, run.lang))
    cols = ["rank", "opportunity_id", "probability", "stage", "next_action", "rule"]
    labels = run.stage_labels()
    shown = r.targets[cols].head(25)
    shown = shown.assign(stage=shown["stage"].map(lambda s: labels.get(s, s) if isinstance(s, str) else s))
    run.table(shown, labels={c: f"col.{c}" for c in cols}, percent=("probability",))


def _show_measures(run, e: dict) -> None:
    """:func:`~funnel_lab.analysis.targeting.evaluate`'s measures for the tree beside the baseline, each in its own unit."""
    shown = {"auc": lambda v: run.number(v, 2), "pr_auc": lambda v: run.number(v, 2),
             "precision_at_top_n": run.percent, "lift_at_10pct": lambda v: run.number(v, 1)}
    b = e.get("baseline", {})
    table = pd.DataFrame({"measure": [run.t(f"tg.metric.{k}", n=e["top_n"]) for k in shown],
                          "tree": [f(e.get(k)) for k, f in shown.items()],
                          "baseline": [f(b.get(k)) for k, f in shown.items()]})
    run.table(table, labels={"measure": "col.measure", "tree": "col.tree", "baseline": "col.baseline"})


def show_model(run, r: tg.TargetingResult) -> None:
    """The tree drawn, its leaves as rules, the evaluation beside the logistic baseline, gains and calibration."""
    run.heading("tg.tree")
    run.say("tg.tree_note", depth=r.model.best_params["max_depth"], leaf=r.model.best_params["min_samples_leaf"],
            cv=format_number(r.model.cv_auc["mean"], run.lang, digits=3))
    run.figure(plot_tree_diagram(r.nodes, yes=run.t("tg.rule.yes"), no=run.t("tg.rule.no"), deals=run.t("tg.deals")))
    run.table(r.rules, labels={"leaf": "col.leaf", "rule": "col.rule", "n": "col.deals", "wins": "col.won",
                               "win_rate": "col.win_rate"}, percent=("win_rate",))

    run.heading("tg.evaluation")
    e = r.evaluation
    run.say("tg.evaluation_note", n=format_number(e["n_test"], run.lang), rate=run.percent(e["base_rate"]))
    _show_measures(run, e)
    run.figure(plot_gains(e["gains"], title=run.t("tg.gains_chart"),
                    labels={"model": run.t("col.tree"), "baseline": run.t("col.baseline"), "random": run.t("tg.random")}))
    cal = e["calibration"].dropna(subset=["observed_rate"])
    if len(cal):
        run.figure(plot_calibration(cal, title=run.t("tg.calibration_chart")))

    run.heading("tg.features")
    run.say("tg.features_note", used=", ".join(r.metrics["features_used"]) or "–")
    lk = r.leakage[["column", "auc_alone", "missing_closed", "missing_open", "flagged", "reason", "removed"]]
    run.table(lk, labels={c: f"col.{c}" for c in lk.columns}, percent=("missing_closed", "missing_open"),
              translate={"reason": "tg.reason"})
    run.table(r.candidates, labels={"column": "col.column", "reason": "col.reason"}, translate={"reason": "tg.reason"})


def show_later_check(run, r: tg.TargetingResult) -> None:
    """The list as it would have been drawn at a past date, scored by how those deals closed since."""
    run.heading("tg.later")
    c = r.later_check
    if c["status"] != "ok":
        run.say(f"tg.later_skipped.{c['status']}", n=format_number(c.get("n_checked", 0), run.lang),
                train=format_number(c.get("n_train", 0), run.lang), min=tg.MIN_LATER_CLOSED,
                min_closed=tg.MIN_CLOSED, min_class=tg.MIN_PER_CLASS)
        return
    run.say("tg.later_note", train=format_number(c["n_train"], run.lang), cutoff=c["cutoff"].strftime("%Y-%m-%d"),
            n=format_number(c["n_checked"], run.lang), rate=run.percent(c["base_rate"]),
            top=format_number(c["top10_n"], run.lang), wins=format_number(c["top10_wins"], run.lang),
            lift=format_number(c["lift_at_10pct"], run.lang, digits=1),
            low=format_number(c["lift_low"], run.lang, digits=1), high=format_number(c["lift_high"], run.lang, digits=1))
    _show_measures(run, c)
    run.say("tg.later_caveat", cutoff=c["cutoff"].strftime("%Y-%m-%d"))
