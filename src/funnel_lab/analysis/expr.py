"""Safe rule and point expressions: parse and whitelist-check untrusted text, then evaluate it vectorised.

Stage rules (``stages.rules.<stage>``) and lead-score conditions (``stages.score.points[i].when``) come from YAML
that may not be trusted. :func:`parse_expression` turns the text into a checked tree and *never* evaluates anything;
:func:`evaluate` / :func:`evaluate_mask` walk that tree with numpy/pandas operations (never Python's
``eval``/``exec``/``compile``), one vectorised operation per node, so the cost does not depend on Python per row.

Language (everything else is refused with an :class:`ExpressionError` naming the context and the offending part)

- literals: ints, floats, strings (``'x'`` / ``"x"``), ``True``, ``False``; a list or tuple of literals only on the
  right of ``in`` / ``not in`` (``source in ['Web', 'Referral']``, ``x not in (1, -2)``);
- names: plain identifiers that are columns, or ```backtick-quoted``` names for columns with spaces, punctuation or
  Chinese characters (a plain Chinese identifier such as ``预算`` also works); names starting with ``__`` are
  refused, even in backticks;
- comparisons ``== != < <= > >=`` (chained: ``1 < x <= 5``), ``in`` / ``not in``;
- ``and``, ``or``, ``not``; arithmetic ``+ - * / // % **`` and unary ``-`` / ``+``;
- functions: :data:`FUNCTIONS` (``isna(x)``, ``notna(x)``), one argument that is a column name.

Semantics (missing = NaN / NA / None)

- A comparison with a missing operand is False, ``!=`` included; ``in`` and ``not in`` are both False for missing.
- A column used as a condition (``demo``, ``a and b``) is True only where its value is true; missing counts as
  False. Yes/no columns (``bool``, nullable ``boolean``, object True/False) and numeric columns (nonzero = True)
  can be conditions; a text or date column cannot (compare it instead).
- ``not x`` negates *after* missing became False, so ``not demo`` is True where ``demo`` is missing.
  Use ``demo == False`` for "known to be false".
- Arithmetic is done in float64 and propagates missing; comparing a missing result gives False. Division by zero
  gives inf/NaN like numpy, never an error.
- ``isna(x)`` / ``notna(x)`` follow :func:`pandas.isna`: an empty string is not missing.
- Text columns compare with strings only, number and yes/no columns with numbers/True/False only, date columns with
  date strings (``close_date >= '2024-01-01'``) or other date columns; mixing is an error naming the column.
- An object column holding only missing values matches nothing (every comparison False, NaN in arithmetic).
"""

from __future__ import annotations

import ast
import difflib
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.ingest import snake_case
from ..errors import ParamsError, did_you_mean

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "check_columns", "evaluate", "evaluate_mask",
           "parse_expression"]

#: Longest expression text accepted (characters) and deepest nesting of the parsed tree.
MAX_LENGTH = 10_000
MAX_DEPTH = 200


class ExpressionError(ParamsError):
    """Refused or invalid expression; the message names the context (e.g. "stages.rules.intent") and the offending
    part."""


def _isna(v: "_Val", ctx: str) -> np.ndarray:
    return v.na_mask()


def _notna(v: "_Val", ctx: str) -> np.ndarray:
    return ~v.na_mask()


