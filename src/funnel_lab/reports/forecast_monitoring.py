"""The ``60_forecast_monitoring`` page: what the coming periods will bring (with its uncertainty and its track
record), and what changed in the latest period."""

from __future__ import annotations

import pandas as pd

from ..analysis.forecast import METHODS, SUMMARY_ROWS, ForecastResult, backtest_summary, dated_rows
from ..analysis.timing import TIMINGS
from ..analysis.monitoring import RECENT_PERIODS, MonitoringResult, day, last_day
from ..i18n import format_date, format_money, format_number, format_percent, format_period, t
from ..history.changes import SinceLastRun
from ..history.words import format_change, format_value, since_sentences
from .plots import plot_control_charts, plot_forecast, plot_run_trends, plot_waterfall

#: Deals of each kind of change listed in the report (all are in ``changes.csv``).
CHANGES_SHOWN = 10


def tick_day(lang: str):
    """How a time axis writes its ticks in ``lang``: ``2026年5月`` on a month's first day, else ``2026年5月3日``
    (None: matplotlib's own, in English)."""
    if lang == "en":
        return None
    return lambda d: format_period(f"{d:%Y-%m}", lang) if d.day == 1 else format_date(d, lang)


def forecast_sentences(r: ForecastResult, lang: str, *, horizon_days: int = 90, currency: str | None = None) -> list[str]:
    """The forecast's summary sentences; money carries ``currency`` when it is known."""
    f = r.forecast

    def money(x: float) -> str:
        if lang == "zh" and currency == "CNY":
            return format_money(x, lang, currency=currency)  # ¥1.35亿
        return f"{format_number(x, lang)} {currency}" if currency else format_number(x, lang)

    if f.empty:
        return [t("fc.empty", lang, days=horizon_days)] + (
            [t("fc.left_out", lang, n=format_number(r.left_out, lang))] if r.left_out else [])
    total = r.total
    out = [t("fc.summary", lang, horizon=format_number(len(f), lang), expected=money(total["expected"]),
             p10=money(total["p10"]), p90=money(total["p90"]),
             deals=format_number(len(r.pipeline), lang), as_of=format_date(r.as_of, lang))]
    if f["crm_weighted"].notna().any():
        out.append(t("fc.crm", lang, crm=money(f["crm_weighted"].sum())))
    if r.left_out:
        out.append(t("fc.left_out" if r.timing is not None else "fc.left_out_due", lang,
                     n=format_number(r.left_out, lang)))
    if len(r.backtest):
        out.append(backtest_verdict(r, lang))
    return out


def backtest_verdict(r: ForecastResult, lang: str) -> str:
    """Which forecast to trust, by the backtest: funnel_lab's against the better of the two baselines."""
    table = backtest_summary(r.backtest)
    own = table.loc["funnel_lab"]
    pct = lambda x: format_percent(x, lang)  # noqa: E731
    values = {"n": format_number(int(own["dates"]), lang), "mape": pct(own["mape"]),
              "bias": ("+" if own["bias"] > 0 else "") + pct(own["bias"]),
              "inside": format_number(round(own["coverage"] * own["dates"]), lang)}
    base = table.drop(index="funnel_lab")["mape"].dropna()
    if base.empty:
        return t("fc.verdict_alone", lang, **values)
    best = base.idxmin()
    values |= {"other": t(f"fc.method.{best}", lang), "other_mape": pct(base[best])}
    if own["mape"] <= base[best]:
        times = base[best] / own["mape"] if own["mape"] > 0 else float("inf")
        return t("fc.verdict_trust", lang, times=format_number(times, lang, digits=1), **values)
    return t("fc.verdict_other", lang, **values)


