"""Cleaning raw -> canonical, every step audited: nothing is lost, removed rows go to the quarantine with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Cleaning
from ..errors import ParamsError, did_you_mean
from .coerce import coerce_column, date_formats_found, infer_kind
from .currency import to_home_currency
from .ingest import Table
from .schemas import column_kinds

STATUSES = ("open", "won", "lost")
#: A canonical column whose cells fail to parse more often than this is an input error, not a few bad rows.
MAX_BAD_SHARE = 0.05
#: Columns whose latest value says which of two duplicate records is newer.
_RECENCY = ("last_modified_date", "last_modified", "modified_at", "updated_at", "system_modstamp", "created_at")
_LEGAL_SUFFIX = re.compile(
    r"\b(incorporated|inc|corporation|corp|company|co|limited|ltd|llc|plc|gmbh|holdings?|group|grp)\b\.?|"
    r"(股份有限公司|有限责任公司|股份公司|有限公司|集团|公司)"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
AUDIT_COLUMNS = ["step", "rows_in", "rows_out", "rows_removed", "rows_changed", "detail", "table"]


@dataclass
class Cleaned:
    """A cleaned table and the record of what cleaning did to it."""

    name: str
    data: pd.DataFrame
    audit: pd.DataFrame
    quarantine: pd.DataFrame  # removed rows as read: source_row, reason, then the source columns
    placeholders: pd.DataFrame  # column, token, cells
    types: pd.DataFrame  # column, kind, converted, failed, detail
    cell_issues: pd.DataFrame  # source_row, column, value, problem
    duplicates: pd.DataFrame  # group, source_row, <id>, kept, match, score
    flags: pd.DataFrame  # column, flag, detail
    standardised: pd.DataFrame  # column, before, after, cells
    currency: str | None = None  # the one currency every amount is in (None: the export names none)

    @property
    def merged_ids(self) -> pd.Series:
        """Removed duplicate id -> the id of the record kept for it, so that other tables (stage history) follow the
        merge instead of pointing at a quarantined row."""
        d = self.duplicates
        if d.empty:
            return pd.Series(dtype="str")
        id_col = d.columns[2]
        kept = d[d["kept"]].set_index(["match", "group"])[id_col]
        removed = d[~d["kept"]]
        target = pd.Series(kept.reindex(pd.MultiIndex.from_frame(removed[["match", "group"]])).to_numpy(),
                           index=removed[id_col].to_numpy())
        return target[target.index != target.to_numpy()].dropna()


class _Recorder:
    """Collects audit rows and removed rows while the steps run."""

    def __init__(self, table: str, n: int) -> None:
        self.table = table
        self.rows: list[dict] = []
        self.removed: list[pd.Series] = []  # index -> reason
        self.n = n
        self.changed = pd.Index([])

    def step(self, name: str, before: pd.DataFrame, after: pd.DataFrame, *, changed: pd.Index | None = None,
             detail: str = "", reasons: pd.Series | None = None) -> None:
        removed = before.index.difference(after.index)
        changed = changed if changed is not None else pd.Index([])
        self.changed = self.changed.union(changed)
        if len(removed):
            why = reasons.reindex(removed) if reasons is not None else pd.Series(name, index=removed)
            self.removed.append(why.fillna(name).astype("str"))
        self.rows.append({"step": name, "rows_in": len(before), "rows_out": len(after), "rows_removed": len(removed),
                          "rows_changed": len(changed), "detail": detail, "table": self.table})

    def audit(self, kept: pd.Index) -> pd.DataFrame:
        """The steps, then an ``overall`` row; its rows_changed counts the kept rows that any step changed."""
        rows = self.rows + [{
            "step": "overall", "rows_in": self.n, "rows_out": len(kept),
            "rows_removed": sum(r["rows_removed"] for r in self.rows),
            "rows_changed": len(self.changed.intersection(kept)),
            "detail": "rows_in = rows_out + rows_removed", "table": self.table}]
        return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def _is_blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype("str").str.strip() == "")


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object]


def _source_row(index: pd.Index) -> np.ndarray:
    """1-based data row of the export (the header is not counted)."""
    return np.asarray(index) + 1


# --------------------------------------------------------------------------- steps


def replace_placeholders(df: pd.DataFrame, tokens: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Index]:
    """Cells equal to a placeholder (trimmed, any case) become missing.

    Returns
    -------
    data : DataFrame
    counts : DataFrame
        ``column``, ``token``, ``cells`` (the placeholder as written most often), one row per column and token.
    rows_changed : Index
        The rows where a placeholder was replaced.
    """
    wanted = {t.strip().casefold(): t for t in tokens}
    out = df.copy()
    changed = pd.Series(False, index=df.index)
    counts = []
    for col in _text_columns(df):
        s = df[col]
        key = s.astype("str").str.strip().str.casefold()
        hit = s.notna() & key.isin(wanted)
        blank = hit & (key == "")
        for token, n in key[hit & ~blank].value_counts().items():
            counts.append({"column": col, "token": wanted[token], "cells": int(n)})
        if hit.any():
            out[col] = s.mask(hit)
            changed |= hit & ~blank  # an empty cell was already missing: not a change
    counts_df = pd.DataFrame(counts, columns=["column", "token", "cells"])
    return out, counts_df, df.index[changed.to_numpy()]


def coerce_types(df: pd.DataFrame, *, table: str, date_format: str, column_map: pd.DataFrame,
                 where: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Give every column one type, decided per column: canonical columns their fixed type, others the inferred one.

    Returns
    -------
    data : DataFrame
    types : DataFrame
        ``column``, ``kind``, ``converted``, ``failed``, ``detail``.
    cell_issues : DataFrame
        ``source_row``, ``column``, ``value``, ``problem``: filled cells that did not parse (now missing).

    Raises
    ------
    ParamsError
        A canonical column where more than 5% of the filled cells do not parse, or a date column mixing formats.
    """
    kinds = column_kinds(table)  # every other column's type is inferred from its cells
    source = dict(zip(column_map["column"], column_map["source_column"]))
    out = df.copy()
    types, issues = [], []
    for col in df.columns:
        s = df[col]
        kind = kinds.get(col) or infer_kind(s)
        if kind in ("id", "status", "text", "empty"):
            if kind in ("id", "text", "status") and not pd.api.types.is_string_dtype(s):
                out[col] = s.astype("str").where(s.notna())
            types.append({"column": col, "kind": "text" if kind != "empty" else "empty", "converted": 0,
                          "failed": 0, "detail": ""})
            continue
        target = "boolean" if kind == "binary" else kind
        res = coerce_column(s, target, date_format=date_format)
        filled = int((~_is_blank(s)).sum())
        if col in kinds and filled and len(res.failed) / filled > MAX_BAD_SHARE:
            raise ParamsError(_bad_column_message(s, res, col=col, kind=target, where=where, source=source.get(col, col)))
        values = res.values.astype("Int64") if kind == "binary" else res.values
        if col in kinds and kind == "number":
            values = values.astype("float64")  # canonical amounts and probabilities are floats (DESIGN.md)
        out[col] = values
        types.append({"column": col, "kind": kind if kind != "binary" else "0/1", "converted": filled - len(res.failed),
                      "failed": len(res.failed), "detail": res.detail})
        for idx, value in res.failed.items():
            issues.append({"source_row": int(idx) + 1, "column": col, "value": value, "problem": f"not a {target}"})
    return (out, pd.DataFrame(types, columns=["column", "kind", "converted", "failed", "detail"]),
            pd.DataFrame(issues, columns=["source_row", "column", "value", "problem"]))


