"""The funnel report: where deals flow and stall, said in plain words (sections used by ``20_funnel``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .funnel import (cohort_table, current_stage_reach, deal_reach, funnel_by_group, funnel_table, shrunk_win_rates,
                     stage_dynamics, stage_durations, stalled_deals, time_in_stage, unmapped_stages, win_rates)
from .i18n import format_number, format_percent, t
from .monitoring_report import ConversionHistory, bottleneck_sentence, conversion_history


@dataclass
class FunnelResult:
    """Every table of the funnel report."""

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
    by_month: ConversionHistory | None = None  # entries and conversion per month (None without history)
    reach: pd.DataFrame | None = None  # per deal: how far it got (the breakdowns' funnels)


def analyse_funnel(run) -> FunnelResult:
    """Compute the funnel and its companions for a run (stage history when present, else current stages)."""
    opp = run.opportunities
    order = list(run.params.stages.order)
    history = run.history
    as_of = run.as_of
    if history is not None:
        reach = deal_reach(history, opp, order)
        funnel = funnel_table(reach, order)
        dyn = stage_dynamics(history, order)
        durations = stage_durations(history, opp, order, as_of=as_of)
        times = time_in_stage(durations, order)
        stalled = stalled_deals(durations, times)
        unmapped, n_hist = unmapped_stages(history, order), int(history["opportunity_id"].nunique())
    else:
        reach = current_stage_reach(opp, _current_ranks(run, order), order)
        funnel = funnel_table(reach, order).query("mode == 'any'").reset_index(drop=True)
        dyn, times, stalled = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
        unmapped, n_hist = pd.DataFrame(columns=["stage", "rows"]), 0
    cohorts = cohort_table(opp, as_of=as_of) if {"created_at", "closed_at"} <= set(opp.columns) else pd.DataFrame()
    return FunnelResult(order, funnel, history is not None, n_hist, unmapped, dyn, times, stalled, win_rates(opp),
                        cohorts, as_of, conversion_history(run, "M"), reach)


def _current_ranks(run, order: list[str]) -> pd.DataFrame:
    """Without history: the stage model's stages when it has rules or a score, else the CRM stage mapped to order."""
    if run.params.stages.rules or run.params.stages.score:
        return run.stages
    crm = run.opportunities.get("crm_stage", pd.Series(index=run.opportunities.index, dtype="str"))
    rank = crm.astype("str").map({s: i for i, s in enumerate(order, start=1)}).fillna(0).astype(int)
    # a lost deal's CRM stage says "lost", not where it was lost: it was in the pipeline, so at least at the first stage
    rank = rank.where(~(run.opportunities["status"].eq("lost") & rank.eq(0)), 1)
    return pd.DataFrame({"stage_rank": rank.to_numpy()}, index=run.opportunities.index)


def summary_sentences(r: FunnelResult, lang: str, labels: dict[str, str]) -> list[str]:
    """The opening of the report."""
    p = lambda x: format_percent(x, lang)  # noqa: E731
    f = r.funnel[r.funnel["mode"] == "any"].set_index("stage")
    out = []
    if r.from_history:
        out.append(t("fn.summary_history", lang, n=format_number(r.deals_with_history, lang),
                     last=labels.get(r.order[-1], r.order[-1]), reached=p(f.loc[r.order[-1], "cumulative_rate"]),
                     won=p(f.loc["won", "cumulative_rate"])))
    else:
        out.append(t("fn.summary_current", lang))
    conv = f["conversion_rate"].iloc[:-1]
    if conv.notna().any():
        worst = conv.idxmin()
        nxt = f.index[list(f.index).index(worst) + 1]
        out.append(t("fn.summary_drop", lang, a=labels.get(worst, worst), b=labels.get(nxt, nxt), rate=p(conv[worst])))
    w = r.rates
    out.append(t("fn.summary_rates", lang, closed=p(w["closed_win_rate"]), cohort=p(w["cohort_win_rate"]),
                 cycle=format_number(w["cycle_days"], lang), open=format_number(w["open"], lang)))
    if r.by_month is not None:
        sentence = bottleneck_sentence(r.by_month, lang, labels)
        out += [sentence] if sentence else []
    if len(r.stalled):
        out.append(t("fn.summary_stalled", lang, n=format_number(len(r.stalled), lang)))
    return out


