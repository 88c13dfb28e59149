"""The en/zh message catalogue and number formats, shared by the report pages and the runner's index page."""

from __future__ import annotations

import math
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


def format_number(x: float | int | None, lang: str = "en", *, digits: int = 0) -> str:
    """A number for people: ``12,345`` in English; ``1.23万`` / ``3.40亿`` for large numbers in Chinese."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if lang == "zh" and abs(x) >= 1e8:
        return f"{x / 1e8:,.{max(digits, 2)}f}亿"
    if lang == "zh" and abs(x) >= 1e4:
        return f"{x / 1e4:,.{max(digits, 2)}f}万"
    return f"{x:,.{digits}f}"


def format_percent(x: float | None, lang: str = "en", *, digits: int = 1) -> str:
    """A share (0.123) as a percentage (``12.3%``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def format_p(p: float | None) -> str:
    """A p-value with its relation, for "p {}": ``= 0.012``, ``= 0.0031``, ``< 0.0001``."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "= –"
    return "< 0.0001" if p < 1e-4 else f"= {p:.2g}" if p < 0.01 else f"= {p:.3f}"
