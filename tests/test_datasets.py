"""The demo CRM's files, checked against values recomputed from the files themselves."""

from __future__ import annotations

import difflib
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from funnel_lab.data.demo import make_demo_tables, write_demo_data

ROWS = 20_000
AS_OF = pd.Timestamp("2026-06-30")
AS_OF_END = pd.Timestamp("2026-06-30 23:59:59")
FILES = ("opportunities.csv", "stage_history.csv", "experiment.csv", "activities.csv", "ground_truth.json")
OPEN_STAGES = {"potential": 0, "intent": 1, "evaluation": 2, "decision": 3}
BOOL_COLUMNS = ("Demo", "Trial", "Quote Sent", "Budget Confirmed", "Decision Maker Engaged")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    truth = write_demo_data(out, rows=ROWS, seed=7)
    return out, truth


@pytest.fixture(scope="module")
def opportunities(demo):
    out, _ = demo
    return _read(out / "opportunities.csv")


@pytest.fixture(scope="module")
def clean(opportunities, demo):
    return _clean_opportunities(opportunities, demo[1])


def _read(path):
    # Everything as text, so placeholders such as "N/A" and "" stay visible.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse_amount(text: str) -> float:
    text = text.strip().replace("¥", "").replace("$", "").replace(",", "")
    if not text:
        return np.nan
    if text.endswith("万"):
        return round(float(text[:-1]) * 10_000, 2)
    return float(text)


def _canonical(values: pd.Series, levels: list[str], placeholders: list[str]) -> pd.Series:
    """Case- and space-insensitive match to known levels; placeholders become missing."""
    lookup = {level.lower(): level for level in levels}
    keyed = values.where(~values.isin(placeholders)).str.strip().str.lower()
    return keyed.map(lookup)


def _clean_opportunities(raw: pd.DataFrame, gt: dict) -> pd.DataFrame:
    """One clean row per true opportunity, parsed with the ground truth's maps only."""
    dirt = gt["dirt"]
    near_ids = {dup for _, dup in dirt["near_duplicates"]}
    df = raw.drop_duplicates()
    df = df[~df["Opportunity ID"].isin(near_ids)].copy()
    tokens = dirt["placeholder_tokens"]
    out = pd.DataFrame({"opportunity_id": df["Opportunity ID"]})
    out["outcome"] = df["Outcome"].map(dirt["outcome_label_map"])
    out["stage"] = df["Stage"].map(dirt["stage_label_map"])
    out["source"] = _canonical(df["Lead Source"], gt["sources"], tokens)
    out["segment"] = _canonical(df["Segment"], gt["segments"], tokens)
    out["amount"] = df["Amount"].map(_parse_amount)
    for col in ("Visits", "Downloads", "Emails Replied", "Meetings", "Probability (%)"):
        out[col.lower().replace(" ", "_").replace("(%)", "pct").strip("_")] = df[col].astype(int)
    out["minutes_on_site"] = df["Minutes On Site"].astype(float)
    for col in BOOL_COLUMNS:
        out[col.lower().replace(" ", "_")] = df[col].map(dirt["bool_label_map"]).astype(bool)
    for col in ("Created Date", "Close Date", "Expected Close Date"):
        out[col.lower().replace(" ", "_")] = pd.to_datetime(df[col].replace("", None), format="%Y-%m-%d")
    return out.set_index("opportunity_id").sort_index()


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a = write_demo_data(tmp_path / "a", rows=1_000, seed=7)
    b = write_demo_data(tmp_path / "b", rows=1_000, seed=7)
    write_demo_data(tmp_path / "c", rows=1_000, seed=8)
    for name in FILES:
        assert _sha256(tmp_path / "a" / name) == _sha256(tmp_path / "b" / name), name
        assert _sha256(tmp_path / "a" / name) != _sha256(tmp_path / "c" / name), name
    assert a == b
    # Only the four files, no temp leftovers from the atomic writes.
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(FILES)


