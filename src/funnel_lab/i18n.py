"""The en/zh message catalogue and number formats, shared by the report pages and the runner's index page."""

from __future__ import annotations

import html
import math
import re
from functools import lru_cache
from importlib import resources

import yaml

LANGUAGES = ("en", "zh")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Every message by key, as ``{key: {"en": ..., "zh": ...}}``."""
    text = resources.files("funnel_lab").joinpath("locale/messages.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def t(key: str, lang: str = "en", **values: object) -> str:
    """The message ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    Examples
    --------
    >>> t("status.failed", "zh")
    '失败'
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    try:
        text = catalogue()[key][lang]
    except KeyError:
        raise KeyError(f"message {key!r} is not in the catalogue (src/funnel_lab/locale/messages.yaml)") from None
    return text.format(**values) if values else text


def to_html(text: str) -> str:
    """A catalogue sentence as HTML: escaped, its ``**bold**`` (the only markup the catalogue uses) kept."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def format_number(x: float | int | None, lang: str = "en", *, digits: int = 0) -> str:
    """A number for people: ``12,345`` in English; in Chinese 万 and 亿 from ten thousand on (``2万``, ``1.94万``,
    ``3,853万``, ``1.35亿``: at most two decimals and four significant digits, no trailing zeros)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if lang == "zh":
        for unit, size in (("亿", 1e8), ("万", 1e4)):
            if abs(x) >= size:
                v = x / size
                decimals = max(0, min(2, 3 - int(math.floor(math.log10(abs(v))))))
                text = f"{v:,.{decimals}f}"
                return (text.rstrip("0").rstrip(".") if "." in text else text) + unit
    return f"{x:,.{digits}f}"


def format_money(x: float | None, lang: str = "en", *, currency: str | None = None) -> str:
    """An amount: with ``¥`` in Chinese when the currency is CNY (``¥1.35亿``), else the plain number (the currency
    is in the label)."""
    text = format_number(x, lang)
    return f"¥{text}" if lang == "zh" and currency == "CNY" and text != "–" else text


_PERIOD = re.compile(r"^(\d{4})-(?:(\d{2})|Q(\d)|W(\d{2}))$")


def format_period(period: object, lang: str = "en") -> str:
    """A month, quarter or week as a Chinese report writes it (``2026-05`` -> ``2026年5月``, ``2026-Q2`` ->
    ``2026年第2季度``, ``2026-W18`` -> ``2026年第18周``); English and anything else unchanged."""
    text = str(period)
    m = _PERIOD.match(text) if lang == "zh" else None
    if not m:
        return text
    year, month, quarter, week = m.groups()
    return (f"{year}年{int(month)}月" if month else f"{year}年第{int(quarter)}季度" if quarter
            else f"{year}年第{int(week)}周")


def is_period(values) -> bool:
    """Whether every value is a period :func:`format_period` rewrites (a column of months, quarters or weeks)."""
    return len(values) > 0 and all(_is_period(v) for v in values)


def _is_period(v: object) -> bool:
    # a month as text ("2026-05") or as a pandas Period (which has a frequency)
    return (isinstance(v, str) or hasattr(v, "freqstr")) and bool(_PERIOD.match(str(v)))


def format_date(day, lang: str = "en") -> str:
    """A day: ``2026-07-01``, in Chinese ``2026年7月1日``."""
    return f"{day.year}年{day.month}月{day.day}日" if lang == "zh" else f"{day:%Y-%m-%d}"


def format_percent(x: float | None, lang: str = "en", *, digits: int = 1) -> str:
    """A share (0.123) as a percentage (``12.3%``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def format_points(x: float | None, lang: str = "en", *, digits: int = 2) -> str:
    """A difference of two shares in percentage points, signed (0.0123 -> ``+1.23``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return ("+" if x > 0 else "") + format_number(100 * x, lang, digits=digits)


def format_p(p: float | None) -> str:
    """A p-value with its relation, for "p {}": ``= 0.012``, ``= 0.0031``, ``< 0.0001``."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "= –"
    return "< 0.0001" if p < 1e-4 else f"= {p:.2g}" if p < 0.01 else f"= {p:.3f}"
