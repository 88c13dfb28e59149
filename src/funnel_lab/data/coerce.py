"""Column-wise type coercion of exported text: numbers, dates and booleans, decided per column, never per row."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Share of the filled cells that must parse for a column to take a type.
MIN_SHARE = 0.95
TRUE_WORDS = {"yes", "y", "true", "t", "是", "对", "checked", "on", "✓", "√"}
FALSE_WORDS = {"no", "n", "false", "f", "否", "不是", "unchecked", "off", "✗", "×"}
_CURRENCY = re.compile(r"(?i)rmb|cny|usd|eur|gbp|[¥￥$€£元]|\s")
# Formats tried on a date column, most specific first; the one parsing the most cells wins.
DATE_FORMATS = (
    "ISO8601", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S",
    "%m/%d/%y %H:%M", "%m/%d/%Y", "%m/%d/%y", "%d/%m/%Y", "%d/%m/%y", "%d/%m/%Y %H:%M", "%d.%m.%Y", "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y年%m月%d日", "%Y年%m月%d日 %H:%M", "%Y.%m.%d", "%d-%b-%Y", "%b %d, %Y",
)
_DATE_SHAPE = re.compile(r"^\s*(\d{1,4}[-/.年]\d{1,2}[-/.月]\d{1,4}|\d{1,2}-[A-Za-z]{3}-\d{2,4}|[A-Za-z]{3} \d{1,2}, \d{4})")


@dataclass
class Coerced:
    """A coerced column: the values, the kind chosen, and the cells that did not parse (left missing)."""

    values: pd.Series
    kind: str  # number | date | boolean | text
    failed: pd.Series = field(default_factory=lambda: pd.Series(dtype="str"))  # index -> original text
    detail: str = ""


def _filled(s: pd.Series) -> pd.Series:
    return s[s.notna()].astype("str")


def parse_numbers(s: pd.Series) -> pd.Series:
    """Text to float: currency symbols, thousands separators, ``万``/``亿``, ``%`` and ``(1,200)`` negatives.

    Cells that do not parse are NaN. ``"12%"`` gives 12.0 (the number as written).

    Examples
    --------
    >>> parse_numbers(pd.Series(["¥12,000", "$1,200.50", "1.2万", "(300)", "15%", "x"])).tolist()
    [12000.0, 1200.5, 12000.0, -300.0, 15.0, nan]
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    text = s.astype("str").str.strip()
    negative = text.str.match(r"^\(.*\)$") | text.str.startswith("-")
    text = text.str.replace(r"^\((.*)\)$", r"\1", regex=True).str.lstrip("-")
    text = text.str.replace(_CURRENCY, "", regex=True).str.replace(",", "", regex=False).str.rstrip("%")
    scale = np.where(text.str.endswith("亿"), 1e8, np.where(text.str.endswith("万"), 1e4, 1.0))
    text = text.str.rstrip("万亿")
    num = pd.to_numeric(text.where(text.str.match(r"^\d*\.?\d+(e[-+]?\d+)?$", case=False)), errors="coerce")
    out = num.astype("float64") * scale
    out[negative.fillna(False).to_numpy()] *= -1
    return out.where(s.notna())


def parse_bools(s: pd.Series, *, blank_is_false: bool = False) -> pd.Series:
    """Text to the nullable ``boolean`` dtype: yes/no, true/false, y/n, 1/0, 是/否 in any case.

    Parameters
    ----------
    s : Series
    blank_is_false : bool
        For exports that write only the true cells (Salesforce ``1``/blank).
    """
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    text = s.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[text.isin(TRUE_WORDS | {"1", "1.0"}).fillna(False).to_numpy()] = True
    out[text.isin(FALSE_WORDS | {"0", "0.0"}).fillna(False).to_numpy()] = False
    if blank_is_false:
        out[(s.isna() | (text == "")).to_numpy()] = False
    return out


def parse_dates(s: pd.Series, *, date_format: str = "auto") -> tuple[pd.Series, str]:
    """Text to naive UTC datetimes with one format for the whole column.

    Parameters
    ----------
    s : Series
        Text cells (missing stays missing).
    date_format : str
        ``auto`` tries :data:`DATE_FORMATS` and keeps the one parsing the most cells (ties go to the earlier:
        ISO, then month-first as in US exports); otherwise a strftime pattern or ``ISO8601``.

    Returns
    -------
    values : Series
        ``datetime64[ns]``; offsets such as ``+0000`` or ``Z`` are converted to UTC.
    fmt : str
        The format used.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        v = s.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        return v.astype("datetime64[ns]"), "native"
    text = s.astype("str").str.strip().where(s.notna())
    filled = text.dropna()
    filled = filled[filled != ""]
    candidates = (date_format,) if date_format != "auto" else DATE_FORMATS
    best, best_n = candidates[0], -1
    sample = filled.drop_duplicates().head(5000)
    for fmt in candidates:
        n = int(_to_datetime(sample, fmt).notna().sum())
        if n > best_n:
            best, best_n = fmt, n
        if n == len(sample):
            break
    return _to_datetime(text, best), best


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    out = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    return out.dt.tz_localize(None).astype("datetime64[ns]")


def date_formats_found(s: pd.Series, *, limit: int = 3) -> list[tuple[str, int]]:
    """Which formats the filled cells of a column follow, with counts: for the mixed-formats error."""
    filled = _filled(s).str.strip()
    filled = filled[filled != ""]
    left, found = filled, []
    for fmt in DATE_FORMATS:
        ok = _to_datetime(left, fmt).notna()
        if ok.any():
            found.append((fmt, int(ok.sum())))
            left = left[~ok]
        if left.empty or len(found) >= limit:
            break
    return found


def infer_kind(s: pd.Series) -> str:
    """``number``, ``date``, ``boolean``, ``text`` or ``empty``: the kind at least 95% of the filled cells parse as."""
    filled = s.dropna()
    if filled.dtype == object or pd.api.types.is_string_dtype(filled):
        filled = filled[filled.astype("str").str.strip() != ""]
    if filled.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(filled):
        return "boolean"
    if pd.api.types.is_numeric_dtype(filled):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(filled):
        return "date"
    text = filled.astype("str").str.strip().str.lower()
    words = text.isin(TRUE_WORDS | FALSE_WORDS)
    if words.any() and (words | text.isin({"0", "1"})).mean() >= MIN_SHARE:
        return "boolean"
    if parse_numbers(filled).notna().mean() >= MIN_SHARE:
        return "number"
    if text.str.match(_DATE_SHAPE).mean() >= MIN_SHARE:
        return "date"
    return "text"


def coerce_column(s: pd.Series, kind: str, *, date_format: str = "auto") -> Coerced:
    """Convert a whole column to ``kind``; cells that were filled but do not parse become missing and are listed."""
    was_filled = s.notna() & (s.astype("str").str.strip() != "")
    detail = ""
    if kind == "number":
        values = parse_numbers(s)
        whole = values.dropna()
        if len(whole) and (whole == np.round(whole)).all() and whole.abs().max() < 2**53:
            values = values.astype("Int64")  # counts stay counts: 3, not 3.0
    elif kind == "boolean":
        values = parse_bools(s)
    elif kind == "date":
        values, fmt = parse_dates(s, date_format=date_format)
        detail = f"format {fmt}"
    else:
        return Coerced(s, "text")
    failed = s[was_filled & values.isna()].astype("str")
    return Coerced(values, kind, failed, detail)
