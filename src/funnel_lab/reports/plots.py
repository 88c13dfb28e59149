"""Report figures: ``plot_x(data, *, ..., ax=None) -> Axes``, computation kept out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from ..fonts import FONT_STACK, prepare_fonts

# the CJK fonts are known to matplotlib as soon as the charts are imported, in JupyterLab too (once per process)
prepare_fonts()



def set_plot_theme() -> None:
    """Seaborn's theme with fonts that draw Chinese labels (``set_theme`` resets fonts, so set them together)."""
    import seaborn as sns

    sns.set_theme(
        style="whitegrid",
        context="notebook",
        rc={
            "font.family": "sans-serif",
            "font.sans-serif": FONT_STACK,
            "axes.unicode_minus": False,
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (9, 4.5),
        },
    )
    plt.rcParams["svg.hashsalt"] = "funnel_lab"


def _axes(ax: Axes | None, *, height: float) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(9, height), layout="constrained")
    return ax


def plot_missing(profile: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Horizontal bars of the missing share per column, most incomplete at the top.

    Parameters
    ----------
    profile : DataFrame
        From :func:`funnel_lab.data.quality.column_profile` (``column``, ``missing_share``).
    title : str
        Axes title.
    ax : Axes, optional
        Where to draw; a new figure when omitted.
    """
    data = profile.sort_values(["missing_share", "column"], ascending=[False, True])
    ax = _axes(ax, height=max(2.5, 0.28 * len(data) + 1))
    ax.barh(data["column"], data["missing_share"], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.05, float(data["missing_share"].max()) * 1.15))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    for y, share in enumerate(data["missing_share"]):
        if share > 0:
            ax.annotate(f"{share:.1%}", (share, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_ylabel("")
    ax.set_title(title, loc="left")
    return ax


def plot_bars(values: pd.Series, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Horizontal bars of a labelled count (index = label), largest at the top, each bar annotated."""
    ax = _axes(ax, height=max(2.0, 0.3 * len(values) + 1))
    ax.barh([str(i) for i in values.index], values.to_numpy(), color="#4c72b0")
    ax.invert_yaxis()
    for y, v in enumerate(values.to_numpy()):
        ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_title(title, loc="left")
    return ax


def plot_amounts(amount: pd.Series, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Histogram of deal amounts on a log scale (amounts are log-normal: a linear axis hides the small deals)."""
    ax = _axes(ax, height=3.2)
    v = amount.dropna()
    v = v[v > 0]
    if len(v):
        ax.hist(v, bins=np.logspace(np.log10(v.min()), np.log10(v.max()) + 1e-9, 40), color="#4c72b0")
        ax.set_xscale("log")
    ax.set_title(title, loc="left")
    return ax


def plot_win_rates(metrics: pd.DataFrame, *, labels: dict[str, str] | None = None, title: str = "",
                   ax: Axes | None = None) -> Axes:
    """Closed win rate per stage with its 95% interval; the stage's deal count under each point.

    Parameters
    ----------
    metrics : DataFrame
        ``stage``, ``n_closed``, ``win_rate``, ``ci_low``, ``ci_high`` (from :func:`funnel_lab.analysis.stages.stage_metrics`).
    labels : dict, optional
        Stage -> label shown on the axis.
    """
    data = metrics[metrics["n_closed"] > 0].reset_index(drop=True)
    ax = _axes(ax, height=3.6)
    x = np.arange(len(data))
    err = np.vstack([data["win_rate"] - data["ci_low"], data["ci_high"] - data["win_rate"]])
    ax.errorbar(x, data["win_rate"], yerr=err, fmt="o", color="#4c72b0", capsize=4, lw=1.5, ms=7)
    ax.plot(x, data["win_rate"], color="#4c72b0", alpha=0.35)
    names = [(labels or {}).get(s, s) for s in data["stage"]]
    ax.set_xticks(x, [f"{n}\nn={c:,}" for n, c in zip(names, data["n_closed"])])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, min(1, float(data["ci_high"].max()) * 1.15 + 0.02) if len(data) else 1)
    ax.set_title(title, loc="left")
    return ax


def plot_stage_mix(shares: pd.DataFrame, *, labels: dict[str, str] | None = None, title: str = "",
                   ax: Axes | None = None) -> Axes:
    """Stacked shares of each stage by creation month (rows: months, columns: stages)."""
    ax = _axes(ax, height=3.6)
    bottom = np.zeros(len(shares))
    colors = plt.get_cmap("Blues")(np.linspace(0.25, 0.95, max(1, shares.shape[1])))
    for color, col in zip(colors, shares.columns):
        ax.bar(shares.index.astype(str), shares[col], bottom=bottom, color=color, label=(labels or {}).get(col, col))
        bottom += shares[col].to_numpy()
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title(title, loc="left")
    return ax


def plot_funnel(funnel: pd.DataFrame, *, labels: dict[str, str] | None = None,
                mode_labels: dict[str, str] | None = None, title: str = "", ax: Axes | None = None) -> Axes:
    """Deals reaching each stage, ``any`` and ``strict`` side by side (from :func:`funnel_lab.analysis.funnel.funnel_table`);
    ``mode_labels`` names the two in the legend."""
    modes = [m for m in ("any", "strict") if m in set(funnel["mode"])]
    stages = list(dict.fromkeys(funnel["stage"]))
    ax = _axes(ax, height=0.55 * len(stages) + 1.2)
    y = np.arange(len(stages))
    height = 0.8 / len(modes)
    for i, (mode, color) in enumerate(zip(modes, ("#4c72b0", "#dd8452"))):
        part = funnel[funnel["mode"] == mode].set_index("stage").reindex(stages)
        ax.barh(y + i * height, part["reached"], height=height, color=color, label=(mode_labels or {}).get(mode, mode))
        for yy, v in zip(y + i * height, part["reached"]):
            ax.annotate(f"{int(v):,}", (v, yy), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y + height * (len(modes) - 1) / 2, [(labels or {}).get(s, s) for s in stages])
    ax.invert_yaxis()
    ax.legend(frameon=False, loc="lower right")
    ax.set_title(title, loc="left")
    return ax


def plot_rate_heatmap(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Heatmap of shares (rows x columns), annotated when it fits; a missing cell stays blank (not measured)."""
    import seaborn as sns

    ax = _axes(ax, height=0.3 * len(table) + 1.5)
    sns.heatmap(table.astype(float), ax=ax, cmap="Blues", annot=len(table.columns) <= 13, fmt=".0%", cbar=False,
                annot_kws={"fontsize": 7}, mask=table.isna())
    ax.set_yticklabels([str(i) for i in table.index], rotation=0)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title, loc="left")
    return ax


def plot_cohorts(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Cumulative win share by creation month (rows) and months elapsed (columns); blank = immature."""
    return plot_rate_heatmap(table, title=title, ax=ax)


def plot_group_rates(rates: pd.DataFrame, *, title: str = "", top: int = 25, labels: dict[str, str] | None = None,
                     ax: Axes | None = None) -> Axes:
    """Raw win rate with its interval (grey) and the shrunk rate (blue) per group, best shrunk rate first;
    ``labels`` names the legend entries ``raw`` and ``shrunk``."""
    names = {"raw": "raw", "shrunk": "shrunk"} | (labels or {})
    data = rates.head(top).iloc[::-1]
    ax = _axes(ax, height=0.3 * len(data) + 1.2)
    y = np.arange(len(data))
    ax.hlines(y, data["ci_low"], data["ci_high"], color="#bbbbbb", lw=2)
    ax.plot(data["win_rate"], y, "o", color="#999999", ms=4, label=names["raw"])
    ax.plot(data["shrunk_win_rate"], y, "D", color="#4c72b0", ms=5, label=names["shrunk"])
    ax.set_yticks(y, [f"{g} (n={n:,})" for g, n in zip(data["group"], data["closed"])])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(frameon=False, loc="lower right")
    ax.set_title(title, loc="left")
    return ax


def plot_forecast(forecast: pd.DataFrame, *, labels: dict[str, str] | None = None, title: str = "",
                  number=None, ax: Axes | None = None) -> Axes:
    """Expected won revenue per period with its 10-90% simulated range (and the CRM's weighting as a mark).

    ``labels`` names the legend entries ``expected``, ``range`` and ``crm`` in the report's language; ``number``
    writes the axis' amounts (``12,500,000`` by default; ``1,250万`` in a Chinese report).
    """
    names = {"expected": "expected", "range": "p10-p90", "crm": "CRM weighted"} | (labels or {})
    ax = _axes(ax, height=3.4)
    x = np.arange(len(forecast))
    ax.bar(x, forecast["expected_amount"], color="#4c72b0", alpha=0.85, label=names["expected"])
    ax.errorbar(x, forecast["p50"], yerr=[forecast["p50"] - forecast["p10"], forecast["p90"] - forecast["p50"]],
                fmt="none", ecolor="#222222", capsize=5, label=names["range"])
    if forecast["crm_weighted"].notna().any():
        ax.plot(x, forecast["crm_weighted"], "D", color="#dd8452", label=names["crm"])
    ax.set_xticks(x, forecast["period"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: number(v) if number else f"{v:,.0f}"))
    ax.legend(frameon=False)
    ax.set_title(title, loc="left")
    return ax


def plot_variant_rates(binary: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Conversion rate per variant with its 95% interval (from :func:`funnel_lab.analysis.abtest.binary_comparison`)."""
    ax = _axes(ax, height=0.5 * len(binary) + 1.3)
    y = np.arange(len(binary))
    ax.hlines(y, binary["ci_low"], binary["ci_high"], color="#4c72b0", lw=3, alpha=0.5)
    ax.plot(binary["rate"], y, "o", color="#4c72b0", ms=7)
    for yy, rate in zip(y, binary["rate"]):
        ax.annotate(f"{rate:.2%}", (rate, yy), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
    ax.set_yticks(y, [f"{v} (n={n:,})" for v, n in zip(binary["variant"], binary["n"])])
    ax.invert_yaxis()
    ax.margins(y=0.4)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_title(title, loc="left")
    return ax


def plot_odds_ratios(coefficients: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Odds ratio per term with its interval on a log axis (1 = no effect), largest at the top."""
    data = coefficients.sort_values("odds_ratio")
    ax = _axes(ax, height=0.32 * len(data) + 1.2)
    y = np.arange(len(data))
    ax.hlines(y, data["or_ci_low"], data["or_ci_high"], color="#4c72b0", lw=2, alpha=0.6)
    ax.plot(data["odds_ratio"], y, "o", color="#4c72b0")
    ax.axvline(1.0, color="#999999", lw=1, ls="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "235" else ""))
    ax.set_yticks(y, data["term"])
    ax.set_title(title, loc="left")
    return ax


def plot_calibration(calibration: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Axes:
    """Observed rate against mean predicted probability per decile; the diagonal is perfect calibration."""
    ax = _axes(ax, height=3.6)
    top = float(max(calibration["mean_predicted"].max(), calibration["observed_rate"].max(), 0.05)) * 1.05
    ax.plot([0, top], [0, top], color="#999999", lw=1, ls="--")
    ax.plot(calibration["mean_predicted"], calibration["observed_rate"], "o-", color="#4c72b0")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, loc="left")
    return ax


def plot_residuals(fitted: pd.Series, residuals: pd.Series, *, title: str = "") -> plt.Figure:
    """Residuals against fitted values, and a normal Q-Q plot of the residuals."""
    from scipy import stats

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    left.scatter(fitted, residuals, s=4, alpha=0.3, color="#4c72b0")
    left.axhline(0, color="#999999", lw=1, ls="--")
    (theory, ordered), (slope, intercept, _) = stats.probplot(residuals.to_numpy(), dist="norm")
    right.scatter(theory, ordered, s=4, alpha=0.3, color="#4c72b0")
    right.plot(theory, slope * theory + intercept, color="#999999", lw=1, ls="--")
    fig.suptitle(title, x=0.02, ha="left")
    return fig


def plot_gains(gains: pd.DataFrame, *, labels: dict[str, str] | None = None, title: str = "",
               ax: Axes | None = None) -> Axes:
    """Cumulative gains: the share of wins found when working each list from the top, against working at random.

    ``gains`` holds ``share_contacted``, one column per list and ``random`` (:func:`~funnel_lab.analysis.targeting.
    gains_table`); ``labels`` names the columns in the legend (the first list is drawn strongest)."""
    lists = [c for c in gains.columns if c not in ("share_contacted", "random")]
    names = {c: c for c in gains.columns} | (labels or {})
    ax = _axes(ax, height=3.8)
    for i, (col, color) in enumerate(zip(lists, ("#4c72b0", "#55a868", "#dd8452", "#8172b3"))):
        ax.plot(gains["share_contacted"], gains[col], color=color, lw=2 if i == 0 else 1.3, label=names[col])
    ax.plot(gains["share_contacted"], gains["random"], color="#999999", lw=1, ls="--", label=names["random"])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(frameon=False, loc="lower right")
    ax.set_title(title, loc="left")
    return ax


def plot_qini(qini: pd.DataFrame, *, labels: dict[str, str] | None = None, title: str = "",
              ax: Axes | None = None) -> Axes:
    """The Qini curve: extra conversions from the action when the deals the model ranks first get it, against
    giving it at random (:func:`~funnel_lab.analysis.uplift.qini_curve`)."""
    names = {"incremental": "model", "random": "random"} | (labels or {})
    ax = _axes(ax, height=3.6)
    ax.plot(qini["share_targeted"], qini["incremental"], color="#4c72b0", lw=2, label=names["incremental"])
    ax.plot(qini["share_targeted"], qini["random"], color="#999999", lw=1, ls="--", label=names["random"])
    ax.axhline(0, color="#cccccc", lw=0.8)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.legend(frameon=False, loc="lower right")
    ax.set_title(title, loc="left")
    return ax


def plot_tree_diagram(nodes: pd.DataFrame, *, yes: str = "yes", no: str = "no", deals: str = "deals") -> plt.Figure:
    """The decision tree as boxes: each split's question, each leaf's win rate and size, coloured by win rate.

    Parameters
    ----------
    nodes : DataFrame
        From :func:`funnel_lab.analysis.targeting.tree_nodes`.
    yes, no, deals : str
        Words for the branch labels and the leaf size (the report's language).
    """
    import textwrap

    from matplotlib import colormaps

    n_leaves, depth = int(nodes["leaf"].sum()), int(nodes["depth"].max())
    fig, ax = plt.subplots(figsize=(11, 1.25 * depth + 1.2), layout="constrained")
    cmap = colormaps["RdYlBu"]  # low win rates red, high blue
    pos = nodes.set_index("node")
    width = max(n_leaves - 1, 1)
    for _, r in nodes[nodes["parent"] >= 0].iterrows():
        p = pos.loc[r["parent"]]
        ax.plot([p["x"] / width, r["x"] / width], [-p["depth"], -r["depth"]], color="#999999", lw=0.8, zorder=1)
        ax.text((p["x"] + r["x"]) / 2 / width, -(p["depth"] + r["depth"]) / 2, yes if r["yes_branch"] else no,
                fontsize=6.5, ha="center", va="center", color="#555555", zorder=3,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})
    size = 7 if n_leaves <= 10 else 6
    # a split may use the width between its two children: wrap its question to that many characters
    span = nodes[nodes["parent"] >= 0].groupby("parent")["x"].agg(lambda x: x.max() - x.min())
    chars_per_leaf = 160 / max(n_leaves, 1)
    for _, r in nodes.iterrows():
        wrap = max(10, int(0.8 * chars_per_leaf * (span.get(r["node"], 1) + 1)))
        rate = r["win_rate"]
        colour = cmap(0.1 + 0.8 * float(rate)) if rate == rate else "#eeeeee"  # the darkest ends hide the text
        if r["leaf"]:
            text = f"{rate:.0%}\n{r['n']:,} {deals}" if rate == rate else f"–\n0 {deals}"
        else:
            text = "\n".join(textwrap.wrap(r["question"], wrap, break_long_words=False, break_on_hyphens=False)[:3])
        ax.text(r["x"] / width, -r["depth"], text, fontsize=size, ha="center", va="center", zorder=4,
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "#666666", "lw": 0.6})
    ax.set_xlim(-0.6 / width, 1 + 0.6 / width)
    ax.set_ylim(-depth - 0.5, 0.5)
    ax.axis("off")
    return fig


def plot_control_charts(limits: pd.DataFrame, metric: str, *, stages: list[str], labels: dict[str, str] | None = None,
                        title: str = "", last: int = 52, date_label=None) -> plt.Figure:
    """One control chart per stage: the metric per period, its center and limits, breaches marked in red.

    Parameters
    ----------
    limits : DataFrame
        From :func:`funnel_lab.analysis.monitoring.control_limits`.
    metric : {"entered", "conversion"}
        Which chart: entries (c-chart) or conversion (p-chart).
    stages : list of str
        The stages to draw, one panel each.
    last : int
        The most recent periods shown.
    date_label : callable, optional
        Writes a tick's day (a datetime) on the time axis, e.g. ``2026年5月`` in a Chinese report; matplotlib's
        ``2026-05`` by default.
    """
    fig, axes = plt.subplots(len(stages), 1, figsize=(9, 1.9 * len(stages) + 0.6), sharex=True, layout="constrained",
                             squeeze=False)
    periods = sorted(set(limits["period_start"]))[-last:]
    for ax, stage in zip(axes[:, 0], stages):
        s = limits[(limits["stage"] == stage) & limits["period_start"].isin(periods)].sort_values("period_start")
        x, v = s["period_start"], s[metric].astype(float)
        judged = s["complete"] if metric == "entered" else s["mature"] & (s["entered"] > 0)
        v = v.where(judged)
        ax.fill_between(x, s[f"{metric}_lcl"].astype(float), s[f"{metric}_ucl"].astype(float), color="#4c72b0",
                        alpha=0.15, lw=0)
        ax.plot(x, s[f"{metric}_center"].astype(float), color="#4c72b0", lw=1, ls="--")
        ax.plot(x, v, "o-", color="#333333", ms=3, lw=1)
        out = judged & ((v < s[f"{metric}_lcl"]) | (v > s[f"{metric}_ucl"]))
        ax.plot(x[out], v[out], "o", color="#c44e52", ms=6)
        ax.set_ylabel((labels or {}).get(stage, stage), rotation=0, ha="right", va="center")
        if metric == "conversion":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0, 0].set_title(title, loc="left")
    axes[-1, 0].tick_params(axis="x", rotation=30)
    if date_label:
        import matplotlib.dates as mdates

        axes[-1, 0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: date_label(mdates.num2date(x))))
    return fig


def plot_run_trends(table: pd.DataFrame, dates: list[str], *, labels: dict[str, str] | None = None, title: str = "",
                    value_label=None) -> plt.Figure:
    """One small panel per number: its value at each of the last runs (``table``:
    :meth:`~funnel_lab.history.changes.SinceLastRun.numbers_table`), this run marked; ``value_label(key, value)``
    writes the axis ticks."""
    n = len(table)
    cols = min(4, max(n, 1))
    rows = -(-n // cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.7 * rows + 0.5), layout="constrained", squeeze=False)
    x = np.arange(len(dates))
    for ax, r in zip(axes.flat, table.to_dict("records")):
        y = np.asarray(r["trend"], dtype=float)
        ax.plot(x, y, "o-", color="#4c72b0", ms=3, lw=1)
        ax.plot(x[-1:], y[-1:], "o", color="#c44e52", ms=6)
        ax.set_title((labels or {}).get(r["key"], r["key"]), fontsize=9, loc="left")
        ax.set_xticks([x[0], x[-1]] if len(x) > 1 else [x[0]], [dates[0], dates[-1]] if len(x) > 1 else [dates[0]],
                      fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        if value_label:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, key=r["key"]: value_label(key, v)))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title, x=0.01, ha="left")
    return fig


def plot_waterfall(waterfall: pd.DataFrame, *, value: str = "amount", labels: dict[str, str] | None = None,
                   title: str = "", number=None, ax: Axes | None = None) -> Axes:
    """The pipeline from start to end: level bars for start and end, floating bars for each flow between.

    ``value`` is the column drawn (``amount`` or ``deals``); the other one is written in brackets.
    """
    from ..analysis.monitoring import STEP_SIGN

    other = "deals" if value == "amount" else "amount"
    number = number or (lambda x: f"{x:,.0f}")
    v = waterfall[value].astype(float)
    ax = _axes(ax, height=3.6)
    level = 0.0
    for i, (step, height, note) in enumerate(zip(waterfall["step"], v, waterfall[other])):
        sign = STEP_SIGN.get(step)
        if sign is None:  # start or end: a level
            bottom, color, level = 0.0, "#4c72b0", height
        else:
            bottom = level if sign > 0 else level - height
            color = "#55a868" if sign > 0 else "#c44e52"
            level += sign * height
        ax.bar(i, height, bottom=bottom, color=color, width=0.6)
        mark = "" if sign is None else "+" if sign > 0 else "-"
        ax.annotate(f"{mark}{number(height)}\n({number(note)})", (i, bottom + height), xytext=(0, 2),
                    textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(waterfall)), [(labels or {}).get(s, s) for s in waterfall["step"]])
    # the flows are small beside the levels: start the axis just below the lowest point so that they show
    low = min(v.iloc[0], v.iloc[-1], level - v.max())
    high = max(v.iloc[0], v.iloc[-1]) + v.iloc[1:-1].sum()
    span = max(high - low, 1.0)
    ax.set_ylim(max(0.0, low - 0.25 * span), high + 0.15 * span)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: number(x)))
    ax.set_title(title, loc="left")
    return ax
