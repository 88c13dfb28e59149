"""Forecast pieces against hand calculations and a closed-form check of the simulation."""

import numpy as np
import pandas as pd
import pytest

from funnel_lab.analysis.forecast import reach_at, simulate_won_revenue, stage_at, win_probability_by_stage

ORDER = ["a", "b"]


def test_stage_at_takes_the_latest_entry_up_to_the_date():
    h = pd.DataFrame({"opportunity_id": ["x", "x", "x", "y"], "stage": ["a", "b", "won", "a"],
                      "entered_at": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-02-15"])})
    assert stage_at(h, ORDER, pd.Timestamp("2024-01-20")).to_dict() == {"x": "a"}
    assert stage_at(h, ORDER, pd.Timestamp("2024-03-05")).to_dict() == {"x": "b", "y": "a"}


def test_win_probability_counts_deals_that_reached_the_stage():
    h = pd.DataFrame({"opportunity_id": ["d1", "d2", "d2", "d3", "d4", "d4"], "stage": ["a", "a", "b", "a", "a", "b"],
                      "entered_at": pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-02", "2024-01-01", "2024-03-01"])})
    won = pd.Series({"d1": 0, "d2": 1, "d3": 1, "d4": 0})  # d3 won from a: it passed b too
    reach = reach_at(h, won, ORDER, pd.Timestamp("2024-02-01"))
    assert reach.to_dict() == {"d1": 1, "d2": 3, "d3": 3, "d4": 1}  # d4 reached b only in March
    p = win_probability_by_stage(reach, won, ORDER).set_index("stage")
    assert p["closed"].tolist() == [4, 2] and p["won"].tolist() == [2, 2] and p["p_win"].tolist() == [0.5, 1.0]


def test_simulation_matches_the_closed_form_mean_and_variance():
    pipe = pd.DataFrame({"period": ["2024-01"] * 3 + ["2024-02"], "amount": [100.0, 200.0, 50.0, 10.0],
                         "p_win": [0.5, 0.25, 0.9, 1.0], "crm_probability": [50, 50, 50, 100]})
    out = simulate_won_revenue(pipe, simulations=200_000, seed=1).set_index("period")
    mean = 100 * 0.5 + 200 * 0.25 + 50 * 0.9
    sd = np.sqrt(100**2 * 0.25 + 200**2 * 0.25 * 0.75 + 50**2 * 0.9 * 0.1)
    assert out.loc["2024-01", "expected_amount"] == pytest.approx(mean)
    assert out.loc["2024-01", "p10"] < mean < out.loc["2024-01", "p90"]
    assert out.loc["2024-01", "crm_weighted"] == pytest.approx(175.0)
    assert out.loc["2024-02", "p10"] == out.loc["2024-02", "p90"] == 10.0  # a sure deal has no spread
    # the simulated spread is the binomial one: 10-90 range about 2 x 1.28 sd for this near-normal sum
    assert (out.loc["2024-01", "p90"] - out.loc["2024-01", "p10"]) / (2 * 1.2816 * sd) == pytest.approx(1, abs=0.35)


def _snapshot_example():
    opp = pd.DataFrame({
        "opportunity_id": ["p0", "p1", "p2", "p3", "p4"],
        "status": ["won", "won", "lost", "won", "open"],
        "created_at": pd.to_datetime(["2023-12-01", "2024-01-10", "2024-01-10", "2024-02-10", "2024-01-20"]),
        "closed_at": pd.to_datetime(["2024-01-20", "2024-03-15", "2024-02-20", "2024-04-10", None]),
        "amount": [1000.0, 100, 200, 300, 400],
    })
    h = pd.DataFrame({
        "opportunity_id": ["p0", "p1", "p2", "p3", "p3", "p4"],
        "stage": ["a", "a", "a", "a", "b", "a"],
        "entered_at": pd.to_datetime(["2023-12-01", "2024-01-10", "2024-01-10", "2024-02-10", "2024-02-20",
                                      "2024-01-20"]),
        "expected_close_at": pd.to_datetime(["2024-01-31", "2024-03-31", "2024-02-28", "2024-03-20", "2024-04-01",
                                             "2024-09-01"]),
    })
    return opp, h


def test_win_probability_from_snapshots_by_hand():
    from funnel_lab.analysis.forecast import snapshot_dates, win_probability_at_snapshots

    opp, h = _snapshot_example()
    assert snapshot_dates(pd.Timestamp("2024-01-10"), pd.Timestamp("2024-03-05")) == [
        pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")]
    dates = snapshot_dates(opp["created_at"].min(), pd.Timestamp("2024-05-01"))
    p = win_probability_at_snapshots(h, opp, ORDER, dates=dates, known_by=pd.Timestamp("2024-05-01")).set_index("stage")
    # Jan 1: p0 at a (won). Feb 1: p1, p2 at a (won, lost). Mar 1: p1 at a, p3 at b (both won); p4 is still open.
    # Apr 1: p3 at b (won). So a: 4 deal-snapshots, 3 won; b: 2, 2.
    assert p["closed"].tolist() == [4, 2] and p["won"].tolist() == [3, 2]
    assert p["p_win"].tolist() == [0.75, 1.0]


def test_backtest_uses_only_what_was_known_then():
    from funnel_lab.analysis.forecast import backtest

    opp, h = _snapshot_example()
    d = pd.Timestamp("2024-03-05")
    bt = backtest(opp, h, ORDER, dates=[d], horizon_days=60).iloc[0]
    # known by Mar 5: Jan 1 snapshot p0 at a (won), Feb 1 p2 at a (lost; p1 not closed yet) -> P(a) = 0.5, P(b) unknown.
    # Open then: p1 (a, due Mar 31), p3 (b, due Apr 1), p4 (a, due Sep 1: beyond the 60 days).
    assert bt["timing"] == "as_known_then" and bt["open_deals"] == 3 and bt["forecast_deals"] == 2
    assert bt["forecast"] == pytest.approx(100 * 0.5)
    assert bt["actual"] == pytest.approx(100 + 300)  # p1 and p3 were won within the horizon
    # without close dates in the history, the deals that did close in the horizon stand in for the expected ones
    known = backtest(opp, h.drop(columns="expected_close_at"), ORDER, dates=[d], horizon_days=60).iloc[0]
    assert known["timing"] == "known" and known["forecast_deals"] == 2 and known["forecast"] == pytest.approx(50)


def test_monte_carlo_drawn_in_blocks_gives_the_one_draw_numbers(monkeypatch):
    """The simulations are drawn a block at a time to bound memory; the draws are those of one big draw (the
    demo's forecast.csv is byte-identical either way)."""
    import funnel_lab.analysis.forecast as fc

    rng = np.random.default_rng(1)
    pipe = pd.DataFrame({"period": ["2025-01"] * 3000 + ["2025-02"] * 500, "amount": rng.uniform(1, 100, 3500),
                         "p_win": rng.uniform(0, 1, 3500)})
    monkeypatch.setattr(fc, "_DRAW_CELLS", 7001)  # blocks of 2 and of 14 simulations
    blocked = fc.simulate_won_revenue(pipe, simulations=1000, seed=3)
    one = np.random.default_rng(3)
    expected = []
    for _, part in pipe.groupby("period", sort=True):
        draws = (one.random((1000, len(part))) < part["p_win"].to_numpy()) @ part["amount"].to_numpy()
        expected.append(np.percentile(draws, [10, 50, 90]))
    # the same draws; only the matrix product may sum a block in another order (the last bit or two)
    np.testing.assert_allclose(blocked[["p10", "p50", "p90"]].to_numpy(), np.array(expected), rtol=1e-12, atol=0)
