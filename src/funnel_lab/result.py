"""What every analysis returns: ``.summary`` (a DataFrame), ``.outputs`` (the run's ``data/`` files) and a table in
JupyterLab (``_repr_html_``)."""

from __future__ import annotations

import html

import pandas as pd


class Result:
    """Base of the analysis results (each a dataclass of the tables behind one report).

    Subclasses define :attr:`summary`, the table an analyst looks at first, and :attr:`outputs`, the files the run
    writes into ``data/`` (file name -> DataFrame for ``.csv``, dict for ``.json``).
    """

    #: Shown above the summary in a notebook.
    title = "result"

    @property
    def summary(self) -> pd.DataFrame:
        raise NotImplementedError

    @property
    def outputs(self) -> dict[str, pd.DataFrame | dict]:
        return {}

    def _repr_html_(self) -> str:
        files = ", ".join(self.outputs) or "none"
        return (f"<h4>{html.escape(self.title)}</h4>{self.summary.to_html(index=False, na_rep='')}"
                f"<p><small>.outputs: {html.escape(files)}</small></p>")

    def __repr__(self) -> str:
        return f"{self.title}\n{self.summary.to_string(index=False)}"
