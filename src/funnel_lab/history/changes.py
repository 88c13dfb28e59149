"""Since the last run: every deal's state now against the last run's, and the run's numbers against the runs before.

A deal's state is its status, stage, expected close date, amount and whether it is stalled. Between two runs a deal
is ``new`` (not in the last run), ``gone`` (in the last run, not now), ``won`` or ``lost`` (open then, closed now),
``reopened`` (closed then, open now), and while open in both: ``moved_stage``, ``slipped`` (its expected close date
moved later) or ``stalled`` (stalled now, not then). One deal can have several changes (moved and slipped).

The win rate by stage compares the deals closed since the last run with those closed before it (two disjoint groups,
so Newcombe's interval of the difference applies); the stage mix of the open pipeline is compared by PSI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis.stages import psi
from ..analysis.stats import newcombe_interval
from ..result import Result

DEAL_COLUMNS = ["opportunity_id", "status", "stage", "model_stage", "expected_close_at", "closed_at", "amount",
                "stalled"]
CHANGE_COLUMNS = ["opportunity_id", "change", "from", "to", "stage", "amount"]
#: The kinds of change, in the order the report lists them.
CHANGES = ("won", "lost", "moved_stage", "slipped", "stalled", "new", "reopened", "gone")
#: The numbers every run records from its deals (the notebooks' headlines are added to them).
NUMBERS = ("open", "open_amount", "won", "lost", "closed_win_rate", "stalled")
WIN_RATE_COLUMNS = ["stage", "closed_before", "win_rate_before", "closed_since", "won_since", "win_rate_since",
                    "change", "ci_low", "ci_high"]
#: Runs shown in a number's trend (the current one included).
TREND_RUNS = 12
#: PSI from which the stage mix is said to have shifted (the usual reading: < 0.1 stable, 0.1-0.25 moderate).
PSI_SHIFT = 0.25


def deal_states(opportunities: pd.DataFrame, stages: pd.DataFrame | None, stalled_ids) -> pd.DataFrame:
    """Every deal's state at this run: ``DEAL_COLUMNS``.

    ``stage`` is the stage the CRM records (``crm_stage``) when the export has one, else the stage model's;
    ``model_stage`` is the stage model's (empty without a model); ``stalled`` is True for the ids in ``stalled_ids``.
    """
    o = opportunities
    none = pd.Series(pd.NA, index=o.index, dtype="str")
    model = (o[["opportunity_id"]].merge(stages[["opportunity_id", "stage"]], how="left")["stage"]
             .set_axis(o.index) if stages is not None else none)
    dates = {c: (pd.to_datetime(o[c]) if c in o else pd.Series(pd.NaT, index=o.index, dtype="datetime64[ns]"))
             for c in ("expected_close_at", "closed_at")}
    out = pd.DataFrame({
        "opportunity_id": o["opportunity_id"].astype("str"), "status": o["status"].astype("str"),
        "stage": o["crm_stage"].astype("str") if "crm_stage" in o else model.astype("str"),
        "model_stage": model.astype("str"),
        "expected_close_at": dates["expected_close_at"].astype("datetime64[ns]"),
        "closed_at": dates["closed_at"].astype("datetime64[ns]"),
        "amount": o["amount"].astype(float) if "amount" in o else np.nan,
        "stalled": o["opportunity_id"].isin(set(stalled_ids)).to_numpy(),
    })
    return out.sort_values("opportunity_id", kind="stable").reset_index(drop=True)


def run_numbers(deals: pd.DataFrame) -> dict[str, float]:
    """``NUMBERS`` of one run's deals: open deals and their amount, won, lost, closed win rate, stalled open deals."""
    status = deals["status"]
    won, lost, is_open = int(status.eq("won").sum()), int(status.eq("lost").sum()), status.eq("open")
    return {"open": int(is_open.sum()), "open_amount": round(float(deals.loc[is_open, "amount"].fillna(0).sum()), 2),
            "won": won, "lost": lost, "closed_win_rate": round(won / (won + lost), 4) if won + lost else None,
            "stalled": int((deals["stalled"] & is_open).sum())}


def _day(s: pd.Series) -> pd.Series:
    return s.dt.strftime("%Y-%m-%d").fillna("")


