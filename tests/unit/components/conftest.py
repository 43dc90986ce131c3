"""Fixtures of the component tests: real services over a generated sample catalog, no browser.

Generating the synthetic sample catalog takes several seconds, so it is written once per session
into a temporary folder (never the checkout's ``data/``). ``workbench`` gives a test its own state
folder (database, run folders); ``runs_workbench`` is shared by the tests that read finished
runs, so each real backtest (a few seconds) runs once per session.

Helpers are fixtures rather than importable functions: the test tree has no ``__init__.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.backtest import BacktestSpec
from services.catalog import CatalogService
from services.catalog.sample import generate_sample_catalog, is_sample_catalog
from services.db import BacktestRunRow
from services.workbench import Workbench
from tests.conftest import close_workbench

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"

# How long a short sample run may take before a test gives up (they take a few seconds).
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def sample_catalog_path(tmp_path_factory) -> Path:
    """The workbench's generated sample catalog, written once per test session."""
    path = tmp_path_factory.mktemp("components-sample") / "catalog"
    generate_sample_catalog(path)
    assert is_sample_catalog(path)
    return path


@pytest.fixture
def workbench(tmp_path, sample_catalog_path) -> Workbench:
    """A Workbench over the sample catalog with this test's own state folder and database.

    For tests that count or list runs: no other test's runs are in it. Every run still going
    at teardown is cancelled, so no worker process outlives the test.
    """
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                        scheduler=True)
    yield wb
    close_workbench(wb)


@pytest.fixture(scope="session")
def runs_workbench(tmp_path_factory, sample_catalog_path) -> Workbench:
    """A Workbench shared by the tests that read finished runs (a real run takes seconds).

    Tests may add runs to it, so they look runs up by id rather than expecting an exact list.
    """
    wb = Workbench.open(state_dir=tmp_path_factory.mktemp("components-runs"),
                        catalog=str(sample_catalog_path), scheduler=True)
    yield wb
    close_workbench(wb)


@pytest.fixture(scope="session")
def short_spec(sample_catalog_path):
    """``short_spec(**changes)`` -> a BacktestSpec of ema_cross over ~1 week of AAPL bars."""
    last = CatalogService(str(sample_catalog_path)).backtestable_series(AAPL_BARS).last.date()

    def make(**changes) -> BacktestSpec:
        values = dict(
            strategy="ema_cross", bar_type=AAPL_BARS,
            start=(last - dt.timedelta(days=10)).isoformat(),
            end=(last - dt.timedelta(days=3)).isoformat(),
            parameters={"fast_ema_period": 10, "slow_ema_period": 20, "trade_size": "100"},
            label="component test",
        )
        values.update(changes)
        return BacktestSpec(**values)

    return make


@pytest.fixture(scope="session")
def completed_run(runs_workbench, short_spec) -> str:
    """Id of a short run in ``runs_workbench``, submitted through the service; it completed."""
    run_id = runs_workbench.backtests.submit(short_spec(label="completed fixture"))
    info = runs_workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    assert info.status == "Completed", f"fixture run {run_id} ended {info.status}: {info.error}"
    return run_id


@pytest.fixture(scope="session")
def failed_run(runs_workbench) -> str:
    """Id of a run in ``runs_workbench`` that ended Failed the way a server restart fails it.

    The row is what the service writes for a Running run whose worker has since died;
    the scheduler's reconcile at its start finds no worker and no results.
    """
    wb = runs_workbench
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = "failed-by-restart"
    folder = wb.settings.runs_dir / run_id
    folder.mkdir(parents=True)
    now = datetime.now(UTC)
    with wb.database.session() as session:
        session.add(BacktestRunRow(
            run_id=run_id, status="Running", strategy="ema_cross", instrument_id="AAPL.XNAS",
            bar_type=AAPL_BARS, start=now, end=now, spec={}, run_folder=str(folder),
            actor="test", created_at=now, started_at=now, worker_pid=dead.pid, phase="running",
            currency="USD",
        ))
    # A scheduler restart: the new scheduler finds no worker and no results.
    wb.backtests.close()
    assert wb.backtests.start_scheduler().wait_active(timeout=10)
    info = wb.backtests.get(run_id)
    assert info.status == "Failed", f"reconcile left {run_id} {info.status}"
    assert not os.path.exists(folder / "results")
    return run_id
