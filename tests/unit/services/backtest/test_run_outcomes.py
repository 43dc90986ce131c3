"""How a finished worker's run is recorded, from what its folder holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.backtest.service import BacktestService
from services.catalog import CatalogService
from services.db import BacktestRunRow, Database
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.templates import TemplateService


@pytest.fixture
def service(tmp_path, shipped_templates):
    database = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    database.upgrade()
    yield BacktestService(database, TemplateService(shipped_templates),
                          CatalogService(str(tmp_path / "catalog")), tmp_path / "runs",
                          Authorizer(None, Principal.local()))
    database.dispose()


def _running_run(service, tmp_path, statistics: dict) -> str:
    run_id = "20260101-000000-abcdef"
    results = tmp_path / "runs" / run_id / "results"
    results.mkdir(parents=True)
    (results / "summary.json").write_text(json.dumps({"statistics": statistics}))
    with service._db.session() as session:
        session.add(BacktestRunRow(
            run_id=run_id, status="Running", strategy="ema_cross", instrument_id="X.SIM",
            bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL", spec={}, run_folder=str(results.parent),
            actor="local:test", created_at=datetime.now(UTC), runtime="local",
            paused_seconds=0.0))
    return run_id


def test_a_run_that_read_no_bars_is_failed_not_completed(service, tmp_path):
    # A file deleted from under a running backtest once ended "Completed" with 0 bars.
    run_id = _running_run(service, tmp_path, {"bars": 0, "total_return": 0.0})

    service._finish(run_id, 0)

    info = service.get(run_id)
    assert info.status == "Failed"
    assert info.error.startswith("The run read no bars of X.SIM-1-MINUTE-LAST-EXTERNAL")


def test_a_run_with_bars_completes(service, tmp_path):
    run_id = _running_run(service, tmp_path, {"bars": 1440, "total_return": 0.01})
    service._finish(run_id, 0)
    assert service.get(run_id).status == "Completed"


def test_a_run_whose_worker_aborted_says_so(service, tmp_path):
    import signal

    run_id = _running_run(service, tmp_path, {})
    (tmp_path / "runs" / run_id / "results" / "summary.json").unlink()

    service._finish(run_id, -signal.SIGABRT)

    error = service.get(run_id).error
    assert "NautilusTrader aborted the worker (SIGABRT" in error and "date range" not in error


def test_an_unknown_metric_is_refused_before_a_sweep():
    from services.errors import ValidationError

    with pytest.raises(ValidationError, match="'nope' is not a metric runs can be ranked by"):
        BacktestService.validate_metric("nope")
    assert BacktestService.validate_metric("sharpe") == "sharpe"
