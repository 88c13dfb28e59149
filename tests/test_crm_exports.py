"""CRM exports as the CRMs write them (issue 15), on the hand-built files in ``tests/fixtures/crm/``.

The expected counts and sums are the ones ``tests/fixtures/crm/README.md`` gives for each file (computed by its
builder from the rows it wrote, not by funnel_lab).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import funnel_lab as fl
from funnel_lab.data.presets._common import status_from_flags
from funnel_lab.errors import ParamsError

from conftest import ROOT, cli

CRM = ROOT / "tests" / "fixtures" / "crm"


def params_file(folder: Path, export: str, preset: str, **extra) -> Path:
    """A params file reading one fixture export with a preset (and any other keys of the table)."""
    table = {"path": str(CRM / export), "preset": preset, **extra.pop("table", {})}
    path = folder / f"{Path(export).stem}.yaml"
    path.write_text(yaml.safe_dump({"run_name": Path(export).stem, "data": {"opportunities": table}, **extra}))
    return path


def cleaned(folder: Path, export: str, preset: str, **extra):
    pipeline = fl.load(params_file(folder, export, preset, **extra))
    return pipeline, pipeline.cleaned["opportunities"]


def sums_by_status(df: pd.DataFrame) -> dict[str, float]:
    return {k: round(float(v), 2) for k, v in df.groupby("status")["amount"].sum().items()}


def notes(pipeline, kind: str) -> pd.DataFrame:
    n = pipeline.data_quality().export_notes
    return n[n["kind"] == kind]


# ---------------------------------------------------------------- 1. status from every flag


def test_hubspot_custom_closed_lost_stage_counts_by_preset_alone(tmp_path):
    p, c = cleaned(tmp_path, "hubspot_all_properties.csv", "hubspot")
    df = c.data
    assert len(df) == 31
    assert df["status"].value_counts().to_dict() == {"lost": 16, "won": 8, "open": 7}
    assert (df.loc[df["crm_stage"] == "Dead Deals", "status"] == "lost").all()
    # amount from "Amount in company currency"; the deal's own amount and currency stay features
    assert sums_by_status(df) == {"won": 112836.5, "lost": 120298.0, "open": 96416.0}
    assert round(df["deal_amount"].sum(), 2) == 327750.5
    assert "currency" not in df.columns and set(df["deal_currency"].dropna()) == {"USD", "EUR", "GBP"}


def test_hubspot_label_and_flag_disagreements_are_listed_by_stage(tmp_path):
    p, _ = cleaned(tmp_path, "hubspot_all_properties.csv", "hubspot")
    d = notes(p, "status_disagreement").set_index("value")
    assert d["rows"].to_dict() == {"Dead Deals": 10, "Closed Lost": 1}
    assert "flags say lost" in d.loc["Dead Deals", "detail"]
    assert "flags say open" in d.loc["Closed Lost", "detail"]
    assert (p.cleaned["opportunities"].data.set_index("opportunity_id").loc["18472051211", "status"] == "open")


@pytest.mark.parametrize("won, lost", [("Closed Won", "Closed Lost"), ("Closed: won", "Closed: lost"),
                                       ("Closed/Won", "Closed/Lost"), ("closed-won", "closed-lost"),
                                       ("CLOSED_WON", "CLOSED_LOST"), ("Closed (Won)", "Closed - Lost")])
def test_stage_label_spellings_read_alike(won, lost):
    df = pd.DataFrame({"crm_stage": [won, lost, "Closed Wonderland"]})
    assert status_from_flags(df, blank_is_false=False).tolist() == ["won", "lost", "open"]


def test_flag_precedence_explicit_then_numeric_then_label():
    df = pd.DataFrame({
        "_is_won": ["false", "", "", "", ""],
        "_is_closed": ["", "false", "", "", ""],
        "_closed_numeric": ["", "1.0", "1.0", "0.0", ""],
        "_open_numeric": ["", "", "1.0", "", "0.0"],
        "crm_stage": ["Closed Won", "Closed Lost", "Demo", "Closed Won", "Demo"],
    })
    # row 0: flagged not won, stage says closed -> lost; row 1: the explicit closed flag beats the numeric one;
    # row 2: numeric closed beats numeric open, the stage gives the outcome (not won -> lost);
    # row 3: numeric not-closed -> open whatever the label; row 4: not open -> closed, never open
    assert status_from_flags(df, blank_is_false=False).tolist() == ["lost", "open", "lost", "open", "lost"]


# ---------------------------------------------------------------- 2. repeated column names


def test_repeated_association_columns_are_kept_numbered_and_listed(tmp_path):
    p, c = cleaned(tmp_path, "hubspot_repeated_columns.csv", "hubspot")
    df = c.data
    assert df["status"].value_counts().to_dict() == {"open": 5, "won": 4, "lost": 3}
    second = df.set_index("opportunity_id")["associated_company_2"].dropna()
    assert sorted(second.index) == ["18590330011", "18590330134", "18590330257", "18590330380"]
    assert set(second) == {"Cobalt Resellers"} and df["associated_company"].notna().all()
    r = notes(p, "repeated_column").set_index("column")["detail"]
    assert r["Associated Company"] == "columns 10 and 11: the copies differ, so neither is read as account"
    assert r["Associated Company IDs"] == "columns 12 and 13"


def repeat_stage_column(folder: Path, *, change_row: int | None) -> tuple[Path, int]:
    """The repeated-columns export with ``Deal Stage`` written twice (the second copy changed on one row)."""
    with open(CRM / "hubspot_repeated_columns.csv", newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    stage = rows[0].index("Deal Stage")
    out = [r[:stage + 1] + r[stage:] for r in rows]
    if change_row is not None:
        out[change_row][stage + 1] = "Contract Sent (renegotiated)"
    with open(folder / "deals.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(out)
    path = folder / "p.yaml"
    path.write_text(yaml.safe_dump({"run_name": "r", "data": {"opportunities": {
        "path": str(folder / "deals.csv"), "preset": "hubspot"}}}))
    return path, stage + 1


def test_repeat_feeding_a_canonical_field_stops_naming_both_positions(tmp_path):
    path, position = repeat_stage_column(tmp_path, change_row=3)
    res = cli("check", str(path), cwd=tmp_path)
    assert res.returncode == 2
    assert "'Deal Stage'" in res.stderr and f"columns {position} and {position + 1}" in res.stderr
    assert "crm_stage" in res.stderr and "Traceback" not in res.stderr


def test_identical_copies_of_a_column_are_read_once(tmp_path):
    path, position = repeat_stage_column(tmp_path, change_row=None)
    p = fl.load(path)
    df = p.cleaned["opportunities"].data
    assert df["status"].value_counts().to_dict() == {"open": 5, "won": 4, "lost": 3}
    assert df["crm_stage"].equals(df["deal_stage_2"])
    detail = notes(p, "repeated_column").set_index("column").loc["Deal Stage", "detail"]
    assert detail == f"columns {position} and {position + 1}: identical copies, read once as crm_stage"


def test_params_naming_a_repeated_column_stop_naming_its_positions(tmp_path):
    path = params_file(tmp_path, "hubspot_repeated_columns.csv", "hubspot",
                       table={"columns": {"account": "Associated Company"}})
    with pytest.raises(ParamsError, match=r"'Associated Company'.*10 and 11"):
        fl.load(path).cleaned


# ---------------------------------------------------------------- 3. Zoho


def test_zoho_renamed_module_owner_probability_suffix_and_multiline_cells(tmp_path):
    p, c = cleaned(tmp_path, "zoho_opportunities_multicurrency.csv", "zoho")
    df = c.data
    assert len(df) == 20 and df["status"].value_counts().to_dict() == {"open": 9, "won": 6, "lost": 5}
    assert df["owner"].notna().all() and df["opportunity_id"].str.startswith("zcrm_").all()
    by_stage = df.drop_duplicates("crm_stage").set_index("crm_stage")["crm_probability"].to_dict()
    assert by_stage["Needs Analysis (20)"] == 20 and by_stage["Closed Won (100)"] == 100
    assert by_stage["Closed Lost to Competition (0)"] == 0
    # LF inside quoted cells, CRLF between records: read as 20 records whose cells keep their line breaks (cleaning
    # then folds white space, counted in the audit)
    raw = p.table("opportunities").data
    assert len(raw) == 20 and raw["description"].str.contains("\n").sum() == 4
    assert not raw["description"].str.contains("\r").any()
    assert notes(p, "guessed_rule")["column"].tolist() == ["crm_probability"]


def test_zoho_potentials_naming(tmp_path):
    _, c = cleaned(tmp_path, "zoho_potentials.csv", "zoho")
    df = c.data
    assert df["opportunity_id"].str.startswith("zcrm_").all() and df["owner"].notna().all()
    assert sums_by_status(df) == {"won": 22700.0, "lost": 19500.0, "open": 19100.0}
    assert df["crm_probability"].notna().all()


# ---------------------------------------------------------------- 4. Pipedrive


def test_pipedrive_deals_export(tmp_path):
    p, c = cleaned(tmp_path, "pipedrive_deals.csv", "pipedrive")
    df = c.data
    assert df["status"].value_counts().to_dict() == {"open": 9, "won": 7, "lost": 6}
    assert sums_by_status(df) == {"won": 78150.5, "lost": 46150.0, "open": 94000.0}
    assert c.currency == "EUR"
    assert c.quarantine["reason"].value_counts().to_dict() == {"deleted in the CRM (status 'Deleted')": 2}
    assert round(c.quarantine["Deal - Value"].astype(float).sum(), 2) == 13500.0
    raw = pd.read_csv(CRM / "pipedrive_deals.csv", dtype=str).set_index("Deal - ID")
    won = df[df["status"] == "won"].set_index("opportunity_id")
    assert (won["closed_at"] == pd.to_datetime(raw.loc[won.index, "Deal - Won time"])).all()
    assert {"deal_lost_reason", "deal_pipeline", "person_name"} <= set(df.columns)
    audit = c.audit.iloc[-1]
    assert audit["rows_in"] == 24 == audit["rows_out"] + audit["rows_removed"]


# ---------------------------------------------------------------- 5. money in one currency


def test_zoho_four_currencies_sum_in_the_home_currency(tmp_path):
    p, c = cleaned(tmp_path, "zoho_opportunities_multicurrency.csv", "zoho")
    df = c.data
    assert c.currency == "USD"
    assert round(df["amount"].sum(), 2) == 416200.0
    assert sums_by_status(df)["won"] == 114500.0 and sums_by_status(df)["open"] == 237900.0
    assert round(df["amount_original"].sum(), 2) == 15661775.0
    step = c.audit.set_index("step").loc["currency"]
    assert step["rows_changed"] == 13 and step["rows_removed"] == 0
    n = notes(p, "currency")
    assert n[["column", "value", "rows"]].values.tolist() == [["amount", "USD", 13]]


def test_mixed_currencies_without_rates_stop_naming_column_and_currencies(tmp_path):
    path = params_file(tmp_path, "pipedrive_deals_two_currencies.csv", "pipedrive")
    res = cli("check", str(path), cwd=tmp_path)
    assert res.returncode == 2
    assert "column 'currency'" in res.stderr and "EUR (6 rows), USD (4 rows)" in res.stderr
    assert "Traceback" not in res.stderr


def test_rates_in_params_convert_to_the_home_currency(tmp_path):
    path = params_file(tmp_path, "pipedrive_deals_two_currencies.csv", "pipedrive",
                       table={"values": {"fx": {"home": "EUR", "USD": 0.9}}})
    c = fl.load(path).cleaned["opportunities"]
    assert c.currency == "EUR"
    assert round(c.data["amount"].sum(), 2) == round(40600 + 47100 * 0.9, 2)


# ---------------------------------------------------------------- 7. params with no table


def test_params_with_no_table_exit_2_suggesting_the_file_to_merge_onto():
    res = cli("run", "params/demo_zh.yaml", cwd=ROOT)
    assert res.returncode == 2
    assert "data" in res.stderr and "params/demo.yaml params/demo_zh.yaml" in res.stderr
    assert "0 report(s)" not in res.stdout


# ---------------------------------------------------------------- end to end through funnel-lab run


def test_run_on_multicurrency_zoho_names_the_currency_where_money_is_summed(tmp_path):
    path = params_file(tmp_path, "zoho_opportunities_multicurrency.csv", "zoho", stages={
        "order": ["qualified", "analysis", "proposal"], "method": "rules",
        "rules": {"qualified": "True", "analysis": "crm_probability >= 20", "proposal": "crm_probability >= 60"}})
    res = cli("run", str(path), "--only", "00_data_quality", "60_forecast_monitoring", "--out",
              str(tmp_path / "reports"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "reports" / "zoho_opportunities_multicurrency"
    exported = pd.read_csv(run / "data" / "export_notes.csv")
    assert exported.set_index("kind")["rows"].to_dict() == {"guessed_rule": 20, "currency": 13}
    clean = pd.read_csv(run / "data" / "opportunities_clean.csv")
    assert round(clean["amount"].sum(), 2) == 416200.0
    waterfall = pd.read_csv(run / "data" / "pipeline_waterfall.csv").set_index("step")["amount"]
    assert waterfall["won"] == 2400000 / 150  # the one deal won in the period: JPY 2,400,000 at 150 per USD
    forecast_html = (run / "60_forecast_monitoring.html").read_text()
    assert "Amounts are in USD: 13 amounts in other currencies were converted" in forecast_html
    assert "expected (USD)" in forecast_html
    assert json.loads((run / "manifest.json").read_text())
