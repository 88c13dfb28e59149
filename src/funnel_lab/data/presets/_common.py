"""The :class:`Preset` type and the rules every CRM preset shares.

Shared here, once:

* header matching (:func:`normalise_header`): case, whitespace, underscores, dots, quotes and a UTF-8 BOM are ignored;
* the stage-label status rule (:func:`stage_status`), with a regex for the spellings of "Closed Won" / "Closed Lost";
* the status rule from closed/won/lost flags with the stage as fallback (:func:`status_from_flags`), and the
  stages where the two disagree (:func:`status_disagreements`);
* the close-date split into ``closed_at`` / ``expected_close_at`` (:func:`split_close_date`);
* 0-1 probabilities to 0-100 (:func:`probability_to_percent`).

Every function takes and returns new DataFrames/Series of text; dates and numbers are never parsed here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..coerce import parse_bools, parse_numbers

STATUSES = ("open", "won", "lost")
#: Separators allowed between "closed" and "won"/"lost": "Closed Won", "Closed/Won", "closed-won", "Closed_Lost",
#: "Closed - Lost", "closedwon", "Closed (Won)".
_SEP = r"[\s_\-/:()]*"
_END = r"(?![\w'’])"  # "Won" but not "Wonder" or "Won't"
WON_PATTERN = rf"^\s*(?:closed{_SEP})?won{_END}"
LOST_PATTERN = rf"^\s*(?:closed{_SEP})?lost{_END}"
#: A stage that says the deal is closed, whatever the outcome ("Closed", "Closed - Duplicate", "Closed Won").
CLOSED_PATTERN = rf"^\s*closed{_END}|^\s*closed{_SEP}(?:won|lost){_END}|{WON_PATTERN}|{LOST_PATTERN}"
_HEADER_NOISE = re.compile(r"[\s_.\ufeff\"']+")


def normalise_header(name: object) -> str:
    """The form headers are compared in: no case, whitespace, underscores, dots, quotes or BOM.

    Examples
    --------
    >>> normalise_header("\\ufeffClose Date"), normalise_header("close_date"), normalise_header("Account.Name")
    ('closedate', 'closedate', 'accountname')
    """
    return _HEADER_NOISE.sub("", str(name)).casefold()


@dataclass(frozen=True)
class Preset:
    """How one CRM's export maps onto a canonical table.

    Parameters
    ----------
    name : str
        The preset's name in params (``preset: salesforce``).
    table : str
        The canonical table it reads: ``"opportunities"`` or ``"stage_history"`` (``""`` for the ``none``
        preset, which fits any table).
    columns : dict of str to tuple of str
        Canonical (or ``_helper``) name -> candidate source columns, in order of preference.
    values : dict of str to dict of str to str
        Canonical column -> {source value: canonical value}; the caller applies it after trimming, ignoring case.
    placeholders : tuple of str
        Extra cell values that mean missing in this CRM's exports.
    derive_fn : callable, optional
        DataFrame -> new DataFrame adding derived canonical columns; see :meth:`derive`.
    guesses : dict of str to str
        Canonical column -> how ``derive_fn`` guesses it when the export has no column for it; the data-quality
        report says so whenever the guess is taken.
    reshape_fn : callable, optional
        The export as read -> the rows the table is made of, before matching (a wide export whose columns are
        stage entries, one per deal and stage, becomes one row per entry); returns (rows, a note for the
        data-quality report).
    """

    name: str
    table: str
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    placeholders: tuple[str, ...] = ()
    derive_fn: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    guesses: dict[str, str] = field(default_factory=dict)
    reshape_fn: Callable[[pd.DataFrame], tuple[pd.DataFrame, str]] | None = None

    def match(self, source_columns: list[str]) -> dict[str, str]:
        """The columns of an export this preset recognises.

        Parameters
        ----------
        source_columns : list of str
            The export's header, as read.

        Returns
        -------
        dict of str to str
            {source column: canonical/helper name}, in the order of ``columns``. Headers are compared ignoring case,
            whitespace, underscores, dots, quotes and a UTF-8 BOM. Each name takes the source column of its first
            candidate present (the leftmost column if several normalise alike); a source column already taken by an
            earlier name is not taken again.

        Examples
        --------
        >>> from funnel_lab.data.presets import get_preset
        >>> get_preset("salesforce").match(["\\ufeffId", "stagename", "AccountId", "Account Name", "Other"])
        {'\\ufeffId': 'opportunity_id', 'Account Name': 'account', 'stagename': 'crm_stage'}
        """
        by_norm: dict[str, str] = {}
        for col in source_columns:
            by_norm.setdefault(normalise_header(col), col)
        out: dict[str, str] = {}
        for name, candidates in self.columns.items():
            for cand in candidates:
                col = by_norm.get(normalise_header(cand))
                if col is not None and col not in out:
                    out[col] = name
                    break
        return out

    def derive(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add the derived canonical columns to an export renamed with :meth:`match`.

        Parameters
        ----------
        df : DataFrame
            Text cells, missing as ``""`` or NaN. Not modified.

        Returns
        -------
        DataFrame
            A new frame with the same rows in the same order. A canonical column already present (for example one the
            params' ``columns:`` mapped) is never overwritten. Helper columns (``_x``) stay, except a close-date helper
            whose every filled cell went into ``closed_at``/``expected_close_at``.
        """
        if self.derive_fn is None:
            return df.copy()
        out = self.derive_fn(df)
        if len(out) != len(df) or not out.index.equals(df.index):
            raise RuntimeError(f"preset {self.name!r}: derive changed the rows ({len(df)} in, {len(out)} out)")
        return out


