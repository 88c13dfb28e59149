"""The run history: deals' changes between two runs, win rates and stage mix against the last run, the history store
(rerun replaces its own record, concurrent runs), and the alerts delivered by webhook and e-mail."""

from __future__ import annotations

import json
from pathlib import Path
import multiprocessing
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from funnel_lab.config import Alerts
from funnel_lab.i18n import t
from funnel_lab.history.changes import (CHANGE_COLUMNS, DEAL_COLUMNS, SinceLastRun, deal_changes, stage_mix_change,
                                        win_rate_changes)
from funnel_lab.history.delivery import breach_id, deliver
from funnel_lab.history.store import RunHistory, run_id

ORDER = ["potential", "intent", "evaluation", "decision"]


def deals(rows: list[tuple]) -> pd.DataFrame:
    """(id, status, stage, expected close, stalled) -> a deal-state table."""
    df = pd.DataFrame(rows, columns=["opportunity_id", "status", "stage", "expected_close_at", "stalled"])
    return df.assign(model_stage=df["stage"], closed_at=pd.NaT, amount=100.0,
                     expected_close_at=pd.to_datetime(df["expected_close_at"]))[DEAL_COLUMNS]


BEFORE = deals([
    ("A", "open", "decision", "2026-07-10", False),  # won
    ("B", "open", "evaluation", "2026-07-10", False),  # lost
    ("C", "open", "intent", "2026-07-10", False),  # moved on
    ("D", "open", "intent", "2026-07-10", False),  # slipped and stalled
    ("E", "open", "intent", "2026-07-10", True),  # still stalled: no change
    ("F", "lost", "intent", None, False),  # reopened
    ("G", "open", "potential", None, False),  # gone
    ("H", "open", "potential", "2026-07-10", False),  # close date earlier: not a slip
])
AFTER = deals([
    ("A", "won", "decision", None, False),
    ("B", "lost", "evaluation", None, False),
    ("C", "open", "evaluation", "2026-07-10", False),
    ("D", "open", "intent", "2026-08-01", True),
    ("E", "open", "intent", "2026-07-10", True),
    ("F", "open", "intent", None, False),
    ("H", "open", "potential", "2026-07-01", False),
    ("N", "open", "potential", None, False),  # new
])


def test_deal_changes_by_hand():
    c = deal_changes(BEFORE, AFTER)
    assert list(c.columns) == CHANGE_COLUMNS
    got = sorted(zip(c["opportunity_id"], c["change"], c["from"], c["to"]))
    assert got == [("A", "won", "decision", "won"), ("B", "lost", "evaluation", "lost"),
                   ("C", "moved_stage", "intent", "evaluation"), ("D", "slipped", "2026-07-10", "2026-08-01"),
                   ("D", "stalled", "", ""), ("F", "reopened", "lost", "open"), ("G", "gone", "open", ""),
                   ("N", "new", "", "open")]
    # sorted by kind in the report's order
    assert list(dict.fromkeys(c["change"])) == ["won", "lost", "moved_stage", "slipped", "stalled", "new", "reopened",
                                                "gone"]


def test_nothing_changed_gives_an_empty_table_with_its_header():
    c = deal_changes(BEFORE, BEFORE)
    assert c.empty and list(c.columns) == CHANGE_COLUMNS


