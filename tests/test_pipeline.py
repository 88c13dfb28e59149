"""One pipeline behind every entry point: the CLI, the notebooks' session, the runner and Python see the same tables
and stages; a run reads and cleans each table once; the analyst's API holds the data and shows it in JupyterLab."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

import funnel_lab as fl
from conftest import FUNNEL_LAB, ROOT, cli
from funnel_lab.config import resolved_dict
from funnel_lab.pipeline import RUN_CACHE, TRACE_VARIABLE, Pipeline

PACKAGE = ROOT / "src" / "funnel_lab"


def csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def demo(demo_project) -> Pipeline:
    return fl.load(demo_project / "params" / "demo.yaml")


# ----------------------------------------------------------------------------- every entry point, the same data


def test_the_run_writes_what_the_pipeline_holds(demo_run, demo):
    """``p.opportunities``, ``p.stages`` and ``p.stage_metrics`` are the run's CSV files, byte for byte."""
    data = demo_run / "data"
    for name, frame in (("opportunities_clean.csv", demo.opportunities), ("stages.csv", demo.stages),
                        ("stage_metrics.csv", demo.stage_metrics)):
        assert (data / name).read_text(encoding="utf-8") == csv_text(frame), name
    assert (data / "cleaning_audit.csv").read_text(encoding="utf-8") == csv_text(
        demo.data_quality().outputs["cleaning_audit.csv"])


def test_cli_session_and_runner_see_the_same_stages(demo_project, demo_run, demo):
    # the CLI: its table is the pipeline's, built from the same params
    res = cli("stages", "params/demo.yaml", cwd=demo_project)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip("\n") == demo.stage_design().text()
    # a notebook's session, opened on the params the runner resolved for its notebooks
    run = fl.open_run(demo_run / "params.resolved.yaml", out_dir=demo_project / "scratch", notebook="10_stage_design")
    pd.testing.assert_frame_equal(run.pipeline.stages, demo.stages)
    pd.testing.assert_frame_equal(run.pipeline.opportunities, demo.opportunities)
    assert run.pipeline.as_of == demo.as_of
    # the runner's plan
    plan = fl.runner.plan_run([demo_project / "params" / "demo.yaml"], only=["10_stage_design"])
    pd.testing.assert_frame_equal(plan.pipeline.stage_metrics, demo.stage_metrics)


def test_stages_command_builds_behaviour_features(demo_project):
    """Stage rules on behaviour features (visit_30d, reply_90d, ...) are iterated on in the terminal, too."""
    res = cli("stages", "params/demo.yaml", "params/examples/demo_behaviour.yaml", cwd=demo_project)
    assert res.returncode == 0, res.stderr
    p = fl.load(demo_project / "params" / "demo.yaml", demo_project / "params" / "examples" / "demo_behaviour.yaml")
    assert res.stdout.startswith("stage model 'behaviour_v1' (rules): 4 stages")
    assert res.stdout.rstrip("\n") == p.stage_design().text()
    # the intent rule really reads the features: recount it from the feature columns
    o = p.opportunities
    intent_or_higher = (p.stages["stage_rank"] >= 2).sum()
    assert intent_or_higher >= ((o["visit_30d"] >= 3) | (o["reply_90d"] >= 1)).sum() > 0
    assert "compared with 'b2b_v0'" in res.stdout


def test_a_run_reads_and_cleans_each_table_once(demo_project, demo_run):
    """The runner's plan computes every expensive step once; the seven notebook kernels read them from the run's
    cache (the demo run is traced: conftest sets FUNNEL_LAB_TRACE)."""
    lines = [json.loads(x) for x in (demo_project / "demo_run_trace.jsonl").read_text().splitlines()]
    computed = Counter((e["step"], e["table"]) for e in lines if e["source"] == "computed")
    for table in ("opportunities", "stage_history", "experiment"):
        assert computed[("table", table)] == 1 and computed[("cleaned", table)] == 1, table
    assert computed[("activities", "")] == 1 and computed[("validation", "")] == 1
    kernels = {e["pid"] for e in lines if e["source"] == "run cache"}
    planner = {e["pid"] for e in lines if e["step"] == "table" and e["source"] == "computed"}
    assert len(planner) == 1 and len(kernels) == 7 and not planner & kernels
    assert not (demo_run / RUN_CACHE).exists()


