"""Forecast of won revenue: P(win | stage), the forecast by period from the timing model, and its backtest against two
baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..result import Result

FORECAST_COLUMNS = ["period", "deals", "expected_amount", "p10", "p50", "p90", "crm_weighted"]


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


BACKTEST_COLUMNS = ["as_of", "method", "timing", "open_deals", "forecast_deals", "forecast", "p10", "p90", "actual",
                    "error", "inside_band"]
#: The forecasts a backtest compares: funnel_lab's, the CRM's probability-weighted pipeline, last span's won revenue.
METHODS = ("funnel_lab", "crm_weighted", "naive")
#: The ``as_of`` of the backtest's summary rows (their value is in ``error``).
SUMMARY_ROWS = ("bias", "mape", "coverage")
#: Simulations per backtest date (the band; the live forecast uses ``forecast.simulations``).
BACKTEST_SIMULATIONS = 2000


def backtest(opportunities: pd.DataFrame, history: pd.DataFrame, order: list[str], *, dates: list[pd.Timestamp],
             horizon_days: int, snapshots: pd.DataFrame | None = None) -> pd.DataFrame:
    """Forecasts made at past dates with only what was known then, against what then happened, beside two
    baselines, with summary rows.

    At each date the timing model (:mod:`funnel_lab.analysis.timing`) is fitted on the monthly snapshots whose
    horizon had passed by then, and applied to the deals open that day as they stood (stage, expected close date as
    known, age in stage); the band is the Monte Carlo's p10-p90 of the horizon's total. The actual is the amount won
    within the horizon by the deals open that day (slipped and early closes included). The baselines, on the same
    dates: ``crm_weighted``, the amount x CRM probability of the deals expected to close within the horizon (or
    overdue), as the CRM's own forecast would have been (the probability of each deal's stage then, not its own
    probability now, which for a deal closed since is 100 or 0); ``naive``, the revenue won in the same span before
    the date.

    Returns
    -------
    DataFrame
        ``BACKTEST_COLUMNS``, one row per date and method (``timing``: ``as_known_then`` when the history carries
        expected close dates, else ``none``: stages and ages only), then per method the summary rows with ``as_of``
        ``bias`` (mean signed error), ``mape`` (mean absolute error) and ``coverage`` (share of dates inside the
        band), their value in ``error``.
    """
    from .timing import fit_timing, pipeline_snapshots

    o = opportunities.set_index("opportunity_id")
    with_dates = "expected_close_at" in history and history["expected_close_at"].notna().any()
    span = pd.Timedelta(days=horizon_days)
    if not dates:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    if snapshots is None:
        snapshots = pipeline_snapshots(opportunities, history, order, horizon_days=horizon_days,
                                       dates=sorted(set(snapshot_dates(o["created_at"].min(), max(dates))) | set(dates)))
    rows = []
    rng = np.random.default_rng(0)
    for d in dates:
        train = snapshots[snapshots["snapshot"] + span <= d]
        if train.empty:
            continue
        model = fit_timing(train)
        pipe = snapshots[snapshots["snapshot"] == d]
        prob = model.predict(pipe)
        counted = np.isfinite(prob) & pipe["amount"].notna().to_numpy()
        amount = pipe["amount"].to_numpy(float)[counted]
        draws = (rng.random((BACKTEST_SIMULATIONS, int(counted.sum()))) < prob[counted]) @ amount
        p10, p90 = np.percentile(draws, [10, 90]) if len(draws) else (np.nan, np.nan)
        actual = float(pipe.loc[pipe["won_within"], "amount"].fillna(0).sum())
        common = {"as_of": d.date().isoformat(), "timing": "as_known_then" if with_dates else "none",
                  "open_deals": len(pipe), "actual": actual}
        forecast = float((amount * prob[counted]).sum())
        rows.append({**common, "method": "funnel_lab", "forecast_deals": int(counted.sum()), "forecast": forecast,
                     "p10": float(p10), "p90": float(p90), "inside_band": bool(p10 <= actual <= p90)})
        due = pipe["timing"].isin(["inside", "overdue"]) & pipe["amount"].notna() & pipe["crm_probability"].notna()
        if with_dates and due.any():
            rows.append({**common, "method": "crm_weighted", "forecast_deals": int(due.sum()),
                         "forecast": float((pipe.loc[due, "amount"] * pipe.loc[due, "crm_probability"] / 100).sum())})
        before = o[o["status"].eq("won") & (o["closed_at"] > d - span) & (o["closed_at"] <= d)]
        rows.append({**common, "method": "naive", "forecast_deals": len(before),
                     "forecast": float(before["amount"].fillna(0).sum())})
    out = pd.DataFrame(rows, columns=BACKTEST_COLUMNS)
    out["error"] = np.where(out["actual"] > 0, out["forecast"] / out["actual"].where(out["actual"] > 0) - 1, np.nan)
    summary = []
    for method, part in out.groupby("method", sort=False):
        err = part["error"].dropna()
        summary += [{"as_of": "bias", "method": method, "error": float(err.mean()) if len(err) else np.nan},
                    {"as_of": "mape", "method": method, "error": float(err.abs().mean()) if len(err) else np.nan}]
        if part["inside_band"].notna().any():
            summary.append({"as_of": "coverage", "method": method,
                            "error": float(part["inside_band"].astype(bool).mean())})
    return pd.concat([out, pd.DataFrame(summary, columns=BACKTEST_COLUMNS)], ignore_index=True)


def dated_rows(bt: pd.DataFrame) -> pd.DataFrame:
    """The backtest's rows of past dates, without its summary rows."""
    return bt[~bt["as_of"].isin(SUMMARY_ROWS)]