def test_ground_truth_file_is_the_returned_dict(demo):
    out, truth = demo
    text = (out / "ground_truth.json").read_text(encoding="utf-8")
    assert json.loads(text) == truth
    assert "赢单" in text  # Chinese written as is, not \u-escaped
    assert truth["seed"] == 7 and truth["rows"] == ROWS and truth["as_of"] == "2026-06-30"
    for name, n in truth["files"].items():
        assert len(_read(out / name)) == n


def test_rejects_too_few_rows():
    with pytest.raises(ValueError, match="rows"):
        make_demo_tables(rows=10)


def test_row_counts_and_duplicates(opportunities, demo):
    _, gt = demo
    dirt = gt["dirt"]
    exact, near = dirt["exact_duplicate_ids"], dirt["near_duplicates"]
    ids = opportunities["Opportunity ID"]
    assert len(exact) == len(near) == round(0.01 * ROWS)
    assert len(opportunities) == ROWS + len(exact) + len(near)
    assert ids.nunique() == ROWS + len(near)
    counts = ids.value_counts()
    assert sorted(counts[counts == 2].index) == sorted(exact)
    assert counts.max() == 2
    # The exact duplicates are verbatim copies.
    dup_rows = opportunities[ids.isin(exact)]
    assert len(dup_rows.drop_duplicates()) == len(exact)
    # Duplicates are spread through the file, not appended at the end.
    positions = np.flatnonzero(ids.duplicated(keep="first").to_numpy())
    assert positions.min() < len(opportunities) // 2
    true_ids = {f"OPP-{i:06d}" for i in range(1, ROWS + 1)}
    assert set(ids) == true_ids | {dup for _, dup in near}


def test_near_duplicates_are_account_variants(opportunities, demo):
    dirt = demo[1]["dirt"]
    by_id = opportunities.drop_duplicates().set_index("Opportunity ID")
    changed = dirt["near_duplicate_changed_field"]
    assert 0.3 < len(changed) / len(dirt["near_duplicates"]) < 0.7
    for original, duplicate in dirt["near_duplicates"]:
        a, b = by_id.loc[original], by_id.loc[duplicate]
        assert a["Account Name"] != b["Account Name"]
        ratio = difflib.SequenceMatcher(None, a["Account Name"].casefold().strip(),
                                        b["Account Name"].casefold().strip()).ratio()
        assert ratio >= 0.6, (a["Account Name"], b["Account Name"])
        differing = {c for c in by_id.columns if a[c] != b[c]} - {"Account Name"}
        assert differing == ({changed[duplicate]} if duplicate in changed else set())


def test_dirt_counts_recomputed_from_file(opportunities, demo):
    _, gt = demo
    dirt = gt["dirt"]
    tokens = dirt["placeholder_tokens"]
    for col, expected in dirt["placeholders"].items():
        seen = opportunities[col][opportunities[col].isin(tokens)].value_counts()
        assert {t: int(seen.get(t, 0)) for t in tokens} == expected, col
    n = len(opportunities)
    assert 0.02 < sum(dirt["placeholders"]["Lead Source"].values()) / n < 0.04
    assert 0.01 < sum(dirt["placeholders"]["Segment"].values()) / n < 0.03

    amount = opportunities["Amount"]
    assert (amount == "").sum() == dirt["amount_missing_count"]
    numeric = pd.to_numeric(amount.where(amount != ""), errors="coerce")
    assert (numeric.isna() & (amount != "")).sum() == dirt["amount_text_count"]

    stage = opportunities["Stage"]
    assert stage.isin(list(dirt["stage_label_map"])).all()
    chinese = stage.str.contains(r"[\u4e00-\u9fff]", regex=True)
    assert chinese.sum() == dirt["chinese_stage_label_count"]
    assert 0.12 < chinese.mean() < 0.18

    assert opportunities["Outcome"].isin(list(dirt["outcome_label_map"])).all()
    assert opportunities["Outcome"].value_counts().to_dict() == dirt["outcome_label_counts"]
    for col in BOOL_COLUMNS:
        assert opportunities[col].isin(list(dirt["bool_label_map"])).all()
        assert (~opportunities[col].isin(["Yes", "No"])).sum() == dirt["bool_non_yes_no_count"][col]

    source = opportunities["Lead Source"]
    is_level = _canonical(source, gt["sources"], tokens).notna()
    assert (is_level & ~source.isin(gt["sources"])).sum() == dirt["source_case_variant_count"]
    assert not (source.isin(tokens) & is_level).any()


