"""What every engine shares when it reads a source: quoting, file checks, and the pandas reader for the formats an
engine cannot read itself (Excel, GB18030 text, SQLite and SQLAlchemy sources)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ParamsError


def quote(name: str) -> str:
    """An identifier in double quotes (DuckDB's dialect; SQLGlot re-quotes it for another engine)."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def check_file(path: Path, key: str) -> None:
    """A clear error for a missing or empty input file (a folder of Parquet files passes)."""
    if not path.exists():
        raise ParamsError(f"{path}: file not found ({key})")
    if path.is_file() and path.stat().st_size == 0:
        raise ParamsError(f"{path}: the file is empty; expected a header row and data rows")


def utf8_separator(src, path: Path) -> str | None:
    """The field separator of a UTF-8 text file (``sep:``, else sniffed as for every other table), or None when
    the file is not UTF-8 text that an engine can read itself (GB18030 text goes through pandas)."""
    from ..data.ingest import _decode_sample, _sniff_sep

    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        return None
    enc, text = _decode_sample(path, src.encoding)
    if enc.replace("-", "").lower() not in ("utf8", "utf8sig"):
        return None
    return _sniff_sep(text, path) if src.sep == "auto" else src.sep


def read_with_pandas(engine, src, *, table: str) -> str:
    """Read ``src`` as the other tables are read (funnel_lab's own readers) and hand it to ``engine`` as ``table``."""
    from ..data.ingest import read_raw

    raw, rejected = read_raw(src)
    if len(rejected):
        raise ParamsError(f"data.activities: {len(rejected)} rows of {src.path} could not be split into columns "
                          f"(first: line {rejected['line'].iloc[0]})")
    engine.register(table, raw)
    return str(src.path) if src.path else f"sql @ {src.database}"
