"""Results, reports and views of runs that are unusual or broken: no trades, one trade, missing
or damaged artefacts, failed and cancelled runs, runs in different currencies.

Each must end in a defined outcome: statistics that are JSON-safe with ``None`` (shown as
"n/a") where a ratio is undefined, a report that still generates, or a ``BacktestError`` that
says what is wrong; the components show a message instead of raising. Damaged runs are copies
of a real run (folder and database row) that the test then breaks, so no test spoils a run
another test reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import panel as pn
import pytest

from app.cli import main as cli
from components import ResultsViewer, RunComparison
from components.report import comparison_report_html, export_run_report, run_report_html
from services.backtest.metric_labels import METRIC_GROUPS, format_statistic
from services.backtest.spec import BacktestSpec
from services.db import BacktestRunRow
from services.errors import BacktestError
from services.identity.principal import Principal

pytestmark = pytest.mark.integration

AAPL_BARS = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 300
# Undefined for a run that never trades (flat equity: no volatility, no wins, no losses).
UNDEFINED_WITHOUT_TRADES = ("volatility", "sharpe", "sortino", "calmar", "omega", "tail_ratio",
                            "skew", "kurtosis", "correlation", "win_rate", "profit_factor",
                            "payoff_ratio", "expectancy", "average_win", "average_loss",
                            "largest_win", "largest_loss", "average_holding_hours")
RESULT_FILES = ("equity.parquet", "fills.parquet", "positions.parquet", "orders.parquet",
                "account.parquet", "statistics.json", "summary.json")


@pytest.fixture(scope="module")
def runs(workbench) -> dict[str, str]:
    """``flat``: AAPL, a breakout band of 20 ATRs that is never crossed (no trade, USD);
    ``one``: BTC, EMA 500/1000 on the 1,020 bars after midnight: the EMAs are ready at 16:40,
    the strategy enters then and closes at the end (exactly one trade, USDT)."""
    specs = {
        "flat": BacktestSpec(strategy="simple_momentum", bar_type=AAPL_BARS, start="2024-06-03",
                             end="2024-06-08", parameters={"breakout_atr_multiple": 20},
                             label="bad input: flat"),
        "one": BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2024-06-03T00:00",
                            end="2024-06-03T17:00", label="bad input: one trade",
                            parameters={"fast_ema_period": 500, "slow_ema_period": 1000}),
    }
    ids = {name: workbench.backtests.submit(spec) for name, spec in specs.items()}
    for name, run_id in ids.items():
        info = workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
        assert info.status == "Completed", f"{name} run {run_id} ended {info.status}: {info.error}"
    return ids


@pytest.fixture
def copy_run(workbench, runs):
    """``copy_run("one")`` -> (id, folder) of a copy of that run: its folder and its database row,
    under a new id, for a test to damage."""

    def make(name: str) -> tuple[str, Path]:
        source = workbench.backtests.get(runs[name])
        new_id = f"{source.run_id}-copy-{uuid.uuid4().hex[:6]}"
        folder = Path(source.run_folder).with_name(new_id)
        shutil.copytree(source.run_folder, folder)
        with workbench.database.session() as session:
            row = session.get(BacktestRunRow, source.run_id)
            values = {c.name: getattr(row, c.name) for c in BacktestRunRow.__table__.columns}
            session.add(BacktestRunRow(**{**values, "run_id": new_id, "run_folder": str(folder)}))
        assert workbench.backtests.results(new_id).info.run_id == new_id
        return new_id, folder

    return make


def _failed_run(workbench) -> str:
    """A run that ended Failed the way a server restart fails it: the database says Running, its
    worker is gone and left no results, and ``reconcile`` marks it Failed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = f"failed-{uuid.uuid4().hex[:8]}"
    folder = workbench.settings.runs_dir / run_id
    folder.mkdir(parents=True)
    now = datetime.now(UTC)
    with workbench.database.session() as session:
        session.add(BacktestRunRow(
            run_id=run_id, status="Running", strategy="ema_cross", instrument_id="AAPL.XNAS",
            bar_type=AAPL_BARS, start=now, end=now, spec={}, run_folder=str(folder), actor="test",
            created_at=now, started_at=now, worker_pid=dead.pid, phase="running", currency="USD"))
    # A scheduler restart: the new scheduler finds no worker and no results.
    workbench.backtests.close()
    assert workbench.backtests.start_scheduler().wait_active(timeout=10)
    assert workbench.backtests.get(run_id).status == "Failed"
    return run_id


