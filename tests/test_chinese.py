"""The Chinese reports as a zh reader gets them: charts whose labels are drawn (not boxes) on any machine, a stale
font cache repaired, a visible notice when a character cannot be drawn, and no untranslated word on any page."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from funnel_lab.i18n import t
from funnel_lab.fonts import bundled_font, missing_glyphs, repair_font_cache
from funnel_lab.reports.funnel import funnel_modes
from funnel_lab.reports.plots import plot_funnel, set_plot_theme

#: Latin words a zh page may show: statistics' and methods' names, units, acronyms, the product's name.
ALLOWED = {
    "AUC", "ROC", "PR", "CRM", "PSI", "VIF", "CUPED", "KM", "UTC", "BI", "ID", "CSV", "HC", "R", "A", "B", "Q",
    "z", "p", "t", "c", "d", "n", "Wilson", "Newcombe", "Welch", "Fisher", "Holm", "Cochran", "Armitage", "Kaplan",
    "Meier", "Beta", "Brier", "Qini", "ISO", "Noto", "Sans", "CJK", "SC", "USD", "CNY", "EUR",
}
#: Words the zh pages once showed untranslated: named so that a failure says which came back.
ONCE_UNTRANSLATED = {"any", "strict", "Intercept", "unassigned", "snake_case", "typed", "trimmed", "groups", "or",
                     "and", "raw", "shrunk", "s"}


def _visible_text(browser, page_file: Path) -> str:
    page = browser.new_page()
    page.goto(page_file.as_uri(), wait_until="load")
    text = page.locator("body").inner_text()
    page.close()
    return text


def latin_words(text: str) -> Counter:
    """Latin-only words a reader sees, leaving out what is an identifier: paths, file names, params keys, ids and
    names with digits or underscores (``OPP-000046``, ``b2b_v1``, ``targeting.exclude``, ``p10``)."""
    text = re.sub(r"\S*[/\\]\S*", " ", text)  # paths
    text = re.sub(r"\b[\w-]+\.(csv|json|html|yaml|xlsx)\b", " ", text)
    text = re.sub(r"\b\w+(\.\w+)+\b", " ", text)  # params keys, versions
    text = re.sub(r"[A-Za-z]+…", " ", text)  # a long value cut short
    words = re.findall(r"(?<![\w-])[A-Za-z]+(?![\w-])", text)
    return Counter(words)


def _words(files) -> set[str]:
    words: set[str] = set()
    for f in files:
        df = pd.read_csv(f, dtype="str", keep_default_na=False, nrows=50_000)
        values = set(df.columns)
        for col in df.columns:
            if df[col].nunique() < 5000:
                values |= set(df[col].unique())
        words |= {w for v in values for w in re.findall(r"[A-Za-z]+", v)}
    return words


def _data_words(project: Path, run_dir: Path) -> set[str]:
    """Words of the data, not of the report: the exports' headers and values (owners, sources, the CRM's own stage
    names), the cleaned tables' values, every data file's column names, and the placeholders the cleaning reads."""
    from funnel_lab.config import DEFAULT_PLACEHOLDERS

    heads = {w for f in (run_dir / "data").glob("*.csv") for w in re.findall(r"[A-Za-z]+", f.open().readline())}
    return (_words((project / "data" / "demo").glob("*.csv")) | _words((run_dir / "data").glob("*_clean.csv"))
            | heads | {w for p in DEFAULT_PLACEHOLDERS for w in re.findall(r"[A-Za-z]+", p)})


@pytest.mark.browser
def test_no_zh_page_shows_an_untranslated_word(zh_run, browser, demo_project):
    allowed = ALLOWED | _data_words(demo_project, zh_run)
    problems = {}
    for page_file in [zh_run / "index.html"] + sorted(zh_run.glob("[0-9][0-9]_*.html")):
        words = latin_words(_visible_text(browser, page_file))
        # a value cut short in a table of examples reads as the start of a data word
        bad = {w: n for w, n in words.items() if w not in allowed
               and not (len(w) >= 3 and any(a.startswith(w) for a in allowed))}
        back = {w for w in ONCE_UNTRANSLATED if words.get(w)}
        if bad or back:
            problems[page_file.name] = (bad, back)
    assert problems == {}


def test_zh_numbers_and_dates_read_as_chinese_reports_write_them(zh_run):
    text = (zh_run / "60_forecast_monitoring.html").read_text(encoding="utf-8")
    assert re.search(r"\d+(\.\d+)?万", text) and not re.search(r"\d\.\d0万", text)  # 2万, never 2.00万
    assert re.search(r"数据截至 20\d\d年\d{1,2}月\d{1,2}日", (zh_run / "20_funnel.html").read_text(encoding="utf-8"))


def test_zh_run_records_its_fonts_and_draws_every_character(zh_run):
    m = json.loads((zh_run / "manifest.json").read_text(encoding="utf-8"))
    assert m["fonts"]["family"] == "Noto Sans CJK SC" and Path(m["fonts"]["path"]).is_file()
    assert m["fonts"]["bundled"] and Path(m["fonts"]["bundled"]).is_file()
    assert [n["name"] for n in m["notebooks"] if n.get("missing_glyphs")] == []
    assert 'id="fl-glyphs"' not in (zh_run / "20_funnel.html").read_text(encoding="utf-8")


@pytest.mark.browser
def test_zh_funnel_chart_draws_its_chinese_labels(zh_run, demo_project, browser):
    """Chromium's screenshot of the report's funnel chart is the chart drawn with the CJK font forced, and not the
    one drawn with a Latin-only font (the boxes a missing font gives)."""
    import funnel_lab as fl

    labels = fl.load(demo_project / "params" / "demo.yaml").stage_labels("zh")
    funnel = pd.read_csv(zh_run / "data" / "funnel.csv")
    family = json.loads((zh_run / "manifest.json").read_text(encoding="utf-8"))["fonts"]["family"]

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto((zh_run / "20_funnel.html").as_uri(), wait_until="load")
    chart = page.locator("img").first
    shot = mpimg.imread(io.BytesIO(chart.screenshot()), format="png")[..., :3]

    def drawn(font: str) -> np.ndarray:
        set_plot_theme()
        with plt.rc_context({"font.sans-serif": [font]}), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Latin-only font's missing glyphs are the point
            ax = plot_funnel(funnel, labels=labels, mode_labels=funnel_modes("zh"), title=t("fn.funnel_chart", "zh"))
            buf = io.BytesIO()
            ax.figure.savefig(buf, format="png", bbox_inches="tight")  # as the inline backend does
        plt.close(ax.figure)
        # shown in the report's own place, so that both screenshots share the layout to the pixel
        chart.evaluate("(img, src) => new Promise(done => { img.onload = () => done(); img.src = src; })",
                       "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
        return mpimg.imread(io.BytesIO(chart.screenshot()), format="png")[..., :3]

    forced, latin_only = drawn(family), drawn("DejaVu Sans")
    page.close()
    assert shot.shape == forced.shape and np.abs(shot - forced).max() < 0.02
    assert shot.shape != latin_only.shape or np.abs(shot - latin_only).mean() > 1e-3


def test_chinese_labels_draw_with_the_bundled_font_alone(tmp_path):
    """A machine with no CJK font of its own (and a font cache that knows none): the bundled Noto Sans CJK draws."""
    code = """
