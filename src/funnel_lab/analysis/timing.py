"""The chance that an open deal is won *within the forecast horizon*, learned from monthly snapshots of the past
pipeline, and the Monte Carlo that draws each deal's win and its period.

On the first day of each past month every open deal is described by its stage, where its expected close date (as
known that day) fell against the horizon (``overdue``, ``inside``, ``after``, or ``none`` without a date) and how
long it had been in its stage; its outcome is whether it was won within the horizon from that day. A deal expected
inside the horizon may slip past it, and one expected after it may close early: the outcome counts both.

A cell's chance is the share of the *amount* won, not of the deals: the forecast is of revenue, and large deals win
less often than small ones in the same stage (a deal-count rate over-forecasts revenue). Each (stage, timing, age)
cell is shrunk towards its (stage, timing) cell and that towards the stage, with the weight of :data:`SHRINK` deals
of average amount, so that a small cell borrows from its neighbours instead of swinging on a few deals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TIMINGS = ("overdue", "inside", "after", "none")
#: Days in the current stage that bound the age bands.
AGE_EDGES = (30, 90)
AGE_BANDS = ("0-30", "31-90", "91+")
#: Prior weight of a cell's parent, in deals of average amount.
SHRINK = 20.0
#: Random numbers drawn at once by the Monte Carlo (8 bytes each: 32 MB).
_DRAW_CELLS = 4_000_000
SNAPSHOT_COLUMNS = ["opportunity_id", "stage", "timing", "age", "amount", "crm_probability", "due", "won_within",
                    "close_days"]


def _latest_entries(history: pd.DataFrame) -> pd.DataFrame:
    """Each deal's latest row of ``history``, indexed by ``opportunity_id``."""
    ordered = history.sort_values(["opportunity_id", "entered_at"], kind="stable")
    return ordered.groupby("opportunity_id").tail(1).set_index("opportunity_id")


def crm_probability_by_stage(opportunities: pd.DataFrame, history: pd.DataFrame, order: list[str]) -> pd.Series:
    """The CRM's stated probability of a stage: the mean ``crm_probability`` of today's open deals by their stage.

    A past day's pipeline cannot use the deals' own probabilities: a deal closed since says 100 or 0 now, which is
    the outcome, not what the CRM said then. The CRM states a probability per stage, so the stage a deal had then
    gives the probability it had then.
    """
    if "crm_probability" not in opportunities:
        return pd.Series(dtype=float)
    open_now = opportunities[opportunities["status"].eq("open") & opportunities["crm_probability"].notna()]
    h = history[history["opportunity_id"].isin(open_now["opportunity_id"]) & history["stage"].astype("str").isin(order)]
    stage = _latest_entries(h)["stage"].astype("str")
    probability = open_now.set_index("opportunity_id")["crm_probability"].reindex(stage.index)
    return probability.groupby(stage.to_numpy()).mean()


def pipeline_at(opportunities: pd.DataFrame, history: pd.DataFrame, order: list[str], when: pd.Timestamp, *,
                horizon_days: int, dates_known: bool, crm_by_stage: pd.Series | None = None) -> pd.DataFrame:
    """The open pipeline on ``when`` as it was known then: ``SNAPSHOT_COLUMNS``.

    ``dates_known``: the history carries each deal's expected close date as it stood (else no date is used for a
    past day: today's dates would tell the past what it did not know). ``won_within`` is whether the deal was won
    within ``horizon_days`` from ``when`` (meaningful once that has passed), ``close_days`` the days to its close.
    ``crm_by_stage``: the CRM probability of each stage (:func:`crm_probability_by_stage`), for a past day; without
    it each deal's current ``crm_probability`` (right for today only).
    """
    from .monitoring import expected_close_as_known

    o = opportunities.set_index("opportunity_id")
    open_then = o[(o["created_at"] <= when) & ~(o["closed_at"] <= when)]
    h = history[(history["entered_at"] <= when) & history["stage"].astype("str").isin(order)]
    last = _latest_entries(h).reindex(open_then.index)
    end = when + pd.Timedelta(days=horizon_days)
    if dates_known:
        due = expected_close_as_known(history, opportunities, when).reindex(open_then.index)
    else:
        due = pd.Series(pd.NaT, index=open_then.index, dtype="datetime64[ns]")
    timing = np.select([due.isna().to_numpy(), (due < when).to_numpy(), (due <= end).to_numpy()],
                       ["none", "overdue", "inside"], "after")
    age = (when - last["entered_at"]).dt.days
    band = pd.cut(age, [-np.inf, *AGE_EDGES, np.inf], labels=AGE_BANDS).astype("str")
    closed = open_then["closed_at"]
    if crm_by_stage is not None:
        crm = last["stage"].astype("str").map(crm_by_stage).astype(float)
    elif "crm_probability" in open_then:
        crm = open_then["crm_probability"]
    else:
        crm = pd.Series(np.nan, index=open_then.index)
    return pd.DataFrame({
        "opportunity_id": open_then.index, "stage": last["stage"].astype("str").where(last["stage"].notna()).to_numpy(),
        "timing": timing, "age": band.where(age.notna()).to_numpy(), "amount": open_then["amount"].to_numpy(float),
        "crm_probability": crm.to_numpy(float), "due": due.to_numpy(),
        "won_within": (open_then["status"].eq("won") & (closed <= end)).to_numpy(),
        "close_days": (closed - when).dt.days.to_numpy(float),
    })[SNAPSHOT_COLUMNS]


