"""Money in one currency: amounts in several currencies become the home currency, or the run stops.

Two sources of rates, in this order:

* an ``exchange_rate`` column, as Zoho writes it: units of the record's currency per one unit of the org's home
  currency (a home-currency row has 1), so ``amount / exchange_rate`` is the amount at home;
* ``values: {fx: {home: USD, EUR: 1.08, GBP: 1.27}}`` in params: home-currency units per one unit of each currency
  (``home`` may be left out when one currency has the rate 1), so ``amount * rate`` is the amount at home.

Mixed currencies with neither stop the run naming the column and the currencies found: a sum across currencies is
never silent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import ParamsError


def _rates(fx: Mapping[str, str], *, where: str) -> tuple[str | None, dict[str, float]]:
    """``values.fx`` as (home, {currency: home units per unit}); rates checked as positive numbers."""
    rates: dict[str, float] = {}
    for code, rate in fx.items():
        if str(code).strip().lower() == "home":
            continue
        try:
            value = float(rate)
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0:
            raise ParamsError(f"{where}.values.fx.{code}: {rate!r} is not a positive number (home-currency units "
                              f"per one {code})")
        rates[str(code).strip().upper()] = value
    home = next((str(v).strip().upper() for k, v in fx.items() if str(k).strip().lower() == "home"), None)
    if home is None:
        at_one = [c for c, r in rates.items() if r == 1]
        home = at_one[0] if len(at_one) == 1 else None
    if home is None:
        raise ParamsError(f"{where}.values.fx: name the home currency, e.g. `fx: {{home: USD, EUR: 1.08}}` (no "
                          f"single currency has the rate 1)")
    rates.setdefault(home, 1.0)
    return home, rates


def _listing(counts: pd.Series) -> str:
    """``EUR (6 rows), USD (4 rows)``: most rows first, ties by name."""
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    return ", ".join(f"{c} ({n:,} row{'s' if n != 1 else ''})" for c, n in counts.items())


def to_home_currency(df: pd.DataFrame, fx: Mapping[str, str] | None, *, where: str,
                     columns: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, str | None, pd.Index, str]:
    """``amount`` in the home currency.

    Parameters
    ----------
    df : DataFrame
        A typed opportunities table (``amount`` a number; ``currency`` text, ``exchange_rate`` a number, if any).
    fx : mapping or None
        ``values.fx`` of the table's params.
    where : str
        The table, for messages.
    columns : mapping, optional
        Canonical column -> the export's column it was read from, for messages.

    Returns
    -------
    data : DataFrame
        A new frame: ``currency`` upper-cased, a blank one filled where it is known (the only currency named, or
        the home currency at rate 1); where an amount was converted, ``amount`` is the home currency and
        ``amount_original`` the amount as exported.
    home : str or None
        The currency every amount is in now (None when the export names none).
    changed : Index
        The rows whose amount was converted or whose blank currency was filled.
    detail : str
        For the audit.

    Raises
    ------
    ParamsError
        Several currencies and no rate; a currency ``values.fx`` has no rate for; an amount in a currency other than
        the home one (or in none) without a positive ``exchange_rate``; a home-currency row whose rate is not 1.

    Examples
    --------
    >>> df = pd.DataFrame({"amount": [100.0, 200.0], "currency": ["usd", "EUR"]})
    >>> out, home, changed, _ = to_home_currency(df, {"EUR": "1.1", "USD": "1"}, where="t")
    >>> out["amount"].round(2).tolist(), home, list(changed)
    ([100.0, 220.0], 'USD', [1])
    """
    source = dict(columns or {})

    def named(col: str) -> str:
        return f"column {col!r}" + (f" (the export's {source[col]!r})" if source.get(col, col) != col else "")

    def rows_of(mask: pd.Series) -> str:
        return ", ".join(str(i + 1) for i in out.index[mask][:5])

    out = df.copy()
    if "currency" not in out.columns:
        if fx:
            home, _ = _rates(fx, where=where)
            return out, home, pd.Index([]), f"no currency column: every amount taken as {home}"
        return out, None, pd.Index([]), ""
    code = out["currency"].astype("str").str.strip().str.upper().where(out["currency"].notna())
    code = code.where(code != "")
    amount = out["amount"] if "amount" in out.columns else pd.Series(np.nan, index=out.index)
    counts = code.value_counts()
    blank = code.isna() & amount.notna()
    has_rate_column = "exchange_rate" in out.columns and out["exchange_rate"].notna().any()
    notes: list[str] = []
    if has_rate_column:
        rate = pd.to_numeric(out["exchange_rate"], errors="coerce")
        at_one = code[np.isclose(rate, 1)].value_counts()
        home = (_rates(fx, where=where)[0] if fx else at_one.index[0] if len(at_one) else None)
        if home is None:
            raise ParamsError(f"{where}: no row has exchange_rate 1, so the home currency is unknown; name it with "
                              f"`values: {{fx: {{home: USD}}}}`")
        off = code.eq(home) & rate.notna() & ~np.isclose(rate, 1)
        if off.any():
            raise ParamsError(f"{where}: {named('exchange_rate')} is not 1 on {int(off.sum()):,} rows in the home "
                              f"currency {home} (data rows {rows_of(off)}): the rates are not per one {home}")
        fill = blank & np.isclose(rate, 1)  # a blank currency at rate 1 is the home currency
        foreign = amount.notna() & code.ne(home).fillna(True) & ~fill
        bad = foreign & ~(rate > 0)
        if bad.any():
            raise ParamsError(f"{where}: {named('exchange_rate')} is missing or not positive on {int(bad.sum()):,} "
                              f"rows whose currency is not {home} or is blank (data rows {rows_of(bad)}); fill it in "
                              f"the export")
        converted = amount / rate
        how = f"amount / exchange_rate (units of the currency per one {home})"
    else:
        if len(counts) > 1 and not fx:
            raise ParamsError(f"{where}: {named('currency')} holds {len(counts)} currencies ({_listing(counts)}) "
                              f"and there is no exchange rate, so amounts cannot be summed; add an exchange-rate "
                              f"column (`columns: {{exchange_rate: <column>}}`) or rates to the home currency "
                              f"(`values: {{fx: {{home: {counts.index[0]}, {counts.index[-1]}: <rate>}}}}`)")
        home, rates = _rates(fx, where=where) if fx else (counts.index[0] if len(counts) else None, {})
        if blank.any() and len(counts) > 1:
            raise ParamsError(f"{where}: {named('currency')} is blank on {int(blank.sum()):,} rows with an amount "
                              f"(data rows {rows_of(blank)}) while the others hold {_listing(counts)}; fill it in "
                              f"the export")
        fill = blank & (len(counts) == 1)
        missing = counts[~counts.index.isin(list(rates))] if fx else counts.iloc[:0]
        if len(missing):
            raise ParamsError(f"{where}.values.fx: no rate for {_listing(missing)} in {named('currency')}; add "
                              f"`{missing.index[0]}: <{home} per one {missing.index[0]}>`")
        filled_code = code.where(~fill, counts.index[0] if len(counts) else None)
        foreign = amount.notna() & filled_code.notna() & filled_code.ne(home)
        converted = amount * filled_code.map(rates).astype(float)
        how = f"amount x values.fx ({home} per one unit)"
    if fill.any():
        taken = home if has_rate_column else counts.index[0]
        code = code.where(~fill, taken)
        notes.append(f"{int(fill.sum()):,} amounts without a currency taken as {taken}"
                     + (" (exchange_rate 1)" if has_rate_column else ", the only currency named"))
    out["currency"] = code
    if foreign.any():
        out["amount_original"] = amount
        out["amount"] = np.where(foreign, converted, amount)
    changed = out.index[foreign | fill]
    by_code = code[foreign].fillna("no currency").value_counts()
    if foreign.any():
        notes.insert(0, f"{int(foreign.sum()):,} amounts in {_listing(by_code)} converted to {home} by {how}")
    detail = "; ".join(notes) or (f"every amount already in {home}" if home else "")
    return out, home, changed, detail
