"""Monitoring against hand calculations: stage entries, windows, control limits, alerts, the pipeline waterfall."""

import numpy as np
import pandas as pd
import pytest

from funnel_lab.analysis.monitoring import (below_own_history, breaches, control_limits, conversion_windows,
                                   expected_close_as_known, period_series, pipeline_moves, pipeline_waterfall,
                                   stage_entries)

ORDER = ["a", "b", "c"]
T = pd.Timestamp


def _history(rows):
    return pd.DataFrame(rows, columns=["opportunity_id", "stage", "entered_at"]).assign(
        entered_at=lambda d: pd.to_datetime(d["entered_at"]))


def test_stage_entries_first_entry_and_first_move_further():
    h = _history([
        ("d1", "a", "2024-01-01"), ("d1", "b", "2024-01-05"), ("d1", "a", "2024-01-07"), ("d1", "b", "2024-01-09"),
        ("d1", "c", "2024-01-20"),
        ("d2", "c", "2024-01-03"), ("d2", "a", "2024-01-04"),  # entered c first, then a: a never led further
        ("d3", "a", "2024-01-02"), ("d3", "won", "2024-02-01"),  # won straight from a (history's won row)
        ("d4", "a", "2024-01-02"), ("d4", "lost", "2024-01-10"),
    ])
    opp = pd.DataFrame({"opportunity_id": ["d1", "d2", "d3", "d4"], "status": ["won", "open", "won", "lost"],
                        "closed_at": pd.to_datetime(["2024-01-25", None, None, "2024-01-10"])})
    e = stage_entries(h, opp, ORDER).set_index(["opportunity_id", "stage"])
    assert e.loc[("d1", "a"), "entered_at"] == T("2024-01-01") and e.loc[("d1", "a"), "advanced_at"] == T("2024-01-05")
    assert e.loc[("d1", "b"), "advanced_at"] == T("2024-01-20")
    assert e.loc[("d1", "c"), "advanced_at"] == T("2024-01-25")  # won at closed_at
    assert e.loc[("d1", "won"), "entered_at"] == T("2024-01-25") and pd.isna(e.loc[("d1", "won"), "advanced_at"])
    assert pd.isna(e.loc[("d2", "a"), "advanced_at"]) and pd.isna(e.loc[("d2", "c"), "advanced_at"])
    assert e.loc[("d3", "a"), "advanced_at"] == T("2024-02-01")  # no closed_at: the history's won row
    assert pd.isna(e.loc[("d4", "a"), "advanced_at"]) and ("d4", "won") not in e.index
    assert len(e) == 4 + 2 + 2 + 1