def _cli_report(workbench, catalog: Path, run_id: str, output: Path) -> int:
    """``nautilus-workbench report RUN_ID -o OUTPUT`` on the test's state folder and catalog."""
    return cli(["report", run_id, "-o", str(output),
                "--state-dir", str(workbench.settings.state_dir),
                "--database-url", workbench.settings.database_url, "--catalog", str(catalog)])


def _visible_alerts(component) -> list[str]:
    return [a.object for a in component.__panel__().select(pn.pane.Alert) if a.visible and a.object]


def _assert_viewer_says(workbench, run_id: str, *fragments: str) -> None:
    """ResultsViewer on ``run_id`` shows a message with ``fragments`` and no results."""
    viewer = ResultsViewer(workbench=workbench, run_id=run_id)

    assert viewer.run_id == run_id
    for fragment in fragments:
        assert fragment in viewer.message, viewer.message
    assert _visible_alerts(viewer) == [viewer.message]
    assert viewer.statistics == {}
    assert viewer._report_file() is None and viewer._csv("trades") is None


# -- no trades -----------------------------------------------------------------------------------
def test_zero_trade_run_has_flat_equity_and_json_safe_statistics(workbench, runs):
    # Act
    run = workbench.backtests.results(runs["flat"])
    stats = run.statistics

    # Assert: it really never traded, and its equity never moved.
    assert len(run.positions) == len(run.fills) == 0
    assert run.equity["equity"].nunique() == 1
    assert run.equity["equity"].iloc[0] == stats["starting_balance"] == stats["final_equity"]
    # Everything is JSON as the standard defines it: no NaN, no Infinity.
    json.dumps(stats, allow_nan=False)
    json.dumps(run.summary, allow_nan=False)
    assert stats["num_trades"] == 0
    assert stats["total_return"] == 0.0 and stats["max_drawdown"] == 0.0
    assert stats["worst_drawdowns"] == []
    for key in UNDEFINED_WITHOUT_TRADES:
        assert stats[key] is None, key
        assert format_statistic(key, stats[key], "USD") == "n/a"
    for group in METRIC_GROUPS.values():
        for key in group:
            text = format_statistic(key, stats.get(key), "USD")
            assert "nan" not in text.lower() and "inf" not in text.lower(), (key, text)


def test_zero_trade_run_report_generates(workbench, runs, tmp_path):
    # Act
    path = export_run_report(workbench, runs["flat"], tmp_path / "flat.html")

    # Assert
    text = path.read_text(encoding="utf-8")
    assert "<h2>Trades (0)</h2>" in text and "<h2>Fills (0)</h2>" in text
    assert "No drawdown." in text
    for label in ("Sharpe", "Sortino", "Win rate", "Profit factor"):
        assert f'<div class="l">{label}</div><div class="v">n/a</div>' in text, label
    assert ">nan<" not in text.lower() and "inf %" not in text.lower()


def test_results_viewer_shows_a_zero_trade_run(workbench, runs):
    viewer = ResultsViewer(workbench=workbench, run_id=runs["flat"])

    assert viewer.message == "" and _visible_alerts(viewer) == []
    assert viewer.statistics["num_trades"] == 0
    tables = viewer.__panel__().select(pn.widgets.Tabulator)
    assert [len(t.value) for t in tables[1:]] == [0, 0, 0]  # trades, fills, orders
    assert pd.read_csv(viewer._csv("trades")).empty
    assert "Trades (0)" in viewer._report_file().getvalue()


