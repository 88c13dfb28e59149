import re

import pytest

from funnel_lab.i18n import catalogue, format_date, format_money, format_number, format_percent, format_period, t


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


@pytest.mark.parametrize("x, lang, expected", [
    (12345.6, "en", "12,346"), (12345.6, "zh", "1.23万"), (20000, "zh", "2万"), (20400, "zh", "2.04万"),
    (251352, "zh", "25.14万"), (1783400, "zh", "178.3万"), (38531600, "zh", "3,853万"), (1.35e8, "zh", "1.35亿"),
    (3.2e8, "zh", "3.2亿"), (-20400, "zh", "-2.04万"), (950, "zh", "950"), (None, "en", "–")])
def test_format_number(x, lang, expected):
    assert format_number(x, lang) == expected


def test_money_periods_and_dates_in_chinese():
    import datetime

    assert format_money(1.35e8, "zh", currency="CNY") == "¥1.35亿" and format_money(1.35e8, "zh", currency="USD") == "1.35亿"
    assert format_money(1234, "en", currency="CNY") == "1,234"
    assert [format_period(p, "zh") for p in ("2026-05", "2026-Q2", "2026-W18", "2026-05-03")] == [
        "2026年5月", "2026年第2季度", "2026年第18周", "2026-05-03"]
    assert format_period("2026-05", "en") == "2026-05"
    assert format_date(datetime.date(2026, 7, 1), "zh") == "2026年7月1日"


def test_format_percent():
    assert format_percent(0.1234) == "12.3%" and format_percent(float("nan")) == "–"
