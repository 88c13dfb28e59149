"""The stakeholder HTML: executed notebooks without code, offline, and the run's index page."""

from __future__ import annotations

import copy
import html
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..i18n import catalogue, t, to_html
from .registry import REGISTRY

if TYPE_CHECKING:
    from ..history.changes import SinceLastRun
    from .execute import NotebookResult

TEMPLATES = Path(str(resources.files("funnel_lab") / "runner" / "templates"))
#: Cells with these tags are for analysts in JupyterLab and never reach the stakeholder HTML.
HIDDEN_TAGS = {"analyst-note", "remove-cell", "parameters", "injected-parameters"}


def stakeholder_view(nb):
    """The notebook as a stakeholder sees it: no analyst notes, no empty code cells, no warnings on stderr."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def render_html(nb, *, lang: str, name: str, run_name: str = "") -> str:
    """Offline HTML with no code: the ``funnel_lab`` template (no CDN scripts), images embedded."""
    import nbformat
    from nbconvert import HTMLExporter

    view = stakeholder_view(nb)
    footer = t("footer.generated", lang, version=__version__, run=run_name or name,
               when=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    view.cells.append(nbformat.v4.new_markdown_cell(f'<p class="fl-footer">{html.escape(footer)}</p>'))
    view.metadata["title"] = t(f"report.{name}", lang) if name in REGISTRY else name
    exporter = HTMLExporter(
        template_name="funnel_lab", extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True,
        language_code=lang,
    )
    body, _ = exporter.from_notebook_node(view)
    return body


def skip_note(result: NotebookResult, lang: str) -> str:
    """Why a report was skipped, in words (the tables it would need are named)."""
    needs = REGISTRY[result.name].needs if result.name in REGISTRY else ()
    return t(result.reason, lang, tables=" / ".join(t(f"table.{n}", lang) for n in needs))


def sparkline(values: list[float], *, width: int = 110, height: int = 26) -> str:
    """An inline SVG line of ``values`` (oldest first), the latest marked: a trend that needs no script or image."""
    vals = [float(v) for v in values if v == v]  # a run that did not measure a number leaves no point
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    pts = [(3 + i * (width - 6) / (len(vals) - 1), height - 3 - (v - lo) / span * (height - 6)) for i, v in enumerate(vals)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    x, y = pts[-1]
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="1.5"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#0969da"/></svg>')


def since_view(since: SinceLastRun | None, numbers: dict, lang: str, labels: dict[str, str]) -> dict | None:
    """The index's "since the last run": the sentences, and each number against the last run with its trend."""
    from ..history.words import LOWER_IS_BETTER, format_change, format_value, since_sentences

    if since is None:
        return None
    rows = []
    for r in since.numbers_table(numbers).to_dict("records"):
        d = r["change"]
        tone = "" if not d else "bad" if (d > 0) == (r["key"] in LOWER_IS_BETTER) else "good"
        rows.append({"key": r["key"], "label": t(f"headline.{r['key']}", lang) if f"headline.{r['key']}" in catalogue()
                     else r["key"], "last": format_value(r["key"], r["last"], lang), "now": format_value(r["key"], r["now"], lang),
                     "change": format_change(r["key"], d, lang), "tone": tone, "spark": sparkline(r["trend"])})
    return {"sentences": [to_html(x) for x in since_sentences(since, lang, labels)], "rows": rows,
            "first": since.last is None}


def render_index(manifest: dict, results: list[NotebookResult], headlines: dict, *, lang: str,
                 data_files: list[str], since: SinceLastRun | None = None, labels: dict[str, str] | None = None) -> str:
    """The run at a glance: status, what changed since the last run, headline numbers, one link per report with
    its status, inputs, data files."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from ..history.words import format_value

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    started = datetime.fromisoformat(manifest["started_at"])
    finished = datetime.fromisoformat(manifest["finished_at"]) if manifest["finished_at"] else None
    reports = []
    for r in results:
        reports.append({
            "name": r.name,
            "title": t(f"report.{r.name}", lang) if r.name in REGISTRY else r.name,
            "question": t(f"question.{r.name}", lang) if r.name in REGISTRY else "",
            "status": r.status, "status_label": t(f"status.{r.status}", lang),
            "seconds": f"{r.seconds:.1f}" if r.status != "skipped" else "",
            "href": f"{r.name}.html" if r.status in ("ok", "failed") else None,
            "note": skip_note(r, lang) if r.reason else (r.error or ""),
        })
    return env.get_template("run_index.html.j2").render(
        lang=lang, t=lambda k, **kw: t(k, lang, **kw), m=manifest, reports=reports,
        status_label=t({"ok": "status.ok", "failed": "status.partial", "running": "status.running"}[manifest["status"]], lang),
        headlines=[(t(f"headline.{k}", lang), format_value(k, v, lang)) for k, v in headlines.items()],
        started=started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        finished=finished.strftime("%Y-%m-%d %H:%M:%S UTC") if finished else "",
        duration=t("unit.seconds", lang, n=f"{(finished - started).total_seconds():.0f}") if finished else "",
        data_files=data_files, version=__version__, messages=catalogue(),
        glyphs=", ".join(r["title"] for r, res in zip(reports, results) if res.missing_glyphs),
        since=since_view(since, headlines, lang, labels or {}),
    )
