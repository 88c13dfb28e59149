"""Readers and column/value mapping onto the canonical tables; the only module that opens input files."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Join, SnapshotSource, TableSource, mask_url
from ..errors import ParamsError, did_you_mean
from .presets import get_preset
from .presets._common import status_disagreements
from .schemas import canonical_columns, required_columns

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
#: One row per decision the reader took about an export (``export_notes.csv``): ``kind`` is ``repeated_column``,
#: ``status_disagreement``, ``guessed_rule``, ``currency``, ``reshaped`` (a wide export made into rows) or
#: ``snapshot_history``; ``column`` and ``value`` say where, ``rows`` how many.
NOTE_COLUMNS = ["table", "kind", "column", "value", "rows", "detail"]
_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass
class Table:
    """One input table: as read, mapped onto canonical names, and where it came from."""

    name: str
    raw: pd.DataFrame
    data: pd.DataFrame
    column_map: pd.DataFrame
    source: str
    sha256: str
    ids_generated: bool = False
    placeholders: tuple[str, ...] = ()  # extra missing-value tokens from the preset (e.g. Salesforce's null id)
    rejected: pd.DataFrame | None = None  # rows that could not be split into columns: source_row, line, reason
    joins: list[dict] | None = None  # one summary per lookup joined: path, on, matched, unmatched values
    notes: pd.DataFrame | None = None  # how the export was read where it needed a decision (NOTE_COLUMNS)
    fx: dict[str, str] | None = None  # values.fx: rates to the home currency (funnel_lab.data.currency)
    snapshots: pd.DataFrame | None = None  # a history from snapshots: path, snapshot_date, deals, sha256


def snake_case(name: str) -> str:
    """``"Minutes On Site"`` -> ``"minutes_on_site"``; Chinese characters are kept as they are.

    Examples
    --------
    >>> snake_case("Probability (%)"), snake_case("商机 名称")
    ('probability', '商机_名称')
    """
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    s = re.sub(r"[^\w]+", "_", s.lower(), flags=re.UNICODE)
    return re.sub(r"_+", "_", s).strip("_") or "column"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def require_columns(columns, *, table: str, source: str, read: list[str]) -> None:
    """Stop, naming what is missing and how to map it, when ``columns`` (canonical names) lack one that ``table``
    requires (:func:`~funnel_lab.data.schemas.required_columns`; activities need ``opportunity_id`` or ``account``).
    ``read``: the source's columns.
    """
    missing = [c for c in required_columns(table) if c not in columns]
    if table == "activities" and "opportunity_id" not in columns and "account" not in columns:
        missing.insert(0, "opportunity_id (or account)")
    if missing:
        have = ", ".join(read[:12]) + (" ..." if len(read) > 12 else "")
        raise ParamsError(
            f"data.{table}: {source} has no column for {', '.join(missing)}; "
            f"map one with `columns: {{{missing[0].split()[0]}: <source column>}}` (columns read: {have})"
        )


def source_sha256(src: TableSource) -> str:
    """The SHA-256 of a table's file, of its snapshots' files, or of its database (password masked) and query for a
    SQL source."""
    if isinstance(src, SnapshotSource):
        from .snapshots import snapshot_files

        digests = [f"{path}:{file_sha256(path)}" for path in snapshot_files(src, missing_ok=True)]
        return hashlib.sha256("\n".join(digests).encode()).hexdigest()
    if src.path is not None:
        return file_sha256(src.path)
    return hashlib.sha256(f"{mask_url(str(src.database))}\n{src.sql}".encode()).hexdigest()


def _decode_sample(path: Path, encoding: str) -> tuple[str, str]:
    """The encoding and opening text of a file: UTF-8 (with or without BOM), else GB18030, unless one is given."""
    with path.open("rb") as f:
        sample = f.read(1 << 20)
        truncated = bool(f.read(1))
    for enc in (encoding,) if encoding != "auto" else _ENCODINGS:
        try:
            # final=False lets a multi-byte character cut at the sample's end pass.
            return enc, codecs.getincrementaldecoder(enc)().decode(sample, final=not truncated)
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise ParamsError(f"{path}: unknown encoding {encoding!r} (from `encoding:`)") from None
    tried = "UTF-8 or GB18030" if encoding == "auto" else encoding
    raise ParamsError(f"{path}: cannot decode as {tried}; set `encoding:` for this table")


def _sniff_sep(text: str, path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    lines = "\n".join(text[:65536].splitlines()[:20]) + "\n"
    try:
        return csv.Sniffer().sniff(lines, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_binary(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b"PK\x03\x04"):
        raise ParamsError(f"{path}: this is a zip/Excel file, not a text table; save it as .xlsx (or export CSV)")
    if b"\x00" in head:
        raise ParamsError(f"{path}: binary content (NUL bytes), not a text table; expected CSV/TSV text")


def _read_text_table(path: Path, src: TableSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    _check_binary(path)
    enc, text = _decode_sample(path, src.encoding)
    if not text.strip():
        raise ParamsError(f"{path}: the file is empty; expected a header row and data rows")
    sep = _sniff_sep(text, path) if src.sep == "auto" else src.sep
    # The sample may be plain ASCII while a later row is GBK: on a decode error, try the next encoding.
    tries = [enc] + [e for e in _ENCODINGS if e != enc] if src.encoding == "auto" else [enc]
    for i, enc in enumerate(tries):
        try:
            # index_col=False stops a first row with one field too many from becoming the index; pandas then only
            # warns and drops the extra field, so the warning is made an error and the rows go through the
            # ragged reader, which quarantines them.
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(path, sep=sep, encoding=enc, dtype=str, keep_default_na=False, na_filter=False,
                                 skip_blank_lines=True, index_col=False)
            rejected = _no_rejects()
            break
        except (pd.errors.ParserError, pd.errors.ParserWarning):
            df, rejected = _read_ragged(path, enc, sep)
            break
        except UnicodeDecodeError as e:
            if i == len(tries) - 1:
                names = " or ".join(tries)
                raise ParamsError(f"{path}: cannot decode as {names} (byte {e.start:,}); set `encoding:` "
                                  f"for this table") from None
        except ValueError as e:
            raise ParamsError(f"{path}: cannot read as a {sep!r}-separated table ({e})") from None
    # pandas renames a repeated header "Amount" to "Amount.1": the header as written keeps every copy's name
    header = next(csv.reader(io.StringIO(text), delimiter=sep), None) if len(sep) == 1 else None
    if header and len(header) == df.shape[1] and len(set(header)) < len(header):
        df = df.set_axis(header, axis=1)
    if df.shape[1] == 1 and len(sep) == 1:
        other = next((c for c in ",;\t|" if c != sep and c in str(df.columns[0])), None)
        if other:
            raise ParamsError(f"{path}: read one column {str(df.columns[0])[:60]!r} with separator {sep!r}; "
                              f"the header looks {other!r}-separated: set `sep: {other!r}` (or `sep: auto`)")
    return df, rejected


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=["source_row", "line", "reason", "raw_line"])


def _read_ragged(path: Path, enc: str, sep: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with more fields than the header: keep the good ones, set the others aside with their line numbers."""
    with path.open(encoding=enc, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader)
        good, good_at, bad = [], [], []
        record = 0
        for fields in reader:
            if not fields:
                continue
            if len(fields) > len(header):
                bad.append({"source_row": record + 1, "line": reader.line_num,
                            "reason": f"line {reader.line_num} has {len(fields)} fields, the header has {len(header)}",
                            "raw_line": sep.join(fields)})
            else:
                good.append(fields + [""] * (len(header) - len(fields)))
                good_at.append(record)
            record += 1
    if bad and len(bad) > max(5, 0.05 * record):
        first = bad[0]
        raise ParamsError(f"{path}: {len(bad):,} of {record:,} rows have more fields than the header "
                          f"(first: {first['reason']}); check the separator and quoting (sep: {sep!r})")
    df = pd.DataFrame(good, columns=header, index=pd.Index(good_at), dtype="str")
    return df, pd.DataFrame(bad, columns=["source_row", "line", "reason", "raw_line"])


