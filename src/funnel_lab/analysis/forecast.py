"""Forecast of won revenue: empirical P(win | stage), weighted pipeline, Monte Carlo by period, and a backtest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..result import Result

FORECAST_COLUMNS = ["period", "deals", "expected_amount", "p10", "p50", "p90", "crm_weighted"]


def stage_at(history: pd.DataFrame, order: list[str], when: pd.Timestamp) -> pd.Series:
    """Each deal's stage at ``when``: the stage of its latest history entry up to then (order stages only)."""
    h = history[(history["entered_at"] <= when) & history["stage"].astype("str").isin(order)]
    last = h.sort_values(["opportunity_id", "entered_at"], kind="stable").groupby("opportunity_id").tail(1)
    return last.set_index("opportunity_id")["stage"].astype("str")


def reach_at(history: pd.DataFrame, won: pd.Series, order: list[str], when: pd.Timestamp) -> pd.Series:
    """Highest stage rank each deal had reached by ``when`` (a won deal passed them all: K + 1)."""
    ranks = {s: i for i, s in enumerate(order, start=1)}
    h = history[history["entered_at"] <= when]
    r = h["stage"].astype("str").map(ranks).groupby(h["opportunity_id"]).max().dropna()
    r[won.reindex(r.index).eq(1).fillna(False).to_numpy(dtype=bool)] = len(order) + 1
    return r


def win_probability_by_stage(reach: pd.Series, won: pd.Series, order: list[str]) -> pd.DataFrame:
    """Empirical P(win | a deal is at stage k): among closed deals that reached stage k, the share won.

    Counting the deals that passed through a stage, not the stage they closed in: a won deal closes from a late
    stage, so "stage at close" would give early stages a chance near zero.

    Parameters
    ----------
    reach : Series
        Highest stage rank reached per deal (1..K; K + 1 for won), index opportunity_id (see :func:`reach_at`).
    won : Series
        1 won, 0 lost, missing while open (index: opportunity_id).

    Returns
    -------
    DataFrame
        ``stage``, ``closed``, ``won``, ``p_win`` (NaN where no closed deal reached the stage).
    """
    w = won.reindex(reach.index)
    closed = w.notna()
    rows = []
    for k, stage in enumerate(order, start=1):
        at = closed & (reach >= k)
        n, n_won = int(at.sum()), int(w[at].sum())
        rows.append({"stage": stage, "closed": n, "won": n_won, "p_win": n_won / n if n else np.nan})
    return pd.DataFrame(rows)


def win_probability_at_snapshots(history: pd.DataFrame, opportunities: pd.DataFrame, order: list[str], *,
                                 dates: list[pd.Timestamp], known_by: pd.Timestamp) -> pd.DataFrame:
    """Empirical P(win | a deal is at stage k now), from snapshots of the past pipeline.

    At each snapshot date the open deals and their stage then; among those closed by ``known_by``, the share won,
    pooled over snapshots (a deal counts once per snapshot it was open in). Unlike "closed deals that reached stage k"
    this weighs deals by the time they spend in a stage, as today's open pipeline does: a deal that lingers in a stage
    is more often met there, and wins less often.

    Returns
    -------
    DataFrame
        ``stage``, ``closed`` (closed deal-snapshots), ``won``, ``p_win`` (NaN where none closed).
    """
    o = opportunities.set_index("opportunity_id")
    h = history[history["stage"].astype("str").isin(order)].sort_values(["opportunity_id", "entered_at"],
                                                                         kind="stable")
    closed_by = o["closed_at"] <= known_by
    parts = []
    for d in dates:
        open_then = (o["created_at"] <= d) & ~(o["closed_at"] <= d) & closed_by
        last = h[h["entered_at"] <= d].groupby("opportunity_id").tail(1).set_index("opportunity_id")["stage"]
        stage = last.reindex(o.index[open_then.to_numpy()]).dropna()
        parts.append(pd.DataFrame({"stage": stage.astype("str").to_numpy(),
                                   "won": o.loc[stage.index, "status"].eq("won").to_numpy()}))
    snap = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"stage": [], "won": []})
    g = snap.groupby("stage")["won"].agg(closed="count", won="sum").reindex(order, fill_value=0)
    out = g.rename_axis("stage").reset_index().astype({"closed": "int64", "won": "int64"})
    out["p_win"] = np.where(out["closed"] > 0, out["won"] / out["closed"].clip(lower=1), np.nan)
    return out