def _bad_column_message(s: pd.Series, res, *, col: str, kind: str, where: str, source: str) -> str:
    filled = s[~_is_blank(s)]
    share = len(res.failed) / len(filled)
    examples = ", ".join(f"row {i + 1}: {v!r}" for i, v in list(res.failed.items())[:3])
    if kind == "date":
        found = date_formats_found(filled)
        if len(found) > 1:
            listing = "; ".join(f"{n:,} cells as {fmt}" for fmt, n in found)
            return (f"{where}: column {col!r} (source {source!r}) mixes date formats ({listing}); e.g. {examples}. "
                    f"Fix the export or set `date_format:` for this table")
    return (f"{where}: column {col!r} (source {source!r}): {share:.0%} of the filled cells are not a {kind} "
            f"(e.g. {examples}); expected a {kind} column")


def standardise_text(df: pd.DataFrame, *, skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame, pd.Index]:
    """Trim and collapse white space; merge case variants onto the most frequent spelling (``google`` -> ``Google``).

    Returns
    -------
    data : DataFrame
    changes : DataFrame
        ``column``, ``before``, ``after``, ``cells``: every distinct rewrite.
    rows_changed : Index
    """
    out = df.copy()
    changed = pd.Series(False, index=df.index)
    changes = []
    for col in _text_columns(df):
        if col in skip:
            continue
        s = df[col]
        tidy = s.str.strip().str.replace(r"\s+", " ", regex=True)
        # case variants are merged in category-like columns only: ids (Salesforce's are case-sensitive) and free
        # text, where most values are distinct, keep their case
        filled, key = int(tidy.notna().sum()), tidy.str.casefold()
        if filled and key.nunique() > 0.5 * filled:
            key = tidy
        counts = pd.DataFrame({"key": key, "tidy": tidy}).dropna().value_counts().reset_index(name="n")
        counts = counts.sort_values(["key", "n", "tidy"], ascending=[True, False, True])
        canonical = counts.drop_duplicates("key").set_index("key")["tidy"]
        new = key.map(canonical).where(s.notna())
        diff = s.notna() & (new != s)
        if diff.any():
            out[col] = new
            changed |= diff
            pairs = pd.DataFrame({"before": s[diff], "after": new[diff]}).value_counts().reset_index(name="cells")
            changes += [{"column": col, **r} for r in pairs.to_dict("records")]
    return out, pd.DataFrame(changes, columns=["column", "before", "after", "cells"]), df.index[changed.to_numpy()]


