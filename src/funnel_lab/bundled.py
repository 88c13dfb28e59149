"""The folders that ship inside the package: the report notebooks and the demo's params.

A wheel carries them as ``funnel_lab/notebooks/`` and ``funnel_lab/params/`` (built from the repository's own
``notebooks/`` and ``params/``, see pyproject.toml); a checkout (an editable install) reads those folders directly.
Either way there is one copy of each file.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The demo's params files in the package (the examples on real data stay in the repository).
DEMO_PARAMS = ("demo.yaml", "demo_zh.yaml", "stages_v0.yaml")


def bundled(name: str) -> Path:
    """``notebooks`` or ``params`` as shipped: the checkout's folder when running from one, else the package's."""
    checkout = HERE.parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return HERE / name


def report_notebooks() -> Path:
    """The folder of the report notebooks this version runs by default."""
    return bundled("notebooks")
