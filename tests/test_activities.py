"""Behaviour features from activity logs: hand counts, point-in-time cut-offs, quarantine, sources, pandas agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from funnel_lab.data.activities import (MEMORY_LIMIT, behaviour_features, cutoffs, feature_definitions, load_activity_log,
                                        with_features)
from funnel_lab.config import EngineSettings, ParamsError, TableSource
from funnel_lab.engine import open_engine
from funnel_lab.engine.embedded import DuckDBEngine

AS_OF = pd.Timestamp("2026-03-01")


def _opportunities() -> pd.DataFrame:
    """A won deal closed 2026-02-01, a lost one without close date, two open ones (cut off at AS_OF)."""
    return pd.DataFrame({
        "opportunity_id": pd.array(["A", "B", "C", "D"], dtype="str"),
        "status": pd.array(["won", "lost", "open", "open"], dtype="str"),
        "closed_at": pd.to_datetime(["2026-02-01", None, None, None]),
        "account": pd.array(["Acme", "Acme", "Bolt", "Core"], dtype="str"),
    })


LOG = """Activity ID,Opportunity ID,Activity Type,Occurred At,Minutes
1,A,Web Visit,2026-01-01 09:00:00,4.5
2,A,Web Visit,2026-01-02 00:00:00,
3,A,Web Visit,2026-01-20 10:00:00,2
4,A,Reply,2026-01-31 23:59:59,
5,A,Reply,2026-02-01 00:00:00,
6,A,Meeting,2026-02-01 00:00:01,60
7,A,Meeting,2026-02-15 10:00:00,30
8,C,web visit,2026-02-27 08:00:00,1
9,C,Web Visit,2026-02-27 17:00:00,3
10,C,Reply,2026-03-01 00:00:01,
11,Z,Web Visit,2026-01-05 10:00:00,1
12,C,Web Visit,not a date,1
13,D,,2026-02-01 10:00:00,
14,B,Call,2026-01-10 10:00:00,5
"""


@pytest.fixture()
def log_file(tmp_path):
    path = tmp_path / "activities.csv"
    path.write_text(LOG, encoding="utf-8")
    return path


def _source(path, **kw) -> TableSource:
    cols = {"opportunity_id": "Opportunity ID", "activity_type": "Activity Type", "occurred_at": "Occurred At",
            "value": "Minutes"}
    return TableSource(path=path, columns=kw.pop("columns", cols), **kw)


@pytest.mark.parametrize("backend", ["duckdb", "spark"])
def test_hand_counted_features_windows_recency_and_cutoffs(log_file, backend):
    # on Spark too: the same SQL, transpiled, read by Spark's CSV reader, with no merged ids (an empty lookup)
    log = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30, 7],
                            engine=EngineSettings(backend=backend))
    f = log.features.set_index("opportunity_id")
    # A won, cut-off 2026-02-01 00:00: visits on 01-01 09:00, 01-02 00:00 (exactly 30 days before: outside the
    # 30-day window, which is (cut-off - 30 days, cut-off]), 01-20; replies at 01-31 23:59:59 and exactly at the
    # cut-off (counted); meetings 1 second after the cut-off and two weeks later (not counted)
    a = f.loc["A"]
    assert (a["web_visit_total"], a["web_visit_30d"], a["web_visit_7d"]) == (3, 1, 0)
    assert (a["reply_total"], a["reply_30d"], a["reply_7d"]) == (2, 2, 2)
    assert (a["meeting_total"], a["activities_total"], a["active_days_total"]) == (0, 5, 5)
    assert a["days_since_last_web_visit"] == pytest.approx(11 + 14 / 24)  # 01-20 10:00 -> 02-01 00:00
    assert a["days_since_last_reply"] == 0 and a["days_since_last_activity"] == 0
    assert pd.isna(a["days_since_last_meeting"])
    assert a["touch_span_days"] == pytest.approx(30 + 15 / 24)  # 01-01 09:00 -> 02-01 00:00
    assert (a["web_visit_value_total"], a["web_visit_value_30d"], a["web_visit_value_mean"]) == (6.5, 2.0, 3.25)
    # B lost without closed_at: no cut-off, every feature missing rather than counted up to an unknown moment
    assert f.loc["B"].drop(labels=[]).isna().all()
    # C open, cut-off AS_OF 2026-03-01 00:00: "web visit" and "Web Visit" are one type; the reply 1 s later is not
    c = f.loc["C"]
    assert (c["web_visit_total"], c["web_visit_7d"], c["reply_total"], c["active_days_7d"]) == (2, 2, 0, 1)
    assert c["days_since_last_web_visit"] == pytest.approx(1 + 7 / 24)
    assert c["touch_span_days"] == pytest.approx(9 / 24)
    # D open with only a row without type (quarantined): zeros, not missing
    d = f.loc["D"]
    assert (d["activities_total"], d["web_visit_total"]) == (0, 0) and pd.isna(d["days_since_last_activity"])
    # replies never carry minutes in this log: no value features for them
    assert list(f.columns) == feature_definitions({"web_visit": [], "reply": [], "meeting": [], "call": []}, [30, 7],
                                                  has_value={"web_visit", "meeting", "call"})["feature"].tolist()
    assert "reply_value_total" not in f.columns and "meeting_value_total" in f.columns


def test_bad_rows_are_quarantined_with_reasons_and_counted(log_file):
    log = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30])
    q = log.quarantine
    assert q["source_row"].tolist() == [11, 12, 13]
    assert q["reason"].tolist() == ["unknown opportunity_id: Z", "occurred_at is not a date: not a date",
                                    "activity_type is missing"]
    assert q["Activity ID"].astype(int).tolist() == [11, 12, 13] and (q["table"] == "activities").all()
    audit = log.audit.set_index("step")
    assert audit.loc["read", "rows_in"] == 14 and audit.loc["overall", "rows_out"] == 11
    assert audit.loc[["occurred_at", "activity_type", "opportunity"], "rows_removed"].tolist() == [1, 1, 1]
    steps = log.audit[log.audit["step"] != "overall"]
    assert (steps["rows_in"] == steps["rows_out"] + steps["rows_removed"]).all()
    assert audit.loc["overall", "rows_in"] == audit.loc["overall", "rows_out"] + audit.loc["overall", "rows_removed"]
    # one row per label as written; "web visit" and "Web Visit" share a feature prefix
    assert log.types.groupby("name")["events"].sum().to_dict() == {"web_visit": 5, "reply": 3, "meeting": 2, "call": 1}
    assert sorted(log.types.loc[log.types["name"] == "web_visit", "activity_type"]) == ["Web Visit", "web visit"]


def test_post_outcome_events_change_nothing(log_file, tmp_path):
    before = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30, 90]).features
    planted = LOG + "".join(f"{100 + i},A,{t},2026-02-{d:02d} 1{i % 10}:00:00,9\n"
                            for i, (t, d) in enumerate([("Meeting", 1), ("Web Visit", 2), ("Reply", 10),
                                                        ("Contract Signed", 3), ("Web Visit", 28)]))
    path = tmp_path / "planted.csv"
    path.write_text(planted, encoding="utf-8")
    after = load_activity_log(_source(path), _opportunities(), as_of=AS_OF, windows=[30, 90]).features
    # the new type adds its own columns, all zero or missing for every deal up to its cut-off ...
    new = [c for c in after.columns if "contract_signed" in c]
    assert new and after[new].fillna(0).eq(0).all().all()
    # ... and every feature that existed before is unchanged
    pd.testing.assert_frame_equal(after[before.columns], before)


def test_days_before_close_moves_the_cutoff(log_file):
    log = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30], days_before_close=1)
    a = log.features.set_index("opportunity_id").loc["A"]
    # cut-off 2026-01-31 00:00: the replies (01-31 23:59:59 and 02-01) are now after it
    assert (a["reply_total"], a["web_visit_total"], a["web_visit_30d"]) == (0, 3, 3)


def test_events_found_through_the_account(tmp_path):
    path = tmp_path / "web.csv"
    path.write_text("company,event_name,event_timestamp\nAcme,page_view,2026-01-15 10:00:00\n"
                    "Acme,page_view,2026-02-15 10:00:00\nBolt,page_view,2026-02-20 10:00:00\n"
                    "Nobody,page_view,2026-02-20 10:00:00\n", encoding="utf-8")
    log = load_activity_log(TableSource(path=path, preset="web_analytics"), _opportunities(), as_of=AS_OF)
    assert log.key == "account"
    f = log.features.set_index("opportunity_id")["page_view_total"]
    # Acme's events count for both its deals, each up to its own cut-off (B has none: missing)
    assert f["A"] == 1 and pd.isna(f["B"]) and f["C"] == 1 and f["D"] == 0
    assert log.quarantine["reason"].tolist() == ["unknown account: Nobody"]


def test_parquet_and_duckdb_sources_give_the_same_features(log_file, tmp_path):
    import duckdb

    csv = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30]).features
    raw = pd.read_csv(log_file, dtype=str, keep_default_na=False)
    good = raw[raw["Occurred At"] != "not a date"].assign(**{
        "Occurred At": lambda d: pd.to_datetime(d["Occurred At"], format="%Y-%m-%d %H:%M:%S"),
        "Minutes": lambda d: pd.to_numeric(d["Minutes"])})
    pq = tmp_path / "activities.parquet"
    good.to_parquet(pq, index=False)
    from_parquet = load_activity_log(_source(pq), _opportunities(), as_of=AS_OF, windows=[30])
    pd.testing.assert_frame_equal(from_parquet.features, csv)
    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("g", good)
        con.execute("CREATE TABLE activity AS SELECT * FROM g")
    src = TableSource(sql='SELECT * FROM activity WHERE "Activity Type" <> \'Call\'', database=str(db),
                      columns=_source(pq).columns)
    from_db = load_activity_log(src, _opportunities(), as_of=AS_OF, windows=[30])
    pd.testing.assert_frame_equal(from_db.features, csv.drop(columns=[c for c in csv.columns if "call" in c]))


def test_bad_activity_params_are_named(log_file, tmp_path):
    when = tmp_path / "when.csv"
    when.write_text("Opportunity ID,Activity Type,When\nA,Call,2026-01-01\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"data.activities: .*when.csv has no column for occurred_at; map one with "
                                          r"`columns: \{occurred_at: <source column>\}`"):
        load_activity_log(_source(when, columns={"opportunity_id": "Opportunity ID"}), _opportunities(), as_of=AS_OF)
    bad = tmp_path / "bad_dates.csv"
    bad.write_text("Opportunity ID,Activity Type,Occurred At\n" + "A,Call,someday\n" * 30, encoding="utf-8")
    with pytest.raises(ParamsError, match=r"bad_dates.csv: column 'Occurred At' \(occurred_at\) does not hold dates"):
        load_activity_log(TableSource(path=bad, columns={"opportunity_id": "Opportunity ID",
                                                         "activity_type": "Activity Type",
                                                         "occurred_at": "Occurred At"}),
                          _opportunities(), as_of=AS_OF)
    clash = _opportunities().assign(activities_total=1)
    log = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF)
    with pytest.raises(ParamsError, match="'activities_total' has the name of a column"):
        with_features(clash, log)


def _pandas_features(events: pd.DataFrame, cut: pd.DataFrame, windows) -> pd.DataFrame:
    """The features computed independently, with pandas group-bys."""
    e = events.merge(cut, on="opportunity_id")
    e = e[e["occurred_at"] <= e["cutoff"]]
    out = cut.set_index("opportunity_id")[[]].copy()
    g = e.groupby("opportunity_id")
    for t, part in e.groupby("activity_type"):
        pg = part.groupby("opportunity_id")
        for n in windows:
            inside = part[part["occurred_at"] > part["cutoff"] - pd.Timedelta(days=n)]
            out[f"{t}_{n}d"] = inside.groupby("opportunity_id").size()
            out[f"{t}_value_{n}d"] = inside.groupby("opportunity_id")["value"].sum()
        out[f"{t}_total"] = pg.size()
        out[f"days_since_last_{t}"] = (pg["cutoff"].first() - pg["occurred_at"].max()).dt.total_seconds() / 86400
        out[f"{t}_value_total"] = pg["value"].sum()
        out[f"{t}_value_mean"] = pg["value"].mean()
    for n in windows:
        inside = e[e["occurred_at"] > e["cutoff"] - pd.Timedelta(days=n)]
        out[f"activities_{n}d"] = inside.groupby("opportunity_id").size()
        out[f"active_days_{n}d"] = inside.groupby("opportunity_id")["occurred_at"].agg(lambda s: s.dt.date.nunique())
    out["activities_total"] = g.size()
    out["active_days_total"] = g["occurred_at"].agg(lambda s: s.dt.date.nunique())
    out["days_since_last_activity"] = (g["cutoff"].first() - g["occurred_at"].max()).dt.total_seconds() / 86400
    out["touch_span_days"] = (g["occurred_at"].max() - g["occurred_at"].min()).dt.total_seconds() / 86400
    zero = [c for c in out.columns if not c.startswith("days_since") and not c.endswith("_mean")
            and c != "touch_span_days"]
    out[zero] = out[zero].fillna(0)
    return out


def test_agreement_with_pandas_on_generated_events():
    rng = np.random.default_rng(11)
    n, deals = 20_000, 500
    ids = np.array([f"O{i:04d}" for i in range(deals)])
    start = np.datetime64("2025-01-01T00:00:00")
    events = pd.DataFrame({
        "opportunity_id": ids[rng.integers(0, deals, n)],
        "activity_type": rng.choice(["visit", "reply", "meeting"], n, p=[0.6, 0.3, 0.1]),
        "occurred_at": start + rng.integers(0, 400 * 86400, n).astype("timedelta64[s]"),
        "value": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2, 3, n).round(1)),
    })
    cut = pd.DataFrame({"opportunity_id": ids,
                        "cutoff": start + rng.integers(30 * 86400, 420 * 86400, deals).astype("timedelta64[s]")})
    engine = open_engine(memory_limit=MEMORY_LIMIT)
    engine.register("ev", events)
    engine.register("cu", cut)
    ours = behaviour_features(engine, "ev", "cu", windows=[30, 90]).set_index("opportunity_id")
    theirs = _pandas_features(events, cut, [30, 90])[list(ours.columns)]
    pd.testing.assert_frame_equal(ours.astype("float64"), theirs.astype("float64"), check_names=False, rtol=1e-9)
    assert ours["visit_total"].sum() > 5000  # the comparison covers real counts, not empty frames


def test_cutoffs_follow_status():
    c = cutoffs(_opportunities(), AS_OF, days_before_close=3).set_index("opportunity_id")["cutoff"]
    assert c["A"] == pd.Timestamp("2026-01-29") and pd.isna(c["B"]) and c["C"] == c["D"] == AS_OF


# ------------------------------------------------------------------------------------------------------ the demo

def test_demo_features_are_the_generators_counts(demo_project):
    import json

    import funnel_lab

    run = funnel_lab.load(demo_project / "params" / "demo.yaml")
    o = run.opportunities
    truth = json.loads((demo_project / "data" / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    # every true deal's behaviour columns are the counts of its events up to its cut-off (open and closed alike;
    # injected duplicates the dedupe kept apart have no events of their own, and post-close events count nowhere)
    real = o[o["opportunity_id"].str.slice(4).astype(int) <= truth["rows"]]
    for feature, column in [("visit_total", "visits"), ("meeting_total", "meetings"), ("reply_total", "emails_replied")]:
        both = real[[feature, column]].dropna()
        assert len(both) > 0.9 * len(real) and (both[feature] == both[column]).all(), feature
    assert run.activity_log.types.set_index("activity_type")["events"].sum() == sum(
        truth["activities"]["per_type_counted"].values()) + truth["activities"]["post_outcome_events"]
    # the quarantine holds exactly the planted bad rows, each for its reason
    q = run.activity_log.quarantine
    bad = truth["activities"]["bad"]
    assert sorted(q["Activity ID"]) == sorted(bad["unknown_opportunity"] + bad["unparsable_time"] + bad["missing_type"])
    by_reason = q.groupby(q["reason"].str.extract(r"^(unknown|occurred_at|activity_type)")[0])["Activity ID"]
    assert sorted(by_reason.get_group("unknown")) == sorted(bad["unknown_opportunity"])
    assert sorted(by_reason.get_group("activity_type")) == sorted(bad["missing_type"])


def test_behaviour_stage_example_runs_end_to_end(demo_project, tmp_path):
    import pandas as pd

    from conftest import cli

    res = cli("run", "params/demo.yaml", "params/examples/demo_behaviour.yaml", "--only", "00_data_quality",
              "10_stage_design", "--out", str(tmp_path), cwd=demo_project)
    assert res.returncode == 0, res.stdout + res.stderr
    data = tmp_path / "demo_behaviour" / "data"
    metrics = pd.read_csv(data / "stage_metrics.csv").set_index("stage")
    # the behaviour stages order the deals: win rates rise stage by stage
    rates = metrics.loc[["potential", "intent", "evaluation", "decision"], "win_rate"]
    assert rates.is_monotonic_increasing and rates["decision"] > 2 * rates["potential"], rates
    clean = pd.read_csv(data / "opportunities_clean.csv")
    assert {"visit_30d", "reply_90d", "days_since_last_visit", "active_days_30d"} <= set(clean.columns)
    defs = pd.read_csv(data / "behaviour_features.csv")
    assert defs["feature"].tolist() == [c for c in clean.columns if c in set(defs["feature"])]
    audit = pd.read_csv(data / "cleaning_audit.csv")
    act = audit[audit["table"] == "activities"].set_index("step")
    assert act.loc["overall", "rows_in"] == act.loc["overall", "rows_out"] + act.loc["overall", "rows_removed"] > 0
    q = pd.read_csv(data / "quarantine.csv")
    assert (q["table"] == "activities").sum() == act.loc["overall", "rows_removed"] == 80


def test_salesforce_task_export_preset(tmp_path):
    path = tmp_path / "Task.csv"
    path.write_text("Id,WhatId,Subject,TaskSubtype,ActivityDate,DurationInMinutes\n"
                    "00T1,A,Intro call,Call,2026-01-10,15\n"
                    "00T2,A,Follow-up,Email,2026-01-12,\n"
                    "00T3,000000000000000AAA,Spam,Email,2026-01-12,\n"
                    "00T4,C,Demo,Call,2026-02-20,45\n", encoding="utf-8")
    log = load_activity_log(TableSource(path=path, preset="salesforce_activity"), _opportunities(), as_of=AS_OF)
    cm = log.column_map.set_index("source_column")["column"]
    assert (cm["WhatId"], cm["TaskSubtype"], cm["ActivityDate"], cm["DurationInMinutes"]) == (
        "opportunity_id", "activity_type", "occurred_at", "value")
    f = log.features.set_index("opportunity_id")
    assert (f.loc["A", "call_total"], f.loc["A", "email_total"], f.loc["C", "call_value_total"]) == (1, 1, 45)
    assert "email_value_total" not in f.columns  # e-mails carry no duration
    # Salesforce's null id is a missing id, not an unknown opportunity
    assert log.quarantine["reason"].tolist() == ["opportunity_id is missing"]


@pytest.mark.parametrize(("events_per_pass", "whole"), [(None, False), (50_000, False), (50_000, True)],
                         ids=["one pass", "passes over slices", "whole log load"])
def test_agreement_with_the_benchmarks_sql_reference(tmp_path, monkeypatch, events_per_pass, whole):
    """funnel_lab's features against the hand-written DuckDB query of bench/activity_features.py, on its data: in one
    aggregation pass, in several (over 150,000 events up to their cut-offs, 50,000 a pass) as at 100M events, and
    through the whole load (read, check, quarantine), whose quarantine is exactly the events of unknown ids."""
    import importlib.util

    import funnel_lab.data.activities as act

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_activity_features", ROOT / "bench" / "activity_features.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ep, cp = bench.write_data(tmp_path, rows=300_000, deals=3_000)
    if events_per_pass:
        monkeypatch.setattr(DuckDBEngine, "rows_per_pass", events_per_pass)
    if whole:
        log = load_activity_log(TableSource(path=ep), bench._opportunities(str(cp)), as_of=pd.Timestamp(bench.AS_OF),
                                windows=bench.WINDOWS)
        ours = log.features
        events, known = pd.read_parquet(ep), set(pd.read_parquet(cp)["opportunity_id"])
        stray = ~events["opportunity_id"].isin(known)
        assert log.quarantine["source_row"].tolist() == (np.flatnonzero(stray) + 1).tolist()
        assert stray.sum() > 2_000 and set(log.quarantine["reason"].str[:26]) == {"unknown opportunity_id: O0"}
    else:
        ours = behaviour_features(open_engine(), f"read_parquet('{ep}')", f"read_parquet('{cp}')", windows=bench.WINDOWS)
    problems, summary = bench.compare(ours, bench.reference(ep, cp, bench.WINDOWS))
    assert not problems, problems
    assert len(ours) == 3_000 and ours["activities_total"].sum() > 150_000  # real counts, with boundary cases


def test_day_first_dates_are_read_with_the_format_the_other_tables_use(tmp_path):
    path = tmp_path / "dmy.csv"
    path.write_text("Opportunity ID,Activity Type,Occurred At\nA,Call,31/01/2026 10:00\nA,Call,13/01/2026 09:30\n"
                    "C,Call,28/02/2026 23:59\nC,Call,31/02/2026 10:00\n", encoding="utf-8")
    log = load_activity_log(TableSource(path=path), _opportunities(), as_of=AS_OF, windows=[7])
    f = log.features.set_index("opportunity_id")
    # A (cut-off 02-01 00:00): 01-31 10:00 is 14 h before it, inside 7 days; 01-13 is not
    assert (f.loc["A", "call_total"], f.loc["A", "call_7d"]) == (2, 1)
    assert f.loc["A", "days_since_last_call"] == pytest.approx(14 / 24)
    assert f.loc["C", "call_total"] == 1 and log.quarantine["reason"].tolist() == [
        "occurred_at is not a date: 31/02/2026 10:00"]


def test_source_columns_named_like_internal_fields_change_nothing(log_file, tmp_path):
    """An export's own "_id" / "_reason" / "_type" columns are carried along, never taken for funnel_lab's fields."""
    plain = load_activity_log(_source(log_file), _opportunities(), as_of=AS_OF, windows=[30])
    lines = LOG.strip().splitlines()
    odd = tmp_path / "odd.csv"
    odd.write_text("\n".join([lines[0] + ",_id,_reason,_type"] + [line + ",Z,x,Call" for line in lines[1:]]) + "\n",
                   encoding="utf-8")
    got = load_activity_log(_source(odd), _opportunities(), as_of=AS_OF, windows=[30])
    pd.testing.assert_frame_equal(got.features, plain.features)
    assert got.quarantine["reason"].tolist() == plain.quarantine["reason"].tolist()
    assert got.quarantine["_reason"].tolist() == ["x"] * len(plain.quarantine)  # kept as read


def test_an_activity_type_whose_features_clash_with_the_all_type_ones_is_named(tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text("opportunity_id,activity_type,occurred_at\nA,Activities,2026-01-10\nA,Call,2026-01-11\n",
                    encoding="utf-8")
    with pytest.raises(ParamsError, match=r"two features would be named 'activities_30d' \(activity types: "
                                          r"'Activities', all\); relabel"):
        load_activity_log(TableSource(path=path), _opportunities(), as_of=AS_OF, windows=[30])


def test_the_connections_memory_limit_stays_what_was_set(log_file):
    """DuckDB reports its limit rounded down; reading it back and setting it again lowered it on every call."""
    engine = open_engine(memory_limit=MEMORY_LIMIT)
    before = engine.rows("SELECT current_setting('memory_limit')")[0][0]
    events = pd.DataFrame({"opportunity_id": ["A"], "activity_type": ["Call"],
                           "occurred_at": [pd.Timestamp("2026-01-10")]})
    engine.register("ev", events)
    engine.register("cu", cutoffs(_opportunities(), AS_OF))
    for _ in range(3):
        assert behaviour_features(engine, "ev", "cu", windows=[30]).set_index("opportunity_id").loc["A", "call_30d"] == 1
    assert engine.rows("SELECT current_setting('memory_limit')")[0][0] == before