def deal_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """What happened to each deal between two runs' :func:`deal_states`.

    Returns
    -------
    DataFrame
        ``CHANGE_COLUMNS``: ``from``/``to`` are stages for ``moved_stage`` (and the stage before for ``won``/
        ``lost``), dates for ``slipped``, statuses for ``new``/``gone``/``reopened``; ``stage`` and ``amount`` are
        the deal's now (the last run's for ``gone``). Sorted by change (``CHANGES``), then amount, largest first.
    """
    b = before.set_index("opportunity_id")
    a = after.set_index("opportunity_id")
    both = a.index.intersection(b.index)
    ab, bb = a.loc[both], b.loc[both]
    was_open, is_open = bb["status"].eq("open"), ab["status"].eq("open")
    stayed = was_open & is_open
    blank = pd.Series("", index=both)
    stage_moved = stayed & (ab["stage"].fillna("") != bb["stage"].fillna(""))
    slipped = stayed & (ab["expected_close_at"] > bb["expected_close_at"]).fillna(False)
    stalled = is_open & ab["stalled"] & ~(bb["stalled"] & was_open)
    parts = {
        "won": (was_open & ab["status"].eq("won"), bb["stage"], ab["status"]),
        "lost": (was_open & ab["status"].eq("lost"), bb["stage"], ab["status"]),
        "moved_stage": (stage_moved, bb["stage"], ab["stage"]),
        "slipped": (slipped, _day(bb["expected_close_at"]), _day(ab["expected_close_at"])),
        "stalled": (stalled, blank, blank),
        "reopened": (~was_open & is_open, bb["status"], ab["status"]),
    }
    frames = [pd.DataFrame({"opportunity_id": both[m.to_numpy()], "change": kind, "from": f[m].to_numpy(),
                            "to": t[m].to_numpy(), "stage": ab.loc[m, "stage"].to_numpy(),
                            "amount": ab.loc[m, "amount"].to_numpy()})
              for kind, (m, f, t) in parts.items()]
    new, gone = a.loc[a.index.difference(b.index)], b.loc[b.index.difference(a.index)]
    frames.append(pd.DataFrame({"opportunity_id": new.index, "change": "new", "from": "", "to": new["status"].to_numpy(),
                                "stage": new["stage"].to_numpy(), "amount": new["amount"].to_numpy()}))
    frames.append(pd.DataFrame({"opportunity_id": gone.index, "change": "gone", "from": gone["status"].to_numpy(),
                                "to": "", "stage": gone["stage"].to_numpy(), "amount": gone["amount"].to_numpy()}))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float" if c == "amount" else "str") for c in CHANGE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out["change"] = pd.Categorical(out["change"], categories=CHANGES, ordered=True)
    out = out.sort_values(["change", "amount", "opportunity_id"], ascending=[True, False, True], kind="stable",
                          na_position="last")
    return out.assign(change=out["change"].astype("str")).reset_index(drop=True)[CHANGE_COLUMNS]


def _stage_key(deals: pd.DataFrame) -> str:
    return "model_stage" if deals["model_stage"].notna().any() else "stage"


