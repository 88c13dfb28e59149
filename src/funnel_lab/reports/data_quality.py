"""The ``00_data_quality`` page: what is in each table and what cleaning did to it, in words, tables and charts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.abtest import experiment_hygiene
from ..data.quality import DataQuality, key_columns_before_after, numeric_before_after, stacked
from ..i18n import format_date, format_number, format_percent, t
from .plots import plot_amounts, plot_bars, plot_missing
from .wording import note, reason_kinds


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


def summary_sentences(r: DataQuality, lang: str) -> list[str]:
    """The data-quality summary in plain words: one sentence group per table (the activity log's too), then
    validation."""
    out, tables, activity_log, validation = [], r.tables, r.activity_log, r.validation
    for name, c in r.cleaned.items():
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


# --------------------------------------------------------------------------- display (used by the notebook)


def show_inputs(run, r: DataQuality) -> None:
    """One row per table: where it came from, rows read, kept and removed, columns."""
    run.heading("dq.inputs")
    cols = ("table", "path", "rows_read", "rows_kept", "rows_removed", "columns")
    run.table(r.summary, labels={c: f"col.{c}" for c in cols}, translate={"table": "table"})


def show_tables(run, r: DataQuality) -> None:
    """The missing-value note, then one section per table (:func:`show_table_details`)."""
    run.say("dq.missing_note", placeholders=", ".join(repr(p) for p in run.params.cleaning.placeholders))
    for name in r.cleaned:
        show_table_details(run, r, name)


def show_table_details(run, r: DataQuality, name: str) -> None:
    """One table's section: column map and missing values, type changes, placeholders, standardised values."""
    c, tbl = r.cleaned[name], r.tables[name]
    run.paragraph(f"## {run.t('table.' + name).capitalize()}")
    p = r.profile[r.profile["table"] == name].drop(columns="table")
    yes_no = {"True": run.t("value.yes"), "False": run.t("value.no")}
    p = p.assign(examples=p["examples"].where(p["kind"] != "boolean", p["examples"].map(
        lambda e: " | ".join(yes_no.get(v, v) for v in str(e).split(" | ")))))
    run.heading("dq.columns", level=3)
    run.table(p, labels={col: f"col.{col}" for col in p.columns}, percent=("missing_share",),
              translate={"kind": "kind"})
    gaps = p[p["missing"] > 0]
    if len(gaps):
        run.figure(plot_missing(gaps, title=f"{run.t('dq.missing_chart')} — {run.t('table.' + name)}"))
    run.heading("dq.types", level=3)
    typed = c.types[c.types["kind"] != "text"]
    typed = typed.assign(detail=typed["detail"].map(lambda d: note(d, run.lang))) if "detail" in typed else typed
    run.table(typed, labels={col: f"col.{col}" for col in typed.columns}, translate={"kind": "kind"},
              empty="dq.none")
    if len(c.cell_issues):
        run.say("dq.cell_issues", n=format_number(len(c.cell_issues), run.lang))
        run.table(c.cell_issues.head(20), labels={col: f"col.{col}" for col in c.cell_issues.columns})
    run.heading("dq.placeholders", level=3)
    run.table(c.placeholders, labels={col: f"col.{col}" for col in c.placeholders.columns}, empty="dq.none")
    if len(c.placeholders):
        by_col = c.placeholders.groupby("column")["cells"].sum().sort_values(ascending=False)
        run.figure(plot_bars(by_col, title=run.t("dq.placeholders_chart")))
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
        run.figure(plot_amounts(c.data["amount"], title=run.t("dq.amount_chart")))
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


def show_cleaning(run, r: DataQuality) -> None:
    """The audit of every step, the duplicate groups with examples, the quarantine and validation."""
    audit = r.audit
    run.heading("dq.audit")
    run.say("dq.audit_note")
    audit = audit.assign(detail=audit["detail"].map(lambda d: note(d, run.lang)))
    run.table(audit[["table", "step", "rows_in", "rows_out", "rows_removed", "rows_changed", "detail"]],
              labels={c: f"col.{c}" for c in audit.columns}, translate={"table": "table", "step": "step"})
    dups = stacked(r.cleaned, "duplicates")
    run.heading("dq.duplicates")
    if dups.empty:
        run.say("dq.none")
    else:
        per = dups.groupby(["table", "match"])["group"].nunique().reset_index(name="groups")
        per["match"] = per["match"].map(lambda m: note(m, run.lang))
        run.table(per, labels={"table": "col.table", "match": "col.match", "groups": "col.groups"},
                  translate={"table": "table"})
        run.say("dq.duplicates_examples")
        for match, part in dups.groupby("match", sort=True):
            first = part[part["group"].isin(sorted(part["group"].unique())[:3])].dropna(axis=1, how="all")
            run.paragraph(f"**{note(match, run.lang)}**")
            run.table(first.drop(columns=["table", "match"]), labels={c: f"col.{c}" for c in first.columns})
    q = r.quarantine
    run.heading("dq.quarantine")
    if q.empty:
        run.say("dq.quarantine_empty")
    else:
        why = reason_kinds(q["reason"]).value_counts().reset_index()
        why.columns = ["reason", "rows"]
        why["reason"] = why["reason"].map(lambda r: note(r, run.lang))
        run.say("dq.quarantine_note", n=format_number(len(q), run.lang))
        run.table(why.head(12), labels={"reason": "col.reason", "rows": "col.rows"})
    run.heading("dq.validation")
    v = r.validation
    if v.empty:
        run.say("dq.validation_ok")
    else:
        per = v.groupby(["table", "column", "check"]).size().reset_index(name="rows")
        run.table(per, labels={c: f"col.{c}" for c in per.columns}, translate={"table": "table"})
        run.table(v.head(20), labels={c: f"col.{c}" for c in v.columns}, translate={"table": "table"})


def show_column_map(run, r: DataQuality) -> None:
    """Source column -> canonical name, per table, marking the canonical ones."""
    cmap = r.column_map
    run.heading("dq.column_map")
    run.table(cmap[cmap["canonical"]].drop(columns="canonical"),
              labels={"table": "col.table", "source_column": "col.source_column", "column": "col.column"},
              translate={"table": "table"})
    joins = [dict(j, table=name) for name, tbl in r.tables.items() for j in (tbl.joins or [])]
    if joins:
        run.heading("dq.joins", level=3)
        jt = pd.DataFrame(joins)
        jt["path"] = jt["path"].map(lambda p: Path(p).name)
        for col in ("unmatched_values", "loose_only", "columns"):
            jt[col] = jt[col].map(", ".join)
        run.table(jt[["table", "path", "on", "rows", "matched", "unmatched", "unmatched_values", "loose_only",
                      "columns"]], labels={c: f"col.{c}" for c in jt.columns}, translate={"table": "table"})
    notes = r.export_notes
    if len(notes):
        run.heading("dq.export_notes", level=3)
        run.say("dq.export_notes_intro")
        run.table(notes, labels={c: f"col.{c}" for c in notes.columns}, translate={"table": "table", "kind": "note"})
    extra = cmap[~cmap["canonical"] & (cmap["source_column"] != cmap["column"])]
    if len(extra):
        run.say("dq.column_map_features", n=len(extra))
        run.table(extra.drop(columns="canonical"),
                  labels={"table": "col.table", "source_column": "col.source_column", "column": "col.column"},
                  translate={"table": "table"})


def show_behaviour_features(run, r: DataQuality) -> None:
    """The activity log's types and every feature built from it, with its definition (what a rule may use)."""
    log = r.activity_log
    if log is None:
        return
    lang = run.lang
    run.heading("dq.features")
    days = run.params.features.days_before_close
    cut = t("dq.features_cutoff", lang, days=days) if days else t("dq.features_cutoff_close", lang)
    run.say("dq.features_note", n=format_number(int(log.audit.iloc[-1]["rows_out"]), lang),
            types=format_number(int((log.types["name"] != "").sum()), lang),
            features=format_number(len(log.definitions), lang), cutoff=cut,
            as_of=f"{format_date(run.pipeline.as_of, run.lang)} {run.pipeline.as_of:%H:%M}")
    run.table(log.types, labels={"activity_type": "col.activity_type", "name": "col.feature_prefix",
                                 "events": "col.activity_events"})
    defs = log.definitions.assign(definition=[
        t(f"feature.{k}", lang, type=a, n=w) for k, a, w in zip(log.definitions["kind"],
                                                                 log.definitions["activity_type"],
                                                                 log.definitions["window"])])
    run.table(defs[["feature", "definition"]], labels={"feature": "col.feature", "definition": "col.definition"})

