"""Benchmark: behaviour features (per activity type and window) from N events vs hand-written DuckDB SQL.

    .venv/bin/python bench/activity_features.py [--rows 100000000] [--deals N] [--keep DIR] [--impl MODULE] [--whole]

The events (default 100M rows over 1M opportunities) and the cut-offs are written as Parquet by DuckDB itself; both
sides read the same files. funnel_lab runs in a child process started before the data is made, so that its peak
memory (ru_maxrss) is its own; it hands its frame back as a Parquet file. The reference is a hand-written query
(aggregate per opportunity and type, pivot with conditional aggregation; active days from a per-day aggregate) on a
plain duckdb.connect(). Prints the generation time, the agreement check, then one JSON line (DESIGN.md "Benchmarks").
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import multiprocessing as mp
import re
import resource
import tempfile
import time
import traceback
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from funnel_lab.engine import open_engine

WINDOWS = [30, 90]
TYPES = [("Web Visit", 45), ("Email Open", 30), ("Email Reply", 10), ("Call", 10), ("Meeting", 5)]  # % of events
START, SPAN_DAYS, AS_OF = "2023-01-01", 730, "2024-12-01"  # events over two years; open deals cut at AS_OF
DATA_VERSION = 1  # bump when the generator changes, so that --keep regenerates


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def write_data(folder: Path, rows: int, deals: int) -> tuple[Path, Path]:
    """Events and cut-offs as Parquet, deterministic (hash of the row number), streamed by DuckDB.

    Events: 99% on the first 98% of the opportunities, skewed (a few accounts with thousands of events; 2% of the
    opportunities have none), 1% on ids that are not in the cut-offs. Types skewed as in TYPES. occurred_at in whole
    seconds over SPAN_DAYS from START, 10% at midnight (date-only imports, which hit the window bounds exactly).
    value NULL for 30%, else minutes (exponential, mean 8, two decimals).
    Cut-offs: one row per opportunity; 60% closed (a cut-off inside the range, half of them at midnight), 35% open
    (cut at AS_OF), 5% NULL.
    """
    ep, cp = folder / "events.parquet", folder / "cutoffs.parquet"
    stray = max(deals // 10, 1)
    width = max(7, len(str(deals + stray)))
    with_events = max(deals * 98 // 100, 1)
    span_s = SPAN_DAYS * 86400
    t0 = duckdb.sql(f"select epoch(timestamp {_sql_str(START)})::bigint").fetchall()[0][0]
    type_case, acc = [], 0
    for name, pct in TYPES[:-1]:
        acc += pct
        type_case.append(f"when h3 % 100 < {acc} then {_sql_str(name)}")
    type_sql = f"case {' '.join(type_case)} else {_sql_str(TYPES[-1][0])} end"
    con = duckdb.connect()
    con.sql("set enable_progress_bar = false")
    con.sql(f"""
        copy (
            with r as (select i, hash(i, 11) h1, hash(i, 12) h2, hash(i, 13) h3, hash(i, 14) h4, hash(i, 15) h5
                       from range({rows}) t(i))
            select 'O' || lpad(cast(case when h1 % 100 = 0 then {deals} + (h2 % {stray})::bigint
                                        else floor({with_events} * pow((h2 >> 11) / 9007199254740992.0, 1.5))::bigint
                                   end as varchar), {width}, '0') as opportunity_id,
                   {type_sql} as activity_type,
                   make_timestamp(({t0} + case when (h4 >> 40) % 10 = 0 then (h4 % {span_s}) // 86400 * 86400
                                               else h4 % {span_s} end)::bigint * 1000000) as occurred_at,
                   case when h5 % 100 < 30 then null
                        else round(-8 * ln((((h5 >> 8) % 1000000) + 1) / 1000001.0), 2) end as value
            from r
        ) to {_sql_str(ep)} (format parquet)
    """)
    con.sql(f"""
        copy (
            select 'O' || lpad(cast(k as varchar), {width}, '0') as opportunity_id,
                   case when hash(k, 21) % 100 < 60
                            then make_timestamp(({t0} + case when hash(k, 22) % 2 = 0
                                                             then hash(k, 23) % {span_s} // 86400 * 86400
                                                             else hash(k, 23) % {span_s} end)::bigint * 1000000)
                        when hash(k, 21) % 100 < 95 then timestamp {_sql_str(AS_OF)}
                   end as cutoff
            from range({deals}) t(k)
        ) to {_sql_str(cp)} (format parquet)
    """)
    con.close()
    return ep, cp


def snake(label: str) -> str:
    """"Web Visit" -> "web_visit": lower case, non-alphanumerics to "_", collapsed, stripped."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def reference(ep: Path, cp: Path, windows: list[int]) -> pd.DataFrame:
    """The same features written directly in DuckDB SQL over the Parquet files, on a plain connection."""
    con = duckdb.connect()
    con.sql("set enable_progress_bar = false")
    ev, cu = f"read_parquet({_sql_str(ep)})", f"read_parquet({_sql_str(cp)})"
    labels = sorted(r[0] for r in con.sql(f"select distinct activity_type from {ev}").fetchall() if r[0] is not None)
    since = {w: f"occurred_at > cutoff - interval {w} day" for w in windows}
    # 1. one row per (opportunity, type): counts and value sums per window, totals, first/last time
    per_type = ", ".join(
        [f"count(*) filter (where {since[w]}) as n_{w}" for w in windows] + ["count(*) as n_total"]
        + [f"sum(value) filter (where {since[w]}) as v_{w}" for w in windows]
        + ["sum(value) as v_total", "count(value) as v_count", "min(occurred_at) as first_at",
           "max(occurred_at) as last_at"])
    # 2. pivot the types into columns (at most one row per type, so max() just picks it), plus the all-type sums
    pivot, cols = [], []
    for label in labels:
        t, is_t = snake(label), f"activity_type = {_sql_str(label)}"
        for w in windows:
            pivot.append(f"max(n_{w}) filter (where {is_t}) as {t}_{w}d")
            cols.append(f"coalesce(p.{t}_{w}d, 0) as {t}_{w}d")
        pivot.append(f"max(n_total) filter (where {is_t}) as {t}_total")
        cols.append(f"coalesce(p.{t}_total, 0) as {t}_total")
        pivot.append(f"max(last_at) filter (where {is_t}) as {t}_last")
        cols.append(f"(epoch(c.cutoff) - epoch(p.{t}_last)) / 86400.0 as days_since_last_{t}")
        for w in windows:
            pivot.append(f"max(v_{w}) filter (where {is_t}) as {t}_value_{w}d")
            cols.append(f"coalesce(p.{t}_value_{w}d, 0) as {t}_value_{w}d")
        pivot.append(f"max(v_total) filter (where {is_t}) as {t}_value_total")
        cols.append(f"coalesce(p.{t}_value_total, 0) as {t}_value_total")
        pivot.append(f"max(v_count) filter (where {is_t}) as {t}_value_count")
        cols.append(f"p.{t}_value_total / nullif(p.{t}_value_count, 0) as {t}_value_mean")
    for w in windows:
        pivot.append(f"sum(n_{w})::bigint as activities_{w}d")
        cols.append(f"coalesce(p.activities_{w}d, 0) as activities_{w}d")
    pivot += ["sum(n_total)::bigint as activities_total", "min(first_at) as first_at", "max(last_at) as last_at"]
    cols += ["coalesce(p.activities_total, 0) as activities_total",
             "(epoch(c.cutoff) - epoch(p.last_at)) / 86400.0 as days_since_last_activity"]
    # 3. active days: one row per (opportunity, calendar date) with its last time; a date counts in a window when
    #    its last event is in it (every event is already <= the cut-off)
    per_day = ", ".join([f"count(*) filter (where last_at > cutoff - interval {w} day) as d_{w}" for w in windows]
                        + ["count(*) as d_total"])
    for w in windows:
        cols.append(f"coalesce(d.d_{w}, 0) as active_days_{w}d")
    cols += ["coalesce(d.d_total, 0) as active_days_total",
             "(epoch(p.last_at) - epoch(p.first_at)) / 86400.0 as touch_span_days"]
    # a NULL cut-off: every feature NULL (the coalesce() above would make the counts 0)
    names = [c.rsplit(" as ", 1)[1] for c in cols]
    final = ", ".join(f"case when cutoff is not null then {n} end as {n}" for n in names)
    out = con.sql(f"""
        with c as (select opportunity_id, cutoff from {cu}),
        e as (select e.opportunity_id, e.activity_type, e.occurred_at, e.value, c.cutoff
              from {ev} e join c on e.opportunity_id = c.opportunity_id
              where e.occurred_at <= c.cutoff),
        t as (select opportunity_id, activity_type, {per_type} from e group by opportunity_id, activity_type, cutoff),
        p as (select opportunity_id, {", ".join(pivot)} from t group by opportunity_id),
        dd as (select opportunity_id, cutoff, max(occurred_at) as last_at from e
               group by opportunity_id, cutoff, cast(occurred_at as date)),
        d as (select opportunity_id, {per_day} from dd group by opportunity_id),
        f as (select c.opportunity_id, c.cutoff, {", ".join(cols)}
              from c left join p using (opportunity_id) left join d using (opportunity_id))
        select opportunity_id, {final} from f
    """).df()
    con.close()
    return out


