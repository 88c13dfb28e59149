"""Reading a rendered report as a stakeholder does: its summary paragraphs and tables in Chromium, and the numbers in
them in English or Chinese formats (``12,345``, ``12.3%``, ``1.94万``, ``1.35亿``), parsed here without the package's
own formatter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

_NUMBER = re.compile(r"(?<![\w.])([+−-]?)(\d[\d,]*(?:\.\d+)?)(亿|万)?(%)?")
_UNIT = {"亿": 1e8, "万": 1e4, "": 1.0}


@dataclass
class Report:
    """A rendered report as read in the browser."""

    summary: list[str]  # the summary's paragraphs
    tables: list[list[list[str]]]  # every table's body rows, cell by cell
    lang: str


def read_report(browser, path: Path) -> Report:
    page = browser.new_page()
    try:
        page.goto(path.as_uri(), wait_until="load")
        # the first cell is the title, the second the summary
        summary = page.locator("main > .jp-Cell").nth(1).locator("p").all_inner_texts()
        tables = [[[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in t.locator("tbody tr").all()]
                  for t in page.locator("table").all()]
        lang = page.locator("html").get_attribute("lang") or "en"
    finally:
        page.close()
    return Report(summary, tables, lang)


def numbers(text: str) -> list[tuple[float, float]]:
    """Every number in ``text`` with half its last shown digit: ``(value, tolerance)``; a percentage as a share."""
    out = []
    for sign, digits, unit, percent in _NUMBER.findall(text):
        value = float(digits.replace(",", ""))
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        half = 0.5 * 10 ** -decimals * _UNIT[unit]
        value *= _UNIT[unit]
        if percent:
            value, half = value / 100, half / 100
        out.append((-value if sign in ("-", "−") else value, half))
    return out


def shows(text: str, value: float) -> bool:
    """Whether ``text`` shows ``value`` as a reader would round it."""
    return any(abs(v - value) <= h * 1.0001 + 1e-12 for v, h in numbers(text))


def said(paragraphs: list[str], *values: float) -> str:
    """The paragraph that shows every one of ``values``; fails naming what was looked for."""
    for p in paragraphs:
        if all(shows(p, v) for v in values):
            return p
    raise AssertionError(f"no paragraph shows all of {values}:\n" + "\n".join(paragraphs))


def recount_any_funnel(data: Path, order: list[str]) -> dict[str, int]:
    """The deals that reached each stage, recounted in plain pandas from a run's data files: the highest stage of
    a deal's clean stage history (without one, its stage in ``stages.csv``), every stage for a won deal."""
    opp = pd.read_csv(data / "opportunities_clean.csv", usecols=["opportunity_id", "status"])
    history = data / "stage_history_clean.csv"
    if history.is_file():
        h = pd.read_csv(history, usecols=["opportunity_id", "stage"])
        reach = h["stage"].map({s: i for i, s in enumerate(order, 1)}).groupby(h["opportunity_id"]).max().fillna(0)
    else:
        reach = pd.read_csv(data / "stages.csv").set_index("opportunity_id")["stage_rank"]
    won = set(opp.loc[opp["status"] == "won", "opportunity_id"])
    reach = reach.where(~reach.index.isin(won), len(order) + 1)
    return {s: int((reach >= i).sum()) for i, s in enumerate(order + ["won"], 1)}
