"""Where the heavy aggregations run: the embedded DuckDB (the default) or Spark.

Every heavy step (stage history to funnel reach and durations, the activity log's checks and behaviour features) is
one SQL text in DuckDB's dialect. DuckDB runs it as written; another engine runs it as SQLGlot transpiles it
(:meth:`Engine.translate`). Reading a source where it lies is the one thing each engine does its own way.
"""

from __future__ import annotations

from .base import Engine, open_engine

__all__ = ["Engine", "open_engine"]