# -- one trade -----------------------------------------------------------------------------------
def test_one_trade_run_statistics_and_report(workbench, runs):
    # Arrange
    run = workbench.backtests.results(runs["one"])
    assert len(run.positions) == 1, run.positions

    # Act
    html = run_report_html(run)

    # Assert
    stats = run.statistics
    json.dumps(stats, allow_nan=False)
    assert stats["num_trades"] == 1
    assert stats["win_rate"] in (0.0, 1.0)
    pnl = float(run.positions["realized_pnl"].iloc[0])
    assert stats["expectancy"] == pytest.approx(pnl)
    # With one trade there is no second outcome to weigh it against.
    assert stats["payoff_ratio"] is None
    assert stats["skew"] is None and stats["kurtosis"] is None
    assert "<h2>Trades (1)</h2>" in html
    viewer = ResultsViewer(workbench=workbench, run_id=runs["one"])
    assert viewer.message == ""
    assert len(viewer.__panel__().select(pn.widgets.Tabulator)[1].value) == 1


# -- missing and damaged artefacts ---------------------------------------------------------------
def test_missing_results_folder_is_a_backtest_error(workbench, copy_run, tmp_path):
    # Arrange
    run_id, folder = copy_run("one")
    shutil.rmtree(folder / "results")

    # Act / Assert
    with pytest.raises(BacktestError, match="missing or damaged") as error:
        workbench.backtests.results(run_id)
    assert run_id in str(error.value) and "Run the backtest again" in str(error.value)
    with pytest.raises(BacktestError):
        export_run_report(workbench, run_id, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    _assert_viewer_says(workbench, run_id, run_id, "missing or damaged")


def test_partial_results_folder_is_a_backtest_error(workbench, copy_run):
    # A worker that died while writing leaves results.partial, never results.
    run_id, folder = copy_run("one")
    (folder / "results").rename(folder / "results.partial")

    with pytest.raises(BacktestError, match="missing or damaged"):
        workbench.backtests.results(run_id)


@pytest.mark.parametrize("name", RESULT_FILES)
def test_truncated_result_file_is_a_backtest_error(workbench, copy_run, name):
    # Arrange: the first half of the file, as a full disk or a killed copy leaves it.
    run_id, folder = copy_run("one")
    path = folder / "results" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    # Act / Assert
    with pytest.raises(BacktestError, match="missing or damaged") as error:
        workbench.backtests.results(run_id)
    assert run_id in str(error.value)


def test_truncated_equity_shows_a_message_in_the_viewer_and_the_cli(workbench, sample_catalog_path,
                                                                    copy_run, tmp_path, capsys):
    run_id, folder = copy_run("one")
    path = folder / "results" / "equity.parquet"
    path.write_bytes(path.read_bytes()[:100])

    _assert_viewer_says(workbench, run_id, "missing or damaged", "equity.parquet")
    code = _cli_report(workbench, sample_catalog_path, run_id, tmp_path / "r.html")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "missing or damaged" in err
    assert "Traceback" not in err and not (tmp_path / "r.html").exists()


def test_result_file_with_the_wrong_columns_is_a_backtest_error(workbench, copy_run):
    run_id, folder = copy_run("one")
    pd.DataFrame({"close": [1.0, 2.0]},
                 index=pd.date_range("2024-06-03", periods=2, freq="1min", tz="UTC")).to_parquet(
        folder / "results" / "equity.parquet")

    with pytest.raises(BacktestError, match="equity.parquet"):
        workbench.backtests.results(run_id)


# -- runs of an older workbench ------------------------------------------------------------------
def test_statistics_of_an_older_version_are_recomputed_and_stored(workbench, copy_run):
    # Arrange: statistics.json as an older workbench wrote it (older version, a metric missing).
    run_id, folder = copy_run("one")
    path = folder / "results" / "statistics.json"
    current = json.loads(path.read_text())
    older = {k: v for k, v in current.items() if k != "omega"} | {"metrics_version": 1}
    path.write_text(json.dumps(older))

    # Act
    run = workbench.backtests.results(run_id)

    # Assert: recomputed from the artefacts, identical to what the worker computed, and stored.
    assert run.statistics == current
    assert run.summary["statistics"] == current
    assert json.loads(path.read_text()) == current
    assert json.loads((folder / "results" / "summary.json").read_text())["statistics"] == current


def test_older_run_that_cannot_be_recomputed_is_a_backtest_error(workbench, copy_run):
    run_id, folder = copy_run("one")
    path = folder / "results" / "statistics.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"metrics_version": 1}))
    (folder / "run.json").unlink()

    with pytest.raises(BacktestError, match=run_id):
        workbench.backtests.results(run_id)


# -- runs without results ------------------------------------------------------------------------
def test_failed_run_has_no_results_and_says_why(workbench, sample_catalog_path, tmp_path, capsys):
    # Arrange
    run_id = _failed_run(workbench)

    # Act / Assert
    with pytest.raises(BacktestError) as error:
        workbench.backtests.results(run_id)
    assert str(error.value).startswith(f"Run {run_id} is Failed; it has no results: Interrupted")
    _assert_viewer_says(workbench, run_id, "is Failed", "Interrupted")
    code = _cli_report(workbench, sample_catalog_path, run_id, tmp_path / "r.html")
    assert code == 2 and "is Failed" in capsys.readouterr().err
    # A failed run is not offered for comparison.
    assert run_id not in RunComparison(workbench=workbench).param.run_ids.objects


def test_cancelled_run_has_no_results_and_says_why(workbench):
    # Arrange
    tester = Principal.user("test", {"researcher"})
    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=AAPL_BARS, start="2024-06-03", end="2024-06-05",
        label="bad input: cancelled"), principal=tester)
    workbench.backtests.cancel(run_id, principal=tester)

    # Act / Assert
    with pytest.raises(BacktestError, match=f"Run {run_id} is Cancelled; it has no results: "
                                            "Cancelled by test."):
        workbench.backtests.results(run_id)
    _assert_viewer_says(workbench, run_id, "is Cancelled")