#: The whitelisted functions: name -> f(column value, context) -> numpy bool array. One line adds one.
FUNCTIONS: dict[str, Any] = {
    "isna": _isna,    # missing-ness of a column (pd.isna semantics)
    "notna": _notna,  # the opposite
}


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelist-checked expression. Build it with :func:`parse_expression`."""

    text: str  # as written
    context: str  # e.g. "stages.rules.intent" or "stages.score.points[2].when"
    names: frozenset[str]  # column names referenced, as written (backticks removed)
    _tree: ast.expr = field(repr=False, compare=False)
    _order: tuple[str, ...] = field(repr=False, compare=False, default=())  # names in order of first appearance

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------------------------------------- parsing


def _err(context: str, message: str) -> ExpressionError:
    return ExpressionError(f"{context}: {message}")


class _Source:
    """The user's text rewritten for ``ast.parse``: backtick names -> generated identifiers, any whitespace outside
    string literals (newlines, tabs, full-width spaces) -> a plain space.

    Keeps the pieces so that a position in the rewritten text maps back to the original text (for error messages
    that quote what the user wrote). Refuses ``@`` (pandas locals) and ``#`` (a comment would swallow the rest once
    newlines became spaces) outside string literals.
    """

    def __init__(self, text: str, context: str):
        self.original = text
        self.context = context
        self.ids: dict[str, str] = {}  # generated identifier -> real column name
        base = "_bq"
        while base in text:  # generated identifiers cannot collide with anything the user wrote
            base += "q"
        segments: list[tuple[int, int, str, bool]] = []  # (original start, original end, rewritten text, replaced)
        buf: list[str] = []
        plain_start = 0

        def flush(upto: int) -> None:
            if buf:
                segments.append((plain_start, upto, "".join(buf), False))
                buf.clear()

        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c in "'\"":  # a string literal: copied as is (the parser judges it)
                quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else c
                j = i + len(quote)
                while j < n and not text.startswith(quote, j):
                    j += 2 if text[j] == "\\" else 1
                j = min(n, j + len(quote))
                buf.append(text[i:j])
                i = j
            elif c == "`":
                end = text.find("`", i + 1)
                if end < 0:
                    raise _err(context, f"unclosed backtick at column {i + 1}: {text[i:]}")
                name, frag = text[i + 1:end], text[i:end + 1]
                if not name.strip():
                    raise _err(context, f'empty backtick-quoted name at column {i + 1}: "{frag}"')
                if name.startswith("__"):
                    raise _err(context, f'not allowed: name starting with "__" "{frag}"')
                flush(i)
                ident = next((k for k, v in self.ids.items() if v == name), None)
                if ident is None:
                    ident = f"{base}{len(self.ids)}_"
                    self.ids[ident] = name
                segments.append((i, end + 1, f" {ident} ", True))  # spaces: `a`x must not fuse into one name
                i = plain_start = end + 1
            elif c == "@":
                j = i + 1
                while j < n and (text[j].isalnum() or text[j] in "_."):
                    j += 1
                raise _err(context, f'not allowed: @ "{text[i:j]}" (pandas local variables are not supported; '
                                    "refer to columns by name)")
            elif c == "#":
                raise _err(context, f'not allowed: comment "{text[i:]}"')
            else:
                buf.append(" " if c.isspace() else c)  # newlines, tabs, full-width spaces
                i += 1
        flush(n)
        self.pieces: list[tuple[int, int, int, int, bool]] = []  # rewritten start/end, original start/end, replaced
        out, tpos = [], 0
        for os_, oe, chunk, replaced in segments:
            self.pieces.append((tpos, tpos + len(chunk), os_, oe, replaced))
            out.append(chunk)
            tpos += len(chunk)
        self.text = "".join(out)
        self._lines = self.text.split("\n")

    def to_original(self, t: int, *, end: bool) -> int:
        """A character position in the rewritten text -> the original text (a start or an end of a fragment)."""
        for ts, te, os_, oe, replaced in self.pieces:
            if ts <= t < te or (end and t == te):
                if replaced:
                    return oe if end and t > ts else os_
                return os_ + (t - ts)
        return len(self.original)

    def fragment(self, node: ast.AST) -> str:
        """The original text of ``node`` (backticks and all)."""
        start = self._char_index(node.lineno, node.col_offset)
        stop = self._char_index(node.end_lineno, node.end_col_offset)
        return self.original[self.to_original(start, end=False):self.to_original(stop, end=True)]

    def _char_index(self, lineno: int | None, col_utf8: int | None) -> int:
        lineno = lineno or 1
        before = sum(len(x) + 1 for x in self._lines[:lineno - 1])
        line = self._lines[lineno - 1] if lineno - 1 < len(self._lines) else ""
        return before + len(line.encode("utf-8")[:col_utf8 or 0].decode("utf-8", errors="ignore"))


_BINOPS = {
    ast.Add: ("+", np.add), ast.Sub: ("-", np.subtract), ast.Mult: ("*", np.multiply),
    ast.Div: ("/", np.true_divide), ast.FloorDiv: ("//", np.floor_divide), ast.Mod: ("%", np.mod),
    ast.Pow: ("**", np.power),
}
_BITWISE = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}
_CMPOPS = {
    ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne), ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
}
_REFUSED = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Slice: "slice", ast.Lambda: "lambda",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string", ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment (:=)", ast.Dict: "dict literal", ast.Set: "set literal", ast.Starred: "starred (*)",
    ast.IfExp: "if-expression (use and/or)", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_STATEMENTS = {
    ast.Import: "import", ast.ImportFrom: "import", ast.Assign: "assignment (use == to compare)",
    ast.AugAssign: "assignment", ast.AnnAssign: "assignment", ast.Delete: "del statement",
}


class _Checker:
    """Walks the parsed tree with an explicit whitelist, annotating nodes with their original source fragment."""

    def __init__(self, src: _Source):
        self.src = src
        self.ctx = src.context
        self.order: list[str] = []

    def refuse(self, what: str, node: ast.AST, hint: str = "") -> ExpressionError:
        return _err(self.ctx, f'not allowed: {what} "{self.src.fragment(node)}"{hint}')

    def check(self, node: ast.AST, depth: int = 0, *, in_list: bool = False) -> None:
        if depth > MAX_DEPTH:
            raise _err(self.ctx, f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        node._frag = self.src.fragment(node)  # type: ignore[attr-defined]
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or isinstance(v, str):
                return
            if isinstance(v, int):
                if not -(2**63) <= v < 2**63:
                    node.value = float(v)
                return
            if isinstance(v, float):
                return
            what = {bytes: "bytes literal", complex: "complex number", type(...): "ellipsis (...)",
                    type(None): "None (use isna(x) for missing values)"}.get(type(v), "literal")
            raise self.refuse(what, node)
        if isinstance(node, ast.Name):
            self.name(node)
            return
        if isinstance(node, ast.BoolOp):
            if not isinstance(node.op, (ast.And, ast.Or)):
                raise self.refuse("operator", node)
            for v in node.values:
                self.check(v, d)
            return
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                raise self.refuse("bitwise operator ~", node, "; use and/or/not")
            if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
                raise self.refuse("operator", node)
            self.check(node.operand, d)
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) in _BITWISE:
                raise self.refuse(f"bitwise operator {_BITWISE[type(node.op)]}", node, "; use and/or/not")
            if isinstance(node.op, ast.MatMult):
                raise self.refuse("@", node)
            if type(node.op) not in _BINOPS:
                raise self.refuse("operator", node)
            self.check(node.left, d)
            self.check(node.right, d)
            return
        if isinstance(node, ast.Compare):
            self.compare(node, d)
            return
        if isinstance(node, ast.Call):
            self.call(node, d)
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            raise self.refuse("list or tuple outside 'in'", node, " (lists go on the right of in / not in)")
        what = _REFUSED.get(type(node), type(node).__name__)
        raise self.refuse(what, node)

    def name(self, node: ast.Name) -> None:
        real = self.src.ids.get(node.id)
        if real is None:
            real = node._frag  # as written (the parser NFKC-normalises node.id)
            if real.startswith("__") or node.id.startswith("__"):
                raise self.refuse('name starting with "__"', node)
        node._col = real  # type: ignore[attr-defined]
        if real not in self.order:
            self.order.append(real)

    def compare(self, node: ast.Compare, d: int) -> None:
        self.check(node.left, d)
        last = len(node.ops) - 1
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.Is, ast.IsNot)):
                raise self.refuse("'is' / 'is not'", node, "; use == / != (or isna(x) for missing values)")
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.List, ast.Tuple)):
                    raise self.refuse("'in' without a list", node,
                                      "; write a list of values on the right, e.g. x in ['a', 'b']")
                if i != last:
                    raise self.refuse("a list as the left side of a comparison", node, "; split it with and")
                right._frag = self.src.fragment(right)  # type: ignore[attr-defined]
                for elt in right.elts:
                    self.literal(elt)
                continue
            if type(op) not in _CMPOPS:
                raise self.refuse("comparison", node)
            self.check(right, d)

    def literal(self, node: ast.AST) -> None:
        """A list element: a constant, or a signed number."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
            self.check(node.operand, 0)
            node._frag = self.src.fragment(node)  # type: ignore[attr-defined]
            return
        if isinstance(node, ast.Constant):
            self.check(node, 0)
            return
        raise self.refuse("non-literal in an 'in' list", node, " (only numbers, strings, True, False)")

    def call(self, node: ast.Call, d: int) -> None:
        allowed = ", ".join(f"{f}(x)" for f in FUNCTIONS)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS \
                or self.src.fragment(node.func) != node.func.id:
            raise self.refuse("function call", node, f"; only {allowed} are allowed")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise self.refuse(f"arguments of {node.func.id}()", node, f"; write {node.func.id}(column)")
        self.check(node.args[0], d)