def win_rate_changes(before: pd.DataFrame, after: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per stage: the win rate of the deals closed since the last run against those closed before it.

    The stage is the stage model's when there is one, else the CRM's. ``change`` = ``win_rate_since`` -
    ``win_rate_before`` with Newcombe's 95% interval (``ci_low``, ``ci_high``); NaN where either group is empty.
    """
    key = _stage_key(after)
    closed_before = before[before["status"].isin(["won", "lost"])]
    since = after[after["status"].isin(["won", "lost"]) & ~after["opportunity_id"].isin(closed_before["opportunity_id"])]

    def counts(d: pd.DataFrame) -> pd.DataFrame:
        g = d.assign(w=d["status"].eq("won")).groupby(key)["w"]
        return pd.DataFrame({"n": g.size(), "won": g.sum()})

    cb, cs = counts(closed_before), counts(since)
    stages = [s for s in order if s in cb.index or s in cs.index] + sorted(
        (set(cb.index) | set(cs.index)) - set(order))
    cb, cs = cb.reindex(stages, fill_value=0), cs.reindex(stages, fill_value=0)
    low, high = newcombe_interval(cs["won"], cs["n"], cb["won"], cb["n"])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_b, rate_s = cb["won"] / cb["n"].replace(0, np.nan), cs["won"] / cs["n"].replace(0, np.nan)
    return pd.DataFrame({"stage": stages, "closed_before": cb["n"].to_numpy(), "win_rate_before": rate_b.to_numpy(),
                         "closed_since": cs["n"].to_numpy(), "won_since": cs["won"].to_numpy(),
                         "win_rate_since": rate_s.to_numpy(), "change": (rate_s - rate_b).to_numpy(),
                         "ci_low": np.asarray(low, float), "ci_high": np.asarray(high, float)})


def open_stage_counts(deals: pd.DataFrame, key: str | None = None) -> pd.Series:
    """Open deals per stage (the stage model's when there is one, else the CRM's; ``unassigned`` for none)."""
    return deals.loc[deals["status"].eq("open"), key or _stage_key(deals)].fillna("unassigned").value_counts()


def stage_mix_change(before: pd.DataFrame, after: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, float]:
    """The open pipeline's stage mix at both runs (``stage``, ``before``, ``now`` shares) and its PSI."""
    b, a = open_stage_counts(before, _stage_key(after)), open_stage_counts(after)
    stages = [s for s in order if s in a.index or s in b.index] + sorted((set(a.index) | set(b.index)) - set(order))
    b, a = b.reindex(stages, fill_value=0), a.reindex(stages, fill_value=0)
    mix = pd.DataFrame({"stage": stages, "before": (b / max(b.sum(), 1)).to_numpy(),
                        "now": (a / max(a.sum(), 1)).to_numpy()})
    return mix, (psi(b.to_numpy(), a.to_numpy()) if a.sum() and b.sum() else float("nan"))


@dataclass(repr=False)
class SinceLastRun(Result):
    """This run against the last one in the history (:meth:`funnel_lab.Pipeline.since_last_run`).

    ``previous`` holds the earlier runs' records, oldest first (empty on the first run); ``before`` the last run's
    deals (None when there is no last run or its deal snapshot was not kept).
    """

    title = "since the last run"
    run_id: str
    as_of: pd.Timestamp
    deals: pd.DataFrame
    numbers: dict
    previous: list[dict]
    before: pd.DataFrame | None
    order: list[str]
    changes: pd.DataFrame = field(default_factory=lambda: deal_changes(_EMPTY_DEALS, _EMPTY_DEALS))
    win_rates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=WIN_RATE_COLUMNS))
    mix: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["stage", "before", "now"]))
    psi: float = float("nan")

    @classmethod
    def compare(cls, run_id: str, as_of: pd.Timestamp, deals: pd.DataFrame, previous: list[dict],
                before: pd.DataFrame | None, order: list[str]) -> SinceLastRun:
        out = cls(run_id, as_of, deals, run_numbers(deals), previous, before, order)
        if before is not None:
            out.changes = deal_changes(before, deals)
            out.win_rates = win_rate_changes(before, deals, order)
            out.mix, out.psi = stage_mix_change(before, deals, order)
        return out

    @property
    def last(self) -> dict | None:
        """The last run's record (None on the first run)."""
        return self.previous[-1] if self.previous else None

    def numbers_table(self, numbers: dict | None = None) -> pd.DataFrame:
        """Each number now against the last run: ``key``, ``last``, ``now``, ``change``, ``trend`` (the values of
        up to :data:`TREND_RUNS` runs, oldest first, this one last). ``numbers`` adds to this run's own."""
        now = {**self.numbers, **(numbers or {})}
        runs = [r["numbers"] for r in self.previous[-(TREND_RUNS - 1):]]
        last = runs[-1] if runs else {}
        rows = []
        for k, v in now.items():
            if v is None:
                continue
            was = last.get(k)
            rows.append({"key": k, "last": was, "now": v, "change": v - was if was is not None else None,
                         "trend": [r.get(k, np.nan) if r.get(k) is not None else np.nan for r in runs] + [v]})
        return pd.DataFrame(rows, columns=["key", "last", "now", "change", "trend"])

    def trend_dates(self) -> list[str]:
        """The analysis dates of the runs in :meth:`numbers_table`'s trends, oldest first, this run last."""
        return [r["as_of"] for r in self.previous[-(TREND_RUNS - 1):]] + [f"{self.as_of:%Y-%m-%d}"]

    def change_counts(self) -> dict[str, int]:
        """Deals per kind of change, every kind listed."""
        counts = self.changes["change"].value_counts()
        return {k: int(counts.get(k, 0)) for k in CHANGES}

    def notable_win_rates(self) -> pd.DataFrame:
        """Stages whose win-rate change has a 95% interval that excludes 0: falls first (the news to act on), each
        kind by the size of the change."""
        w = self.win_rates
        hit = w[(w["ci_low"] > 0) | (w["ci_high"] < 0)]
        return hit.assign(rise=hit["change"] > 0, size=-hit["change"].abs()).sort_values(
            ["rise", "size"], kind="stable").drop(columns=["rise", "size"])

    def what_matters(self) -> tuple[str, dict]:
        """The one thing to read first, as a message key and its values (the report words it):
        ``sl.first`` (nothing to compare yet), ``sl.no_deals`` (the last run's deals were not kept),
        ``sl.top.win_rate_down``/``_up`` (a stage's win rate changed beyond chance), ``sl.top.mix`` (the stage
        mix shifted), else ``sl.top.quiet``."""
        if self.last is None:
            return "sl.first", {}
        if self.before is None:
            return "sl.no_deals", {"run": self.last["run_id"]}
        hit = self.notable_win_rates()
        if len(hit):
            r = hit.iloc[0]
            return f"sl.top.win_rate_{'down' if r['change'] < 0 else 'up'}", dict(r)
        if self.psi == self.psi and self.psi >= PSI_SHIFT:
            m = self.mix.assign(d=self.mix["now"] - self.mix["before"]).sort_values("d", ascending=False).iloc[0]
            return "sl.top.mix", {"psi": self.psi, "stage": m["stage"], "before": m["before"], "now": m["now"]}
        return "sl.top.quiet", {}

    @property
    def summary(self) -> pd.DataFrame:
        """This run's numbers against the last run's."""
        return self.numbers_table().drop(columns="trend")

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        """``changes.csv``: every deal's changes since the last run (empty, with its header, on the first run)."""
        return {"changes.csv": self.changes}


_EMPTY_DEALS = pd.DataFrame({c: pd.Series(dtype="bool" if c == "stalled" else "float" if c == "amount" else
                                          "datetime64[ns]" if c.endswith("_at") else "str") for c in DEAL_COLUMNS})
