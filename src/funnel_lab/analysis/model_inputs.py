"""What a model reads from a cleaned column: its kind, its values as numbers or as text, the outcome as 0/1;
the stratified sample every model here fits on above a size, and numbers written short for rules and drivers.

Shared by the targeting tree and baseline (:mod:`.targeting`) and the boosted list (:mod:`.boosting`), so that every
model of a run reads a column the same way.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import ParamsError


def is_flag(s: pd.Series) -> bool:
    """Yes/no: a boolean column, or an object column holding only booleans (and gaps)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if s.dtype == object:
        known = s.dropna()
        return bool(len(known)) and bool(known.map(type).isin([bool, np.bool_]).all())
    return False


def column_kind(s: pd.Series) -> str:
    """``flag`` (yes/no), ``number``, ``text`` (any category), ``date`` or ``other`` (timedeltas, periods...)."""
    if is_flag(s):
        return "flag"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "date"
    if pd.api.types.is_numeric_dtype(s.dtype):
        return "number"
    if (pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)
            or s.dtype == object):
        return "text"
    return "other"


def as_float(s: pd.Series) -> np.ndarray:
    """Numbers and yes/no flags as float64 (yes = 1), missing as NaN."""
    if is_flag(s):
        s = s.astype("boolean")
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
        return s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")


def as_text(s: pd.Series) -> np.ndarray:
    """Categories as an object array of str, missing as NaN (what SimpleImputer recognises)."""
    return s.astype("str").to_numpy(dtype=object, na_value=np.nan)


def split_kinds(X: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """(numeric incl. flags, categorical, flags) among the columns of ``X``.

    Raises
    ------
    ParamsError
        A column of another kind (dates, durations): no model here can use it.
    """
    numeric, categorical, flags = [], [], []
    for c in X.columns:
        k = column_kind(X[c])
        if k == "flag":
            numeric.append(c)
            flags.append(c)
        elif k == "number":
            numeric.append(c)
        elif k == "text":
            categorical.append(c)
        else:
            raise ParamsError(f"column '{c}' has type {X[c].dtype}, which a tree cannot use (dates and durations are "
                             f"left out by candidate_features)")
    return numeric, categorical, flags


def outcome01(y) -> np.ndarray:
    """The outcome as an int array of 0/1 (from numbers, booleans or nullable integers).

    Raises
    ------
    ParamsError
        Missing values, or values other than 0/1.
    """
    values = pd.Series(np.asarray(y) if not isinstance(y, pd.Series) else y.to_numpy())
    if values.isna().any():
        raise ParamsError(f"the outcome has {int(values.isna().sum())} missing values; it must be 0/1")
    arr = values.astype("float64").to_numpy()
    if not np.isin(arr, (0, 1)).all():
        raise ParamsError(f"the outcome must be 0/1; found {sorted(set(arr[~np.isin(arr, (0, 1))].tolist()))[:5]}")
    return arr.astype(int)


def integer_columns(X: pd.DataFrame, numeric: Sequence[str]) -> list[str]:
    """The numeric columns whose known values are all whole numbers (read as ``>= 2``, not ``> 1.5``)."""
    out = []
    for c in numeric:
        v = as_float(X[c])
        v = v[~np.isnan(v)]
        if len(v) and np.all(v == np.round(v)):
            out.append(c)
    return out


def stratified_sample(n_rows: int, y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row positions: every row up to ``size``, else a sample of ``size`` rows stratified by ``y``, in row order."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(train_test_split(np.arange(n_rows), train_size=size, stratify=y, random_state=seed)[0])


def short_number(v: float) -> str:
    """A number with about three significant digits, never rounding away whole units (1234.6 -> 1235,
    0.04562 -> 0.0456)."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    text = f"{round(v, digits):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
