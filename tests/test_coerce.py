"""Column-wise type coercion, checked against values written out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from funnel_lab.data.coerce import coerce_column, date_formats_found, infer_kind, parse_bools, parse_dates, parse_numbers


@pytest.mark.parametrize("text, expected", [
    ("12000.0", 12000.0), ("¥12,000", 12000.0), ("$1,200.50", 1200.5), ("12,000", 12000.0), ("1.2万", 12000.0),
    ("3亿", 3e8), ("(300)", -300.0), ("-42", -42.0), ("15%", 15.0), ("RMB 5,000", 5000.0), ("€ 7", 7.0),
    ("1e3", 1000.0), ("abc", math.nan), ("", math.nan), ("12-3", math.nan),
])
def test_parse_numbers(text, expected):
    got = parse_numbers(pd.Series([text], dtype="str")).iloc[0]
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_parse_numbers_keeps_missing_and_numeric_input():
    assert parse_numbers(pd.Series(["1", None], dtype="str")).isna().tolist() == [False, True]
    assert parse_numbers(pd.Series([1, 2])).tolist() == [1.0, 2.0]


def test_parse_bools_every_spelling():
    s = pd.Series(["Yes", "no", "TRUE", "false", "是", "否", "1", "0", "Y", "n", "", None, "maybe"], dtype="str")
    assert parse_bools(s).tolist() == [True, False, True, False, True, False, True, False, True, False,
                                       pd.NA, pd.NA, pd.NA]
    # Salesforce writes only the true cells: blank means false there.
    assert parse_bools(pd.Series(["1", "", None], dtype="str"), blank_is_false=True).tolist() == [True, False, False]


@pytest.mark.parametrize("cells, fmt, first", [
    (["2024-01-22T16:14:25.000+0000", "2024-01-23T08:00:00Z"], "ISO8601", "2024-01-22 16:14:25"),
    (["2024-01-22T18:14:25.000+0200"], "ISO8601", "2024-01-22 16:14:25"),  # offsets become UTC
    (["02/03/24", "12/31/23"], "%m/%d/%y", "2024-02-03 00:00:00"),  # US short dates: 3 February 2024
    (["02/03/24 10:15 PM", "12/31/23 9:05 AM"], "%m/%d/%y %I:%M %p", "2024-02-03 22:15:00"),
    (["31/12/2023", "13/01/2024"], "%d/%m/%Y", "2023-12-31 00:00:00"),
    (["2024年1月3日", "2024年12月31日"], "%Y年%m月%d日", "2024-01-03 00:00:00"),
    (["2024/01/03", "2024/12/31"], "ISO8601", "2024-01-03 00:00:00"),  # pandas reads / as ISO too
])
def test_parse_dates_one_format_per_column(cells, fmt, first):
    values, used = parse_dates(pd.Series(cells, dtype="str"))
    assert used == fmt
    assert str(values.iloc[0]) == first and values.notna().all()


def test_mixed_date_formats_are_listed():
    s = pd.Series(["2024-01-01", "2024-02-01", "02/03/2024", "03/04/2024", "2024-05-06"], dtype="str")
    assert date_formats_found(s) == [("ISO8601", 3), ("%m/%d/%Y", 2)]


@pytest.mark.parametrize("cells, kind", [
    (["Yes", "No", "是"], "boolean"), (["1", "0", "1"], "number"), (["¥1,000", "2万", "3"], "number"),
    (["2024-01-01", "2024-02-01"], "date"), (["Acme", "Beta"], "text"), ([None, ""], "empty"),
])
def test_infer_kind(cells, kind):
    assert infer_kind(pd.Series(cells, dtype="str")) == kind


def test_coerce_column_lists_cells_that_do_not_parse():
    s = pd.Series(["1", "2", "x", None], dtype="str", index=[10, 11, 12, 13])
    res = coerce_column(s, "number")
    assert res.values.dtype == "Int64" and res.values.tolist()[:2] == [1, 2]
    assert res.failed.to_dict() == {12: "x"}
    assert coerce_column(pd.Series(["1.5", "2"], dtype="str"), "number").values.dtype == np.float64
