"""The data-quality report: what is in each table, and what cleaning did to it (all computed from DataFrames)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .clean import Cleaned
from .i18n import format_number, format_percent, t
from .ingest import Table

PROFILE_COLUMNS = ["table", "column", "source_column", "kind", "non_missing", "missing", "missing_share", "distinct",
                   "examples"]


def column_profile(cleaned: Cleaned, column_map: pd.DataFrame) -> pd.DataFrame:
    """One row per column of a cleaned table.

    Returns
    -------
    DataFrame
        ``table``, ``column``, ``source_column``, ``kind`` (the type cleaning gave it), ``non_missing``, ``missing``,
        ``missing_share``, ``distinct``, ``examples`` (up to three distinct values).
    """
    df = cleaned.data
    source = dict(zip(column_map["column"], column_map["source_column"]))
    kinds = dict(zip(cleaned.types["column"], cleaned.types["kind"]))
    applies = _applies(df)
    rows = []
    for col in df.columns:
        # a column that only applies to some deals (closed_at to closed ones) is missing only where it applies
        part = df.loc[applies[col], col] if col in applies else df[col]
        filled = part.dropna()
        examples = filled.astype("str").drop_duplicates().head(3).str.slice(0, 30).tolist()
        rows.append({"table": cleaned.name, "column": col, "source_column": source.get(col, ""),
                     "kind": kinds.get(col, "derived"), "non_missing": len(filled), "missing": len(part) - len(filled),
                     "missing_share": (len(part) - len(filled)) / len(part) if len(part) else 0.0,
                     "distinct": int(filled.nunique()), "examples": " | ".join(examples)})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _applies(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Rows where a status-dependent column is expected to be filled."""
    if "status" not in df.columns:
        return {}
    closed = df["status"].isin(["won", "lost"])
    return {"won": closed, "closed_at": closed, "expected_close_at": df["status"] == "open"}


def profile_tables(tables: dict[str, Table], cleaned: dict[str, Cleaned]) -> pd.DataFrame:
    """:func:`column_profile` of every table, stacked."""
    parts = [column_profile(cleaned[n], tables[n].column_map) for n in cleaned]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PROFILE_COLUMNS)


def table_overview(tables: dict[str, Table], cleaned: dict[str, Cleaned], activity_log=None) -> pd.DataFrame:
    """One row per table: ``table``, ``path``, ``rows_read``, ``rows_kept``, ``rows_removed``, ``columns``."""
    parts = [(name, tables[name].source, c.audit, c.data.shape[1]) for name, c in cleaned.items()]
    if activity_log is not None:
        parts.append(("activities", activity_log.source, activity_log.audit, len(activity_log.column_map)))
    rows = []
    for name, path, audit, columns in parts:
        overall = audit.iloc[-1]
        rows.append({"table": name, "path": path, "rows_read": int(overall["rows_in"]),
                     "rows_kept": int(overall["rows_out"]), "rows_removed": int(overall["rows_removed"]),
                     "columns": columns})
    return pd.DataFrame(rows, columns=["table", "path", "rows_read", "rows_kept", "rows_removed", "columns"])


def stacked(cleaned: dict[str, Cleaned], attr: str) -> pd.DataFrame:
    """One of the cleaning records (``audit``, ``quarantine``, ``placeholders``, ...) of every table, stacked."""
    parts = [getattr(c, attr).assign(table=n) if "table" not in getattr(c, attr).columns else getattr(c, attr)
             for n, c in cleaned.items()]
    parts = [p for p in parts if len(p)]
    if not parts:
        first = next(iter(cleaned.values()), None)
        cols = list(getattr(first, attr).columns) if first is not None else []
        return pd.DataFrame(columns=(["table"] if "table" not in cols else []) + cols)
    out = pd.concat(parts, ignore_index=True)
    return out[["table"] + [c for c in out.columns if c != "table"]]


def status_counts(cleaned: dict[str, Cleaned]) -> dict[str, int]:
    """Headline counts for the index page: opportunities and won/lost/open after cleaning, experiment rows."""
    out: dict[str, int] = {}
    if "opportunities" in cleaned:
        status = cleaned["opportunities"].data["status"]
        out["opportunities"] = len(status)
        out.update({s: int((status == s).sum()) for s in ("won", "lost", "open")})
        out["rows_removed"] = int(cleaned["opportunities"].audit.iloc[-1]["rows_removed"])
    if "experiment" in cleaned:
        out["experiment_units"] = int(cleaned["experiment"].data["unit_id"].nunique())
    return out


