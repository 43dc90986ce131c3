"""Printing for the CLI: JSON, plain tables, KEY=VALUE options. Imports nothing heavy, so that
``--help`` and the quick commands start fast."""

from __future__ import annotations

import json
import math
from typing import Any

from services.errors import WorkbenchError

EXIT_FAILED = 1  # a run or an engine ended badly
EXIT_USAGE = 2  # bad input: nothing was done


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def print_json(data: Any) -> None:
    print(json.dumps(jsonable(data), indent=2))


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(lines)


def key_values(items: list[str], flag: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; one-line error for anything else."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise WorkbenchError(f"{flag} expects KEY=VALUE, was {item!r}")
        result[key.strip()] = value.strip()
    return result


def check_writable(*paths: str | None) -> None:
    """Refuse, before anything is written, an output whose folder is missing or unwritable (so a
    command never writes one file and then fails on the next)."""
    import os
    from pathlib import Path

    for path in filter(None, paths):
        folder = Path(path).expanduser().resolve().parent
        if not folder.is_dir():
            raise WorkbenchError(f"Cannot write {path}: the folder {folder} does not exist.")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise WorkbenchError(f"Cannot write {path}: the folder {folder} is not writable.")
        if Path(path).is_dir():
            raise WorkbenchError(f"Cannot write {path}: it is a folder.")


def write_table(frame, path: str) -> None:
    """Write a DataFrame to .csv or .parquet, with a one-line error if the file cannot be made."""
    if not (path.endswith(".parquet") or path.endswith(".csv")):
        raise WorkbenchError(f"Cannot tell the format of {path!r}: end it in .csv or .parquet")
    try:
        if path.endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    except OSError as e:
        raise WorkbenchError(f"Cannot write {path}: {e.strerror or e}") from e
