"""The demo's activity log, checked against the truth table with counts recomputed from the CSV text."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from funnel_lab.data import demo as datasets
from funnel_lab.data.demo import make_demo_tables, write_demo_data

ROWS = 2_000
SEED = 7
COLUMNS = ["Activity ID", "Opportunity ID", "Activity Type", "Occurred At", "Minutes"]
TYPES = ("Visit", "Meeting", "Reply", "Email", "Call")
OPEN_CUTOFF = pd.Timestamp("2026-07-01 00:00:00")
AS_OF_END = pd.Timestamp("2026-06-30 23:59:59")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The written files' truth, the activity CSV read back as text, and the clean truth table."""
    out = tmp_path_factory.mktemp("activities")
    written = write_demo_data(out, rows=ROWS, seed=SEED)
    tables, truth = make_demo_tables(rows=ROWS, seed=SEED)
    assert written == truth
    raw = pd.read_csv(out / "activities.csv", dtype=str, keep_default_na=False)
    return raw, truth, tables["opportunities_truth"].set_index("opportunity_id")


@pytest.fixture(scope="module")
def events(demo):
    """Rows of known deals with a parsable time, each with its deal's cut-off and created day."""
    raw, _, deals = demo
    df = raw.assign(at=pd.to_datetime(raw["Occurred At"], format=TIME_FORMAT, errors="coerce"))
    df = df[df["Opportunity ID"].isin(deals.index) & df["at"].notna()].copy()
    closed = deals["close_date"].ne("")
    cutoff = pd.Series(OPEN_CUTOFF, index=deals.index)
    cutoff[closed] = pd.to_datetime(deals.loc[closed, "close_date"], format="%Y-%m-%d")
    df["cutoff"] = df["Opportunity ID"].map(cutoff)
    df["created"] = df["Opportunity ID"].map(pd.to_datetime(deals["created_date"], format="%Y-%m-%d"))
    df["counted"] = df["at"] <= df["cutoff"]
    return df


def _per_deal(df: pd.DataFrame, kind: str, deals: pd.DataFrame) -> pd.Series:
    counted = df[df["counted"] & (df["Activity Type"] == kind)]
    return counted.groupby("Opportunity ID").size().reindex(deals.index, fill_value=0)


def test_columns_ids_and_row_count(demo):
    raw, truth, _ = demo
    assert list(raw.columns) == COLUMNS
    facts = truth["activities"]
    assert len(raw) == facts["rows"] == truth["files"]["activities.csv"]
    expected_ids = [f"ACT-{i:07d}" for i in range(1, len(raw) + 1)]
    assert raw["Activity ID"].tolist() == expected_ids
    assert facts["cutoff_rule"] == ("closed: close date 00:00; open: 2026-07-01 00:00; "
                                    "an event counts iff occurred_at <= cut-off")


@pytest.mark.parametrize(("kind", "column"), [("Visit", "visits"), ("Meeting", "meetings"),
                                              ("Reply", "emails_replied")])
def test_counted_events_match_truth_per_deal(events, demo, kind, column):
    _, _, deals = demo
    got = _per_deal(events, kind, deals)
    pd.testing.assert_series_equal(got, deals[column].astype(got.dtype), check_names=False)


def test_visit_minutes_sum_to_minutes_on_site(events, demo):
    _, _, deals = demo
    visits = events[events["counted"] & (events["Activity Type"] == "Visit")]
    minutes = visits["Minutes"].astype(float).groupby(visits["Opportunity ID"]).sum()
    minutes = minutes.reindex(deals.index, fill_value=0.0)
    assert (deals.loc[deals["visits"] == 0, "minutes_on_site"] == 0).all()
    np.testing.assert_allclose(minutes.to_numpy(), deals["minutes_on_site"].to_numpy(), atol=0.05, rtol=0)
    assert (visits["Minutes"].astype(float) >= 0).all()


def test_per_type_counted_facts(events, demo):
    _, truth, _ = demo
    counted = events[events["counted"]]
    got = counted["Activity Type"].value_counts()
    assert truth["activities"]["per_type_counted"] == {t: int(got.get(t, 0)) for t in TYPES}


def test_counted_events_lie_from_created_day_to_before_cutoff(events):
    counted = events[events["counted"]]
    assert (counted["at"] >= counted["created"]).all()
    # strictly before the cut-off: nothing sits exactly on the cut-off moment
    assert (counted["at"] < counted["cutoff"]).all()


def test_visits_lean_to_the_end_of_a_deal(events):
    visits = events[events["counted"] & (events["Activity Type"] == "Visit")]
    life = (visits["cutoff"] - visits["created"]).dt.total_seconds()
    position = (visits["at"] - visits["created"]).dt.total_seconds() / life
    # uniform days would give 0.5; u ** 0.6 gives about 0.62
    assert position.mean() > 0.57


