"""SQL sources: a real PostgreSQL server started by the tests, a DuckDB file and a SQLite file, same table each."""

import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from conftest import cli

ROWS = [("OPP-1", "Won", "¥12,000", "2024-01-03", "上海远航科技有限公司"),
        ("OPP-2", "Lost", "1200.5", "2024-01-05", "Acme Corp."),
        ("OPP-3", "Open", "", "2024-02-01", "未知"),
        ("OPP-4", "Won", "3万", "2024-02-11", "Northwind Traders")]
CREATE = "create table opps (id text, outcome text, amount text, created text, account text)"


def params(folder, database: str, sql: str = "select * from opps order by id") -> None:
    (folder / "p.yaml").write_text(
        "run_name: sql\ndata:\n  opportunities:\n"
        f"    sql: \"{sql}\"\n    database: \"{database}\"\n"
        "    columns: {opportunity_id: id, status: outcome, amount: amount, created_at: created, account: account}\n"
        "    values: {status: {Won: won, Lost: lost, Open: open}}\n", encoding="utf-8")


def fill(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("drop table if exists opps")
        conn.exec_driver_sql(CREATE)
        for row in ROWS:
            conn.exec_driver_sql("insert into opps values (%s, %s, %s, %s, %s)" if url.startswith("postgresql")
                                 else "insert into opps values (?, ?, ?, ?, ?)", row)
    engine.dispose()


def load(folder):
    import funnel_lab as fl

    return fl.load(folder / "p.yaml").cleaned_table("opportunities").data


def check_table(df) -> None:
    assert df["opportunity_id"].tolist() == ["OPP-1", "OPP-2", "OPP-3", "OPP-4"]
    assert df["status"].tolist() == ["won", "lost", "open", "won"]
    assert df["amount"].tolist()[:2] == [12000.0, 1200.5] and df["amount"].iloc[3] == 30000.0
    assert df["account"].iloc[0] == "上海远航科技有限公司" and df["account"].isna().iloc[2]
    assert str(df["created_at"].iloc[3]) == "2024-02-11 00:00:00"


def test_postgresql(postgres_url, tmp_path):
    fill(postgres_url)
    params(tmp_path, postgres_url)
    check_table(load(tmp_path))
    res = cli("check", "p.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "4 rows read,         4 after cleaning" in res.stdout


def test_postgresql_bad_query_exits_2_naming_the_query(postgres_url, tmp_path):
    params(tmp_path, postgres_url, sql="select * from nosuchtable")
    res = cli("check", "p.yaml", cwd=tmp_path)
    assert res.returncode == 2
    assert "select * from nosuchtable" in res.stderr and "nosuchtable" in res.stderr.split("failed:")[1]
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_database_files(tmp_path, kind):
    path = tmp_path / f"crm.{kind}"
    if kind == "sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute(CREATE)
            conn.executemany("insert into opps values (?, ?, ?, ?, ?)", ROWS)
    else:
        import duckdb

        with duckdb.connect(str(path)) as conn:
            conn.execute(CREATE)
            conn.executemany("insert into opps values (?, ?, ?, ?, ?)", ROWS)
    params(tmp_path, str(path))
    check_table(load(tmp_path))


def test_database_url_from_the_environment_and_masked_in_the_manifest(postgres_url, tmp_path, monkeypatch):
    from funnel_lab.runner import run_reports

    fill(postgres_url)
    secret_url = postgres_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores the password
    monkeypatch.setenv("FL_TEST_DB", secret_url)
    params(tmp_path, "${FL_TEST_DB}")
    check_table(load(tmp_path))
    (tmp_path / "nb").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "notebooks" / "01_works.ipynb", tmp_path / "nb")
    code, run_dir = run_reports([tmp_path / "p.yaml"], out=tmp_path / "out", notebooks_dir=tmp_path / "nb")
    assert code == 0
    written = "".join(p.read_text(encoding="utf-8") for p in run_dir.glob("*.*") if p.suffix in (".json", ".yaml", ".html"))
    assert "s3cret" not in written and "${FL_TEST_DB}" in written
