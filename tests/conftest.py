"""Shared fixtures: a small demo dataset, a finished demo run, and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
FUNNEL_LAB = [sys.executable, "-m", "funnel_lab.cli"]
#: The fixture notebooks are run by the runner tests, never collected by nbval.
collect_ignore_glob = ["fixtures/*"]


def pytest_collection_modifyitems(items):
    """Under `make mutants`, run a mutant's tests fastest first (mutmut stops at the first failure, so most mutants
    are killed by their cheapest test); a module's tests stay together so that its fixtures are built once."""
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from mutants/, beside its stats
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", "") or not stats.exists():
        return
    import json

    seconds = json.loads(stats.read_text(encoding="utf-8"))["duration_by_test"]

    def file(item) -> str:
        return item.nodeid.split("::")[0]

    fastest: dict[str, float] = {}
    for item in items:
        fastest[file(item)] = min(fastest.get(file(item), float("inf")), seconds.get(item.nodeid, 0.0))
    items.sort(key=lambda item: (fastest[file(item)], file(item), seconds.get(item.nodeid, 0.0)))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _project(tmp_path_factory, name: str, *, rows: int, seed: int) -> Path:
    from funnel_lab.data.demo import write_demo_data

    root = tmp_path_factory.mktemp(name)
    shutil.copytree(ROOT / "params", root / "params")
    write_demo_data(root / "data" / "demo", rows=rows, seed=seed)
    return root


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """A copy of the project's params with a small demo dataset beside it (params/, data/demo/)."""
    return _project(tmp_path_factory, "project", rows=1500, seed=11)


@pytest.fixture(scope="session")
def demo_default(tmp_path_factory) -> Path:
    """A project with the demo at the generator's default size and seed (20,000 rows, seed 7): `make report`'s."""
    return _project(tmp_path_factory, "demo_default", rows=20_000, seed=7)


@pytest.fixture(scope="session")
def demo_run(demo_project) -> Path:
    """``funnel-lab run params/demo.yaml`` on the small demo, through the console entry point; the run folder."""
    out = demo_project / "reports"
    # every pipeline step of the run, the runner's and the kernels', is traced (test_pipeline counts them)
    env = {**os.environ, "FUNNEL_LAB_TRACE": str(demo_project / "demo_run_trace.jsonl")}
    res = subprocess.run(FUNNEL_LAB + ["run", "params/demo.yaml", "--out", str(out)], cwd=demo_project,
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    return out / "demo"


@pytest.fixture(scope="session")
def zh_run(demo_project, tmp_path_factory) -> Path:
    """``funnel-lab run params/demo.yaml params/demo_zh.yaml`` on the small demo: the Chinese run's folder."""
    out = tmp_path_factory.mktemp("zh_reports")
    res = subprocess.run(FUNNEL_LAB + ["run", "params/demo.yaml", "params/demo_zh.yaml", "--out", str(out)],
                         cwd=demo_project, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out / "demo_zh"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``funnel-lab`` as a user would and capture what it prints."""
    return subprocess.run(FUNNEL_LAB + list(args), cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real CRM exports. Missing is a failure, never a skip."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the real-data tests need ../shared/data beside the project"
                    + (" (CI=true)" if os.environ.get("CI") else ""))
    return SHARED_DATA


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by playwright. Missing is a failure (`make test` installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: `make test` installs Debian's chromium; the HTML checks need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        yield b
        b.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on a Unix socket (no TCP), as an SQLAlchemy URL. Missing is a failure."""
    import glob
    import shutil as sh
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL not found (/usr/lib/postgresql/*/bin/initdb): `make test` installs Debian's postgresql")
    bindir = Path(found[-1]).parent
    # The server refuses to run as root: run it as the postgres account that Debian's package creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="funnel_lab_pg_", dir="/tmp"))
    if as_user:
        sh.chown(folder, "postgres", "postgres")
    data, port = folder / "data", "54329"
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                              "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    opts = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(folder / "log"),
                              "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        sh.rmtree(folder, ignore_errors=True)
