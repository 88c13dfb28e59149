"""The forecast report: what the coming periods will bring, with its uncertainty and its track record."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .forecast import (backtest, open_pipeline, simulate_won_revenue, snapshot_dates, stage_at,
                       win_probability_at_snapshots, win_probability_by_stage)
from .i18n import format_number, format_percent, t


@dataclass
class ForecastResult:
    p_win: pd.DataFrame
    pipeline: pd.DataFrame
    forecast: pd.DataFrame
    backtest: pd.DataFrame
    open_deals: int
    left_out: int
    as_of: pd.Timestamp


def analyse_forecast(run) -> ForecastResult:
    """P(win | stage) from history (or the stage model when there is none), the simulated periods, the backtest."""
    opp = run.opportunities
    order = list(run.params.stages.order)
    history = run.history
    as_of = run.as_of
    won = pd.Series(pd.to_numeric(opp["won"]).to_numpy(), index=opp["opportunity_id"].to_numpy())
    if history is not None and opp["created_at"].notna().any():
        stage = stage_at(history, order, as_of)
        p_win = win_probability_at_snapshots(history, opp, order, known_by=as_of,
                                             dates=snapshot_dates(opp["created_at"].min(), as_of))
    else:  # no history: the stage model's stage stands for how far a deal got
        stage = pd.Series(run.stages["stage"].astype("str").to_numpy(), index=opp["opportunity_id"].to_numpy())
        reach = pd.Series(run.stages["stage_rank"].to_numpy(), index=stage.index)
        reach = reach.where(~won.eq(1).fillna(False), len(order) + 1)
        p_win = win_probability_by_stage(reach, won, order)
    cfg = run.params.forecast
    pipeline = open_pipeline(opp, stage, p_win, as_of=as_of, horizon_days=cfg.horizon_days)
    forecast = simulate_won_revenue(pipeline, simulations=cfg.simulations)
    bt = pd.DataFrame()
    if history is not None and opp["closed_at"].notna().any():
        dates = [as_of - pd.DateOffset(months=m) for m in range(12, 2, -3)]
        dates = [d for d in dates if d > opp["created_at"].min()]
        bt = backtest(opp, history, order, dates=dates, horizon_days=cfg.horizon_days)
    n_open = int((opp["status"] == "open").sum())
    return ForecastResult(p_win, pipeline, forecast, bt, n_open, n_open - len(pipeline), as_of)


def summary_sentences(r: ForecastResult, lang: str, *, horizon_days: int = 90) -> list[str]:
    f = r.forecast
    if f.empty:
        return [t("fc.empty", lang, days=horizon_days)] + (
            [t("fc.left_out", lang, n=format_number(r.left_out, lang))] if r.left_out else [])
    out = [t("fc.summary", lang, horizon=format_number(len(f), lang), expected=format_number(f["expected_amount"].sum(), lang),
             p10=format_number(f["p10"].sum(), lang), p90=format_number(f["p90"].sum(), lang),
             deals=format_number(int(f["deals"].sum()), lang), as_of=str(r.as_of.date()))]
    if f["crm_weighted"].notna().any():
        out.append(t("fc.crm", lang, crm=format_number(f["crm_weighted"].sum(), lang)))
    if r.left_out:
        out.append(t("fc.left_out", lang, n=format_number(r.left_out, lang)))
    err = r.backtest["error"].dropna() if len(r.backtest) else pd.Series(dtype=float)
    if len(err):
        bias = "high" if (err > 0).all() else "low" if (err < 0).all() else "mixed"
        out.append(t("fc.backtest_summary", lang, n=len(err), err=format_percent(float(err.abs().mean()), lang),
                     bias=t(f"fc.bias.{bias}", lang)))
    return out


def show_forecast(run, r: ForecastResult, labels: dict[str, str]) -> None:
    import matplotlib.pyplot as plt

    from .plots import plot_forecast

    run.heading("fc.p_win")
    run.say("fc.p_win_note" if run.history is not None else "fc.p_win_note_current")
    pw = r.p_win.assign(stage=r.p_win["stage"].map(lambda s: labels.get(s, s)))
    run.table(pw, labels={"stage": "col.stage", "closed": "col.closed", "won": "col.won", "p_win": "col.p_win"},
              percent=("p_win",))
    run.heading("fc.periods")
    run.say("fc.periods_note", sims=format_number(run.params.forecast.simulations, run.lang))
    run.table(r.forecast, labels={c: f"col.{c}" for c in r.forecast.columns})
    if len(r.forecast):
        ax = plot_forecast(r.forecast, title=run.t("fc.chart"), labels={
            "expected": run.t("col.expected_amount"), "range": "p10-p90", "crm": run.t("col.crm_weighted")})
        plt.show()
        plt.close(ax.figure)
    if len(r.backtest):
        run.heading("fc.backtest")
        known = (r.backtest["timing"] == "known").any()
        run.say("fc.backtest_note_known" if known else "fc.backtest_note")
        run.table(r.backtest, labels={c: f"col.{c}" for c in r.backtest.columns}, percent=("error",),
                  translate={"timing": "value.timing"})
