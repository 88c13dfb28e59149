"""Forecast of won revenue: empirical P(win | stage), weighted pipeline, Monte Carlo by period, and a backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
        draws = (rng.random((simulations, len(part))) < p) @ amount
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
    """Forecasts made at past dates, against what then happened: a test of the stage win probabilities.

    At each date: the deals open then (created before it, not closed by it), their stage then, and P(win | stage)
    from the deals closed before the date only. Among the open deals that closed within the horizon, the forecast is
    the sum of amount x P(win) and the actual is the amount won. The close timing is taken as known (past exports
    keep no history of expected close dates), so the backtest judges the probabilities, not the timing.

    Returns
    -------
    DataFrame
        ``as_of``, ``open_deals``, ``closed_in_horizon``, ``forecast``, ``actual``, ``error`` (forecast / actual - 1).
    """
    o = opportunities.set_index("opportunity_id")
    rows = []
    for d in dates:
        end = d + pd.Timedelta(days=horizon_days)
        open_then = o[(o["created_at"] <= d) & ~(o["closed_at"] <= d)]
        closed_before = o[o["closed_at"] <= d]
        stage_then = stage_at(history, order, d)
        reach = reach_at(history, closed_before["won"], order, d).reindex(closed_before.index).dropna()
        p = win_probability_by_stage(reach, closed_before["won"], order)
        prob = stage_then.reindex(open_then.index).map(p.set_index("stage")["p_win"])
        closing = open_then[open_then["closed_at"] <= end]
        forecast = float((closing["amount"] * prob.reindex(closing.index)).sum())
        actual = float(closing.loc[closing["status"] == "won", "amount"].sum())
        rows.append({"as_of": d.date().isoformat(), "open_deals": len(open_then), "closed_in_horizon": len(closing),
                     "forecast": forecast, "actual": actual, "error": forecast / actual - 1 if actual else np.nan})
    return pd.DataFrame(rows, columns=["as_of", "open_deals", "closed_in_horizon", "forecast", "actual", "error"])
