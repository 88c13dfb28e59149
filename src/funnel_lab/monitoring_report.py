"""The monitoring part of ``60_forecast_monitoring`` (what changed this period) and the conversion history of
``20_funnel`` (the heatmap and the bottleneck against its own history)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .i18n import format_number, format_percent, t
from .monitoring import (below_own_history, breaches, control_limits, conversion_windows, period_series,
                         pipeline_moves, pipeline_waterfall, stage_entries)

#: Alerts shown in the report: those of the latest periods (every breach is in ``alerts.csv``).
RECENT_PERIODS = 13


@dataclass
class ConversionHistory:
    """Stage entries and windowed conversion per period with control limits."""

    order: list[str]
    period: str
    windows: dict[str, int]
    limits: pd.DataFrame
    as_of: pd.Timestamp


@dataclass
class MonitoringResult:
    history: ConversionHistory | None
    alerts: pd.DataFrame
    moves: pd.DataFrame
    waterfall: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    due_by: pd.Timestamp | None


def conversion_history(run, period: str) -> ConversionHistory | None:
    """Entries and conversion per ``period`` with limits from the stage history (None without one)."""
    history = run.history
    if history is None:
        return None
    opp, order, as_of = run.opportunities, list(run.params.stages.order), run.as_of
    entries = stage_entries(history, opp, order)
    windows = conversion_windows(entries, order, window_days=run.params.monitoring.window_days)
    series = period_series(entries, order, period=period, as_of=as_of, windows=windows)
    limits = control_limits(series, sigma=run.params.monitoring.alert_sigma, period=period)
    return ConversionHistory(order, period, windows, limits, as_of)


def conversion_heatmap(ch: ConversionHistory, labels: dict[str, str], last: int = 12) -> pd.DataFrame:
    """Stage (rows) x period (columns) conversion of the latest ``last`` mature periods."""
    m = ch.limits[ch.limits["mature"] & ch.limits["stage"].isin(ch.order)]
    keep = sorted(set(m["period"]))[-last:]
    table = m[m["period"].isin(keep)].pivot(index="stage", columns="period", values="conversion")
    table = table.reindex(ch.order)
    table.index = [f"{labels.get(s, s)} ({ch.windows[s]} d)" for s in ch.order]
    return table


def analyse_monitoring(run) -> MonitoringResult:
    """The weekly (``monitoring.period``) charts and alerts, and the pipeline waterfall of the latest full period."""
    opp = run.opportunities
    cfg = run.params.monitoring
    ch = conversion_history(run, cfg.period)
    as_of = run.as_of
    if ch is not None and ch.limits["complete"].any():
        last = ch.limits[ch.limits["complete"]].sort_values("period_start").iloc[-1]
        start, end = last["period_start"], last["period_end"]
    else:  # no history: the latest full period before the analysis date
        p = (as_of - pd.Timedelta(seconds=1)).to_period(cfg.period) - 1
        start, end = p.start_time, p.end_time.floor("s") + pd.Timedelta(seconds=1)
    history = run.history
    has_dates = history is not None and "expected_close_at" in history and history["expected_close_at"].notna().any()
    due_by = end + pd.Timedelta(days=run.params.forecast.horizon_days) if has_dates else None
    moves = pipeline_moves(opp, history, start=start, end=end, due_by=due_by)
    alerts = breaches(ch.limits) if ch is not None else pd.DataFrame()
    return MonitoringResult(ch, alerts, moves, pipeline_waterfall(moves), start, end, due_by)


def waterfall_measure(r: MonitoringResult) -> str:
    """``amount``, or ``deals`` when most deals in the pipeline have no amount (their sum would mislead)."""
    in_pipeline = r.moves[r.moves["in_start"] | r.moves["in_end"]]
    return "deals" if len(in_pipeline) and in_pipeline["amount"].isna().mean() > 0.5 else "amount"


def _day(ts: pd.Timestamp) -> str:
    return str(ts.date())


def _period_end(ts: pd.Timestamp) -> str:
    return _day(ts - pd.Timedelta(days=1))


def summary_sentences(r: MonitoringResult, lang: str, labels: dict[str, str]) -> list[str]:
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
            out.append(t("mon.calm", lang, start=_day(r.start), end=_period_end(r.end)))
        recent = sorted(set(lim["period"]))[-RECENT_PERIODS:]
        conv = r.alerts[(r.alerts["metric"] == "conversion") & r.alerts["period"].isin(recent)]
        for a in conv.head(3).itertuples():
            out.append(t(f"mon.alert_conversion_{a.direction}", lang, stage=labels.get(a.stage, a.stage),
                         period=a.period, p=format_percent(a.value, lang), center=format_percent(a.center, lang)))
    measure = waterfall_measure(r)
    w = r.waterfall.set_index("step")[measure]
    key = ("mon.waterfall_due" if r.due_by is not None else "mon.waterfall_open") + ("_deals" if measure == "deals"
                                                                                     else "")
    out.append(t(key, lang, start=_day(r.start), end=_period_end(r.end), due=_day(r.due_by) if r.due_by else "",
                 a=n(w["start"]), b=n(w["end"]), created=n(w["created"]), pulled=n(w["pulled_in"]),
                 pushed=n(w["pushed_out"]), won=n(w["won"]), lost=n(w["lost"])))
    return out


def bottleneck_sentence(ch: ConversionHistory, lang: str, labels: dict[str, str], z_alert: float = 2.0) -> str | None:
    """The stage converting furthest below its own history in the latest mature period (20_funnel)."""
    b = below_own_history(ch.limits, ch.order).dropna(subset=["z"])
    if b.empty:
        return None
    worst = b.iloc[0]
    values = dict(stage=labels.get(worst["stage"], worst["stage"]), period=worst["period"],
                  p=format_percent(worst["conversion"], lang), usual=format_percent(worst["usual"], lang),
                  z=f"{worst['z']:.1f}", days=ch.windows[worst["stage"]])
    return t("fn.bottleneck" if worst["z"] < -z_alert else "fn.no_bottleneck", lang, **values)


def show_conversion_history(run, ch: ConversionHistory, labels: dict[str, str]) -> None:
    """The conversion heatmap by month and each stage against its own history (20_funnel)."""
    import matplotlib.pyplot as plt

    from .plots import plot_rate_heatmap

    run.heading("fn.conversion_history")
    run.say("fn.conversion_history_note")
    ax = plot_rate_heatmap(conversion_heatmap(ch, labels), title=run.t("fn.conversion_heatmap"))
    plt.show()
    plt.close(ax.figure)
    b = below_own_history(ch.limits, ch.order)
    shown = b.assign(stage=b["stage"].map(lambda s: labels.get(s, s)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, percent=("conversion", "usual"))


def show_monitoring(run, r: MonitoringResult, labels: dict[str, str]) -> None:
    """Control charts, the alerts of the latest periods, the waterfall and the deals behind it (60)."""
    import matplotlib.pyplot as plt

    from .plots import plot_control_charts, plot_waterfall

    sigma = f"{run.params.monitoring.alert_sigma:g}"
    if r.history is None:
        run.heading("mon.charts")
        run.say("mon.no_history")
    else:
        ch = r.history
        stages = ch.order + ["won"]
        run.heading("mon.charts")
        run.say("mon.entries_note", sigma=sigma)
        fig = plot_control_charts(ch.limits, "entered", stages=stages, labels=labels, title=run.t("mon.entries_chart"))
        plt.show()
        plt.close(fig)
        windows = ", ".join(f"{labels.get(s, s)} {d}" for s, d in ch.windows.items())
        run.say("mon.conversion_note", sigma=sigma, windows=windows)
        fig = plot_control_charts(ch.limits, "conversion", stages=ch.order, labels=labels,
                                  title=run.t("mon.conversion_chart"))
        plt.show()
        plt.close(fig)
        run.heading("mon.alerts", level=3)
        recent = sorted(set(ch.limits["period"]))[-RECENT_PERIODS:]
        shown = r.alerts[r.alerts["period"].isin(recent)]
        run.say("mon.alerts_note", shown=format_number(len(shown), run.lang), n=format_number(len(r.alerts), run.lang),
                periods=RECENT_PERIODS)
        shown = shown.assign(stage=shown["stage"].map(lambda s: labels.get(s, s)))
        run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, translate={"metric": "mon.metric",
                  "direction": "mon.direction"}, empty="mon.no_alerts")
    run.heading("mon.waterfall")
    run.say("mon.waterfall_note_due" if r.due_by is not None else "mon.waterfall_note_open", start=_day(r.start),
            end=_period_end(r.end), due=_day(r.due_by) if r.due_by is not None else "")
    measure = waterfall_measure(r)
    if measure == "deals":
        run.say("mon.no_amounts")
    steps = {s: run.t(f"mon.step.{s}") for s in r.waterfall["step"]}
    ax = plot_waterfall(r.waterfall, value=measure, labels=steps, title=run.t(f"mon.waterfall_chart_{measure}"))
    plt.show()
    plt.close(ax.figure)
    shown = r.waterfall.assign(step=r.waterfall["step"].map(steps))
    run.table(shown, labels={"step": "col.step", "deals": "col.n", "amount": "col.amount"})
    pushed = r.moves[r.moves["pushed_out"]].sort_values("amount", ascending=False)
    if len(pushed):
        run.heading("mon.pushed", level=3)
        cols = ["opportunity_id", "amount", "expected_close_start", "expected_close_end"]
        shown = pushed[cols].head(25).assign(**{c: pushed[c].head(25).dt.date.astype("str") for c in cols[2:]})
        run.table(shown, labels={c: f"col.{c}" for c in cols})


def latest_alert_count(r: MonitoringResult) -> int:
    """Breaches in the latest full period (the index page's headline)."""
    if r.history is None or r.alerts.empty:
        return 0
    lim = r.history.limits
    latest = set(lim.loc[lim["period_start"] == r.start, "period"])
    return int(r.alerts["period"].isin(latest).sum())


def output_files(r: MonitoringResult) -> dict[str, pd.DataFrame]:
    """``data/`` files: the per-period series with limits, every alert, the waterfall and the deals that moved."""
    waterfall = r.waterfall.assign(start=_day(r.start), end=_period_end(r.end),
                                   due_by=_day(r.due_by) if r.due_by is not None else "")
    out = {"pipeline_waterfall.csv": waterfall, "pipeline_moves.csv": r.moves}
    if r.history is not None:
        out |= {"monitoring.csv": r.history.limits, "alerts.csv": r.alerts}
    return out