import json, warnings, matplotlib
matplotlib.use("Agg")
from matplotlib import font_manager as fm
fm.fontManager.ttflist = [f for f in fm.fontManager.ttflist if "CJK" not in f.name and "WenQuanYi" not in f.name]
fm.fontManager._findfont_cached.cache_clear()
fm.findSystemFonts = lambda *a, **k: []  # nothing on the system to repair the cache with
from funnel_lab.reports.plots import set_plot_theme
from funnel_lab.fonts import prepare_fonts
import matplotlib.pyplot as plt
set_plot_theme()
fig, ax = plt.subplots(); ax.set_title("商机阶段：潜在客户 意向客户 评估客户 决策客户 成交")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fig.canvas.draw()
print(json.dumps({"fonts": prepare_fonts().to_dict(), "missing": [str(w.message) for w in caught]}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"MPLCONFIGDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["missing"] == []
    assert out["fonts"]["family"] == "Noto Sans CJK SC" and out["fonts"]["path"] == bundled_font()


def test_a_stale_font_cache_is_repaired_once(tmp_path):
    """matplotlib's font list cached before the system's CJK fonts were installed: the first run adds them and
    writes the list again; the next run finds nothing to add."""
    from matplotlib import font_manager as fm

    system_cjk = [p for p in fm.findSystemFonts() if "CJK" in Path(p).name]
    assert system_cjk, "no system CJK font: `make test` installs Debian's fonts-noto-cjk"
    stale = fm.FontManager()
    stale.ttflist = [f for f in stale.ttflist if f.fname not in system_cjk]
    cache = tmp_path / f"fontlist-v{fm.FontManager.__version__}.json"
    fm.json_dump(stale, str(cache))

    code = ("import json; from funnel_lab.fonts import prepare_fonts; from matplotlib import font_manager as fm;"
            "f = prepare_fonts(); print(json.dumps({'repaired': f.cache_repaired, 'system': sorted({e.fname for e in "
            "fm.fontManager.ttflist if 'CJK' in e.name and 'noto_cjk_sans_otc' not in e.fname})}))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={"MPLCONFIGDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first["repaired"] >= len(system_cjk) and second["repaired"] == 0
    assert set(system_cjk) <= set(second["system"])  # read back from the repaired cache
    saved = {f.fname for f in fm.json_load(str(cache)).ttflist}
    assert set(system_cjk) <= saved and bundled_font() not in saved  # the bundled font is not written to it


def test_repair_finds_nothing_to_add_to_a_current_cache(tmp_path):
    from matplotlib import font_manager as fm

    current = fm.FontManager()
    assert repair_font_cache(current, tmp_path / "fontlist.json") == 0 and not (tmp_path / "fontlist.json").exists()


def test_missing_glyphs_are_read_from_matplotlib_warnings():
    set_plot_theme()
    fig, ax = plt.subplots()
    ax.set_title("商机阶段：潜在客户 意向客户 评估客户 决策客户 成交 \U0001F600 \u0F40")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    assert missing_glyphs(caught) == ["\U0001F600", "\u0F40"]  # the Chinese is drawn, the emoji and Tibetan not


def test_the_steps_notes_read_in_chinese(zh_run, demo_project):
    """Every audit note, quarantine reason and duplicate match of the run reads in Chinese, but for the data's own
    words; model terms and stage rules as a reader says them."""
    from funnel_lab.reports.wording import note, reason_kinds, rule, term

    audit = pd.read_csv(zh_run / "data" / "cleaning_audit.csv", keep_default_na=False)
    quarantine = pd.read_csv(zh_run / "data" / "quarantine.csv", keep_default_na=False, usecols=["reason"])
    groups = pd.read_csv(zh_run / "data" / "duplicate_groups.csv", keep_default_na=False, usecols=["match"])
    notes = set(audit["detail"]) | set(reason_kinds(quarantine["reason"])) | set(groups["match"])
    allowed = ALLOWED | _data_words(demo_project, zh_run)
    left = {n: w for n in notes for w in [set(latin_words(note(n, "zh"))) - allowed] if w}
    assert left == {}
    assert note("on opportunity_id: 200 groups; rows_in = rows_out + rows_removed", "zh") == (
        "按 opportunity_id 完全相同：200 组；输入行数 = 输出行数 + 移除行数")
    assert note("an unheard-of note", "zh") == "an unheard-of note" and note("none found", "en") == "none found"
    assert term("C(source, Treatment(reference='Web'))[T.Paid Search]", "zh") == "source = Paid Search"
    assert term("Intercept", "zh") == "截距（基准）" and term("demo[T.True]", "en") == "demo"
    assert rule("meetings >= 1 or not demo", "zh") == "meetings >= 1 或 非 demo"
    assert rule("True", "zh") == "全部商机" and rule("a and b", "en") == "a and b"
