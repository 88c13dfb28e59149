"""What is in each table and what cleaning did to it, as tables: column profiles, the audit, the quarantine, the
column map (the data-quality report words and shows them)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..result import Result
from .activities import ActivityLog
from .clean import Cleaned
from .ingest import NOTE_COLUMNS, Table
from .schemas import canonical_columns

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
        examples = _first_distinct_text(filled, 3)
        rows.append({"table": cleaned.name, "column": col, "source_column": source.get(col, ""),
                     "kind": kinds.get(col, "derived"), "non_missing": len(filled), "missing": len(part) - len(filled),
                     "missing_share": (len(part) - len(filled)) / len(part) if len(part) else 0.0,
                     "distinct": int(filled.nunique()), "examples": " | ".join(examples)})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _first_distinct_text(values: pd.Series, k: int, scan: int = 1000) -> list[str]:
    """The first ``k`` distinct values as text (cut to 30 characters), in order of appearance: read from the first
    ``scan`` rows when they hold ``k`` (a column of a million rows is not turned into text for three examples)."""
    for part in (values.iloc[:scan], values):
        found = part.astype("str").drop_duplicates().head(k)
        if len(found) == k or len(part) == len(values):
            return found.str.slice(0, 30).tolist()
    return []


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


def status_counts(cleaned: dict[str, Cleaned], activity_log=None) -> dict[str, int]:
    """Headline counts for the index page: opportunities and won/lost/open after cleaning, the rows quarantined
    (every table's and the activity log's: the rows of ``quarantine.csv``), experiment units."""
    out: dict[str, int] = {}
    if "opportunities" in cleaned:
        status = cleaned["opportunities"].data["status"]
        out["opportunities"] = len(status)
        out.update({s: int((status == s).sum()) for s in ("won", "lost", "open")})
        out["rows_removed"] = len(quarantine_table(cleaned, activity_log))
    if "experiment" in cleaned:
        out["experiment_units"] = int(cleaned["experiment"].data["unit_id"].nunique())
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



def cleaning_outputs(tables: dict[str, Table], cleaned: dict[str, Cleaned], validation: pd.DataFrame,
                     profile: pd.DataFrame, *, activity_log=None,
                     opportunities: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The machine-readable results of the data-quality step, by file name in ``data/`` (DESIGN.md).

    ``opportunities`` (the cleaned opportunities with their behaviour features) becomes
    ``opportunities_clean.csv``; ``activity_log`` adds its audit, quarantine and column map to theirs, and
    ``behaviour_features.csv`` (each feature's definition).
    """
    out = {}
    if opportunities is not None:
        out["opportunities_clean.csv"] = opportunities
    for name, c in cleaned.items():
        if name != "opportunities":
            out[f"{name}_clean.csv"] = c.data
    audit = audit_table(cleaned, activity_log)
    out["cleaning_audit.csv"] = audit[["step", "rows_in", "rows_out", "rows_removed", "rows_changed", "detail", "table"]]
    out["quarantine.csv"] = quarantine_table(cleaned, activity_log)
    out["duplicate_groups.csv"] = stacked(cleaned, "duplicates")
    if activity_log is not None:
        out["behaviour_features.csv"] = activity_log.definitions
    out["column_map.csv"] = column_map_table(tables, activity_log)[["source_column", "column", "table"]]
    out["export_notes.csv"] = export_notes(tables, cleaned)
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


def export_notes(tables: dict[str, Table], cleaned: dict[str, Cleaned]) -> pd.DataFrame:
    """Every table's reading decisions (:data:`~funnel_lab.data.ingest.NOTE_COLUMNS`), stacked; amounts that
    cleaning converted to the home currency are one more."""
    parts = [tbl.notes for tbl in tables.values() if tbl.notes is not None and len(tbl.notes)]
    for name, c in cleaned.items():
        step = c.audit[(c.audit["step"] == "currency") & (c.audit["rows_changed"] > 0)]
        parts += [pd.DataFrame([{"table": name, "kind": "currency", "column": "amount", "value": c.currency,
                                 "rows": int(r["rows_changed"]), "detail": r["detail"]}], columns=NOTE_COLUMNS)
                  for r in step.to_dict("records")]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=NOTE_COLUMNS)


def column_map_table(tables: dict[str, Table], activity_log=None) -> pd.DataFrame:
    """Source column -> its name now, per table: ``table``, ``source_column``, ``column``, ``canonical``."""
    maps = {name: tbl.column_map for name, tbl in tables.items()}
    if activity_log is not None:
        maps["activities"] = activity_log.column_map
    rows = [cm.assign(table=name, canonical=cm["column"].isin(canonical_columns(name))) for name, cm in maps.items()]
    if not rows:
        return pd.DataFrame(columns=["table", "source_column", "column", "canonical"])
    return pd.concat(rows, ignore_index=True)[["table", "source_column", "column", "canonical"]]


@dataclass(repr=False)
class DataQuality(Result):
    """What the data-quality report shows (:meth:`funnel_lab.Pipeline.data_quality`).

    Attributes
    ----------
    tables, cleaned : dict
        Every input table as read (:class:`~funnel_lab.data.ingest.Table`) and cleaned
        (:class:`~funnel_lab.data.clean.Cleaned`), by name.
    validation : DataFrame
        Schema failures of the cleaned tables (empty when valid).
    activity_log : ActivityLog or None
    opportunities : DataFrame or None
        The cleaned opportunities with their behaviour features.
    profile : DataFrame
        :func:`profile_tables`.
    """

    title = "data quality"
    tables: dict[str, Table]
    cleaned: dict[str, Cleaned]
    validation: pd.DataFrame
    activity_log: ActivityLog | None
    opportunities: pd.DataFrame | None
    profile: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """One row per table: rows read, kept and removed, columns (:func:`table_overview`)."""
        return table_overview(self.tables, self.cleaned, self.activity_log)

    @property
    def outputs(self) -> dict[str, pd.DataFrame]:
        return cleaning_outputs(self.tables, self.cleaned, self.validation, self.profile,
                                activity_log=self.activity_log, opportunities=self.opportunities)

    @property
    def status_counts(self) -> dict[str, int]:
        """The index page's headline counts (:func:`status_counts`)."""
        return status_counts(self.cleaned, self.activity_log)

    @property
    def audit(self) -> pd.DataFrame:
        return audit_table(self.cleaned, self.activity_log)

    @property
    def quarantine(self) -> pd.DataFrame:
        return quarantine_table(self.cleaned, self.activity_log)

    @property
    def column_map(self) -> pd.DataFrame:
        return column_map_table(self.tables, self.activity_log)

    @property
    def export_notes(self) -> pd.DataFrame:
        """How each export was read where it needed a decision (``export_notes.csv``)."""
        return export_notes(self.tables, self.cleaned)


def analyse_data_quality(p) -> DataQuality:
    """:class:`DataQuality` of a pipeline's tables."""
    opportunities = p.opportunities if "opportunities" in p.params.tables() else None
    return DataQuality(p.tables, p.cleaned, p.validation, p.activity_log, opportunities,
                       profile_tables(p.tables, p.cleaned))