def check_status(df: pd.DataFrame, *, where: str) -> tuple[pd.DataFrame, pd.Series]:
    """Keep rows whose status is open/won/lost; return the others' reasons (a ``deleted`` deal: "deleted in the
    CRM"). Adds ``won`` (1/0, missing when open).

    Raises
    ------
    ParamsError
        When most rows have a status outside open/won/lost: a missing ``values: {status: ...}`` map, not bad rows.
    """
    status = df["status"].str.strip().str.lower()
    bad = ~status.isin(STATUSES)
    if bad.mean() > 0.5:
        top = df.loc[bad, "status"].fillna("<missing>").value_counts().head(6)
        listing = ", ".join(f"{v!r} ({n:,} rows)" for v, n in top.items())
        raise ParamsError(f"{where}.values.status: status must be open, won or lost, but {bad.mean():.0%} of rows "
                          f"are not: {listing}; map them, e.g. values: {{status: {{{top.index[0]}: open}}}}")
    reasons = ("status " + df.loc[bad, "status"].fillna("<missing>").map(repr) + " is not open/won/lost")
    # a deal the CRM deleted (Pipedrive exports them with status Deleted) is no deal: set aside, said as such
    reasons = reasons.mask(status[bad] == "deleted", "deleted in the CRM (status 'Deleted')")
    out = df[~bad].copy()
    out["status"] = status[~bad]
    won = out["status"].map({"won": 1, "lost": 0})
    out.insert(out.columns.get_loc("status") + 1, "won", won.astype("Int64"))
    return out, reasons


def drop_missing_ids(df: pd.DataFrame, id_col: str) -> tuple[pd.DataFrame, pd.Series]:
    """Rows without an id cannot be joined or counted once: quarantine them."""
    bad = _is_blank(df[id_col])
    return df[~bad], pd.Series(f"missing {id_col}", index=df.index[bad])


def _keep_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rank rows best first: most complete, then latest (a recency column if there is one), then later in the file."""
    rank = pd.DataFrame({"filled": df.notna().sum(axis=1), "pos": np.arange(len(df))}, index=df.index)
    recency = next((c for c in _RECENCY if c in df.columns and pd.api.types.is_datetime64_any_dtype(df[c])), None)
    keys = ["filled"] + (["recent"] if recency else []) + ["pos"]
    if recency:
        rank["recent"] = df[recency]
    return rank.sort_values(keys, ascending=False, na_position="last")


def dedupe_exact(df: pd.DataFrame, keys: list[str], id_col: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Keep one record per key (most complete, then latest); list every merged group.

    Returns
    -------
    data : DataFrame
    reasons : Series
        Why each removed row went (``duplicate of <id> on <keys>``).
    groups : DataFrame
        ``group``, ``source_row``, ``<id_col>``, ``kept``, ``match``, ``score``.
    """
    order = _keep_order(df).index
    ranked = df.loc[order]
    dup = ranked.duplicated(subset=keys, keep="first")
    if not dup.any():
        return df, pd.Series(dtype="str"), _empty_groups(id_col)
    key = pd.Series(ranked.groupby(keys, dropna=False, sort=True).ngroup().to_numpy(), index=ranked.index)
    in_group = key.isin(key[dup])
    members = ranked[in_group]
    first = members.groupby(key[in_group], sort=False)[id_col].transform("first")
    reasons = ("duplicate of " + first[dup[in_group]].astype("str") + " on " + ", ".join(keys))
    group_no = key[in_group].rank(method="dense").astype(int)
    groups = pd.DataFrame({"group": group_no, "source_row": _source_row(members.index), id_col: members[id_col],
                           "kept": ~dup[in_group], "match": "exact: " + ", ".join(keys), "score": 100.0})
    kept = df.drop(index=ranked.index[dup])
    return kept, reasons, groups.sort_values(["group", "kept"], ascending=[True, False]).reset_index(drop=True)