def test_file_agrees_with_clean_truth_table(clean, demo):
    _, gt = demo
    tables, truth = make_demo_tables(rows=ROWS, seed=7)
    assert truth == gt
    t = tables["opportunities_truth"].set_index("opportunity_id").sort_index()
    assert list(clean.index) == list(t.index)
    assert (clean["outcome"] == t["outcome"]).all()
    assert (clean["stage"] == t["stage"]).all()
    for col in ("visits", "downloads", "emails_replied", "meetings", "demo", "trial", "quote_sent",
                "budget_confirmed", "decision_maker_engaged"):
        assert (clean[col] == t[col]).all(), col
    assert np.allclose(clean["minutes_on_site"], t["minutes_on_site"])
    known = clean["amount"].notna()
    assert 0.005 < 1 - known.mean() < 0.015
    assert np.allclose(clean.loc[known, "amount"], t.loc[known, "amount"])
    for col, levels in (("source", "lead_source"), ("segment", "segment")):
        ok = clean[col].notna()
        assert (clean.loc[ok, col] == t.loc[ok, levels]).all()
    assert (clean["created_date"].dt.strftime("%Y-%m-%d") == t["created_date"]).all()
    counts = clean["outcome"].value_counts().to_dict()
    assert counts == gt["outcome_counts"]


def test_dates_and_stated_probabilities(clean, demo):
    _, gt = demo
    assert clean["created_date"].min() >= pd.Timestamp("2025-01-01")
    assert clean["created_date"].max() <= AS_OF
    closed = clean[clean["outcome"] != "open"]
    open_ = clean[clean["outcome"] == "open"]
    assert closed["close_date"].notna().all() and closed["expected_close_date"].isna().all()
    assert (closed["close_date"] > closed["created_date"]).all() and (closed["close_date"] <= AS_OF).all()
    assert open_["close_date"].isna().all() and (open_["expected_close_date"] > AS_OF).all()
    assert open_["stage"].isin(list(OPEN_STAGES)).all()
    assert (closed["stage"] == closed["outcome"]).all()
    stated = clean.groupby("stage")["probability_pct"].unique().map(lambda v: sorted(v.tolist()))
    assert stated.to_dict() == {"potential": [10], "intent": [25], "evaluation": [50], "decision": [75],
                                "won": [100], "lost": [0]}
    win_rate = (closed["outcome"] == "won").mean()
    assert 0.20 <= win_rate <= 0.30
    # Won cycles run longer than lost ones.
    days = (closed["close_date"] - closed["created_date"]).dt.days
    assert days[closed["outcome"] == "won"].median() > days[closed["outcome"] == "lost"].median()
    assert 40 <= days.median() <= 70


def test_open_stage_mostly_follows_behaviour(clean):
    open_ = clean[clean["outcome"] == "open"]
    rule = np.select(
        [open_["quote_sent"] & open_["budget_confirmed"], open_["demo"] | open_["trial"],
         (open_["meetings"] >= 1) | (open_["emails_replied"] >= 2)],
        ["decision", "evaluation", "intent"], default="potential")
    agree = (open_["stage"] == rule).mean()
    assert 0.9 <= agree < 1.0


