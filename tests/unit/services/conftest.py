"""Fixtures shared by the service-layer unit tests.

Helpers are fixtures (factories) rather than importable functions: the test tree has no
``__init__.py`` files, so test modules cannot import each other.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_TEMPLATES = PROJECT_ROOT / "engine_templates"


@pytest.fixture
def project_root() -> Path:
    """The source checkout the tests run from."""
    return PROJECT_ROOT


@pytest.fixture
def shipped_templates() -> Path:
    """The ``engine_templates/`` folder shipped with the workbench (read-only in tests)."""
    return SHIPPED_TEMPLATES


@pytest.fixture
def ema_cross_data() -> dict:
    """A fresh, mutable copy of the shipped ``ema_cross.json`` template."""
    data = json.loads((SHIPPED_TEMPLATES / "strategies" / "ema_cross.json").read_text())
    return copy.deepcopy(data)


@pytest.fixture
def write_template(tmp_path):
    """Write a template (dict -> JSON, str -> verbatim) into ``tmp_path`` and return its path."""

    def write(content: dict | list | str, name: str = "candidate.json") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def utc():
    """``utc("2024-01-01 10:00")`` -> a tz-aware UTC Timestamp."""

    def make(text: str) -> pd.Timestamp:
        return pd.Timestamp(text, tz="UTC")

    return make


@pytest.fixture
def equity_frame(utc):
    """Build the frame ``compute_statistics`` reads (equity, position, drawdown) by hand.

    ``drawdown`` follows its definition: equity over its running peak, minus one.
    """

    def make(times: list[str], equity: list[float], position: list[float] | None = None):
        index = pd.DatetimeIndex([utc(t) for t in times])
        frame = pd.DataFrame(
            {
                "close": [1.0] * len(times),
                "position": position if position is not None else [0.0] * len(times),
                "equity": [float(v) for v in equity],
            },
            index=index,
        )
        frame["drawdown"] = frame["equity"] / frame["equity"].cummax() - 1.0
        return frame

    return make


@pytest.fixture
def trades():
    """``trades(30, -10)`` -> the positions frame (one closed trade per row)."""

    def make(*pnls: float) -> pd.DataFrame:
        return pd.DataFrame({"realized_pnl": [float(p) for p in pnls]})

    return make