def _empty_groups(id_col: str) -> pd.DataFrame:
    return pd.DataFrame(columns=["group", "source_row", id_col, "kept", "match", "score"])


def normalise_name(s: pd.Series) -> pd.Series:
    """Company names for comparison: case-folded, legal suffixes and punctuation removed (``ACME Corp.`` -> ``acme``)."""
    text = s.astype("str").str.casefold().str.replace(_LEGAL_SUFFIX, " ", regex=True)
    return text.str.replace(r"[^\w]+", " ", regex=True).str.strip().where(s.notna())


def _cjk_key(name: str) -> str:
    """Chinese names have no spaces and move the city around (云帆科技（郑州） ~ 郑州云帆科技): compare their characters."""
    return "".join(sorted(name.replace(" ", ""))) if _CJK.search(name) else name


def name_similarity(a: list[str], b: list[str]) -> np.ndarray:
    """Pairwise 0-100 similarity of normalised names: token-sort ratio, or character overlap for Chinese names."""
    from rapidfuzz import fuzz
    from rapidfuzz.process import cdist

    words = cdist(a, b, scorer=fuzz.token_sort_ratio, dtype=np.float32)
    chars = cdist([_cjk_key(x) for x in a], [_cjk_key(x) for x in b], scorer=fuzz.ratio, dtype=np.float32)
    return np.maximum(words, chars)


