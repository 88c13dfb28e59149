"""Behaviour features from an activity log (web visits, emails, calls, meetings), point-in-time correct, in the engine.

An event log is usually far larger than the opportunity table, so it never passes through pandas whole: the engine
(:mod:`funnel_lab.engine`: the embedded DuckDB, or Spark) reads it where it lies (a Parquet or CSV file, a query run
inside a DuckDB database or over Spark's catalog), checks it, sets the bad rows aside
and aggregates the rest per opportunity. Only the quarantined rows and the feature table (one row per opportunity)
come back as DataFrames.

Point in time: every opportunity has a cut-off moment, its ``closed_at`` (minus ``features.days_before_close``) when
closed and the analysis date when open. An event counts only if ``occurred_at <= cut-off``, so nothing that happened
after a deal was won or lost reaches a stage rule or a model.

Feature names are fixed, ``<type>`` being the snake_cased activity type (``"Web Visit"`` -> ``web_visit``):

========================  ===========================================================================
``<type>_<N>d``           events of the type with ``cut-off - N days < occurred_at <= cut-off``
``<type>_total``          events of the type up to the cut-off
``days_since_last_<type>``  days from the type's last event to the cut-off (missing when none)
``<type>_value_<N>d``     sum of ``value`` in the window (for the types whose events carry a ``value``)
``<type>_value_total``    sum of ``value`` up to the cut-off
``<type>_value_mean``     mean of ``value`` up to the cut-off (missing when none)
``activities_<N>d``       events of any type in the window; ``activities_total`` up to the cut-off
``active_days_<N>d``      distinct calendar days with an event in the window; ``active_days_total``
``days_since_last_activity``  days from the last event of any type to the cut-off
``touch_span_days``       days from the first to the last event up to the cut-off
========================  ===========================================================================

Counts are 0 for a deal without events; every feature is missing for a deal without a cut-off (closed, no
``closed_at``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import TableSource
from ..engine import Engine, open_engine
from ..engine.sources import check_file, literal as _literal, quote as _quote
from ..errors import ParamsError
from .clean import AUDIT_COLUMNS
from .coerce import parse_dates
from .ingest import map_columns, map_values, require_columns, snake_case, source_sha256

__all__ = ["ActivityLog", "FEATURE_KINDS", "behaviour_features", "cutoffs", "feature_definitions",
           "load_activity_log", "type_names", "with_features"]

#: Memory DuckDB may use before spilling to disk. With Python and the result this keeps 100M events under 2 GB
#: resident (bench/activity_features.py: 1.85 GB peak).
MEMORY_LIMIT = "1500MB"
#: DuckDB's memory while the features are copied into pandas.
RESULT_MEMORY = "256MB"
#: Most activity types turned into features (the most frequent first); the rest count in ``activities_*`` only.
MAX_TYPES = 25
#: Share of sampled ``occurred_at`` cells that must parse for the column to be read as dates (the rest are
#: quarantined); below it the mapping or ``date_format`` is wrong, and the run stops with examples.
MIN_DATE_SHARE = 0.5
#: What each feature counts, for the definitions table (the report words them).
FEATURE_KINDS = ("type_window", "type_total", "type_recency", "type_value_window", "type_value_total",
                 "type_value_mean", "all_window", "all_total", "days_window", "days_total", "all_recency", "span")
# the temporary tables behaviour_features() works in
_CUTOFFS, _EVENTS, _TYPES, _DAYS, _RESULT = "_fl_cutoffs", "_fl_events", "_fl_types", "_fl_days", "_fl_result"


# ------------------------------------------------------------------------------------------------- the features

def type_names(labels: Sequence[str]) -> dict[str, list[str]]:
    """Feature name -> the activity-type labels it gathers (``"Web Visit"`` and ``"web visit"`` are one type).

    Examples
    --------
    >>> type_names(["Web Visit", "web visit", "Email"])
    {'web_visit': ['Web Visit', 'web visit'], 'email': ['Email']}
    """
    out: dict[str, list[str]] = {}
    for label in labels:
        out.setdefault(snake_case(label), []).append(str(label))
    return out


def _valued(name: str, has_value: bool | Collection[str]) -> bool:
    return name in has_value if not isinstance(has_value, bool) else has_value


def feature_definitions(types: Mapping[str, Sequence[str]], windows: Sequence[int], *,
                        has_value: bool | Collection[str]) -> pd.DataFrame:
    """Every feature :func:`behaviour_features` makes, in its column order: ``feature, kind, activity_type, window``.

    ``kind`` is one of :data:`FEATURE_KINDS`; ``activity_type`` lists the labels gathered (empty for the all-type
    features); ``window`` is N days (0 for up-to-the-cut-off features).
    """
    rows = []
    for name, labels in types.items():
        shown = ", ".join(labels)
        rows += [(f"{name}_{n}d", "type_window", shown, n) for n in windows]
        rows += [(f"{name}_total", "type_total", shown, 0), (f"days_since_last_{name}", "type_recency", shown, 0)]
        if _valued(name, has_value):
            rows += [(f"{name}_value_{n}d", "type_value_window", shown, n) for n in windows]
            rows += [(f"{name}_value_total", "type_value_total", shown, 0),
                     (f"{name}_value_mean", "type_value_mean", shown, 0)]
    rows += [(f"activities_{n}d", "all_window", "", n) for n in windows] + [("activities_total", "all_total", "", 0)]
    rows += [(f"active_days_{n}d", "days_window", "", n) for n in windows] + [("active_days_total", "days_total", "", 0)]
    rows += [("days_since_last_activity", "all_recency", "", 0), ("touch_span_days", "span", "", 0)]
    return pd.DataFrame(rows, columns=["feature", "kind", "activity_type", "window"]).astype(
        {"feature": "str", "kind": "str", "activity_type": "str", "window": "int64"})


def _significant(x: pd.Series, digits: int = 12) -> pd.Series:
    """``x`` rounded to ``digits`` significant digits (missing stays missing)."""
    a = x.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = np.where(np.isfinite(a) & (a != 0), np.floor(np.log10(np.abs(a))), 0.0)
    scale = 10.0 ** (digits - 1 - exp)
    return pd.Series(np.round(a * scale) / scale, index=x.index, name=x.name)


def _window_us(windows: Sequence[int]) -> dict[int, str]:
    return {n: str(int(n) * 86_400_000_000) for n in windows}  # window length in microseconds


def _compact_events_sql(events: str, *, types: Mapping[str, Sequence[str]], any_value: bool, key: str) -> str:
    """Events joined to their opportunity's cut-off, kept only up to it, in a compact form: ``i`` (the cut-off row),
    ``k`` (the type's position in ``types``, -1 for the rest), ``age`` (microseconds before the cut-off), ``back``
    (calendar days before the cut-off's day) and ``v`` (the value)."""
    code = " ".join(f"WHEN {_literal(label)} THEN {i}" for i, labels in enumerate(types.values()) for label in labels)
    type_code = f"CASE e.activity_type {code} ELSE -1 END" if code else "-1"
    join = "e.account = c.account" if key == "account" else "e.opportunity_id = c.opportunity_id"
    return f"""
        SELECT c.i, ({type_code})::SMALLINT AS k, date_diff('microsecond', e.occurred_at, c.cutoff) AS age,
               date_diff('day', CAST(e.occurred_at AS DATE), CAST(c.cutoff AS DATE))::INTEGER AS back,
               {"e.value" if any_value else "NULL::DOUBLE"} AS v
        FROM {events} AS e JOIN {_CUTOFFS} AS c ON {join}
        WHERE e.occurred_at <= c.cutoff"""


def _type_pass_sql(windows: Sequence[int], where: str, *, values: bool) -> str:
    """One row per opportunity and type: events per window and in all, the youngest and oldest age and, with
    ``values``, value sums per window and in all and the count of values."""
    us = _window_us(windows)
    aggs = ([f"count(*) FILTER (WHERE age < {us[n]}) AS n_{n}" for n in windows]
            + ["count(*) AS n_t", "min(age) AS last_age", "max(age) AS first_age"])
    if values:
        aggs += ([f"sum(v) FILTER (WHERE age < {us[n]}) AS v_{n}" for n in windows]
                 + ["sum(v) AS v_t", "count(v) AS v_n"])
    return f"SELECT i, k, {', '.join(aggs)} FROM {_EVENTS} {where} GROUP BY i, k"


def _day_pass_sql(windows: Sequence[int], where: str) -> str:
    """One row per opportunity: distinct calendar days with an event, per window and in all.

    A day is in an N-day window when one of its events is (its age below N days). The days are first gathered as
    bits, one 64-bit mask per opportunity and block of 63 days counted back from the cut-off's day: a twentieth of
    the groups that one row per day would make (63, not 64: a signed 64-bit integer, which every engine has).
    """
    us = _window_us(windows)
    bit = "(1::BIGINT << (back % 63))"
    masks = [f"bit_or({bit}) FILTER (WHERE age < {us[n]}) AS m_{n}" for n in windows] + [f"bit_or({bit}) AS m_t"]
    days = [f"sum(bit_count(m_{n}))::BIGINT AS d_{n}" for n in windows] + ["sum(bit_count(m_t))::BIGINT AS d_t"]
    return (f"SELECT i, {', '.join(days)} FROM (SELECT i, {', '.join(masks)} FROM {_EVENTS} {where} "
            f"GROUP BY i, back // 63) GROUP BY i")


def _result_sql(types: Mapping[str, Sequence[str]], windows: Sequence[int], has_value: bool | Collection[str]) -> str:
    """The per-type rows pivoted into one row per opportunity (a join per type), with the day counts, in
    :func:`feature_definitions`' column order, ordered by ``opportunity_id``."""
    day = 86_400_000_000
    alias = {name: f"t{j}" for j, name in enumerate(types)}
    every = [*alias.values(), "tx"]  # tx: the types beyond MAX_TYPES, counted in the all-type features only

    def count(expr: str, name: str) -> str:  # 0 without events, missing without a cut-off
        return f"CASE WHEN c.cutoff IS NOT NULL THEN {expr} END AS {_quote(name)}"

    def total(col: str) -> str:
        return " + ".join(f"coalesce({t}.{col}, 0)" for t in every)

    out = []
    for name, t in alias.items():
        out += [count(f"coalesce({t}.n_{n}, 0)", f"{name}_{n}d") for n in windows]
        out += [count(f"coalesce({t}.n_t, 0)", f"{name}_total"),
                f"CAST({t}.last_age AS DOUBLE) / {day} AS {_quote('days_since_last_' + name)}"]
        if _valued(name, has_value):
            out += [count(f"coalesce({t}.v_{n}, 0)", f"{name}_value_{n}d") for n in windows]
            out += [count(f"coalesce({t}.v_t, 0)", f"{name}_value_total"),
                    f"{t}.v_t / nullif({t}.v_n, 0) AS {_quote(name + '_value_mean')}"]
    out += [count(total(f"n_{n}"), f"activities_{n}d") for n in windows] + [count(total("n_t"), "activities_total")]
    out += [count(f"coalesce(d.d_{n}, 0)", f"active_days_{n}d") for n in windows]
    out += [count("coalesce(d.d_t, 0)", "active_days_total")]
    last = f"least({', '.join(f'{t}.last_age' for t in every)})"  # least() skips missing values
    first = f"greatest({', '.join(f'{t}.first_age' for t in every)})"
    out += [f"CAST({last} AS DOUBLE) / {day} AS days_since_last_activity",
            f"CAST({first} - {last} AS DOUBLE) / {day} AS touch_span_days"]
    joins = [f"LEFT JOIN (SELECT * FROM {_TYPES} WHERE k = {j}) AS t{j} ON t{j}.i = c.i" for j in range(len(types))]
    joins += [f"LEFT JOIN (SELECT * FROM {_TYPES} WHERE k = -1) AS tx ON tx.i = c.i",
              f"LEFT JOIN {_DAYS} AS d ON d.i = c.i"]
    return f"SELECT c.opportunity_id, {', '.join(out)} FROM {_CUTOFFS} AS c {' '.join(joins)} ORDER BY c.opportunity_id"


def behaviour_features(engine: Engine, events: str, cutoffs: str, *, windows: Sequence[int] = (30, 90),
                       types: Mapping[str, Sequence[str]] | None = None, key: str = "opportunity_id",
                       has_value: bool | Collection[str] | None = None,
                       memory_limit: str = MEMORY_LIMIT) -> pd.DataFrame:
    """Per-opportunity behaviour features from an event relation, each counted up to the opportunity's cut-off.

    Parameters
    ----------
    engine : Engine
        Where the events lie and the aggregation runs (:func:`funnel_lab.engine.open_engine`).
    events : str
        A FROM-able relation (a view name, ``read_parquet('...')``, ...): ``opportunity_id`` (or ``account``),
        ``activity_type``, ``occurred_at`` (TIMESTAMP) and, with values, ``value`` (DOUBLE).
    cutoffs : str
        A FROM-able relation: ``opportunity_id``, ``cutoff`` (TIMESTAMP, may be NULL) and ``account`` when ``key``
        is ``"account"`` (:func:`cutoffs`).
    windows : sequence of int
        Window lengths in days.
    types : mapping, optional
        Feature name -> labels; by default every label in ``events`` (:func:`type_names`, the :data:`MAX_TYPES`
        most frequent).
    key : {"opportunity_id", "account"}
        How events find their opportunities: directly, or through the account (an account's events count for each
        of its opportunities, each up to its own cut-off).
    has_value : bool or collection of str, optional
        Whether to sum and average ``value``: for every type, or for the types (feature names) listed; default:
        whether ``events`` has a ``value`` column.
    memory_limit : str
        The embedded engine's memory while it aggregates (its ``rows_per_pass`` is sized for the default); the
        engine keeps it afterwards.

    Returns
    -------
    DataFrame
        ``opportunity_id`` then the features, one row per cut-off row, ordered by ``opportunity_id``; counts as
        ``Int64`` (missing only without a cut-off), days and sums as ``float64``.

    Examples
    --------
    >>> with open_engine() as engine:  # doctest: +SKIP
    ...     behaviour_features(engine, "read_parquet('events.parquet')", "read_parquet('cutoffs.parquet')")

    Notes
    -----
    The events are read and joined to their cut-off once, into a compact temporary table (an integer per
    opportunity, a small type code, the event's age before the cut-off in microseconds and its calendar day counted
    back from the cut-off's). Two aggregations run on it, in passes over slices of the opportunities
    (the engine's ``rows_per_pass``; one pass on Spark): per opportunity and type (counts and value sums per window,
    the youngest and oldest age), and per opportunity (active days, from one bit mask per 63 days). The per-type rows are then joined into
    columns. Integer keys, few aggregates per group and passes that fit in memory keep a hundred million events
    within :data:`MEMORY_LIMIT` and faster than one plain query with all the memory it wants
    (``bench/activity_features.py``).
    """
    if types is None:
        labels = engine.rows(f"SELECT activity_type, count(*) AS n FROM {events} WHERE activity_type IS NOT NULL "
                             f"GROUP BY 1 ORDER BY n DESC, 1")
        types = dict(list(type_names([label for label, _ in labels]).items())[:MAX_TYPES])
    if has_value is None:
        has_value = "value" in [c for c, _ in engine.schema(events)]
    defs = feature_definitions(types, windows, has_value=has_value)
    clash = defs.loc[defs["feature"].duplicated(), "feature"].tolist()
    if clash:
        made_by = defs.loc[defs["feature"] == clash[0], "activity_type"].tolist()
        raise ParamsError(f"data.activities: two features would be named {clash[0]!r} (activity types: "
                          f"{', '.join(repr(t) if t else 'all' for t in made_by)}); relabel an activity type with "
                          f"`values: {{activity_type: {{...}}}}`")
    any_value = has_value is True or (not isinstance(has_value, bool) and bool(has_value))
    engine.set_memory_limit(memory_limit)
    try:
        engine.create(_CUTOFFS, f"SELECT CAST(row_number() OVER (ORDER BY opportunity_id) AS INTEGER) AS i, * "
                                f"FROM {cutoffs}")
        engine.create(_EVENTS, _compact_events_sql(events, types=types, any_value=any_value, key=key))
        rows = engine.rows(f"SELECT count(*) FROM {_EVENTS}")[0][0]
        # Aggregated in passes over slices of the opportunities, each small enough to stay in memory: one pass
        # spilling its hash tables to disk takes twice as long as two that do not.
        passes = max(1, -(-rows // engine.rows_per_pass)) if engine.rows_per_pass else 1
        for p in range(passes):
            where = f"WHERE i % {passes} = {p}" if passes > 1 else ""
            for table, sql in ((_TYPES, _type_pass_sql(windows, where, values=any_value)),
                               (_DAYS, _day_pass_sql(windows, where))):
                if p == 0:
                    engine.create(table, sql)
                else:
                    engine.append(table, sql)
        engine.drop(_EVENTS)
        engine.create(_RESULT, _result_sql(types, windows, has_value))
        engine.drop(_CUTOFFS, _TYPES, _DAYS)
        # Before pandas copies the result, DuckDB gives back the memory it held (the table spills instead), so that
        # the two never sit side by side at full size: a hundred million events stay under 2 GB resident.
        engine.set_memory_limit(RESULT_MEMORY)
        frame = engine.frame(f"SELECT * FROM {_RESULT}", nullable_ints=True)
    finally:
        engine.set_memory_limit(memory_limit)
        engine.drop(_CUTOFFS, _EVENTS, _TYPES, _DAYS, _RESULT)
    counts = set(defs.loc[defs["kind"].isin(["type_window", "type_total", "all_window", "all_total", "days_window",
                                             "days_total"]), "feature"])
    # column by column: converting the whole frame at once would hold a second copy of it (a million rows x 50)
    for c in frame.columns:
        frame[c] = frame[c].astype("str" if c == "opportunity_id" else "Int64" if c in counts else "float64")
    return frame


def cutoffs(opportunities: pd.DataFrame, as_of: pd.Timestamp, *, days_before_close: int = 0) -> pd.DataFrame:
    """Each opportunity's cut-off: ``closed_at - days_before_close`` when won or lost, ``as_of`` when open.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``cutoff`` (missing for a closed deal without ``closed_at``) and ``account`` when the
        opportunities have one.
    """
    status = opportunities["status"].astype("str")
    closed_at = (opportunities["closed_at"] if "closed_at" in opportunities
                 else pd.Series(pd.NaT, index=opportunities.index, dtype="datetime64[ns]"))
    cut = closed_at - pd.Timedelta(days=int(days_before_close))
    cut = cut.where(status.isin(["won", "lost"]).to_numpy(), pd.Timestamp(as_of))
    out = pd.DataFrame({"opportunity_id": opportunities["opportunity_id"].astype("str").to_numpy(),
                        "cutoff": pd.to_datetime(cut).astype("datetime64[us]").to_numpy()})
    if "account" in opportunities:
        out["account"] = opportunities["account"].astype("str").to_numpy()
    return out


# ----------------------------------------------------------------------------------- reading and checking the log

@dataclass
class ActivityLog:
    """The activity log after checking, and the features built from it.

    Attributes
    ----------
    source : str
        The file or query read.
    sha256 : str
    rows : int
        Data rows read.
    column_map : DataFrame
        ``source_column, column`` (canonical names for the mapped ones, snake_case for the rest).
    audit : DataFrame
        The cleaning audit's columns (``table = "activities"``): read, each check, overall; rows in = rows out +
        rows removed at every step.
    quarantine : DataFrame
        Every removed row as read: ``table, source_row, reason`` then the source columns.
    types : DataFrame
        ``activity_type`` (label after ``values:``), ``name`` (its feature prefix, empty beyond
        :data:`MAX_TYPES`), ``events`` (rows kept).
    features : DataFrame
        :func:`behaviour_features` for every opportunity.
    definitions : DataFrame
        :func:`feature_definitions`.
    key : str
        ``opportunity_id`` or ``account``: how the events found their opportunities.
    """

    source: str
    sha256: str
    rows: int
    column_map: pd.DataFrame
    audit: pd.DataFrame
    quarantine: pd.DataFrame
    types: pd.DataFrame
    features: pd.DataFrame
    definitions: pd.DataFrame
    key: str


def _raw_relation(engine: Engine, src: TableSource) -> str:
    """Register the source as view ``raw_events``, and as ``numbered_events`` with the row number ``__fl_row`` (from
    1) first; returns where it was read."""
    if src.path is not None:
        check_file(Path(src.path), "data.activities.path")
    return engine.read_source(src, table="raw_events", numbered="numbered_events")


def _timestamp_expr(engine: Engine, column: str, kind: str, date_format: str, where: str) -> str:
    """SQL turning the source column into a TIMESTAMP (NULL where it does not parse), the format chosen once."""
    col = f"raw.{_quote(column)}"
    if kind.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({col} AS TIMESTAMP)"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    sample = engine.frame(f"SELECT {text} AS v FROM raw_events AS raw WHERE {text} IS NOT NULL LIMIT 10000")["v"]
    # the format is chosen as for every other date column (coerce.parse_dates), then applied in the engine
    parsed, fmt = parse_dates(sample, date_format=date_format)
    if sample.empty or parsed.notna().mean() >= MIN_DATE_SHARE:  # cells that still fail are quarantined
        return f"TRY_CAST({text} AS TIMESTAMP)" if fmt == "ISO8601" else f"try_strptime({text}, {_literal(fmt)})"
    bad = sample[parsed.isna()].head(3).tolist()
    raise ParamsError(f"{where}: column {column!r} (occurred_at) does not hold dates: {parsed.isna().mean():.0%} of "
                      f"{len(sample):,} sampled cells do not parse in any known format, e.g. {bad}; "
                      f"set `date_format:` (e.g. '%d/%m/%Y %H:%M') in data.activities")


def _audit(reasons: pd.Series, n_rows: int, merged_rows: int, *, key: str, read: str) -> pd.DataFrame:
    """The cleaning audit of the log from the quarantine's reasons: one step per check, in the order they apply."""
    step_of = reasons.str.extract(r"^(occurred_at|activity_type|unknown|" + key + r")")[0]
    steps = [("occurred_at", ["occurred_at"], "rows whose occurred_at is missing or not a date"),
             ("activity_type", ["activity_type"], "rows without an activity type"),
             ("opportunity", ["unknown", key], f"rows whose {key} is missing or not among the opportunities")]
    rows, rows_in = [{"step": "read", "rows_in": n_rows, "rows_out": n_rows, "rows_removed": 0, "rows_changed": 0,
                      "detail": read}], n_rows
    for step, prefixes, detail in steps:
        removed = int(step_of.isin(prefixes).sum())
        rows.append({"step": step, "rows_in": rows_in, "rows_out": rows_in - removed, "rows_removed": removed,
                     "rows_changed": 0, "detail": detail})
        rows_in -= removed
    rows.append({"step": "overall", "rows_in": n_rows, "rows_out": rows_in, "rows_removed": n_rows - rows_in,
                 "rows_changed": int(merged_rows), "detail": "rows_in = rows_out + rows_removed"
                 + (f"; {merged_rows:,} rows moved to the record kept for a duplicate" if merged_rows else "")})
    return pd.DataFrame(rows).assign(table="activities")[AUDIT_COLUMNS]


def load_activity_log(src: TableSource, opportunities: pd.DataFrame, *, as_of: pd.Timestamp,
                      windows: Sequence[int] = (30, 90), days_before_close: int = 0,
                      placeholders: Sequence[str] = (), merged_ids: pd.Series | None = None,
                      sha256: str | None = None, engine=None) -> ActivityLog:
    """Read, check and aggregate the activity log: rows that cannot be used are quarantined with a reason, the
    rest become features of the opportunities, each counted up to its cut-off (:func:`cutoffs`).

    Parameters
    ----------
    src : TableSource
        ``data.activities`` (``columns:``, ``values:``, ``preset:``, ``date_format:`` as for other tables).
    opportunities : DataFrame
        The cleaned opportunities.
    as_of : Timestamp
        The cut-off of open opportunities.
    windows, days_before_close
        ``features.windows`` and ``features.days_before_close``.
    placeholders : sequence of str
        Cell values meaning missing (``cleaning.placeholders``).
    merged_ids : Series, optional
        Removed duplicate id -> kept id (:attr:`funnel_lab.data.clean.Cleaned.merged_ids`): their events follow the
        merge.
    sha256 : str, optional
        :func:`~funnel_lab.data.ingest.source_sha256` of ``src`` when already known (a large log is read once).
    engine : EngineSettings, optional
        ``engine:`` of the params: where the log is read, checked and aggregated (default: the embedded DuckDB).

    Returns
    -------
    ActivityLog

    Raises
    ------
    ParamsError
        Unreadable source, unmapped required column, or an ``occurred_at`` column that holds no dates.
    """
    with open_engine(engine, memory_limit=MEMORY_LIMIT) as eng:  # closing drops its tables and their spill files
        log = _read_and_check(eng, src, opportunities, as_of=as_of, windows=windows,
                              days_before_close=days_before_close, placeholders=placeholders, merged_ids=merged_ids)
    return replace(log, sha256=sha256 or source_sha256(src))


def _id_map(opportunities: pd.DataFrame, merged_ids: pd.Series | None, *, key: str) -> pd.DataFrame:
    """One lookup for the log's ids, so that a single join both follows the dedupe and marks the known ones:
    ``old`` (an id as the log writes it), ``new`` (the opportunity its events go to) and ``known`` (whether that is
    one of the opportunities)."""
    ids = opportunities["opportunity_id" if key == "opportunity_id" else "account"].dropna().astype("str").unique()
    merged = merged_ids if merged_ids is not None and key == "opportunity_id" else pd.Series(dtype="str")
    moved = pd.DataFrame({"old": merged.index.astype("str"), "new": merged.astype("str").to_numpy()})
    moved = moved[~moved["old"].isin(ids)]  # one row per id as written: the join must never repeat an event
    out = pd.concat([pd.DataFrame({"old": ids, "new": ids}), moved], ignore_index=True)
    return out.assign(known=out["new"].isin(ids))


def _read_and_check(engine: Engine, src: TableSource, opportunities: pd.DataFrame, *, as_of: pd.Timestamp,
                    windows: Sequence[int], days_before_close: int, placeholders: Sequence[str],
                    merged_ids: pd.Series | None) -> ActivityLog:
    where = _raw_relation(engine, src)
    source_cols, kinds = map(list, zip(*engine.schema("raw_events")))
    if any(c.lower().startswith("__fl_") for c in source_cols):
        raise ParamsError(f"data.activities: {where} has a column named __fl_*, a prefix funnel_lab keeps for its "
                          f"own fields; rename it in the source")
    _, column_map, _ = map_columns(pd.DataFrame({c: pd.Series(dtype="str") for c in source_cols}), src,
                                table="activities", source=where)
    canon = {c: s for s, c in zip(column_map["source_column"], column_map["column"])}
    require_columns(canon, table="activities", source=where, read=source_cols)
    key = "opportunity_id" if "opportunity_id" in canon else "account"
    from .presets import get_preset

    tokens = ", ".join(_literal(t) for t in [*placeholders, *get_preset(src.preset).placeholders] if t != "")

    def text(c: str) -> str:
        t = f"NULLIF(trim(CAST(raw.{_quote(canon[c])} AS VARCHAR)), '')"
        return f"CASE WHEN {t} IN ({tokens}) THEN NULL ELSE {t} END" if tokens else t

    kind = dict(zip(source_cols, kinds))[canon["occurred_at"]]
    ts = _timestamp_expr(engine, canon["occurred_at"], kind, src.date_format, where)
    value = f"TRY_CAST({text('value')} AS DOUBLE)" if "value" in canon else "NULL::DOUBLE"
    has_value = "value" in canon

    # activity-type labels after `values:` (matched as for other tables), one small mapping table
    labels = engine.frame(f"SELECT {text('activity_type')} AS label, count(*) AS n FROM raw_events AS raw "
                          f"GROUP BY 1")
    mapping = src.values.get("activity_type", {})
    labels = labels.assign(label=labels["label"].astype("str"))
    labels = labels.assign(mapped=map_values(labels["label"], mapping) if mapping else labels["label"])
    engine.register("type_map", labels[labels["label"].notna()][["label", "mapped"]])

    engine.register("id_map", _id_map(opportunities, merged_ids, key=key))
    ident = text(key)
    reason = (f"CASE WHEN __fl_ts IS NULL AND __fl_ts_text IS NULL THEN 'occurred_at is missing' "
              f"WHEN __fl_ts IS NULL THEN 'occurred_at is not a date: ' || __fl_ts_text "
              f"WHEN __fl_type IS NULL THEN 'activity_type is missing' "
              f"WHEN __fl_id_raw IS NULL THEN '{key} is missing' "
              f"WHEN NOT __fl_known THEN 'unknown {key}: ' || __fl_id_raw END")
    source = ", ".join(f"raw.{_quote(c)} AS __fl_source_{j}" for j, c in enumerate(source_cols))
    as_read = ", ".join(f"CASE WHEN __fl_reason IS NOT NULL THEN __fl_source_{j} END AS {_quote(c)}"
                        for j, c in enumerate(source_cols))
    # Checked once into a table (the log may be a hundred million rows): every row's reason, or its clean fields;
    # the source columns are kept only for the rows set aside, for the quarantine. The fields are named __fl_* and
    # the source columns carried by position, so that no source column can stand in for a field.
    engine.create("checked", f"""
        WITH r AS (
            SELECT raw.__fl_row, {source}, {ident} AS __fl_id_raw, coalesce(m.new, {ident}) AS __fl_id,
                   coalesce(m.known, false) AS __fl_known,
                   t.mapped AS __fl_type, {ts} AS __fl_ts, {value} AS __fl_value,
                   {text('occurred_at') if kind.startswith('VARCHAR') else 'NULL'} AS __fl_ts_text
            FROM numbered_events AS raw
            LEFT JOIN type_map AS t ON t.label = {text('activity_type')}
            LEFT JOIN id_map AS m ON m.old = {ident}
        ),
        c AS (SELECT *, {reason} AS __fl_reason FROM r)
        SELECT __fl_row, __fl_reason, __fl_id, __fl_type, __fl_ts, __fl_value, __fl_id <> __fl_id_raw AS __fl_merged,
               {as_read}
        FROM c
    """)
    bad = engine.frame(f"SELECT __fl_row AS source_row, __fl_reason AS reason, "
                       f"{', '.join(_quote(c) for c in source_cols)} FROM checked WHERE __fl_reason IS NOT NULL "
                       f"ORDER BY __fl_row")
    n_rows, merged_rows = engine.rows("SELECT count(*), count(*) FILTER (WHERE __fl_merged) FROM checked")[0]
    audit = _audit(bad["reason"], n_rows, merged_rows, key=key, read=f"{len(source_cols)} columns from {where}")
    quarantine = bad
    quarantine.insert(0, "table", "activities")

    engine.view("events", f"""
        SELECT __fl_id AS {key}, __fl_type AS activity_type, __fl_ts AS occurred_at, __fl_value AS value
        FROM checked WHERE __fl_reason IS NULL""")
    counts = engine.frame("SELECT activity_type, count(*) AS events, count(value) AS valued FROM events "
                          "GROUP BY 1 ORDER BY 2 DESC, 1")
    types = dict(list(type_names(counts["activity_type"].tolist()).items())[:MAX_TYPES])
    name_of = {label: name for name, labels in types.items() for label in labels}
    # value features only for the types that carry a value (minutes of a visit, not of an e-mail)
    valued = set(counts.loc[counts["valued"] > 0, "activity_type"].map(name_of).dropna()) if has_value else set()
    engine.register("cutoffs_frame", cutoffs(opportunities, as_of, days_before_close=days_before_close))
    features = behaviour_features(engine, "events", "cutoffs_frame", windows=windows, types=types, key=key,
                                  has_value=valued)
    # Parallel sums differ in their last bits from run to run; 12 significant digits make a rerun write the same
    # files (and sums of one-decimal minutes read 4.0, not 3.9999999999999996)
    defs = feature_definitions(types, windows, has_value=valued)
    for c in defs.loc[defs["kind"].str.startswith("type_value"), "feature"]:
        features[c] = _significant(features[c])
    return ActivityLog(source=where, sha256="", rows=int(n_rows), column_map=column_map,
                       audit=audit,
                       quarantine=quarantine.reset_index(drop=True),
                       types=counts.assign(name=counts["activity_type"].map(name_of).fillna(""))
                       [["activity_type", "name", "events"]],
                       features=features, definitions=defs,
                       key=key)


def with_features(opportunities: pd.DataFrame, log: ActivityLog | None) -> pd.DataFrame:
    """The opportunities with the log's features as new columns (unchanged without a log).

    Raises
    ------
    ParamsError
        When a feature name is already a column of the opportunities (a rule could not tell them apart).
    """
    if log is None:
        return opportunities
    clash = [c for c in log.features.columns[1:] if c in opportunities.columns]
    if clash:
        raise ParamsError(f"data.activities: the behaviour feature {clash[0]!r} has the name of a column of the "
                          f"opportunities; rename that column (`columns:`) or the activity type (`values:`)")
    feats = log.features.set_index("opportunity_id")
    joined = feats.reindex(opportunities["opportunity_id"].astype("str").to_numpy())
    return pd.concat([opportunities, joined.set_axis(opportunities.index)], axis=1)
