"""The funnel from stage history: deals (not transitions) reaching each stage, dynamics, time in stage, win rates."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine import Engine, open_engine
from ..result import Result
from .stats import wilson_interval

FUNNEL_COLUMNS = ["mode", "stage", "reached", "advanced", "conversion_rate", "cumulative_rate"]
TERMINAL = ("won", "lost")


def _history_ranks(history: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """History rows with ``rank`` (1..K for the stages in order, K+1 won, K+2 lost; 0 for names not mapped)."""
    ranks = {s: i for i, s in enumerate(order, start=1)} | {"won": len(order) + 1, "lost": len(order) + 2}
    h = history[["opportunity_id", "stage", "entered_at"]].copy()
    h["rank"] = h["stage"].astype("str").map(ranks).fillna(0).astype("int64")
    return h


def unmapped_stages(history: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """History stage names that are neither in ``order`` nor won/lost: ``stage``, ``rows`` (map them with values)."""
    known = set(order) | set(TERMINAL)
    bad = history.loc[~history["stage"].astype("str").isin(known), "stage"]
    return bad.value_counts().rename_axis("stage").reset_index(name="rows")


def _register(engine, name: str, source, columns: list[str]) -> None:
    """A DataFrame, or a Parquet file path that the engine reads itself (nothing is loaded into pandas)."""
    if isinstance(source, (str, Path)):
        engine.register_parquet(name, str(Path(source)), columns)
    else:
        engine.register(name, source[columns])


def _stage_ranks(order: list[str]) -> pd.DataFrame:
    """``stage``, ``rank``: 1..K for the stages in order, K+1 won, K+2 lost."""
    names = [*order, *TERMINAL]
    return pd.DataFrame({"stage": pd.Series(names, dtype="str"), "rank": np.arange(1, len(names) + 1, dtype="int64")})


@contextmanager
def _engine_or_default(engine: Engine | None):
    """The engine given (left open for the caller), or an embedded one for this call."""
    if engine is not None:
        yield engine
        return
    with open_engine() as own:
        yield own


def deal_reach(history, opportunities, order: list[str], *, engine: Engine | None = None) -> pd.DataFrame:
    """How far each deal with history got, computed in the engine (deals, not transitions, are counted).

    ``history`` and ``opportunities`` are DataFrames or Parquet paths: at scale the aggregation runs on the files.

    Parameters
    ----------
    engine : Engine, optional
        Where the aggregation runs (:func:`funnel_lab.engine.open_engine`); by default an embedded DuckDB.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``any_reach`` (highest stage rank in its history; K+1 when won), ``strict_reach``
        (highest k with every stage 1..k present and first entered in order; K+1 when won and strict to K),
        ``status``; one row per deal in the history, sorted by ``opportunity_id``.
    """
    k = len(order)
    with _engine_or_default(engine) as eng:
        # the engine scans the pandas frames in place; the stage names are ranked by a join, not row by row in Python
        _register(eng, "fl_hist", history, ["opportunity_id", "stage", "entered_at"])
        eng.register("fl_ranks", _stage_ranks(order).head(k))
        _register(eng, "fl_opp", opportunities, ["opportunity_id", "status"])
        # One group by over the history gives every deal in it (also one with only won/lost or unmapped rows) with,
        # per stage, whether it was entered and when first: the strict path is then a comparison along K columns,
        # with no window over (deal, stage) rows, no select distinct and no second join. Presence is kept apart from
        # the time so that a stage entered with a missing time still counts as entered.
        firsts = "".join(f", count(*) filter (where rank = {i}) > 0 as in_{i}, min(entered_at) filter "
                         f"(where rank = {i}) as at_{i}" for i in range(1, k + 1))
        out = eng.frame(f"""
            with per_deal as (
                select fl_hist.opportunity_id, coalesce(max(rank), 0) as any_reach{firsts}
                from fl_hist left join fl_ranks on fl_hist.stage = fl_ranks.stage group by fl_hist.opportunity_id),
            reach as (select opportunity_id, any_reach, {_strict_reach_sql(k)} as strict_reach from per_deal)
            select r.opportunity_id,
                   -- a history row without an id matches no opportunity: that deal reached nothing; bigint keeps
                   -- the columns int64 (a case over literals alone would be a 32-bit integer)
                   cast(case when o.status = 'won' then {k + 1} when r.opportunity_id is null then 0
                        else r.any_reach end as bigint) as any_reach,
                   cast(case when o.status = 'won' and r.strict_reach = {k} then {k + 1}
                        when r.opportunity_id is null then 0 else r.strict_reach end as bigint) as strict_reach,
                   o.status
            from reach r left join fl_opp o on o.opportunity_id = r.opportunity_id
            order by r.opportunity_id nulls last
        """)
        eng.drop("fl_hist", "fl_ranks", "fl_opp")
    return out


def _strict_reach_sql(k: int) -> str:
    """SQL for the strict reach from the columns ``in_i`` (stage i entered) and ``at_i`` (first entered), i = 1..k.

    The first break in 1, 2, ..., k (a missing stage or an earlier first entry than the stage before) ends the strict
    path; a comparison with a missing time is null, hence no break.
    """
    if k == 0:
        return "0"
    breaks = ["not in_1"] + [f"not in_{i} or at_{i} < at_{i - 1}" for i in range(2, k + 1)]
    return "case " + " ".join(f"when {b} then {i}" for i, b in enumerate(breaks)) + f" else {k} end"


def funnel_table(reach: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """``data/funnel.csv``: per mode (``any``, ``strict``) and stage (the order, then ``won``) the deals that reached it.

    advanced = reached of the next row; conversion_rate = advanced / reached; cumulative_rate = reached / reached of
    the first stage.
    """
    rows = []
    names = list(order) + ["won"]
    for mode in ("any", "strict"):
        col = reach[f"{mode}_reach"].to_numpy()
        reached = np.array([(col >= i).sum() for i in range(1, len(names) + 1)])
        advanced = np.append(reached[1:], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            conv = np.where(reached > 0, advanced / reached, np.nan)
            cum = reached / reached[0] if reached[0] else np.full(len(reached), np.nan)
        rows += [{"mode": mode, "stage": s, "reached": int(r), "advanced": a, "conversion_rate": c,
                  "cumulative_rate": u} for s, r, a, c, u in zip(names, reached, advanced, conv, cum)]
    out = pd.DataFrame(rows, columns=FUNNEL_COLUMNS)
    out["advanced"] = out["advanced"].astype("Int64")
    return out


def current_stage_reach(opportunities: pd.DataFrame, stages: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per deal, how far it got when there is no stage history: its current stage (a won deal passed them all).

    This undercounts deals that moved on (a lost deal counts only up to the stage it had when it was lost) and has
    no strict mode (both columns are equal); the report says so. ``stages`` holds ``stage_rank`` per opportunity
    (e.g. the stage model's).
    """
    reach = stages["stage_rank"].to_numpy().copy()
    reach[(opportunities["status"] == "won").to_numpy()] = len(order) + 1
    return pd.DataFrame({"opportunity_id": opportunities["opportunity_id"].to_numpy(), "any_reach": reach,
                         "strict_reach": reach, "status": opportunities["status"].to_numpy()})