def test_a_notebook_takes_only_the_steps_made_from_the_same_params(demo_project, tmp_path, monkeypatch):
    """The run cache is keyed by what a step is computed from: a planted value is read back for the same params,
    ignored for others (then computed afresh)."""
    plan = fl.runner.plan_run([demo_project / "params" / "demo.yaml"])
    log = plan.pipeline.activity_log
    planted = log.features.copy()
    planted.loc[0, "visit_total"] = 999_999
    opportunities = plan.pipeline.opportunities
    first = planted.loc[0, "opportunity_id"]
    planted_opportunities = opportunities.assign(
        visit_total=opportunities["visit_total"].mask(opportunities["opportunity_id"] == first, 999_999))
    for key, value in plan.pipeline._store.values.items():
        if value is log:
            plan.pipeline._store.values[key] = type(log)(**{**log.__dict__, "features": planted})
        elif value is opportunities:
            plan.pipeline._store.values[key] = planted_opportunities
    run_dir = tmp_path / plan.params.run_name
    # tables, cleaned tables, validation, activities, history, analysis date, opportunities with their features
    assert plan.pipeline.save_cache(run_dir / RUN_CACHE) == 11
    resolved = resolved_dict(plan.params)
    (tmp_path / "same.yaml").write_text(yaml.safe_dump(resolved, allow_unicode=True))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**resolved, "features": {"windows": [30, 60]}},
                                                        allow_unicode=True))
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_VARIABLE, str(trace))
    same = fl.open_run(tmp_path / "same.yaml", out_dir=tmp_path, notebook="00_data_quality").pipeline
    assert same.activity_log.features.loc[0, "visit_total"] == 999_999
    assert same.opportunities.set_index("opportunity_id").loc[first, "visit_total"] == 999_999
    other = fl.open_run(tmp_path / "other.yaml", out_dir=tmp_path, notebook="00_data_quality").pipeline
    assert other.activity_log.features.loc[0, "visit_total"] == log.features.loc[0, "visit_total"] != 999_999
    assert "visit_60d" in other.activity_log.features.columns
    assert other.opportunities.set_index("opportunity_id").loc[first, "visit_total"] != 999_999
    sources = Counter((e["step"], e["source"]) for e in map(json.loads, trace.read_text().splitlines()))
    # the same params read every step from the cache; the other params share the cleaned tables and the history
    # (same data and cleaning), not what the features change: those they computed (and, as always, the checksums)
    computed = {step for step, source in sources if source == "computed"}
    assert computed == {"checksums", "activities", "as_of", "opportunities"}
    assert sources[("opportunities", "run cache")] == sources[("activities", "run cache")] == 1
    assert sources[("cleaned", "run cache")] >= 1 and sources[("history", "run cache")] == 1


# ----------------------------------------------------------------------------------------------- the Python API


def test_load_reads_nothing_until_asked(demo_project, monkeypatch, tmp_path):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_VARIABLE, str(trace))
    p = fl.load(demo_project / "params" / "demo.yaml", set={"language": "zh"})
    assert p.params.language == "zh" and "opportunities" in p._repr_html_()
    assert not trace.exists()  # nothing read, nothing cleaned
    assert len(p.stages) == len(p.opportunities) > 0 and trace.exists()


def test_with_params_reuses_the_cleaned_tables(demo, monkeypatch, tmp_path):
    before = demo.stage_metrics
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_VARIABLE, str(trace))
    q = demo.with_params({"stages.rules.intent": "meetings >= 2"})
    assert q.params.stages.rules["intent"] == "meetings >= 2" and demo.params.stages.rules["intent"] != "meetings >= 2"
    assert q.cleaned_table("opportunities") is demo.cleaned_table("opportunities")
    assert q.opportunities is demo.opportunities and q.activity_log is demo.activity_log
    # fewer deals meet the stricter intent rule; every other stage's rule is unchanged
    m = q.stage_metrics.set_index("stage")
    o = q.opportunities
    assert m.loc["decision", "n"] == before.set_index("stage").loc["decision", "n"]
    assert m.loc[["intent", "evaluation", "decision"], "n"].sum() == int(
        ((o["meetings"] >= 2) | q.stages["stage_rank"].ge(3)).sum())
    steps = [json.loads(x) for x in trace.read_text().splitlines()] if trace.exists() else []
    assert not [e for e in steps if e["source"] == "computed" and e["step"] in ("table", "cleaned", "activities")]
    pd.testing.assert_frame_equal(demo.stage_metrics, before)  # the first pipeline is untouched


def test_with_params_refuses_bad_values_naming_the_key(demo):
    with pytest.raises(fl.ParamsError, match=r"with_params stages\.alpha: key 'stages\.alpha'"):
        demo.with_params({"stages.alpha": 2})
    with pytest.raises(fl.ParamsError, match=r"unknown key 'stages\.rulez'; did you mean 'rules'"):
        demo.with_params({"stages.rulez": {"intent": "True"}})
    with pytest.raises(fl.ParamsError, match=r"stages\.rules\.intent: .*unknown column 'meetngs'.*did you mean"):
        demo.with_params({"stages.rules.intent": "meetngs >= 1"}).stages  # noqa: B018


