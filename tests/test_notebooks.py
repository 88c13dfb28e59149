"""The committed notebooks: thin, stripped, parameterised, on the project's kernel (nbval executes them too)."""

import ast
from pathlib import Path

import nbformat
import pytest

from funnel_lab.runner.registry import NOTEBOOKS
from funnel_lab.runner.registry import REGISTRY

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NB_DIR.glob("*.ipynb"))


def test_notebooks_are_named_and_registered():
    assert ALL, "no notebooks committed"
    for path in ALL:
        assert path.stem in NOTEBOOKS and path.stem in REGISTRY, path.name


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_is_stripped_thin_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "funnel-lab"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assigned = {t.id for node in ast.parse(params[0].source).body for t in node.targets}
    assert assigned == {"params_file", "out_dir"}, "the parameters cell holds plain defaults only"
    for cell in code:
        tree = ast.parse(cell.source)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defs, f"functions belong in src/funnel_lab, not in {path.name}: {cell.source[:60]}"
