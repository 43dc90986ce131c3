"""Shared fixtures of the integration tests: one generated sample catalog and Workbench per session.

Generating the synthetic sample catalog takes several seconds, so it is built once, in a temporary
folder (never the checkout's ``data/``), and every test that only reads it shares it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.catalog.sample import generate_sample_catalog, is_sample_catalog
from services.workbench import Workbench
from tests.conftest import (
    cancel_unfinished,
    close_workbench,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_backend(request) -> str:
    """Every integration test runs twice: on SQLite in its state folder (the embedded default)
    and on a real PostgreSQL server (skipped without one, failing under CI)."""
    return request.param


@pytest.fixture(scope="session")
def new_database_url(database_backend):
    """``new_database_url()`` -> None (SQLite in the state folder) or the URL of a new
    PostgreSQL database, dropped at the end of the session."""
    admin = postgres_admin_url() if database_backend == "postgresql" else None
    created: list[str] = []

    def make() -> str | None:
        if admin is None:
            return None
        created.append(create_postgres_database(admin))
        return created[-1]

    yield make
    for url in created:
        drop_postgres_database(admin, url)


@pytest.fixture(autouse=True)
def database_url(new_database_url, monkeypatch) -> str | None:
    """This test's database: DATABASE_URL for every workbench it opens (CLI and server
    subprocesses included); None on SQLite, where each state folder holds its own."""
    url = new_database_url()
    if url is None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture(scope="session")
def stop_unfinished():
    """``stop_unfinished(workbench)`` cancels every run of a workbench that is not final."""
    return cancel_unfinished


@pytest.fixture(scope="session")
def sample_catalog_path(tmp_path_factory) -> Path:
    """The workbench's generated sample catalog, written once per test session."""
    path = tmp_path_factory.mktemp("sample") / "catalog"
    generate_sample_catalog(path)
    assert is_sample_catalog(path)
    return path


@pytest.fixture(scope="session")
def workbench(tmp_path_factory, sample_catalog_path, new_database_url) -> Workbench:
    """A Workbench over the sample catalog with its own state folder and database."""
    state = tmp_path_factory.mktemp("state")
    wb = Workbench.open(state_dir=state, catalog=str(sample_catalog_path), scheduler=True,
                        database_url=new_database_url())
    yield wb
    close_workbench(wb)



@pytest.fixture(scope="session")
def hourly_catalog_path(tmp_path_factory) -> Path:
    """A catalog of two synthetic markets of hourly bars, Jan 1 to Apr 30 2024 (written by the
    workbench's importer): TREND, whose drift flips sign every three days on average (an edge
    fast EMA crosses follow), and GAPPY, the same prices with no bar from Feb 10 to Mar 10.
    Hourly runs take a second or two: many fit in a test."""
    import numpy as np
    import pandas as pd

    from services.catalog import CatalogService
    from services.catalog.importer import ImportOptions
    from services.catalog.writer import CatalogWriter

    root = tmp_path_factory.mktemp("hourly")
    hours = pd.date_range("2024-01-01 01:00", "2024-04-30 00:00", freq="1h", tz="UTC")
    rng = np.random.default_rng(11)
    sigma = 0.004
    regime = np.where(np.cumsum(rng.random(hours.size) < 1 / 72) % 2 == 0, 1.0, -1.0)
    close = 100 * np.exp(np.cumsum(regime * sigma / 4 + rng.normal(0.0, sigma, hours.size)))
    open_ = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.normal(0, sigma / 2, (2, hours.size)))
    frame = pd.DataFrame({
        "timestamp": hours.strftime("%Y-%m-%d %H:%M:%S"), "open": open_.round(2),
        "close": close.round(2),
        "high": (np.maximum(open_, close) * (1 + wick[0])).round(2),
        "low": (np.minimum(open_, close) * (1 - wick[1])).round(2),
        "volume": rng.integers(1, 100, hours.size)})
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    gap = (hours > pd.Timestamp("2024-02-10", tz="UTC")) & (hours <= pd.Timestamp("2024-03-10",
                                                                                   tz="UTC"))
    writer = CatalogWriter(CatalogService(str(root / "catalog")))
    for symbol, rows in (("TREND", frame), ("GAPPY", frame[~gap])):
        source = root / f"{symbol}.csv"
        rows.to_csv(source, index=False)
        writer.import_file(str(source), ImportOptions(
            f"{symbol}USDT-PERP.BINANCE", bar_spec="1-HOUR-LAST", timestamps_mark="close",
            size_precision=3))
    return root / "catalog"
