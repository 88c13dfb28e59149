"""The embedded engine: DuckDB in this process, reading local files where they lie."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ..errors import ParamsError
from .base import Engine
from .sources import literal, quote, read_with_pandas, utf8_separator


class DuckDBEngine(Engine):
    """An in-memory DuckDB connection with funnel_lab's limits: bounded memory (when given), spilling to a shared
    temporary folder, no progress bar.

    Parameters
    ----------
    memory_limit : str, optional
        DuckDB's ``memory_limit`` (e.g. ``"1500MB"``); by default DuckDB's own (80% of the machine).
    """

    name = "duckdb"
    #: :func:`funnel_lab.data.activities.behaviour_features` aggregates this many events per pass at most
    rows_per_pass = 32_000_000

    def __init__(self, *, memory_limit: str | None = None) -> None:
        config = {"temp_directory": str(Path(tempfile.gettempdir()) / "funnel_lab_duckdb")}
        if memory_limit:
            config["memory_limit"] = memory_limit
        # one shared folder: DuckDB names its spill files uniquely and removes them
        self.con = duckdb.connect(config=config)
        try:
            self.con.execute("SET enable_progress_bar = false")  # a scheduler's log is no place for progress bars
        except duckdb.Error:
            pass  # Jupyter refuses the setting; without ipywidgets it draws no bar there anyway

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, frame)  # scanned in place, not copied

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def create(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def append(self, name: str, sql: str) -> None:
        self.con.execute(f"INSERT INTO {name} {sql}")

    def drop(self, *names: str) -> None:
        for name in names:
            for kind in ("TABLE", "VIEW"):
                try:
                    self.con.execute(f"DROP {kind} IF EXISTS {name}")
                except duckdb.CatalogException:
                    pass  # a view asked to be dropped as a table, or the other way round

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def schema(self, relation: str) -> list[tuple[str, str]]:
        rel = self.con.sql(f"SELECT * FROM {relation} LIMIT 0")
        return [(str(c), str(t)) for c, t in zip(rel.columns, rel.types)]

    def set_memory_limit(self, limit: str) -> None:
        self.con.execute(f"SET memory_limit = {literal(limit)}")

    def register_parquet(self, name: str, path: str, columns: list[str] | None = None) -> None:
        cols = ", ".join(quote(c) for c in columns) if columns else "*"
        self.view(name, f"SELECT {cols} FROM read_parquet({literal(_parquet_files(Path(path)))})")

    def read_source(self, src, *, table: str, numbered: str) -> str:
        if src.sql is not None:
            db = str(src.database)
            if "://" not in db and Path(db).is_file() and Path(db).read_bytes()[:16] != b"SQLite format 3\x00":
                # a DuckDB database: the query runs inside it, so only the aggregates leave the database
                self.con.execute(f"ATTACH {literal(db)} AS source_db (READ_ONLY)")
                self.con.execute("SET search_path = 'source_db.main,memory.main'")  # the query names its tables
                try:
                    self.view(table, src.sql)
                    self.con.execute(f"SELECT * FROM {table} LIMIT 0")
                except duckdb.Error as e:
                    raise ParamsError(f"data.activities: the query {src.sql!r} failed in {db}: "
                                      f"{str(e).strip().splitlines()[0]}") from None
                where = f"sql @ {db}"
            else:
                where = read_with_pandas(self, src, table=table)
        else:
            path = Path(src.path)
            if path.is_file() and path.suffix.lower() == ".parquet":
                self.view(table, f"SELECT * FROM read_parquet({literal(str(path))})")
                # the file's own row numbers, read in parallel: row_number() over a whole scan runs on one thread
                self.view(numbered, f"SELECT file_row_number + 1 AS __fl_row, * EXCLUDE (file_row_number) "
                          f"FROM read_parquet({literal(str(path))}, file_row_number = true)")
                return str(path)
            if path.is_dir():
                self.register_parquet(table, str(path))
            elif (sep := utf8_separator(src, path)) is not None:
                self.view(table, f"SELECT * FROM read_csv({literal(str(path))}, all_varchar = true, header = true, "
                          f"delim = {literal(sep)})")
            else:
                read_with_pandas(self, src, table=table)
            where = str(path)
        self.numbered(numbered, table)
        return where

    def close(self) -> None:
        self.con.close()  # also drops its temporary tables and their spill files


def _parquet_files(path: Path) -> str:
    """A Parquet file, or every Parquet file under a folder (in name order)."""
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)