def test_post_outcome_events_are_after_cutoff_and_counted_in_facts(events, demo):
    _, truth, deals = demo
    facts = truth["activities"]
    post = events[~events["counted"]]
    assert len(post) == facts["post_outcome_events"] > 0
    assert (post["at"] > post["cutoff"]).all() and (post["at"] <= AS_OF_END).all()
    on_close_day = post["at"].dt.normalize() == post["cutoff"]
    assert int(on_close_day.sum()) == facts["post_outcome_on_close_day"] > 0
    assert (post.loc[on_close_day, "at"] >= post.loc[on_close_day, "cutoff"] + pd.Timedelta(seconds=1)).all()
    outcome = post["Opportunity ID"].map(deals["outcome"])
    assert set(outcome) == {"won", "lost"}
    assert set(post.loc[outcome == "won", "Activity Type"]) <= {"Meeting", "Call"}
    assert set(post.loc[outcome == "lost", "Activity Type"]) == {"Email"}
    won_share = post.loc[outcome == "won", "Opportunity ID"].nunique() / (deals["outcome"] == "won").sum()
    lost_share = post.loc[outcome == "lost", "Opportunity ID"].nunique() / (deals["outcome"] == "lost").sum()
    assert won_share == pytest.approx(0.40, abs=0.01) and lost_share == pytest.approx(0.10, abs=0.01)


def test_bad_rows_are_exactly_the_recorded_ids(demo):
    raw, truth, deals = demo
    bad = truth["activities"]["bad"]
    at = pd.to_datetime(raw["Occurred At"], format=TIME_FORMAT, errors="coerce")
    problems = {
        "unknown_opportunity": ~raw["Opportunity ID"].isin(deals.index),
        "unparsable_time": at.isna(),
        "missing_type": raw["Activity Type"] == "",
    }
    for name, mask in problems.items():
        assert set(raw.loc[mask, "Activity ID"]) == set(bad[name]), name
    assert {k: len(v) for k, v in bad.items()} == {"unknown_opportunity": 40, "unparsable_time": 25,
                                                   "missing_type": 15}
    # one problem per row, and every other type is a known one
    assert (sum(m.astype(int) for m in problems.values()) <= 1).all()
    assert set(raw.loc[~problems["missing_type"], "Activity Type"]) == set(TYPES)
    assert set(raw.loc[problems["unparsable_time"], "Occurred At"]) <= {"", "not a date", "2026-02-30 10:00:00",
                                                                        "31/13/2026"}
    assert raw.loc[problems["unknown_opportunity"], "Opportunity ID"].str.fullmatch(r"OPP-9\d{5}").all()


def test_rows_sorted_by_time_with_bad_times_scattered(demo):
    raw, truth, _ = demo
    at = pd.to_datetime(raw["Occurred At"], format=TIME_FORMAT, errors="coerce")
    assert at.dropna().is_monotonic_increasing
    positions = np.flatnonzero(at.isna().to_numpy())
    # not all bunched at one end
    assert positions.min() < len(raw) // 2 < positions.max()


def test_minutes_format_per_type(demo):
    raw, _, _ = demo
    minutes = raw["Minutes"]
    timed = raw["Activity Type"].isin(["Visit", "Meeting", "Call"])
    assert minutes[timed].str.fullmatch(r"\d+\.\d").all()
    assert (minutes[raw["Activity Type"].isin(["Reply", "Email"])] == "").all()
    meeting = minutes[raw["Activity Type"] == "Meeting"].astype(float)
    call = minutes[raw["Activity Type"] == "Call"].astype(float)
    assert set(meeting) == {30.0, 45.0, 60.0}
    assert call.between(5, 40).all()


def test_same_seed_gives_identical_activities(tmp_path):
    digests = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_demo_data(tmp_path / name, rows=300, seed=seed)
        digests.append(hashlib.sha256((tmp_path / name / "activities.csv").read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]


def test_activities_leave_the_other_tables_unchanged(monkeypatch):
    """The log draws from its own generator: without it, every other table comes out the same."""
    with_log, truth = make_demo_tables(rows=500, seed=SEED)
    monkeypatch.setattr(datasets, "_activities", lambda rng, truth: (pd.DataFrame(columns=COLUMNS), {}))
    without_log, _ = make_demo_tables(rows=500, seed=SEED)
    for name in ("opportunities", "stage_history", "experiment", "opportunities_truth"):
        pd.testing.assert_frame_equal(with_log[name], without_log[name], obj=name)
    assert len(with_log["activities"]) == truth["activities"]["rows"] > 0
