""""Since the last run" in words and numbers, for the index page and the ``60_forecast_monitoring`` report alike."""

from __future__ import annotations

from datetime import date

from ..i18n import format_date, format_money, format_number, format_percent, format_points, t
from .changes import CHANGES, SinceLastRun

#: Numbers shown as shares (the rest are counts or amounts).
SHARES = ("closed_win_rate",)
#: Numbers whose rise is bad news (the trend is coloured the other way).
LOWER_IS_BETTER = ("lost", "stalled", "alerts", "rows_removed")


def format_value(key: str, v: float | None, lang: str, currency: str | None = None) -> str:
    """A recorded number as the index's headline cards show it."""
    if v is None:
        return "–"
    if key in SHARES or key.endswith("_rate"):
        return format_percent(v, lang)
    if key in ("open_amount", "forecast"):
        return format_money(v, lang, currency=currency)
    return format_number(v, lang, digits=0 if float(v).is_integer() else 2)


def format_change(key: str, d: float | None, lang: str, currency: str | None = None) -> str:
    """A number's change since the last run, signed (rates in points)."""
    if d is None:
        return ""
    if key in SHARES or key.endswith("_rate"):
        return t("sl.points", lang, d=format_points(d, lang, digits=1))
    text = format_value(key, abs(d), lang, currency)
    return ("+" if d > 0 else "−" if d < 0 else "±") + text


def since_sentences(s: SinceLastRun, lang: str, labels: dict[str, str]) -> list[str]:
    """What matters most first, then what happened to the deals since the last run."""
    key, v = s.what_matters()
    if key == "sl.first":
        return [t("sl.first", lang)]
    last = s.last
    when = format_date(date.fromisoformat(last["as_of"]), lang)
    if key == "sl.no_deals":
        return [t("sl.no_deals", lang, when=when)]
    pct = lambda x: format_percent(x, lang)  # noqa: E731
    if key.startswith("sl.top.win_rate"):
        top = t(key, lang, stage=labels.get(v["stage"], v["stage"]), before=pct(v["win_rate_before"]),
                since=pct(v["win_rate_since"]), d=format_points(v["change"], lang, digits=1),
                lo=format_points(v["ci_low"], lang, digits=1), hi=format_points(v["ci_high"], lang, digits=1),
                n=format_number(v["closed_since"], lang))
    elif key == "sl.top.mix":
        top = t(key, lang, psi=format_number(v["psi"], lang, digits=2), stage=labels.get(v["stage"], v["stage"]),
                before=pct(v["before"]), now=pct(v["now"]))
    else:
        top = t(key, lang)
    c = s.change_counts()
    counts = t("sl.counts", lang, when=when, **{k: format_number(c[k], lang) for k in CHANGES})
    out = [top, counts]
    if key != "sl.top.mix" and s.psi == s.psi:
        out.append(t("sl.psi", lang, psi=format_number(s.psi, lang, digits=3)))
    return out