def variant_values(df: pd.DataFrame, col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows per variant and value of ``col`` (``variant, <col>, rows``, missing values included), and the same
    cut to each variant's usual value: its most frequent (ties: the first in sort order)."""
    pairs = df.groupby(["variant", col], dropna=False, sort=True).size().rename("rows").reset_index()
    return pairs, pairs.sort_values("rows", ascending=False, kind="stable").drop_duplicates("variant")


def experiment_hygiene(df: pd.DataFrame, *, min_agreement: float = 0.9) -> dict[str, pd.DataFrame]:
    """What an A/B table's assignment looks like before any test: repeated units and inconsistent rows.

    Returns
    -------
    dict of DataFrame
        ``repeated``: units with more than one row (``unit_id``, ``rows``, ``variants``);
        ``mismatches``: for every column that follows ``variant`` in at least ``min_agreement`` of rows (e.g. a
        landing page per group), ``column``, ``variant``, ``value``, ``rows`` where it does not.
    """
    per_unit = df.groupby("unit_id", sort=True).agg(rows=("variant", "size"), variants=("variant", "nunique"))
    repeated = per_unit[per_unit["rows"] > 1].reset_index()
    mismatches = []
    for col in df.columns:
        if col in ("unit_id", "variant") or df[col].nunique() > 20 or df[col].nunique() < 2:
            continue
        pairs, usual = variant_values(df, col)
        if usual[col].nunique() < len(usual):
            continue  # two variants share their usual value: this column does not follow the variant
        agree = usual["rows"].sum() / len(df)
        if min_agreement <= agree < 1:
            odd = pairs.merge(usual[["variant", col]], how="left", on="variant", suffixes=("", "_usual"))
            odd = odd[odd[col] != odd[f"{col}_usual"]]
            mismatches += [{"column": col, "variant": r["variant"], "value": r[col], "rows": int(r["rows"])}
                           for r in odd.to_dict("records")]
    return {"repeated": repeated,
            "mismatches": pd.DataFrame(mismatches, columns=["column", "variant", "value", "rows"])}


def _audit_sentences(audit: pd.DataFrame, label: str, columns: int, lang: str) -> list[str]:
    """A table's rows read, kept, removed and changed, then the rows each step removed (from its audit)."""
    overall = audit.iloc[-1]
    read, kept = int(overall["rows_in"]), int(overall["rows_out"])
    out = [t("dq.summary_rows", lang, table=label, read=format_number(read, lang), kept=format_number(kept, lang),
             removed=format_number(read - kept, lang), columns=columns,
             changed=format_number(int(overall["rows_changed"]), lang))]
    removed = audit[(audit["rows_removed"] > 0) & (audit["step"] != "overall")]
    if len(removed):
        parts = ", ".join(f"{t('step.' + s, lang)} {format_number(n, lang)}"
                          for s, n in zip(removed["step"], removed["rows_removed"]))
        out.append(t("dq.summary_removed", lang, parts=parts))
    return out


def summary_sentences(tables: dict[str, Table], cleaned: dict[str, Cleaned], validation: pd.DataFrame, *,
                      lang: str, activity_log=None) -> list[str]:
    """The data-quality summary in plain words: one sentence group per table (the activity log's too), then
    validation."""
    out = []
    for name, c in cleaned.items():
        missing = c.data.isna().mean().sort_values(ascending=False)
        out += _audit_sentences(c.audit, t(f"table.{name}", lang), c.data.shape[1], lang)
        if len(missing) and missing.iloc[0] > 0:
            out.append(t("dq.summary_missing", lang, worst=missing.index[0], share=format_percent(missing.iloc[0], lang),
                         n=int((missing > 0).sum())))
        if tables[name].ids_generated:
            out.append(t("dq.ids_generated", lang, example=c.data["opportunity_id"].iloc[0]))
    if activity_log is not None:
        out += _audit_sentences(activity_log.audit, t("table.activities", lang), len(activity_log.column_map), lang)
    n_fail = len(validation)
    out.append(t("dq.validation_ok", lang) if n_fail == 0 else
               t("dq.validation_failed", lang, n=format_number(n_fail, lang),
                 checks=", ".join(sorted(set(validation["check"]))[:4])))
    return out


def key_columns_before_after(table: Table, cleaned: Cleaned, *, columns: tuple[str, ...] = (
        "status", "source", "segment", "crm_stage", "owner", "variant", "stage")) -> pd.DataFrame:
    """Distinct values of the key text columns as read and after cleaning (placeholders, case variants, maps).

    Returns
    -------
    DataFrame
        ``column``, ``distinct_before``, ``distinct_after``, ``missing_before``, ``missing_after``, ``top_after``.
    """
    rows = []
    for col in columns:
        if col not in cleaned.data.columns or col not in table.data.columns:
            continue
        before, after = table.data[col], cleaned.data[col]
        blank = before.isna() | (before.astype("str").str.strip() == "")
        top = after.value_counts().head(4)
        rows.append({"column": col, "distinct_before": int(before[~blank].nunique()),
                     "distinct_after": int(after.nunique()), "missing_before": int(blank.sum()),
                     "missing_after": int(after.isna().sum()),
                     "top_after": ", ".join(f"{v} ({n:,})" for v, n in top.items())})
    return pd.DataFrame(rows, columns=["column", "distinct_before", "distinct_after", "missing_before",
                                       "missing_after", "top_after"])


def numeric_before_after(table: Table, cleaned: Cleaned, column: str) -> dict[str, int]:
    """How the cells of a number column were read: ``plain`` numbers, ``text`` (currency, separators, 万), ``missing``."""
    before = table.data[column].astype("str").str.strip()
    plain = before.str.fullmatch(r"-?\d+(\.\d+)?")
    after = cleaned.data[column]
    kept = before.loc[after.index]
    return {"plain": int(plain.loc[after.index].sum()),
            "text": int((after.notna() & ~plain.loc[after.index]).sum()),
            "missing": int(after.isna().sum()), "blank_before": int((kept == "").sum())}


# --------------------------------------------------------------------------- display (used by the notebook)


def show_table_details(run, name: str, *, profile: pd.DataFrame) -> None:
    """One table's section: column map and missing values, type changes, placeholders, standardised values."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from .plots import plot_amounts, plot_bars, plot_missing

    c, tbl = run.cleaned[name], run.tables[name]
    display(Markdown(f"## {run.t('table.' + name).capitalize()}"))
    p = profile[profile["table"] == name].drop(columns="table")
    run.heading("dq.columns", level=3)
    run.table(p, labels={col: f"col.{col}" for col in p.columns}, percent=("missing_share",),
              translate={"kind": "kind"})
    gaps = p[p["missing"] > 0]
    if len(gaps):
        ax = plot_missing(gaps, title=f"{run.t('dq.missing_chart')} — {run.t('table.' + name)}")
        plt.show()
        plt.close(ax.figure)
    run.heading("dq.types", level=3)
    typed = c.types[c.types["kind"] != "text"]
    run.table(typed, labels={col: f"col.{col}" for col in typed.columns}, translate={"kind": "kind"},
              empty="dq.none")
    if len(c.cell_issues):
        run.say("dq.cell_issues", n=format_number(len(c.cell_issues), run.lang))
        run.table(c.cell_issues.head(20), labels={col: f"col.{col}" for col in c.cell_issues.columns})
    run.heading("dq.placeholders", level=3)
    run.table(c.placeholders, labels={col: f"col.{col}" for col in c.placeholders.columns}, empty="dq.none")
    if len(c.placeholders):
        by_col = c.placeholders.groupby("column")["cells"].sum().sort_values(ascending=False)
        ax = plot_bars(by_col, title=run.t("dq.placeholders_chart"))
        plt.show()
        plt.close(ax.figure)
    run.heading("dq.standardised", level=3)
    run.table(key_columns_before_after(tbl, c), labels={col: f"col.{col}" for col in (
        "column", "distinct_before", "distinct_after", "missing_before", "missing_after", "top_after")},
        empty="dq.none")
    merged = c.standardised.sort_values("cells", ascending=False).head(15)
    if len(merged):
        run.table(merged, labels={col: f"col.{col}" for col in merged.columns})
    if name == "opportunities" and "amount" in c.data.columns:
        read = numeric_before_after(tbl, c, "amount")
        run.say("dq.amount_read", plain=format_number(read["plain"], run.lang), text=format_number(read["text"], run.lang),
                missing=format_number(read["missing"], run.lang))
        ax = plot_amounts(c.data["amount"], title=run.t("dq.amount_chart"))
        plt.show()
        plt.close(ax.figure)
    if len(c.flags):
        run.heading("dq.flags", level=3)
        run.table(c.flags, labels={col: f"col.{col}" for col in c.flags.columns}, translate={"flag": "flag"})
    if name == "experiment":
        show_experiment_hygiene(run, c.data)


def show_experiment_hygiene(run, df: pd.DataFrame) -> None:
    """Repeated units and rows whose variant disagrees with a column that follows it (e.g. a landing page)."""
    hy = experiment_hygiene(df)
    run.heading("dq.experiment", level=3)
    rep = hy["repeated"]
    run.say("dq.experiment_repeated", units=format_number(len(rep), run.lang),
            rows=format_number(int(rep["rows"].sum()) if len(rep) else 0, run.lang),
            multi=format_number(int((rep["variants"] > 1).sum()) if len(rep) else 0, run.lang))
    mm = hy["mismatches"]
    if len(mm):
        run.say("dq.experiment_mismatch", rows=format_number(int(mm["rows"].sum()), run.lang),
                columns=", ".join(sorted(set(mm["column"]))))
        run.table(mm, labels={col: f"col.{col}" for col in mm.columns})


def cleaning_outputs(tables: dict[str, Table], cleaned: dict[str, Cleaned], validation: pd.DataFrame,
                     profile: pd.DataFrame, *, activity_log=None) -> dict[str, pd.DataFrame]:
    """The machine-readable results of the data-quality step, by file name in ``data/`` (DESIGN.md).

    ``activity_log`` adds the behaviour features to ``opportunities_clean.csv``, its audit, quarantine and column
    map to theirs, and ``behaviour_features.csv`` (each feature's definition).
    """
    from .activities import with_features

    out = {}
    if "opportunities" in cleaned:
        out["opportunities_clean.csv"] = with_features(cleaned["opportunities"].data, activity_log)
    for name, c in cleaned.items():
        if name != "opportunities":
            out[f"{name}_clean.csv"] = c.data
    audit = audit_table(cleaned, activity_log)
    out["cleaning_audit.csv"] = audit[["step", "rows_in", "rows_out", "rows_removed", "rows_changed", "detail", "table"]]
    out["quarantine.csv"] = quarantine_table(cleaned, activity_log)
    out["duplicate_groups.csv"] = stacked(cleaned, "duplicates")
    maps = [t.column_map.assign(table=n) for n, t in tables.items()]
    if activity_log is not None:
        maps.append(activity_log.column_map.assign(table="activities"))
        out["behaviour_features.csv"] = activity_log.definitions
    out["column_map.csv"] = pd.concat(maps, ignore_index=True)
    out["column_profile.csv"] = profile
    out["validation_failures.csv"] = validation
    return out


def audit_table(cleaned: dict[str, Cleaned], activity_log=None) -> pd.DataFrame:
    """Every table's cleaning audit, the activity log's included."""
    audit = stacked(cleaned, "audit")
    return audit if activity_log is None else pd.concat([audit, activity_log.audit], ignore_index=True)


def quarantine_table(cleaned: dict[str, Cleaned], activity_log=None) -> pd.DataFrame:
    """Every removed row as read, with its table and reason, the activity log's included."""
    q = stacked(cleaned, "quarantine")
    if activity_log is None or activity_log.quarantine.empty:
        return q
    return pd.concat([q, activity_log.quarantine], ignore_index=True) if len(q) else activity_log.quarantine


def show_cleaning(run) -> None:
    """The audit of every step, the duplicate groups with examples, the quarantine and validation."""
    from IPython.display import Markdown, display

    audit = audit_table(run.cleaned, run.activity_log)
    run.heading("dq.audit")
    run.say("dq.audit_note")
    run.table(audit[["table", "step", "rows_in", "rows_out", "rows_removed", "rows_changed", "detail"]],
              labels={c: f"col.{c}" for c in audit.columns}, translate={"table": "table", "step": "step"})
    dups = stacked(run.cleaned, "duplicates")
    run.heading("dq.duplicates")
    if dups.empty:
        run.say("dq.none")
    else:
        per = dups.groupby(["table", "match"])["group"].nunique().reset_index(name="groups")
        run.table(per, labels={"table": "col.table", "match": "col.match", "groups": "col.groups"},
                  translate={"table": "table"})
        run.say("dq.duplicates_examples")
        for match, part in dups.groupby("match", sort=True):
            first = part[part["group"].isin(sorted(part["group"].unique())[:3])].dropna(axis=1, how="all")
            display(Markdown(f"**{match}**"))
            run.table(first.drop(columns=["table", "match"]), labels={c: f"col.{c}" for c in first.columns})
    q = quarantine_table(run.cleaned, run.activity_log)
    run.heading("dq.quarantine")
    if q.empty:
        run.say("dq.quarantine_empty")
    else:
        # one row per kind of reason: "duplicate of …", "unknown opportunity_id: …"
        why = q["reason"].str.replace(r"(of|line) .*", r"\1 …", regex=True).str.replace(r": .*", ": …", regex=True)
        why = why.value_counts().reset_index()
        why.columns = ["reason", "rows"]
        run.say("dq.quarantine_note", n=format_number(len(q), run.lang))
        run.table(why.head(12), labels={"reason": "col.reason", "rows": "col.rows"})
    run.heading("dq.validation")
    v = run.validation
    if v.empty:
        run.say("dq.validation_ok")
    else:
        per = v.groupby(["table", "column", "check"]).size().reset_index(name="rows")
        run.table(per, labels={c: f"col.{c}" for c in per.columns}, translate={"table": "table"})
        run.table(v.head(20), labels={c: f"col.{c}" for c in v.columns}, translate={"table": "table"})


def show_column_map(run) -> None:
    """Source column -> canonical name, per table, marking the canonical ones."""
    from .ingest import CANONICAL

    rows = []
    maps = {name: tbl.column_map for name, tbl in run.tables.items()}
    if run.activity_log is not None:
        maps["activities"] = run.activity_log.column_map
    for name, cm in maps.items():
        rows.append(cm.assign(table=name, canonical=cm["column"].isin(CANONICAL[name])))
    cmap = pd.concat(rows, ignore_index=True)[["table", "source_column", "column", "canonical"]]
    run.heading("dq.column_map")
    run.table(cmap[cmap["canonical"]].drop(columns="canonical"),
              labels={"table": "col.table", "source_column": "col.source_column", "column": "col.column"},
              translate={"table": "table"})
    joins = [dict(j, table=name) for name, tbl in run.tables.items() for j in (tbl.joins or [])]
    if joins:
        run.heading("dq.joins", level=3)
        jt = pd.DataFrame(joins)
        jt["path"] = jt["path"].map(lambda p: Path(p).name)
        for col in ("unmatched_values", "loose_only", "columns"):
            jt[col] = jt[col].map(", ".join)
        run.table(jt[["table", "path", "on", "rows", "matched", "unmatched", "unmatched_values", "loose_only",
                      "columns"]], labels={c: f"col.{c}" for c in jt.columns}, translate={"table": "table"})
    extra = cmap[~cmap["canonical"] & (cmap["source_column"] != cmap["column"])]
    if len(extra):
        run.say("dq.column_map_features", n=len(extra))
        run.table(extra.drop(columns="canonical"),
                  labels={"table": "col.table", "source_column": "col.source_column", "column": "col.column"},
                  translate={"table": "table"})


def show_behaviour_features(run) -> None:
    """The activity log's types and every feature built from it, with its definition (what a rule may use)."""
    log = run.activity_log
    if log is None:
        return
    lang = run.lang
    run.heading("dq.features")
    days = run.params.features.days_before_close
    cut = t("dq.features_cutoff", lang, days=days) if days else t("dq.features_cutoff_close", lang)
    run.say("dq.features_note", n=format_number(int(log.audit.iloc[-1]["rows_out"]), lang),
            types=format_number(int((log.types["name"] != "").sum()), lang),
            features=format_number(len(log.definitions), lang), cutoff=cut,
            as_of=run.as_of.strftime("%Y-%m-%d %H:%M"))
    run.table(log.types, labels={"activity_type": "col.activity_type", "name": "col.feature_prefix",
                                 "events": "col.activity_events"})
    defs = log.definitions.assign(definition=[
        t(f"feature.{k}", lang, type=a, n=w) for k, a, w in zip(log.definitions["kind"],
                                                                 log.definitions["activity_type"],
                                                                 log.definitions["window"])])
    run.table(defs[["feature", "definition"]], labels={"feature": "col.feature", "definition": "col.definition"})