def test_every_analysis_is_a_method_with_a_summary_outputs_and_a_table_in_jupyterlab(demo):
    from IPython.core.formatters import HTMLFormatter

    html = HTMLFormatter()  # what JupyterLab calls to show a cell's value
    results = {"data_quality": demo.data_quality(), "stage_design": demo.stage_design(), "funnel": demo.funnel(),
               "regression": demo.regression(), "ab_test": demo.ab_test(), "targeting": demo.targeting(),
               "forecast": demo.forecast(), "monitoring": demo.monitoring()}
    files = set()
    for name, r in results.items():
        assert isinstance(r.summary, pd.DataFrame) and len(r.summary), name
        shown = html(r)
        assert shown is not None and "<table" in shown and r.summary.columns[0] in shown, name
        files |= set(r.outputs)
    # every contract file the run writes comes from one of them
    assert {"opportunities_clean.csv", "cleaning_audit.csv", "quarantine.csv", "stages.csv", "stage_metrics.csv",
            "funnel.csv", "regression_coefficients.csv", "ab_test.json", "targets.csv", "targeting_metrics.json",
            "forecast.csv"} <= files
    assert demo.funnel() is results["funnel"]  # computed once per pipeline
    ab = results["ab_test"].summary  # one treatment in the demo
    assert ab["decision"].tolist() == [results["ab_test"].decision["decision"]]


def test_library_errors_are_one_type(demo, tmp_path):
    bad_formula = demo.with_params({"regression.formula": "won ~ __import__('os')"})
    with pytest.raises(fl.ParamsError, match="is not allowed"):
        bad_formula.regression()
    with pytest.raises(fl.ParamsError, match="unknown preset 'salesforc'; valid presets"):
        demo.with_params({"data.opportunities.preset": "salesforc"})
    with pytest.raises(fl.ParamsError, match="ab_test.control: no variant .contrl. in the experiment table; expected one of: script_A, script_B"):
        fl.runner.registry.REGISTRY["40_ab_test"].check(demo.with_params({"ab_test.control": "contrl"}))
    with pytest.raises(fl.ParamsError, match="targeting.outcome: unknown column 'nosuch'"):
        demo.with_params({"targeting.outcome": "nosuch"}).targeting()
    with pytest.raises(fl.ParamsError, match="data.nothing: not in the params"):
        demo.table("nothing")


def test_the_package_attributes_an_analyst_reaches_for(demo):
    assert callable(fl.abtest.binary_comparison) and callable(fl.targeting.run_targeting)
    assert callable(fl.plots.plot_funnel) and callable(fl.stages.assign_stages)
    run = fl.open_run(ROOT / "params" / "demo.yaml")  # no notebook name needed
    assert run.notebook is None and run.pipeline.params.run_name == "demo"


def test_loading_the_package_and_the_cli_imports_no_ipython():
    code = ("import sys, funnel_lab, funnel_lab.cli, funnel_lab.runner.execute, funnel_lab.runner.run; "
            "p = funnel_lab.load('params/demo.yaml'); p.stage_metrics; "
            "print(sorted(m for m in ('IPython', 'matplotlib.pyplot', 'funnel_lab.reports') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------- the layout


def _imports(path: Path) -> set[str]:
    """The funnel_lab modules a source file imports, as dotted names."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(x for x in (base, node.module or "") if x)
            out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("funnel_lab")}


@pytest.mark.parametrize("layer, forbidden", [
    ("data", ("funnel_lab.analysis", "funnel_lab.reports", "funnel_lab.runner")),
    ("analysis", ("funnel_lab.reports", "funnel_lab.runner")),
    ("history", ("funnel_lab.reports", "funnel_lab.runner")),
    ("runner", ("funnel_lab.reports",)),
])
def test_the_data_flows_one_way(layer, forbidden):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = sorted(m for m in _imports(path) if m.startswith(forbidden))
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_readme_layout_matches_the_tree():
    """Every module and folder of src/funnel_lab is in the README's layout section, and nothing else is (a folder's
    ``__init__.py`` goes without saying)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.split("## Layout", 1)[1].split("```", 2)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("src/funnel_lab/"))
    listed, stack = set(), []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break  # the next top-level folder of the project
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= 12:
            continue  # a description running on
        depth = indent // 2 - 1
        stack = stack[:depth] + [line.split()[0].rstrip("/")]
        listed.add("/".join(stack))
    actual = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
              if "__pycache__" not in p.parts and (p.name != "__init__.py" or p.parent == PACKAGE) and (p.suffix == ".py" or p.is_dir())
              and not p.relative_to(PACKAGE).as_posix().startswith(("runner/templates/", "locale/"))}
    assert listed == actual