def pipeline_snapshots(opportunities: pd.DataFrame, history: pd.DataFrame, order: list[str], *,
                       dates: list[pd.Timestamp], horizon_days: int, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """:func:`pipeline_at` on each of ``dates``, with a ``snapshot`` column; the CRM probabilities of a day before
    ``now`` (every day without it) are those of the deals' stages then."""
    known = "expected_close_at" in history and history["expected_close_at"].notna().any()
    by_stage = crm_probability_by_stage(opportunities, history, order)
    parts = [pipeline_at(opportunities, history, order, d, horizon_days=horizon_days, dates_known=known,
                         crm_by_stage=None if d == now else by_stage).assign(snapshot=d) for d in dates]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SNAPSHOT_COLUMNS + ["snapshot"])


@dataclass
class TimingModel:
    """P(won within the horizon | stage, timing, age), amount-weighted and shrunk (:func:`fit_timing`)."""

    cells: pd.DataFrame  # stage, timing, age, deals, amount, won_amount, p_within
    by_stage_timing: pd.Series
    by_stage: pd.Series
    close_days: dict[str, np.ndarray]  # days to the close of the deals won within the horizon, by timing
    snapshots: int

    def predict(self, pipe: pd.DataFrame) -> np.ndarray:
        """Each deal's chance (NaN for a stage never seen)."""
        k2 = pd.MultiIndex.from_arrays([pipe["stage"], pipe["timing"], pipe["age"]])
        k1 = pd.MultiIndex.from_arrays([pipe["stage"], pipe["timing"]])
        p = pd.Series(self.cells.set_index(["stage", "timing", "age"])["p_within"].reindex(k2).to_numpy())
        p = p.fillna(pd.Series(self.by_stage_timing.reindex(k1).to_numpy()))
        return p.fillna(pd.Series(self.by_stage.reindex(pipe["stage"]).to_numpy())).to_numpy(float)


def fit_timing(snapshots: pd.DataFrame, *, strength: float = SHRINK) -> TimingModel:
    """The model from snapshots whose horizon has passed (their outcomes are known).

    Stage: won amount / amount. (stage, timing): (won amount + m a p_stage) / (amount + m a), a the average amount
    and m = ``strength``; (stage, timing, age) the same towards its (stage, timing).
    """
    s = snapshots[snapshots["stage"].notna() & snapshots["amount"].notna()]
    s = s.assign(won_amount=s["amount"] * s["won_within"])
    prior = strength * float(s["amount"].mean()) if len(s) else 0.0

    def sums(keys: list[str]) -> pd.DataFrame:
        return s.groupby(keys).agg(deals=("amount", "size"), amount=("amount", "sum"), won_amount=("won_amount", "sum"))

    g0 = sums(["stage"])
    p0 = g0["won_amount"] / g0["amount"].where(g0["amount"] > 0)
    g1 = sums(["stage", "timing"])
    p1 = (g1["won_amount"] + prior * p0.reindex(g1.index.get_level_values(0)).to_numpy()) / (g1["amount"] + prior)
    g2 = sums(["stage", "timing", "age"])
    parent = p1.reindex(pd.MultiIndex.from_arrays([g2.index.get_level_values(0), g2.index.get_level_values(1)]))
    g2["p_within"] = (g2["won_amount"] + prior * parent.to_numpy()) / (g2["amount"] + prior)
    won = s[s["won_within"]]
    days = {t: won.loc[won["timing"] == t, "close_days"].to_numpy(float) for t in TIMINGS}
    return TimingModel(g2.reset_index(), p1, p0, days, int(snapshots["snapshot"].nunique()) if len(snapshots) else 0)


