"""The notebooks' handle on a run: params, language, inputs, and where results go."""

from __future__ import annotations

import html
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler
from IPython.display import HTML, Markdown, display

from . import files
from .activities import (ActivityLog, activity_log_for, activity_log_key, load_saved_activity_log, saved_log_dir,
                         with_features)
from .config import Params, ParamsError, load_params
from .i18n import catalogue, format_number, format_p, format_percent, set_plot_theme, t
from .clean import Cleaned, clean_tables
from .funnel import data_as_of
from .ingest import Table, load_tables, source_sha256
from .schemas import validate_tables
from .stages import StageModel, assign_stages, load_models


class RunContext:
    """What a notebook needs from its run; made by :func:`open_run`."""

    def __init__(self, params: Params, *, params_file: Path, out_root: Path, notebook: str) -> None:
        self.params = params
        self.params_file = params_file
        self.notebook = notebook
        self.run_dir = out_root / params.run_name
        self.data_dir = self.run_dir / "data"
        self._tables = 0

    @property
    def lang(self) -> str:
        return self.params.language

    def t(self, key: str, **values: Any) -> str:
        """The catalogue message ``key`` in the report language."""
        return t(key, self.lang, **values)

    def number(self, x: float | None, digits: int = 0) -> str:
        return format_number(x, self.lang, digits=digits)

    def percent(self, x: float | None, digits: int = 1) -> str:
        return format_percent(x, self.lang, digits=digits)

    @cached_property
    def tables(self) -> dict[str, Table]:
        """Every configured input table, read once and mapped onto canonical names."""
        return load_tables(self.params)

    @cached_property
    def cleaned(self) -> dict[str, Cleaned]:
        """Every table after cleaning (see :mod:`funnel_lab.clean`)."""
        return clean_tables(self.tables, self.params)

    @cached_property
    def activity_log(self) -> ActivityLog | None:
        """The checked activity log and its behaviour features (None without ``data.activities``): the one the
        runner kept for this run when it was computed from the same params, inputs and code, else computed here."""
        src = self.params.data.activities
        if src is None:  # (with one, the params guarantee an opportunities table)
            return None
        key = activity_log_key(self.params, self.tables, source_sha256(src), self.as_of)
        saved = load_saved_activity_log(saved_log_dir(self.run_dir), key)
        return saved if saved is not None else activity_log_for(self.params, self.cleaned, self.as_of)

    @cached_property
    def opportunities(self) -> pd.DataFrame:
        """The cleaned opportunities with their behaviour features (the table most analyses start from)."""
        return with_features(self.cleaned["opportunities"].data, self.activity_log)

    @cached_property
    def history(self) -> pd.DataFrame | None:
        """The cleaned stage history, its ids following the dedupe (a merged duplicate's rows go to the record kept)."""
        if "stage_history" not in self.cleaned:
            return None
        h = self.cleaned["stage_history"].data
        merged = self.cleaned["opportunities"].merged_ids if "opportunities" in self.cleaned else pd.Series()
        if merged.empty:
            return h
        return h.assign(opportunity_id=h["opportunity_id"].map(merged.astype("str")).fillna(h["opportunity_id"]))

    @cached_property
    def as_of(self) -> pd.Timestamp:
        """The analysis date every report of the run uses (:func:`funnel_lab.funnel.data_as_of`)."""
        return data_as_of(self.cleaned["opportunities"].data, self.history, self.params.features.as_of)

    @cached_property
    def stage_model(self) -> StageModel:
        """The params' stage model, parsed and whitelisted (nothing evaluated yet)."""
        if self.params.stages is None:
            raise ParamsError("stages: no stage model in the params")
        return load_models(self.params.stages, self.opportunities.columns)[0]

    @cached_property
    def stages(self) -> pd.DataFrame:
        """Stage per cleaned opportunity: ``opportunity_id``, ``stage``, ``stage_rank``, ``score``."""
        return assign_stages(self.opportunities, self.stage_model)

    def stage_labels(self) -> dict[str, str]:
        """Stage -> its label in the report language (``stages.labels``), won/lost and unassigned included."""
        names = list(self.params.stages.order) if self.params.stages else []
        own = self.params.stages.labels.get(self.lang, {}) if self.params.stages else {}
        return {"unassigned": self.t("stage.unassigned"), "won": self.t("headline.won"),
                "lost": self.t("headline.lost"), **{s: own.get(s, s) for s in names}}

    @cached_property
    def validation(self) -> pd.DataFrame:
        """Schema failures of the cleaned tables (empty when valid)."""
        return validate_tables(self.cleaned)

    # ------------------------------------------------------------------ display

    def title(self) -> None:
        """The report's heading, the question it answers, and the run's title."""
        sub = f" — {html.escape(self.params.title)}" if self.params.title else ""
        display(HTML(
            f"<h1>{html.escape(self.t('report.' + self.notebook))}{sub}</h1>"
            f"<p><em>{html.escape(self.t('question.' + self.notebook))}</em></p>"
        ))

    def heading(self, key: str, level: int = 2, **values: Any) -> None:
        display(Markdown(f"{'#' * level} {self.t(key, **values)}"))

    def paragraph(self, text: str) -> None:
        """A sentence already in the report language (e.g. composed from catalogue pieces), as a paragraph."""
        display(Markdown(text))

    def say(self, key: str, **values: Any) -> None:
        """A catalogue sentence as a paragraph (Markdown allowed in the message)."""
        display(Markdown(self.t(key, **values)))

    def banner(self, key: str, *, kind: str = "error", **values: Any) -> None:
        """A coloured box (``error`` or ``note``) that a reader cannot miss, e.g. a broken experiment."""
        text = html.escape(self.t(key, **values))
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)  # the catalogue's bold, the only markup used
        display(HTML(f'<div class="fl-banner fl-banner-{kind}">{text}</div>'))

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
            if col in percent:
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
        right = list(dict.fromkeys(heads.get(c, c) for c in numeric + list(percent) if c in df.columns))
        shown = shown.rename(columns=heads)
        self._tables += 1  # a stable id per table, so that reruns give identical HTML styles
        styler = Styler(shown, uuid=f"fl{self._tables}", cell_ids=False)
        styler = styler.hide(axis="index").set_table_attributes('class="fl-table"')
        if right:
            styler = styler.set_properties(subset=right, **{"text-align": "right"})
        display(HTML(styler.to_html()))

    # ------------------------------------------------------------------ outputs

    def save_csv(self, df: pd.DataFrame, name: str) -> Path:
        """Write ``data/<name>`` for BI tools and checks."""
        return files.write_csv(self.data_dir / name, df)

    def save_csvs(self, frames: dict[str, pd.DataFrame]) -> list[Path]:
        """Write several ``data/`` files at once (name -> frame)."""
        return [self.save_csv(df, name) for name, df in frames.items()]

    def save_json(self, obj: Any, name: str) -> Path:
        return files.write_json(self.data_dir / name, obj)

    def headlines(self, items: dict[str, float | int]) -> Path:
        """Numbers for the run's index page, by catalogue key (``headline.<key>``)."""
        # pairs, not a mapping: write_json sorts keys, and the order here is the order on the page; a number that
        # could not be measured (NaN) is left off rather than shown as "nan"
        pairs = [[k, v] for k, v in items.items() if v is not None and v == v]
        return files.write_json(self.run_dir / ".headlines" / f"{self.notebook}.json", pairs)


def open_run(params_file: str | Path, *, out_dir: str | Path | None = None, notebook: str) -> RunContext:
    """Load the params and prepare plotting for one notebook.

    Parameters
    ----------
    params_file : path
        A params YAML (the runner passes the resolved params of the run).
    out_dir : path, optional
        Root of the reports; ``reports/`` in the working directory when omitted (DESIGN.md).
    notebook : str
        The notebook's name, e.g. ``"00_data_quality"``.
    """
    params = load_params([params_file])
    set_plot_theme()
    root = Path(out_dir) if out_dir else Path.cwd() / "reports"
    return RunContext(params, params_file=Path(params_file), out_root=root, notebook=notebook)
