"""Data-quality profiling: what each column holds, how much is missing, which type it looks like."""

from __future__ import annotations

import pandas as pd

_BOOL_WORDS = {"yes", "no", "true", "false", "y", "n", "0", "1", "是", "否", "t", "f"}
_NUMBER_NOISE = r"[,\s¥$€£%]|万|亿|RMB|CNY|USD"


def missing_mask(df: pd.DataFrame, *, placeholders: list[str]) -> pd.DataFrame:
    """True where a cell is empty, NaN or one of ``placeholders`` (compared trimmed and case-insensitively)."""
    tokens = {p.strip().lower() for p in placeholders} | {""}
    out = {}
    for col in df.columns:
        s = df[col]
        text = s.astype("str").str.strip().str.lower()
        out[col] = s.isna() | text.isin(tokens)
    return pd.DataFrame(out, index=df.index)


def infer_kind(values: pd.Series) -> str:
    """``number``, ``date``, ``boolean``, ``text`` or ``empty`` for the filled values of one column.

    A kind is chosen when at least 95% of the filled values parse as it; the whole column is judged at once.
    """
    v = values.dropna()
    if v.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(v):
        return "boolean"
    if pd.api.types.is_numeric_dtype(v):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(v):
        return "date"
    text = v.astype("str").str.strip()
    if text.str.lower().isin(_BOOL_WORDS).mean() >= 0.95:
        return "boolean"
    if pd.to_numeric(text.str.replace(_NUMBER_NOISE, "", regex=True), errors="coerce").notna().mean() >= 0.95:
        return "number"
    looks_dated = text.str.match(r"^\d{1,4}[-/.年]\d{1,2}[-/.月]\d{1,4}")
    if looks_dated.mean() >= 0.95:
        return "date"
    return "text"


def column_profile(df: pd.DataFrame, *, placeholders: list[str], column_map: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per column: source name, kind, filled and missing counts, distinct values, examples.

    Parameters
    ----------
    df : DataFrame
        A table as mapped onto canonical names (cells as read).
    placeholders : list of str
        Values that mean missing (``cleaning.placeholders``).
    column_map : DataFrame, optional
        ``source_column``, ``column`` from :func:`funnel_lab.ingest.map_columns`.

    Returns
    -------
    DataFrame
        ``column``, ``source_column``, ``kind``, ``non_missing``, ``missing``, ``missing_share``, ``distinct``,
        ``examples``, in the table's column order.
    """
    missing = missing_mask(df, placeholders=placeholders)
    source = dict(zip(column_map["column"], column_map["source_column"])) if column_map is not None else {}
    rows = []
    for col in df.columns:
        filled = df[col][~missing[col]]
        examples = filled.astype("str").drop_duplicates().head(3).tolist()
        rows.append(
            {
                "column": col,
                "source_column": source.get(col, ""),
                "kind": infer_kind(filled),
                "non_missing": int(len(filled)),
                "missing": int(missing[col].sum()),
                "missing_share": float(missing[col].mean()) if len(df) else 0.0,
                "distinct": int(filled.nunique()),
                "examples": " | ".join(e[:30] for e in examples),
            }
        )
    return pd.DataFrame(rows)


def profile_tables(tables: dict, *, placeholders: list[str]) -> pd.DataFrame:
    """:func:`column_profile` of every input table, stacked, with a leading ``table`` column."""
    parts = [
        column_profile(tbl.data, placeholders=placeholders, column_map=tbl.column_map).assign(table=name)
        for name, tbl in tables.items()
    ]
    if not parts:
        return pd.DataFrame(columns=["table", "column", "source_column", "kind", "non_missing", "missing",
                                     "missing_share", "distinct", "examples"])
    out = pd.concat(parts, ignore_index=True)
    return out[["table"] + [c for c in out.columns if c != "table"]]


def table_overview(tables: dict, profile: pd.DataFrame) -> pd.DataFrame:
    """One row per table: ``table``, ``path``, ``rows``, ``columns``, ``missing_share`` (of all cells)."""
    rows = []
    for name, tbl in tables.items():
        p = profile[profile["table"] == name]
        cells = len(tbl.data) * max(len(p), 1)
        rows.append({"table": name, "path": tbl.source, "rows": len(tbl.data), "columns": len(p),
                     "missing_share": float(p["missing"].sum() / cells) if cells else 0.0})
    return pd.DataFrame(rows, columns=["table", "path", "rows", "columns", "missing_share"])


def summary_sentences(tables: dict, profile: pd.DataFrame, *, lang: str) -> list[str]:
    """The data-quality summary in plain words, one sentence group per table."""
    from .i18n import format_number, format_percent, t

    out = []
    for name, tbl in tables.items():
        p = profile[profile["table"] == name]
        label = t(f"table.{name}", lang)
        gaps = p[p["missing"] > 0].sort_values("missing_share", ascending=False)
        if gaps.empty:
            out.append(t("dq.summary_complete", lang, table=label, rows=format_number(len(tbl.data), "en"),
                         columns=len(p)))
        else:
            worst = gaps.iloc[0]
            out.append(t("dq.summary", lang, table=label, rows=format_number(len(tbl.data), "en"), columns=len(p),
                         missing_cols=len(gaps), worst=worst["column"],
                         worst_pct=format_percent(worst["missing_share"], lang)))
        if tbl.ids_generated:
            out.append(t("dq.ids_generated", lang, example=tbl.data["opportunity_id"].iloc[0]))
    return out


def status_counts(tables: dict) -> dict[str, int]:
    """Headline counts: opportunities and won/lost/open, rows of the other tables."""
    out: dict[str, int] = {}
    if "opportunities" in tables:
        opp = tables["opportunities"].data
        status = opp["status"].astype("str").str.strip().str.lower()
        out["opportunities"] = len(opp)
        out.update({s: int((status == s).sum()) for s in ("won", "lost", "open")})
    if "experiment" in tables:
        out["experiment_units"] = len(tables["experiment"].data)
    return out


def display_profile(run, table: str, profile: pd.DataFrame) -> None:
    """Show one table's column profile and its missing-values chart in the report."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from .plots import plot_missing

    p = profile[profile["table"] == table].drop(columns="table")
    display(Markdown(f"### {run.t('dq.columns')}: {run.t(f'table.{table}')}"))
    labels = {c: f"col.{c}" for c in p.columns}
    run.table(p, labels=labels, percent=("missing_share",))
    gaps = p[p["missing"] > 0]
    if gaps.empty:
        return
    ax = plot_missing(gaps, title=f"{run.t('dq.missing_chart')} — {run.t(f'table.{table}')}")
    plt.show()
    plt.close(ax.figure)