def backtest_summary(bt: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of :func:`backtest` as a table: ``method`` x ``bias``, ``mape``, ``coverage``, ``dates``."""
    rows = bt[bt["as_of"].isin(SUMMARY_ROWS)]
    table = rows.pivot(index="method", columns="as_of", values="error").reindex(columns=list(SUMMARY_ROWS))
    table["dates"] = dated_rows(bt).groupby("method")["error"].count()
    return table.reindex([m for m in METHODS if m in table.index])


# --------------------------------------------------------------------------- the analysis on a pipeline


@dataclass(repr=False)
class ForecastResult(Result):
    """What the coming periods will bring (:meth:`funnel_lab.Pipeline.forecast`).

    Attributes
    ----------
    p_win : DataFrame
        P(win | stage), eventually: ``data/stage_win_probability.csv``.
    pipeline : DataFrame
        The open deals forecast: stage, timing, age, amount, ``p_within`` (their chance of being won within the
        horizon).
    forecast : DataFrame
        Won revenue per period in the horizon: ``data/forecast.csv``.
    total : dict
        The horizon's ``expected`` won revenue and the ``p10``/``p50``/``p90`` of its simulated total.
    backtest : DataFrame
        The forecast and two baselines made at past dates against what came, with summary rows:
        ``data/forecast_backtest.csv``.
    timing : TimingModel or None
        P(won within the horizon | stage, timing, age) (:mod:`funnel_lab.analysis.timing`): ``data/forecast_timing.csv``;
        None without a stage history (then ``p_win`` of the stage model's stages serves).
    open_deals, left_out : int
        Open deals, and those not forecast (no amount, or a stage with nothing to learn from; without a stage
        history also those not expected to close within the horizon).
    """

    title = "forecast"
    p_win: pd.DataFrame
    pipeline: pd.DataFrame
    forecast: pd.DataFrame
    total: dict
    backtest: pd.DataFrame
    timing: object
    open_deals: int
    left_out: int
    as_of: pd.Timestamp

    @property
    def summary(self) -> pd.DataFrame:
        """:attr:`forecast`: deals, expected won amount and its p10-p90 per period."""
        return self.forecast

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        out = {"forecast.csv": self.forecast, "forecast_backtest.csv": self.backtest,
               "stage_win_probability.csv": self.p_win}
        if self.timing is not None:
            out["forecast_timing.csv"] = self.timing.cells
        return out


def analyse_forecast(p) -> ForecastResult:
    """With a stage history: the timing model from the past pipeline's monthly snapshots, the simulated periods and
    the backtest; without one: P(win | stage) of the stage model's stages for the deals due within the horizon."""
    from .timing import fit_timing, period_shares, pipeline_snapshots, simulate_periods

    opp = p.opportunities
    order = list(p.params.stages.order)
    history = p.history
    as_of = p.as_of
    cfg = p.params.forecast
    won = pd.Series(pd.to_numeric(opp["won"]).to_numpy(), index=opp["opportunity_id"].to_numpy())
    n_open = int((opp["status"] == "open").sum())
    if history is not None and opp["created_at"].notna().any():
        months = snapshot_dates(opp["created_at"].min(), as_of)
        p_win = win_probability_at_snapshots(history, opp, order, known_by=as_of, dates=months)
        span = pd.Timedelta(days=cfg.horizon_days)
        snaps = pipeline_snapshots(opp, history, order, dates=months + [as_of], horizon_days=cfg.horizon_days,
                                   now=as_of)
        model = fit_timing(snaps[snaps["snapshot"] + span <= as_of])
        now = snaps[snaps["snapshot"] == as_of].drop(columns=["won_within", "close_days", "snapshot"])
        now = now.assign(p_within=model.predict(now))
        pipeline = now[now["p_within"].notna() & now["amount"].notna()].reset_index(drop=True)
        periods, shares = period_shares(pipeline, model, as_of=as_of, horizon_days=cfg.horizon_days)
        forecast, total = simulate_periods(pipeline, pipeline["p_within"].to_numpy(float), shares, periods,
                                           simulations=cfg.simulations)
        bt = pd.DataFrame()
        if opp["closed_at"].notna().any():
            # every month whose horizon has passed, the latest twelve at most
            dates = [d for d in months if d + span <= as_of][-12:]
            bt = backtest(opp, history, order, dates=dates, horizon_days=cfg.horizon_days, snapshots=snaps)
        return ForecastResult(p_win, pipeline, forecast, total, bt, model, n_open, n_open - len(pipeline), as_of)
    # no history: the stage model's stage stands for how far a deal got
    stage = pd.Series(p.stages["stage"].astype("str").to_numpy(), index=opp["opportunity_id"].to_numpy())
    reach = pd.Series(p.stages["stage_rank"].to_numpy(), index=stage.index)
    reach = reach.where(~won.eq(1).fillna(False), len(order) + 1)
    p_win = win_probability_by_stage(reach, won, order)
    pipeline = open_pipeline(opp, stage, p_win, as_of=as_of, horizon_days=cfg.horizon_days)
    forecast = simulate_won_revenue(pipeline, simulations=cfg.simulations)
    total = {"expected": float(forecast["expected_amount"].sum()), "p10": float(forecast["p10"].sum()),
             "p50": float(forecast["p50"].sum()), "p90": float(forecast["p90"].sum())}
    return ForecastResult(p_win, pipeline, forecast, total, pd.DataFrame(), None, n_open, n_open - len(pipeline), as_of)
