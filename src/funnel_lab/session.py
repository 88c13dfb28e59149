"""The notebooks' handle on a run: params, language, inputs, and where results go."""

from __future__ import annotations

import html
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML, Markdown, display

from . import files
from .config import Params, load_params
from .i18n import format_number, format_percent, set_plot_theme, t
from .ingest import Table, load_tables


class RunContext:
    """What a notebook needs from its run; made by :func:`open_run`."""

    def __init__(self, params: Params, *, params_file: Path, out_root: Path, notebook: str) -> None:
        self.params = params
        self.params_file = params_file
        self.notebook = notebook
        self.run_dir = out_root / params.run_name
        self.data_dir = self.run_dir / "data"

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
        """Every configured input table, read once."""
        return load_tables(self.params)

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

    def say(self, key: str, **values: Any) -> None:
        """A catalogue sentence as a paragraph (Markdown allowed in the message)."""
        display(Markdown(self.t(key, **values)))

    def summary(self, sentences: list[str]) -> None:
        """The summary box that opens a report: the few sentences a stakeholder must read."""
        display(Markdown("\n\n".join(sentences)), metadata={"funnel_lab": "summary"})

    def table(self, df: pd.DataFrame, *, labels: dict[str, str] | None = None, percent: tuple[str, ...] = ()) -> None:
        """A table with headings from the catalogue (``labels``: column -> message key) and shares as percentages."""
        shown = df.copy()
        for col in shown.columns:
            if col in percent:
                shown[col] = shown[col].map(self.percent)
            elif pd.api.types.is_integer_dtype(shown[col]):
                shown[col] = shown[col].map(lambda x: f"{x:,}")
        shown = shown.rename(columns={c: self.t(k) for c, k in (labels or {}).items()})
        display(HTML(shown.to_html(index=False, escape=True, border=0, classes="fl-table")))

    # ------------------------------------------------------------------ outputs

    def save_csv(self, df: pd.DataFrame, name: str) -> Path:
        """Write ``data/<name>`` for BI tools and checks."""
        return files.write_csv(self.data_dir / name, df)

    def save_json(self, obj: Any, name: str) -> Path:
        return files.write_json(self.data_dir / name, obj)

    def headlines(self, items: dict[str, float | int]) -> Path:
        """Numbers for the run's index page, by catalogue key (``headline.<key>``)."""
        # pairs, not a mapping: write_json sorts keys, and the order here is the order on the page
        return files.write_json(self.run_dir / ".headlines" / f"{self.notebook}.json", list(items.items()))


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
