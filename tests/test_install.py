"""Installable like any Python tool: the wheel carries the notebooks and the demo's params, ``funnel-lab init``
writes a project, and a wheel installed into a fresh virtualenv runs every report from an empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import FUNNEL_LAB, ROOT
from funnel_lab.bundled import DEMO_PARAMS
from funnel_lab.config import load_params
from funnel_lab.scaffold import PRESETS, init_project

PACKAGE = ROOT / "src" / "funnel_lab"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_pyproject_names_every_package_and_the_bundled_folders():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {"funnel_lab." + ".".join(p.parent.relative_to(PACKAGE).parts) if p.parent != PACKAGE else "funnel_lab"
             for p in PACKAGE.rglob("__init__.py")}
    assert set(cfg["packages"]) == found | {"funnel_lab.notebooks", "funnel_lab.params"}
    assert cfg["package-dir"] == {"": "src", "funnel_lab.notebooks": "notebooks", "funnel_lab.params": "params"}


@pytest.mark.parametrize("preset", PRESETS)
def test_init_writes_a_project_whose_starter_params_load(tmp_path, preset):
    init_project(tmp_path / "proj", preset=preset)
    name = "pipeline" if preset == "none" else preset
    params = load_params([tmp_path / "proj" / "params" / f"{name}.yaml"])
    src = params.data.opportunities
    assert params.run_name == name and (src.preset or "none") == preset
    assert Path(src.path).parent == tmp_path / "proj" / "data" / "raw"
    assert [p.name for p in sorted((tmp_path / "proj" / "notebooks").glob("*.ipynb"))] == [p.name for p in NOTEBOOKS]
    readme = (tmp_path / "proj" / "README.md").read_text()
    assert f"funnel-lab check params/{name}.yaml" in readme and f"funnel-lab run params/{name}.yaml" in readme


def test_init_with_the_demo_is_ready_to_run(tmp_path):
    res = subprocess.run(FUNNEL_LAB + ["init", "proj", "--demo", "--rows", "300"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    proj = tmp_path / "proj"
    for nb in NOTEBOOKS:  # copies of this version's notebooks, to edit
        assert (proj / "notebooks" / nb.name).read_bytes() == nb.read_bytes()
    for p in DEMO_PARAMS:
        assert (proj / "params" / p).read_bytes() == (ROOT / "params" / p).read_bytes()
    check = subprocess.run(FUNNEL_LAB + ["check", "params/demo.yaml"], cwd=proj, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stderr
    assert "opportunities" in check.stdout and "will run  60_forecast_monitoring" in check.stdout
    assert f"notebooks from {ROOT / 'notebooks'}" in check.stdout  # the package's own (in a checkout, its folder)
    again = subprocess.run(FUNNEL_LAB + ["init", "proj"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def test_notebooks_dir_without_notebooks_is_an_error(demo_project, tmp_path):
    res = subprocess.run(FUNNEL_LAB + ["check", "params/demo.yaml", "--notebooks", str(tmp_path)], cwd=demo_project,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip() == (f"funnel-lab: error: --notebooks {tmp_path}: no report notebooks (NN_name.ipynb) "
                                  f"in this folder")


# --------------------------------------------------------------------------- the wheel, installed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet",
                          "--disable-pip-version-check", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("funnel_lab-*.whl")
    return whl


def test_the_wheel_carries_the_notebooks_and_the_demo_params(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for nb in NOTEBOOKS:
            assert z.read(f"funnel_lab/notebooks/{nb.name}") == nb.read_bytes()
        for p in DEMO_PARAMS:
            assert z.read(f"funnel_lab/params/{p}") == (ROOT / "params" / p).read_bytes()
    assert {"funnel_lab/locale/messages.yaml", "funnel_lab/runner/templates/run_index.html.j2"} <= names
    assert not [n for n in names if n.startswith(("tests/", "funnel_lab/params/examples"))]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A fresh virtualenv with the wheel and the locked versions; a home of its own (no user-level kernel)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_PATH",
                                                              "JUPYTER_DATA_DIR", "MPLCONFIGDIR")}
    env["HOME"] = str(root / "home")
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "-c",
                          str(ROOT / "requirements.lock"), str(wheel)], capture_output=True, text=True, timeout=1800,
                         env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return venv, env


def test_import_funnel_lab_stays_light(installed):
    venv, env = installed
    code = ("import sys, funnel_lab; heavy = ('IPython', 'papermill', 'nbconvert', 'nbclient', 'ipykernel', "
            "'jupyter_client'); print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))")
    res = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=300,
                         cwd="/", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_installed_kit_runs_every_report_from_an_empty_folder(installed, tmp_path):
    venv, env = installed
    exe = str(venv / "bin" / "funnel-lab")
    res = subprocess.run([exe, "init", "proj", "--demo", "--rows", "1500"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    proj = tmp_path / "proj"
    res = subprocess.run([exe, "run", "params/demo.yaml", "--jobs", "2"], cwd=proj, capture_output=True, text=True,
                         timeout=1800, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == str(proj / "reports" / "demo" / "index.html")
    manifest = json.loads((proj / "reports" / "demo" / "manifest.json").read_text())
    assert [(n["name"], n["status"]) for n in manifest["notebooks"]] == [(p.stem, "ok") for p in NOTEBOOKS]
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(manifest["notebooks_dir"]) == site / "funnel_lab" / "notebooks"
    # the kernel was missing in the fresh environment: registered for its interpreter, and the run said so
    assert manifest["kernel"]["registered_now"] and Path(manifest["kernel"]["python"]).parent == venv / "bin"
    assert Path(manifest["kernel"]["spec_dir"]).is_relative_to(venv) and "registered now" in res.stderr
    assert manifest["funnel_lab_commit"] is None  # no checkout here
