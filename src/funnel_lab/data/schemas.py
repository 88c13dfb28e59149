"""The canonical tables, defined once as pandera schemas, and their lazy validation (every failure at once).

Each schema lists a table's canonical columns in order; a column's ``metadata`` says what cleaning makes of it
(``kind``: id, status, text, date, number, binary) and marks the ones derived by cleaning rather than read from an
export (``derived``: ``won``). ``required=True`` columns must be in the export or mapped (``opportunity_id`` of the
opportunities may also be generated from row numbers; the activity log names its opportunity by ``opportunity_id``
or by ``account``). Ingest, cleaning and validation all read these definitions: :func:`canonical_columns`,
:func:`required_columns`, :func:`column_kinds`.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

_TS = "datetime64[ns]"


def _col(kind: str, dtype=None, *, required: bool = False, nullable: bool = True, derived: bool = False,
         **kw) -> pa.Column:
    return pa.Column(dtype, nullable=nullable, required=required, metadata={"kind": kind, "derived": derived}, **kw)


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
            "opportunity_id": _col("id", required=True, nullable=False, unique=True),
            "status": _col("status", required=True, nullable=False, checks=pa.Check.isin(["open", "won", "lost"])),
            "won": _col("binary", "Int64", required=True, derived=True, checks=pa.Check.isin([0, 1])),
            "created_at": _col("date", _TS),
            "closed_at": _col("date", _TS),
            "expected_close_at": _col("date", _TS),
            "amount": _col("number", float, checks=pa.Check.ge(0)),
            "currency": _col("text"),
            "exchange_rate": _col("number", float, checks=pa.Check.gt(0)),
            "owner": _col("text"),
            "account": _col("text"),
            "source": _col("text"),
            "segment": _col("text"),
            "crm_stage": _col("text"),
            "crm_probability": _col("number", float, checks=pa.Check.in_range(0, 100)),
        },
        checks=[
            pa.Check(_closed_not_before_created, name="closed_at >= created_at", element_wise=False),
            pa.Check(_closed_deals_have_no_expected_close, name="expected_close_at only on open deals"),
        ],
        name="opportunities",
    ),
    "stage_history": pa.DataFrameSchema(
        {
            "opportunity_id": _col("id", required=True, nullable=False),
            "stage": _col("text", required=True, nullable=False),
            "entered_at": _col("date", _TS, required=True, nullable=False),
            "expected_close_at": _col("date"),
        },
        name="stage_history",
    ),
    "activities": pa.DataFrameSchema(
        {
            "opportunity_id": _col("id"),
            "account": _col("text"),
            "activity_type": _col("text", required=True, nullable=False),
            "occurred_at": _col("date", _TS, required=True, nullable=False),
            "value": _col("number"),
        },
        name="activities",
    ),
    "experiment": pa.DataFrameSchema(
        {
            "unit_id": _col("id", required=True, nullable=False),
            "variant": _col("text", required=True, nullable=False),
            "converted": _col("binary", "Int64", checks=pa.Check.isin([0, 1])),
            "value": _col("number"),
            "pre_value": _col("number"),
            "segment": _col("text"),
            "assigned_at": _col("date", _TS),
        },
        name="experiment",
    ),
}
FAILURE_COLUMNS = ["table", "column", "check", "failure_case", "source_row"]


def canonical_columns(table: str) -> tuple[str, ...]:
    """The columns an export of ``table`` may be mapped onto, in canonical order (derived ones left out).

    Examples
    --------
    >>> canonical_columns("stage_history")
    ('opportunity_id', 'stage', 'entered_at', 'expected_close_at')
    """
    return tuple(n for n, c in SCHEMAS[table].columns.items() if not c.metadata["derived"])


def required_columns(table: str) -> tuple[str, ...]:
    """The canonical columns an export of ``table`` must have (or map), in canonical order."""
    return tuple(n for n, c in SCHEMAS[table].columns.items() if c.required and not c.metadata["derived"])


def column_kinds(table: str) -> dict[str, str]:
    """Canonical column -> what cleaning makes of it: ``id``, ``status``, ``text``, ``date``, ``number``, ``binary``."""
    return {n: c.metadata["kind"] for n, c in SCHEMAS[table].columns.items() if not c.metadata["derived"]}


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
