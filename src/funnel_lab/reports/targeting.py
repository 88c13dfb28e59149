"""The targeting report (``50_targeting``): the short list first, then how good it is beside the simpler lists, why
each name is on it, and how it held up against what closed later."""

from __future__ import annotations

import pandas as pd

from ..analysis import targeting as tg
from ..analysis.uplift import MIN_PER_ARM
from ..i18n import format_date, format_number, format_percent, t
from .plots import plot_calibration, plot_gains, plot_qini, plot_tree_diagram

#: Hold-out AUCs closer than this are reported as ranking alike (about the noise of a few thousand test deals).
AUC_TIE = 0.005


def _choice(m: dict) -> str:
    """``better``, ``tie`` or ``worse``: the boosted list against the best of the tree and the logistic baseline."""
    rival = max(m["tree_auc"] or 0, m["baseline_auc"] or 0)
    if m["auc"] >= rival + AUC_TIE:
        return "better"
    return "tie" if m["auc"] > rival - AUC_TIE else "worse"


def summary_sentences(r: tg.TargetingResult, lang: str) -> list[str]:
    """Whether the columns carry signal, what to do with the list, how much better than random it is (on held-out
    deals, then on deals that closed later), which list to use, the best group, and what was kept out."""
    m, later, out = r.metrics, r.later_check, []
    num = lambda v, digits=2: format_number(v, lang, digits=digits)  # noqa: E731
    if max(m["auc"], m["baseline_auc"] or 0) < 0.6:  # no list beats a coin by much: say so before the list
        out.append(t("tg.no_signal", lang, auc=num(m["auc"])))
    out.append(t("tg.summary_list", lang, n=format_number(len(r.targets), lang), top=format_number(m["top_n"], lang)))
    out.append(t("tg.summary_quality", lang, lift=num(m["lift_at_10pct"], 1), low=num(m["lift_low"], 1),
                 high=num(m["lift_high"], 1), precision=format_percent(m["precision_at_top_n"], lang),
                 rate=format_percent(m["base_rate"], lang), n=format_number(m["top_n_test"], lang)))
    out.append(t(f"tg.summary_choice.{_choice(m)}", lang, auc=num(m["auc"]), tree=num(m["tree_auc"]),
                 base=num(m["baseline_auc"]), tree_lift=num(m["tree_lift_at_10pct"], 1)))
    if later["status"] == "ok":
        out.append(t("tg.summary_later", lang, cutoff=format_date(later["cutoff"], lang),
                     lift=num(later["lift_at_10pct"], 1), low=num(later["lift_low"], 1), high=num(later["lift_high"], 1)))
    if r.uplift is not None:
        top, marked = r.uplift.holdout["top_tenth"], int(r.targets["action_helps"].sum())
        key = "tg.summary_uplift" if r.uplift.validated else "tg.summary_uplift_unproven"
        out.append(t(key, lang, action=r.uplift_check["treatment"], uplift=format_percent(top["uplift"], lang),
                     low=format_percent(top["low"], lang), high=format_percent(top["high"], lang),
                     overall=format_percent(r.uplift.holdout["overall"]["uplift"], lang),
                     marked=format_number(marked, lang)))
    if len(r.rules):
        best = r.rules.iloc[0]
        out.append(t("tg.summary_best_rule", lang, rule=best["rule"], rate=format_percent(best["win_rate"], lang),
                     n=format_number(int(best["n"]), lang)))
    flagged = r.leakage[r.leakage["flagged"]]
    if len(flagged):
        out.append(t("tg.summary_leakage", lang, columns=", ".join(flagged["column"])))
    return out


def show_targets(run, r: tg.TargetingResult) -> None:
    """The top of the list with its chance, what moves it, the segment's rule and the next action for each deal."""
    run.heading("tg.list")
    run.say("tg.list_note", n=format_number(run.params.targeting.top_n, run.lang),
            drivers=format_number(tg.DRIVER_ROWS, run.lang))
    cols = ["rank", "opportunity_id", "probability", "stage", "next_action", "drivers", "rule"]
    if r.uplift is not None and r.uplift.validated:
        cols.insert(3, "action_helps")
    labels = run.stage_labels()
    shown = r.targets[cols].head(25)
    shown = shown.assign(stage=shown["stage"].map(lambda s: labels.get(s, s) if isinstance(s, str) else s))
    if "action_helps" in shown:
        shown = shown.assign(action_helps=shown["action_helps"].map(lambda v: run.t("tg.rule.yes") if v else ""))
    run.table(shown, labels={c: f"col.{c}" for c in cols}, percent=("probability",))


def _show_measures(run, lists: dict) -> None:
    """:func:`~funnel_lab.analysis.targeting.evaluate`'s measures of each list side by side, each in its own unit."""
    def lift(e):
        return f"{run.number(e['lift_at_10pct'], 1)} ({run.number(e['lift_low'], 1)}–{run.number(e['lift_high'], 1)})"

    shown = {"auc": lambda e: run.number(e["auc"], 2), "pr_auc": lambda e: run.number(e["pr_auc"], 2),
             "lift_at_10pct": lift, "precision_at_top_n": lambda e: run.percent(e["precision_at_top_n"]),
             "brier": lambda e: run.number(e["brier"], 3)}
    top_n = next(iter(lists.values()))["top_n"]
    table = pd.DataFrame({"measure": [run.t(f"tg.metric.{k}", n=top_n) for k in shown],
                          **{name: [f(e) for f in shown.values()] for name, e in lists.items()}})
    run.table(table, labels={"measure": "col.measure", **{name: f"col.{name}" for name in lists}})


