"""The A/B report end to end: a broken split gets the red banner and no verdict; a misspelt control stops the run."""

import json

import numpy as np
import pandas as pd

from conftest import cli


def _project(tmp_path, *, units_a: int, units_b: int, control: str = "A"):
    rng = np.random.default_rng(5)
    n = units_a + units_b
    frame = pd.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "variant": ["A"] * units_a + ["B"] * units_b,
                          "converted": (rng.random(n) < np.r_[np.full(units_a, 0.10), np.full(units_b, 0.20)])
                          .astype(int)})
    frame.to_csv(tmp_path / "exp.csv", index=False)
    (tmp_path / "p.yaml").write_text(
        "run_name: ab\ndata:\n  experiment: {path: exp.csv}\n"
        f"ab_test: {{outcome: converted, control: {control}, mde: 0.05}}\n", encoding="utf-8")
    return tmp_path


def test_sample_ratio_mismatch_withholds_the_verdict(tmp_path):
    project = _project(tmp_path, units_a=1200, units_b=800)  # planned 50/50: chi-square p far below 0.001
    res = cli("run", "p.yaml", "--only", "40_ab_test", "--out", "out", cwd=project)
    assert res.returncode == 0, res.stderr
    summary = json.loads((project / "out" / "ab" / "data" / "ab_test.json").read_text(encoding="utf-8"))
    assert summary["srm_failed"] and summary["srm_p_value"] < 1e-10
    # B truly converts twice as often, yet a broken split gives no verdict
    assert summary["decision"] == "inconclusive" and summary["reasons"][0]["code"] == "srm_failed"
    page = (project / "out" / "ab" / "40_ab_test.html").read_text(encoding="utf-8")
    banner = page.index("class=\"fl-banner fl-banner-error\"")
    assert "Sample-ratio mismatch" in page[banner:banner + 300] and banner < page.index("No verdict on B yet")


def test_a_sound_experiment_with_a_clear_lift_ships(tmp_path):
    project = _project(tmp_path, units_a=1500, units_b=1500)
    res = cli("run", "p.yaml", "--only", "40_ab_test", "--out", "out", cwd=project)
    assert res.returncode == 0, res.stderr
    summary = json.loads((project / "out" / "ab" / "data" / "ab_test.json").read_text(encoding="utf-8"))
    assert summary["decision"] == "ship" and not summary["srm_failed"]
    page = (project / "out" / "ab" / "40_ab_test.html").read_text(encoding="utf-8")
    assert "Ship B." in page and "class=\"fl-banner fl-banner-error\"" not in page


def test_misspelt_control_exits_2_naming_the_key(tmp_path):
    project = _project(tmp_path, units_a=10, units_b=10, control="a")
    res = cli("check", "p.yaml", cwd=project)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("funnel-lab: error: ab_test.control: no variant 'a' in the experiment table; "
                                  "expected one of: A, B")


def _strict_json(path):
    """The file parsed as strict JSON: NaN or Infinity (not JSON) fail the test."""
    def refuse(token):
        raise AssertionError(f"{path.name} holds {token}, which is not JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_value_outcome_file_and_page_agree(tmp_path):
    rng = np.random.default_rng(9)
    n = 1000
    variant = np.repeat(["A", "B"], n // 2)
    frame = pd.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "variant": variant,
                          "converted": (rng.random(n) < 0.1).astype(int),        # no difference in conversion
                          "value": rng.normal(100, 10, n) + np.where(variant == "B", 5.0, 0.0)})  # B spends more
    frame.to_csv(tmp_path / "exp.csv", index=False)
    (tmp_path / "p.yaml").write_text("run_name: ab\ndata:\n  experiment: {path: exp.csv}\n"
                                     "ab_test: {outcome: value, control: A}\n", encoding="utf-8")
    res = cli("run", "p.yaml", "--only", "40_ab_test", "--out", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    summary = _strict_json(tmp_path / "out" / "ab" / "data" / "ab_test.json")
    # the page decides on value (Welch: +5 on a 0.63 standard error); the file carries that decision, not the
    # inconclusive conversion test's
    assert summary["decision"] == "ship" and summary["reasons"][0]["code"] == "significant_gain"
    assert "Ship B." in (tmp_path / "out" / "ab" / "40_ab_test.html").read_text(encoding="utf-8")
    # without conversions the file is the value-only form, still strict JSON (CUPED's missing numbers are null)
    frame.drop(columns="converted").to_csv(tmp_path / "exp.csv", index=False)
    res = cli("run", "p.yaml", "--only", "40_ab_test", "--out", "out2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    value_only = _strict_json(tmp_path / "out2" / "ab" / "data" / "ab_test.json")
    assert value_only["decisions"]["B"]["decision"] == "ship" and value_only["srm_failed"] is False
    assert value_only["continuous"][0]["cuped_diff"] is None
