"""``funnel-lab init DIR``: a new analysis project, laid out as the kit expects and ready for the two commands.

::

    DIR/
      README.md             the two commands, and where things go
      params/<name>.yaml    a commented starter params file for the CRM's export (--preset)
      notebooks/            the report notebooks, to open and edit in JupyterLab (run them with --notebooks)
      data/raw/             the exports, as the CRM wrote them: funnel_lab reads them and never writes there
      reports/              what the runs write
      .gitignore            reports/ and data/ stay out of version control

``--demo`` adds the demo's params and a synthetic CRM in ``data/demo/``, so that the first run works at once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .bundled import DEMO_PARAMS, bundled, report_notebooks
from .errors import ParamsError

#: The export a preset reads, as the CRM names it (the starter's path).
PRESET_FILES = {
    "salesforce": "opportunities.csv", "hubspot": "deals.csv", "zoho": "Deals.csv", "pipedrive": "deals.csv",
    "jiandaoyun": "商机.xlsx", "maven": "sales_pipeline.csv", "none": "opportunities.csv",
}
PRESETS = tuple(PRESET_FILES)

_STARTER = """\
# funnel_lab params: the {what}. Paths are relative to this file's folder.
# Put the export in data/raw/ (funnel_lab reads it and never writes there), then, in the project folder:
#   funnel-lab check params/{name}.yaml    # reads and cleans it, says what each report will do
#   funnel-lab run params/{name}.yaml      # every report -> reports/{name}/index.html
# Every key is in the funnel_lab README ("Point it at your own export"); an unknown key is an error.
run_name: {name}
title: Pipeline review
language: en                      # en | zh: the reports' language

data:
  opportunities:
    path: ../data/raw/{file}
    preset: {preset}{preset_note}
    # columns: {{opportunity_id: Id, status: Outcome, amount: Amount}}   # canonical name: your column
    # values: {{status: {{Won: won, Lost: lost, Open: open}}}}              # your values: canonical ones
  # stage_history: {{path: ../data/raw/stage_history.csv, columns: {{opportunity_id: Id, stage: Stage, entered_at: Date}}}}
  # activities: {{path: ../data/raw/activities.csv, columns: {{opportunity_id: Id, activity_type: Type, occurred_at: Date}}}}
  # experiment: {{path: ../data/raw/experiment.csv, columns: {{unit_id: user_id, variant: group, converted: converted}}}}

cleaning:
  placeholders: ["", "Select", "N/A", "unknown", "未知", "-"]   # read as missing
  dedupe: {{keys: [opportunity_id]}}

stages:
  model: v1
  order: [potential, intent, evaluation, decision]   # ascending; won/lost come from the status
  labels: {{zh: {{potential: 潜在客户, intent: 意向客户, evaluation: 评估客户, decision: 决策客户}}}}
  # the stage-design report needs rules (or a points score); `order` alone serves the funnel and the forecast
  # method: rules
  # rules: {{potential: "True", intent: "meetings >= 1", evaluation: "demo or trial", decision: "quote_sent"}}

forecast: {{horizon_days: 90, simulations: 10000}}
monitoring: {{period: W, alert_sigma: 3}}    # the run history: reports/{name}/history/
# alerts:                                   # new breaches delivered; secrets from the environment
#   webhook: {{url: "${{ALERT_WEBHOOK}}"}}
#   email: {{smtp_url: "${{SMTP_URL}}", to: [sales-director@example.com]}}
"""

_README = """\
# {folder}

A funnel_lab analysis project.

```bash
funnel-lab check params/{params}    # reads and cleans the inputs, says what each report will do
funnel-lab run params/{params}      # every report -> reports/{run}/index.html
```

- `params/` — params files (`{params}`{demo_note}); edit them, merge several (`funnel-lab run a.yaml b.yaml`),
  or override one key (`--set stages.rules.intent="meetings >= 2"`).
- `data/raw/` — the CRM's exports as it wrote them; funnel_lab never writes there.
- `notebooks/` — the report notebooks, to open in JupyterLab (`jupyter lab notebooks/`); the runs use the ones
  that come with funnel_lab unless you pass `--notebooks notebooks` to run your edited copies.
- `reports/` — each run's HTML, data files and run history.
"""


def starter_params(preset: str = "none", name: str = "pipeline") -> str:
    """A commented params file for a ``preset`` export (``none``: any CSV/Excel with its columns mapped)."""
    if preset not in PRESET_FILES:
        raise ParamsError(f"--preset {preset}: expected one of {', '.join(PRESETS)}")
    note = ("   # map the columns below (or pick a --preset)" if preset == "none" else
            f"   # the {preset} export's columns and values are known")
    what = "your CRM export" if preset == "none" else f"{preset} export"
    return _STARTER.format(what=what, name=name, file=PRESET_FILES[preset], preset=preset, preset_note=note)


def init_project(folder: str | Path, *, preset: str = "none", demo: bool = False, rows: int = 20_000,
                 seed: int = 7) -> list[Path]:
    """Write a new project into ``folder`` (new or empty); returns the files written.

    Raises
    ------
    ParamsError
        ``folder`` holds files already (nothing is overwritten), or an unknown preset.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ParamsError(f"{folder}: not an empty folder; init writes a new project and overwrites nothing")
    name = "pipeline" if preset == "none" else preset
    text = starter_params(preset, name)
    written = []

    def write(rel: str, content: str) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)

    write(f"params/{name}.yaml", text)
    write("data/raw/README.md", "The CRM's exports, as it wrote them. funnel_lab reads them and never writes here.\n")
    write("reports/.gitkeep", "")
    write(".gitignore", "reports/*\n!reports/.gitkeep\ndata/\n.ipynb_checkpoints/\n")
    for nb in sorted(report_notebooks().glob("[0-9][0-9]_*.ipynb")):
        target = folder / "notebooks" / nb.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, target)
        written.append(target)
    if demo:
        from .data.demo import write_demo_data

        for p in DEMO_PARAMS:
            target = folder / "params" / p
            shutil.copyfile(bundled("params") / p, target)
            written.append(target)
        write_demo_data(folder / "data" / "demo", rows=rows, seed=seed)
        written.append(folder / "data" / "demo")
    params, run = ("demo.yaml", "demo") if demo else (f"{name}.yaml", name)
    note = f", and `demo.yaml` on the synthetic CRM in `data/demo/`; `{name}.yaml` is the starter for yours" if demo \
        else ""
    write("README.md", _README.format(folder=folder.name, params=params, run=run, demo_note=note))
    return written