def test_conversion_window_is_the_rounded_up_quantile():
    e = pd.DataFrame({"stage": ["a"] * 4 + ["b"], "entered_at": pd.to_datetime(["2024-01-01"] * 5),
                      "advanced_at": pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-11", None, None])})
    # days 1, 4, 10: the 75th percentile (linear) is 7 days; b never advanced
    assert conversion_windows(e, ["a", "b"]) == {"a": 7, "b": 30}
    assert conversion_windows(e, ["a", "b"], window_days=14) == {"a": 14, "b": 14}


def _weekly_entries(counts, converted, window_days=3):
    """Entries into `a` on each Monday: counts[i] deals in week i, the first converted[i] of them advancing in 2 days."""
    rows = []
    monday = T("2024-01-01")
    for i, (n, x) in enumerate(zip(counts, converted)):
        day = monday + pd.Timedelta(weeks=i)
        for j in range(n):
            adv = day + pd.Timedelta(days=2) if j < x else (day + pd.Timedelta(days=window_days + 5) if j == x else pd.NaT)
            rows.append({"opportunity_id": f"w{i}-{j}", "stage": "a", "rank": 1, "entered_at": day,
                         "advanced_at": adv})
    return pd.DataFrame(rows)


def test_period_series_counts_entries_and_mature_conversion():
    counts, conv = [10, 12, 0, 8], [5, 6, 0, 2]
    e = _weekly_entries(counts, conv)
    as_of = T("2024-01-29")  # week 4 (Jan 22-28) is complete; its deals' 3-day window ends Feb 1: immature
    s = period_series(e, ["a"], period="W", as_of=as_of, windows={"a": 3})
    a = s[s["stage"] == "a"]
    assert a["entered"].tolist() == counts
    assert a["complete"].tolist() == [True, True, True, True]
    assert a["mature"].tolist() == [True, True, True, False]
    assert a["converted"].tolist()[:3] == [5, 6, 0] and pd.isna(a["converted"].iloc[3])
    assert a["conversion"].iloc[:2].tolist() == [0.5, 0.5] and np.isnan(a["conversion"].iloc[2])
    won = s[s["stage"] == "won"]
    assert won["entered"].sum() == 0 and not won["mature"].any()


def test_control_limits_by_hand_from_the_periods_before():
    rng = np.random.default_rng(0)
    counts = rng.integers(40, 60, 30).tolist()
    conv = [n // 2 for n in counts]
    counts[-3], conv[-3] = 100, 10  # a surge that barely converts
    e = _weekly_entries(counts, conv)
    as_of = T("2024-01-01") + pd.Timedelta(weeks=30)
    s = period_series(e, ["a"], period="W", as_of=as_of, windows={"a": 3})
    lim = control_limits(s, sigma=3, period="W")
    a = lim[lim["stage"] == "a"].reset_index(drop=True)
    i = 27  # the surge: judged against weeks 1-26 (baseline 26)
    c = np.mean(counts[1:27])
    assert a.loc[i, "entered_center"] == pytest.approx(c)
    assert a.loc[i, "entered_ucl"] == pytest.approx(c + 3 * np.sqrt(c))
    p = sum(conv[1:27]) / sum(counts[1:27])
    assert a.loc[i, "conversion_center"] == pytest.approx(p)
    assert a.loc[i, "conversion_lcl"] == pytest.approx(p - 3 * np.sqrt(p * (1 - p) / 100))
    assert a.loc[:7, "entered_center"].isna().all() and a.loc[8, "entered_center"] == pytest.approx(np.mean(counts[:8]))
    alerts = breaches(lim)
    hits = alerts[alerts["stage"] == "a"]
    assert set(zip(hits["period"], hits["metric"], hits["direction"])) == {
        (a.loc[i, "period"], "entered", "above"), (a.loc[i, "period"], "conversion", "below")}


def test_below_own_history_z_by_hand():
    counts, conv = [100] * 10 + [200], [50] * 10 + [70]
    e = _weekly_entries(counts, conv)
    s = period_series(e, ["a"], period="W", as_of=T("2024-01-01") + pd.Timedelta(weeks=12), windows={"a": 3})
    b = below_own_history(control_limits(s, sigma=3, period="W"), ["a"])
    assert b.loc[0, "conversion"] == pytest.approx(0.35) and b.loc[0, "usual"] == pytest.approx(0.5)
    assert b.loc[0, "z"] == pytest.approx((0.35 - 0.5) / np.sqrt(0.25 / 200))


def test_expected_close_as_it_stood_at_a_date():
    h = pd.DataFrame({"opportunity_id": ["x", "x", "y"], "stage": ["a", "b", "a"],
                      "entered_at": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-15"]),
                      "expected_close_at": pd.to_datetime(["2024-03-01", "2024-05-01", None])})
    opp = pd.DataFrame({"opportunity_id": ["x", "y", "z"], "expected_close_at": pd.to_datetime(
        ["2024-05-01", "2024-04-01", "2024-06-01"])})
    known = expected_close_as_known(h, opp, T("2024-01-20"))
    assert known["x"] == T("2024-03-01")  # the later push was not known yet
    assert known["y"] == T("2024-04-01") and known["z"] == T("2024-06-01")  # no close-date rows: current value
    assert pd.isna(expected_close_as_known(h, opp, T("2023-12-31"))["x"])  # before its first row


def test_pipeline_waterfall_hand_example_and_identity():
    start, end, due = T("2024-03-01"), T("2024-03-08"), T("2024-06-30")
    opp = pd.DataFrame({
        "opportunity_id": ["stay", "won", "lost", "new", "new_won", "pulled", "pushed", "far", "old"],
        "status": ["open", "won", "lost", "open", "won", "open", "open", "open", "lost"],
        "created_at": pd.to_datetime(["2024-01-01"] * 3 + ["2024-03-03", "2024-03-02"] + ["2024-01-01"] * 4),
        "closed_at": pd.to_datetime([None, "2024-03-05", "2024-03-06", None, "2024-03-07", None, None, None,
                                     "2024-02-01"]),
        "expected_close_at": pd.to_datetime(["2024-05-01"] * 5 + ["2024-06-01", "2024-09-01", "2024-12-01", None]),
        "amount": [10.0, 20, 30, 40, 50, 60, 70, 80, 90],
    })
    h = pd.DataFrame({"opportunity_id": ["pulled", "pulled", "pushed", "pushed"], "stage": ["a"] * 4,
                      "entered_at": pd.to_datetime(["2024-01-01", "2024-03-04", "2024-01-01", "2024-03-04"]),
                      "expected_close_at": pd.to_datetime(["2024-08-01", "2024-06-01", "2024-05-01", "2024-09-01"])})
    moves = pipeline_moves(opp, h, start=start, end=end, due_by=due).set_index("opportunity_id")
    w = pipeline_waterfall(moves.reset_index()).set_index("step")
    assert w["deals"].to_dict() == {"start": 4, "created": 2, "pulled_in": 1, "pushed_out": 1, "won": 2, "lost": 1,
                                    "end": 3}
    assert w["amount"].to_dict() == {"start": 10 + 20 + 30 + 70, "created": 90, "pulled_in": 60, "pushed_out": 70,
                                     "won": 70, "lost": 30, "end": 10 + 40 + 60}
    assert "far" not in moves.index and "old" not in moves.index
    # without close-date history every open deal is in the pipeline and nothing is pulled or pushed
    w_open = pipeline_waterfall(pipeline_moves(opp, None, start=start, end=end, due_by=None)).set_index("step")
    assert w_open.loc[["pulled_in", "pushed_out"], "deals"].sum() == 0
    assert w_open.loc["start", "deals"] == 6 and w_open.loc["end", "deals"] == 5


def test_waterfall_identity_holds_deal_by_deal_on_the_demo(demo_project):
    import funnel_lab as fl

    run = fl.load(demo_project / "params" / "demo.yaml")
    r = run.monitoring()
    m = r.moves
    flow = (m["in_start"].astype(int) + m["created"] + m["pulled_in"] - m["pushed_out"] - m["won"] - m["lost"])
    assert (flow == m["in_end"].astype(int)).all()
    w = r.waterfall.set_index("step")["amount"]
    assert w["start"] + w["created"] + w["pulled_in"] - w["pushed_out"] - w["won"] - w["lost"] == pytest.approx(w["end"])
    assert r.due_by is not None and w["pulled_in"] + w["pushed_out"] > 0  # the demo history has close dates
    # the end pipeline is every deal open at the end and due by the horizon, recounted from the cleaned tables
    o = run.opportunities.set_index("opportunity_id")
    open_end = (o["created_at"] <= r.end) & (o["status"].eq("open") | (o["closed_at"] > r.end))
    known = expected_close_as_known(run.history, run.opportunities, r.end)
    assert int(m["in_end"].sum()) == int((open_end & (known.reindex(o.index) <= r.due_by)).sum())
    # the c-chart's entries recount the demo's first entries per week
    lim = r.history.limits
    h = run.history[run.history["stage"] == "intent"]
    firsts = h.groupby("opportunity_id")["entered_at"].min()
    week = lim[(lim["stage"] == "intent")].iloc[-2]
    assert week["entered"] == int(((firsts >= week["period_start"]) & (firsts < week["period_end"])).sum())


def test_a_planted_shift_is_found_by_the_alerts_and_nothing_else(tmp_path):
    """The demo generator plants a batch update (deals pulled into intent in one week), recorded in its ground truth;
    the same demo without it is the control. The alerts that differ are exactly the planted one."""
    import shutil

    import funnel_lab as fl
    from conftest import ROOT
    from funnel_lab.data.demo import write_demo_data

    found = {}
    for plant in (False, True):
        root = tmp_path / str(plant)
        shutil.copytree(ROOT / "params", root / "params")
        truth = write_demo_data(root / "data" / "demo", rows=1500, seed=11, plant_shift=plant)
        alerts = fl.load(root / "params" / "demo.yaml").monitoring().alerts
        found[plant] = set(map(tuple, alerts[["period", "stage", "metric", "direction"]].to_numpy()))
    planted = truth["monitoring"]["planted"]
    assert [p["deals"] for p in planted] == [18]
    assert found[True] - found[False] == {(p["period"], p["stage"], p["metric"], p["direction"]) for p in planted}
    assert found[False] <= found[True]


def test_below_own_history_picks_each_stages_latest_judged_period():
    def row(stage, week, entered, conversion, center, mature=True):
        return {"stage": stage, "period": f"2024-W{week:02d}", "period_start": T("2024-01-01") + pd.Timedelta(weeks=week),
                "mature": mature, "entered": entered, "conversion": conversion, "conversion_center": center}

    limits = pd.DataFrame([
        row("b", 1, 50, 0.4, np.nan),                # b: never judged against a history
        row("a", 1, 100, 0.30, 0.5), row("a", 2, 80, 0.25, 0.5), row("a", 3, 90, 0.1, 0.5, mature=False),
        row("c", 2, 40, 0.9, 1.0),                   # c: always converted, so no spread to measure a shortfall by
        row("d", 1, 1, 1.0, 0.4), row("d", 2, 0, np.nan, 0.4),  # d: its latest period had no entries
    ])
    b = below_own_history(limits, ["b", "a", "c", "d"])
    assert b.columns.tolist() == ["stage", "period", "entered", "conversion", "usual", "z"]
    assert b["stage"].tolist() == ["a", "d", "c"] and b.index.tolist() == [0, 1, 2]
    assert b.loc[0, ["period", "entered", "conversion", "usual"]].tolist() == ["2024-W02", 80, 0.25, 0.5]
    assert b.loc[0, "z"] == pytest.approx((0.25 - 0.5) / np.sqrt(0.25 / 80))
    assert b.loc[1, "z"] == pytest.approx((1.0 - 0.4) / np.sqrt(0.24 / 1)) and np.isnan(b.loc[2, "z"])
    assert below_own_history(limits, ["b"]).empty and below_own_history(limits, ["b"]).columns.tolist()[0] == "stage"


def test_the_results_headline_count_measure_and_files():
    from funnel_lab.analysis.monitoring import ConversionHistory, MonitoringResult, day, last_day

    start, end = T("2024-03-04"), T("2024-03-11")
    limits = pd.DataFrame({"period": ["2024-W09", "2024-W10"], "period_start": [T("2024-02-26"), start]})
    alerts = pd.DataFrame({"period": ["2024-W10", "2024-W10", "2024-W09"], "stage": ["a", "b", "a"]})
    moves = pd.DataFrame({"amount": [10.0, np.nan, np.nan, 5.0], "in_start": [True, True, False, False],
                          "in_end": [False, True, True, False]})
    waterfall = pd.DataFrame({"step": ["start"], "deals": [2], "amount": [10.0]})
    r = MonitoringResult(ConversionHistory(["a", "b"], "W", {}, limits, end), alerts, moves, waterfall, start, end,
                         T("2024-06-09"))
    assert r.latest_alert_count() == 2 and r.summary is waterfall
    # 2 of the 3 deals in either pipeline have no amount: the waterfall counts deals
    assert r.measure == "deals"
    assert MonitoringResult(None, alerts, moves.assign(amount=1.0), waterfall, start, end, None).measure == "amount"
    assert MonitoringResult(None, alerts, moves, waterfall, start, end, None).latest_alert_count() == 0
    files = r.outputs
    assert set(files) == {"pipeline_waterfall.csv", "pipeline_moves.csv", "monitoring.csv", "alerts.csv"}
    assert files["pipeline_waterfall.csv"][["start", "end", "due_by"]].iloc[0].tolist() == [
        "2024-03-04", "2024-03-10", "2024-06-09"]
    bare = MonitoringResult(None, pd.DataFrame(), moves, waterfall, start, end, None).outputs
    assert set(bare) == {"pipeline_waterfall.csv", "pipeline_moves.csv"} and bare["pipeline_waterfall.csv"]["due_by"].iloc[0] == ""
    assert day(T("2024-03-04 15:00")) == "2024-03-04" and last_day(T("2024-04-01")) == "2024-03-31"


def test_breaches_judge_only_what_is_judged_and_list_the_newest_first():
    def row(period, stage, entered, lcl, ucl, conversion, clcl, cucl, complete=True, mature=True):
        return {"period": period, "stage": stage, "complete": complete, "mature": mature, "entered": entered,
                "entered_center": (lcl + ucl) / 2, "entered_lcl": lcl, "entered_ucl": ucl, "conversion": conversion,
                "conversion_center": (clcl + cucl) / 2, "conversion_lcl": clcl, "conversion_ucl": cucl}

    limits = pd.DataFrame([
        row("2024-W01", "a", 50, 20.0, 40.0, 0.5, 0.2, 0.4),                  # both above
        row("2024-W02", "a", 20, 20.0, 40.0, 0.2, 0.2, 0.4),                  # on the limits: no breach
        row("2024-W02", "b", 10, 20.0, 40.0, 0.1, 0.2, 0.4, complete=False, mature=False),  # not judged
        row("2024-W03", "a", 0, 20.0, 40.0, np.nan, 0.2, 0.4),                # no entries: entries below, no rate
        row("2024-W03", "b", 1, 0.5, 2.0, 0.0, 0.2, 0.4),                    # one entry that did not convert
        row("2024-W04", "a", 30, np.nan, np.nan, 0.9, np.nan, np.nan),         # no limits yet
    ])
    b = breaches(limits)
    assert list(b.columns) == ["period", "stage", "metric", "value", "center", "lcl", "ucl", "direction"]
    assert b[["period", "stage", "metric", "direction"]].values.tolist() == [
        ["2024-W03", "a", "entered", "below"], ["2024-W03", "b", "conversion", "below"],
        ["2024-W01", "a", "conversion", "above"], ["2024-W01", "a", "entered", "above"]]
    assert b["value"].tolist() == [0.0, 0.0, 0.5, 50.0] and b["center"].tolist() == pytest.approx([30.0, 0.3, 0.3, 30.0])
    assert b["lcl"].tolist() == [20.0, 0.2, 0.2, 20.0] and b["ucl"].tolist() == [40.0, 0.4, 0.4, 40.0]
    assert b.index.tolist() == [0, 1, 2, 3]


def test_a_conversion_on_the_last_day_of_its_window_counts_and_the_window_must_have_passed():
    e = pd.DataFrame({"opportunity_id": ["x1", "x2", "x3"], "stage": "a", "rank": 1,
                      "entered_at": [T("2024-01-01")] * 3,
                      "advanced_at": [T("2024-01-04"), T("2024-01-04 00:00:01"), pd.NaT]})
    # the week of Jan 1-7 ends on the 8th; its 3-day window on the 11th
    s = period_series(e, ["a"], period="W", as_of=T("2024-01-11"), windows={"a": 3})
    a = s[s["stage"] == "a"].iloc[0]
    assert a["mature"] and a["converted"] == 1 and a["conversion"] == pytest.approx(1 / 3)
    assert str(s["window_days"].dtype) == "Int64" and s["window_days"].isna().tolist() == [False, False, True, True]
    early = period_series(e, ["a"], period="W", as_of=T("2024-01-10 23:00"), windows={"a": 3})
    assert not early.iloc[0]["mature"] and pd.isna(early.iloc[0]["converted"])
    assert list(s.columns) == ["stage", "period", "period_start", "period_end", "complete", "entered", "window_days",
                               "mature", "converted", "conversion"]
    assert s["period_end"].iloc[0] == T("2024-01-08") and s["stage"].tolist() == ["a", "a", "won", "won"]
    assert s["complete"].tolist() == [True, False, True, False]  # the week of the 8th runs past the analysis date


def _stub(opportunities, history, as_of, **monitoring):
    """What :func:`analyse_monitoring` reads of a :class:`funnel_lab.Pipeline`."""
    from types import SimpleNamespace as NS

    from funnel_lab.config import Monitoring

    return NS(opportunities=opportunities, history=history, as_of=as_of,
              params=NS(stages=NS(order=ORDER), monitoring=Monitoring(**monitoring), forecast=NS(horizon_days=90)))


def test_the_monitoring_analysis_judges_the_latest_full_period():
    from funnel_lab.analysis.monitoring import analyse_monitoring, conversion_history

    e = _weekly_entries([20] * 12, [10] * 12)
    opp = pd.DataFrame({"opportunity_id": e["opportunity_id"], "status": "open", "created_at": e["entered_at"],
                        "closed_at": pd.NaT, "amount": 1.0})
    h = e[["opportunity_id", "stage", "entered_at"]].copy()
    h = pd.concat([h, e.dropna(subset=["advanced_at"]).assign(stage="b", entered_at=lambda d: d["advanced_at"])[
        ["opportunity_id", "stage", "entered_at"]]], ignore_index=True)
    as_of = T("2024-03-20")  # a Wednesday: the week of Mar 18 is not over
    r = analyse_monitoring(_stub(opp, h, as_of, window_days=4, alert_sigma=2.5))
    assert (r.start, r.end) == (T("2024-03-11"), T("2024-03-18")) and r.due_by is None  # no close dates
    ch = conversion_history(_stub(opp, h, as_of, window_days=4, alert_sigma=2.5), "W")
    assert ch.windows == {"a": 4, "b": 4, "c": 4} and ch.period == "W" and ch.order == ORDER and ch.as_of == as_of
    pd.testing.assert_frame_equal(r.history.limits, ch.limits)
    assert r.alerts.equals(breaches(ch.limits))
    assert r.waterfall.set_index("step").loc["end", "deals"] == (opp["created_at"] <= T("2024-03-18")).sum()
    # with close dates in the history, the pipeline is the deals due within the horizon after the period
    dated = h.assign(expected_close_at=T("2024-05-01"))
    r = analyse_monitoring(_stub(opp, dated, as_of))
    assert r.due_by == T("2024-03-18") + pd.Timedelta(days=90)
    # without a history: the latest full week before the analysis date, every open deal, no series
    r = analyse_monitoring(_stub(opp, None, as_of, period="M"))
    assert (r.start, r.end) == (T("2024-02-01"), T("2024-03-01")) and r.history is None and r.alerts.empty
    assert r.latest_alert_count() == 0 and r.due_by is None


def test_pipeline_moves_at_the_edges_of_the_period():
    start, end, due = T("2024-03-01"), T("2024-03-08"), T("2024-06-30")
    opp = pd.DataFrame({
        "opportunity_id": ["closed_at_start", "closed_at_end", "created_at_end", "due_on_the_day", "no_dates"],
        "status": ["won", "lost", "open", "open", "open"],
        "created_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-08", "2024-01-01", None]),
        "closed_at": pd.to_datetime(["2024-03-01", "2024-03-08", None, None, None]),
        "expected_close_at": pd.to_datetime(["2024-04-01", "2024-04-01", "2024-04-01", "2024-06-30", "2024-04-01"]),
        "amount": [1.0, 2.0, 4.0, 8.0, 16.0]})
    m = pipeline_moves(opp, None, start=start, end=end, due_by=due).set_index("opportunity_id")
    assert "closed_at_start" not in m.index  # closed when the period began: in neither pipeline
    assert m.loc["closed_at_end", ["in_start", "lost", "in_end"]].tolist() == [True, True, False]
    assert m.loc["created_at_end", ["in_start", "created", "in_end"]].tolist() == [False, True, True]
    assert m.loc["due_on_the_day", ["in_start", "in_end"]].tolist() == [True, True]
    assert m.loc["no_dates", ["in_start", "in_end"]].tolist() == [True, True]  # no creation date: always there
    assert m.loc["closed_at_end", "expected_close_start"] == T("2024-04-01")
    assert list(m.columns) == ["amount", "expected_close_start", "expected_close_end", "in_start", "in_end", "created",
                               "pulled_in", "pushed_out", "won", "lost"]
    bare = pipeline_moves(opp[["opportunity_id", "status"]], None, start=start, end=end, due_by=None)
    # without dates a closed deal cannot be placed in time: in no pipeline; every open one in both
    assert bare["opportunity_id"].tolist() == ["created_at_end", "due_on_the_day", "no_dates"]
    assert bare["in_start"].all() and bare["in_end"].all() and bare["amount"].isna().all()