def test_logistic_model_is_recovered(clean, demo):
    logistic = demo[1]["logistic"]
    refs = logistic["reference_levels"]
    df = clean[clean["outcome"] != "open"].dropna(subset=["source", "segment"]).copy()
    df["won"] = (df["outcome"] == "won").astype(int)
    df["log_visits"] = np.log1p(df["visits"])
    for col in ("demo", "trial", "quote_sent", "budget_confirmed", "decision_maker_engaged"):
        df[col] = df[col].astype(int)
    for col, levels in (("source", demo[1]["sources"]), ("segment", demo[1]["segments"])):
        ordered = [refs[col]] + [lv for lv in levels if lv != refs[col]]
        df[col] = pd.Categorical(df[col], categories=ordered)
    fit = smf.logit(logistic["formula"], data=df).fit(disp=0)
    ci = fit.conf_int(alpha=0.01)
    expected = dict(logistic["coefficients"], Intercept=logistic["intercept"])
    assert set(fit.params.index) == set(expected)
    outside = {k: (v, tuple(ci.loc[k])) for k, v in expected.items() if not ci.loc[k, 0] <= v <= ci.loc[k, 1]}
    assert not outside
    assert np.isclose(np.exp(expected["meetings"]), 1.31, atol=0.01)


def test_experiment(demo):
    out, gt = demo
    exp = gt["experiment"]
    df = _read(out / "experiment.csv")
    assert list(df.columns) == ["unit_id", "variant", "converted", "value", "pre_value", "segment", "assigned_at"]
    assert df["unit_id"].nunique() == exp["n_units"] == ROWS // 2
    variants = df.groupby("unit_id")["variant"].nunique()
    assert sorted(variants[variants > 1].index) == sorted(exp["multi_variant_unit_ids"])
    repeated = df[df.duplicated(keep=False)]["unit_id"].unique()
    assert sorted(repeated) == sorted(exp["duplicate_unit_ids"])
    assert len(df) == exp["n_units"] + len(exp["duplicate_unit_ids"]) + len(exp["multi_variant_unit_ids"])
    assert len(exp["duplicate_unit_ids"]) == len(exp["multi_variant_unit_ids"]) == round(0.005 * exp["n_units"])

    at = pd.to_datetime(df["assigned_at"], format="%Y-%m-%d %H:%M:%S")
    assert at.min() >= pd.Timestamp("2026-03-01") and at.max() <= pd.Timestamp("2026-04-30 23:59:59")
    converted = df["converted"].astype(int)
    value = df["value"].astype(float)
    assert (value[converted == 0] == 0).all() and (value[converted == 1] > 0).all()

    dirty = set(exp["duplicate_unit_ids"]) | set(exp["multi_variant_unit_ids"])
    units = df[~df["unit_id"].isin(dirty)].astype({"converted": int, "value": float, "pre_value": float})
    for name, p in ((exp["control"], exp["p_control"]), (exp["treatment"], exp["p_treatment"])):
        arm = units[units["variant"] == name]
        se = np.sqrt(p * (1 - p) / len(arm))
        assert abs(arm["converted"].mean() - p) < 4 * se, name
    share_b = (units["variant"] == exp["treatment"]).mean()
    assert abs(share_b - 0.5) < 4 * np.sqrt(0.25 / len(units))
    assert np.isclose(exp["abs_lift"], 0.02) and np.isclose(exp["rel_lift"], 0.2)
    # pre-period spend tracks revenue (what CUPED uses): the habitual buyers; the deals the script won over had
    # spent nothing before, which weakens the link (0.45 here)
    corr = np.corrcoef(units["value"], units["pre_value"])[0, 1]
    assert 0.35 <= corr <= 0.7 and abs(corr - exp["value_pre_value_correlation"]) < 0.05
    # the units are deals, and the script's effect lies in the planted responders only
    responders = exp["responders"]
    assert exp["units"] == "opportunities" and set(units["unit_id"]) <= set(_read(out / "opportunities.csv")["Opportunity ID"])
    is_responder = units["unit_id"].isin(responders["unit_ids"])
    rates = units.groupby([is_responder, "variant"])["converted"].mean()
    gain = rates[True][exp["treatment"]] - rates[True][exp["control"]]
    loss = rates[False][exp["treatment"]] - rates[False][exp["control"]]
    n_resp = is_responder.sum()
    assert abs(gain - responders["effect"]) < 4 * np.sqrt(2 * 0.25 / n_resp) and loss < 0.01
    assert responders["share"] * (responders["effect"] - responders["effect_on_others"]) + \
        responders["effect_on_others"] == pytest.approx(exp["abs_lift"])