def _read_excel(path: Path, src: TableSource) -> pd.DataFrame:
    """The named (or first) sheet; a title row above the header is detected and skipped."""
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as e:  # openpyxl raises many kinds for a broken file
        raise ParamsError(f"{path}: cannot open as an Excel workbook ({type(e).__name__}: {e})") from None
    sheet = src.sheet if src.sheet is not None else 0
    if isinstance(sheet, str) and sheet not in book.sheet_names:
        raise ParamsError(f"{path}: no sheet {sheet!r}{did_you_mean(sheet, book.sheet_names)}")
    if isinstance(sheet, int) and not 0 <= sheet < len(book.sheet_names):
        raise ParamsError(f"{path}: sheet {sheet} does not exist; the workbook has {book.sheet_names}")
    name = book.sheet_names[sheet] if isinstance(sheet, int) else sheet
    grid = pd.read_excel(book, sheet_name=sheet, header=None, dtype=str, keep_default_na=False)
    if grid.empty:
        raise ParamsError(f"{path}: sheet {name!r} is empty")
    filled = (grid.head(10) != "").sum(axis=1)
    # The header is the first row as wide as the table: a title row fills one or two cells only.
    header_at = int((filled >= filled.max() * 0.8).idxmax())
    header = [str(h).strip() or f"column_{i + 1}" for i, h in enumerate(grid.iloc[header_at])]
    body = grid.iloc[header_at + 1:]
    body = body[(body != "").any(axis=1)]
    df = pd.DataFrame(body.to_numpy(), columns=header, dtype="str").reset_index(drop=True)
    others = [n for n in book.sheet_names if n != name]
    df.attrs["source"] = f"{path} (sheet {name!r}" + (f"; other sheets: {', '.join(others)})" if others else ")")
    return df


