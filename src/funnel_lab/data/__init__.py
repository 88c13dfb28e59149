"""The data step: exports in, canonical tables out, nothing lost.

:mod:`.ingest` reads files and queries and maps columns (:mod:`.presets`, one per CRM); :mod:`.coerce` types
columns; :mod:`.clean` runs the audited cleaning steps; :mod:`.schemas` defines the canonical tables (pandera) and
validates them; :mod:`.activities` checks an activity log and aggregates behaviour features in DuckDB;
:mod:`.quality` tabulates what cleaning did; :mod:`.demo` writes the synthetic demo CRM. Nothing here imports the
analyses or the reports; :class:`funnel_lab.Pipeline` calls these in order.
"""
