"""The runner on purpose-built notebooks: one that works, one that breaks, one without a parameters cell."""

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from funnel_lab.runner import run_reports
from funnel_lab.runner.render import render_html, stakeholder_view
from htmlcheck import code_classes, offline_problems, read_page

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


@pytest.fixture
def project(tmp_path, demo_project):
    """A params file with one small table, and a notebooks folder holding the three fixture notebooks."""
    (tmp_path / "notebooks").mkdir()
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, tmp_path / "notebooks" / nb.name)
    (tmp_path / "exp.csv").write_text("unit_id,variant,converted\nu1,A,1\nu2,B,0\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text("run_name: fx\nlanguage: zh\ndata:\n  experiment: {path: exp.csv}\n",
                                     encoding="utf-8")
    return tmp_path


def run(project, **kw):
    return run_reports([project / "p.yaml"], out=project / "out", notebooks_dir=project / "notebooks", **kw)


def test_failing_notebook_gives_exit_1_an_html_with_the_error_and_the_others_still_run(project):
    code, run_dir = run(project, jobs=2)
    assert code == 1
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    status = {n["name"]: n for n in manifest["notebooks"]}
    assert status["01_works"]["status"] == "ok" and status["03_no_parameters"]["status"] == "ok"
    assert status["02_breaks"]["status"] == "failed"
    assert status["02_breaks"]["error"] == "ValueError: planted failure in 02_breaks"
    assert manifest["status"] == "failed" and manifest["finished_at"]
    page = (run_dir / "02_breaks.html").read_text(encoding="utf-8")
    # the banner (with the error) opens the page, before the failing step's own traceback
    assert page.index('id="fl-error"') < page.index('id="papermill-error-cell"') < page.index("ansi-red-fg\">ValueError")
    assert "本报告未能完成" in page  # zh banner: the run's language
    assert "never reached" not in page
    executed = nbformat.read(run_dir / "02_breaks.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert (run_dir / "data" / "fixture.csv").read_text(encoding="utf-8") == "x,lang\n1,zh\n2,zh\n3,zh\n"
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    for name in ("01_works", "02_breaks", "03_no_parameters"):
        assert f'href="{name}.html"' in index
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob(".*executing*"))


def test_only_runs_the_named_notebook_and_lists_the_rest_as_not_selected(project):
    code, run_dir = run(project, only=["01_works"])
    assert code == 0
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status["01_works"] == "ok" and status["02_breaks"] == "skipped"
    assert not (run_dir / "02_breaks.html").exists()


def test_manifest_records_inputs_params_versions(project):
    code, run_dir = run(project, only=["01_works", "03_no_parameters"])
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    raw = (project / "exp.csv").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    assert m["inputs"] == [{"table": "experiment", "path": str(project / "exp.csv"), "sha256": digest,
                            "sha256_after": digest, "rows": 2, "rows_clean": 2, "ids_generated": False}]
    assert m["params"]["language"] == "zh" and m["run_name"] == "fx" and m["status"] == "ok"
    assert {"python", "pandas", "papermill", "funnel_lab"} <= set(m["versions"])
    assert {n["name"]: n["status"] for n in m["notebooks"]}["40_ab_test"] == "skipped"
    assert m["started_at"] <= m["finished_at"]


def test_html_has_no_code_no_analyst_notes_and_embedded_images(project):
    code, run_dir = run(project, only=["01_works"])
    page = (run_dir / "01_works.html").read_text(encoding="utf-8")
    assert "visible output 4242" in page
    assert "SECRET_SOURCE_MARKER" not in page  # the cell's source
    assert "analyst note" not in page and "params_file" not in page
    parsed = read_page(run_dir / "01_works.html")
    assert not code_classes(parsed) and not offline_problems(parsed)
    assert len(parsed.img_srcs) == 1 and parsed.img_srcs[0].startswith("data:image/png;base64,")


def test_stakeholder_view_drops_stderr_and_empty_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("import warnings", outputs=[
                    nbformat.v4.new_output("stream", name="stderr", text="UserWarning: noise"),
                    nbformat.v4.new_output("stream", name="stdout", text="kept")])]
    view = stakeholder_view(nb)
    assert len(view.cells) == 1 and [o["text"] for o in view.cells[0].outputs] == ["kept"]
    assert "UserWarning" not in render_html(nb, lang="en", name="99_x")


def test_rerun_gives_identical_data_files(demo_project, tmp_path):
    def data_digest(out):
        code, run_dir = run_reports([demo_project / "params" / "demo.yaml"], out=out)
        assert code == 0
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run_dir / "data").glob("*"))}

    first, second = data_digest(tmp_path / "a"), data_digest(tmp_path / "b")
    assert first and first == second


def test_targeting_is_planned_on_the_outcome_it_will_model(demo_project):
    """The planner counts the rows run_targeting learns from for targeting.outcome, not the won/lost status."""
    import pandas as pd

    from funnel_lab import ParamsError
    from funnel_lab.analysis.targeting import enough_outcomes as _enough_outcomes
    from funnel_lab.runner import plan_run

    deals = pd.DataFrame({"status": ["won", "lost"] * 30, "renewed": [1] * 5 + [0] * 55,
                          "upsold": [True] * 20 + [False] * 40})
    assert _enough_outcomes(deals, "won")  # 30 won and 30 lost
    assert not _enough_outcomes(deals, "renewed")  # 5 of 60: fewer than 10 of one outcome
    assert _enough_outcomes(deals, "upsold")  # yes/no read as 1/0: 20 and 40
    params = demo_project / "params" / "demo.yaml"
    with pytest.raises(ParamsError, match=r"targeting\.outcome: unknown column 'nosuch'"):
        plan_run([params], overrides=["targeting.outcome=nosuch"], only=["50_targeting"])
    with pytest.raises(ParamsError, match=r"targeting\.outcome: the column 'amount' must hold 0/1 or yes/no"):
        plan_run([params], overrides=["targeting.outcome=amount"], only=["50_targeting"])


def test_a_chart_with_characters_no_font_has_gets_a_notice_on_top_in_the_manifest_and_the_index(project, capsys):
    import io

    progress = io.StringIO()
    code, run_dir = run(project, only=["04_missing_glyph"], progress=progress)
    assert code == 0  # the report is there, with boxes said out loud
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert {n["name"]: n.get("missing_glyphs") for n in m["notebooks"]}["04_missing_glyph"] == "\U0001F600"
    page = (run_dir / "04_missing_glyph.html").read_text(encoding="utf-8")
    notice = page.index('id="fl-glyphs"')
    assert notice < page.index("<img") and "图表中有 1 个字符无法显示" in page and "noto-cjk-sans-otc" in page
    assert page.count("图表中有 1 个字符无法显示") == 2  # on top, and under the chart itself
    assert 'id="glyphs"' in (run_dir / "index.html").read_text(encoding="utf-8")
    assert "04_missing_glyph: 1 character(s) its charts could not draw" in progress.getvalue()
    others = {n["name"]: n.get("missing_glyphs") for n in m["notebooks"] if n["name"] != "04_missing_glyph"}
    assert set(others.values()) == {None}