def parse_expression(text: str, *, context: str) -> Expression:
    """Parse and whitelist-check ``text``; raises :class:`ExpressionError`. Never evaluates anything."""
    if isinstance(text, bool):  # YAML `rules: {potential: true}` arrives as a bool
        text = str(text)
    if not isinstance(text, str):
        raise _err(context, f"expected an expression (text), got {type(text).__name__} {text!r}")
    if len(text) > MAX_LENGTH:
        raise _err(context, f"expression too long ({len(text)} characters; at most {MAX_LENGTH})")
    if "\x00" in text:
        raise _err(context, "not allowed: NUL character in the expression")
    if not text.strip():
        raise _err(context, "empty expression")
    src = _Source(text, context)
    body = src.text
    lead = len(body) - len(body.lstrip())
    try:
        tree = ast.parse(body.strip(), mode="eval")
    except SyntaxError as e:
        raise _syntax_error(src, body, lead, e) from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise _err(context, f"expression too complex to parse ({type(e).__name__})") from None
    if lead:  # positions in the tree are relative to the stripped text
        for n in ast.walk(tree):
            if hasattr(n, "col_offset") and getattr(n, "lineno", 1) == 1:
                n.col_offset += len(body[:lead].encode("utf-8"))
                if getattr(n, "end_lineno", 1) == 1 and n.end_col_offset is not None:
                    n.end_col_offset += len(body[:lead].encode("utf-8"))
    checker = _Checker(src)
    try:
        checker.check(tree.body)
    except RecursionError:
        raise _err(context, "expression nested too deeply") from None
    return Expression(text=text, context=context, names=frozenset(checker.order), _tree=tree.body,
                      _order=tuple(checker.order))


