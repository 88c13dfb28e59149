"""pandera schemas of the canonical tables, validated lazily so that every failure is reported at once."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

_TS = "datetime64[ns]"


def _closed_not_before_created(df: pd.DataFrame) -> pd.Series:
    if not {"created_at", "closed_at"} <= set(df.columns):
        return pd.Series(True, index=df.index)
    both = df["created_at"].notna() & df["closed_at"].notna()
    return ~both | (df["closed_at"] >= df["created_at"])


def _closed_deals_have_no_expected_close(df: pd.DataFrame) -> pd.Series:
    if "expected_close_at" not in df.columns:
        return pd.Series(True, index=df.index)
    return (df["status"] == "open") | df["expected_close_at"].isna()


SCHEMAS = {
    "opportunities": pa.DataFrameSchema(
        {
            "opportunity_id": pa.Column(nullable=False, unique=True),
            "status": pa.Column(checks=pa.Check.isin(["open", "won", "lost"]), nullable=False),
            "won": pa.Column("Int64", checks=pa.Check.isin([0, 1]), nullable=True),
            "created_at": pa.Column(_TS, nullable=True, required=False),
            "closed_at": pa.Column(_TS, nullable=True, required=False),
            "expected_close_at": pa.Column(_TS, nullable=True, required=False),
            "amount": pa.Column(float, checks=pa.Check.ge(0), nullable=True, required=False),
            "crm_probability": pa.Column(float, checks=pa.Check.in_range(0, 100), nullable=True, required=False),
        },
        checks=[
            pa.Check(_closed_not_before_created, name="closed_at >= created_at", element_wise=False),
            pa.Check(_closed_deals_have_no_expected_close, name="expected_close_at only on open deals"),
        ],
        name="opportunities",
    ),
    "stage_history": pa.DataFrameSchema(
        {
            "opportunity_id": pa.Column(nullable=False),
            "stage": pa.Column(nullable=False),
            "entered_at": pa.Column(_TS, nullable=False),
        },
        name="stage_history",
    ),
    "activities": pa.DataFrameSchema(
        {
            "activity_type": pa.Column(nullable=False),
            "occurred_at": pa.Column(_TS, nullable=False),
            "value": pa.Column(nullable=True, required=False),
        },
        name="activities",
    ),
    "experiment": pa.DataFrameSchema(
        {
            "unit_id": pa.Column(nullable=False),
            "variant": pa.Column(nullable=False),
            "converted": pa.Column("Int64", checks=pa.Check.isin([0, 1]), nullable=True, required=False),
            "value": pa.Column(nullable=True, required=False),
            "assigned_at": pa.Column(_TS, nullable=True, required=False),
        },
        name="experiment",
    ),
}
FAILURE_COLUMNS = ["table", "column", "check", "failure_case", "source_row"]


def validate_table(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Every failure of ``table``'s schema, as rows: ``table``, ``column``, ``check``, ``failure_case``, ``source_row``.

    ``source_row`` is the 1-based data row of the export (empty for column-level failures). An empty frame means valid.
    """
    try:
        SCHEMAS[table].validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
        # A table-level check reports the failing row once per column: keep one line per row, naming the row's id.
        table_level = fc["schema_context"] == "DataFrameSchema"
        first_col = df.columns[0]
        fc = pd.concat([fc[~table_level], fc[table_level & (fc["column"] == first_col)].assign(column="(row)")])
        rows = pd.DataFrame({
            "table": table,
            "column": fc["column"].astype("str").where(fc["column"].notna(), "(table)"),
            "check": fc["check"].astype("str"),
            "failure_case": fc["failure_case"].astype("str"),
            "source_row": pd.to_numeric(fc["index"], errors="coerce").add(1).astype("Int64"),
        })
        return rows.sort_values(["column", "check", "source_row"]).reset_index(drop=True)
    return pd.DataFrame(columns=FAILURE_COLUMNS)


def validate_tables(cleaned: dict) -> pd.DataFrame:
    """:func:`validate_table` for every cleaned table, stacked."""
    parts = [validate_table(c.data, name) for name, c in cleaned.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)
