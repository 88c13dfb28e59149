"""The console script as schedulers use it: exit codes and one-line messages that name the problem."""

import json
import shutil
from pathlib import Path

from conftest import ROOT, cli

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def test_unknown_key_exits_2_naming_it(demo_project):
    res = cli("run", "params/demo.yaml", "--set", "nosuchkey=1", cwd=demo_project)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "funnel-lab: error: --set nosuchkey=1: unknown key 'nosuchkey'; expected one of: run_name, title, "
        "language, data, cleaning, stages, features, regression, ab_test, targeting, forecast, monitoring, alerts, "
        "engine"]
    assert "Traceback" not in res.stderr and not (demo_project / "reports").exists()


def test_missing_input_file_exits_2_naming_the_file(demo_project):
    res = cli("check", "params/demo.yaml", "--set", "data.experiment.path=nowhere/exp.csv", cwd=demo_project)
    assert res.returncode == 2
    assert res.stderr.strip() == f"funnel-lab: error: {demo_project / 'nowhere' / 'exp.csv'}: file not found"


def test_unmapped_column_exits_2_with_did_you_mean(demo_project):
    res = cli("check", "params/demo.yaml", "--set", "data.opportunities.columns.owner=Ownr", cwd=demo_project)
    assert res.returncode == 2
    assert "data.opportunities.columns.owner: no column 'Ownr'" in res.stderr
    assert "did you mean 'Owner'?" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unknown_only_name_exits_2(demo_project):
    res = cli("run", "params/demo.yaml", "--only", "00_data_qualty", cwd=demo_project)
    assert res.returncode == 2 and "did you mean '00_data_quality'" in res.stderr


def test_check_lists_tables_and_plan(demo_project):
    res = cli("check", "params/demo.yaml", cwd=demo_project)
    assert res.returncode == 0, res.stderr
    assert "run_name=demo" in res.stdout and "will run  00_data_quality" in res.stdout
    assert "stage_history" in res.stdout


def test_failing_notebook_exits_1_and_still_writes_its_html(demo_project, tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for name in ("01_works", "02_breaks"):
        shutil.copy(FIXTURES / f"{name}.ipynb", nbdir)
    res = cli("run", "params/demo.yaml", "--notebooks", str(nbdir), "--out", str(tmp_path / "out"), "--jobs", "1",
              cwd=demo_project)
    assert res.returncode == 1
    assert res.stdout.strip() == str(tmp_path / "out" / "demo" / "index.html")
    assert "02_breaks" in res.stderr and "ValueError: planted failure" in res.stderr
    page = (tmp_path / "out" / "demo" / "02_breaks.html").read_text(encoding="utf-8")
    assert "planted failure in 02_breaks" in page
    assert json.loads((tmp_path / "out" / "demo" / "manifest.json").read_text())["status"] == "failed"


def test_demo_data_command_writes_the_files(tmp_path):
    res = cli("demo-data", str(tmp_path / "d"), "--rows", "300", "--seed", "3", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert {"opportunities.csv", "stage_history.csv", "experiment.csv", "ground_truth.json"} <= names
    assert json.loads((tmp_path / "d" / "ground_truth.json").read_text(encoding="utf-8"))["rows"] == 300


def test_stages_prints_metrics_and_verdicts(demo_project):
    """What the analyst reads in the terminal against a recount: the demo's rules evaluated in plain pandas on the
    clean opportunities give each stage's deals, closed deals and wins, the AUC (scikit-learn), the count of rules
    that do not nest, and whether the win rate rises."""
    import re

    import pandas as pd
    from sklearn.metrics import roc_auc_score

    import funnel_lab as fl

    res = cli("stages", "params/demo.yaml", cwd=demo_project)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "stage model 'b2b_v1' (rules): 4 stages" in out

    opp = fl.load(demo_project / "params" / "demo.yaml").opportunities
    flag = {c: opp[c].fillna(False).astype(bool) for c in ("demo", "trial", "quote_sent", "budget_confirmed")}
    hits = {"potential": pd.Series(True, index=opp.index),
            "intent": (opp["meetings"].fillna(0) >= 1) | (opp["emails_replied"].fillna(0) >= 2),
            "evaluation": flag["demo"] | flag["trial"], "decision": flag["quote_sent"] & flag["budget_confirmed"]}
    order = list(hits)
    rank = pd.Series(0, index=opp.index)
    for i, s in enumerate(order, 1):
        rank[hits[s]] = i
    won = pd.to_numeric(opp["won"])
    printed = {m["stage"]: m for m in re.finditer(
        r"^\s*(?P<stage>\w+)\s+(?P<rank>\d)\s+(?P<n>\d+)\s+(?P<closed>\d+)\s+(?P<won>\d+)", out, re.M)}
    rates = []
    for i, s in enumerate(order, 1):
        at = rank == i
        assert [int(printed[s][k]) for k in ("n", "closed", "won")] == [
            int(at.sum()), int(won[at].notna().sum()), int(won[at].sum())], s
        rates.append(won[at].mean())
    closed = won.notna()
    auc = roc_auc_score(won[closed], rank[closed])
    assert f"AUC {auc:.2f}" in out
    rises = all(b > a for a, b in zip(rates, rates[1:]))
    assert re.search(r"^Win rate rises with stage\s+(\w+)", out, re.M)[1] == ("OK" if rises else "FAIL")
    skipped = sum(int((hits[hi] & ~hits[lo]).sum()) for i, hi in enumerate(order) for lo in order[1:i])
    line = re.search(r"^Rules nest\s+(\w+)\s+(.*)$", out, re.M)
    assert line[1] == ("CHECK" if skipped else "OK")
    assert line[2].startswith(f"{skipped:,} times")
    assert re.search(r"compared with 'b2b_v0': AUC [\d.]+ -> (\d\.\d+)", out)[1] == f"{auc:.3f}"


def test_stages_refuses_an_injected_rule_naming_the_stage(demo_project):
    res = cli("stages", "params/demo.yaml", "--set", "stages.rules.intent=__import__('os').system('touch PWNED')",
              cwd=demo_project)
    assert res.returncode == 2
    assert "stages.rules.intent" in res.stderr and "__import__" in res.stderr
    assert not (demo_project / "PWNED").exists()


def test_stages_unknown_column_did_you_mean(demo_project):
    res = cli("stages", "params/demo.yaml", "--set", "stages.rules.intent=meetngs >= 1", cwd=demo_project)
    assert res.returncode == 2 and "did you mean 'meetings'" in res.stderr
