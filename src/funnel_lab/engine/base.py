"""The engine interface the heavy steps use, and the factory that opens the configured one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from ..config import EngineSettings, TableSource


class Engine:
    """SQL over named relations: pandas frames and files go in, DataFrames of aggregates come out.

    SQL handed to an engine is written in DuckDB's dialect; :meth:`translate` turns it into the engine's own.
    Relation names are temporary: a connection's (DuckDB) or a session's temporary views (Spark).
    """

    #: the ``engine.backend`` name
    name = ""
    #: rows an aggregation may take in one pass before it is split into passes over slices (None: never split;
    #: the engine spills and distributes by itself)
    rows_per_pass: int | None = None

    def translate(self, sql: str) -> str:
        """``sql`` (DuckDB's dialect) in this engine's dialect."""
        return sql

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make a pandas frame queryable as ``name``."""
        raise NotImplementedError

    def register_parquet(self, name: str, path: str, columns: list[str] | None = None) -> None:
        """Make a Parquet file (or folder of files) queryable as ``name``, read by the engine where it lies."""
        raise NotImplementedError

    def view(self, name: str, sql: str) -> None:
        """``name`` as a lazy view of ``sql`` (computed where it is used)."""
        raise NotImplementedError

    def create(self, name: str, sql: str) -> None:
        """``name`` as a table holding the result of ``sql`` (computed once)."""
        raise NotImplementedError

    def append(self, name: str, sql: str) -> None:
        """Add the rows of ``sql`` to table ``name`` (only for engines with :attr:`rows_per_pass`)."""
        raise NotImplementedError

    def drop(self, *names: str) -> None:
        """Forget the tables or views ``names`` (missing ones are ignored)."""
        raise NotImplementedError

    def arrow(self, sql: str) -> pa.Table:
        """The result of ``sql`` as an Arrow table."""
        raise NotImplementedError

    def frame(self, sql: str, *, nullable_ints: bool = False) -> pd.DataFrame:
        """The result of ``sql`` as a pandas frame (``nullable_ints``: 64-bit integers as ``Int64``)."""
        mapper = {pa.int64(): pd.Int64Dtype()}.get if nullable_ints else None
        # self_destruct frees each Arrow column once pandas has it: the two copies never sit side by side whole
        return self.arrow(sql).to_pandas(types_mapper=mapper, self_destruct=True, split_blocks=True)

    def rows(self, sql: str) -> list[tuple]:
        """The result of ``sql`` as a list of tuples (for a few rows)."""
        return [tuple(r.values()) for r in self.arrow(sql).to_pylist()]

    def schema(self, relation: str) -> list[tuple[str, str]]:
        """``(column, type)`` of a relation, the type in DuckDB's upper-case names (``VARCHAR``, ``TIMESTAMP``...)."""
        raise NotImplementedError

    def set_memory_limit(self, limit: str) -> None:
        """How much memory the engine may use on this machine before it spills (engines on a cluster ignore it)."""

    def read_source(self, src: TableSource, *, table: str, numbered: str) -> str:
        """Register a table source as view ``table``, read where it lies, and as view ``numbered`` with the
        source's row numbers (``__fl_row`` from 1) first; returns how to name the source in messages."""
        raise NotImplementedError

    def numbered(self, name: str, relation: str) -> None:
        """``name``: ``relation`` with its row numbers, in the order read, as ``__fl_row`` (from 1) first."""
        self.view(name, f"SELECT row_number() OVER () AS __fl_row, * FROM {relation}")

    def close(self) -> None:
        """Release the engine's temporary tables (a shared Spark session stays up for the next step)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_engine(settings: EngineSettings | None = None, *, memory_limit: str | None = None) -> Engine:
    """The engine ``engine:`` in the params names: an embedded DuckDB connection, or a Spark session's.

    Raises
    ------
    ParamsError
        Naming ``engine`` when the engine cannot start (no pyspark, no Java, a master that cannot be reached).
    """
    backend = settings.backend if settings is not None else "duckdb"
    if backend == "spark":
        from .spark import SparkEngine

        return SparkEngine(settings)
    from .embedded import DuckDBEngine

    return DuckDBEngine(memory_limit=memory_limit)
