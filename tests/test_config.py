from pathlib import Path

import pytest

from funnel_lab.config import ParamsError, deep_merge, load_params, parse_override


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = deep_merge(base, {"a": {"y": [3], "z": 2}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


def test_files_merge_left_to_right_then_set_overrides(tmp_path):
    a = write(tmp_path / "a.yaml", "run_name: a\nlanguage: en\nab_test: {alpha: 0.05, mde: 0.02}\n")
    b = write(tmp_path / "b.yaml", "title: Q3\nab_test: {alpha: 0.01}\n")
    p = load_params([a, b], ["language=zh", "ab_test.mde=0.03", "forecast.simulations=500"])
    assert (p.run_name, p.title, p.language) == ("a", "Q3", "zh")
    assert (p.ab_test.alpha, p.ab_test.mde, p.forecast.simulations) == (0.01, 0.03, 500)


def test_relative_paths_resolve_against_the_file_that_names_them(tmp_path, monkeypatch):
    write(tmp_path / "params" / "base.yaml", "data:\n  opportunities: {path: ../data/opps.csv}\n")
    write(tmp_path / "other" / "more.yaml", "data:\n  experiment: {path: exp.csv}\n")
    monkeypatch.chdir(tmp_path / "other")
    p = load_params([tmp_path / "params" / "base.yaml", tmp_path / "other" / "more.yaml"],
                    ["data.stage_history.path=hist.csv"])
    assert p.data.opportunities.path == (tmp_path / "data" / "opps.csv").resolve()
    assert p.data.experiment.path == (tmp_path / "other" / "exp.csv").resolve()
    assert p.data.stage_history.path == (tmp_path / "other" / "hist.csv").resolve()


def test_run_name_defaults_to_the_first_file_stem(tmp_path):
    assert load_params([write(tmp_path / "weekly.yaml", "language: en\n")]).run_name == "weekly"


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    f = write(tmp_path / "p.yaml", "run_name: x\nstages:\n  order: [a, b]\n  metod: rules\n")
    with pytest.raises(ParamsError) as e:
        load_params([f])
    msg = str(e.value)
    assert str(f) in msg and "stages.metod" in msg and "did you mean 'method'" in msg


def test_unknown_key_from_set_names_the_override(tmp_path):
    f = write(tmp_path / "p.yaml", "run_name: x\n")
    with pytest.raises(ParamsError, match=r"--set nosuchkey=1: unknown key 'nosuchkey'"):
        load_params([f], ["nosuchkey=1"])


def test_unknown_table_key_suggests_the_right_one(tmp_path):
    f = write(tmp_path / "p.yaml", "data:\n  opportunities: {path: x.csv, colums: {status: S}}\n")
    with pytest.raises(ParamsError, match=r"data\.opportunities\.colums'; did you mean 'columns'"):
        load_params([f])


def test_type_errors_name_key_and_value(tmp_path):
    f = write(tmp_path / "p.yaml", "language: fr\nforecast: {simulations: many}\n")
    with pytest.raises(ParamsError) as e:
        load_params([f])
    msg = str(e.value)
    assert "'language'" in msg and "'fr'" in msg
    assert "'forecast.simulations'" in msg and "'many'" in msg
    assert msg.count(str(f)) == 2  # every failure at once, each naming the file


def test_table_needs_a_path_or_sql(tmp_path):
    f = write(tmp_path / "p.yaml", "data:\n  opportunities: {preset: salesforce}\n")
    with pytest.raises(ParamsError, match="exactly one of `path`"):
        load_params([f])


def test_booleans_are_read_by_the_schema(tmp_path):
    f = write(tmp_path / "p.yaml", "title: yes\n")
    assert load_params([f], ["cleaning.dedupe.fuzzy.columns=[account]"]).title == "yes"


def test_dates_stay_strings_until_the_schema_reads_them(tmp_path):
    f = write(tmp_path / "p.yaml", "title: 2024-01-01\nfeatures: {as_of: 2024-03-31}\n")
    p = load_params([f])
    assert p.title == "2024-01-01"
    assert p.features.as_of.isoformat() == "2024-03-31"


def test_value_maps_read_yaml_booleans_as_the_text_in_the_export(tmp_path):
    f = write(tmp_path / "p.yaml", "data:\n  opportunities:\n    path: x.csv\n    values: {status: {Yes: won, 1: won, No: lost}}\n")
    assert load_params([f]).data.opportunities.values == {"status": {"Yes": "won", "1": "won", "No": "lost"}}


@pytest.mark.parametrize("text, expected", [("a.b=1", (["a", "b"], 1)), ("x=true", (["x"], "true")),
                                            ("l=[a, b]", (["l"], ["a", "b"])), ("d=2024-01-01", (["d"], "2024-01-01"))])
def test_parse_override_reads_values_as_yaml(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("bad", ["novalue", "=1", "a..b=1"])
def test_parse_override_rejects_malformed(bad):
    with pytest.raises(ParamsError, match="expected dotted.key=value"):
        parse_override(bad)


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml: params file not found"):
        load_params([tmp_path / "nope.yaml"])


def test_invalid_yaml_gives_line_and_column(tmp_path):
    f = write(tmp_path / "p.yaml", "run_name: x\nstages: [unclosed\n")
    with pytest.raises(ParamsError, match=r"p\.yaml: line \d+, column \d+: not valid YAML"):
        load_params([f])


def test_demo_params_validate():
    root = Path(__file__).resolve().parents[1]
    p = load_params([root / "params" / "demo.yaml"])
    assert p.run_name == "demo" and p.stages.order == ["potential", "intent", "evaluation", "decision"]
    zh = load_params([root / "params" / "demo.yaml", root / "params" / "demo_zh.yaml"])
    assert (zh.run_name, zh.language) == ("demo_zh", "zh")
    assert zh.data.opportunities.path == p.data.opportunities.path


def test_stage_model_in_its_own_file_with_paths_relative_to_it(tmp_path):
    write(tmp_path / "models" / "v0.yaml", "stages:\n  order: [a]\n  rules: {a: 'True'}\n")
    write(tmp_path / "models" / "v1.yaml", "order: [a, b]\nmethod: rules\nrules: {a: 'True', b: 'x > 1'}\n"
                                           "compare_with: v0.yaml\n")
    p = load_params([write(tmp_path / "params" / "p.yaml", "stages: ../models/v1.yaml\n")])
    assert p.stages.order == ["a", "b"] and p.stages.rules["b"] == "x > 1"
    assert p.stages.compare_with == (tmp_path / "models" / "v0.yaml").resolve()


def test_an_activity_log_without_opportunities_is_refused(tmp_path):
    p = write(tmp_path / "p.yaml", "data:\n  activities: {path: events.csv}\n  experiment: {path: exp.csv}\n")
    with pytest.raises(ParamsError, match=r"key 'data': `activities` needs `opportunities`"):
        load_params([p])


def test_a_window_given_twice_is_refused(tmp_path):
    p = write(tmp_path / "p.yaml", "features: {windows: [30, 90, 30]}\n")
    with pytest.raises(ParamsError, match=r"key 'features\.windows': each window \(days\) once, got \[30, 90, 30\]"):
        load_params([p])
