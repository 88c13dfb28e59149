import re
import warnings

import matplotlib.pyplot as plt
import pytest

from funnel_lab.i18n import catalogue, format_number, format_percent, t
from funnel_lab.reports.plots import set_plot_theme


def test_every_message_has_both_languages_with_the_same_placeholders():
    for key, msgs in catalogue().items():
        assert set(msgs) == {"en", "zh"}, key
        assert set(re.findall(r"{(\w+)}", msgs["en"])) == set(re.findall(r"{(\w+)}", msgs["zh"])), key
        assert re.search(r"[\u4e00-\u9fff]", msgs["zh"]) or not re.search(r"[a-z]{4,}", msgs["zh"]), key


def test_lookup_formats_and_fails_clearly():
    assert t("index.skip.no_input", "zh", tables="实验") == "参数中没有 实验 数据表"
    with pytest.raises(KeyError, match="no.such.key"):
        t("no.such.key")
    with pytest.raises(ValueError, match="language 'fr'"):
        t("status.ok", "fr")


@pytest.mark.parametrize("x, lang, expected", [(12345.6, "en", "12,346"), (12345.6, "zh", "1.23万"),
                                               (3.2e8, "zh", "3.20亿"), (950, "zh", "950"), (None, "en", "–")])
def test_format_number(x, lang, expected):
    assert format_number(x, lang) == expected


def test_format_percent():
    assert format_percent(0.1234) == "12.3%" and format_percent(float("nan")) == "–"


def test_chinese_chart_labels_have_no_missing_glyphs():
    set_plot_theme()
    fig, ax = plt.subplots()
    ax.set_title("商机阶段：潜在客户 意向客户 评估客户 决策客户 成交")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == [], "install fonts-noto-cjk (make test does) and clear ~/.cache/matplotlib"