def show_forecast(run, r: ForecastResult, labels: dict[str, str]) -> None:
    run.heading("fc.p_win")
    run.say("fc.p_win_note" if run.pipeline.history is not None else "fc.p_win_note_current")
    pw = r.p_win.assign(stage=r.p_win["stage"].map(lambda s: labels.get(s, s)))
    run.table(pw, labels={"stage": "col.stage", "closed": "col.closed", "won": "col.won", "p_win": "col.p_win"},
              percent=("p_win",))
    run.heading("fc.periods")
    run.say("fc.periods_note", sims=format_number(run.params.forecast.simulations, run.lang))
    run.table(r.forecast, labels={c: f"col.{c}" for c in r.forecast.columns})
    if len(r.forecast):
        run.figure(plot_forecast(run.periods(r.forecast), title=run.t("fc.chart"), number=run.number, labels={
            "expected": run.t("col.expected_amount"), "range": "p10-p90", "crm": run.t("col.crm_weighted")}))
    if r.timing is not None:
        run.heading("fc.timing", level=3)
        run.say("fc.timing_note", days=format_number(run.params.forecast.horizon_days, run.lang),
                months=format_number(r.timing.snapshots, run.lang))
        cells = r.timing.by_stage_timing.rename("p_within").reset_index()
        wide = cells.pivot(index="stage", columns="timing", values="p_within").reindex(
            index=[s for s in run.params.stages.order if s in set(cells["stage"])],
            columns=[c for c in TIMINGS if c in set(cells["timing"])]).reset_index()
        wide["stage"] = wide["stage"].map(lambda x: labels.get(x, x))
        run.table(wide, labels={"stage": "col.stage"} | {c: f"fc.timing.{c}" for c in TIMINGS},
                  percent=tuple(TIMINGS))
    if len(r.backtest):
        run.heading("fc.backtest")
        run.say("fc.backtest_note" if (r.backtest["timing"] == "as_known_then").any() else "fc.backtest_note_none")
        run.paragraph(backtest_verdict(r, run.lang))
        table = backtest_summary(r.backtest).reset_index()
        table["method"] = table["method"].map(lambda m: run.t(f"fc.method.{m}"))
        run.table(table, labels={"method": "col.method", "bias": "col.bias", "mape": "col.mape",
                                 "coverage": "col.coverage", "dates": "col.dates"},
                  percent=SUMMARY_ROWS)
        dated = dated_rows(r.backtest)
        wide = dated.pivot(index="as_of", columns="method", values="forecast").reindex(
            columns=[m for m in METHODS if m in set(dated["method"])])
        own = dated[dated["method"] == "funnel_lab"].set_index("as_of")
        shown = pd.DataFrame({"as_of": own.index, "actual": own["actual"].to_numpy(),
                              **{f"fc_{m}": wide[m].reindex(own.index).to_numpy() for m in wide.columns},
                              "p10": own["p10"].to_numpy(), "p90": own["p90"].to_numpy(),
                              "error": own["error"].to_numpy(), "inside_band": own["inside_band"].astype(bool).to_numpy()})
        run.table(shown, labels={"as_of": "col.as_of", "actual": "col.actual", "p10": "col.p10", "p90": "col.p90",
                                 "error": "col.error", "inside_band": "col.inside_band"}
                  | {f"fc_{m}": f"fc.method.{m}" for m in METHODS}, percent=("error",))


