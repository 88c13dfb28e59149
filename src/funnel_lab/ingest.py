"""Readers and column/value mapping onto the canonical tables; the only module that opens input files."""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import ParamsError, TableSource, did_you_mean

#: Required canonical columns per table (DESIGN.md); `opportunity_id` may be generated from row numbers.
REQUIRED = {
    "opportunities": ("opportunity_id", "status"),
    "stage_history": ("opportunity_id", "stage", "entered_at"),
    "activities": ("activity_type", "occurred_at"),
    "experiment": ("unit_id", "variant"),
}
CANONICAL = {
    "opportunities": (
        "opportunity_id", "status", "created_at", "closed_at", "expected_close_at", "amount", "owner", "account",
        "source", "segment", "crm_stage", "crm_probability",
    ),
    "stage_history": ("opportunity_id", "stage", "entered_at"),
    "activities": ("opportunity_id", "account", "activity_type", "occurred_at", "value"),
    "experiment": ("unit_id", "variant", "converted", "value", "pre_value", "segment", "assigned_at"),
}
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass
class Table:
    """One input table: as read, mapped onto canonical names, and where it came from."""

    name: str
    raw: pd.DataFrame
    data: pd.DataFrame
    column_map: pd.DataFrame
    source: str
    sha256: str
    ids_generated: bool = False
    notes: list[str] = field(default_factory=list)


def snake_case(name: str) -> str:
    """``"Minutes On Site"`` -> ``"minutes_on_site"``; Chinese characters are kept as they are.

    Examples
    --------
    >>> snake_case("Probability (%)"), snake_case("商机 名称")
    ('probability', '商机_名称')
    """
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    s = re.sub(r"[^\w]+", "_", s.lower(), flags=re.UNICODE)
    return re.sub(r"_+", "_", s).strip("_") or "column"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _decode_sample(path: Path, encoding: str) -> tuple[str, str]:
    """The encoding and opening text of a file: UTF-8 (with or without BOM), else GB18030, unless one is given."""
    with path.open("rb") as f:
        sample = f.read(1 << 20)
        truncated = bool(f.read(1))
    for enc in (encoding,) if encoding != "auto" else _ENCODINGS:
        try:
            # final=False lets a multi-byte character cut at the sample's end pass.
            return enc, codecs.getincrementaldecoder(enc)().decode(sample, final=not truncated)
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise ParamsError(f"{path}: unknown encoding {encoding!r} (from `encoding:`)") from None
    raise ParamsError(f"{path}: cannot decode as UTF-8 or GB18030; set `encoding:` for this table")


