"""One notebook executed with papermill, written as ``.ipynb`` and offline ``.html`` even when it fails."""

from __future__ import annotations

import copy
import html
import time
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..fonts import glyph_notice
from ..i18n import t
from .kernel import KERNEL_NAME
from .render import render_html



@dataclass
class NotebookResult:
    name: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    error: str | None = None
    reason: str | None = None  # why skipped: a catalogue key
    missing_glyphs: str | None = None  # characters its charts could not draw (no font has them)


@dataclass
class Job:
    name: str
    notebook: Path
    run_dir: Path
    params_file: Path
    out_root: Path
    lang: str
    kernel: str = KERNEL_NAME


def execute_notebook(job: Job) -> NotebookResult:
    """Run one notebook with papermill, then write its executed ``.ipynb`` and offline ``.html`` atomically.

    A failing notebook still gets both files, with the error at the top of the HTML.
    """
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    tmp = job.run_dir / f".{job.name}.executing.ipynb"
    error = None
    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                str(job.notebook), str(tmp),
                parameters={"params_file": str(job.params_file), "out_dir": str(job.out_root)},
                kernel_name=job.kernel, cwd=str(job.notebook.parent),
                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # the kernel's TCP notice is noise in cron mail
            )
        except pm.PapermillExecutionError as e:
            error = f"{e.ename}: {e.evalue}"
        except Exception as e:  # kernel died, timeout, unreadable notebook: still report it
            error = f"{type(e).__name__}: {e}"
            # kernels starting at the same moment can pick the same free port and one dies before running a cell;
            # nothing has run yet, so starting it once more is safe
            if attempt == 1 and "Kernel died before replying" in str(e):
                error = None
                continue
        break
    try:
        nb = nbformat.read(tmp if tmp.exists() else job.notebook, as_version=4)
    finally:
        tmp.unlink(missing_ok=True)
    glyphs = glyphs_not_drawn(nb)
    if glyphs:
        nb = add_glyph_banner(nb, glyphs, lang=job.lang)
    if error:
        nb = add_error_banner(nb, error, lang=job.lang)
    files.write_text(job.run_dir / f"{job.name}.ipynb", nbformat.writes(nb))
    files.write_text(job.run_dir / f"{job.name}.html", render_html(nb, lang=job.lang, name=job.name,
                                                                           run_name=job.run_dir.name))
    status = "failed" if error else "ok"
    return NotebookResult(job.name, status, round(time.perf_counter() - start, 2), error,
                          missing_glyphs=glyphs or None)


def glyphs_not_drawn(nb) -> str:
    """The characters the notebook's charts could not draw, as the session marked them (once each, in order)."""
    chars: dict[str, None] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            marked = out.get("metadata", {}).get("funnel_lab", {})
            chars.update(dict.fromkeys(marked.get("missing_glyphs", "") if isinstance(marked, dict) else ""))
    return "".join(chars)


def add_glyph_banner(nb, glyphs: str, *, lang: str):
    """Put the notice of characters no font could draw at the top of the report, where no reader misses it."""
    import nbformat

    nb = copy.deepcopy(nb)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(glyph_notice(glyphs, lang, html_id="fl-glyphs"),
                                                     metadata={"tags": ["fl-glyph-banner"]}))
    return nb


def add_error_banner(nb, error: str, *, lang: str):
    """Replace papermill's error cell with a plain-language banner that links to the failing step."""
    import nbformat

    nb = copy.deepcopy(nb)
    # papermill tags two cells: its banner at the top (replaced here) and the anchor above the failing step (kept)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
                or 'id="papermill-error-cell"' in c.get("source", "")]
    banner = (
        f'<div class="fl-banner fl-banner-error" id="fl-error"><strong>{html.escape(t("status.failed", lang))}.</strong> '
        f"{html.escape(t('banner.failed', lang, error=error))} "
        f'<a href="#papermill-error-cell">{html.escape(t("banner.failed_link", lang))}</a></div>'
    )
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(banner, metadata={"tags": ["fl-error-banner"]}))
    return nb
