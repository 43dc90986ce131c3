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


def check_writable(path: str, suffixes: tuple[str, ...] | None = None) -> None:
    """Refuse an output file that cannot be written, before anything is written (so a command
    with several outputs never stops half way)."""
    import os

    if suffixes and not path.endswith(suffixes):
        raise WorkbenchError(f"Cannot tell the format of {path!r}: end it in "
                             f"{' or '.join(suffixes)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise WorkbenchError(f"Cannot write {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise WorkbenchError(f"Cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise WorkbenchError(f"Cannot write {path}: permission denied")


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
