"""The A/B report (``40_ab_test``): the verdict first, then the guard rails a statistician checks behind it."""

from __future__ import annotations

import pandas as pd

from ..analysis.abtest import ABResult
from ..i18n import format_number, format_p, format_percent, format_points, t
from .plots import plot_variant_rates
from .wording import note


def headlines(r: ABResult) -> dict[str, float | None]:
    """The index page's number: the headline difference in percentage points (None when there is none)."""
    diff = r.decision.get("diff")
    return {"ab_diff": None if diff is None else round(100 * diff, 2)}


def _signed_percent(x: float, lang: str) -> str:
    return ("+" if x > 0 else "") + format_percent(x, lang)


def summary_sentences(r: ABResult, lang: str, *, srm_threshold: float) -> list[str]:
    """The verdict per treatment with its numbers, then what was set aside and the warnings."""
    out = []
    for variant, v in r.verdicts.items():
        out.append(t(f"ab.decision.{v['decision']}", lang, variant=variant, control=r.control))
        if r.outcome == "converted":
            row = r.binary.set_index("variant").loc[variant]
            out.append(t("ab.binary_result", lang, variant=variant, control=r.control,
                         rate=format_percent(row["rate"], lang), rate0=format_percent(row["rate_control"], lang),
                         diff=format_points(row["diff"], lang), lo=format_points(row["diff_ci_low"], lang),
                         hi=format_points(row["diff_ci_high"], lang), lift=_signed_percent(row["relative_lift"], lang),
                         lift_lo=_signed_percent(row["lift_ci_low"], lang),
                         lift_hi=_signed_percent(row["lift_ci_high"], lang), p=format_p(row["p_headline"]),
                         test=t(f"ab.test.{row['test']}", lang)))
        else:
            row = r.continuous.set_index("variant").loc[variant]
            cuped = v["estimate"] == "cuped"  # what the verdict rests on
            out.append(t("ab.value_result", lang, variant=variant, control=r.control,
                         diff=format_number(row["cuped_diff" if cuped else "diff"], lang, digits=2),
                         lo=format_number(row["cuped_ci_low" if cuped else "ci_low"], lang, digits=2),
                         hi=format_number(row["cuped_ci_high" if cuped else "ci_high"], lang, digits=2),
                         p=format_p(row["cuped_p_value" if cuped else "p_value"]),
                         test=t("ab.test.cuped" if cuped else "ab.test.welch", lang)))
        for reason in v["reasons"]:
            if reason["code"] in ("srm_failed", "underpowered"):
                out.append(t(f"ab.reason.{reason['code']}", lang, p=format_p(reason.get("p", r.srm[1])),
                             threshold=f"{srm_threshold:g}", power=format_percent(reason.get("power"), lang)))
    if r.bayes is not None:
        for row in r.bayes[r.bayes["variant"] != r.control].itertuples():
            out.append(t("ab.bayes_summary", lang, variant=row.variant, control=r.control,
                         prob=format_percent(row.prob_beats_control, lang),
                         loss=format_number(100 * row.expected_loss, lang, digits=3)))
    c = r.hygiene.counts.set_index("rule")
    if c.loc["excluded", "rows"]:
        out.append(t("ab.hygiene_summary", lang, rows=format_number(int(c.loc["excluded", "rows"]), lang),
                     total=format_number(int(c.loc["input", "rows"]), lang),
                     units=format_number(int(c.loc["kept", "units"]), lang)))
    if r.simpson:
        out.append(t("ab.simpson", lang))
    return out


def show_srm_banner(run, r: ABResult) -> None:
    """A red box above everything when the split is broken: no verdict can be trusted then."""
    if r.srm[1] < run.params.ab_test.srm_threshold:
        run.banner("ab.srm_banner", p=format_p(r.srm[1]), threshold=f"{run.params.ab_test.srm_threshold:g}")


