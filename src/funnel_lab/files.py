"""Atomic writes: a killed run never leaves a half-written file that looks complete."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

# mkstemp creates 0600 files; reports are meant to be shared, so give them the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_with(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it into place."""
    return write_with(path, lambda f: f.write(data))


def write_pickle(path: str | Path, obj: Any) -> Path:
    """``obj`` pickled straight into the file, atomically (no copy of it as bytes in memory)."""
    return write_with(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """Pretty, key-sorted UTF-8 JSON (Chinese kept readable), atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n")


def write_csv(path: str | Path, df: pd.DataFrame) -> Path:
    """UTF-8 CSV with a header row and ``\\n`` line ends, atomically; written in chunks (a table of a million rows
    is never held as one string)."""
    return write_with(path, lambda f: df.to_csv(f, index=False, lineterminator="\n", encoding="utf-8"))


def write_parquet(path: str | Path, df: pd.DataFrame) -> Path:
    """A Parquet file (pyarrow), atomically."""
    return write_with(path, lambda f: df.to_parquet(f, index=False))
