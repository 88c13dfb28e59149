"""The regression report (``30_regression``): what drives wins, in words first, with the diagnostics behind it."""

from __future__ import annotations

import math

import pandas as pd

from ..analysis.regression import RegressionResult
from ..i18n import format_number, format_percent, t
from .plots import plot_calibration, plot_odds_ratios, plot_residuals
from .wording import term

VIF_HIGH = 5.0  # above it a coefficient's interval is inflated by the others; above 10, hard to read on its own


def _odds(x: float, lang: str) -> str:
    return format_number(x, lang, digits=2)


def driver_sentence(row, frame: pd.DataFrame, outcome: str, lang: str) -> str:
    """One driver in words: "each extra meeting multiplies the odds of winning by 1.31 (1.22 to 1.40)"."""
    values = dict(var=row["variable"] or row["term"], level=row["level"], outcome=t(f"rg.outcome.{outcome}", lang)
                  if outcome in ("won", "converted") else outcome)
    ratio, low, high = row["odds_ratio"], row["or_ci_low"], row["or_ci_high"]
    if row["transform"] == "categorical":
        key = "rg.driver.level"
    elif row["transform"] in ("log", "log1p"):
        # a coefficient per log unit reads better per doubling: odds ratio ** ln 2
        ratio, low, high = (v ** math.log(2) for v in (ratio, low, high))
        key = "rg.driver.doubling"
    elif row["transform"]:
        key = "rg.driver.term"
    elif row["variable"] in frame and set(frame[row["variable"]].dropna().unique()) <= {0, 1}:
        key = "rg.driver.flag"
    else:
        key = "rg.driver.unit"
    return t(key, lang, ratio=_odds(ratio, lang), low=_odds(low, lang), high=_odds(high, lang), term=row["term"],
             **values)


def summary_sentences(r: RegressionResult, lang: str) -> list[str]:
    """Who was analysed, the strongest drivers in words, how well the model ranks, and any problem."""
    fit, outcome = r.fit, r.frame.outcome
    positive = t(f"rg.positive.{outcome}", lang) if outcome in ("won", "converted") else outcome
    out = [t("rg.summary_rows", lang, n=format_number(fit.n, lang), events=format_number(fit.events, lang),
             positive=positive,
             share=format_percent(fit.events / fit.n if fit.n else float("nan"), lang),
             left=format_number(r.frame.n_left_out + fit.n_dropped_missing + fit.n_dropped_nonpositive, lang))]
    if len(r.drivers):
        sep, stop = ("；", "。") if lang == "zh" else ("; ", ".")
        out.append(t("rg.drivers_intro", lang) + " " + sep.join(
            driver_sentence(row, r.frame.data, outcome, lang) for _, row in r.drivers.iterrows()) + stop)
    else:
        out.append(t("rg.no_driver", lang))
    if r.auc is not None:
        out.append(t("rg.auc", lang, auc=format_number(r.auc, lang, digits=2)))
    out += [problem_sentence(p, lang) for p in fit.problems]
    return out


def problem_sentence(problem: dict, lang: str) -> str:
    """A fitting problem explained, with what was done about it."""
    values = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in problem.items() if k != "code"}
    if "events_per_term" in values:
        values["events_per_term"] = format_number(values["events_per_term"], lang, digits=1)
    return t(f"rg.problem.{problem['code']}", lang, **values)


def _readable(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The model's terms as a reader says them (``source = Referral``, not ``C(source)[T.Referral]``)."""
    return df.assign(term=df["term"].map(lambda x: term(x, lang)))


def show_model(run, r: RegressionResult) -> None:
    """Odds ratios with intervals (table and plot) and the average marginal effects."""
    c = r.fit.coefficients
    run.heading("rg.odds")
    run.say("rg.odds_note", cov=run.t(f"rg.cov.{r.fit.cov_type}", clusters=r.fit.n_clusters or 0,
                                      cluster=run.params.regression.cluster or ""))
    cols = ["term", "odds_ratio", "or_ci_low", "or_ci_high", "p_value", "note"]
    run.table(_readable(c[cols], run.lang), labels={col: f"col.{col}" for col in cols}, pvalues=("p_value",))
    shown = c[(c["term"] != "Intercept") & c["odds_ratio"].notna()]
    if len(shown):
        run.figure(plot_odds_ratios(_readable(shown, run.lang), title=run.t("rg.odds_chart")))
    if len(r.fit.marginal_effects):
        run.heading("rg.margins", level=3)
        run.say("rg.margins_note")
        m = r.fit.marginal_effects
        run.table(_readable(m[["term", "dydx", "ci_low", "ci_high", "p_value"]], run.lang),
                  labels={"term": "col.term", "dydx": "col.dydx", "ci_low": "col.ci_low", "ci_high": "col.ci_high",
                          "p_value": "col.p_value"}, percent=("dydx", "ci_low", "ci_high"), pvalues=("p_value",))


def show_diagnostics(run, r: RegressionResult) -> None:
    """Class balance, problems, collinearity, calibration and the hold-out AUC."""
    fit = r.fit
    run.heading("rg.diagnostics")
    run.say("rg.balance", n=run.number(fit.n), events=run.number(fit.events),
            share=run.percent(fit.events / fit.n if fit.n else float("nan")),
            epp=format_number(min(fit.events, fit.n - fit.events) / max(len(fit.coefficients) - 1, 1), run.lang,
                              digits=1))
    for p in fit.problems:
        run.paragraph(problem_sentence(p, run.lang))
    if len(r.vif):
        run.heading("rg.vif", level=3)
        high = r.vif[r.vif["vif"] > VIF_HIGH]
        run.say("rg.vif_high" if len(high) else "rg.vif_ok", terms=", ".join(_readable(high, run.lang)["term"]),
                limit=f"{VIF_HIGH:g}")
        run.table(_readable(r.vif[["term", "vif"]], run.lang), labels={"term": "col.term", "vif": "col.vif"})
    if len(r.calibration):
        run.heading("rg.calibration", level=3)
        run.say("rg.calibration_note")
        run.figure(plot_calibration(r.calibration, title=run.t("rg.calibration_chart")))
        run.table(r.calibration, labels={c: f"col.{c}" for c in r.calibration.columns} | {
            "n": "col.rows", "events": "col.positive"},
                  percent=("mean_predicted", "observed_rate"))
    run.say("rg.auc" if r.auc is not None else "rg.auc_none", auc=format_number(r.auc or 0, run.lang, digits=2))


def show_linear(run, r: RegressionResult) -> None:
    """The linear model of deal size or cycle length, with HC3 errors and residual plots."""
    lin = r.linear
    if lin is None:
        return
    run.heading("rg.linear", outcome=lin.outcome)
    run.say("rg.linear_note_log" if lin.log_outcome else "rg.linear_note", n=run.number(lin.n),
            r2=format_number(lin.r_squared, run.lang, digits=3))
    cols = ["term", "coef", "ci_low", "ci_high", "p_value"] + (
        ["pct_effect", "pct_ci_low", "pct_ci_high"] if lin.log_outcome else [])
    run.table(_readable(lin.coefficients[cols], run.lang), labels={c: f"col.{c}" for c in cols},
              percent=("pct_effect", "pct_ci_low", "pct_ci_high"), pvalues=("p_value",))
    run.figure(plot_residuals(lin.fitted, lin.residuals, title=run.t("rg.residuals_chart")))
