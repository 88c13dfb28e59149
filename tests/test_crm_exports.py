"""CRM exports as the CRMs write them (issue 15), on the hand-built files in ``tests/fixtures/crm/``.

The expected counts and sums are the ones ``tests/fixtures/crm/README.md`` gives for each file (computed by its
builder from the rows it wrote, not by funnel_lab).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
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
    assert re.search(r"should bring <strong>[\d,]+ USD</strong> in won revenue", forecast_html)
    assert json.loads((run / "manifest.json").read_text())


# ---------------------------------------------------------------- 6. stage history from snapshots

HUBSPOT_STAGES = ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
                  "Contract Sent"]
FUNNEL_STAGES = ["appointment", "qualified", "presentation", "decision", "contract"]


def write_weekly_snapshots(folder: Path, *, deals: int = 40, weeks: int = 8, seed: int = 3) -> list[Path]:
    """HubSpot "current view" deal exports saved each Monday (BOM, CRLF, every field quoted): deals appear when
    created, move on by one or two stages every week or two, and some close (a closed deal stays in the view)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-05-06", periods=weeks, freq="7D")
    plans = []
    for i in range(deals):
        created = int(rng.integers(0, weeks - 1))
        path, week, stage, outcome = [], created, 0, None
        while week < weeks:
            path.append((week, stage))
            week += int(rng.integers(1, 3))
            r = rng.random()
            if r < 0.15 or (stage == len(HUBSPOT_STAGES) - 1 and r < 0.6):
                outcome = ("Closed Lost" if r < 0.15 else "Closed Won", week)
                break
            stage = min(stage + int(rng.integers(1, 3)), len(HUBSPOT_STAGES) - 1)
        plans.append((f"1847{7000000 + i}", created, path, outcome))
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Is Closed Won",
              "Is closed lost", "Pipeline"]
    files = []
    for w, day in enumerate(dates):
        rows = [header]
        for rid, created, path, outcome in plans:
            if created > w:
                continue
            label = HUBSPOT_STAGES[[s for wk, s in path if wk <= w][-1]]
            closed = outcome is not None and outcome[1] <= w
            label = outcome[0] if closed else label
            close = dates[min(outcome[1], weeks - 1)] if closed else day + pd.Timedelta(days=30)
            rows.append([rid, f"Deal {rid[-3:]}", label, "12000.0", f"{close:%Y-%m-%d} 00:00",
                         f"{dates[created]:%Y-%m-%d} 09:00", str(label == "Closed Won").lower(),
                         str(label == "Closed Lost").lower(), "Sales Pipeline"])
        files.append(folder / f"hubspot-crm-exports-deals-{day:%Y-%m-%d}.csv")
        with open(files[-1], "w", newline="", encoding="utf-8-sig") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return files


def snapshot_params(folder: Path, files: list[Path], **snapshots) -> Path:
    path = folder / "snapshots.yaml"
    path.write_text(yaml.safe_dump({
        "run_name": "snapshots",
        "data": {"opportunities": {"path": str(files[-1]), "preset": "hubspot"},
                 "snapshots": {"path": str(folder / "hubspot-crm-exports-deals-*.csv"),
                               "values": {"stage": dict(zip(HUBSPOT_STAGES, FUNNEL_STAGES))}, **snapshots}},
        "stages": {"order": FUNNEL_STAGES, "method": "rules", "rules": {
            s: "True" if i == 0 else f"crm_stage in {HUBSPOT_STAGES[i:] + ['Closed Won']}"
            for i, s in enumerate(FUNNEL_STAGES)}},
    }, sort_keys=False))
    return path


def independent_reach(files: list[Path]) -> dict[str, int]:
    """Deals reaching each stage, counted straight from the snapshot files: a deal reached every stage up to the
    furthest it was ever seen in (won: all of them)."""
    seen = pd.concat([pd.read_csv(f, dtype=str, encoding="utf-8-sig") for f in files])
    rank = seen["Deal Stage"].map({**{s: i for i, s in enumerate(HUBSPOT_STAGES)},
                                   "Closed Won": len(HUBSPOT_STAGES)})
    furthest = rank.groupby(seen["Record ID"]).max()
    reach = {s: int((furthest >= i).sum()) for i, s in enumerate(FUNNEL_STAGES)}
    return {**reach, "won": int((furthest == len(HUBSPOT_STAGES)).sum())}