def _read_text_table(path: Path, src: TableSource) -> pd.DataFrame:
    enc, text = _decode_sample(path, src.encoding)
    sep = src.sep
    if sep == "auto":
        if path.suffix.lower() == ".tsv":
            sep = "\t"
        else:
            try:
                sep = csv.Sniffer().sniff(text[:65536].split("\n", 20)[0] + "\n", delimiters=",;\t|").delimiter
            except csv.Error:
                sep = ","
    try:
        return pd.read_csv(path, sep=sep, encoding=enc, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise ParamsError(f"{path}: cannot read as a {sep!r}-separated table ({e})") from None


def read_raw(src: TableSource) -> pd.DataFrame:
    """Read a table exactly as exported: every cell as text, nothing converted or dropped.

    Parameters
    ----------
    src : TableSource
        ``path`` (.csv .tsv .txt .xlsx .parquet) or ``sql`` with ``database``.

    Returns
    -------
    DataFrame
        Source column names, text cells (Parquet keeps its own types).
    """
    if src.sql is not None:
        return _read_sql(src)
    path = Path(src.path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        return _read_text_table(path, src)
    if suffix == ".xlsx":
        return pd.read_excel(path, sheet_name=src.sheet or 0, dtype=str, keep_default_na=False)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise ParamsError(f"{path}: unsupported file type {suffix!r}; expected .csv .tsv .txt .xlsx or .parquet")


def _read_sql(src: TableSource) -> pd.DataFrame:
    db = src.database or ""
    if "://" in db:
        import sqlalchemy  # optional: only SQL sources given as URLs need it

        with sqlalchemy.create_engine(db).connect() as conn:
            return pd.read_sql_query(sqlalchemy.text(src.sql), conn)
    path = Path(db)
    if not path.is_file():
        raise ParamsError(f"{path}: database file not found")
    if path.read_bytes()[:16] == b"SQLite format 3\x00":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return pd.read_sql_query(src.sql, conn)
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.sql(src.sql).df()


def map_columns(raw: pd.DataFrame, src: TableSource, *, table: str, where: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rename source columns to canonical names (``columns:``), the rest to snake_case; apply ``values:`` maps.

    Parameters
    ----------
    raw : DataFrame
        The table as read.
    src : TableSource
        Its params entry.
    table : str
        Canonical table name (``opportunities``, ...).
    where : str
        Params location for error messages, e.g. ``data.opportunities``.

    Returns
    -------
    data : DataFrame
        Canonical columns first, then every other column as a snake_case feature.
    column_map : DataFrame
        ``source_column``, ``column``: the original name of every column.
    """
    where = where or f"data.{table}"
    source_cols = [str(c) for c in raw.columns]
    rename: dict[str, str] = {}
    for canonical, source in src.columns.items():
        if source not in source_cols:
            raise ParamsError(
                f"{where}.columns.{canonical}: no column {source!r} in {src.path or 'the query'}"
                f"{did_you_mean(source, source_cols)}"
            )
        rename[source] = canonical
    taken = set(rename.values())
    for col in source_cols:
        if col in rename:
            continue
        name = snake_case(col)
        base, i = name, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        rename[col] = name
        taken.add(name)
    data = raw.rename(columns=rename)
    for col, mapping in src.values.items():
        if col not in data.columns:
            raise ParamsError(f"{where}.values.{col}: no column {col!r}{did_you_mean(col, list(data.columns))}")
        stripped = data[col].astype("str").str.strip()
        data[col] = stripped.map(lambda v, m=mapping: m.get(v, v)).where(data[col].notna(), data[col])
    canonical = [c for c in CANONICAL[table] if c in data.columns]
    data = data[canonical + [c for c in data.columns if c not in canonical]]
    column_map = pd.DataFrame({"source_column": source_cols, "column": [rename[c] for c in source_cols]})
    return data, column_map


def load_table(src: TableSource, *, table: str) -> Table:
    """Read one configured table and map it onto canonical names, checking required columns.

    Raises
    ------
    ParamsError
        When the file is missing or unreadable, or a required column is neither present nor mapped.
    """
    raw = read_raw(src)
    data, column_map = map_columns(raw, src, table=table)
    ids_generated = False
    if table == "opportunities" and "opportunity_id" not in data.columns:
        width = max(6, len(str(len(data))))
        ids = [f"row-{i:0{width}d}" for i in range(1, len(data) + 1)]
        data.insert(0, "opportunity_id", pd.array(ids, dtype="str"))
        ids_generated = True
    missing = [c for c in REQUIRED[table] if c not in data.columns]
    if table == "activities" and "opportunity_id" not in data.columns and "account" not in data.columns:
        missing.insert(0, "opportunity_id (or account)")
    if missing:
        have = ", ".join(map(str, raw.columns[:12])) + (" ..." if raw.shape[1] > 12 else "")
        raise ParamsError(
            f"data.{table}: {src.path or 'the query'} has no column for {', '.join(missing)}; "
            f"map one with `columns: {{{missing[0].split()[0]}: <source column>}}` (columns read: {have})"
        )
    source = str(src.path) if src.path else f"sql: {src.sql} @ {src.database}"
    sha = _sha256(Path(src.path)) if src.path else hashlib.sha256(f"{src.database}\n{src.sql}".encode()).hexdigest()
    return Table(table, raw, data, column_map, source, sha, ids_generated)


def load_tables(params) -> dict[str, Table]:
    """Every table configured in ``params.data``, by canonical name."""
    return {name: load_table(src, table=name) for name, src in params.tables().items()}