# --- helpers ----------------------------------------------------------------------------------------------------


def text(s: pd.Series) -> pd.Series:
    """Trimmed text with missing (NaN or blank) as NaN, for matching labels."""
    t = s.astype("str").str.strip()
    return t.where(s.notna() & (t != ""))


def _str_series(arr: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(arr, index=index, dtype="str")


def stage_status(stage: pd.Series, *, won: str = WON_PATTERN, lost: str = LOST_PATTERN) -> pd.Series:
    """Status from a stage label: won / lost when the label says so, else open; missing when the label is blank.

    Parameters
    ----------
    stage : Series
        Stage labels as exported.
    won, lost : str
        Regexes searched case-insensitively (``re.search`` semantics); lost is checked first.

    Examples
    --------
    >>> stage_status(pd.Series(["Closed/Won", "closed-lost", "CLOSED WON", "Closed - Lost", "Review", ""])).tolist()
    ['won', 'lost', 'won', 'lost', 'open', nan]
    """
    t = text(stage)
    filled = t.notna().to_numpy()
    is_lost = t.str.contains(lost, case=False, regex=True).fillna(False).to_numpy(dtype=bool)
    is_won = t.str.contains(won, case=False, regex=True).fillna(False).to_numpy(dtype=bool)
    arr = np.select([~filled, is_lost, is_won], [None, "lost", "won"], default="open").astype(object)
    return _str_series(arr, stage.index)


def stage_is_closed(stage: pd.Series, *, pattern: str = CLOSED_PATTERN) -> pd.Series:
    """Nullable boolean: does the stage label say the deal is closed (any outcome); NA for a blank label."""
    t = text(stage)
    closed = t.str.contains(pattern, case=False, regex=True).fillna(False).astype("boolean")
    return closed.where(t.notna().to_numpy(), pd.NA)


def _masks(b: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True / False / missing masks of a nullable boolean Series."""
    na = b.isna().to_numpy()
    true = b.fillna(False).to_numpy(dtype=bool)
    return true, ~true & ~na, na


#: The flag helpers a preset may map, in order of precedence: the explicit won / lost / closed flags, then the
#: numeric closed / open flags (HubSpot's "Is Closed (numeric)", "Is Open (numeric)").
FLAGS = ("_is_won", "_is_lost", "_is_closed", "_closed_numeric", "_open_numeric")


def status_from_flags(df: pd.DataFrame, *, blank_is_false: bool) -> pd.Series | None:
    """Status from every closed/won/lost flag a CRM writes, the stage label as the fallback.

    Parameters
    ----------
    df : DataFrame
        An export renamed with :meth:`Preset.match`: any of the :data:`FLAGS` helpers (text in any spelling
        :func:`~funnel_lab.data.coerce.parse_bools` reads) and ``crm_stage``.
    blank_is_false : bool
        Read a blank flag as false (Salesforce writes 1/blank); otherwise a blank flag is unknown.

    Returns
    -------
    Series or None
        ``"won"``/``"lost"``/``"open"``; None when there is neither a flag nor a stage column. Per row, the first
        rule that applies:

        1. flagged won -> won; flagged lost -> lost;
        2. flagged closed (the explicit flag, else the numeric closed flag, else not the numeric open flag): lost
           when flagged not won, won when flagged not lost, else the stage's outcome (won if it says won, lost if it
           says anything else); unknown with neither;
        3. flagged not closed -> open; flagged neither won nor lost -> open;
        4. flagged not won (or not lost) alone: lost (won) when the stage says closed, open when it does not;
        5. no flag known (absent, unreadable, or blank without ``blank_is_false``): the stage label rule
           (:func:`stage_status`).

        A deal flagged closed is never open. Missing when the flags leave the outcome open and the stage is blank
        or absent.

    Examples
    --------
    >>> df = pd.DataFrame({"_is_closed": ["true", "false", "true", ""], "_is_won": ["false", "false", "", ""],
    ...                    "crm_stage": ["Dead Deals", "Closed Lost", "Closed Won", "Closed Won"]})
    >>> status_from_flags(df, blank_is_false=False).tolist()
    ['lost', 'open', 'won', 'won']
    """
    present = {name: df[name] for name in FLAGS if name in df.columns}
    stage = df["crm_stage"] if "crm_stage" in df.columns else None
    if not present and stage is None:
        return None
    n = len(df)
    if stage is not None:
        by_stage = stage_status(stage).to_numpy(dtype=object)
        by_stage = np.where(pd.isna(by_stage), None, by_stage)
        stage_closed, stage_open, _ = _masks(stage_is_closed(stage))
    else:
        by_stage = np.full(n, None, dtype=object)
        stage_closed = stage_open = np.zeros(n, dtype=bool)
    if not present:
        return _str_series(by_stage, df.index)
    unknown = pd.Series(pd.NA, index=df.index, dtype="boolean")
    flag = {name: parse_bools(s, blank_is_false=blank_is_false) for name, s in present.items()}
    won, lost = flag.get("_is_won", unknown), flag.get("_is_lost", unknown)
    closed = (flag.get("_is_closed", unknown).fillna(flag.get("_closed_numeric", unknown))
              .fillna(~flag.get("_open_numeric", unknown)))
    is_won, not_won, _ = _masks(won)
    is_lost, not_lost, _ = _masks(lost)
    is_closed, not_closed, _ = _masks(closed)
    stage_known = pd.notna(by_stage)
    # conds/choices: the rows the flags decide (None: decided, but the outcome is unknown); other rows use the stage.
    conds = [is_won, is_lost,
             is_closed & not_won, is_closed & not_lost, is_closed & (by_stage == "won"), is_closed & stage_known,
             is_closed,
             not_closed, not_won & not_lost,
             not_won & stage_closed, not_won & stage_open, not_lost & stage_closed, not_lost & stage_open,
             not_won | not_lost]
    choices = ["won", "lost", "lost", "won", "won", "lost", None, "open", "open", "lost", "open", "won", "open",
               None]
    decided = np.logical_or.reduce(conds)
    arr = np.where(decided, np.select(conds, choices, default=None), by_stage)
    return _str_series(arr.astype(object), df.index)


def status_disagreements(df: pd.DataFrame, status: pd.Series | None) -> pd.DataFrame:
    """Stages whose label and the CRM's flags disagree on the status (open or closed, won or lost), with counts.

    Parameters
    ----------
    df : DataFrame
        The renamed export, with ``crm_stage`` and the :data:`FLAGS` helpers the status was derived from.
    status : Series or None
        The derived status (:func:`status_from_flags`).

    Returns
    -------
    DataFrame
        ``crm_stage``, ``label_says`` (``open``/``won``/``lost``: the stage label rule), ``flags_say`` (the status),
        ``rows``; one row per pair, most rows first. Empty without flags, a stage column or a status.

    Examples
    --------
    >>> df = pd.DataFrame({"crm_stage": ["Dead Deals", "Dead Deals", "Closed Won"], "_is_closed": ["1", "1", "1"]})
    >>> status_disagreements(df, pd.Series(["lost", "lost", "won"])).to_dict("records")
    [{'crm_stage': 'Dead Deals', 'label_says': 'open', 'flags_say': 'lost', 'rows': 2}]
    """
    columns = ["crm_stage", "label_says", "flags_say", "rows"]
    if status is None or "crm_stage" not in df.columns or not any(f in df.columns for f in FLAGS):
        return pd.DataFrame(columns=columns)
    label = stage_status(df["crm_stage"]).to_numpy(dtype=object)
    said = status.to_numpy(dtype=object)
    both = pd.notna(label) & pd.notna(said)
    # closed vs open, and won vs lost: a label "Closed Won" on a deal the flags call lost disagrees too
    differ = both & (label != said)
    if not differ.any():
        return pd.DataFrame(columns=columns)
    pairs = pd.DataFrame({"crm_stage": text(df["crm_stage"]).to_numpy()[differ], "label_says": label[differ],
                          "flags_say": said[differ]})
    out = pairs.value_counts().rename("rows").reset_index()
    return out.sort_values(["rows", "crm_stage"], ascending=[False, True], ignore_index=True)[columns]


def split_close_date(
    df: pd.DataFrame,
    status: str = "status",
    closed_source: str = "_close_date",
    open_source: str | None = None,
) -> pd.DataFrame:
    """Split a close date into ``closed_at`` (won/lost deals) and ``expected_close_at`` (open deals).

    Parameters
    ----------
    df : DataFrame
        With a status column (``open``/``won``/``lost``, any case; anything else or missing: neither date).
    status : str
        The status column.
    closed_source : str
        The helper holding the close date (Salesforce CloseDate).
    open_source : str, optional
        A separate helper for the expected date of open deals; defaults to ``closed_source``.

    Returns
    -------
    DataFrame
        A new frame. ``closed_at`` / ``expected_close_at`` are added only when absent (a mapped one is kept) and hold
        the date on the matching rows, missing (NaN) on the others. A helper is dropped only when every filled cell of
        it was copied into one of them (so a row whose status is unknown keeps its date as a feature).
    """
    open_source = open_source or closed_source
    out = df.copy()
    if status not in out.columns:
        return out
    st = text(out[status]).str.lower()
    closed = st.isin(["won", "lost"]).to_numpy(dtype=bool)
    is_open = (st == "open").fillna(False).to_numpy(dtype=bool)
    copied: dict[str, np.ndarray] = {}
    for target, source, rows in (("closed_at", closed_source, closed), ("expected_close_at", open_source, is_open)):
        if source not in out.columns or target in out.columns:
            continue
        out[target] = out[source].where(rows)
        copied[source] = copied.get(source, np.zeros(len(out), dtype=bool)) | rows
    for source, rows in copied.items():
        if not (text(out[source]).notna().to_numpy() & ~rows).any():
            out = out.drop(columns=source)
    return out


def probability_to_percent(s: pd.Series) -> pd.Series:
    """Probabilities written as 0-1 (HubSpot) to 0-100, as text; unchanged when any filled value is above 1.

    A column with a ``%`` sign anywhere is taken as already in percent. Cells that are not numbers stay as they
    are (the cleaning step reports them).

    Examples
    --------
    >>> probability_to_percent(pd.Series(["0.2", "1", "", "0.125"])).tolist()
    ['20.0', '100.0', '', '12.5']
    >>> probability_to_percent(pd.Series(["20", "0.5"])).tolist()
    ['20', '0.5']
    """
    num = parse_numbers(s)
    filled = num.dropna()
    if filled.empty or (filled > 1).any() or (filled < 0).any():
        return s.copy()
    if s.astype("str").str.contains("%", regex=False).fillna(False).any():
        return s.copy()
    pct = (num * 100).round(6).astype("str")
    return pct.where(num.notna(), s).astype(s.dtype if pd.api.types.is_string_dtype(s) else "str")


def add_status(df: pd.DataFrame, status: pd.Series | None) -> pd.DataFrame:
    """A copy of ``df`` with ``status`` added, unless the frame has one already or none could be derived."""
    out = df.copy()
    if status is not None and "status" not in out.columns:
        out["status"] = status
    return out


def col(df: pd.DataFrame, name: str) -> pd.Series | None:
    """``df[name]`` or None when the export has no such column."""
    return df[name] if name in df.columns else None


def derive_from_stage(df: pd.DataFrame) -> pd.DataFrame:
    """Status from the stage label (:func:`stage_status`), then the close-date split: for exports without flags.

    Parameters
    ----------
    df : DataFrame
        An export renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status``, ``closed_at``, ``expected_close_at``.
    """
    status = stage_status(df["crm_stage"]) if "crm_stage" in df.columns else None
    return split_close_date(add_status(df, status))