def test_win_rate_change_against_statsmodels():
    rng = np.random.default_rng(5)
    n_before, n_since = 400, 120
    before = deals([(f"b{i}", "won" if rng.random() < 0.4 else "lost", "evaluation", None, False)
                    for i in range(n_before)])
    # the deals closed before stay closed; the new ones were open at the last run
    after = pd.concat([before, deals([(f"s{i}", "won" if rng.random() < 0.2 else "lost", "evaluation", None, False)
                                      for i in range(n_since)])], ignore_index=True)
    before = pd.concat([before, deals([(f"s{i}", "open", "evaluation", None, False) for i in range(n_since)])],
                       ignore_index=True)
    w = win_rate_changes(before, after, ORDER).set_index("stage").loc["evaluation"]
    x0 = int(before["status"].eq("won").sum())
    x1 = int(after.loc[after["opportunity_id"].str.startswith("s"), "status"].eq("won").sum())
    assert (w["closed_before"], w["closed_since"], w["won_since"]) == (n_before, n_since, x1)
    assert w["change"] == pytest.approx(x1 / n_since - x0 / n_before)
    low, high = confint_proportions_2indep(x1, n_since, x0, n_before, method="newcomb", compare="diff")
    assert (w["ci_low"], w["ci_high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))


def test_stage_mix_psi_by_hand():
    mix, value = stage_mix_change(BEFORE, AFTER, ORDER)
    # open deals before: decision 1, evaluation 1, intent 3, potential 2; after: evaluation 1, intent 3, potential 2
    b = np.array([2, 3, 1, 1]) / 7
    a = np.clip(np.array([2, 3, 1, 0]) / 6, 1e-4, None)
    assert value == pytest.approx(float(np.sum((a - b) * np.log(a / b))))
    assert mix.set_index("stage").loc["intent", "now"] == pytest.approx(0.5)


def _record(rid: str, when: str, numbers: dict | None = None, **extra) -> dict:
    return {"run_id": rid, "recorded_at": when, "as_of": when[:10], "status": "ok", "numbers": numbers or {}, **extra}


def test_first_run_and_what_matters():
    first = SinceLastRun.compare("r1", pd.Timestamp("2026-07-01"), AFTER, [], None, ORDER)
    assert first.what_matters() == ("sl.first", {}) and first.changes.empty
    later = SinceLastRun.compare("r2", pd.Timestamp("2026-07-08"), AFTER, [_record("r1", "2026-07-01T00:00:00",
                                                                                   {"open": 7})], BEFORE, ORDER)
    table = later.numbers_table({"forecast": 10.0}).set_index("key")
    assert table.loc["open", "last"] == 7 and table.loc["open", "now"] == 6 and table.loc["open", "change"] == -1
    assert table.loc["forecast", "trend"][-1] == 10.0 and np.isnan(table.loc["forecast", "trend"][0])
    assert later.change_counts()["won"] == 1


def test_store_replaces_its_own_record_and_prunes_deal_snapshots(tmp_path):
    store = RunHistory(tmp_path, keep_deals=2)
    for i, rid in enumerate(["a", "b", "a", "c"]):
        store.write(_record(rid, f"2026-07-0{i + 1}T00:00:00", {"open": i}), AFTER)
    recs = store.records()
    assert [r["run_id"] for r in recs] == ["b", "a", "c"]  # a's rerun replaced its first record
    assert recs[1]["numbers"] == {"open": 2}
    assert sorted(p.stem for p in store.deals_dir.glob("*.parquet")) == ["a", "c"]
    assert [r["run_id"] for r in store.previous("c")] == ["b", "a"]
    pd.testing.assert_frame_equal(store.deals("c"), AFTER)
    assert store.deals("b") is None


def test_an_unreadable_record_is_named(tmp_path):
    from funnel_lab.errors import ParamsError

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "2026-07-01-abc.json").write_text("{not json")
    with pytest.raises(ParamsError, match=r"2026-07-01-abc\.json: run history record cannot be read"):
        RunHistory(tmp_path).records()


def test_run_id_is_the_date_and_a_digest_of_params_and_inputs():
    a = run_id(pd.Timestamp("2026-07-01"), {"x": 1}, {"opportunities": "abc"})
    assert a == run_id(pd.Timestamp("2026-07-01"), {"x": 1}, {"opportunities": "abc"})
    assert a.startswith("2026-07-01-") and len(a) == len("2026-07-01-") + 12
    assert a != run_id(pd.Timestamp("2026-07-01"), {"x": 1}, {"opportunities": "abd"})


def _write_many(folder: str, worker: int) -> None:
    store = RunHistory(folder, keep_deals=3)
    for i in range(15):
        # every worker also rewrites one shared id: the same inputs run twice at the same time
        rid = "shared" if i % 5 == 0 else f"w{worker}-{i}"
        store.write(_record(rid, f"2026-07-01T00:{worker:02d}:{i:02d}", {"i": i}), AFTER)
        store.records()


def test_concurrent_runs_never_corrupt_the_history(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    recs = RunHistory(tmp_path).records()  # every file parses
    assert len(recs) == 4 * 12 + 1
    assert not list(tmp_path.rglob("*.tmp"))
    for snap in (tmp_path / "deals").glob("*.parquet"):
        assert len(pd.read_parquet(snap)) == len(AFTER)


# --------------------------------------------------------------------------- delivery


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hook:
    """An HTTP server on loopback that records every POST; ``fail_first`` answers 503 that many times first."""

    def __init__(self, fail_first: int = 0):
        self.posts: list[dict] = []
        self.fail_first = fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail_first:
                    hook.fail_first -= 1
                    self.send_response(503)
                else:
                    hook.posts.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def smtp():
    """A throwaway SMTP server on loopback (aiosmtpd) that keeps every message."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    handler = Keep()
    port = free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    handler.url = f"smtp://127.0.0.1:{port}"
    yield handler
    ctl.stop()


BREACHES = [{"period": "2026-06-22/2026-06-28", "stage": "intent", "metric": "entered", "direction": "below",
             "value": 3.0, "limit": 6.6, "center": 20.0, "lcl": 6.6, "ucl": 33.4},
            {"period": "2026-06-15/2026-06-21", "stage": "won", "metric": "entered", "direction": "above",
             "value": 40.0, "limit": 33.4, "center": 20.0, "lcl": 6.6, "ucl": 33.4}]


def _deliver(alerts: dict, records: list[dict], breaches=BREACHES):
    return deliver(Alerts(**alerts), breaches, records, payload={"run_name": "t"},
                   subject=lambda due: f"{len(due)} new", text=lambda due: "\n".join(map(breach_id, due)))


def test_webhook_gets_the_breaches_once(hook):
    out = _deliver({"webhook": {"url": hook.url}}, [])
    assert out["webhook"]["status"] == "sent" and len(hook.posts) == 1
    assert hook.posts[0]["run_name"] == "t" and hook.posts[0]["breaches"] == BREACHES
    again = _deliver({"webhook": {"url": hook.url}}, [{"delivery": out}])
    assert again["webhook"] == {"status": "nothing new", "sent": [], "breaches": 0} and len(hook.posts) == 1


def test_webhook_retries_a_503_then_delivers(monkeypatch):
    import funnel_lab.history.delivery as d

    monkeypatch.setattr(d, "BACKOFF_SECONDS", 0.01)
    h = Hook(fail_first=2)
    try:
        out = _deliver({"webhook": {"url": h.url, "retries": 2}}, [])
    finally:
        h.close()
    assert out["webhook"]["status"] == "sent" and out["webhook"]["attempts"] == 3 and len(h.posts) == 1


def test_a_channel_that_is_down_fails_with_a_safe_message(monkeypatch):
    import funnel_lab.history.delivery as d

    monkeypatch.setattr(d, "BACKOFF_SECONDS", 0.01)
    port = free_port()  # nobody listens on it
    monkeypatch.setenv("ALERT_WEBHOOK", f"http://127.0.0.1:{port}/hooks/secret-token")
    monkeypatch.setenv("SMTP_URL", f"smtp://robot:pa55word@127.0.0.1:{port}")
    out = _deliver({"webhook": {"url": "${ALERT_WEBHOOK}", "retries": 1, "timeout_seconds": 2},
                    "email": {"smtp_url": "${SMTP_URL}", "to": ["boss@example.com"], "retries": 1}}, [])
    for name in ("webhook", "email"):
        assert out[name]["status"] == "failed" and out[name]["attempts"] == 2 and out[name]["breaches"] == 2
        assert "secret-token" not in out[name]["error"] and "pa55word" not in out[name]["error"]
        assert "127.0.0.1" in out[name]["error"]
    # nothing was delivered, so the next run sends them
    assert _deliver({"webhook": {"url": "${ALERT_WEBHOOK}", "retries": 0}}, [{"delivery": out}])["webhook"][
        "breaches"] == 2


def test_an_unset_variable_is_named(monkeypatch):
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    out = _deliver({"webhook": {"url": "${NO_SUCH_HOOK}"}}, [])
    assert out["webhook"]["status"] == "failed" and "NO_SUCH_HOOK is not set" in out["webhook"]["error"]


def test_email_gets_a_short_text_of_the_new_breaches(smtp):
    records = [{"delivery": {"email": {"sent": [breach_id(BREACHES[1])]}}}]  # the second was sent by an earlier run
    out = _deliver({"email": {"smtp_url": smtp.url, "to": ["boss@example.com", "team@example.com"],
                              "sender": "robot@example.com"}}, records)
    assert out["email"]["status"] == "sent" and out["email"]["sent"] == [breach_id(BREACHES[0])]
    (rcpt, content), = smtp.messages
    assert rcpt == ["boss@example.com", "team@example.com"]
    assert "Subject: 1 new" in content and breach_id(BREACHES[0]) in content and breach_id(BREACHES[1]) not in content


# --------------------------------------------------------------------------- two runs of the demo, a week apart


def _independent_changes(run1: Path, run2: Path) -> dict[str, set[str]]:
    """The deals' changes from the two runs' data files alone, in plain pandas."""
    read = lambda run: pd.read_csv(run / "opportunities_clean.csv", dtype={"opportunity_id": "str"},  # noqa: E731
                                   parse_dates=["expected_close_at"]).set_index("opportunity_id")
    a, b = read(run1), read(run2)
    both = a.index.intersection(b.index)
    a1, b1 = a.loc[both], b.loc[both]
    open_both = a1["status"].eq("open") & b1["status"].eq("open")
    stalled = lambda run: set(pd.read_csv(run / "stalled_deals.csv", dtype="str")["opportunity_id"])  # noqa: E731
    s1, s2 = stalled(run1) & set(a.index[a["status"].eq("open")]), stalled(run2)
    return {
        "won": set(both[a1["status"].eq("open") & b1["status"].eq("won")]),
        "lost": set(both[a1["status"].eq("open") & b1["status"].eq("lost")]),
        "moved_stage": set(both[open_both & a1["crm_stage"].ne(b1["crm_stage"])]),
        "slipped": set(both[open_both & (b1["expected_close_at"] > a1["expected_close_at"])]),
        "stalled": set(b.index[b["status"].eq("open")]) & s2 - s1,
        "new": set(b.index.difference(a.index)), "gone": set(a.index.difference(b.index)),
        "reopened": set(both[a1["status"].ne("open") & b1["status"].eq("open")]),
    }


def _recent_breaches(data: Path) -> set[str]:
    alerts = pd.read_csv(data / "alerts.csv", dtype="str")
    periods = sorted(set(pd.read_csv(data / "monitoring.csv", dtype="str")["period"]))[-13:]
    recent = alerts[alerts["period"].isin(periods)]
    return set(recent["period"] + "|" + recent["stage"] + "|" + recent["metric"] + "|" + recent["direction"])


@pytest.fixture(scope="module")
def week_apart(demo_project, tmp_path_factory):
    """The demo run, then run again a week later on changed data, with the alerts going to a loopback webhook and
    SMTP server; then rerun on the same data; then run with both channels down."""
    import shutil
    import subprocess

    from aiosmtpd.controller import Controller

    import funnel_lab as fl
    from conftest import FUNNEL_LAB
    from next_week import next_week

    root = tmp_path_factory.mktemp("weekly")
    shutil.copytree(demo_project / "params", root / "params")
    shutil.copytree(demo_project / "data", root / "data")
    (root / "params" / "alerts.yaml").write_text(
        "alerts:\n  webhook: {url: '${ALERT_WEBHOOK}', retries: 0, timeout_seconds: 5}\n"
        "  email: {smtp_url: '${SMTP_URL}', to: [director@example.com], retries: 0, timeout_seconds: 5}\n")
    hook = Hook()

    class Keep:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    mail, port = Keep(), free_port()
    ctl = Controller(mail, hostname="127.0.0.1", port=port)
    ctl.start()
    env = {**__import__("os").environ, "ALERT_WEBHOOK": hook.url, "SMTP_URL": f"smtp://127.0.0.1:{port}"}
    reports = root / "reports"

    def run(*extra, env=env):
        res = subprocess.run(FUNNEL_LAB + ["run", "params/demo.yaml", "params/alerts.yaml", "--out", str(reports),
                                           *extra], cwd=root, capture_output=True, text=True, timeout=900, env=env)
        return res

    only = ["--only", "00_data_quality", "20_funnel", "60_forecast_monitoring"]
    out = {"runs": []}
    try:
        for week in (1, 2):
            res = run(*only)
            assert res.returncode == 0, res.stderr
            saved = root / f"run{week}"
            shutil.copytree(reports / "demo", saved)
            out["runs"].append(saved)
            out[f"posts{week}"], out[f"mails{week}"] = list(hook.posts), list(mail.messages)
            if week == 1:
                clean = pd.read_csv(saved / "data" / "opportunities_clean.csv", dtype={"opportunity_id": "str"})
                stages = fl.load(root / "params" / "demo.yaml").stages.set_index("opportunity_id")["stage"]
                out["planted"] = next_week(root / "data" / "demo", clean, stages)
        out["rerun"] = run("--only", "60_forecast_monitoring")
        out["posts3"], out["mails3"] = list(hook.posts), list(mail.messages)
        out["rerun_manifest"] = json.loads((reports / "demo" / "manifest.json").read_text())
        out["history"] = subprocess.run(FUNNEL_LAB + ["history", "params/demo.yaml", "--out", str(reports), "--csv"],
                                        cwd=root, capture_output=True, text=True, timeout=120)
        no_env = {k: v for k, v in env.items() if k != "ALERT_WEBHOOK"}
        out["check"] = subprocess.run(FUNNEL_LAB + ["check", "params/demo.yaml", "params/alerts.yaml"], cwd=root,
                                      capture_output=True, text=True, timeout=300, env=no_env)
        dead = free_port()
        down = {**env, "ALERT_WEBHOOK": f"http://127.0.0.1:{dead}/hooks/T0/secret-token",
                "SMTP_URL": f"smtp://robot:pa55word@127.0.0.1:{dead}"}
        out["down"] = run("--only", "60_forecast_monitoring", "--set", f"monitoring.history={root / 'other'}", env=down)
        out["down_dir"] = root / "down"
        shutil.copytree(reports / "demo", out["down_dir"])
    finally:
        hook.close()
        ctl.stop()
    out["root"] = root
    return out


def test_changes_csv_equals_an_independent_diff_of_the_two_runs(week_apart):
    run1, run2 = week_apart["runs"]
    first = pd.read_csv(run1 / "data" / "changes.csv")
    assert first.empty and list(first.columns) == CHANGE_COLUMNS  # nothing to compare on the first run
    got = pd.read_csv(run2 / "data" / "changes.csv", dtype={"opportunity_id": "str"})
    expected = _independent_changes(run1 / "data", run2 / "data")
    assert {k: set(got.loc[got["change"] == k, "opportunity_id"]) for k in expected} == expected
    planted = week_apart["planted"]
    assert set(planted.lost) <= expected["lost"] and set(planted.won) <= expected["won"]
    assert set(planted.moved) <= expected["moved_stage"] and set(planted.slipped) <= expected["slipped"]
    moved = got[got["change"] == "moved_stage"].set_index("opportunity_id")
    assert all(moved.loc[i, "to"] == s for i, s in planted.moved.items())


def test_the_index_shows_what_changed_and_the_trend(week_apart, browser):
    run1, run2 = week_apart["runs"]
    page = browser.new_page()
    page.goto((run1 / "index.html").as_uri())
    assert "nothing to compare yet" in page.inner_text("#since-last-run")
    page.goto((run2 / "index.html").as_uri())
    text = page.inner_text("#since-last-run")
    assert "the win rate of evaluation fell" in text.lower()
    c1 = pd.read_csv(run1 / "data" / "opportunities_clean.csv")["status"].value_counts()
    c2 = pd.read_csv(run2 / "data" / "opportunities_clean.csv")["status"].value_counts()
    changes = pd.read_csv(run2 / "data" / "changes.csv")["change"].value_counts()
    assert f"{changes['won']} deals won, {changes['lost']} lost, {changes['moved_stage']} moved stage" in text
    for key in ("won", "lost", "open"):
        cells = page.locator(f'#since-numbers tr[data-key="{key}"] td').all_inner_texts()
        diff = int(c2[key] - c1[key])
        assert cells[1:4] == [f"{c1[key]:,}", f"{c2[key]:,}", f"{'+' if diff > 0 else '−'}{abs(diff):,}"]
        assert page.locator(f'#since-numbers tr[data-key="{key}"] svg.spark polyline').count() == 1
    page.close()
    stored = json.loads(next((run2 / "history" / "runs").glob("2026-07-08-*.json")).read_text())
    assert stored["numbers"]["won"] == c2["won"]
    assert len(list((run2 / "history" / "runs").glob("*.json"))) == 2


def test_the_60_report_opens_with_since_the_last_run(week_apart, browser):
    page = browser.new_page()
    page.goto((week_apart["runs"][1] / "60_forecast_monitoring.html").as_uri())
    body = page.inner_text("body")
    assert body.index(t("sl.heading")) < body.index(t("fc.p_win")) < body.index(t("mon.charts"))
    w = pd.read_csv(week_apart["runs"][1] / "data" / "changes.csv")
    assert "Deals that changed" in body and w["opportunity_id"].iloc[0] in body
    page.close()


def test_the_channels_receive_exactly_the_new_breaches(week_apart):
    run1, run2 = week_apart["runs"]
    b1, b2 = _recent_breaches(run1 / "data"), _recent_breaches(run2 / "data")
    new = b2 - b1
    assert b1 and new, "the second week should find breaches the first did not (no deal entered potential)"
    (p1,) = week_apart["posts1"]
    assert {breach_id(b) for b in p1["breaches"]} == b1 and p1["run_name"] == "demo"
    (p2,) = week_apart["posts2"][1:]
    assert {breach_id(b) for b in p2["breaches"]} == new
    assert p2["report"] == (week_apart["root"] / "reports" / "demo" / "index.html").as_uri()
    m1, m2 = week_apart["mails1"], week_apart["mails2"][1:]
    assert len(m1) == 1 and len(m2) == 1 and f"{len(new)} new alert(s)" in m2[0]
    # the rerun on the same inputs sends nothing again and replaces its own record
    assert week_apart["rerun"].returncode == 0
    assert week_apart["posts3"] == week_apart["posts2"] and week_apart["mails3"] == week_apart["mails2"]
    manifest = week_apart["rerun_manifest"]
    assert manifest["history"]["runs"] == 2 and manifest["alerts"]["channels"]["webhook"]["status"] == "nothing new"
    assert len(list((week_apart["root"] / "reports" / "demo" / "history" / "runs").glob("*.json"))) == 2


def test_a_channel_that_is_down_still_writes_every_report(week_apart):
    res, run = week_apart["down"], week_apart["down_dir"]
    assert res.returncode == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and all(n["status"] in ("ok", "skipped") for n in manifest["notebooks"])
    assert (run / "60_forecast_monitoring.html").is_file() and (run / "index.html").is_file()
    for name in ("webhook", "email"):
        ch = manifest["alerts"]["channels"][name]
        assert ch["status"] == "failed" and ch["breaches"] > 0 and "127.0.0.1" in ch["error"]
        assert f"alert channel {name} failed" in res.stderr
    for text in (res.stderr, res.stdout, (run / "manifest.json").read_text(), (run / "index.html").read_text()):
        assert "secret-token" not in text and "pa55word" not in text


def test_history_command_prints_one_row_per_run(week_apart):
    res = week_apart["history"]
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(__import__("io").StringIO(res.stdout))
    assert list(table["as_of"]) == ["2026-07-01", "2026-07-08"]
    for week, run in enumerate(week_apart["runs"]):
        clean = pd.read_csv(run / "data" / "opportunities_clean.csv")
        assert table.loc[week, "won"] == int(clean["status"].eq("won").sum())
        assert table.loc[week, "open"] == int(clean["status"].eq("open").sum())
    assert table["delivered"].tolist()[0] == "email: sent, webhook: sent"  # channels by name (JSON keeps keys sorted)


def test_check_names_the_history_and_an_unset_variable(week_apart):
    res = week_apart["check"]
    assert res.returncode == 0, res.stderr
    assert f"run history: {week_apart['root'] / 'reports' / 'demo' / 'history'} (2 run(s) recorded" in res.stdout
    assert "alerts by webhook: ${ALERT_WEBHOOK} (environment variable ALERT_WEBHOOK is not set" in res.stdout
    assert "alerts by email: ${SMTP_URL} to director@example.com\n" in res.stdout  # set: no warning


def test_alert_params_are_checked(tmp_path):
    from funnel_lab.config import load_params
    from funnel_lab.errors import ParamsError

    (tmp_path / "p.yaml").write_text("run_name: x\nmonitoring: {history: hist}\n"
                                     "alerts: {email: {smtp_url: 'smtp://h', to: [not-an-address]}}\n")
    with pytest.raises(ParamsError, match=r"alerts\.email\.to.*not an e-mail address: 'not-an-address'"):
        load_params([tmp_path / "p.yaml"])
    (tmp_path / "p.yaml").write_text("run_name: x\nmonitoring: {history: hist}\nalerts: {webhok: {url: u}}\n")
    with pytest.raises(ParamsError, match="webhook"):
        load_params([tmp_path / "p.yaml"])
    (tmp_path / "p.yaml").write_text("run_name: x\nmonitoring: {history: hist}\n")
    assert load_params([tmp_path / "p.yaml"]).monitoring.history == tmp_path / "hist"


def test_the_airflow_example_runs_funnel_lab_and_is_not_part_of_the_package():
    import ast

    from conftest import ROOT

    source = (ROOT / "examples" / "airflow_dag.py").read_text()
    tree = ast.parse(source)
    commands = [k.value for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords
                if k.arg == "bash_command"]
    assert len(commands) == 2 and all(isinstance(c, ast.JoinedStr) for c in commands)
    assert 'FUNNEL_LAB = f"{PROJECT}/.venv/bin/funnel-lab"' in source
    assert "{FUNNEL_LAB} check params/q3.yaml" in source and "{FUNNEL_LAB} run params/q3.yaml" in source
    # nothing in the package imports the example or Airflow
    imports = [n for f in (ROOT / "src").rglob("*.py") for n in ast.walk(ast.parse(f.read_text()))
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in imports for a in n.names} | {n.module or "" for n in imports if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.split(".")[0] in ("airflow", "examples", "airflow_dag")}