def read_raw(src: TableSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a table exactly as exported: every cell as text, nothing converted, no row dropped unaccounted.

    Parameters
    ----------
    src : TableSource
        ``path`` (.csv .tsv .txt .xlsx .parquet) or ``sql`` with ``database``.

    Returns
    -------
    raw : DataFrame
        Source column names, text cells (Parquet and SQL keep their own types); the index is the 0-based data row.
    rejected : DataFrame
        Rows that could not be split into the header's columns: ``source_row``, ``line``, ``reason``, ``raw_line``.

        A header that names a column more than once keeps every copy: the first under its name, the k-th as
        ``"<name> (k)"``; ``raw.attrs["repeated"]`` is {name: its 1-based column positions}, for
        :func:`map_columns` to decide whether the repeat matters.

    Raises
    ------
    ParamsError
        Missing, empty, binary or undecodable file; no data rows; a wrong separator.
    """
    if src.sql is not None:
        df, rejected = _read_sql(src), _no_rejects()
        where = f"sql @ {src.database}"
    else:
        path = Path(src.path)
        where = str(path)
        if not path.is_file():
            raise ParamsError(f"{path}: file not found")
        if path.stat().st_size == 0:
            raise ParamsError(f"{path}: the file is empty; expected a header row and data rows")
        suffix = path.suffix.lower()
        if suffix in _TEXT_SUFFIXES:
            df, rejected = _read_text_table(path, src)
        elif suffix == ".xlsx":
            df, rejected = _read_excel(path, src), _no_rejects()
        elif suffix == ".parquet":
            df, rejected = pd.read_parquet(path), _no_rejects()
        else:
            raise ParamsError(f"{path}: unsupported file type {suffix!r}; expected .csv .tsv .txt .xlsx or .parquet")
    df = _number_repeats(df)
    if df.empty:
        raise ParamsError(f"{where}: has a header ({df.shape[1]} columns) but no data rows")
    return df, rejected


def _number_repeats(df: pd.DataFrame) -> pd.DataFrame:
    """Unique column names: the k-th copy of a repeated name becomes ``"<name> (k)"``; ``attrs["repeated"]``
    records each repeated name's positions (1-based)."""
    names = [str(c) for c in df.columns]
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i + 1)
    repeated = {n: p for n, p in positions.items() if len(p) > 1}
    if not repeated:
        return df
    taken, unique = set(names), []
    for i, name in enumerate(names):
        k = positions[name].index(i + 1) + 1
        new = name if k == 1 else f"{name} ({k})"
        while k > 1 and new in taken:
            new += "'"
        taken.add(new)
        unique.append(new)
    out = df.set_axis(unique, axis=1)
    out.attrs = {**df.attrs, "repeated": repeated}
    return out