def show_comparison(run, r: tg.TargetingResult) -> None:
    """The three lists on the same held-out deals, the gains of each, and the list's calibration."""
    run.heading("tg.evaluation")
    e = r.evaluation
    run.say("tg.evaluation_note", n=format_number(e["n_test"], run.lang), rate=run.percent(e["base_rate"]))
    _show_measures(run, r.evaluations)
    run.say("tg.brier_note")
    run.figure(plot_gains(tg.gains_table(r.evaluations), title=run.t("tg.gains_chart"),
                          labels={**{name: run.t(f"col.{name}") for name in tg.LISTS}, "random": run.t("tg.random")}))
    cal = e["calibration"].dropna(subset=["observed_rate"])
    if len(cal):
        run.say("tg.calibration_note", brier=run.number(e["brier"], 3),
                depth=r.boosted.best_params["max_depth"], trees=r.boosted.best_params["n_iter"])
        run.figure(plot_calibration(cal, title=run.t("tg.calibration_chart")))


def show_model(run, r: tg.TargetingResult) -> None:
    """The tree drawn and its leaves as rules (the segments of the list), then the columns the models may use."""
    run.heading("tg.tree")
    run.say("tg.tree_note", depth=r.model.best_params["max_depth"], leaf=r.model.best_params["min_samples_leaf"],
            cv=format_number(r.model.cv_auc["mean"], run.lang, digits=3))
    run.figure(plot_tree_diagram(r.nodes, yes=run.t("tg.rule.yes"), no=run.t("tg.rule.no"), deals=run.t("tg.deals")))
    run.table(r.rules, labels={"leaf": "col.leaf", "rule": "col.rule", "n": "col.deals", "wins": "col.won",
                               "win_rate": "col.win_rate"}, percent=("win_rate",))

    run.heading("tg.features")
    run.say("tg.features_note", used=", ".join(r.metrics["tree_features_used"]) or "–",
            n=format_number(len(r.features), run.lang))
    lk = r.leakage[["column", "auc_alone", "missing_closed", "missing_open", "flagged", "reason", "removed"]]
    run.table(lk, labels={c: f"col.{c}" for c in lk.columns}, percent=("missing_closed", "missing_open"),
              translate={"reason": "tg.reason"})
    run.table(r.candidates, labels={"column": "col.column", "reason": "col.reason"}, translate={"reason": "tg.reason"})


def show_later_check(run, r: tg.TargetingResult) -> None:
    """The lists as they would have been drawn at a past date, scored by how those deals closed since."""
    run.heading("tg.later")
    c = r.later_check
    if c["status"] != "ok":
        run.say(f"tg.later_skipped.{c['status']}", n=format_number(c.get("n_checked", 0), run.lang),
                train=format_number(c.get("n_train", 0), run.lang), min=tg.MIN_LATER_CLOSED,
                min_closed=tg.MIN_CLOSED, min_class=tg.MIN_PER_CLASS)
        return
    run.say("tg.later_note", train=format_number(c["n_train"], run.lang), cutoff=format_date(c["cutoff"], run.lang),
            n=format_number(c["n_checked"], run.lang), rate=run.percent(c["base_rate"]),
            top=format_number(c["top10_n"], run.lang), wins=format_number(c["top10_wins"], run.lang),
            lift=format_number(c["lift_at_10pct"], run.lang, digits=1),
            low=format_number(c["lift_low"], run.lang, digits=1), high=format_number(c["lift_high"], run.lang, digits=1))
    _show_measures(run, c["lists"])
    run.say("tg.later_caveat", cutoff=format_date(c["cutoff"], run.lang))


def show_uplift(run, r: tg.TargetingResult) -> None:
    """Who the experiment's action helps: the uplift on held-out deals, the Qini curve, the deals marked."""
    c = r.uplift_check
    if c["status"] == "no_experiment":
        return
    run.heading("tg.uplift")
    if r.uplift is None:
        run.say(f"tg.uplift_skipped.{c['status']}", units=format_number(c.get("units", 0), run.lang),
                matched=format_number(c.get("matched", 0), run.lang), min=format_number(MIN_PER_ARM, run.lang))
        return
    h = r.uplift.holdout
    top, overall = h["top_tenth"], h["overall"]
    run.say("tg.uplift_note", action=c["treatment"], control=c["control"], n=format_number(c["matched"], run.lang),
            held=format_number(h["n"], run.lang), overall=run.percent(overall["uplift"]),
            overall_low=run.percent(overall["low"]), overall_high=run.percent(overall["high"]),
            top=format_number(top["n"], run.lang), treated=run.percent(top["rate_treated"]),
            untreated=run.percent(top["rate_control"]), uplift=run.percent(top["uplift"]),
            low=run.percent(top["low"]), high=run.percent(top["high"]))
    run.figure(plot_qini(h["qini"], title=run.t("tg.qini_chart"),
                         labels={"incremental": run.t("tg.qini_model"), "random": run.t("tg.random")}))
    marked = int(r.targets["action_helps"].sum())
    run.say("tg.uplift_marked" if r.uplift.validated else "tg.uplift_unproven", marked=format_number(marked, run.lang),
            action=c["treatment"], threshold=run.percent(r.uplift.threshold))
