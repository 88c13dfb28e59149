"""The notebooks' session: the run's pipeline, and its results shown to stakeholders in the report language."""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML, Markdown, display
from pandas.io.formats.style import Styler

from .. import files
from ..config import Params
from ..fonts import glyph_notice, is_glyph_warning, missing_glyphs
from ..i18n import catalogue, format_date, format_number, format_p, format_percent, format_period, is_period, t, to_html
from ..pipeline import RUN_CACHE, Pipeline, load
from .plots import set_plot_theme


#: The reports that sum money, and the labels of money columns and figures: with a known currency the report says it
#: under its title and each label carries it ("amount (USD)").
MONEY_NOTEBOOKS = ("00_data_quality", "20_funnel", "60_forecast_monitoring")
MONEY_LABELS = frozenset({"col.amount", "col.expected_amount", "col.crm_weighted", "fn.rate.avg_won",
                          "fn.rate.velocity", "dq.amount_chart", "mon.waterfall_chart_amount"})


class RunContext:
    """What a notebook needs from its run: the pipeline, the report language, and where results go.

    Made by :func:`open_run`. ``run.pipeline`` holds the data and the analyses (:class:`funnel_lab.Pipeline`); the
    methods below show them to stakeholders in the report language and write the run's files.
    """

    def __init__(self, pipeline: Pipeline, *, params_file: Path, out_root: Path, notebook: str | None) -> None:
        self.pipeline = pipeline
        self.params_file = params_file
        self.notebook = notebook
        self.run_dir = out_root / pipeline.params.run_name
        self.data_dir = self.run_dir / "data"
        self._tables = 0

    @property
    def params(self) -> Params:
        return self.pipeline.params

    @property
    def history_dir(self) -> Path:
        """The run history's folder: ``monitoring.history``, else ``history/`` in the run's folder."""
        return Path(self.params.monitoring.history or self.run_dir / "history")

    @property
    def lang(self) -> str:
        return self.params.language

    @property
    def currency(self) -> str | None:
        """The one currency of the opportunities' amounts (None when the export names none)."""
        if "opportunities" not in self.params.tables():
            return None
        return self.pipeline.cleaned_table("opportunities").currency

    def t(self, key: str, **values: Any) -> str:
        """The catalogue message ``key`` in the report language; a money label names the currency, if known."""
        text = t(key, self.lang, **values)
        if key in MONEY_LABELS and self.currency:
            return f"{text} ({self.currency})"
        return text

    def number(self, x: float | None, digits: int = 0) -> str:
        return format_number(x, self.lang, digits=digits)

    def percent(self, x: float | None, digits: int = 1) -> str:
        return format_percent(x, self.lang, digits=digits)

    def periods(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` for a chart, its months, quarters or weeks (index, columns, a ``period`` column) written as the
        report language writes them (``2026年5月``)."""
        if self.lang == "en":
            return df
        name = lambda v: format_period(v, self.lang) if is_period([v]) else v  # noqa: E731
        out = df.rename(index=name, columns=name)
        return out.assign(period=out["period"].map(name)) if "period" in out.columns else out

    def stage_labels(self) -> dict[str, str]:
        """Stage -> its label in the report language (:meth:`funnel_lab.Pipeline.stage_labels`)."""
        return self.pipeline.stage_labels(self.lang)

    # ------------------------------------------------------------------ display

    def title(self) -> None:
        """The report's heading, the question it answers, and the run's title."""
        title = html.escape(self.params.title or self.params.run_name)
        if self.notebook is None:
            display(HTML(f"<h1>{title}</h1>"))
            return
        sub = f" — {html.escape(self.params.title)}" if self.params.title else ""
        money = ""
        if self.notebook in MONEY_NOTEBOOKS and self.currency:
            # amounts that were in another currency (or none, converted by their rate); a filled blank is not one
            d = self.pipeline.cleaned_table("opportunities").data
            converted = int((d["amount"].notna() & d["currency"].ne(self.currency)).sum()) if "currency" in d else 0
            key = "report.currency_converted" if converted else "report.currency"
            money = f"<p>{html.escape(self.t(key, currency=self.currency, n=self.number(converted)))}</p>"
        display(HTML(
            f"<h1>{html.escape(self.t('report.' + self.notebook))}{sub}</h1>"
            f"<p><em>{html.escape(self.t('question.' + self.notebook))}</em></p>{money}"
        ))

    def figure(self, chart) -> None:
        """Show a chart (a matplotlib Axes or Figure from :mod:`funnel_lab.reports.plots`) and let it go.

        Characters that no font could draw (boxes in the picture) get a notice under the chart, which the runner
        also puts at the top of the report and into the manifest.
        """
        import matplotlib.pyplot as plt

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plt.show()
        plt.close(getattr(chart, "figure", chart))
        for w in caught:
            if not is_glyph_warning(w):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        chars = "".join(missing_glyphs(caught))
        if chars:
            display(HTML(glyph_notice(chars, self.lang)), metadata={"funnel_lab": {"missing_glyphs": chars}})

    def heading(self, key: str, level: int = 2, **values: Any) -> None:
        display(Markdown(f"{'#' * level} {self.t(key, **values)}"))

    def paragraph(self, text: str) -> None:
        """A sentence already in the report language (e.g. composed from catalogue pieces), as a paragraph."""
        display(Markdown(text))

    def say(self, key: str, **values: Any) -> None:
        """A catalogue sentence as a paragraph (Markdown allowed in the message)."""
        display(Markdown(self.t(key, **values)))

    def say_history_source(self) -> None:
        """Where the stage history was built from snapshots, say how coarse its dates are."""
        from ..data.snapshots import gap_days

        snapshots = self.pipeline.table("stage_history").snapshots if "stage_history" in self.params.tables() else None
        if snapshots is None:
            return
        dates, gap = snapshots["snapshot_date"], gap_days(snapshots["snapshot_date"])
        self.say("history.from_snapshots", n=self.number(dates.nunique()), first=format_date(dates.min(), self.lang),
                 last=format_date(dates.max(), self.lang), gap=self.number(gap if pd.notna(gap) else 0))

    def banner(self, key: str, *, kind: str = "error", **values: Any) -> None:
        """A coloured box (``error`` or ``note``) that a reader cannot miss, e.g. a broken experiment."""
        display(HTML(f'<div class="fl-banner fl-banner-{kind}">{to_html(self.t(key, **values))}</div>'))

    def summary(self, sentences: list[str]) -> None:
        """The summary box that opens a report: the few sentences a stakeholder must read."""
        display(Markdown("\n\n".join(sentences)), metadata={"funnel_lab": "summary"})

    def table(self, df: pd.DataFrame, *, labels: dict[str, str] | None = None, percent: tuple[str, ...] = (),
              translate: dict[str, str] | None = None, empty: str | None = None,
              pvalues: tuple[str, ...] = ()) -> None:
        """A table for stakeholders.

        Parameters
        ----------
        df : DataFrame
        labels : dict, optional
            Column -> catalogue key of its heading.
        percent : tuple of str
            Columns holding shares, shown as percentages.
        translate : dict, optional
            Column -> catalogue prefix: its values are shown as ``t(prefix + "." + value)``.
        empty : str, optional
            Catalogue key of the sentence shown instead of an empty table.
        pvalues : tuple of str
            Columns holding p-values, shown as ``0.0019`` or ``< 0.0001`` (never a rounded ``0.00``).
        """
        if df.empty and empty:
            self.say(empty)
            return
        shown = df.copy()
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        for col, prefix in (translate or {}).items():
            shown[col] = shown[col].map(lambda v, p=prefix: self.t(f"{p}.{v}") if f"{p}.{v}" in catalogue() else v)
        for col in shown.columns:
            if self.lang == "zh" and shown[col].dtype.kind in "OT" and is_period(shown[col].dropna().tolist()):
                shown[col] = shown[col].map(lambda p: format_period(p, self.lang) if pd.notna(p) else p)
            elif col in percent:
                shown[col] = shown[col].map(self.percent)
            elif col in pvalues:
                shown[col] = shown[col].map(lambda x: "" if pd.isna(x) else format_p(float(x)).removeprefix("= "))
            elif pd.api.types.is_integer_dtype(df[col]):
                shown[col] = shown[col].map(lambda x: "" if pd.isna(x) else f"{x:,}")
            elif pd.api.types.is_float_dtype(df[col]):
                whole = bool((df[col].dropna() % 1 == 0).all())  # counts and amounts in whole units: no ".00"
                shown[col] = shown[col].map(lambda x, w=whole: "" if pd.isna(x) else f"{x:,.0f}" if w or abs(x) >= 1e6
                                            else f"{x:,.2f}")
            elif pd.api.types.is_bool_dtype(df[col]):
                shown[col] = shown[col].map(lambda x: self.t("value.yes") if x is True else self.t("value.no"))
        shown = shown.astype("object").where(shown.notna(), "")
        heads = {c: self.t(k) for c, k in (labels or {}).items() if c in shown.columns}
        # a table by month has months as its headings
        heads |= {c: format_period(c, self.lang) for c in shown.columns if c not in heads and is_period([c])}
        right = list(dict.fromkeys(heads.get(c, c) for c in numeric + list(percent) if c in df.columns))
        shown = shown.rename(columns=heads)
        self._tables += 1  # a stable id per table, so that reruns give identical HTML styles
        styler = Styler(shown, uuid=f"fl{self._tables}", cell_ids=False)
        styler = styler.hide(axis="index").set_table_attributes('class="fl-table"')
        if right:
            styler = styler.set_properties(subset=right, **{"text-align": "right"})
        display(HTML(styler.to_html()))

    # ------------------------------------------------------------------ outputs

    def save(self, outputs: dict[str, pd.DataFrame | dict]) -> list[Path]:
        """Write a result's ``outputs`` into ``data/`` for BI tools and checks: ``.csv`` from a DataFrame,
        ``.json`` from a dict."""
        return [files.write_json(self.data_dir / name, obj) if name.endswith(".json")
                else files.write_csv(self.data_dir / name, obj) for name, obj in outputs.items()]

    def headlines(self, items: dict[str, float | int]) -> Path:
        """Numbers for the run's index page, by catalogue key (``headline.<key>``)."""
        # pairs, not a mapping: write_json sorts keys, and the order here is the order on the page; a number that
        # could not be measured (NaN) is left off rather than shown as "nan"
        pairs = [[k, v] for k, v in items.items() if v is not None and v == v]
        return files.write_json(self.run_dir / ".headlines" / f"{self.notebook or 'run'}.json", pairs)


def open_run(params_file: str | Path, *, out_dir: str | Path | None = None, notebook: str | None = None) -> RunContext:
    """The session of one notebook: its run's pipeline, and plotting prepared for the report language.

    Parameters
    ----------
    params_file : path
        A params YAML (the runner passes the resolved params of the run).
    out_dir : path, optional
        Root of the reports; ``reports/`` in the working directory when omitted (DESIGN.md).
    notebook : str, optional
        The notebook's name, e.g. ``"00_data_quality"`` (its title and headline numbers); without it, the session
        of the run as a whole.

    Examples
    --------
    >>> run = open_run("params/demo.yaml")  # doctest: +SKIP
    >>> run.pipeline.funnel().summary  # doctest: +SKIP
    """
    set_plot_theme()
    root = Path(out_dir) if out_dir else Path.cwd() / "reports"
    pipeline = load(params_file)
    # the steps the runner's plan computed for this run are read from its cache instead of being computed again
    pipeline.cache_dir = root / pipeline.params.run_name / RUN_CACHE
    return RunContext(pipeline, params_file=Path(params_file), out_root=root, notebook=notebook)