def monitoring_sentences(r: MonitoringResult, lang: str, labels: dict[str, str]) -> list[str]:
    """What changed in the latest full period: breaches, the pipeline's movement."""
    n = lambda x: format_number(x, lang)  # noqa: E731
    out = []
    if r.history is not None:
        lim = r.history.limits
        latest = lim[lim["complete"] & (lim["period_start"] == r.start)]
        hits = r.alerts[(r.alerts["metric"] == "entered") & r.alerts["period"].isin(latest["period"])]
        for a in hits.itertuples():
            out.append(t(f"mon.alert_entered_{a.direction}", lang, stage=labels.get(a.stage, a.stage), n=n(a.value),
                         center=n(a.center), lcl=n(a.lcl), ucl=n(a.ucl)))
        if hits.empty:
            out.append(t("mon.calm", lang, start=day(r.start), end=last_day(r.end)))
        recent = sorted(set(lim["period"]))[-RECENT_PERIODS:]
        conv = r.alerts[(r.alerts["metric"] == "conversion") & r.alerts["period"].isin(recent)]
        for a in conv.head(3).itertuples():
            out.append(t(f"mon.alert_conversion_{a.direction}", lang, stage=labels.get(a.stage, a.stage),
                         period=format_period(a.period, lang), p=format_percent(a.value, lang), center=format_percent(a.center, lang)))
    measure = r.measure
    w = r.waterfall.set_index("step")[measure]
    key = ("mon.waterfall_due" if r.due_by is not None else "mon.waterfall_open") + ("_deals" if measure == "deals"
                                                                                     else "")
    out.append(t(key, lang, start=day(r.start), end=last_day(r.end), due=day(r.due_by) if r.due_by else "",
                 a=n(w["start"]), b=n(w["end"]), created=n(w["created"]), pulled=n(w["pulled_in"]),
                 pushed=n(w["pushed_out"]), won=n(w["won"]), lost=n(w["lost"])))
    return out


def show_monitoring(run, r: MonitoringResult, labels: dict[str, str]) -> None:
    """Control charts, the alerts of the latest periods, the waterfall and the deals behind it (60)."""
    sigma = f"{run.params.monitoring.alert_sigma:g}"
    if r.history is None:
        run.heading("mon.charts")
        run.say("mon.no_history")
    else:
        ch = r.history
        stages = ch.order + ["won"]
        run.heading("mon.charts")
        run.say_history_source()
        run.say("mon.entries_note", sigma=sigma)
        run.figure(plot_control_charts(ch.limits, "entered", stages=stages, labels=labels, date_label=tick_day(run.lang),
                                       title=run.t("mon.entries_chart")))
        windows = ", ".join(f"{labels.get(s, s)} {d}" for s, d in ch.windows.items())
        run.say("mon.conversion_note", sigma=sigma, windows=windows)
        run.figure(plot_control_charts(ch.limits, "conversion", stages=ch.order, labels=labels,
                                       date_label=tick_day(run.lang), title=run.t("mon.conversion_chart")))
        run.heading("mon.alerts", level=3)
        recent = sorted(set(ch.limits["period"]))[-RECENT_PERIODS:]
        shown = r.alerts[r.alerts["period"].isin(recent)]
        run.say("mon.alerts_note", shown=format_number(len(shown), run.lang), n=format_number(len(r.alerts), run.lang),
                periods=RECENT_PERIODS)
        shown = shown.assign(stage=shown["stage"].map(lambda s: labels.get(s, s)))
        run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, translate={"metric": "mon.metric",
                  "direction": "mon.direction"}, empty="mon.no_alerts")
    run.heading("mon.waterfall")
    run.say("mon.waterfall_note_due" if r.due_by is not None else "mon.waterfall_note_open", start=day(r.start),
            end=last_day(r.end), due=day(r.due_by) if r.due_by is not None else "")
    measure = r.measure
    if measure == "deals":
        run.say("mon.no_amounts")
    steps = {s: run.t(f"mon.step.{s}") for s in r.waterfall["step"]}
    run.figure(plot_waterfall(r.waterfall, value=measure, labels=steps, number=run.number,
                              title=run.t(f"mon.waterfall_chart_{measure}")))
    shown = r.waterfall.assign(step=r.waterfall["step"].map(steps))
    run.table(shown, labels={"step": "col.step", "deals": "col.n", "amount": "col.amount"})
    pushed = r.moves[r.moves["pushed_out"]].sort_values("amount", ascending=False)
    if len(pushed):
        run.heading("mon.pushed", level=3)
        cols = ["opportunity_id", "amount", "expected_close_start", "expected_close_end"]
        shown = pushed[cols].head(25).assign(**{c: pushed[c].head(25).dt.date.astype("str") for c in cols[2:]})
        run.table(shown, labels={c: f"col.{c}" for c in cols})