def _read_sql(src: TableSource) -> pd.DataFrame:
    # ${VAR} in the URL is read from the environment here only, so a password never reaches params or reports.
    db = os.path.expandvars(src.database or "")
    if "${" in db:
        raise ParamsError(f"database {src.database!r}: environment variable {db[db.index('${'):].split('}')[0]}}} "
                          f"is not set")
    try:
        if "://" in db:
            import sqlalchemy  # only SQL sources given as URLs need it

            with sqlalchemy.create_engine(db).connect() as conn:
                return pd.read_sql_query(sqlalchemy.text(src.sql), conn)
        path = Path(db)
        if not path.is_file():
            raise ParamsError(f"{path}: database file not found")
        with path.open("rb") as f:
            is_sqlite = f.read(16) == b"SQLite format 3\x00"
        if is_sqlite:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                return pd.read_sql_query(src.sql, conn)
        import duckdb

        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.sql(src.sql).df()
    except ParamsError:
        raise
    except Exception as e:  # each driver has its own error classes; the message is what the user needs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ParamsError(f"{mask_url(db)}: the query {src.sql!r} failed: {first}") from None


def map_columns(raw: pd.DataFrame, src: TableSource, *, table: str, where: str = "",
                source: str = "") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rename source columns onto canonical names, derive what the CRM preset knows, map values.

    Order: ``columns:`` from params, then the preset's matches for names still free; every other column is renamed
    to snake_case and kept as a feature. The preset then derives canonical columns (e.g. Salesforce's status from
    IsClosed/IsWon or StageName); last, ``values:`` maps (the preset's, overridden by params) turn source values into
    canonical ones, matched trimmed and then case-insensitively.

    Parameters
    ----------
    raw : DataFrame
        The table as read.
    src : TableSource
        Its params entry.
    table : str
        Canonical table name (``opportunities``, ...).
    where : str
        Params location for error messages, e.g. ``data.opportunities``.
    source : str
        The input as named in error messages (file, sheet or query).

    Returns
    -------
    data : DataFrame
        Canonical columns first, then every other column as a snake_case feature.
    column_map : DataFrame
        ``source_column``, ``column``: the name each source column has now.
    notes : DataFrame
        :data:`NOTE_COLUMNS`: repeated columns kept under a numbered name, stages whose label and the CRM's flags
        disagree on the status.

    Raises
    ------
    ParamsError
        A ``columns:`` entry naming a repeated column, or a required column only a repeated one could give.
    """
    where = where or f"data.{table}"
    repeated: dict[str, list[int]] = raw.attrs.get("repeated", {})
    notes: list[dict] = []
    source = source or str(src.path or "the query")
    preset = get_preset(src.preset)
    if preset.table and preset.table != table:
        raise ParamsError(f"{where}.preset: {src.preset!r} reads {preset.table} exports, not {table}")
    source_cols = [str(c) for c in raw.columns]
    rename: dict[str, str] = {}
    for canonical, column in src.columns.items():
        if canonical not in canonical_columns(table):
            raise ParamsError(f"{where}.columns.{canonical}: not a canonical column of {table}"
                              f"{did_you_mean(canonical, canonical_columns(table))} (other columns are kept as they "
                              f"are)")
        if column not in source_cols:
            raise ParamsError(
                f"{where}.columns.{canonical}: no column {column!r} in {source}"
                f"{did_you_mean(column, source_cols)}"
            )
        if column in repeated:
            raise ParamsError(f"{where}.columns.{canonical}: {source} has {len(repeated[column])} columns named "
                              f"{column!r} (columns {_positions(repeated[column])}); rename them in the export so "
                              f"the one meant for {canonical} has its own name")
        rename[column] = canonical
    free = [c for c in source_cols if c not in repeated]  # a repeated name cannot say which copy is meant
    for column, name in preset.match(free).items():
        if column not in rename and name not in rename.values():
            rename[column] = name
    for column, positions in repeated.items():
        # the rule a single column follows: the preset's match, else its snake_case name when that is canonical
        name = next(iter(preset.match([column]).values()), None) or (
            snake_case(column) if snake_case(column) in canonical_columns(table) else None)
        if name in rename.values():
            name = None  # the field is read from another column already
        copies = [source_cols[p - 1] for p in positions]
        detail = f"columns {_positions(positions)}"
        if name is not None and all(raw[copies[0]].equals(raw[c]) for c in copies[1:]):
            rename[copies[0]] = name
            detail += f": identical copies, read once as {name}"
        elif name is not None and _decides_counts(name, table):
            raise ParamsError(f"{where}: {source} has {len(positions)} columns named {column!r} (columns "
                              f"{_positions(positions)}) that differ, and {table} would read {name} from it; "
                              f"rename them in the export so each has one meaning, or map another column with "
                              f"`columns: {{{name.lstrip('_')}: <source column>}}`")
        elif name is not None:
            detail += f": the copies differ, so neither is read as {name}"
        notes.append({"table": table, "kind": "repeated_column", "column": column, "value": "",
                      "rows": len(raw), "detail": detail})
    taken = set(rename.values())
    for col in source_cols:
        if col not in rename:
            rename[col] = _unique(snake_case(col), taken)
    renamed = raw.rename(columns=rename)
    data = preset.derive(renamed)
    for column, how in preset.guesses.items():
        if column in data.columns and column not in renamed.columns:
            notes.append({"table": table, "kind": "guessed_rule", "column": column, "value": "",
                          "rows": int(data[column].notna().sum()), "detail": how})
    if "status" in data.columns and "status" not in renamed.columns:
        for r in status_disagreements(renamed, data["status"]).to_dict("records"):
            notes.append({"table": table, "kind": "status_disagreement", "column": "crm_stage",
                          "value": r["crm_stage"], "rows": r["rows"],
                          "detail": f"the stage label reads {r['label_says']}; the CRM's flags say "
                                    f"{r['flags_say']}, which is what counts"})
    # A helper the preset took over unchanged ("Amount" -> amount when there is no company-currency amount) is shown
    # as that column; one it computed from ("_close_date" -> closed_at/expected_close_at) as all it derived; helpers
    # it left stay as features under their plain name.
    new_columns = [c for c in data.columns if c not in renamed.columns]
    took_over = {h: c for h in set(rename.values()) - set(data.columns) for c in new_columns
                 if renamed[h].equals(data[c])}
    derived = " / ".join(c for c in new_columns if c not in took_over.values())
    helpers = {c: _unique(c.lstrip("_"), set(data.columns)) for c in data.columns if c.startswith("_")}
    data = data.rename(columns=helpers)
    rename = {s: helpers.get(n, n) if n in data.columns or n in helpers else took_over.get(n, derived or n)
              for s, n in rename.items()}
    for target in src.values.get("status", {}).values():
        if target not in ("open", "won", "lost"):
            raise ParamsError(f"{where}.values.status: {target!r} is not a status"
                              f"{did_you_mean(target, ['open', 'won', 'lost'])}")
    for col in sorted(set(preset.values) | set(src.values) - {"fx"}):  # fx: rates, read by the currency step
        if col not in data.columns:
            if col in src.values:
                raise ParamsError(f"{where}.values.{col}: no column {col!r}{did_you_mean(col, list(data.columns))}")
            continue
        data[col] = map_values(data[col], {**preset.values.get(col, {}), **src.values.get(col, {})})
    canonical = [c for c in canonical_columns(table) if c in data.columns]
    data = data[canonical + [c for c in data.columns if c not in canonical]]
    column_map = pd.DataFrame({"source_column": [_source_name(c, repeated) for c in source_cols],
                               "column": [rename[c] for c in source_cols]})
    return data, column_map, pd.DataFrame(notes, columns=NOTE_COLUMNS)


#: Canonical fields the counts and the money depend on: a repeated column with differing copies that would feed one
#: stops the run; one that would only describe a deal (account, owner, segment, ...) is left unread and noted.
_COUNTS_AND_MONEY = ("opportunity_id", "status", "crm_stage", "amount", "currency", "exchange_rate", "created_at",
                     "closed_at", "expected_close_at", "stage", "entered_at", "group", "converted")


def _decides_counts(name: str, table: str) -> bool:
    """Whether ``name`` (a canonical column, or a preset's helper such as a won flag) decides counts or money."""
    return name.startswith("_") or name in _COUNTS_AND_MONEY or name in required_columns(table)


def _positions(positions: list[int]) -> str:
    return ", ".join(map(str, positions[:-1])) + f" and {positions[-1]}"


def _source_name(column: str, repeated: dict[str, list[int]]) -> str:
    """A numbered copy of a repeated column (``"X (2)"``) as the export names it, with its position."""
    for name, positions in repeated.items():
        for k, pos in enumerate(positions[1:], start=2):
            if column.startswith(f"{name} ({k})"):
                return f"{name} (column {pos})"
    return column


def _unique(name: str, taken: set[str]) -> str:
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def map_values(s: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Map source values onto canonical ones: exact (trimmed) first, then ignoring case; others unchanged.

    Examples
    --------
    >>> map_values(pd.Series(["Won ", "WON", "lost", None, "Pending"]), {"Won": "won", "Lost": "lost"}).tolist()
    ['won', 'won', 'lost', nan, 'Pending']
    """
    text = s.astype("str").str.strip()
    folded = {str(k).strip().casefold(): v for k, v in mapping.items()}
    exact = text.map({str(k).strip(): v for k, v in mapping.items()})
    loose = text.str.casefold().map(folded)
    return exact.fillna(loose).fillna(text).where(s.notna(), s)


def _join_key(s: pd.Series, *, loose: bool) -> pd.Series:
    """Join keys as text; blank is missing. Loose keys ignore case, spaces and punctuation ("GTX Pro" = "GTXPro")."""
    text = s.astype("str").str.strip()
    if loose:
        text = text.str.casefold().str.replace(r"[\W_]+", "", regex=True)
    return text.where(s.notna() & (text != ""))


def join_lookup(data: pd.DataFrame, join: Join, *, where: str) -> tuple[pd.DataFrame, dict]:
    """Add a lookup table's columns (many-to-one on ``join.on``); rows are never added or lost.

    Returns
    -------
    data : DataFrame
        With the lookup's columns (snake_case; a name already taken gets the lookup file's stem as a suffix).
    summary : dict
        ``path``, ``on``, ``rows``, ``matched``, ``unmatched`` (rows whose key found no lookup row) and
        ``unmatched_values`` (up to five), ``loose_only`` (keys matched only when case and spacing are ignored).
    """
    lookup, _ = read_raw(TableSource(path=join.path, encoding=join.encoding, sep=join.sep))
    key = join.key or join.on
    if join.on not in data.columns:
        raise ParamsError(f"{where}.on: no column {join.on!r}{did_you_mean(join.on, list(data.columns))}")
    if key not in lookup.columns:
        raise ParamsError(f"{where}.key: no column {key!r} in {join.path}{did_you_mean(key, list(lookup.columns))}")
    wanted = join.columns or [c for c in lookup.columns if c != key]
    for c in wanted:
        if c not in lookup.columns:
            raise ParamsError(f"{where}.columns: no column {c!r} in {join.path}{did_you_mean(c, list(lookup.columns))}")
    lk = _join_key(lookup[key], loose=join.match == "loose")
    if lk.duplicated().any():
        dup = lookup.loc[lk.duplicated(), key].iloc[0]
        raise ParamsError(f"{where}: {join.path} has {key!r} = {dup!r} more than once; a lookup needs unique keys")
    taken = set(data.columns)
    names = {c: _unique(snake_case(c), taken) if snake_case(c) not in taken
             else _unique(f"{snake_case(c)}_{snake_case(Path(join.path).stem)}", taken) for c in wanted}
    table = lookup[wanted].rename(columns=names).set_axis(lk.to_numpy())
    dk = _join_key(data[join.on], loose=join.match == "loose")
    added = table.reindex(dk.to_numpy()).set_axis(data.index)
    out = pd.concat([data, added], axis=1)
    # get_indexer rather than isin(set): isin on Arrow-backed text loops in Python
    hit = pd.Series(pd.Index(lk.to_numpy()).get_indexer(dk.to_numpy()) >= 0, index=data.index) & dk.notna()
    exact_keys = pd.Index(lookup[key].astype("str").str.strip().to_numpy())
    exact = pd.Series(exact_keys.get_indexer(data[join.on].astype("str").str.strip().to_numpy()) >= 0,
                      index=data.index)
    summary = {"path": str(join.path), "sha256": file_sha256(join.path), "lookup_rows": len(lookup),
               "on": join.on, "rows": len(data), "matched": int(hit.sum()),
               "unmatched": int((~hit & dk.notna()).sum()),
               "unmatched_values": sorted(map(str, data.loc[~hit & dk.notna(), join.on].unique()[:5])),
               "loose_only": sorted(map(str, data.loc[hit & ~exact, join.on].unique()[:5])),
               "columns": list(names.values())}
    return out, summary


def load_table(src: TableSource, *, table: str, sha256: str | None = None) -> Table:
    """Read one configured table and map it onto canonical names, checking required columns.

    Parameters
    ----------
    src : TableSource
        ``data.<table>`` of the params.
    table : str
        Its canonical name.
    sha256 : str, optional
        :func:`source_sha256` of ``src`` when already known (a large file is then not read twice).

    Raises
    ------
    ParamsError
        When the file is missing or unreadable, or a required column is neither present nor mapped.
    """
    raw, rejected = read_raw(src)
    source = raw.attrs.get("source") or (str(src.path) if src.path else f"sql: {src.sql} @ {mask_url(src.database)}")
    preset = get_preset(src.preset)
    reshaped = ""
    if preset.reshape_fn is not None and (not preset.table or preset.table == table):
        # a wide export whose cells are the table's rows (one per deal and stage)
        raw, reshaped = preset.reshape_fn(raw)
    data, column_map, notes = map_columns(raw, src, table=table, source=source)
    if reshaped:
        notes = pd.concat([notes, pd.DataFrame([{"table": table, "kind": "reshaped", "column": "", "value": "",
                                                 "rows": len(raw), "detail": reshaped}])], ignore_index=True)
    ids_generated = False
    if table == "opportunities" and "opportunity_id" not in data.columns:
        # ids from the export's data row numbers, so that an id names the row it came from
        width = max(6, len(str(len(data) + len(rejected))))
        data.insert(0, "opportunity_id", pd.array([f"row-{i + 1:0{width}d}" for i in data.index], dtype="str"))
        ids_generated = True
    require_columns(data.columns, table=table, source=source, read=[str(c) for c in raw.columns])
    joins = []
    for i, j in enumerate(src.join):
        data, summary = join_lookup(data, j, where=f"data.{table}.join[{i}]")
        joins.append(summary)
    return Table(table, raw, data, column_map, source, sha256 or source_sha256(src), ids_generated,
                 placeholders=get_preset(src.preset).placeholders, rejected=rejected, joins=joins, notes=notes,
                 fx=src.values.get("fx") or None)
