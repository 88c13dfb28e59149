"""Spark as the engine: the heavy steps run in a Spark session (local, standalone, YARN or Kubernetes) on the
inputs where they lie; only aggregates and per-opportunity results come back to pandas."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.spark import Spark
from sqlglot.time import format_time

from ..errors import ParamsError
from .base import Engine
from .sources import read_with_pandas, utf8_separator

#: What funnel_lab sets on a session it starts (``engine.conf`` adds to and overrides it). Timestamps are naive in
#: the CRM exports: the session reads and writes them in UTC so that no time zone shifts them.
SESSION_DEFAULTS = {
    "spark.app.name": "funnel_lab",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties')}",
}
#: and on a local master: a few shuffle partitions rather than 200 (two cores, data that fit on one machine)
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "8"}
#: ``monotonically_increasing_id()`` puts the partition's index in the bits above these
_PARTITION_SHIFT = 33

#: seconds a standalone master has to answer before the session is refused (Spark itself retries for a minute)
CONNECT_TIMEOUT = 5

_types = {"STRING": "VARCHAR", "TIMESTAMP_NTZ": "TIMESTAMP", "INT": "INTEGER", "LONG": "BIGINT"}


def _java_missing() -> str | None:
    """Why Spark cannot start a JVM here, or None when a ``java`` is found."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return None if (Path(home) / "bin" / "java").is_file() else f"JAVA_HOME={home} has no bin/java"
    return None if shutil.which("java") else "no `java` on PATH and JAVA_HOME is not set"


def _no_master_answers(master: str) -> str | None:
    """For ``spark://host:port[,host:port...]``: why none of the masters accepts a connection, or None when one
    does (and for every other kind of master, which Spark reaches by other means)."""
    if not master.startswith("spark://"):
        return None
    failures = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "7077")
        try:
            with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
                return None
        except (OSError, ValueError) as e:
            failures.append(f"{address}: {getattr(e, 'strerror', None) or e}")
    return "; ".join(failures)


def spark_session(settings):
    """The active SparkSession (a notebook's own, used as it is), or one started from ``engine.master`` and
    ``engine.conf``.

    Raises
    ------
    ParamsError
        Naming ``engine`` when pyspark is not installed, Java is missing or the session does not start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ParamsError("engine.backend: spark needs pyspark 4.0 (pip install 'funnel-lab[spark]')") from None
    active = SparkSession.getActiveSession()
    if active is not None and settings.master is None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    master = settings.master or "local[2]"
    why = _java_missing()
    if why:
        raise ParamsError(f"engine: Spark needs Java 17 to start (master {master}): {why}; install it "
                          f"(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    why = _no_master_answers(master)
    if why:
        raise ParamsError(f"engine.master: no Spark master answers at {master} ({why}); is it running, and is the "
                          f"address right?")
    builder = SparkSession.builder.master(master)
    defaults = {**SESSION_DEFAULTS, **(LOCAL_DEFAULTS if master.startswith("local") else {})}
    for key, value in {**defaults, **settings.conf}.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    try:
        session = builder.getOrCreate()
    except Exception as e:  # py4j and pyspark raise several kinds; the JVM's own message is the useful part
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        cause = next((ln for ln in lines if "Exception:" in ln), lines[0] if lines else type(e).__name__)
        raise ParamsError(f"engine: Spark did not start with master {master!r} (is it reachable, and is "
                          f"engine.conf right?): {cause}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _try_strptime_to_spark(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``try_strptime(text, '%d/%m/%Y')``, which SQLGlot leaves as it is, as Spark's
    ``try_to_timestamp(text, 'dd/MM/yyyy')`` (NULL where the text does not parse)."""
    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        text, fmt = node.expressions
        java = format_time(format_time(fmt.name, DuckDB.TIME_MAPPING, DuckDB.TIME_TRIE),
                           Spark.INVERSE_TIME_MAPPING, Spark.INVERSE_TIME_TRIE)
        return exp.Anonymous(this="try_to_timestamp", expressions=[text, exp.Literal.string(java)])
    return node