def funnel_by_group(reach: pd.DataFrame, opportunities: pd.DataFrame, by: str, order: list[str]) -> pd.DataFrame:
    """The ``any`` funnel per value of ``by`` (owner, source, segment), each stage's conversion with its interval.

    Parameters
    ----------
    reach : DataFrame
        Per deal ``opportunity_id`` and ``any_reach`` (:func:`deal_reach` or :func:`current_stage_reach`).
    by : str
        A column of ``opportunities``; deals without a value form no group.

    Returns
    -------
    DataFrame
        ``group``, ``stage``, ``reached``, ``advanced``, ``conversion_rate``, ``ci_low``, ``ci_high`` (Wilson 95%),
        the stages in order then ``won`` (whose conversion is empty).
    """
    groups = opportunities.set_index("opportunity_id")[by]
    r = reach[["opportunity_id", "any_reach"]].assign(group=reach["opportunity_id"].map(groups))
    r = r.dropna(subset=["group"])
    parts = []
    for group, part in r.groupby("group", sort=True):
        f = funnel_table(part.assign(strict_reach=part["any_reach"]), order)  # only the any mode is kept
        parts.append(f[f["mode"] == "any"].drop(columns=["mode", "cumulative_rate"]).assign(group=group))
    if not parts:
        return pd.DataFrame(columns=["group", "stage", "reached", "advanced", "conversion_rate", "ci_low", "ci_high"])
    out = pd.concat(parts, ignore_index=True)
    low, high = wilson_interval(out["advanced"].astype(float).fillna(0), out["reached"].where(out["advanced"].notna()))
    out["ci_low"], out["ci_high"] = low, high
    return out[["group", "stage", "reached", "advanced", "conversion_rate", "ci_low", "ci_high"]]


