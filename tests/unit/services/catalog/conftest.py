"""Fixtures of the catalog service tests: temporary catalogs, files to import, byte snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.audit import AuditLog
from services.catalog import CatalogService
from services.catalog.writer import CatalogWriter
from services.db import Database
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'workbench.db'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def catalog(tmp_path) -> CatalogService:
    """An empty catalog in a temporary folder."""
    return CatalogService(str(tmp_path / "catalog"))


@pytest.fixture
def writer(catalog, database) -> CatalogWriter:
    return CatalogWriter(catalog, Authorizer(AuditLog(database), Principal.local()))


@pytest.fixture
def write_file(tmp_path):
    """``write_file("a.csv", text)`` -> its path (text written verbatim)."""

    def write(name: str, text: str | bytes) -> str:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)

    return write


@pytest.fixture
def bars_csv(write_file):
    """``bars_csv(n, start=..., drop=...)`` -> a timestamp,open,high,low,close,volume CSV path
    of n one-minute bars (stamped at their close), minus the rows at the ``drop`` positions."""

    def make(n: int = 120, start: str = "2024-01-02 00:01", drop=(), name: str = "bars.csv",
             freq: str = "1min") -> str:
        index = pd.date_range(start, periods=n, freq=freq)
        close = 100 + np.cumsum(np.sin(np.arange(n)) * 0.1)
        frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"),
                              "open": np.round(close - 0.05, 2), "high": np.round(close + 0.2, 2),
                              "low": np.round(close - 0.2, 2), "close": np.round(close, 2),
                              "volume": np.arange(n) % 7 + 1})
        frame = frame.drop(index=list(drop))
        return write_file(name, frame.to_csv(index=False))

    return make


@pytest.fixture
def snapshot():
    """``snapshot(folder)`` -> {relative path: sha256} of every file under it (missing: {})."""

    def take(folder) -> dict[str, str]:
        root = Path(folder)
        if not root.exists():
            return {}
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    return take