def period_shares(pipe: pd.DataFrame, model: TimingModel, *, as_of: pd.Timestamp, horizon_days: int,
                  period: str = "M") -> tuple[pd.PeriodIndex, np.ndarray]:
    """Where in the horizon each deal would close if won: ``periods`` and a deals x periods matrix of shares.

    A deal due inside the horizon (or overdue: due now) closes in its due period; a deal due later or without a date
    closes as the deals of its timing that were won within the horizon did (their days to close), else spread
    evenly over the horizon's days.
    """
    end = as_of + pd.Timedelta(days=horizon_days)
    periods = pd.period_range(as_of.to_period(period), (end - pd.Timedelta(seconds=1)).to_period(period), freq=period)
    index = {p: i for i, p in enumerate(periods)}
    shares = np.zeros((len(pipe), len(periods)))
    due = pd.to_datetime(pipe["due"]).clip(lower=as_of, upper=end - pd.Timedelta(seconds=1))
    fixed = pipe["timing"].isin(["inside", "overdue"]).to_numpy()
    rows = np.flatnonzero(fixed)
    shares[rows, [index[p] for p in due.iloc[rows].dt.to_period(period)]] = 1.0
    spread = {}
    for t in ("after", "none"):
        days = model.close_days.get(t, np.array([]))
        days = days if len(days) else np.arange(horizon_days + 1, dtype=float)
        when = (as_of + pd.to_timedelta(np.clip(days, 0, horizon_days - 1e-6), unit="D")).to_period(period)
        counts = pd.Series(when).map(index).value_counts().reindex(range(len(periods)), fill_value=0).to_numpy(float)
        spread[t] = counts / counts.sum()
    for t, share in spread.items():
        shares[(pipe["timing"] == t).to_numpy()] = share
    return periods, shares


def simulate_periods(pipe: pd.DataFrame, p: np.ndarray, shares: np.ndarray, periods: pd.PeriodIndex, *,
                     simulations: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Monte Carlo: each deal is won within the horizon with chance ``p`` and, if won, closes in a period drawn from
    its ``shares``; deals independent.

    Returns
    -------
    per_period : DataFrame
        ``period``, ``deals`` (due in the period), ``expected_amount``, ``p10``, ``p50``, ``p90``, ``crm_weighted``
        (amount x CRM probability of the deals due in the period).
    total : dict
        ``expected``, ``p10``, ``p50``, ``p90`` of the horizon's sum (not the sum of the periods' quantiles).
    """
    amount = pipe["amount"].to_numpy(float)
    bounds = np.cumsum(shares, axis=1) * p[:, None]  # deal i is won by the end of period j iff u < bounds[i, j]
    lower = np.hstack([np.zeros((len(p), 1)), bounds[:, :-1]])
    rng = np.random.default_rng(seed)
    block = max(1, _DRAW_CELLS // max(1, len(p)))
    draws = []
    for start in range(0, simulations, block):
        u = rng.random((min(block, simulations - start), len(p)))
        draws.append(np.stack([((u >= lower[:, j]) & (u < bounds[:, j])) @ amount for j in range(len(periods))],
                              axis=1))
    draws = np.concatenate(draws) if draws else np.zeros((0, len(periods)))
    q = np.percentile(draws, [10, 50, 90], axis=0)
    fixed = pipe["timing"].isin(["inside", "overdue"]).to_numpy()
    crm = pipe["crm_probability"].to_numpy(float) / 100
    rows = [{"period": str(per), "deals": int((fixed & (shares[:, j] == 1)).sum()),
             "expected_amount": float((amount * p * shares[:, j]).sum()),
             "p10": float(q[0, j]), "p50": float(q[1, j]), "p90": float(q[2, j]),
             "crm_weighted": float(np.nansum((amount * crm)[fixed & (shares[:, j] == 1)]))
             if np.isfinite(crm).any() else np.nan}
            for j, per in enumerate(periods)]
    tq = np.percentile(draws.sum(axis=1), [10, 50, 90])
    total = {"expected": float((amount * p).sum()), "p10": float(tq[0]), "p50": float(tq[1]), "p90": float(tq[2])}
    return pd.DataFrame(rows), total