def _syntax_error(src: _Source, body: str, lead: int, e: SyntaxError) -> ExpressionError:
    ctx = src.context
    # Not a single expression? Classify it (ast.parse only builds a tree; nothing runs).
    try:
        mod = ast.parse(body.strip(), mode="exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        mod = None
    if mod is not None and mod.body:
        if len(mod.body) > 1:
            return _err(ctx, f'not allowed: {len(mod.body)} statements "{src.original.strip()}"; '
                             "write a single expression")
        stmt = mod.body[0]
        if not isinstance(stmt, ast.Expr):
            what = _STATEMENTS.get(type(stmt), f"{type(stmt).__name__} statement")
            return _err(ctx, f'not allowed: {what} "{src.original.strip()}"; write a single expression')
    col_t = lead + (e.offset - 1 if e.offset and e.offset > 0 else len(body.strip()))
    col = src.to_original(min(col_t, len(body)), end=False) + 1
    msg = (e.msg or "invalid syntax").split(". Maybe")[0]
    return _err(ctx, f'syntax error at column {col} of "{src.original}": {msg}')


def check_columns(expr: Expression, columns) -> None:
    """:class:`ExpressionError` for a referenced name that is not one of ``columns`` (with a did-you-mean)."""
    cols = [str(c) for c in columns]
    have = set(cols)
    for name in expr._order or sorted(expr.names):
        if name not in have:
            # a source name such as "Demo Done" is the column demo_done after reading: suggest what to write
            close = difflib.get_close_matches(snake_case(name), cols, n=1, cutoff=0.6) or \
                difflib.get_close_matches(name, cols, n=1, cutoff=0.6)
            hint = (f"; did you mean {repr(close[0]) if close[0].isidentifier() else f'`{close[0]}`'}?" if close
                    else did_you_mean(name, cols))
            raise _err(expr.context, f"unknown column '{name}' in \"{expr.text}\"{hint}")


# ------------------------------------------------------------------------------------------------------ evaluation


def _as_name(col: str) -> str:
    """How to write a column in an expression."""
    return col if col.isidentifier() and not col.startswith("__") else f"`{col}`"


class _Val:
    """A node's value: ``kind`` is one of

    mask  numpy bool, no missing (comparisons, and/or/not, isna)       bool  yes/no column: numpy bool + ``na``
    num   numpy int64/float64 (float NaN = missing) + ``na``            text  str Series (RangeIndex) + ``na``
    date  datetime Series + ``na``                                      null  an all-missing object column
    const a Python int/float/str/bool                                   other any other column (isna/notna only)
    """

    __slots__ = ("kind", "data", "na", "col", "n")

    def __init__(self, kind: str, data: Any, n: int, na: np.ndarray | None = None, col: str | None = None):
        self.kind, self.data, self.n, self.na, self.col = kind, data, n, na, col

    def na_mask(self) -> np.ndarray:
        if self.kind == "null":
            return np.ones(self.n, dtype=bool)
        if self.kind in ("mask", "const"):
            return np.zeros(self.n, dtype=bool)
        if self.na is None:
            if self.kind == "num" and self.data.dtype.kind == "f":
                self.na = np.isnan(self.data)
            else:
                self.na = np.zeros(self.n, dtype=bool)
        return self.na

    def numbers(self) -> np.ndarray | int | float:
        """As numbers (float64, NaN = missing) for arithmetic."""
        if self.kind == "const":
            return float(self.data)
        if self.kind == "null":
            return np.full(self.n, np.nan)
        if self.kind == "bool" and self.na is not None and self.na.any():
            out = self.data.astype("float64")
            out[self.na] = np.nan
            return out
        return self.data.astype("float64", copy=False)

    def is_number(self) -> bool:
        return self.kind in ("num", "bool", "mask") or (
            self.kind == "const" and isinstance(self.data, (int, float)))


def _column(s: pd.Series, col: str) -> _Val:
    n = len(s)
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        s = s.astype(object)
        dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        if dt == np.dtype(bool):
            return _Val("bool", s.to_numpy(), n, None, col)
        return _Val("bool", s.to_numpy(dtype=bool, na_value=False), n, s.isna().to_numpy(), col)
    if pd.api.types.is_numeric_dtype(dt):
        na = s.isna().to_numpy()
        if pd.api.types.is_integer_dtype(dt) and not na.any():
            arr = s.to_numpy(dtype="int64") if dt.kind != "u" or s.max() < 2**63 else s.to_numpy(dtype="float64")
            return _Val("num", arr, n, None, col)
        return _Val("num", s.to_numpy(dtype="float64", na_value=np.nan), n, na, col)
    if pd.api.types.is_datetime64_any_dtype(dt):
        return _Val("date", s.reset_index(drop=True), n, s.isna().to_numpy(), col)
    if pd.api.types.is_string_dtype(dt) and dt != object:
        return _Val("text", s.reset_index(drop=True), n, s.isna().to_numpy(), col)
    if dt == object:
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        na = s.isna().to_numpy()
        if inferred == "empty":
            return _Val("null", None, n, na, col)
        if inferred == "boolean":
            return _Val("bool", s.to_numpy(dtype=object) == True, n, na, col)  # noqa: E712 (elementwise)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            try:
                return _Val("num", pd.to_numeric(s).to_numpy(dtype="float64", na_value=np.nan), n, na, col)
            except (TypeError, ValueError):
                pass
        if inferred in ("datetime", "datetime64", "date"):
            try:
                d = pd.to_datetime(s.reset_index(drop=True))
                return _Val("date", d, n, d.isna().to_numpy(), col)
            except (TypeError, ValueError):
                pass
        if inferred in ("string", "mixed", "mixed-integer", "unicode"):
            return _Val("text", s.reset_index(drop=True).astype("str"), n, na, col)
    return _Val("other", s.reset_index(drop=True), n, s.isna().to_numpy(), col)


_KIND_WORDS = {"text": "holds text", "num": "holds numbers", "bool": "is a yes/no column",
               "date": "holds dates", "other": "has an unsupported type"}
_KIND_HINT = {"text": "compare it with a string", "num": "compare it with a number",
              "bool": "compare it with True/False", "date": "compare it with a date string like '2024-01-31'",
              "other": "only isna()/notna() work on it"}


class _Evaluator:
    def __init__(self, expr: Expression, df: pd.DataFrame):
        self.expr = expr
        self.ctx = expr.context
        self.df = df
        self.n = len(df)
        self.cache: dict[str, _Val] = {}

    def fail(self, msg: str) -> ExpressionError:
        return _err(self.ctx, msg)

    # -- values
    def col(self, name: str) -> _Val:
        if name not in self.cache:
            s = self.df[name]
            if isinstance(s, pd.DataFrame):
                raise self.fail(f"column '{name}' appears more than once in the data")
            self.cache[name] = _column(s, name)
        return self.cache[name]

    def value(self, node: ast.AST) -> _Val:
        if isinstance(node, ast.Constant):
            return _Val("const", node.value, self.n)
        if isinstance(node, ast.Name):
            return self.col(node._col)
        if isinstance(node, ast.BoolOp):
            masks = [self.mask(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = masks[0]
            for m in masks[1:]:
                out = combine(out, m)
            return _Val("mask", out, self.n)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return _Val("mask", ~self.mask(node.operand), self.n)
            v = self.value(node.operand)
            self.need_number(v, node)
            if v.kind == "const":
                return _Val("const", -v.data if isinstance(node.op, ast.USub) else +v.data, self.n)
            x = v.numbers()
            return _Val("num", -x if isinstance(node.op, ast.USub) else x, self.n)
        if isinstance(node, ast.BinOp):
            return self.arith(node)
        if isinstance(node, ast.Compare):
            return _Val("mask", self.compare(node), self.n)
        if isinstance(node, ast.Call):
            v = self.value(node.args[0])
            return _Val("mask", np.asarray(FUNCTIONS[node.func.id](v, self.ctx), dtype=bool), self.n)
        raise self.fail(f'cannot evaluate "{getattr(node, "_frag", "?")}"')  # unreachable after checking

    def need_number(self, v: _Val, node: ast.AST) -> None:
        if v.is_number() or v.kind == "null":
            return
        if v.col is not None:
            raise self.fail(f"'{v.col}' {_KIND_WORDS[v.kind]}; arithmetic needs numbers (in \"{node._frag}\")")
        raise self.fail(f'arithmetic needs numbers, not {v.data!r} (in "{node._frag}")')

    def arith(self, node: ast.BinOp) -> _Val:
        left, right = self.value(node.left), self.value(node.right)
        self.need_number(left, node)
        self.need_number(right, node)
        fn = _BINOPS[type(node.op)][1]
        with np.errstate(all="ignore"):
            if left.kind == "const" and right.kind == "const":
                return _Val("const", float(fn(np.float64(left.data), np.float64(right.data))), self.n)
            out = fn(left.numbers(), right.numbers())
        return _Val("num", np.asarray(out, dtype="float64"), self.n)

    # -- conditions
    def mask(self, node: ast.AST) -> np.ndarray:
        return self.to_mask(self.value(node), node)

    def to_mask(self, v: _Val, node: ast.AST) -> np.ndarray:
        if v.kind in ("mask", "bool"):
            return v.data
        if v.kind == "null":
            return np.zeros(self.n, dtype=bool)
        if v.kind == "const":
            if isinstance(v.data, bool):
                return np.full(self.n, v.data)
            raise self.fail(f'"{node._frag}" is not a condition; use True/False or a comparison')
        if v.kind == "num" and v.col is not None:
            with np.errstate(invalid="ignore"):
                return (v.data != 0) & ~v.na_mask()
        if v.col is not None:
            raise self.fail(f"'{v.col}' is not a yes/no column ({_KIND_WORDS[v.kind]}); compare it, e.g. "
                            + {"text": f"{_as_name(v.col)} == 'x'",
                               "date": f"{_as_name(v.col)} >= '2024-01-01'"}.get(v.kind, f"notna({_as_name(v.col)})"))
        raise self.fail(f'"{node._frag}" gives numbers, not yes/no; compare it, e.g. ({node._frag}) > 0')

    def compare(self, node: ast.Compare) -> np.ndarray:
        out = None
        left = self.value(node.left)
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                res = self.isin(left, right_node, negate=isinstance(op, ast.NotIn), node=node)
                right = None
            else:
                right = self.value(right_node)
                res = self.compare2(_CMPOPS[type(op)], left, right, left_node, right_node, node)
            out = res if out is None else out & res
            left, left_node = right, right_node
        return out

    def mismatch(self, col_val: _Val, other: Any, node: ast.AST) -> ExpressionError:
        return self.fail(f"'{col_val.col}' {_KIND_WORDS[col_val.kind]}; {_KIND_HINT[col_val.kind]}, "
                         f"not {other} (in \"{node._frag}\")")

    @staticmethod
    def _family(v: _Val) -> str:
        if v.kind in ("num", "bool", "mask"):
            return "number"
        if v.kind == "const":
            return "text" if isinstance(v.data, str) else "number"
        return v.kind  # text, date, null, other

    def compare2(self, op, left: _Val, right: _Val, left_node, right_node, node) -> np.ndarray:
        fn = op[1]
        if left.kind == "const" and right.kind == "const":
            try:
                return np.full(self.n, bool(fn(left.data, right.data)))
            except TypeError:
                raise self.fail(f'cannot compare "{node._frag}": text with a number') from None
        for v in (left, right):
            if v.kind == "other":
                raise self.fail(f"'{v.col}' {_KIND_WORDS['other']} ({self.df[v.col].dtype}); {_KIND_HINT['other']}")
        fl, fr = self._family(left), self._family(right)
        if "null" in (fl, fr):
            return np.zeros(self.n, dtype=bool)
        lx, rx = left.data, right.data
        if fl == "date" and right.kind == "const" and fr == "text":
            rx = self.timestamp(right.data, left)
        elif fr == "date" and left.kind == "const" and fl == "text":
            lx = self.timestamp(left.data, right)
        elif fl != fr:
            if left.col is not None:
                raise self.mismatch(left, right_node._frag, node)
            if right.col is not None:
                raise self.mismatch(right, left_node._frag, node)
            raise self.fail(f'cannot compare "{node._frag}": {fl} with {fr}')
        try:
            with np.errstate(invalid="ignore"):
                res = fn(lx, rx)
        except TypeError as e:
            raise self.fail(f'cannot compare "{node._frag}": {e}') from None
        if isinstance(res, pd.Series):
            res = res.to_numpy(dtype=bool, na_value=False)
        else:
            res = np.asarray(res, dtype=bool)
            if res.ndim == 0:
                res = np.full(self.n, bool(res))
        return res & ~left.na_mask() & ~right.na_mask()

    def timestamp(self, text: str, col: _Val):
        try:
            ts = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise self.fail(f"'{text}' is not a date (comparing with the date column '{col.col}')") from None
        if ts is pd.NaT:
            raise self.fail(f"'{text}' is not a date (comparing with the date column '{col.col}')")
        tz = getattr(col.data.dtype, "tz", None)
        if tz is not None and ts.tzinfo is None:
            ts = ts.tz_localize(tz)
        elif tz is None and ts.tzinfo is not None:
            ts = ts.tz_convert(None)
        return ts

    def isin(self, left: _Val, lst: ast.AST, *, negate: bool, node: ast.AST) -> np.ndarray:
        items = [self.literal(e) for e in lst.elts]
        if left.kind == "null":
            return np.zeros(self.n, dtype=bool)
        if left.kind == "const":
            hit = left.data in items
            return np.full(self.n, hit != negate)
        fam = self._family(left)
        if fam == "other":
            raise self.fail(f"'{left.col}' {_KIND_WORDS['other']}; {_KIND_HINT['other']}")
        for e, item in zip(lst.elts, items):
            ok = isinstance(item, str) if fam in ("text", "date") else not isinstance(item, str)
            if not ok:
                if left.col is not None:
                    raise self.mismatch(left, e._frag, node)
                raise self.fail(f'cannot compare "{node._frag}": numbers with text {e._frag}')
        if fam == "text":
            hit = left.data.isin(items).to_numpy(dtype=bool)
        elif fam == "date":
            stamps = [self.timestamp(t, left) for t in items]
            hit = left.data.isin(stamps).to_numpy(dtype=bool)
        else:
            hit = np.isin(left.data, np.asarray(items, dtype="float64")) if items else np.zeros(self.n, bool)
        if negate:
            hit = ~hit
        return hit & ~left.na_mask()

    @staticmethod
    def literal(node: ast.AST):
        if isinstance(node, ast.UnaryOp):
            v = node.operand.value
            return -v if isinstance(node.op, ast.USub) else v
        return node.value


def _run(expr: Expression, df: pd.DataFrame) -> tuple[_Evaluator, _Val]:
    if not isinstance(expr, Expression):
        raise TypeError(f"expected an Expression from parse_expression(), got {type(expr).__name__}")
    check_columns(expr, df.columns)
    ev = _Evaluator(expr, df)
    return ev, ev.value(expr._tree)


def evaluate(expr: Expression, df: pd.DataFrame) -> pd.Series:
    """The expression's value for every row (index = ``df.index``), vectorised.

    A boolean expression (comparison, and/or/not, isna/notna, True/False, a yes/no column) gives a numpy-bool
    Series with missing counted as False; arithmetic gives float64 (NaN = missing); a bare column gives its values.
    Calls :func:`check_columns` first.
    """
    ev, v = _run(expr, df)
    if v.kind in ("mask", "bool"):
        data = v.data
    elif v.kind == "const":
        data = np.full(ev.n, v.data, dtype=bool if isinstance(v.data, bool) else None)
    elif v.kind == "num":
        data = v.data
    elif v.kind == "null":
        data = np.full(ev.n, np.nan)
    else:  # text / date / other: the column itself
        return df[v.col].copy()
    # a bare column's array may be a view of df's data: copy it so the caller cannot write through to df
    return pd.Series(data, index=df.index, copy=v.col is not None)


def evaluate_mask(expr: Expression, df: pd.DataFrame) -> pd.Series:
    """A plain bool Series (missing = False), index = ``df.index``; :class:`ExpressionError` naming the context when
    the expression is not a condition (e.g. ``visits + 1`` or a text column)."""
    ev, v = _run(expr, df)
    return pd.Series(ev.to_mask(v, expr._tree), index=df.index, dtype=bool, copy=v.col is not None)