def show_details(run, r: ABResult) -> None:
    """Hygiene, split, the comparisons, power, the Bayesian view and the segments."""
    run.heading("ab.hygiene")
    run.say("ab.hygiene_note")
    run.table(r.hygiene.counts, labels={"rule": "col.rule_applied", "rows": "col.rows", "units": "col.units",
                                        "units_lost": "col.units_lost"}, translate={"rule": "ab.rule"})
    if len(r.hygiene.mirrors):
        run.say("ab.mirrors_note")
        run.table(r.hygiene.mirrors, labels={c: f"col.{c}" for c in r.hygiene.mirrors.columns})
    if len(r.hygiene.excluded):
        run.heading("ab.excluded", level=3, n=format_number(len(r.hygiene.excluded), run.lang))
        shown = r.hygiene.excluded.head(20)
        shown = shown.assign(rule=shown["rule"].map(lambda x: note(x, run.lang)))
        run.table(shown, labels={"reason": "col.reason", "rule": "col.rule_applied"}, translate={"reason": "ab.rule"})

    run.heading("ab.split")
    run.say("ab.split_note", chi2=format_number(r.srm[0], run.lang, digits=2), p=format_p(r.srm[1]),
            threshold=f"{run.params.ab_test.srm_threshold:g}")
    run.table(r.split, labels={c: f"col.{c}" for c in r.split.columns}, percent=("observed_share", "expected_share"))

    if r.binary is not None:
        run.heading("ab.binary")
        run.say("ab.binary_note")
        run.table(binary_table(r.binary, run.lang), labels={c: f"col.{c}" for c in BINARY_SHOWN} | {"n": "col.units"},
                  pvalues=("p_value", "chi2_p", "fisher_p", "p_holm"))
        run.figure(plot_variant_rates(r.binary, title=run.t("ab.rates_chart")))
    if r.continuous is not None:
        run.heading("ab.value")
        run.say("ab.value_note")
        run.table(value_table(r.continuous, run.lang), labels={c: f"col.{c}" for c in VALUE_SHOWN},
                  percent=("variance_reduction",), pvalues=("p_value", "cuped_p_value"))

    run.heading("ab.power")
    cfg = run.params.ab_test
    if r.required_n is None:
        run.say("ab.power_unset")
    else:
        n = int(r.binary.loc[r.binary["variant"] == r.control, "n"].iloc[0])
        for variant, v in r.verdicts.items():
            run.say("ab.power_note", mde=format_number(100 * cfg.mde, run.lang, digits=2),
                    required=format_number(r.required_n, run.lang), n=format_number(n, run.lang), variant=variant,
                    power=format_percent(v["power"], run.lang), target=format_percent(cfg.power, run.lang))

    if r.bayes is not None:
        run.heading("ab.bayes")
        run.say("ab.bayes_note")
        shown = r.bayes.assign(expected_loss=(100 * r.bayes["expected_loss"]).map(
            lambda x: "" if pd.isna(x) else format_number(x, run.lang, digits=3)))
        run.table(shown, labels={c: f"col.{c}" for c in shown.columns} | {"n": "col.units",
                                                                           "expected_loss": "col.expected_loss_pts"},
                  percent=("posterior_mean", "ci_low", "ci_high", "prob_beats_control", "prob_best"))

    if r.segments is not None:
        run.heading("ab.segments", by=cfg.segment)
        run.say("ab.simpson" if r.simpson else "ab.no_simpson")
        cols = ["segment", "variant", "n_control", "rate_control", "n_treatment", "rate_treatment", "diff", "p_value"]
        shown = r.segments.assign(diff=[_interval(run.lang, *v, lambda x: format_points(x, run.lang))
                                        for v in r.segments[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy()])
        run.table(shown[cols], labels={c: f"col.{c}" for c in cols}, percent=("rate_control", "rate_treatment"),
                  pvalues=("p_value",))


BINARY_SHOWN = ["variant", "n", "conversions", "rate", "diff", "relative_lift", "p_value", "chi2_p", "fisher_p",
                "p_holm"]
VALUE_SHOWN = ["variant", "mean_control", "mean_treatment", "diff", "p_value", "cuped_diff", "cuped_p_value",
               "variance_reduction"]


def _interval(lang: str, x: float, lo: float, hi: float, fmt) -> str:
    """``x (lo to hi)``, or empty where there is nothing to compare (the control's row)."""
    return "" if pd.isna(x) else f"{fmt(x)} ({t('ab.interval', lang, low=fmt(lo), high=fmt(hi))})"


def binary_table(binary: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The conversion table as read: each estimate with its 95% interval in one cell."""
    pct = lambda x: format_percent(x, lang)  # noqa: E731
    pts = lambda x: format_points(x, lang)  # noqa: E731
    out = binary.assign(
        rate=[_interval(lang, *v, pct) for v in binary[["rate", "ci_low", "ci_high"]].to_numpy()],
        diff=[_interval(lang, *v, pts) for v in binary[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy()],
        relative_lift=[_interval(lang, *v, lambda x: _signed_percent(x, lang))
                       for v in binary[["relative_lift", "lift_ci_low", "lift_ci_high"]].to_numpy()])
    return out[BINARY_SHOWN]


def value_table(continuous: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The value comparison, plain and CUPED-adjusted, each difference with its 95% interval."""
    num = lambda x: format_number(x, lang, digits=2)  # noqa: E731
    out = continuous.assign(
        diff=[_interval(lang, *v, num) for v in continuous[["diff", "ci_low", "ci_high"]].to_numpy()],
        cuped_diff=[_interval(lang, *v, num) for v in continuous[["cuped_diff", "cuped_ci_low", "cuped_ci_high"]].to_numpy()])
    return out[VALUE_SHOWN]