def show_funnel(run, r: FunnelResult, labels: dict[str, str]) -> None:
    import matplotlib.pyplot as plt

    from .plots import plot_funnel

    run.heading("fn.funnel")
    run.say("fn.modes" if r.from_history else "fn.no_history")
    if len(r.unmapped):
        run.say("fn.unmapped", n=format_number(int(r.unmapped["rows"].sum()), run.lang),
                names=", ".join(map(str, r.unmapped["stage"].head(8))))
    shown = r.funnel.assign(stage=r.funnel["stage"].map(lambda s: labels.get(s, s)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, percent=("conversion_rate", "cumulative_rate"))
    ax = plot_funnel(r.funnel, labels=labels, title=run.t("fn.funnel_chart"))
    plt.show()
    plt.close(ax.figure)


def show_dynamics(run, r: FunnelResult, labels: dict[str, str]) -> None:
    if r.dynamics.empty:
        return
    d = r.dynamics
    run.heading("fn.dynamics")
    counts = pd.DataFrame({"pattern": [run.t(f"fn.pattern.{c}") for c in ("skips", "backward", "re_entries", "reopened")],
                           "deals": [int((d[c] > 0).sum()) for c in ("skips", "backward", "re_entries", "reopened")],
                           "events": [int(d[c].sum()) for c in ("skips", "backward", "re_entries", "reopened")]})
    run.table(counts, labels={"pattern": "col.pattern", "deals": "col.n", "events": "col.events"})
    run.heading("fn.time_in_stage", level=3)
    run.say("fn.km_note")
    times = r.times.assign(stage=r.times["stage"].map(lambda s: labels.get(s, s)))
    run.table(times, labels={c: f"col.{c}" for c in times.columns})
    run.heading("fn.stalled", level=3)
    if r.stalled.empty:
        run.say("dq.none")
    else:
        run.say("fn.stalled_note", n=format_number(len(r.stalled), run.lang))
        top = r.stalled.head(25).assign(stage=lambda x: x["stage"].map(lambda s: labels.get(s, s)))
        run.table(top, labels={c: f"col.{c}" for c in top.columns})


def show_rates(run, r: FunnelResult) -> None:
    import matplotlib.pyplot as plt

    from .plots import plot_cohorts

    w = r.rates
    run.heading("fn.rates")
    rows = [("fn.rate.closed", run.percent(w["closed_win_rate"])), ("fn.rate.cohort", run.percent(w["cohort_win_rate"])),
            ("fn.rate.cycle", run.number(w["cycle_days"])), ("fn.rate.open", run.number(w["open"])),
            ("fn.rate.avg_won", run.number(w["avg_won_amount"])), ("fn.rate.velocity", run.number(w["velocity_per_day"]))]
    run.table(pd.DataFrame({"measure": [run.t(k) for k, _ in rows], "value": [v for _, v in rows]}),
              labels={"measure": "col.measure", "value": "col.value"})
    if len(r.cohorts):
        run.say("fn.cohort_note", as_of=str(r.as_of.date()))
        ax = plot_cohorts(r.cohorts.tail(18), title=run.t("fn.cohort_chart"))
        plt.show()
        plt.close(ax.figure)


def conversion_matrix(by_group: pd.DataFrame, labels: dict[str, str], top: int = 20) -> pd.DataFrame:
    """Group (rows, the ``top`` largest) x stage step (columns) conversion, for the breakdown heatmap."""
    first = by_group.groupby("group", sort=False)["reached"].first().sort_values(ascending=False)
    keep = by_group[by_group["group"].isin(first.index[:top]) & by_group["conversion_rate"].notna()]
    names = list(dict.fromkeys(by_group["stage"]))
    step = {a: f"{labels.get(a, a)} → {labels.get(b, b)}" for a, b in zip(names, names[1:])}
    table = keep.assign(step=keep["stage"].map(step)).pivot(index="group", columns="step", values="conversion_rate")
    table = table.reindex(index=first.index[:top], columns=[step[a] for a in names[:-1]])
    table.index = [f"{g} (n={n:,})" for g, n in first.iloc[:top].items()]
    return table


def show_breakdowns(run, r: FunnelResult, labels: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Win rates by owner (shrunk toward the team), source and segment with intervals, and each group's stage
    conversion as a heatmap.

    Returns
    -------
    dict
        ``data/`` file name -> frame: ``win_rates_by_<col>.csv`` and ``funnel_by_<col>.csv``.
    """
    import matplotlib.pyplot as plt

    from .plots import plot_group_rates, plot_rate_heatmap

    out = {}
    opp = run.opportunities
    for col in ("owner", "source", "segment"):
        if col not in opp.columns or opp[col].isna().all():
            continue
        rates = shrunk_win_rates(opp, col)
        out[f"win_rates_by_{col}.csv"] = rates
        run.heading(f"fn.by.{col}", level=3)
        if col == "owner":
            run.say("fn.shrink_note")
            ax = plot_group_rates(rates, title=run.t("fn.by.owner"))
            plt.show()
            plt.close(ax.figure)
        else:
            run.table(rates, labels={c: f"col.{c}" for c in rates.columns},
                      percent=("win_rate", "ci_low", "ci_high", "shrunk_win_rate"))
        if r.reach is not None:
            by_group = funnel_by_group(r.reach, opp, col, r.order)
            out[f"funnel_by_{col}.csv"] = by_group
            ax = plot_rate_heatmap(conversion_matrix(by_group, labels), title=run.t("fn.group_heatmap"))
            plt.show()
            plt.close(ax.figure)
    return out
