"""What changed: stage entries and conversion per period with control limits, alerts, the pipeline waterfall.

Conversion is measured on deals that entered a stage in the period: the share that reached a later stage within a
fixed window of days. A fixed window makes periods comparable (an older period has had longer to convert otherwise),
and a period is judged only once the window has passed for all its deals ("mature").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..result import Result
from .funnel import _history_ranks

SERIES_COLUMNS = ["stage", "period", "period_start", "period_end", "complete", "entered", "window_days", "mature",
                  "converted", "conversion"]
ALERT_COLUMNS = ["period", "stage", "metric", "value", "center", "lcl", "ucl", "direction"]
WATERFALL_STEPS = ["start", "created", "pulled_in", "pushed_out", "won", "lost", "end"]
#: Alerts of the latest periods: those the report shows and the alert channels deliver (every breach is in
#: ``alerts.csv``).
RECENT_PERIODS = 13
#: The sign each waterfall step adds to the pipeline (start and end are levels).
STEP_SIGN = {"created": 1, "pulled_in": 1, "pushed_out": -1, "won": -1, "lost": -1}


def stage_entries(history: pd.DataFrame, opportunities: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """First entry of each deal into each stage of ``order`` (and into ``won``), and when it first got further.

    A won deal enters ``won`` at its ``closed_at`` (else at its history's ``won`` row). ``advanced_at`` is the first
    entry into any later stage (or won) at or after the entry: a deal that went back and forth counts once.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``stage``, ``rank`` (1..K, K + 1 for won), ``entered_at``, ``advanced_at`` (NaT when it
        has not advanced; always NaT for won).
    """
    k = len(order)
    h = _history_ranks(history, order)
    firsts = h[h["rank"].between(1, k + 1)].groupby(["opportunity_id", "rank"])["entered_at"].min()
    status = opportunities.set_index("opportunity_id")["status"]
    won_ids = status.index[status.eq("won").to_numpy()]
    if "closed_at" in opportunities:
        closed = opportunities.set_index("opportunity_id")["closed_at"].reindex(won_ids).dropna()
        hist_won = firsts.xs(k + 1, level="rank") if (k + 1) in firsts.index.get_level_values("rank") else None
        won_at = closed if hist_won is None else closed.combine_first(hist_won.reindex(won_ids).dropna())
        firsts = pd.concat([firsts.drop(k + 1, level="rank", errors="ignore"),
                            pd.Series(won_at.to_numpy(), index=pd.MultiIndex.from_arrays(
                                [won_at.index, np.full(len(won_at), k + 1)], names=["opportunity_id", "rank"]))])
    else:  # only the history says when a deal was won; a lost/open deal's "won" row is not a win
        is_won = firsts.index.get_level_values("opportunity_id").isin(won_ids)
        firsts = firsts[(firsts.index.get_level_values("rank") <= k) | is_won]
    wide = firsts.unstack("rank").reindex(columns=range(1, k + 2))
    ns = wide.apply(lambda c: c.astype("datetime64[ns]")).to_numpy(dtype="datetime64[ns]").view("int64")
    missing = ns == np.iinfo("int64").min  # NaT
    ns = np.where(missing, np.iinfo("int64").max, ns)
    frames = []
    for j in range(k + 1):
        ent = ns[:, j]
        has = ~missing[:, j]
        later = ns[:, j + 1:]
        # only entries at or after this one count as getting further (a later stage entered first does not)
        later = np.where(later >= ent[:, None], later, np.iinfo("int64").max)
        adv = later.min(axis=1) if later.shape[1] else np.full(len(ent), np.iinfo("int64").max)
        adv = np.where(adv == np.iinfo("int64").max, np.iinfo("int64").min, adv)
        frames.append(pd.DataFrame({
            "opportunity_id": wide.index[has], "stage": (list(order) + ["won"])[j], "rank": j + 1,
            "entered_at": ent[has].view("datetime64[ns]"), "advanced_at": adv[has].view("datetime64[ns]")}))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["rank", "entered_at", "opportunity_id"], kind="stable").reset_index(drop=True)


def conversion_windows(entries: pd.DataFrame, order: list[str], *, window_days: int | None = None,
                       quantile: float = 0.75) -> dict[str, int]:
    """Days within which a deal must reach a later stage to count as converted, per stage.

    ``window_days`` when given, else the ``quantile`` of the days to advance among deals that advanced from that
    stage, rounded up (at least one day): long enough to catch most conversions, short enough to judge recent periods.
    """
    out = {}
    for stage in order:
        e = entries[(entries["stage"] == stage) & entries["advanced_at"].notna()]
        if window_days is not None:
            out[stage] = int(window_days)
        elif len(e):
            days = (e["advanced_at"] - e["entered_at"]).dt.total_seconds() / 86400
            out[stage] = max(1, math.ceil(float(days.quantile(quantile))))
        else:
            out[stage] = 30  # nothing ever advanced: no period will convert, whatever the window
    return out


def period_series(entries: pd.DataFrame, order: list[str], *, period: str, as_of: pd.Timestamp,
                  windows: dict[str, int]) -> pd.DataFrame:
    """Per stage and period: deals entering the stage and, once mature, the share converted within the window.

    Parameters
    ----------
    entries : DataFrame
        From :func:`stage_entries`.
    period : {"D", "W", "M", "Q"}
        Period length (weeks end on Sunday).
    as_of : Timestamp
        The analysis date; a period ending after it is incomplete, a period whose deals' window has not passed by
        then is immature.
    windows : dict
        Conversion window in days per stage (:func:`conversion_windows`); ``won`` has entries only.

    Returns
    -------
    DataFrame
        ``SERIES_COLUMNS``: every period from the first entry to ``as_of`` (periods without entries have 0),
        ``complete`` (the period lies wholly inside the data), ``mature``, ``converted`` and ``conversion``
        (NaN unless mature and entered > 0).
    """
    if entries.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    data_start = entries["entered_at"].min()
    periods = pd.period_range(data_start.to_period(period), (as_of - pd.Timedelta(seconds=1)).to_period(period),
                              freq=period)
    start, end = periods.start_time, periods.end_time.floor("s") + pd.Timedelta(seconds=1)  # end exclusive
    rows = []
    for stage in list(order) + ["won"]:
        e = entries[entries["stage"] == stage]
        p = e["entered_at"].dt.to_period(period)
        n = p.value_counts().reindex(periods, fill_value=0).to_numpy()
        w = windows.get(stage)
        frame = pd.DataFrame({"stage": stage, "period": periods.astype("str"), "period_start": start,
                              "period_end": end, "complete": (start >= data_start.floor("D")) & (end <= as_of),
                              "entered": n, "window_days": pd.array([w] * len(periods), dtype="Int64")})
        if w is None:
            frame["mature"], frame["conversion"] = False, np.nan
            frame["converted"] = pd.array([pd.NA] * len(frame), dtype="Int64")
        else:
            on_time = (e["advanced_at"] - e["entered_at"]) <= pd.Timedelta(days=w)
            x = on_time.groupby(p).sum().reindex(periods, fill_value=0).to_numpy()
            frame["mature"] = frame["complete"] & (end + pd.Timedelta(days=w) <= as_of)
            frame["converted"] = pd.Series(x, dtype="Int64").where(frame["mature"].to_numpy())
            with np.errstate(invalid="ignore", divide="ignore"):
                frame["conversion"] = np.where(frame["mature"] & (n > 0), x / np.maximum(n, 1), np.nan)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)[SERIES_COLUMNS]


#: Baseline of each period's control limits: up to this many earlier periods, and at least the second number.
BASELINE = {"D": (56, 14), "W": (26, 8), "M": (12, 4), "Q": (8, 3)}


def control_limits(series: pd.DataFrame, *, sigma: float, period: str) -> pd.DataFrame:
    """Add Shewhart limits per stage and period, each from the periods before it: c-chart entries, p-chart conversion.

    Each period is judged against its own recent history (a moving baseline of :data:`BASELINE` earlier periods), so
    a pipeline that is still filling up at the start of the data or growing steadily is not one long alarm.
    Entries: center c = mean count of the baseline's complete periods, limits c +/- sigma * sqrt(c) (Poisson counts).
    Conversion: center p = converted / entered pooled over the baseline's mature periods, limits
    p +/- sigma * sqrt(p (1 - p) / n) with the period's own n. Limits are clipped to the possible range; a period
    with too short a baseline gets none.

    Returns
    -------
    DataFrame
        ``series`` with ``entered_center``, ``entered_lcl``, ``entered_ucl``, ``conversion_center``,
        ``conversion_lcl``, ``conversion_ucl``.
    """
    size, least = BASELINE[period]
    parts = []
    for _, s in series.groupby("stage", sort=False):
        s = s.sort_values("period_start").copy()

        def before(values: pd.Series, how: str) -> pd.Series:
            return getattr(values.shift(1).rolling(size, min_periods=least), how)()

        c = before(s["entered"].astype(float).where(s["complete"]), "mean")
        s["entered_center"] = c
        s["entered_lcl"] = (c - sigma * np.sqrt(c)).clip(lower=0.0)
        s["entered_ucl"] = c + sigma * np.sqrt(c)
        judged = s["mature"] & (s["entered"] > 0)
        x = s["converted"].astype(float).where(judged)
        n = s["entered"].astype(float).where(judged)
        p = before(x, "sum") / before(n, "sum")
        p = p.where(before(n, "count") >= least)
        half = sigma * np.sqrt(p * (1 - p) / n)
        s["conversion_center"] = p
        s["conversion_lcl"] = (p - half).clip(lower=0.0)
        s["conversion_ucl"] = (p + half).clip(upper=1.0)
        parts.append(s)
    return pd.concat(parts, ignore_index=True) if parts else series


def breaches(limits: pd.DataFrame) -> pd.DataFrame:
    """Every period outside its control limits: entries of complete periods, conversion of mature periods.

    Returns
    -------
    DataFrame
        ``ALERT_COLUMNS``; ``direction`` is ``above`` or ``below``; newest first.
    """
    rows = []
    for metric, judged in (("entered", limits["complete"]), ("conversion", limits["mature"] & (limits["entered"] > 0))):
        value = limits[metric].astype(float)
        lcl, ucl = limits[f"{metric}_lcl"].astype(float), limits[f"{metric}_ucl"].astype(float)
        hit = judged & ((value < lcl) | (value > ucl))
        b = limits[hit]
        rows.append(pd.DataFrame({"period": b["period"], "stage": b["stage"], "metric": metric, "value": value[hit],
                                  "center": b[f"{metric}_center"], "lcl": lcl[hit], "ucl": ucl[hit],
                                  "direction": np.where(value[hit] > ucl[hit], "above", "below")}))
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["period", "stage", "metric"], ascending=[False, True, True]).reset_index(drop=True)


def below_own_history(limits: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Each stage's latest mature conversion against its own history (the bottleneck test).

    z = (p_latest - p_usual) / sqrt(p_usual (1 - p_usual) / n_latest), p_usual the period's p-chart center
    (:func:`control_limits`): how many standard errors the latest period lies below (negative) or above the stage's
    own recent history.

    Returns
    -------
    DataFrame
        ``stage``, ``period`` (latest mature), ``entered``, ``conversion``, ``usual``, ``z``; sorted by z, the most
        unusual shortfall first.
    """
    rows = []
    for stage in order:
        s = limits[(limits["stage"] == stage) & limits["mature"] & (limits["entered"] > 0)
                   & limits["conversion_center"].notna()]
        if s.empty:
            continue
        last = s.sort_values("period_start").iloc[-1]
        usual, n = float(last["conversion_center"]), int(last["entered"])
        se = math.sqrt(usual * (1 - usual) / n) if 0 < usual < 1 else np.nan
        rows.append({"stage": stage, "period": last["period"], "entered": n, "conversion": float(last["conversion"]),
                     "usual": usual, "z": (float(last["conversion"]) - usual) / se if se == se else np.nan})
    out = pd.DataFrame(rows, columns=["stage", "period", "entered", "conversion", "usual", "z"])
    return out.sort_values("z", kind="stable").reset_index(drop=True)


def expected_close_as_known(history: pd.DataFrame | None, opportunities: pd.DataFrame,
                            when: pd.Timestamp) -> pd.Series:
    """Each deal's expected close date as it stood at ``when``.

    From the latest stage-history row up to ``when`` that carries ``expected_close_at``; a deal without such a row
    keeps the opportunity's current ``expected_close_at`` (then nothing moves for it).
    """
    current = opportunities.set_index("opportunity_id").get("expected_close_at")
    current = current if current is not None else pd.Series(pd.NaT, index=opportunities["opportunity_id"])
    if history is None or "expected_close_at" not in history:
        return current
    h = history[(history["entered_at"] <= when) & history["expected_close_at"].notna()]
    latest = h.sort_values(["opportunity_id", "entered_at"], kind="stable").groupby("opportunity_id").tail(1)
    known = latest.set_index("opportunity_id")["expected_close_at"]
    in_history = current.index.isin(history.loc[history["expected_close_at"].notna(), "opportunity_id"].unique())
    # a deal with close-date history but no row yet at `when` had no expected close then
    return current.where(~in_history, known.reindex(current.index))


def _open_at(o: pd.DataFrame, when: pd.Timestamp) -> pd.Series:
    created = o["created_at"] if "created_at" in o else pd.Series(pd.NaT, index=o.index)
    closed = o["closed_at"] if "closed_at" in o else pd.Series(pd.NaT, index=o.index)
    # a closed deal without a close date cannot be placed in time: it is in no pipeline
    still_open = o["status"].eq("open") | (closed > when)
    return (created.isna() | (created <= when)) & still_open.fillna(False)


def pipeline_moves(opportunities: pd.DataFrame, history: pd.DataFrame | None, *, start: pd.Timestamp,
                   end: pd.Timestamp, due_by: pd.Timestamp | None) -> pd.DataFrame:
    """How each deal moved the open pipeline between ``start`` and ``end`` (the rows behind the waterfall).

    The pipeline at a date holds the deals open then and, when ``due_by`` is given, expected to close by ``due_by``
    as known at that date (:func:`expected_close_as_known`; an overdue deal is still due). Between the dates a deal is
    ``created`` (new, and in the end pipeline or closed in between), ``pulled_in`` (open at the start but not due,
    then due or closed), ``pushed_out`` (due at the start, then neither due nor closed), ``won`` or ``lost`` (closed in
    between). So start + created + pulled_in - pushed_out - won - lost = end, deal by deal.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``amount``, ``expected_close_start`` / ``expected_close_end`` (as known at each date),
        ``in_start``, ``in_end`` and one boolean column per flow; only deals that are in either pipeline or moved.
    """
    o = opportunities.set_index("opportunity_id")
    open_s, open_e = _open_at(o, start), _open_at(o, end)
    close_s = expected_close_as_known(history, opportunities, start).reindex(o.index)
    close_e = expected_close_as_known(history, opportunities, end).reindex(o.index)
    if due_by is None:
        due_s = due_e = pd.Series(True, index=o.index)
    else:
        due_s, due_e = close_s <= due_by, close_e <= due_by
    in_s, in_e = open_s & due_s, open_e & due_e
    closed = o["closed_at"] if "closed_at" in o else pd.Series(pd.NaT, index=o.index)
    closed_between = (closed > start) & (closed <= end) & o["status"].isin(["won", "lost"])
    created = o["created_at"] if "created_at" in o else pd.Series(pd.NaT, index=o.index)
    new = (created > start) & (created <= end)
    moved = in_e | closed_between
    out = pd.DataFrame({
        "amount": o["amount"] if "amount" in o else np.nan,
        "expected_close_start": close_s, "expected_close_end": close_e,
        "in_start": in_s, "in_end": in_e,
        "created": new & moved,
        "pulled_in": open_s & ~in_s & moved,
        "pushed_out": in_s & ~in_e & ~closed_between,
        "won": closed_between & o["status"].eq("won"),
        "lost": closed_between & o["status"].eq("lost"),
    })
    keep = out[["in_start", "in_end", *STEP_SIGN]].any(axis=1)
    return out[keep].rename_axis("opportunity_id").reset_index()


def pipeline_waterfall(moves: pd.DataFrame) -> pd.DataFrame:
    """``WATERFALL_STEPS`` with ``deals`` and ``amount`` (missing amounts count as 0) from :func:`pipeline_moves`.

    Returns
    -------
    DataFrame
        ``step``, ``deals``, ``amount``; the flows are positive numbers, their sign is :data:`STEP_SIGN`.
    """
    amount = moves["amount"].astype(float).fillna(0.0)
    cols = {"start": "in_start", "end": "in_end"}
    rows = [{"step": s, "deals": int(moves[cols.get(s, s)].sum()), "amount": float(amount[moves[cols.get(s, s)]].sum())}
            for s in WATERFALL_STEPS]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the analysis on a pipeline


@dataclass
class ConversionHistory:
    """Stage entries and windowed conversion per period with control limits (:func:`conversion_history`)."""

    order: list[str]
    period: str
    windows: dict[str, int]
    limits: pd.DataFrame
    as_of: pd.Timestamp


def conversion_history(p, period: str) -> ConversionHistory | None:
    """Entries and conversion per ``period`` with limits, from a pipeline's stage history (None without one)."""
    history = p.history
    if history is None:
        return None
    opp, order, as_of, cfg = p.opportunities, list(p.params.stages.order), p.as_of, p.params.monitoring
    entries = stage_entries(history, opp, order)
    windows = conversion_windows(entries, order, window_days=cfg.window_days)
    series = period_series(entries, order, period=period, as_of=as_of, windows=windows)
    limits = control_limits(series, sigma=cfg.alert_sigma, period=period)
    return ConversionHistory(order, period, windows, limits, as_of)


def day(ts: pd.Timestamp) -> str:
    """A timestamp's date as ``YYYY-MM-DD``."""
    return str(ts.date())


def last_day(end: pd.Timestamp) -> str:
    """The last day of a period that ends (exclusive) at ``end``."""
    return day(end - pd.Timedelta(days=1))


@dataclass(repr=False)
class MonitoringResult(Result):
    """What changed (:meth:`funnel_lab.Pipeline.monitoring`): the series with limits and their breaches per
    ``monitoring.period``, and the pipeline waterfall of the latest full period from ``start`` to ``end``
    (exclusive), deals due by ``due_by`` (None: every open deal)."""

    title = "monitoring"
    history: ConversionHistory | None
    alerts: pd.DataFrame
    moves: pd.DataFrame
    waterfall: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    due_by: pd.Timestamp | None

    @property
    def summary(self) -> pd.DataFrame:
        """The waterfall of the latest full period: ``step``, ``deals``, ``amount``."""
        return self.waterfall

    @property
    def measure(self) -> str:
        """``amount``, or ``deals`` when most deals in the pipeline have no amount (their sum would mislead)."""
        in_pipeline = self.moves[self.moves["in_start"] | self.moves["in_end"]]
        return "deals" if len(in_pipeline) and in_pipeline["amount"].isna().mean() > 0.5 else "amount"

    def latest_alert_count(self) -> int:
        """Breaches in the latest full period (the index page's headline)."""
        if self.history is None or self.alerts.empty:
            return 0
        lim = self.history.limits
        latest = set(lim.loc[lim["period_start"] == self.start, "period"])
        return int(self.alerts["period"].isin(latest).sum())

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        """The per-period series with limits, every alert, the waterfall and the deals that moved."""
        waterfall = self.waterfall.assign(start=day(self.start), end=last_day(self.end),
                                          due_by=day(self.due_by) if self.due_by is not None else "")
        out = {"pipeline_waterfall.csv": waterfall, "pipeline_moves.csv": self.moves}
        if self.history is not None:
            out |= {"monitoring.csv": self.history.limits, "alerts.csv": self.alerts}
        return out


def analyse_monitoring(p) -> MonitoringResult:
    """The ``monitoring.period`` series and alerts, and the pipeline waterfall of the latest full period."""
    opp, cfg, as_of, history = p.opportunities, p.params.monitoring, p.as_of, p.history
    ch = conversion_history(p, cfg.period)
    if ch is not None and ch.limits["complete"].any():
        last = ch.limits[ch.limits["complete"]].sort_values("period_start").iloc[-1]
        start, end = last["period_start"], last["period_end"]
    else:  # no history: the latest full period before the analysis date
        period = (as_of - pd.Timedelta(seconds=1)).to_period(cfg.period) - 1
        start, end = period.start_time, period.end_time.floor("s") + pd.Timedelta(seconds=1)
    has_dates = history is not None and "expected_close_at" in history and history["expected_close_at"].notna().any()
    due_by = end + pd.Timedelta(days=p.params.forecast.horizon_days) if has_dates else None
    moves = pipeline_moves(opp, history, start=start, end=end, due_by=due_by)
    alerts = breaches(ch.limits) if ch is not None else pd.DataFrame()
    return MonitoringResult(ch, alerts, moves, pipeline_waterfall(moves), start, end, due_by)
