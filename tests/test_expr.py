"""funnel_lab.expr: whitelist-checked rule/point expressions, evaluated vectorised. Expected values written by hand."""

from __future__ import annotations

import ast
import builtins

import numpy as np
import pandas as pd
import pytest

from funnel_lab.config import ParamsError
from funnel_lab.analysis.expr import (FUNCTIONS, Expression, ExpressionError, check_columns, evaluate, evaluate_mask,
                             parse_expression)

T, F = True, False
CTX = "stages.rules.intent"


@pytest.fixture
def df() -> pd.DataFrame:
    d = pd.DataFrame({
        "meetings":   [0, 1, 2, 3, 5, 1],                                           # int64
        "visits":     [1.0, np.nan, 2.0, 4.0, 0.0, 3.0],                            # float64 with NaN
        "demo":       pd.array([T, None, F, T, None, F], dtype="boolean"),          # nullable boolean with NA
        "source":     pd.Series(["Web", None, "Referral", "", "Email", "Web"], dtype="str"),  # text, missing, ""
        "预算金额":    [5000, 20000, 15000, 12000, 10001, 9000],                    # Chinese column name
        "deal owner": pd.Series(["ann", "bo", "di", "ann", None, None], dtype="str"),  # column with a space
        "flag":       [1, 0, 1, 0, 0, 1],                                            # numeric 0/1
        "emails":     pd.array([2, None, 0, 1, 3, None], dtype="Int64"),             # nullable Int64 with NA
    })
    d.index = [10, 11, 12, 13, 14, 15]  # rows r0..r5; results must come back on this index
    return d