def test_snapshots_give_the_funnel_an_independent_count_gives(tmp_path):
    files = write_weekly_snapshots(tmp_path)
    p = fl.load(snapshot_params(tmp_path, files))
    funnel = p.funnel().funnel
    got = funnel[funnel["mode"] == "any"].set_index("stage")["reached"].astype(int).to_dict()
    assert got == independent_reach(files)
    assert got["won"] > 0 and got["contract"] < got["appointment"]
    # one entry per deal and stage seen, dated by the first snapshot showing it (deals here never move back)
    seen = pd.concat([pd.read_csv(f, dtype=str, encoding="utf-8-sig").assign(day=f.stem[-10:]) for f in files])
    labels = {**dict(zip(HUBSPOT_STAGES, FUNNEL_STAGES)), "Closed Won": "won", "Closed Lost": "lost"}
    expected = seen.assign(stage=seen["Deal Stage"].map(labels)).groupby(["Record ID", "stage"])["day"].min()
    history = p.history
    got_entries = history.assign(day=history["entered_at"].dt.strftime("%Y-%m-%d")).set_index(
        ["opportunity_id", "stage"])["day"]
    assert len(got_entries) == len(expected) and got_entries.to_dict() == expected.to_dict()
    note = p.data_quality().export_notes.set_index("kind").loc["snapshot_history"]
    assert note["value"] == "8 snapshots, 2024-05-06 to 2024-06-24" and note["rows"] == len(history)


def test_snapshot_date_from_a_column_gives_the_same_history(tmp_path):
    files = write_weekly_snapshots(tmp_path)
    by_name = fl.load(snapshot_params(tmp_path, files)).history
    stacked = pd.concat([pd.read_csv(f, dtype=str, encoding="utf-8-sig").assign(**{"Snapshot Date": f.stem[-10:]})
                         for f in files])
    one = tmp_path / "one" / "all_snapshots.csv"
    one.parent.mkdir()
    stacked.to_csv(one, index=False)
    params = yaml.safe_load(snapshot_params(tmp_path, files).read_text())
    params["data"]["snapshots"].update(path=str(one), date_column="Snapshot Date")
    (tmp_path / "column.yaml").write_text(yaml.safe_dump(params))
    by_column = fl.load(tmp_path / "column.yaml").history
    pd.testing.assert_frame_equal(by_name, by_column)


@pytest.mark.parametrize("change, message", [
    ({"path": "nothing-*.csv"}, "data.snapshots.path: '.*nothing-\\*.csv' matches no file"),
    ({"path": "undated.csv"}, "no date in the file name '.*undated.csv' or its folders"),
    ({"date_column": "Snapshot Date"}, "data.snapshots.date_column: no column 'Snapshot Date'"),
    ({"path": "twice/*.csv"}, "deals-2024-05-06.csv, export-20240506.csv have the same date"),
])
def test_bad_snapshots_exit_2_naming_what_is_wrong(tmp_path, change, message):
    files = write_weekly_snapshots(tmp_path, weeks=3)
    (tmp_path / "undated.csv").write_bytes(files[0].read_bytes())
    (tmp_path / "twice").mkdir()
    for name in ("deals-2024-05-06.csv", "export-20240506.csv"):
        (tmp_path / "twice" / name).write_bytes(files[0].read_bytes())
    params = yaml.safe_load(snapshot_params(tmp_path, files).read_text())
    params["data"]["snapshots"].update({k: str(tmp_path / v) if k == "path" else v for k, v in change.items()})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(params))
    res = cli("check", str(tmp_path / "bad.yaml"), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert re.search(message, res.stderr), res.stderr


def test_snapshots_and_a_history_export_are_not_both_taken(tmp_path):
    files = write_weekly_snapshots(tmp_path, weeks=2)
    params = yaml.safe_load(snapshot_params(tmp_path, files).read_text())
    params["data"]["stage_history"] = {"path": str(files[0])}
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(params))
    res = cli("check", str(tmp_path / "both.yaml"), cwd=tmp_path)
    assert res.returncode == 2 and "not both" in res.stderr