def test_stage_history(demo, clean):
    out, gt = demo
    facts = gt["stage_history"]
    label_map = gt["dirt"]["stage_label_map"]
    h = _read(out / "stage_history.csv")
    assert list(h.columns) == ["Opportunity ID", "Stage", "Entered At", "Expected Close Date"]
    assert h["Stage"].isin(list(label_map)).all()
    assert set(h["Opportunity ID"]) == set(clean.index)
    h["stage"] = h["Stage"].map(label_map)
    h["at"] = pd.to_datetime(h["Entered At"], format="%Y-%m-%d %H:%M:%S")
    h = h.sort_values(["Opportunity ID", "at"], kind="stable")
    g = h.groupby("Opportunity ID", sort=False)

    assert (g["at"].diff().dropna() > pd.Timedelta(0)).all()
    assert h["at"].max() <= AS_OF_END
    created = h["Opportunity ID"].map(clean["created_date"])
    assert (h["at"] >= created).all()
    assert (g["stage"].first() == "potential").all()

    code = h["stage"].map(OPEN_STAGES)
    prev = code.groupby(h["Opportunity ID"]).shift()
    both_open = code.notna() & prev.notna()
    assert (both_open & (code - prev > 1)).sum() == facts["skips"]
    assert (both_open & (code < prev)).sum() == facts["backward_moves"]
    repeated = h["stage"].eq(g["stage"].shift())
    assert repeated.sum() == facts["repeated_rows"]
    stays = h[~repeated]
    assert (stays.groupby(["Opportunity ID", "stage"]).cumcount() > 0).sum() == facts["re_entries"]
    assert 0.07 < facts["skips"] / ROWS < 0.13 and 0.03 < facts["backward_moves"] / ROWS < 0.07
    assert facts["re_entries"] == 2 * facts["backward_moves"] and facts["repeated_rows"] > 0

    last = g.tail(1).set_index("Opportunity ID")
    outcome = clean["outcome"]
    won = outcome[outcome == "won"].index
    assert last.loc[won, "Stage"].isin(["Closed Won", "赢单"]).all()
    lost = outcome[outcome == "lost"].index
    assert last.loc[lost, "Stage"].isin(["Closed Lost", "输单"]).all()
    closed = outcome[outcome != "open"].index
    assert (last.loc[closed, "at"].dt.normalize() == clean.loc[closed, "close_date"]).all()
    terminal = h["stage"].isin(["won", "lost"])
    assert terminal.sum() == len(closed)
    # the expected close as it stood at each row: never before the row, ending at the real (or current) close
    expected = pd.to_datetime(h["Expected Close Date"], format="%Y-%m-%d")
    assert (expected >= h["at"].dt.normalize()).all()
    last_expected = expected.groupby(h["Opportunity ID"]).last()
    assert (last_expected.loc[closed] == clean.loc[closed, "close_date"]).all()
    still_open = outcome[outcome == "open"].index
    assert (last_expected.loc[still_open] == clean.loc[still_open, "expected_close_date"]).all()
    moved = expected.groupby(h["Opportunity ID"]).nunique() > 1
    assert 0.3 < moved.mean() < 0.95  # most deals' dates move, as in a real CRM
    open_ = outcome[outcome == "open"].index
    assert (last.loc[open_, "stage"] == clean.loc[open_, "stage"]).all()
    stalled = last.loc[open_][AS_OF - last.loc[open_, "at"] > pd.Timedelta(days=120)].index
    assert sorted(stalled) == sorted(facts["stalled_open_ids"]) and len(stalled) == facts["stalled_open_count"]
    assert abs(len(stalled) / len(open_) - 0.05) < 0.01

    chinese = h["Stage"].str.contains(r"[\u4e00-\u9fff]", regex=True)
    assert chinese.sum() == facts["chinese_stage_label_count"]
    assert 0.13 < chinese.mean() < 0.17