def stage_dynamics(history: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per deal: ``skips`` (moves forward past a stage), ``backward`` moves, ``re_entries`` (a stage entered again
    after another) and ``reopened`` (a stage entered after won/lost), from the history in time order."""
    h = _history_ranks(history, order)
    h = h[h["rank"] > 0].sort_values(["opportunity_id", "entered_at", "rank"], kind="stable")
    # consecutive rows in one stage are one stay (Salesforce writes a row on any change of amount or close date)
    h = h[(h["opportunity_id"] != h["opportunity_id"].shift()) | (h["rank"] != h["rank"].shift())]
    k = len(order)
    nxt = h.groupby("opportunity_id")["rank"].shift(-1)
    r = h["rank"]
    open_rank = r <= k
    frame = pd.DataFrame({
        "opportunity_id": h["opportunity_id"],
        "skips": (open_rank & (nxt <= k) & (nxt > r + 1)).astype(int),
        "backward": (open_rank & (nxt < r)).astype(int),
        "reopened": ((r > k) & (nxt <= k)).astype(int),
    })
    per = frame.groupby("opportunity_id", sort=True)[["skips", "backward", "reopened"]].sum()
    entries = h[open_rank].groupby(["opportunity_id", "rank"]).size()
    per["re_entries"] = (entries - 1).groupby(level=0).sum().reindex(per.index, fill_value=0)
    return per.reset_index()


def stage_durations(history, opportunities, order: list[str], *, as_of: pd.Timestamp,
                    engine: Engine | None = None) -> pd.DataFrame:
    """Days spent in each stage per deal, summed over visits; a deal still in a stage is censored at ``as_of``.

    A visit ends when the deal's next history row starts; a closed deal whose history stops before its outcome left
    its last stage when it closed (``closed_at``). ``history`` and ``opportunities`` are DataFrames or Parquet paths.

    Parameters
    ----------
    engine : Engine, optional
        Where the aggregation runs (:func:`funnel_lab.engine.open_engine`); by default an embedded DuckDB.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``stage``, ``days`` (cumulative over visits), ``left`` (True when the deal has left the
        stage; False when it is still there: censored), ``current`` (True for an open deal's current stage); per
        deal in the order its stages were first entered.
    """
    k = len(order)
    with _engine_or_default(engine) as eng:
        _register(eng, "fl_hist", history, ["opportunity_id", "stage", "entered_at"])
        eng.register("fl_ranks", _stage_ranks(order))
        opp_columns = ["opportunity_id", "status"] + (["closed_at"] if "closed_at" in _columns(opportunities) else [])
        _register(eng, "fl_opp", opportunities, opp_columns)
        closed_at = "o.closed_at" if "closed_at" in opp_columns else "cast(null as timestamp)"
        # microseconds to days as pandas turns a timedelta into seconds, then days
        out = eng.frame(f"""
            with visits as (
                select h.opportunity_id, h.stage, h.entered_at, r.rank,
                       lead(h.entered_at) over w as next_at, row_number() over w as pos
                from fl_hist h join fl_ranks r on h.stage = r.stage
                window w as (partition by h.opportunity_id order by h.entered_at, r.rank)),
            ended as (
                select v.opportunity_id, v.stage, v.rank, v.entered_at, v.pos,
                       v.next_at is null and coalesce(o.status = 'open', false) as current,
                       case when v.next_at is not null then v.next_at
                            when coalesce(o.status = 'open', false) then cast('{as_of}' as timestamp)
                            else {closed_at} end as ended_at
                from visits v left join fl_opp o on o.opportunity_id = v.opportunity_id),
            stays as (
                select opportunity_id, stage, pos, current,
                       cast(date_diff('microsecond', entered_at, ended_at) as double) / 1e6 / 86400 as days
                from ended where rank <= {k})
            select opportunity_id, stage, sum(days) as days, bool_and(not current) as "left",
                   bool_or(current) as current
            from stays where days is not null
            group by opportunity_id, stage
            order by opportunity_id, min(pos)
        """)
        eng.drop("fl_hist", "fl_ranks", "fl_opp")
    return out


def _columns(source) -> list[str]:
    """The columns of a DataFrame or a Parquet file."""
    if isinstance(source, (str, Path)):
        import pyarrow.parquet as pq

        return pq.read_schema(source).names
    return list(source.columns)


def time_in_stage(durations: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Kaplan-Meier median and 90th percentile of days per stage, open deals censored rather than dropped.

    Returns
    -------
    DataFrame
        ``stage``, ``deals``, ``still_in_stage`` (censored), ``median_days``, ``p90_days`` (NaN where the curve
        never falls that far), ``naive_median_days`` (completed stays only: what dropping open deals would say).
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    rows = []
    for stage in order:
        d = durations[durations["stage"] == stage]
        if d.empty:
            rows.append({"stage": stage, "deals": 0, "still_in_stage": 0, "median_days": np.nan, "p90_days": np.nan,
                         "naive_median_days": np.nan})
            continue
        sf = SurvfuncRight(d["days"].clip(lower=0).to_numpy(), d["left"].astype(int).to_numpy())
        rows.append({"stage": stage, "deals": len(d), "still_in_stage": int((~d["left"]).sum()),
                     "median_days": float(sf.quantile(0.5)), "p90_days": float(sf.quantile(0.9)),
                     "naive_median_days": float(d.loc[d["left"], "days"].median())})
    return pd.DataFrame(rows)


def stalled_deals(durations: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """Open deals whose days in their current stage exceed that stage's 90th percentile: the list to act on."""
    cur = durations[durations["current"]].merge(times[["stage", "p90_days"]], on="stage")
    out = cur[cur["days"] > cur["p90_days"]].sort_values("days", ascending=False)
    return out[["opportunity_id", "stage", "days", "p90_days"]].reset_index(drop=True)


def data_as_of(opportunities: pd.DataFrame, history: pd.DataFrame | None, configured=None) -> pd.Timestamp:
    """The analysis date: ``features.as_of`` when set, else the latest date in the data (not the clock, so that a
    rerun gives the same numbers)."""
    if configured is not None:
        return pd.Timestamp(configured)
    dates = [opportunities[c].max() for c in ("created_at", "closed_at") if c in opportunities]
    if history is not None:
        dates.append(history["entered_at"].max())
    dates = [d for d in dates if pd.notna(d)]
    return max(dates).normalize() + pd.Timedelta(days=1) if dates else pd.Timestamp("today").normalize()


def win_rates(opportunities: pd.DataFrame) -> dict[str, float]:
    """Named win rates and pipeline speed.

    Returns
    -------
    dict
        ``closed_win_rate`` = won / (won + lost); ``cohort_win_rate`` = won / all created; ``cycle_days`` = median
        days created -> closed of won deals; ``open``; ``avg_won_amount``; ``velocity_per_day`` = open x average won
        amount x closed win rate / mean cycle days of won deals.
    """
    status = opportunities["status"]
    won, lost = int((status == "won").sum()), int((status == "lost").sum())
    out = {"won": won, "lost": lost, "open": int((status == "open").sum()),
           "closed_win_rate": won / (won + lost) if won + lost else np.nan,
           "cohort_win_rate": won / len(status) if len(status) else np.nan}
    w = opportunities[status == "won"]
    cycle = (w["closed_at"] - w["created_at"]).dt.days if {"closed_at", "created_at"} <= set(w.columns) else pd.Series()
    out["cycle_days"] = float(cycle.median()) if len(cycle.dropna()) else np.nan
    out["avg_won_amount"] = float(w["amount"].mean()) if "amount" in w and w["amount"].notna().any() else np.nan
    mean_cycle = float(cycle.mean()) if len(cycle.dropna()) else np.nan
    out["velocity_per_day"] = (out["open"] * out["avg_won_amount"] * out["closed_win_rate"] / mean_cycle
                               if mean_cycle and not np.isnan(mean_cycle) else np.nan)
    return out


def cohort_table(opportunities: pd.DataFrame, *, as_of: pd.Timestamp, max_months: int = 12) -> pd.DataFrame:
    """Cumulative share of each creation month's deals won within m months; cells the cohort has not lived to are NaN.

    Rows: creation month; columns: months elapsed 0..max_months. A NaN cell is immature (the cohort is younger than
    that), not zero.
    """
    o = opportunities.dropna(subset=["created_at"])
    month = o["created_at"].dt.to_period("M")
    won_after = np.where(o["status"] == "won", ((o["closed_at"] - o["created_at"]).dt.days // 30), np.nan)
    frame = pd.DataFrame({"month": month, "won_after": won_after})
    age = ((as_of.to_period("M") - frame["month"]).apply(lambda d: d.n)).groupby(frame["month"]).first()
    size = frame.groupby("month").size()
    table = {}
    for m in range(max_months + 1):
        share = (frame["won_after"] <= m).groupby(frame["month"]).sum() / size
        table[m] = share.where(age >= m)
    return pd.DataFrame(table).rename_axis("month")


def shrunk_win_rates(opportunities: pd.DataFrame, by: str) -> pd.DataFrame:
    """Closed win rate per group with Wilson intervals, and the empirical-Bayes (beta-binomial) shrunk rate.

    The prior Beta(a, b) is fitted to the groups by the method of moments, so a group with few closed deals is
    pulled toward the overall rate and a group with many keeps its own.

    Returns
    -------
    DataFrame
        ``group``, ``closed``, ``won``, ``win_rate``, ``ci_low``, ``ci_high``, ``shrunk_win_rate``, sorted by the
        shrunk rate.
    """
    c = opportunities[opportunities["status"].isin(TERMINAL)]
    g = c.groupby(by)["won"].agg(closed="count", won="sum").reset_index().rename(columns={by: "group"})
    g = g[g["closed"] > 0]
    p, n = g["won"] / g["closed"], g["closed"].astype(float)
    mean, total = g["won"].sum() / n.sum(), n.sum()
    # one-way method of moments: between-group variance = (sum n (p - mean)^2 - (k - 1) mean (1 - mean)) /
    # (N - sum n^2 / N); the prior's strength a + b follows from it (clipped so that it stays a proper Beta)
    spread = float((n * (p - mean) ** 2).sum()) - (len(g) - 1) * mean * (1 - mean)
    between = spread / (total - float((n**2).sum()) / total) if len(g) > 1 else 0.0
    strength = mean * (1 - mean) / between - 1 if between > 0 else 1e6  # no spread beyond chance: pool fully
    strength = max(strength, 1e-3)  # a + b
    a, b = mean * strength, (1 - mean) * strength
    g["win_rate"] = p
    g["ci_low"], g["ci_high"] = wilson_interval(g["won"], g["closed"])
    g["shrunk_win_rate"] = (g["won"] + a) / (g["closed"] + a + b)
    return g.sort_values("shrunk_win_rate", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- the analysis on a pipeline

#: The columns the funnel and the win rates are broken down by, when the opportunities have them.
BREAKDOWNS = ("owner", "source", "segment")


@dataclass(repr=False)
class FunnelResult(Result):
    """Every table of ``20_funnel`` (:meth:`funnel_lab.Pipeline.funnel`).

    Attributes
    ----------
    funnel : DataFrame
        :func:`funnel_table` (both modes from a stage history; the ``any`` mode from current stages without one).
    from_history : bool
    deals_with_history : int
    unmapped, dynamics, times, stalled : DataFrame
        :func:`unmapped_stages`, :func:`stage_dynamics`, :func:`time_in_stage`, :func:`stalled_deals` (empty
        without a history).
    rates : dict
        :func:`win_rates`.
    cohorts : DataFrame
        :func:`cohort_table`.
    by_month : ConversionHistory or None
        Entries and conversion per month (:func:`funnel_lab.analysis.monitoring.conversion_history`).
    reach : DataFrame
        Per deal, how far it got.
    win_rates_by, funnel_by : dict of DataFrame
        Per column of :data:`BREAKDOWNS`: :func:`shrunk_win_rates` and :func:`funnel_by_group`.
    """

    title = "funnel"
    order: list[str]
    funnel: pd.DataFrame
    from_history: bool
    deals_with_history: int
    unmapped: pd.DataFrame
    dynamics: pd.DataFrame
    times: pd.DataFrame
    stalled: pd.DataFrame
    rates: dict
    cohorts: pd.DataFrame
    as_of: pd.Timestamp
    by_month: object = None
    reach: pd.DataFrame | None = None
    win_rates_by: dict[str, pd.DataFrame] = field(default_factory=dict)
    funnel_by: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        """:attr:`funnel`: deals reaching each stage, advancing, and the conversion and cumulative rates."""
        return self.funnel

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        out = {"funnel.csv": self.funnel, "time_in_stage.csv": self.times, "stalled_deals.csv": self.stalled}
        if self.by_month is not None:
            out["conversion_by_month.csv"] = self.by_month.limits
        for col, rates in self.win_rates_by.items():
            out[f"win_rates_by_{col}.csv"] = rates
            if col in self.funnel_by:
                out[f"funnel_by_{col}.csv"] = self.funnel_by[col]
        return out


def analyse_funnel(p) -> FunnelResult:
    """The funnel and its companions for a pipeline (stage history when present, else current stages)."""
    from .monitoring import conversion_history

    opp, order, history, as_of = p.opportunities, list(p.params.stages.order), p.history, p.as_of
    if history is not None:
        with open_engine(p.params.engine) as engine:
            reach = deal_reach(history, opp, order, engine=engine)
        durations = p.stage_durations  # the run's plan computed it (the run history's stalled deals need it)
        funnel = funnel_table(reach, order)
        dyn = stage_dynamics(history, order)
        times = time_in_stage(durations, order)
        stalled = stalled_deals(durations, times)
        unmapped, n_hist = unmapped_stages(history, order), int(history["opportunity_id"].nunique())
    else:
        reach = current_stage_reach(opp, _current_ranks(p, order), order)
        funnel = funnel_table(reach, order).query("mode == 'any'").reset_index(drop=True)
        dyn, times, stalled = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
        unmapped, n_hist = pd.DataFrame(columns=["stage", "rows"]), 0
    cohorts = cohort_table(opp, as_of=as_of) if {"created_at", "closed_at"} <= set(opp.columns) else pd.DataFrame()
    out = FunnelResult(order, funnel, history is not None, n_hist, unmapped, dyn, times, stalled, win_rates(opp),
                       cohorts, as_of, conversion_history(p, "M"), reach)
    for col in BREAKDOWNS:
        if col in opp.columns and opp[col].notna().any():
            out.win_rates_by[col] = shrunk_win_rates(opp, col)
            out.funnel_by[col] = funnel_by_group(reach, opp, col, order)
    return out


def _current_ranks(p, order: list[str]) -> pd.DataFrame:
    """Without history: the stage model's stages when it has rules or a score, else the CRM stage mapped to order."""
    if p.params.stages.rules or p.params.stages.score:
        return p.stages
    opp = p.opportunities
    crm = opp.get("crm_stage", pd.Series(index=opp.index, dtype="str"))
    rank = crm.astype("str").map({s: i for i, s in enumerate(order, start=1)}).fillna(0).astype(int)
    # a lost deal's CRM stage says "lost", not where it was lost: it was in the pipeline, so at least at the first stage
    rank = rank.where(~(opp["status"].eq("lost") & rank.eq(0)), 1)
    return pd.DataFrame({"stage_rank": rank.to_numpy()}, index=opp.index)