# -- comparisons ---------------------------------------------------------------------------------
def test_comparison_of_different_currencies_says_so(workbench, runs):
    flat, one = (workbench.backtests.results(runs[n]) for n in ("flat", "one"))
    assert (flat.summary["currency"], one.summary["currency"]) == ("USD", "USDT")

    html = comparison_report_html([flat, one])

    assert ("These runs are in different currencies (USD, USDT): money amounts are not "
            "comparable") in html


def test_run_comparison_of_different_currencies_shows_the_note(workbench, runs):
    comparison = RunComparison(workbench=workbench)

    comparison.run_ids = [runs["flat"], runs["one"]]

    assert comparison.message == ""
    assert _visible_alerts(comparison) == [
        "These runs are in different currencies (USD, USDT): money amounts are not comparable; "
        "compare returns and ratios."]
    report = comparison._report_file().getvalue()
    assert "different currencies" in report and runs["flat"] in report and runs["one"] in report


@pytest.mark.parametrize("chosen", [[], ["flat"]])
def test_run_comparison_needs_two_runs(workbench, runs, chosen):
    comparison = RunComparison(workbench=workbench)

    comparison.run_ids = [runs[n] for n in chosen]

    assert comparison.message == "Choose two or more completed runs to compare."
    assert _visible_alerts(comparison) == [comparison.message]
    assert comparison._report_file() is None


def test_run_comparison_with_a_damaged_run_says_so(workbench, runs, copy_run):
    run_id, folder = copy_run("one")
    shutil.rmtree(folder / "results")
    comparison = RunComparison(workbench=workbench)
    assert run_id in comparison.param.run_ids.objects  # the database still says Completed

    comparison.run_ids = [runs["flat"], run_id]

    assert "missing or damaged" in comparison.message and run_id in comparison.message
    assert _visible_alerts(comparison) == [comparison.message]
    assert comparison._report_file() is None
