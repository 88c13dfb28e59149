"""The ``20_funnel`` page: where deals flow and stall, said in plain words."""

from __future__ import annotations

import pandas as pd

from ..analysis.funnel import FunnelResult
from ..analysis.monitoring import ConversionHistory, below_own_history
from ..i18n import format_date, format_number, format_percent, format_period, t
from .plots import plot_cohorts, plot_funnel, plot_group_rates, plot_rate_heatmap


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


def funnel_modes(lang: str) -> dict[str, str]:
    """The two ways of counting a stage as reached, as the report names them."""
    return {m: t(f"fn.mode.{m}", lang) for m in ("any", "strict")}


def show_funnel(run, r: FunnelResult, labels: dict[str, str]) -> None:
    run.heading("fn.funnel")
    run.say("fn.modes" if r.from_history else "fn.no_history")
    run.say_history_source()
    if len(r.unmapped):
        run.say("fn.unmapped", n=format_number(int(r.unmapped["rows"].sum()), run.lang),
                names=", ".join(map(str, r.unmapped["stage"].head(8))))
    shown = r.funnel.assign(stage=r.funnel["stage"].map(lambda s: labels.get(s, s)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, percent=("conversion_rate", "cumulative_rate"),
              translate={"mode": "fn.mode"})
    run.figure(plot_funnel(r.funnel, labels=labels, mode_labels=funnel_modes(run.lang), title=run.t("fn.funnel_chart")))


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
    w = r.rates
    run.heading("fn.rates")
    rows = [("fn.rate.closed", run.percent(w["closed_win_rate"])), ("fn.rate.cohort", run.percent(w["cohort_win_rate"])),
            ("fn.rate.cycle", run.number(w["cycle_days"])), ("fn.rate.open", run.number(w["open"])),
            ("fn.rate.avg_won", run.number(w["avg_won_amount"])), ("fn.rate.velocity", run.number(w["velocity_per_day"]))]
    run.table(pd.DataFrame({"measure": [run.t(k) for k, _ in rows], "value": [v for _, v in rows]}),
              labels={"measure": "col.measure", "value": "col.value"})
    if len(r.cohorts):
        run.say("fn.cohort_note", as_of=format_date(r.as_of, run.lang))
        run.figure(plot_cohorts(run.periods(r.cohorts.tail(18)), title=run.t("fn.cohort_chart")))


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


def show_breakdowns(run, r: FunnelResult, labels: dict[str, str]) -> None:
    """Win rates by owner (shrunk toward the team), source and segment with intervals, and each group's stage
    conversion as a heatmap."""
    for col, rates in r.win_rates_by.items():
        run.heading(f"fn.by.{col}", level=3)
        if col == "owner":
            run.say("fn.shrink_note")
            run.figure(plot_group_rates(rates, title=run.t("fn.by.owner"),
                                        labels={"raw": run.t("fn.legend.raw"), "shrunk": run.t("fn.legend.shrunk")}))
        else:
            run.table(rates, labels={c: f"col.{c}" for c in rates.columns},
                      percent=("win_rate", "ci_low", "ci_high", "shrunk_win_rate"))
        if col in r.funnel_by:
            run.figure(plot_rate_heatmap(conversion_matrix(r.funnel_by[col], labels), title=run.t("fn.group_heatmap")))


def conversion_heatmap(ch: ConversionHistory, labels: dict[str, str], last: int = 12) -> pd.DataFrame:
    """Stage (rows) x period (columns) conversion of the latest ``last`` mature periods."""
    m = ch.limits[ch.limits["mature"] & ch.limits["stage"].isin(ch.order)]
    keep = sorted(set(m["period"]))[-last:]
    table = m[m["period"].isin(keep)].pivot(index="stage", columns="period", values="conversion")
    table = table.reindex(ch.order)
    table.index = [f"{labels.get(s, s)} ({ch.windows[s]} d)" for s in ch.order]
    return table


def bottleneck_sentence(ch: ConversionHistory, lang: str, labels: dict[str, str], z_alert: float = 2.0) -> str | None:
    """The stage converting furthest below its own history in the latest mature period (20_funnel)."""
    b = below_own_history(ch.limits, ch.order).dropna(subset=["z"])
    if b.empty:
        return None
    worst = b.iloc[0]
    values = dict(stage=labels.get(worst["stage"], worst["stage"]), period=format_period(worst["period"], lang),
                  p=format_percent(worst["conversion"], lang), usual=format_percent(worst["usual"], lang),
                  z=f"{worst['z']:.1f}", days=ch.windows[worst["stage"]])
    return t("fn.bottleneck" if worst["z"] < -z_alert else "fn.no_bottleneck", lang, **values)


def show_conversion_history(run, ch: ConversionHistory, labels: dict[str, str]) -> None:
    """The conversion heatmap by month and each stage against its own history (20_funnel)."""
    run.heading("fn.conversion_history")
    run.say("fn.conversion_history_note")
    heatmap = conversion_heatmap(ch, labels)
    if heatmap.notna().any().any():
        run.figure(plot_rate_heatmap(run.periods(heatmap), title=run.t("fn.conversion_heatmap")))
    else:
        run.say("fn.no_mature_month")
    b = below_own_history(ch.limits, ch.order)
    shown = b.assign(stage=b["stage"].map(lambda s: labels.get(s, s)))
    run.table(shown, labels={c: f"col.{c}" for c in shown.columns}, percent=("conversion", "usual"))