def _load(impl: str):
    if impl.endswith(".py"):  # a file, e.g. a scratch implementation of the same contract
        spec = importlib.util.spec_from_file_location("activities_under_test", impl)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return importlib.import_module(impl)


def _opportunities(cp: str) -> pd.DataFrame:
    """Opportunities whose cut-offs are the bench's: closed at the cut-off, open at AS_OF, closed without a date
    for a missing one."""
    cut = pd.read_parquet(cp)
    is_open = cut["cutoff"] == pd.Timestamp(AS_OF)
    return pd.DataFrame({"opportunity_id": cut["opportunity_id"].astype("str"),
                         "status": np.where(is_open, "open", "won"),
                         "closed_at": cut["cutoff"].where(~is_open)})


def _funnel_lab_part(inbox, queue) -> None:
    """In a child process: ``features`` (behaviour_features on the Parquet files) or ``log`` (the whole
    load_activity_log: read, check, quarantine, features) timed, the features handed back as Parquet."""
    job = inbox.get()
    if job is None:  # the parent failed before the data was ready
        return
    part, impl, ep, cp, out, windows = job
    start = time.perf_counter()
    try:
        act = _load(impl)
        extra = {}
        if part == "features":
            start = time.perf_counter()
            # an earlier version's module has its own connect(); this one's takes an engine
            con = act.connect() if hasattr(act, "connect") else open_engine(memory_limit=act.MEMORY_LIMIT)
            frame = act.behaviour_features(con, events=f"read_parquet({_sql_str(ep)})",
                                           cutoffs=f"read_parquet({_sql_str(cp)})", windows=windows)
        else:
            from funnel_lab.config import TableSource

            opportunities = _opportunities(cp)
            start = time.perf_counter()
            log = act.load_activity_log(TableSource(path=Path(ep)), opportunities, as_of=pd.Timestamp(AS_OF),
                                        windows=windows)
            frame, extra = log.features, {"quarantined": len(log.quarantine)}
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the hand-back file is written
        frame.to_parquet(out, index=False)
        queue.put(("ok", seconds, peak_mb, extra))
    except BaseException:  # noqa: BLE001 - the parent reports it
        queue.put(("error", f"after {time.perf_counter() - start:.1f} s, peak "
                            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB:\n"
                            f"{traceback.format_exc()}", 0.0, {}))