def test_run_from_snapshots_says_entries_are_known_to_the_snapshot_date(tmp_path):
    files = write_weekly_snapshots(tmp_path)
    res = cli("run", str(snapshot_params(tmp_path, files)), "--only", "20_funnel", "60_forecast_monitoring",
              "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "reports" / "snapshots"
    sentence = ("The stage history is built from 8 snapshots of the pipeline (2024-05-06 to 2024-06-24): a stage "
                "entry is known only to the date of the first snapshot that shows it. It happened on that date or "
                "up to 7 days before")
    for report in ("20_funnel", "60_forecast_monitoring"):
        assert sentence in re.sub(r"\s+", " ", (run / f"{report}.html").read_text()), report
    funnel = pd.read_csv(run / "data" / "funnel.csv")
    got = funnel[funnel["mode"] == "any"].set_index("stage")["reached"].to_dict()
    assert got == independent_reach(files)
    # every snapshot file is an input of the run, with its checksum
    inputs = {i["path"]: i for i in json.loads((run / "manifest.json").read_text())["inputs"]}
    for f in files:
        assert inputs[str(f)]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert inputs[str(f)]["table"] == f"stage_history snapshot {f.stem[-10:]}"


def test_hubspot_date_entered_columns_become_the_history(tmp_path):
    files = write_weekly_snapshots(tmp_path)
    seen = pd.concat([pd.read_csv(f, dtype=str, encoding="utf-8-sig").assign(day=f.stem[-10:]) for f in files])
    first = seen.groupby(["Record ID", "Deal Stage"])["day"].min().unstack()
    stages = HUBSPOT_STAGES + ["Closed Won", "Closed Lost"]
    latest = pd.read_csv(files[-1], dtype=str, encoding="utf-8-sig").set_index("Record ID")
    for stage in stages:  # HubSpot's header and minute-precision datetimes; blank: never entered
        latest[f'Date entered "{stage} (Sales Pipeline)"'] = (first[stage] + " 08:30").reindex(latest.index)
    deals = tmp_path / "deals" / "hubspot-crm-exports-all-deals.csv"
    deals.parent.mkdir()
    latest.reset_index().to_csv(deals, index=False, quoting=csv.QUOTE_ALL, encoding="utf-8-sig", lineterminator="\r\n")
    labels = {f"{s} (Sales Pipeline)": f for s, f in zip(stages, FUNNEL_STAGES + ["won", "lost"])}
    params = yaml.safe_load(snapshot_params(tmp_path, files).read_text())
    del params["data"]["snapshots"]
    params["data"]["opportunities"]["path"] = str(deals)
    params["data"]["stage_history"] = {"path": str(deals), "preset": "hubspot_history", "values": {"stage": labels}}
    (tmp_path / "entered.yaml").write_text(yaml.safe_dump(params))
    p = fl.load(tmp_path / "entered.yaml")
    history = p.history
    assert len(history) == int(first.notna().sum().sum())
    assert (history["entered_at"].dt.strftime("%H:%M") == "08:30").all()
    funnel = p.funnel().funnel
    assert funnel[funnel["mode"] == "any"].set_index("stage")["reached"].astype(int).to_dict() == \
        independent_reach(files)
    note = p.data_quality().export_notes.set_index("kind").loc["reshaped"]
    assert note["detail"].startswith(f"{len(latest)} deals x 7 `Date entered` columns: {len(history)} stage entries")


def test_salesforce_multicurrency_org_currency_iso_code(tmp_path):
    export = tmp_path / "Opportunity.csv"
    export.write_text('"Id","StageName","Amount","CurrencyIsoCode","IsClosed","IsWon","CreatedDate","CloseDate"\n'
                      '"0061","Closed Won","1000","EUR","true","true","2024-01-02T10:00:00.000Z","2024-02-01"\n'
                      '"0062","Prospecting","2000","USD","false","false","2024-01-03T10:00:00.000Z","2024-03-01"\n'
                      '"0063","Closed Lost","500","GBP","true","false","2024-01-04T10:00:00.000Z","2024-02-11"\n')
    path = params_file(tmp_path, str(export), "salesforce")
    res = cli("check", str(path), cwd=tmp_path)
    assert res.returncode == 2 and "EUR (1 row), GBP (1 row), USD (1 row)" in res.stderr
    path = params_file(tmp_path, str(export), "salesforce",
                       table={"values": {"fx": {"home": "USD", "EUR": 1.1, "GBP": 1.25}}})
    c = fl.load(path).cleaned["opportunities"]
    assert c.data.set_index("opportunity_id")["amount"].round(2).to_dict() == {"0061": 1100.0, "0062": 2000.0,
                                                                               "0063": 625.0}


# ---------------------------------------------------------------- edge cases of real exports


def test_blank_currency_cells_are_never_summed_silently():
    from funnel_lab.data.currency import to_home_currency

    df = pd.DataFrame({"amount": [100.0, 200.0, 300.0, 50.0], "currency": ["EUR", "", None, "USD"],
                       "exchange_rate": [0.9, 150.0, 1.0, 1.0]})
    out, home, changed, detail = to_home_currency(df, None, where="t")
    # no currency but a rate: converted by it; no currency at rate 1: the home currency (filled, and said)
    assert out["amount"].round(4).tolist() == [round(100 / 0.9, 4), round(200 / 150, 4), 300.0, 50.0]
    assert home == "USD" and out["currency"].fillna("-").tolist() == ["EUR", "-", "USD", "USD"]
    assert list(changed) == [0, 1, 2]
    assert detail == ("2 amounts in EUR (1 row), no currency (1 row) converted to USD by amount / exchange_rate "
                      "(units of the currency per one USD); 1 amounts without a currency taken as USD (exchange_rate 1)")
    with pytest.raises(ParamsError, match="missing or not positive on 1 rows whose currency is not USD or is blank"):
        to_home_currency(df.assign(exchange_rate=[0.9, None, 1.0, 1.0]), None, where="t")
    with pytest.raises(ParamsError, match="blank on 1 rows with an amount"):
        to_home_currency(pd.DataFrame({"amount": [1.0, 2.0, 3.0], "currency": ["EUR", "USD", ""]}),
                         {"home": "EUR", "USD": 0.9}, where="t")
    out, home, changed, detail = to_home_currency(
        pd.DataFrame({"amount": [1.0, 2.0, None], "currency": ["EUR", "", ""]}), None, where="t")
    assert home == "EUR" and out["currency"].tolist()[:2] == ["EUR", "EUR"] and list(changed) == [1]
    assert detail == "1 amounts without a currency taken as EUR, the only currency named"


def test_home_currency_rows_must_have_rate_one():
    from funnel_lab.data.currency import to_home_currency

    df = pd.DataFrame({"amount": [100.0, 200.0, 5.0], "currency": ["USD", "EUR", "USD"],
                       "exchange_rate": [1.0, 0.925, 10.0]})
    with pytest.raises(ParamsError, match=r"'exchange_rate' is not 1 on 1 rows in the home currency USD \(data rows 3\)"):
        to_home_currency(df, None, where="t")


def test_mixed_currency_message_names_the_export_column(tmp_path):
    path = params_file(tmp_path, "pipedrive_deals_two_currencies.csv", "pipedrive")
    res = cli("check", str(path), cwd=tmp_path)
    assert "column 'currency' (the export's 'Deal - Currency') holds 2 currencies" in res.stderr


def test_a_repeated_amount_follows_the_presets_rule(tmp_path):
    """HubSpot's Amount is the deal's own currency: repeated or not, it is summed only with its currency known."""
    with open(CRM / "hubspot_all_properties.csv", newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    company = rows[0].index("Amount in company currency")
    rows = [r[:company] + r[company + 1:] for r in rows]  # only the deal's own amount, in three currencies
    amount = rows[0].index("Amount")
    rows = [r + [r[amount]] for r in rows]
    with open(tmp_path / "deals.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"run_name": "r", "data": {"opportunities": {
        "path": str(tmp_path / "deals.csv"), "preset": "hubspot"}}}))
    res = cli("check", str(path), cwd=tmp_path)
    assert res.returncode == 2 and "holds 3 currencies" in res.stderr, res.stderr