def dedupe_fuzzy(df: pd.DataFrame, *, columns: list[str], threshold: float, id_col: str,
                 block: list[str], min_agreement: float = 0.8) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Merge near-duplicate records: similar names (rapidfuzz) within a block that agree on the other fields.

    Two rows are the same record entered twice when they share the ``block`` columns exactly (e.g. created_at and
    owner), every ``columns`` value scores at least ``threshold`` (:func:`name_similarity` of the normalised names),
    and at least ``min_agreement`` of their other fields are equal. Groups are closed transitively; the most
    complete, then latest record is kept.
    """
    others = [c for c in df.columns if c not in set(columns) | set(block) | {id_col, "won"}]
    # Equal-or-both-missing per field, compared as integer codes so that a pair costs one numpy comparison.
    codes = np.column_stack([pd.factorize(df[c], use_na_sentinel=True)[0] for c in others]) if others else None
    names = {c: normalise_name(df[c]).fillna("").to_numpy() for c in columns}
    if block:
        blocks = df.groupby(block, dropna=True, sort=False).indices
    else:
        # no columns to block on: compare only names that start alike, never all n x n pairs
        first = pd.Series(names[columns[0]]).str.replace(" ", "").str[:2]
        blocks = first.groupby(first.to_numpy()).indices
    parent = np.arange(len(df))
    best = np.zeros(len(df), dtype=np.float32)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pos in blocks.values():
        if len(pos) < 2:
            continue
        score = np.minimum.reduce([name_similarity(list(names[c][pos]), list(names[c][pos])) for c in columns])
        for i, j in zip(*np.nonzero(np.triu(score >= threshold, k=1))):
            a, b = pos[i], pos[j]
            if codes is not None and (codes[a] == codes[b]).mean() < min_agreement:
                continue
            parent[find(a)] = find(b)
            best[a] = max(best[a], score[i, j])
            best[b] = max(best[b], score[i, j])
    matched = np.nonzero(best > 0)[0]
    if not len(matched):
        return df, pd.Series(dtype="str"), _empty_groups(id_col)
    roots = pd.Series([find(i) for i in matched], index=df.index[matched])
    roots = roots.loc[_keep_order(df.loc[roots.index]).index]
    keeper = roots.groupby(roots, sort=False).transform(lambda g: g.index[0])
    removed = keeper.index[keeper.index != keeper.to_numpy()]
    score_of = pd.Series(best[matched], index=df.index[matched])
    label = " ~ ".join(columns)
    reasons = pd.Series(
        [f"near duplicate of {df.at[keeper[i], id_col]} ({label}: {df.at[i, columns[0]]!r} ~ "
         f"{df.at[keeper[i], columns[0]]!r}, score {score_of[i]:.0f})" for i in removed], index=removed, dtype="str")
    group_no = roots.map({r: n + 1 for n, r in enumerate(sorted(roots.unique()))})
    groups = pd.DataFrame({"group": group_no, "source_row": _source_row(roots.index),
                           id_col: df.loc[roots.index, id_col], "kept": ~roots.index.isin(removed),
                           "match": "fuzzy: " + label, "score": score_of.loc[roots.index].round(1)})
    for c in columns:
        groups[c] = df.loc[roots.index, c].to_numpy()
    return (df.drop(index=removed), reasons,
            groups.sort_values(["group", "kept"], ascending=[True, False]).reset_index(drop=True))


def flag_columns(df: pd.DataFrame, *, near_empty: float = 0.95) -> pd.DataFrame:
    """Constant and near-empty columns (flagged for the analyst, not removed): ``column``, ``flag``, ``detail``."""
    rows = []
    for col in df.columns:
        filled = df[col].dropna()
        missing = 1 - len(filled) / len(df) if len(df) else 0.0
        if missing >= near_empty:
            rows.append({"column": col, "flag": "near-empty", "detail": f"{missing:.1%} missing"})
        elif filled.nunique() == 1:
            rows.append({"column": col, "flag": "constant", "detail": f"always {filled.iloc[0]!r}"})
    return pd.DataFrame(rows, columns=["column", "flag", "detail"])


def drop_columns(df: pd.DataFrame, names: list[str], column_map: pd.DataFrame) -> pd.DataFrame:
    """Drop columns named by canonical/snake_case or source name (``cleaning.drop_columns``)."""
    to_canon = dict(zip(column_map["source_column"], column_map["column"]))
    cols = []
    for name in names:
        col = name if name in df.columns else to_canon.get(name)
        if col is None or col not in df.columns:
            raise ParamsError(f"cleaning.drop_columns: no column {name!r}{did_you_mean(name, list(df.columns))}")
        cols.append(col)
    return df.drop(columns=cols)


# --------------------------------------------------------------------------- the pipeline


def clean_table(table: Table, cleaning: Cleaning, *, date_format: str = "auto") -> Cleaned:
    """Run every cleaning step on one table; nothing is lost (rows in = rows out + rows removed, per step).

    Parameters
    ----------
    table : Table
        From :func:`funnel_lab.data.ingest.load_table`.
    cleaning : Cleaning
        ``params.cleaning``: placeholders, dedupe keys and fuzzy columns, columns to drop.
    date_format : str
        The table's ``date_format`` (``auto`` decides per column).

    Returns
    -------
    Cleaned
        The data (index = the export's 0-based data row) and the audit, quarantine and change tables.
    """
    name, where = table.name, f"{table.source}: data.{table.name}"
    df = table.data
    rejected = table.rejected if table.rejected is not None else pd.DataFrame(columns=["source_row", "reason"])
    rec = _Recorder(name, len(df) + len(rejected))
    id_col = "unit_id" if name == "experiment" else "opportunity_id"
    rec.rows.append({"step": "read", "rows_in": len(df) + len(rejected), "rows_out": len(df),
                     "rows_removed": len(rejected), "rows_changed": 0, "table": name,
                     "detail": f"{len(df.columns)} columns from {table.source}"
                     + (f"; {len(rejected)} rows could not be split into columns" if len(rejected) else "")
                     + ("; opportunity_id generated from row numbers" if table.ids_generated else "")})

    tokens = list(cleaning.placeholders) + list(table.placeholders)
    after, placeholder_counts, changed = replace_placeholders(df, tokens)
    detail = "; ".join(f"{c}: {n:,}" for c, n in placeholder_counts.groupby("column", sort=False)["cells"].sum().items())
    rec.step("placeholders", df, after, changed=changed, detail=detail or "none found")
    df = after

    after, types, issues = coerce_types(df, table=name, date_format=date_format, column_map=table.column_map,
                                        where=where)
    converted = types[types["kind"] != "text"]
    rec.step("types", df, after, changed=pd.Index(issues["source_row"].unique() - 1),
             detail=f"{len(converted)} columns typed ({', '.join(f'{c}: {k}' for c, k in zip(converted['column'], converted['kind']))}); "
                    f"{len(issues)} cells did not parse and are now missing")
    df = after

    after, standardised, changed = standardise_text(df, skip=(id_col,))
    rec.step("standardise", df, after, changed=changed,
             detail=f"{standardised['cells'].sum() if len(standardised) else 0:,} cells trimmed or case-merged "
                    f"in {standardised['column'].nunique()} columns")
    df = after

    groups = [_empty_groups(id_col)]
    if id_col in df.columns:
        after, reasons = drop_missing_ids(df, id_col)
        rec.step("missing id", df, after, detail=f"rows without {id_col}", reasons=reasons)
        df = after
    currency = None
    if name == "opportunities":
        after, reasons = check_status(df, where=where)
        rec.step("status", df, after, detail="status must be open, won or lost; `won` added", reasons=reasons)
        df = after
        if "currency" in df.columns or table.fx:
            source = dict(zip(table.column_map["column"], table.column_map["source_column"]))
            after, currency, changed, detail = to_home_currency(df, table.fx, where=f"data.{name}", columns=source)
            rec.step("currency", df, after, changed=changed, detail=detail)
            df = after
        keys = [k for k in cleaning.dedupe.keys]
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise ParamsError(f"cleaning.dedupe.keys: no column {missing[0]!r}{did_you_mean(missing[0], list(df.columns))}")
        after, reasons, grp = dedupe_exact(df, keys, id_col)
        rec.step("dedupe exact", df, after, detail=f"on {', '.join(keys)}: {grp['group'].nunique()} groups",
                 reasons=reasons)
        df, groups = after, groups + [grp]
        fuzzy = cleaning.dedupe.fuzzy
        if fuzzy is not None:
            missing = [c for c in fuzzy.columns if c not in df.columns]
            if missing:
                raise ParamsError(f"cleaning.dedupe.fuzzy.columns: no column {missing[0]!r}"
                                  f"{did_you_mean(missing[0], list(df.columns))}")
            block = [c for c in ("created_at", "owner") if c in df.columns and c not in fuzzy.columns]
            after, reasons, grp = dedupe_fuzzy(df, columns=fuzzy.columns, threshold=fuzzy.threshold, id_col=id_col,
                                               block=block)
            rec.step("dedupe fuzzy", df, after, reasons=reasons,
                     detail=f"{', '.join(fuzzy.columns)} at score >= {fuzzy.threshold:g} within equal "
                            f"{', '.join(block) or 'rows'}: {grp['group'].nunique()} groups")
            df, groups = after, groups + [grp]
    elif name == "stage_history":
        before = df
        df = df[~df.duplicated(keep="first")]
        rec.step("dedupe exact", before, df, detail="identical rows", reasons=pd.Series(
            "identical to an earlier row", index=before.index.difference(df.index)))

    if cleaning.drop_columns and name == "opportunities":
        after = drop_columns(df, cleaning.drop_columns, table.column_map)
        rec.step("drop columns", df, after, detail=", ".join(c for c in df.columns if c not in after.columns))
        df = after

    removed = pd.concat(rec.removed) if rec.removed else pd.Series(dtype="str")
    quarantine = table.raw.loc[removed.index].copy()
    quarantine.insert(0, "reason", removed.to_numpy())
    quarantine.insert(0, "source_row", _source_row(removed.index))
    quarantine.insert(0, "table", name)
    if len(rejected):
        quarantine = pd.concat([quarantine, rejected.assign(table=name)[["table", "source_row", "reason", "raw_line"]]],
                               ignore_index=True)
    dup_groups = pd.concat([g for g in groups if len(g)], ignore_index=True) if any(len(g) for g in groups) \
        else _empty_groups(id_col)
    return Cleaned(name, df, rec.audit(df.index), quarantine.sort_values("source_row").reset_index(drop=True),
                   placeholder_counts, types, issues, dup_groups, flag_columns(df), standardised, currency)