CASES = [
    ("True", [T, T, T, T, T, T]),
    ("False", [F, F, F, F, F, F]),
    ("meetings >= 1 or visits >= 2", [F, T, T, T, T, T]),
    # bare yes/no column: NA counts as False; `not` negates after that, so NA rows become True
    ("demo", [T, F, F, T, F, F]),
    ("not demo", [F, T, T, F, T, T]),
    ("demo == False", [F, F, T, F, F, T]),
    ("demo != True", [F, F, T, F, F, T]),  # missing makes != False too
    ("1 < meetings <= 3", [F, F, T, T, F, F]),
    ("visits > 1", [F, F, T, T, F, T]),
    ("visits != 2", [T, F, F, T, T, T]),
    ("not (visits > 1)", [T, T, F, F, T, F]),
    ("source in ['Web', 'Referral']", [T, F, T, F, F, T]),
    ("source not in ['Web', 'Referral']", [F, F, F, T, T, F]),  # missing -> False, "" is a value
    ("source != 'Web'", [F, F, T, T, T, F]),
    ("source == ''", [F, F, F, T, F, F]),
    ("isna(source)", [F, T, F, F, F, F]),
    ("notna(source)", [T, F, T, T, T, T]),
    ("visits * 2 - 1 >= 3", [F, F, T, T, F, T]),  # 1, NaN, 3, 7, -1, 5
    ("`预算金额` > 10000", [F, T, T, T, T, F]),
    ("预算金额 > 10000", [F, T, T, T, T, F]),
    ("`deal owner` == 'ann'", [T, F, F, T, F, F]),
    ("isna(`deal owner`)", [F, F, F, F, T, T]),
    ("flag == 1", [T, F, T, F, F, T]),
    ("flag and demo", [T, F, F, F, F, F]),
    ("meetings in [1, 5]", [F, T, F, F, T, T]),
    ("meetings not in (1, 5)", [T, F, T, T, F, F]),
    ("visits in [1, 2]", [T, F, T, F, F, F]),
    ("visits not in [1, 2]", [F, F, F, T, T, T]),
    ("meetings in [-1, +2]", [F, F, T, F, F, F]),
    ("meetings / visits > 1", [F, F, F, F, T, F]),  # 0, NaN, 1, .75, inf, .33
    ("meetings % 2 == 1", [F, T, F, T, T, T]),
    ("meetings // 2 == 1", [F, F, T, T, F, F]),
    ("meetings ** 2 > 4", [F, F, F, T, T, F]),
    ("-meetings < -2", [F, F, F, T, T, F]),
    ("emails >= 1", [T, F, F, T, T, F]),
    ("emails + meetings > 2", [F, F, F, T, T, F]),  # 2, NA, 2, 4, 8, NA
    ("demo + flag >= 1", [T, F, T, T, F, T]),  # 2, NA, 1, 1, NA, 1
    ("demo or source == 'Web'", [T, F, F, T, F, T]),
    ("(meetings > 0) and not (source == 'Web')", [F, T, T, T, T, F]),
    ("`预算金额` > 10000 and source in ['Web', 'Referral'] and not isna(`deal owner`) and visits * 2 - 1 >= 3",
     [F, F, T, F, F, F]),
    ("source == `deal owner`", [F, F, F, F, F, F]),
    ("source < 'F'", [F, F, F, T, T, F]),  # text compares as text; "" < "F"
    ("meetings >= 1 and\n  visits >= 2", [F, F, T, T, F, T]),  # newlines from YAML block scalars
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_values(df, text, expected):
    e = parse_expression(text, context=CTX)
    got = evaluate(e, df)
    assert got.dtype == bool
    assert list(got.index) == [10, 11, 12, 13, 14, 15]
    assert got.tolist() == expected
    mask = evaluate_mask(e, df)
    assert mask.dtype == bool and mask.tolist() == expected


def test_numeric_column_as_condition(df):
    """A numeric 0/1 column may be a condition (nonzero = True); evaluate() gives its values, evaluate_mask() bools."""
    e = parse_expression("flag", context=CTX)
    assert evaluate_mask(e, df).tolist() == [T, F, T, F, F, T]
    assert evaluate(e, df).tolist() == [1, 0, 1, 0, 0, 1]
    assert evaluate_mask(parse_expression("emails", context=CTX), df).tolist() == [T, F, F, T, T, F]  # NA -> False


def test_arithmetic_value_propagates_missing(df):
    got = evaluate(parse_expression("visits * 2 - 1", context=CTX), df)
    assert got.index.tolist() == df.index.tolist()
    assert got.iloc[[0, 2, 3, 4, 5]].tolist() == [1.0, 3.0, 7.0, -1.0, 5.0]
    assert np.isnan(got.iloc[1])


def test_names_as_written():
    e = parse_expression("`预算金额` > 10000 and source in ['Web'] and not isna(`deal owner`) and 预算 < 1 "
                         "and `meetings` > 1 and meetings < 9", context=CTX)
    assert isinstance(e, Expression)
    assert e.names == frozenset({"预算金额", "source", "deal owner", "预算", "meetings"})
    assert e.text.startswith("`预算金额`") and e.context == CTX
    assert parse_expression("True", context=CTX).names == frozenset()
    # backticks inside string literals are text, not names
    assert parse_expression("source == '`x`'", context=CTX).names == frozenset({"source"})


def test_unknown_column_did_you_mean(df):
    e = parse_expression("meetngs >= 1", context="stages.rules.intent")  # parses: columns are checked later
    with pytest.raises(ExpressionError) as err:
        evaluate(e, df)
    msg = str(err.value)
    assert "stages.rules.intent" in msg and "meetngs" in msg and "did you mean 'meetings'" in msg
    with pytest.raises(ExpressionError, match="did you mean 'meetings'"):
        check_columns(e, ["meetings", "visits"])
    check_columns(parse_expression("`deal owner` == 'x'", context=CTX), df.columns)  # no error
    assert issubclass(ExpressionError, ParamsError)


INJECTIONS = [
    ("__import__('os').system('touch PWNED')", "__import__('os').system('touch PWNED')"),
    ("().__class__.__bases__[0].__subclasses__()", "().__class__.__bases__[0].__subclasses__()"),
    ("x.real", "x.real"),
    ("@pd.x", "@pd.x"),
    ("lambda: 1", "lambda: 1"),
    ("[c for c in x]", "[c for c in x]"),
    ('f"{x}"', 'f"{x}"'),
    ("open('f')", "open('f')"),
    ("eval('1')", "eval('1')"),
    ("x[0]", "x[0]"),
    ("(y := 1)", "y := 1"),
    ("{'a': 1}", "{'a': 1}"),
    ("x if y else z", "x if y else z"),
    ("a & b", "a & b"),
    ("__builtins__", "__builtins__"),
    ("`__class__`", "`__class__`"),
    ("import os", "import os"),
    ("x = 1", "x = 1"),
    ("x; y", "x; y"),
    ("1 +", "1 +"),
    # hidden inside an otherwise fine rule: the message quotes just the bad part
    ("meetings > 1 and `预算金额`.__class__ == 1", "`预算金额`.__class__"),
    ("demo or len(source) > 3", "len(source)"),
    ("meetings > 1 and x is None", "x is None"),
    ("~demo", "~demo"),
    ("a @ b", "@"),
    ("source == b'Web'", "b'Web'"),
    ("x == ...", "..."),
    ("x in {1, 2}", "x in {1, 2}"),
    ("x in y", "x in y"),
    ("isna(x + 1)", "isna(x + 1)"),
    ("isna(x, y)", "isna(x, y)"),
    ("x in [1, y]", "y"),
    ("x == None", "None"),
    ("a | b", "a | b"),
    ("1 << 2", "1 << 2"),
    ("x # comment", "# comment"),
    ("{*x}", "{*x}"),
    ("`a`x", "`a`x"),
]


@pytest.mark.parametrize("text, fragment", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_refused(text, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = "stages.rules.evil"
    with pytest.raises(ExpressionError) as err:
        parse_expression(text, context=ctx)
    msg = str(err.value)
    assert ctx in msg
    assert fragment in msg
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []


def test_refusal_messages():
    def msg(text):
        with pytest.raises(ExpressionError) as err:
            parse_expression(text, context=CTX)
        return str(err.value)

    assert "not allowed: @" in msg("@pd.x")
    assert "use and/or/not" in msg("a & b")
    assert "use and/or/not" in msg("~a")
    assert "attribute access" in msg("x.real")
    assert "only isna(x), notna(x)" in msg("open('f')")
    assert "syntax error at column 4" in msg("1 +")
    assert "single expression" in msg("import os")
    assert "single expression" in msg("x; y")
    assert "unclosed backtick" in msg("`预算 > 1")
    assert "too long" in msg("x" * 20_000)
    assert "nested too deeply" in msg("not " * 300 + "x")


def test_no_eval_exec_or_compile(df, monkeypatch, tmp_path):
    """Only ast.parse (compile with PyCF_ONLY_AST) may touch the text; eval/exec are never called."""
    monkeypatch.chdir(tmp_path)
    real_compile = builtins.compile

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "compile() called to produce code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", only_ast)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    for text, expected in CASES:
        assert evaluate_mask(parse_expression(text, context=CTX), df).tolist() == expected
    for text, _ in INJECTIONS:
        with pytest.raises(ExpressionError):
            parse_expression(text, context=CTX)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, words", [
    ("source", ["'source' is not a yes/no column", "source == 'x'"]),
    ("`deal owner` or demo", ["'deal owner' is not a yes/no column", "`deal owner` == 'x'"]),
    ("source == 1", ["'source' holds text; compare it with a string"]),
    ("source in ['Web', 1]", ["'source' holds text; compare it with a string"]),
    ("meetings == 'a'", ["'meetings' holds numbers; compare it with a number"]),
    ("meetings in ['1']", ["'meetings' holds numbers"]),
    ("demo == 'yes'", ["'demo' is a yes/no column"]),
    ("source + 1 > 2", ["'source' holds text", "arithmetic needs numbers"]),
    ("visits + 1", ["visits + 1", "not yes/no"]),
    ("1", ['"1" is not a condition']),
])
def test_type_errors_name_context_and_column(df, text, words):
    with pytest.raises(ExpressionError) as err:
        evaluate_mask(parse_expression(text, context=CTX), df)
    msg = str(err.value)
    assert msg.startswith(CTX + ":")
    for w in words:
        assert w in msg


