"""The regression report end to end: drivers in words, the linear model's ground truth, bad formulas refused."""

import math

import numpy as np
import pandas as pd
import pytest

from conftest import cli


def test_demo_deal_size_model_recovers_the_generators_segment_medians(demo_project):
    import funnel_lab as fl
    from funnel_lab.reports import regression as page

    r = fl.load(demo_project / "params" / "demo.yaml").regression()
    c = r.linear.coefficients.set_index("term")
    # the generator draws amounts log-normally around 8,000 (SMB), 30,000 (Mid-Market), 120,000 (Enterprise)
    for term, true in (("C(segment)[T.Mid-Market]", math.log(30_000 / 120_000)),
                       ("C(segment)[T.SMB]", math.log(8_000 / 120_000))):
        assert c.loc[term, "ci_low"] < true < c.loc[term, "ci_high"]
    assert c.loc["meetings", "p_value"] > 0.001  # amounts do not depend on meetings in the generator
    sentences = page.summary_sentences(r, "en")
    assert any("each +1 in meetings multiplies the odds of winning by" in s for s in sentences)


def _project(tmp_path, formula: str):
    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=n)
    won = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    pd.DataFrame({"id": range(n), "outcome": np.where(won == 1, "won", "lost"), "x": x,
                  "copy": won, "owner": rng.choice(list("abcdefghij"), n)}).to_csv(tmp_path / "o.csv", index=False)
    (tmp_path / "p.yaml").write_text(
        "run_name: rg\ndata:\n  opportunities:\n    path: o.csv\n    columns: {opportunity_id: id, status: outcome}\n"
        f"regression: {{outcome: won, formula: \"{formula}\"}}\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("formula, message", [
    ("won ~ x + __import__('os')", "regression.formula: "),
    ("won ~ xx", "regression.formula: unknown column 'xx'; did you mean 'x'?"),
])
def test_bad_formula_exits_2_before_any_notebook(tmp_path, formula, message):
    res = cli("check", "p.yaml", cwd=_project(tmp_path, formula))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"funnel-lab: error: {message}") and len(res.stderr.strip().splitlines()) == 1


def test_separation_is_explained_in_the_report_not_a_crash(tmp_path):
    project = _project(tmp_path, "won ~ x + copy")  # `copy` is the outcome itself
    res = cli("run", "p.yaml", "--only", "30_regression", "--out", "out", cwd=project)
    assert res.returncode == 0, res.stderr
    page = (project / "out" / "rg" / "30_regression.html").read_text(encoding="utf-8")
    assert "Perfect separation:</strong> copy predict the outcome exactly" in page
    coef = pd.read_csv(project / "out" / "rg" / "data" / "regression_coefficients.csv").set_index("term")
    assert list(coef.columns[:6]) == ["coef", "std_err", "p_value", "ci_low", "ci_high", "odds_ratio"]
    assert coef.loc["copy", "note"] == "perfect_separation" and coef.loc["x", "odds_ratio"] > 1
