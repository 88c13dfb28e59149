"""Cleaning on the demo CRM, checked against the generator's ground truth, and each step on small frames."""

import json

import numpy as np
import pandas as pd
import pytest

from funnel_lab.data.clean import (dedupe_exact, drop_columns, flag_columns, normalise_name, replace_placeholders,
                              standardise_text)
from funnel_lab.config import ParamsError, load_params
from funnel_lab.data.demo import make_demo_tables
from funnel_lab.pipeline import Pipeline


@pytest.fixture(scope="module")
def demo(demo_project):
    p = Pipeline(load_params([demo_project / "params" / "demo.yaml"]))
    truth = json.loads((demo_project / "data" / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    return p.tables, p.cleaned, truth


def test_every_step_accounts_for_every_row(demo):
    tables, cleaned, _ = demo
    for name, c in cleaned.items():
        a = c.audit
        assert (a["rows_in"] == a["rows_out"] + a["rows_removed"]).all(), name
        assert (a["rows_in"].iloc[1:-1].to_numpy() == a["rows_out"].iloc[:-2].to_numpy()).all(), "steps chain"
        overall = a.iloc[-1]
        assert overall["step"] == "overall" and overall["rows_in"] == len(tables[name].raw)
        assert overall["rows_out"] == len(c.data) and overall["rows_removed"] == len(c.quarantine)


def test_quarantine_holds_removed_rows_as_read(demo):
    tables, cleaned, _ = demo
    q, raw = cleaned["opportunities"].quarantine, tables["opportunities"].raw
    assert q["reason"].str.len().gt(0).all()
    assert set(q["source_row"] - 1).isdisjoint(cleaned["opportunities"].data.index)
    as_read = raw.loc[q["source_row"] - 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(q[raw.columns].reset_index(drop=True), as_read)


def test_exact_duplicates_from_the_ground_truth_are_merged(demo):
    _, cleaned, truth = demo
    ids = cleaned["opportunities"].data["opportunity_id"]
    assert ids.is_unique
    exact = truth["dirt"]["exact_duplicate_ids"]
    assert set(exact) <= set(ids)
    removed = cleaned["opportunities"].quarantine
    assert (removed["reason"].str.startswith("duplicate of ")).sum() == len(exact)


def test_near_duplicates_recovered_without_false_merges(demo):
    _, cleaned, truth = demo
    groups = cleaned["opportunities"].duplicates
    fuzzy = groups[groups["match"].str.startswith("fuzzy")].groupby("group")["opportunity_id"].apply(frozenset)
    pairs = {frozenset(p) for p in truth["dirt"]["near_duplicates"]}
    assert set(fuzzy) <= pairs, "every merged group is an injected near duplicate"
    # measured 196/200 at rows=20,000, seed 7; the misses are renamed Chinese companies with a changed amount
    assert len(set(fuzzy)) >= 0.9 * len(pairs)


def test_placeholders_counted_as_injected(demo):
    tables, cleaned, truth = demo
    counts = cleaned["opportunities"].placeholders
    to_canon = dict(zip(tables["opportunities"].column_map["source_column"], tables["opportunities"].column_map["column"]))
    expected = {(to_canon[col], tok): n for col, toks in truth["dirt"]["placeholders"].items()
                for tok, n in toks.items() if tok and n}
    assert {(r.column, r.token): r.cells for r in counts.itertuples()} == expected


def test_amounts_typed_as_text_are_read_exactly(demo_project, demo):
    _, cleaned, truth = demo
    tables, _ = make_demo_tables(rows=truth["rows"], seed=truth["seed"])
    true_amount = tables["opportunities_truth"].set_index("opportunity_id")["amount"]
    got = cleaned["opportunities"].data.set_index("opportunity_id")["amount"]
    both = got.index.intersection(true_amount.index)
    filled = got[both].notna()
    assert filled.sum() >= len(both) - truth["dirt"]["amount_missing_count"]
    np.testing.assert_allclose(got[both][filled].to_numpy(), true_amount[both][filled].to_numpy(), rtol=1e-9)


def test_case_variants_merge_onto_the_true_sources(demo):
    _, cleaned, truth = demo
    assert set(cleaned["opportunities"].data["source"].dropna()) == set(truth["sources"])


def test_status_and_stage_maps_give_canonical_values(demo):
    _, cleaned, truth = demo
    opp = cleaned["opportunities"].data
    assert set(opp["status"]) == {"open", "won", "lost"}
    assert (opp["won"].isna() == (opp["status"] == "open")).all()
    assert set(opp["crm_stage"]) <= {"potential", "intent", "evaluation", "decision", "won", "lost"}
    assert set(cleaned["stage_history"].data["stage"]) <= {"potential", "intent", "evaluation", "decision", "won", "lost"}


def test_replace_placeholders_counts_by_token_and_ignores_case():
    df = pd.DataFrame({"a": ["Select", "select ", "x", "", None], "b": ["N/A", "y", "z", "w", "v"]}, dtype="str")
    out, counts, changed = replace_placeholders(df, ["Select", "N/A", ""])
    assert out["a"].isna().tolist() == [True, True, False, True, True]
    assert counts.to_dict("records") == [{"column": "a", "token": "Select", "cells": 2},
                                         {"column": "b", "token": "N/A", "cells": 1}]
    assert list(changed) == [0, 1]  # the empty cell was already missing


def test_standardise_merges_case_variants_onto_the_most_frequent_spelling():
    df = pd.DataFrame({"src": ["Google", "Google", "google", " GOOGLE ", "bing", "Interested  in MBA"]}, dtype="str")
    out, changes, changed = standardise_text(df)
    assert out["src"].tolist() == ["Google"] * 4 + ["bing", "Interested in MBA"]
    assert len(changed) == 3 and changes["cells"].sum() == 3


def test_dedupe_exact_keeps_most_complete_then_latest():
    df = pd.DataFrame({"opportunity_id": ["a", "a", "b", "a"], "x": [1.0, None, 2.0, 3.0], "y": ["p", "q", "r", None]})
    kept, reasons, groups = dedupe_exact(df, ["opportunity_id"], "opportunity_id")
    assert list(kept.index) == [0, 2]  # row 0 is complete; 1 and 3 miss one cell each
    assert reasons.to_dict() == {1: "duplicate of a on opportunity_id", 3: "duplicate of a on opportunity_id"}
    assert groups["kept"].tolist() == [True, False, False]


def test_normalise_name_drops_legal_suffixes():
    s = pd.Series(["ACME Corp.", "Acme Corporation", "acme inc", "上海远航科技有限公司"], dtype="str")
    assert normalise_name(s).tolist() == ["acme", "acme", "acme", "上海远航科技"]


def test_flags_constant_and_near_empty_columns():
    df = pd.DataFrame({"c": ["No"] * 40, "e": [None] * 39 + ["x"], "ok": list("ab" * 20)})
    assert flag_columns(df).to_dict("records") == [
        {"column": "c", "flag": "constant", "detail": "always 'No'"},
        {"column": "e", "flag": "near-empty", "detail": "97.5% missing"}]


def test_drop_columns_by_source_or_canonical_name_and_did_you_mean():
    df = pd.DataFrame({"tags": [1], "lead_quality": [2], "x": [3]})
    cmap = pd.DataFrame({"source_column": ["Tags", "Lead Quality", "X"], "column": ["tags", "lead_quality", "x"]})
    assert list(drop_columns(df, ["Tags", "lead_quality"], cmap).columns) == ["x"]
    with pytest.raises(ParamsError, match="did you mean 'tags'"):
        drop_columns(df, ["tagz"], cmap)


def test_profile_examples_are_the_first_distinct_values_as_text():
    """column_profile's examples: the first three distinct values in order of appearance, also when the third
    appears only after the rows read first (as turning the whole column into text would give)."""
    from funnel_lab.data.quality import _first_distinct_text

    late = pd.Series(["a"] * 1500 + ["b"] * 10 + ["c" + "x" * 40, "d"])
    assert _first_distinct_text(late, 3) == ["a", "b", "c" + "x" * 29]
    assert _first_distinct_text(pd.Series([2.5, 2.5, 1.0, 7.0, 3.0]), 3) == ["2.5", "1.0", "7.0"]
    assert _first_distinct_text(pd.Series([4, 4]), 3) == ["4"]
    assert _first_distinct_text(pd.Series([], dtype="float64"), 3) == []