def headline_numbers(forecast: ForecastResult, changes: MonitoringResult) -> dict[str, float]:
    """The page's numbers on the index (and in the run history): forecast won revenue, alerts of the latest period."""
    return {"forecast": round(float(forecast.forecast["expected_amount"].sum())), "alerts": changes.latest_alert_count()}


def summary_sentences(run, forecast: ForecastResult, changes: MonitoringResult, s: SinceLastRun) -> list[str]:
    """What matters most since the last run, then the forecast, then what changed in the latest period."""
    labels = run.stage_labels()
    return (since_sentences(s, run.lang, labels)[:1]
            + forecast_sentences(forecast, run.lang, horizon_days=run.params.forecast.horizon_days,
                                 currency=run.currency)
            + monitoring_sentences(changes, run.lang, labels))


def _change_value(v: str, kind: str, run, labels: dict[str, str]) -> str:
    """A ``from``/``to`` of ``changes.csv`` for the reader: a slipped deal's close dates in the report's format, a
    stage or status by its label."""
    if kind == "slipped":
        return format_date(pd.Timestamp(v), run.lang) if v else v
    return labels.get(v, run.t("headline.open") if v == "open" else v)


def show_since_last_run(run, s: SinceLastRun, numbers: dict[str, float]) -> None:
    """This run against the last one: the numbers and their trend, win rates by stage, the deals that changed."""
    run.heading("sl.heading")
    for sentence in since_sentences(s, run.lang, run.stage_labels()):
        run.paragraph(sentence)
    if s.last is None:
        return
    table = s.numbers_table(numbers)
    label = lambda k: run.t(f"headline.{k}")  # noqa: E731
    shown = pd.DataFrame({
        "number": table["key"].map(label),
        "last": [format_value(k, v, run.lang, run.currency) for k, v in zip(table["key"], table["last"])],
        "now": [format_value(k, v, run.lang, run.currency) for k, v in zip(table["key"], table["now"])],
        "change": [format_change(k, d, run.lang, run.currency) for k, d in zip(table["key"], table["change"])]})
    run.table(shown, labels={"number": "sl.number", "last": "sl.last", "now": "sl.now", "change": "sl.change"})
    if len(s.trend_dates()) > 1:
        run.figure(plot_run_trends(table, s.trend_dates(), labels=dict(zip(table["key"], table["key"].map(label))),
                                   title=run.t("sl.trend_chart"),
                                   value_label=lambda k, v: format_value(k, v, run.lang, run.currency)))
    labels = run.stage_labels()
    closed = s.win_rates[s.win_rates["closed_since"] > 0]  # no deal closed since: nothing to compare
    if len(closed):
        run.heading("sl.win_rates", level=3)
        run.say("sl.win_rates_note")
        w = closed.assign(stage=closed["stage"].map(lambda x: labels.get(x, x)))
        run.table(w, labels={c: f"col.{c}" for c in w.columns}, percent=("win_rate_before", "win_rate_since", "change",
                                                                        "ci_low", "ci_high"))
    if len(s.changes):
        run.heading("sl.changes", level=3)
        run.say("sl.changes_note")
        top = s.changes.groupby("change", sort=False).head(CHANGES_SHOWN)
        top = top.assign(**{c: [_change_value(v, k if c != "stage" else "", run, labels)
                                for v, k in zip(top[c], top["change"])] for c in ("from", "to", "stage")})
        run.table(top, labels={"opportunity_id": "col.opportunity_id", "change": "sl.change", "from": "sl.from",
                               "to": "sl.to", "stage": "col.stage", "amount": "col.amount"},
                  translate={"change": "sl.kind"})