def snapshot_dates(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """The first day of every month after ``start`` up to ``end`` (exclusive): the snapshots of the past pipeline."""
    return [d for d in pd.date_range(start.normalize() + pd.offsets.MonthBegin(1), end, freq="MS") if d < end]


#: Random numbers drawn at once by the forecast's Monte Carlo (8 bytes each: 32 MB).
_DRAW_CELLS = 4_000_000


def simulate_won_revenue(pipeline: pd.DataFrame, *, simulations: int, seed: int = 0) -> pd.DataFrame:
    """Monte Carlo of won revenue per period: each open deal is won with its probability, independently.

    Parameters
    ----------
    pipeline : DataFrame
        Open deals: ``period``, ``amount``, ``p_win`` (and ``crm_probability`` when known).
    simulations : int
        Draws.

    Returns
    -------
    DataFrame
        ``period``, ``deals``, ``expected_amount`` (sum of amount x p_win), ``p10``, ``p50``, ``p90`` of the simulated
        won revenue, ``crm_weighted`` (sum of amount x CRM probability, when present).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for period, part in pipeline.groupby("period", sort=True):
        amount, p = part["amount"].to_numpy(float), part["p_win"].to_numpy(float)
        # simulations drawn a block at a time: the same numbers as one (simulations x deals) draw, since the
        # generator fills rows in order, without holding it whole (10,000 x 50,000 open deals would be 4 GB)
        block = max(1, _DRAW_CELLS // max(1, len(part)))
        draws = np.concatenate([(rng.random((min(block, simulations - start), len(part))) < p) @ amount
                                for start in range(0, simulations, block)])
        q10, q50, q90 = np.percentile(draws, [10, 50, 90])
        crm = (part["amount"] * part["crm_probability"] / 100).sum() if "crm_probability" in part else np.nan
        rows.append({"period": str(period), "deals": len(part), "expected_amount": float((amount * p).sum()),
                     "p10": float(q10), "p50": float(q50), "p90": float(q90), "crm_weighted": float(crm)})
    return pd.DataFrame(rows, columns=FORECAST_COLUMNS)


def open_pipeline(opportunities: pd.DataFrame, stage: pd.Series, p_win: pd.DataFrame, *, as_of: pd.Timestamp,
                  horizon_days: int, period: str = "M") -> pd.DataFrame:
    """Open deals expected to close within the horizon, with their stage's P(win) and the period they fall in.

    Deals without an expected close date, an amount or a stage with a P(win) are left out and counted by the caller
    (the report says how many).
    """
    o = opportunities[opportunities["status"] == "open"].set_index("opportunity_id")
    frame = pd.DataFrame({"amount": o["amount"], "expected_close_at": o.get("expected_close_at"),
                          "crm_probability": o.get("crm_probability"), "stage": stage.reindex(o.index)})
    frame["p_win"] = frame["stage"].map(p_win.set_index("stage")["p_win"])
    end = as_of + pd.Timedelta(days=horizon_days)
    # a deal whose expected close has passed is still open: it is due now, in the first period
    due = frame["expected_close_at"].clip(lower=as_of)
    frame = frame[(due <= end) & frame["amount"].notna() & frame["p_win"].notna()].copy()
    frame["period"] = due.loc[frame.index].dt.to_period(period)
    return frame.reset_index()


def backtest(opportunities: pd.DataFrame, history: pd.DataFrame, order: list[str], *, dates: list[pd.Timestamp],
             horizon_days: int) -> pd.DataFrame:
    """Forecasts made at past dates with only what was known then, against what then happened.

    At each date: the deals open then, their stage then, and P(win | stage) from snapshots before the date of deals
    closed by then (:func:`win_probability_at_snapshots`).
    When the history carries ``expected_close_at`` (the close date as it stood at each row), the forecast is made as
    :func:`open_pipeline` makes it today: deals expected by then to close within the horizon, each amount x P(win);
    the actual is the amount won within the horizon by any deal open at the date (slipped and early closes included).
    Without that history the expected close dates of the past are unknown, so the deals that did close within the
    horizon stand in for them (``timing`` = ``known``): that judges the probabilities only.

    Returns
    -------
    DataFrame
        ``as_of``, ``timing`` (``as_known_then`` or ``known``), ``open_deals``, ``forecast_deals``, ``forecast``,
        ``actual``, ``error`` (forecast / actual - 1).
    """
    from .monitoring import expected_close_as_known

    o = opportunities.set_index("opportunity_id")
    with_dates = "expected_close_at" in history and history["expected_close_at"].notna().any()
    rows = []
    for d in dates:
        end = d + pd.Timedelta(days=horizon_days)
        open_then = o[(o["created_at"] <= d) & ~(o["closed_at"] <= d)]
        stage_then = stage_at(history, order, d)
        p = win_probability_at_snapshots(history, opportunities, order, known_by=d,
                                         dates=snapshot_dates(o["created_at"].min(), d))
        prob = stage_then.reindex(open_then.index).map(p.set_index("stage")["p_win"])
        if with_dates:
            due = expected_close_as_known(history, opportunities, d).reindex(open_then.index).clip(lower=d)
            counted = open_then[due <= end]
        else:
            counted = open_then[open_then["closed_at"] <= end]
        forecast = float((counted["amount"] * prob.reindex(counted.index)).sum())
        won = open_then[(open_then["status"] == "won") & (open_then["closed_at"] <= end)]
        actual = float(won["amount"].sum())
        rows.append({"as_of": d.date().isoformat(), "timing": "as_known_then" if with_dates else "known",
                     "open_deals": len(open_then), "forecast_deals": len(counted), "forecast": forecast,
                     "actual": actual, "error": forecast / actual - 1 if actual else np.nan})
    return pd.DataFrame(rows, columns=["as_of", "timing", "open_deals", "forecast_deals", "forecast", "actual",
                                       "error"])


# --------------------------------------------------------------------------- the analysis on a pipeline


@dataclass(repr=False)
class ForecastResult(Result):
    """What the coming periods will bring (:meth:`funnel_lab.Pipeline.forecast`).

    Attributes
    ----------
    p_win : DataFrame
        P(win | stage): ``data/stage_win_probability.csv``.
    pipeline : DataFrame
        The open deals forecast, with their stage, expected close period and P(win).
    forecast : DataFrame
        Won revenue per period in the horizon: ``data/forecast.csv``.
    backtest : DataFrame
        The forecast made at past dates against what came: ``data/forecast_backtest.csv``.
    open_deals, left_out : int
        Open deals, and those outside the horizon or without an amount.
    """

    title = "forecast"
    p_win: pd.DataFrame
    pipeline: pd.DataFrame
    forecast: pd.DataFrame
    backtest: pd.DataFrame
    open_deals: int
    left_out: int
    as_of: pd.Timestamp

    @property
    def summary(self) -> pd.DataFrame:
        """:attr:`forecast`: deals, expected won amount and its p10-p90 per period."""
        return self.forecast

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        return {"forecast.csv": self.forecast, "forecast_backtest.csv": self.backtest,
                "stage_win_probability.csv": self.p_win}


def analyse_forecast(p) -> ForecastResult:
    """P(win | stage) from history (or the stage model when there is none), the simulated periods, the backtest."""
    opp = p.opportunities
    order = list(p.params.stages.order)
    history = p.history
    as_of = p.as_of
    won = pd.Series(pd.to_numeric(opp["won"]).to_numpy(), index=opp["opportunity_id"].to_numpy())
    if history is not None and opp["created_at"].notna().any():
        stage = stage_at(history, order, as_of)
        p_win = win_probability_at_snapshots(history, opp, order, known_by=as_of,
                                             dates=snapshot_dates(opp["created_at"].min(), as_of))
    else:  # no history: the stage model's stage stands for how far a deal got
        stage = pd.Series(p.stages["stage"].astype("str").to_numpy(), index=opp["opportunity_id"].to_numpy())
        reach = pd.Series(p.stages["stage_rank"].to_numpy(), index=stage.index)
        reach = reach.where(~won.eq(1).fillna(False), len(order) + 1)
        p_win = win_probability_by_stage(reach, won, order)
    cfg = p.params.forecast
    pipeline = open_pipeline(opp, stage, p_win, as_of=as_of, horizon_days=cfg.horizon_days)
    forecast = simulate_won_revenue(pipeline, simulations=cfg.simulations)
    bt = pd.DataFrame()
    if history is not None and opp["closed_at"].notna().any():
        dates = [as_of - pd.DateOffset(months=m) for m in range(12, 2, -3)]
        dates = [d for d in dates if d > opp["created_at"].min()]
        bt = backtest(opp, history, order, dates=dates, horizon_days=cfg.horizon_days)
    n_open = int((opp["status"] == "open").sum())
    return ForecastResult(p_win, pipeline, forecast, bt, n_open, n_open - len(pipeline), as_of)