def compare(got: pd.DataFrame, ref: pd.DataFrame, rtol: float = 1e-9) -> tuple[list[str], str]:
    """Problems found (empty when they agree) and a summary of what was checked."""
    problems: list[str] = []
    if len(got.columns) == 0 or got.columns[0] != "opportunity_id":
        problems.append(f"first column is {got.columns[0] if len(got.columns) else None!r}, not 'opportunity_id'")
    missing, extra = set(ref.columns) - set(got.columns), set(got.columns) - set(ref.columns)
    if missing:
        problems.append(f"missing columns: {sorted(missing)}")
    if extra:
        problems.append(f"unexpected columns: {sorted(extra)}")
    if got.columns.duplicated().any():
        problems.append(f"duplicated columns: {sorted(set(got.columns[got.columns.duplicated()]))}")
    if "opportunity_id" not in got.columns or missing or extra:
        return problems, ""
    if len(got) != len(ref):
        problems.append(f"{len(got)} rows, the reference has {len(ref)}")
    if got["opportunity_id"].duplicated().any():
        problems.append(f"{int(got['opportunity_id'].duplicated().sum())} duplicated opportunity_id values")
    got = got.sort_values("opportunity_id", ignore_index=True)
    ref = ref.sort_values("opportunity_id", ignore_index=True)
    if len(got) != len(ref) or not (got["opportunity_id"].astype(str).to_numpy()
                                    == ref["opportunity_id"].astype(str).to_numpy()).all():
        problems.append("the opportunity_id sets differ")
        return problems, ""
    ids = ref["opportunity_id"].to_numpy()
    n_int = n_float = 0
    notes = []
    for col in ref.columns[1:]:
        a, b = got[col], ref[col]
        integer = pd.api.types.is_integer_dtype(b.dtype)
        n_int += integer
        n_float += not integer
        if integer and not pd.api.types.is_integer_dtype(a.dtype):
            notes.append(f"{col} is {a.dtype}")
        try:
            av = a.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            problems.append(f"{col}: not numeric ({a.dtype})")
            continue
        bv = b.to_numpy(dtype="float64", na_value=np.nan)
        na, nb = np.isnan(av), np.isnan(bv)
        if (na != nb).any():
            i = int(np.flatnonzero(na != nb)[0])
            problems.append(f"{col}: NULLs differ in {int((na != nb).sum())} rows (e.g. {ids[i]}: "
                            f"funnel_lab {a.iloc[i]!r}, reference {b.iloc[i]!r})")
            continue
        x, y = av[~na], bv[~na]
        if integer:
            bad = x != y
        else:
            bad = (x != y) & ~(np.abs(x - y) <= rtol * np.maximum(np.abs(x), np.abs(y)))
        if bad.any():
            i = int(np.flatnonzero(~na)[np.flatnonzero(bad)[0]])
            problems.append(f"{col}: {int(bad.sum())} values differ (e.g. {ids[i]}: funnel_lab {float(av[i])!r}, "
                            f"reference {float(bv[i])!r})")
    summary = (f"{len(ref):,} rows x {len(ref.columns)} columns; {n_int} integer columns exact, {n_float} double "
               f"columns within {rtol:g} relative, NULLs in the same places")
    if notes:
        summary += f" (note: counts not of an integer type: {', '.join(notes)})"
    return problems, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000_000, help="events")
    ap.add_argument("--deals", type=int, default=None, help="opportunities (default rows // 100)")
    ap.add_argument("--keep", type=Path, default=None, help="folder for the Parquet files, reused when it holds "
                                                              "data made with the same --rows and --deals")
    ap.add_argument("--impl", default="funnel_lab.data.activities",
                    help="module (or .py file) providing behaviour_features(); default %(default)s")
    ap.add_argument("--whole", action="store_true",
                    help="also time the whole activity-log load (read, check, quarantine, features) on the same "
                         "events, with opportunities made from the cut-offs")
    args = ap.parse_args()
    rows = args.rows
    deals = args.deals if args.deals is not None else max(rows // 100, 1)
    parts = ["features", "log"] if args.whole else ["features"]
    # The children start before the data is made: a process inherits its parent's resident size as its peak.
    # They run one after the other.
    ctx = mp.get_context("spawn")
    children = {p: (ctx.Queue(), ctx.Queue()) for p in parts}
    procs = {p: ctx.Process(target=_funnel_lab_part, args=children[p]) for p in parts}
    for proc in procs.values():
        proc.start()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = args.keep if args.keep is not None else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            meta_path, meta = folder / "meta.json", {"rows": rows, "deals": deals, "version": DATA_VERSION}
            ep, cp = folder / "events.parquet", folder / "cutoffs.parquet"
            if (args.keep is not None and meta_path.exists() and ep.exists() and cp.exists()
                    and json.loads(meta_path.read_text()) == meta):
                print(f"data reused from {folder} ({rows:,} events, {deals:,} opportunities)", flush=True)
            else:
                meta_path.unlink(missing_ok=True)
                start = time.perf_counter()
                ep, cp = write_data(folder, rows, deals)
                meta_path.write_text(json.dumps(meta))
                print(f"generated {rows:,} events over {deals:,} opportunities in {time.perf_counter() - start:.1f} s "
                      f"({ep.stat().st_size / 2**20:,.0f} MB + {cp.stat().st_size / 2**20:,.0f} MB Parquet)",
                      flush=True)
            for part in parts:
                inbox, queue = children[part]
                out = Path(tmp) / f"funnel_lab_{part}.parquet"
                inbox.put((part, args.impl if part == "features" else "funnel_lab.data.activities", str(ep), str(cp),
                           str(out), WINDOWS))
                status, seconds, peak_mb, extra = queue.get()
                procs[part].join()
                if status != "ok":
                    raise SystemExit(f"funnel_lab ({part}) failed {seconds}")
                results[part] = (pd.read_parquet(out), seconds, peak_mb, extra)
        finally:
            for part in parts:
                if procs[part].is_alive():
                    children[part][0].put(None)
                    procs[part].join()
        start = time.perf_counter()
        ref = reference(ep, cp, WINDOWS)
        ref_s = time.perf_counter() - start
    for part in parts:
        problems, summary = compare(results[part][0], ref)
        print(f"{part}: features agree with the SQL reference: {not problems}"
              + (f" ({summary})" if not problems else ""))
        if problems:
            raise SystemExit(f"funnel_lab ({part}) and the reference disagree:\n  " + "\n  ".join(problems))
    _, fl_s, peak_mb, _ = results["features"]
    print(json.dumps({"bench": "activity_features", "rows": rows, "funnel_lab_s": round(fl_s, 3),
                      "reference": "hand-written DuckDB SQL (per type aggregate + pivot, per day aggregate) over the "
                                   "same Parquet files",
                      "reference_s": round(ref_s, 3), "ratio": round(fl_s / ref_s, 2), "peak_mb": round(peak_mb)}))
    if "log" in results:
        _, log_s, log_mb, extra = results["log"]
        print(json.dumps({"bench": "activity_log", "rows": rows, "what": "load_activity_log: read, check, "
                          "quarantine and features, opportunities given", "seconds": round(log_s, 3),
                          "peak_mb": round(log_mb), **extra}))


if __name__ == "__main__":
    main()