def test_evaluate_returns_values_for_non_conditions(df):
    assert evaluate(parse_expression("meetings", context=CTX), df).tolist() == [0, 1, 2, 3, 5, 1]
    assert evaluate(parse_expression("visits + 1", context=CTX), df).dtype == "float64"


def test_other_column_types():
    d = pd.DataFrame({
        "t": pd.Series(["a", None, "b", ""], dtype=object),
        "yn": pd.Series([True, None, False, True], dtype=object),
        "num": pd.Series([1, None, 2.5, 0], dtype=object),
        "empty": pd.Series([None, None, None, None], dtype=object),
        "cat": pd.Categorical(["x", "y", None, "x"]),
        "close": pd.to_datetime(["2024-01-01", None, "2024-06-01", "2025-01-01"]),
    })

    def m(text):
        return evaluate_mask(parse_expression(text, context=CTX), d).tolist()

    assert m("t == 'a'") == [T, F, F, F]
    assert m("t != 'a'") == [F, F, T, T]
    assert m("yn") == [T, F, F, T]
    assert m("not yn") == [F, T, T, F]
    assert m("num > 0.5") == [T, F, T, F]
    assert m("empty == 1") == [F, F, F, F]
    assert m("empty") == [F, F, F, F]
    assert m("isna(empty)") == [T, T, T, T]
    assert m("cat == 'x'") == [T, F, F, T]
    assert m("cat in ['y']") == [F, T, F, F]
    assert m("close >= '2024-03-01'") == [F, F, T, T]
    assert m("close < '2024-03-01'") == [T, F, F, F]
    with pytest.raises(ExpressionError, match="'close' holds dates"):
        m("close > 5")
    with pytest.raises(ExpressionError, match="not a date"):
        m("close > 'soon'")