class SparkEngine(Engine):
    """Heavy steps in a Spark session; tables made by :meth:`create` are cached in the session (memory, then disk).

    Parameters
    ----------
    settings : EngineSettings
        ``engine:`` of the params (``master``, ``conf``).
    """

    name = "spark"

    def __init__(self, settings) -> None:
        self.spark = spark_session(settings)
        self._cached: dict[str, object] = {}
        self._views: set[str] = set()

    def translate(self, sql: str) -> str:
        tree = sqlglot.parse_one(sql, read="duckdb").transform(_try_strptime_to_spark)
        return tree.sql(dialect="spark")

    def _df(self, sql: str):
        return self.spark.sql(self.translate(sql))

    def register(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        # the schema from the frame's own types: Spark cannot infer one from an empty frame (no merged ids)
        schema = from_arrow_schema(pa.Schema.from_pandas(frame, preserve_index=False))
        df = self.spark.createDataFrame(frame, schema=schema)
        df.createOrReplaceTempView(name)
        self._views.add(name)

    def register_parquet(self, name: str, path: str, columns: list[str] | None = None) -> None:
        df = self.spark.read.parquet(str(path))
        (df.select(*columns) if columns else df).createOrReplaceTempView(name)
        self._views.add(name)

    def view(self, name: str, sql: str) -> None:
        self._df(sql).createOrReplaceTempView(name)
        self._views.add(name)

    def create(self, name: str, sql: str) -> None:
        from pyspark import StorageLevel

        self.drop(name)
        df = self._df(sql).persist(StorageLevel.MEMORY_AND_DISK)
        df.createOrReplaceTempView(name)
        self._cached[name] = df

    def drop(self, *names: str) -> None:
        for name in names:
            df = self._cached.pop(name, None)
            if df is not None:
                df.unpersist()
            self.spark.catalog.dropTempView(name)
            self._views.discard(name)

    def arrow(self, sql: str) -> pa.Table:
        return self._df(sql).toArrow()

    def schema(self, relation: str) -> list[tuple[str, str]]:
        return [(c, _types.get(t.upper(), t.upper())) for c, t in self.spark.table(relation).dtypes]

    def read_source(self, src, *, table: str, numbered: str) -> str:
        if src.sql is not None and str(src.database).lower() == "spark":
            # a query over the session's catalog (Hive, Unity, a lakehouse): written in Spark SQL, run as it is
            try:
                self.spark.sql(src.sql).createOrReplaceTempView(table)
            except Exception as e:
                raise ParamsError(f"data.activities: the query {src.sql!r} failed in Spark: "
                                  f"{str(e).strip().splitlines()[0]}") from None
            self._views.add(table)
            where = "sql @ spark"
        elif src.path is not None and (Path(src.path).suffix.lower() == ".parquet" or Path(src.path).is_dir()):
            self.register_parquet(table, str(src.path))
            where = str(src.path)
        elif src.path is not None and (sep := utf8_separator(src, Path(src.path))) is not None:
            # every column as text, as the embedded engine reads it
            (self.spark.read.option("header", True).option("multiLine", True).option("escape", '"')
             .option("sep", sep).csv(str(src.path)).createOrReplaceTempView(table))
            self._views.add(table)
            where = str(src.path)
        else:
            where = read_with_pandas(self, src, table=table)
        self.numbered(numbered, table)
        return where

    def numbered(self, name: str, relation: str) -> None:
        """Row numbers without a global sort: each partition's count, then its offset plus the row's position in
        it (``monotonically_increasing_id`` is the partition index shifted up and the position)."""
        from pyspark.sql import functions as F

        df = self.spark.table(relation)
        part = F.spark_partition_id()
        counts = dict(df.groupBy(part.alias("p")).count().collect())
        offsets, total = {}, 0
        for p in sorted(counts):
            offsets[p], total = total, total + counts[p]
        offset = F.create_map(*[F.lit(v) for p in offsets for v in (p, offsets[p])]) if offsets else F.create_map()
        position = F.monotonically_increasing_id() - F.shiftleft(part.cast("long"), _PARTITION_SHIFT)
        row = (offset[part] + position + 1).cast("long").alias("__fl_row")
        df.select(row, *[F.col(f"`{c}`") for c in df.columns]).createOrReplaceTempView(name)
        self._views.add(name)

    def close(self) -> None:
        self.drop(*list(self._cached), *list(self._views))
