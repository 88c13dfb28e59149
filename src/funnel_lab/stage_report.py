"""The stage-design report and the terminal table: the checks of a stage model, said in plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .i18n import format_number, format_p, format_percent, t
from .stages import UNASSIGNED, StageChecks, StageModel

CHECKS = ("monotonicity", "trend", "discrimination", "separation", "coverage", "consistency", "stability")


def stage_labels(model: StageModel, lang: str) -> dict[str, str]:
    """Stage -> label in the report language (``unassigned`` from the catalogue)."""
    return {UNASSIGNED: t("stage.unassigned", lang), **{s: model.label(s, lang) for s in model.order}}


def definitions(model: StageModel, lang: str) -> pd.DataFrame:
    """The model as readable text: one row per stage (rules) or per point and band (score)."""
    labels = stage_labels(model, lang)
    if model.method == "rules":
        return pd.DataFrame({"stage": [labels[s] for s in model.order], "rule": [model.rules[s].text for s in model.order]})
    points = pd.DataFrame({"rule": [e.text for e, _ in model.points], "points": [p for _, p in model.points]})
    bands = pd.DataFrame({"stage": [labels[s] for s in model.bands], "min_score": list(model.bands.values())})
    return pd.concat([points, bands], ignore_index=True)


def check_sentences(c: StageChecks, model: StageModel, lang: str) -> dict[str, str]:
    """One plain-language sentence per check, with its numbers."""
    labels = stage_labels(model, lang)
    p = lambda x: format_percent(x, lang)  # noqa: E731
    out = {}
    if len(c.inversions):
        worst = c.inversions.sort_values("p_value").iloc[0]
        out["monotonicity"] = t("sd.mono_bad", lang, n=len(c.inversions), a=labels[worst["stage_from"]],
                                b=labels[worst["stage_to"]], wa=p(worst["win_rate_from"]), wb=p(worst["win_rate_to"]),
                                pv=format_p(worst["p_value"]))
    else:
        out["monotonicity"] = t("sd.mono_ok", lang)
    out["trend"] = (t("sd.trend", lang, z=f"{c.trend_z:.1f}", pv=format_p(c.trend_p)) if not np.isnan(c.trend_p)
                    else t("sd.cannot_tell", lang))
    out["discrimination"] = t("sd.auc", lang, auc=f"{c.auc:.2f}") if not np.isnan(c.auc) else t("sd.cannot_tell", lang)
    merge = c.separation[c.separation["merge_candidate"]]
    out["separation"] = (t("sd.cannot_tell", lang) if c.verdicts.get("separation") == "na" else
                         t("sd.sep_ok", lang) if merge.empty else
                         t("sd.sep_merge", lang, pairs="; ".join(
                             f"{labels[r.stage_from]} / {labels[r.stage_to]} ({p(r.win_rate_from)} vs "
                             f"{p(r.win_rate_to)}, p {format_p(r.p_value)})" for r in merge.itertuples())))
    out["coverage"] = t("sd.coverage", lang, share=p(c.unassigned_share))
    out["consistency"] = (t("sd.consistency_ok", lang) if c.skipped.empty else
                          t("sd.consistency", lang, n=format_number(int(c.skipped["n"].sum()), lang), pairs="; ".join(
                              f"{labels[r.higher]} > {labels[r.lower]}: {r.n:,}" for r in c.skipped.head(4).itertuples())))
    out["stability"] = (t("sd.stability", lang, psi=f"{c.psi:.3f}", a=c.psi_periods[0], b=c.psi_periods[1])
                        if not np.isnan(c.psi) else t("sd.stability_none" if c.mix.empty else "sd.stability_short", lang))
    return out


def checks_table(c: StageChecks, model: StageModel, lang: str) -> pd.DataFrame:
    """``check``, ``verdict``, ``finding``: the table both the report and the terminal show."""
    sentences = check_sentences(c, model, lang)
    return pd.DataFrame({"check": [t(f"sd.check.{k}", lang) for k in CHECKS],
                         "verdict": [t(f"verdict.{c.verdicts[k]}", lang) for k in CHECKS],
                         "finding": [sentences[k] for k in CHECKS]})


def summary_sentences(c: StageChecks, model: StageModel, lang: str) -> list[str]:
    """The report's opening: the overall verdict and the two or three facts behind it."""
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


