"""How a finished worker's run is recorded, from what its folder holds."""

from __future__ import annotations

import json
import signal

import pytest

from services.backtest.scheduler import completed, failure_reason
from services.backtest.service import BacktestService
from services.db import BacktestRunRow


def _folder(tmp_path, statistics: dict | None):
    results = tmp_path / "run" / "results"
    results.mkdir(parents=True)
    if statistics is not None:
        (results / "summary.json").write_text(json.dumps({"statistics": statistics}))
    return results.parent


def test_a_run_that_read_no_bars_is_failed_not_completed(tmp_path):
    # A file deleted from under a running backtest once ended "Completed" with 0 bars.
    row = BacktestRunRow(run_id="r", status="Running", bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL")

    completed(row, _folder(tmp_path, {"bars": 0, "total_return": 0.0}))

    assert row.status == "Failed"
    assert row.error.startswith("The run read no bars of X.SIM-1-MINUTE-LAST-EXTERNAL")


def test_a_run_with_bars_completes(tmp_path):
    row = BacktestRunRow(run_id="r", status="Running", bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL")
    completed(row, _folder(tmp_path, {"bars": 1440, "total_return": 0.01}))
    assert (row.status, row.total_return) == ("Completed", 0.01)


def test_a_run_whose_worker_aborted_says_so(tmp_path):
    error = failure_reason(_folder(tmp_path, None), -signal.SIGABRT)
    assert "NautilusTrader aborted the worker (SIGABRT" in error and "date range" not in error


def test_an_unknown_metric_is_refused_before_a_sweep():
    from services.errors import ValidationError

    with pytest.raises(ValidationError, match="'nope' is not a metric runs can be ranked by"):
        BacktestService.validate_metric("nope")
    assert BacktestService.validate_metric("sharpe") == "sharpe"