def test_yaml_bool_and_empty():
    assert parse_expression(True, context=CTX).text == "True"
    with pytest.raises(ExpressionError, match=f"{CTX}: empty expression"):
        parse_expression("  ", context=CTX)
    assert "isna" in FUNCTIONS and "notna" in FUNCTIONS


def test_empty_frame():
    d = pd.DataFrame({"x": pd.Series([], dtype="int64")})
    got = evaluate_mask(parse_expression("x > 1 or True", context=CTX), d)
    assert got.dtype == bool and len(got) == 0


def test_ten_rules_on_200k_rows():
    n = 200_000
    rng = np.random.default_rng(7)
    big = pd.DataFrame({
        "meetings": rng.integers(0, 5, n),
        "emails_replied": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "visits": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 9, n)),
        "demo": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
        "trial": rng.random(n) < 0.3,
        "quote_sent": rng.random(n) < 0.2,
        "budget_confirmed": pd.array(rng.random(n) < 0.5, dtype="boolean"),
        "source": pd.Series(rng.choice(np.array(["Web", "Referral", "Email", None], dtype=object), n), dtype="str"),
        "owner": pd.Series(rng.choice(np.array(["a", "b", None], dtype=object), n), dtype="str"),
        "预算金额": rng.random(n) * 20000,
    })
    rules = [
        "True",
        "meetings >= 1 or emails_replied >= 2",
        "demo or trial",
        "quote_sent and budget_confirmed",
        "`预算金额` > 10000 and source in ['Web', 'Referral'] and not isna(owner) and visits * 2 - 1 >= 3",
        "source != 'Web' and owner == 'a'",
        "1 < meetings <= 3",
        "visits ** 2 % 3 == 1",
        "not demo and notna(source)",
        "emails_replied + meetings / 2 > 3",
    ]
    for i, r in enumerate(rules):
        got = evaluate_mask(parse_expression(r, context=f"stages.rules.r{i}"), big)
        assert got.dtype == bool and len(got) == n


def test_result_does_not_alias_the_frame():
    d = pd.DataFrame({"won": np.array([True, False]), "n": np.array([1, 2])})
    for text in ("won", "n"):
        got = evaluate(parse_expression(text, context=CTX), d)
        got.iloc[0] = got.iloc[1]
        mask = evaluate_mask(parse_expression(text, context=CTX), d)
        mask.iloc[0] = False
    assert d["won"].tolist() == [True, False] and d["n"].tolist() == [1, 2]