def test_snapshot_blank_stage_deleted_deal_and_outcome_before_the_first_snapshot():
    from funnel_lab.data.snapshots import history_from_snapshots

    days = pd.to_datetime(["2024-05-06", "2024-05-13", "2024-05-20"])
    s = pd.DataFrame({
        "opportunity_id": ["a", "a", "a", "b", "b", "c"],
        "crm_stage": ["Demo", None, "Demo", "Demo", "Demo", "Closed Won"],
        "status": ["open", "open", "open", "open", "deleted", "won"],
        "closed_at": pd.to_datetime([None, None, None, None, None, "2023-03-01"]),
        "expected_close_at": [None] * 6,
        "snapshot_date": days[[0, 1, 2, 0, 1, 0]], "snapshot_file": ["w1", "w2", "w3", "w1", "w2", "w1"]})
    h = history_from_snapshots(s)
    # a's blank stage is no entry and does not split its stay; b's deleted row is no entry; c won long ago
    assert h[["opportunity_id", "stage"]].values.tolist() == [["a", "Demo"], ["b", "Demo"], ["c", "won"]]
    assert h.set_index("opportunity_id").loc["c", "entered_at"] == pd.Timestamp("2023-03-01")


def test_snapshots_in_dated_folders_and_empty_path(tmp_path):
    files = write_weekly_snapshots(tmp_path, weeks=3)
    moved = []
    for f in files:
        folder = tmp_path / "exports" / f.stem[-10:].replace("-", "")
        folder.mkdir(parents=True)
        moved.append(folder / "deals.csv")
        f.rename(moved[-1])
    params = yaml.safe_load(snapshot_params(tmp_path, moved).read_text())
    params["data"]["snapshots"]["path"] = str(tmp_path / "exports" / "*" / "deals.csv")
    (tmp_path / "folders.yaml").write_text(yaml.safe_dump(params))
    p = fl.load(tmp_path / "folders.yaml")
    read = p.table("stage_history").snapshots
    assert [f"{d:%Y%m%d}" for d in read["snapshot_date"]] == ["20240506", "20240513", "20240520"]
    assert read["sha256"].tolist() == [hashlib.sha256(f.read_bytes()).hexdigest() for f in moved]
    params["data"]["snapshots"]["path"] = []
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump(params))
    res = cli("check", str(tmp_path / "empty.yaml"), cwd=tmp_path)
    assert res.returncode == 2 and "name the snapshot files" in res.stderr and "Traceback" not in res.stderr