def terminal_report(c: StageChecks, model: StageModel, *, compare: tuple[StageModel, StageChecks] | None = None) -> str:
    """The analyst's fast loop: metrics and verdicts as plain text."""
    m = c.metrics.copy()
    for col in ("win_rate", "ci_low", "ci_high"):
        m[col] = m[col].map(lambda x: "" if pd.isna(x) else f"{x:.1%}")
    lines = [f"stage model {model.name!r} ({model.method}): {len(model.order)} stages", "", m.to_string(index=False), ""]
    table = checks_table(c, model, "en")
    width = max(len(x) for x in table["check"])
    for r in table.itertuples():
        lines.append(f"{r.check:<{width}}  {r.verdict.upper():<5}  {r.finding}")
    if compare is not None:
        other_model, other = compare
        lines += ["", f"compared with {other_model.name!r}: AUC {other.auc:.3f} -> {c.auc:.3f}, "
                      f"unassigned {other.unassigned_share:.1%} -> {c.unassigned_share:.1%}, "
                      f"trend z {other.trend_z:.1f} -> {c.trend_z:.1f}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- report sections (used by the notebook)


def show_definitions(run) -> None:
    """The stage criteria as readable text, with the stage labels of the report language."""
    run.heading("sd.definitions")
    d = definitions(run.stage_model, run.lang)
    run.table(d, labels={c: f"col.{c}" for c in d.columns})


def show_distribution(run, checks: StageChecks) -> None:
    """Counts and win rates per stage, and the win-rate chart with interval bars."""
    import matplotlib.pyplot as plt

    from .plots import plot_win_rates

    labels = stage_labels(run.stage_model, run.lang)
    run.heading("sd.distribution")
    m = checks.metrics.assign(stage=checks.metrics["stage"].map(labels))
    run.table(m, labels={c: f"col.{c}" for c in m.columns}, percent=("win_rate", "ci_low", "ci_high"))
    ax = plot_win_rates(checks.metrics, labels=labels, title=run.t("sd.win_chart"))
    plt.show()
    plt.close(ax.figure)


def show_checks(run, checks: StageChecks) -> None:
    """Every check with its verdict, then the evidence: criterion lift, calibration, stage mix over time."""
    import matplotlib.pyplot as plt

    from .plots import plot_stage_mix

    labels = stage_labels(run.stage_model, run.lang)
    run.heading("sd.checks")
    table = checks_table(checks, run.stage_model, run.lang)
    run.table(table, labels={"check": "col.check", "verdict": "col.verdict", "finding": "col.finding"})
    run.heading("sd.lift", level=3)
    run.say("sd.lift_note")
    lift = checks.lift.copy()
    if run.stage_model.method == "rules":
        lift["rule"] = [f"{labels[s]}: {run.stage_model.rules[s].text}" for s in lift["rule"]]
    lift["lift"] = lift["lift"].round(2)
    run.table(lift, labels={c: f"col.{c}" for c in lift.columns}, percent=("win_rate_true", "win_rate_false"))
    if len(checks.calibration):
        run.heading("sd.calibration", level=3)
        cal = checks.calibration.assign(stage=checks.calibration["stage"].map(labels))
        run.table(cal, labels={c: f"col.{c}" for c in cal.columns}, percent=("stated", "observed"))
    opp = run.opportunities
    if "crm_stage" in opp.columns and opp["crm_stage"].notna().any():
        run.heading("sd.crm_stage", level=3)
        cross = pd.crosstab(opp["crm_stage"], run.stages["stage"]).reindex(
            columns=[s for s in [UNASSIGNED] + run.stage_model.order if s in set(run.stages["stage"])], fill_value=0)
        cross = cross.rename(columns=labels)
        run.table(cross.reset_index().rename(columns={"crm_stage": run.t("col.crm_stage")}))
    if len(checks.mix):
        ax = plot_stage_mix(checks.mix, labels=labels, title=run.t("sd.mix_chart"))
        plt.show()
        plt.close(ax.figure)


def show_comparison(run, checks: StageChecks) -> StageChecks | None:
    """With ``stages.compare_with``: both models' metrics side by side, the transition matrix and the moves."""
    from .stages import assign_stages, check_model, compare_models, load_model_file

    path = run.params.stages.compare_with
    if path is None:
        return None
    other = load_model_file(path, context="stages.compare_with")
    other_stages = assign_stages(run.opportunities, other)
    other_checks = check_model(run.opportunities, other_stages, other)
    run.heading("sd.compare", other=other.name)
    side = pd.DataFrame({
        "check": [t(f"sd.check.{k}", run.lang) for k in CHECKS],
        other.name: [t(f"verdict.{other_checks.verdicts[k]}", run.lang) for k in CHECKS],
        run.stage_model.name: [t(f"verdict.{checks.verdicts[k]}", run.lang) for k in CHECKS]})
    side.loc[len(side)] = ["AUC", f"{other_checks.auc:.3f}", f"{checks.auc:.3f}"]
    side.loc[len(side)] = [run.t("sd.check.coverage"), run.percent(1 - other_checks.unassigned_share),
                           run.percent(1 - checks.unassigned_share)]
    run.table(side, labels={"check": "col.check"})
    cmp = compare_models(run.opportunities, other_stages, run.stages, other, run.stage_model)
    run.table(cmp["transitions"].reset_index().rename(columns={"stage": f"{other.name} \\ {run.stage_model.name}"}))
    moves = cmp["moves"]
    if set(other.order) == set(run.stage_model.order):
        run.say("sd.compare_moves", n=f"{int(moves['n'].sum()) if len(moves) else 0:,}")
    else:
        run.say("sd.compare_renamed")
    run.table(moves.head(10), labels={c: f"col.{c}" for c in moves.columns})
    return other_checks


def show_proposal(run) -> pd.DataFrame | None:
    """For the score method: band minimums learnt from the data next to the current ones."""
    from .stages import propose_bands

    if run.stage_model.method != "score":
        return None
    prop = propose_bands(run.stages["score"], pd.to_numeric(run.opportunities["won"], errors="coerce"),
                         run.stage_model)
    run.heading("sd.proposal")
    run.say("sd.proposal_note")
    shown = prop.assign(stage=prop["stage"].map(stage_labels(run.stage_model, run.lang)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns},
              percent=("win_rate_current", "win_rate_proposed"))
    return prop
