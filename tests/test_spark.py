"""The Spark engine: the demo's funnel reach, durations and behaviour features on a real local[2] Spark equal the
embedded DuckDB's (counts exactly, days and sums to 1e-9), and a Spark that cannot start is exit 2 naming engine."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

import funnel_lab as fl
from conftest import cli
from funnel_lab.analysis.funnel import deal_reach, stage_durations
from funnel_lab.engine import open_engine

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning:pyspark.*")


@pytest.fixture(scope="session")
def spark_pipelines(demo_project):
    """The small demo on the default engine and on Spark local[2] (one session for the whole test run)."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.fail("Java 17 is missing: `make test` installs openjdk-17-jre-headless (scripts/system-deps.sh)")
    duck = fl.load(demo_project / "params" / "demo.yaml")
    spark = duck.with_params({"engine.backend": "spark", "engine.master": "local[2]"})
    return duck, spark


def test_funnel_reach_and_durations_on_spark_equal_duckdb(spark_pipelines):
    duck, spark = spark_pipelines
    h, o, order, as_of = duck.history, duck.opportunities, list(duck.params.stages.order), duck.as_of
    with open_engine(spark.params.engine) as engine:
        assert engine.name == "spark"
        reach = deal_reach(h, o, order, engine=engine)
        durations = stage_durations(h, o, order, as_of=as_of, engine=engine)
    pd.testing.assert_frame_equal(reach, deal_reach(h, o, order))
    pd.testing.assert_frame_equal(durations, stage_durations(h, o, order, as_of=as_of), rtol=1e-9)
    assert reach["strict_reach"].gt(0).sum() > 1000 and durations["days"].sum() > 10_000  # real numbers compared


def test_behaviour_features_and_checks_on_spark_equal_duckdb(spark_pipelines):
    duck, spark = spark_pipelines
    a, b = spark.activity_log, duck.activity_log
    pd.testing.assert_frame_equal(a.features, b.features, rtol=1e-9)
    pd.testing.assert_frame_equal(a.quarantine, b.quarantine)
    pd.testing.assert_frame_equal(a.audit, b.audit)
    pd.testing.assert_frame_equal(a.types, b.types)
    assert a.features["activities_total"].sum() > 10_000 and len(a.quarantine) > 0


def test_the_funnel_report_tables_on_spark_equal_duckdb(spark_pipelines):
    duck, spark = spark_pipelines
    for name, frame in duck.funnel().outputs.items():
        pd.testing.assert_frame_equal(spark.funnel().outputs[name], frame, rtol=1e-9, obj=name)


@pytest.mark.parametrize("setting, env, message", [
    ("engine.master=local[two]", {}, "engine.master"),
    ("engine.master=local[2]", {"JAVA_HOME": "/nonexistent"}, "engine: Spark needs Java 17"),
    # nothing listens on port 1 here: refused at once, not after Spark's minute of registration retries
    ("engine.master=spark://127.0.0.1:1", {}, "engine.master: no Spark master answers at spark://127.0.0.1:1"),
])
def test_a_spark_that_cannot_start_is_exit_2_naming_engine(demo_project, monkeypatch, setting, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    res = cli("check", "params/demo.yaml", "--set", "engine.backend=spark", "--set", setting, cwd=demo_project)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
