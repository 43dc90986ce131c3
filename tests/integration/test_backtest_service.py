"""The backtest service end to end: real NautilusTrader runs in real worker processes.

Covers a run on the generated sample catalog (artefacts, database row, mark-to-market equity),
parity with raw NautilusTrader on real Binance data, failure paths (killed worker, cancel,
validation, unknown strategy, empty catalog) and the restart reconcile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from services.backtest.service import BacktestService
from services.backtest.spec import BacktestSpec, VenueSettings
from services.db import BacktestRunRow
from services.errors import BacktestError, CatalogError, TemplateError, ValidationError
from services.identity.principal import Principal
from services.workbench import Workbench
from tests.conftest import skip_or_fail

TESTER = Principal.user("tester", {"researcher", "admin"})

pytestmark = pytest.mark.integration

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RESULT_FILES = ("fills.parquet", "positions.parquet", "orders.parquet", "account.parquet",
                "equity.parquet", "statistics.json")
# Real market data shared next to the checkout (../shared/data); tests that need it skip without.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL_BTC_CSV = SHARED_DATA / "binance-btcusdt-perp-1m-2022-01.csv"


# -- helpers --------------------------------------------------------------------------------
def _row_count(wb: Workbench) -> int:
    with wb.database.session() as session:
        return session.scalar(select(func.count()).select_from(BacktestRunRow))


def _run_folders(wb: Workbench) -> set[str]:
    return {p.name for p in wb.settings.runs_dir.iterdir()} if wb.settings.runs_dir.exists() else set()


def _worker_pid(wb: Workbench, run_id: str) -> int | None:
    with wb.database.session() as session:
        return session.get(BacktestRunRow, run_id).worker_pid


def _wait_until_running(wb: Workbench, run_id: str, timeout: float = 60.0) -> int:
    """Poll until the run is Running in the engine (not just started); return its worker pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = wb.backtests.get(run_id)
        assert not info.is_final, f"run ended early: {info.status} {info.error}"
        pid = _worker_pid(wb, run_id)
        # 'running' is written by the progress actor from inside the engine's event loop.
        if info.status == "Running" and pid and info.phase == "running":
            return pid
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach the engine's run loop in {timeout} s")


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _long_spec(label: str) -> BacktestSpec:
    # A full year of 1-minute bars with many trades: runs far longer than any test waits.
    return BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, label=label,
                        parameters={"fast_ema_period": 10, "slow_ema_period": 20})


# -- a. a real run on the sample catalog ---------------------------------------------------------
@pytest.fixture(scope="module")
def week_run(workbench):
    spec = BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04", end="2024-03-11",
        parameters={"fast_ema_period": 10, "slow_ema_period": 20, "trade_size": "0.1"},
        label="integration week",
    )
    run_id = workbench.backtests.submit(spec)
    info = workbench.backtests.wait(run_id, timeout=180)
    return run_id, info


def test_sample_run_completes_with_artefacts_and_headline_stats(workbench, week_run):
    # Arrange
    run_id, info = week_run

    # Act
    results = workbench.backtests.results(run_id)

    # Assert
    assert info.status == "Completed", info.error
    assert info.error is None
    folder = Path(info.run_folder)
    for name in RESULT_FILES:
        assert (folder / "results" / name).is_file(), f"missing results/{name}"
    assert not (folder / "results.partial").exists()
    assert len(results.fills) > 0
    assert results.summary["fills"] == len(results.fills)
    assert results.summary["positions"] == len(results.positions) > 0
    assert results.summary["warnings"] == []

    # config.json is the exact NautilusTrader config the worker ran: it decodes, and says what
    # the spec asked for.
    from nautilus_trader.backtest.config import BacktestRunConfig

    config = BacktestRunConfig.parse((folder / "config.json").read_bytes())
    strategy = config.engine.strategies[0].config
    assert strategy["fast_ema_period"] == 10 and strategy["slow_ema_period"] == 20
    assert Decimal(strategy["trade_size"]) == Decimal("0.1")
    assert pd.Timestamp(config.data[0].start_time) == pd.Timestamp("2024-03-04", tz="UTC")
    assert pd.Timestamp(config.data[0].end_time) == pd.Timestamp("2024-03-11", tz="UTC")

    # The database row carries the headline statistics of the run folder.
    stats = json.loads((folder / "results" / "statistics.json").read_text())
    with workbench.database.session() as session:
        row = session.get(BacktestRunRow, run_id)
        assert row.status == "Completed"
        assert row.started_at is not None and row.finished_at is not None
        assert row.num_trades == stats["num_trades"] == len(results.positions)
        assert row.final_equity == pytest.approx(stats["final_equity"])
        assert row.total_return == pytest.approx(stats["final_equity"] / 1_000_000 - 1)
        assert row.max_drawdown == pytest.approx(results.equity["drawdown"].min())
        assert row.max_drawdown < 0
        assert row.sharpe is not None and np.isfinite(row.sharpe)
    assert info.num_trades == row.num_trades and info.final_equity == row.final_equity


def test_sample_run_equity_is_marked_to_market_every_bar(workbench, sample_catalog_path, week_run):
    # Arrange
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    run_id, _ = week_run
    results = workbench.backtests.results(run_id)
    equity, fills = results.equity, results.fills
    # Bars read with NautilusTrader's own catalog, not the workbench's reader.
    bars = ParquetDataCatalog(str(sample_catalog_path)).bars(
        [BTC_BARS], start=pd.Timestamp("2024-03-04", tz="UTC"), end=pd.Timestamp("2024-03-11", tz="UTC"))
    closes = pd.Series([float(b.close) for b in bars],
                       index=pd.to_datetime([b.ts_event for b in bars], unit="ns", utc=True))

    # Assert: one row per bar (24/7 data, both ends inclusive), in bar-close time.
    expected_index = pd.date_range("2024-03-04", "2024-03-11", freq="1min", tz="UTC")
    assert len(equity) == len(expected_index) == len(closes) == results.summary["iterations"]
    assert (equity.index == expected_index).all()
    np.testing.assert_allclose(equity["close"].to_numpy(), closes.to_numpy())

    # The position column is the running sum of the fills up to and including each bar.
    signed = np.where(fills["side"] == "BUY", 1.0, -1.0) * fills["quantity"].to_numpy()
    by_time = pd.Series(signed, index=fills["ts"]).groupby(level=0).sum().cumsum()
    position = by_time.reindex(equity.index, method="ffill").fillna(0.0).round(9)
    np.testing.assert_allclose(equity["position"].to_numpy(), position.to_numpy(), atol=1e-9)

    # Between fills, equity moves with the price of the open position (not flat).
    fill_times = set(fills["ts"])
    held = ((equity["position"] != 0) & (equity["position"] == equity["position"].shift())
            & ~equity.index.isin(fill_times))
    held.iloc[0] = False
    d_equity = equity["equity"].diff()[held]
    d_price = (equity["close"].diff() * equity["position"])[held]
    assert held.sum() > 1000  # always in the market after the first signal
    np.testing.assert_allclose(d_equity.to_numpy(), d_price.to_numpy(), atol=1e-6)
    assert (d_equity != 0).sum() > 1000
    # Flat bars (before the first fill) do not move.
    before_first = equity[equity.index < fills["ts"].min()]
    assert len(before_first) > 0 and (before_first["equity"] == 1_000_000).all()

    # The strategy closes its position on stop: the last bar is flat and equity is cash.
    assert equity["position"].iloc[-1] == 0
    assert fills["ts"].max() <= equity.index[-1]
    final_balance = results.summary["final_balances"]["USDT"]
    assert equity["equity"].iloc[-1] == pytest.approx(final_balance, abs=1e-6)
    assert results.statistics["final_equity"] == pytest.approx(final_balance, abs=1e-6)
    # Realised PnL (net of commissions in NautilusTrader) adds up to what the account gained.
    gained = results.positions["realized_pnl"].sum()
    assert 1_000_000 + gained == pytest.approx(final_balance, abs=1e-6)


# -- b. parity with raw NautilusTrader on real data ---------------------------------------------
def _real_btc_bars():
    """Binance BTCUSDT-PERP 1-minute bars from the shared CSV.

    Timestamp convention: the CSV's ``timestamp`` is the bar's open time (UTC; the first row
    opens at 2021-12-31 23:01 and each open equals the previous close). NautilusTrader stamps
    time bars at their close, so ``ts_event = ts_init = timestamp + 1 minute``.
    """
    from nautilus_trader.model.data import Bar, BarType

    frame = pd.read_csv(REAL_BTC_CSV)
    opened = pd.to_datetime(frame["timestamp"], utc=True)
    ts = np.array(opened.dt.as_unit("ns").astype("int64").to_numpy() + 60_000_000_000, dtype=np.uint64)

    def column(name, decimals):
        # Writable copies: pandas 3 hands out read-only views and the Cython constructor needs
        # writable buffers (BarDataWrangler fails with "buffer source array is read-only").
        return np.array(np.round(frame[name].to_numpy(float), decimals), dtype=np.float64, copy=True)

    return Bar.from_raw_arrays_to_list(
        BarType.from_str(BTC_BARS), 1, 3, column("open", 1), column("high", 1), column("low", 1),
        column("close", 1), column("volume", 3), ts.copy(), ts.copy(),
    )


def _btc_perpetual():
    """BTCUSDT-PERP.BINANCE, defined as the sample catalog defines it (precision 1 / 3)."""
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import CryptoPerpetual
    from nautilus_trader.model.objects import Money, Price, Quantity

    return CryptoPerpetual(
        instrument_id=InstrumentId.from_str("BTCUSDT-PERP.BINANCE"), raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC, quote_currency=USDT, settlement_currency=USDT, is_inverse=False,
        price_precision=1, size_precision=3, price_increment=Price.from_str("0.1"),
        size_increment=Quantity.from_str("0.001"), max_quantity=Quantity.from_str("1000.000"),
        min_quantity=Quantity.from_str("0.001"), max_notional=None, min_notional=Money(5, USDT),
        max_price=Price.from_str("1000000.0"), min_price=Price.from_str("0.1"),
        margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"),
        maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0004"), ts_event=0, ts_init=0,
    )


def _engine_outcome(engine) -> dict:
    """Fills, closed positions and final balance straight from a NautilusTrader engine's cache."""
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.functions import order_side_to_str
    from nautilus_trader.model.identifiers import Venue

    fills = sorted(
        (pd.Timestamp(e.ts_event, unit="ns", tz="UTC"), order_side_to_str(e.order_side),
         e.last_qty.as_double(), e.last_px.as_double(), e.commission.as_double())
        for order in engine.cache.orders() for e in order.events if isinstance(e, OrderFilled)
    )
    positions = [p for p in engine.cache.positions() + engine.cache.position_snapshots() if p.is_closed]
    closed = sorted((pd.Timestamp(p.ts_closed, unit="ns", tz="UTC"), p.realized_pnl.as_double())
                    for p in positions)
    balance = engine.portfolio.account(Venue("BINANCE")).balance_total(USDT).as_double()
    return {"fills": fills, "positions": closed, "balance": balance}


def _workbench_outcome(results) -> dict:
    f = results.fills
    fills = sorted(zip(f["ts"], f["side"], f["quantity"].astype(float), f["price"].astype(float),
                       f["commission"].astype(float)))
    p = results.positions
    closed = sorted(zip(p["closed"], p["realized_pnl"].astype(float)))
    return {"fills": fills, "positions": closed, "balance": results.summary["final_balances"]["USDT"]}


def _assert_same_outcome(actual: dict, expected: dict, what: str) -> None:
    assert len(actual["fills"]) == len(expected["fills"]), f"{what}: fill count"
    for i, (a, e) in enumerate(zip(actual["fills"], expected["fills"])):
        assert a[:3] == e[:3], f"{what}: fill {i} (ts, side, qty) {a} != {e}"
        assert a[3] == pytest.approx(e[3], abs=1e-9), f"{what}: fill {i} price {a} != {e}"
        assert a[4] == pytest.approx(e[4], abs=1e-8), f"{what}: fill {i} commission {a} != {e}"
    assert len(actual["positions"]) == len(expected["positions"]), f"{what}: position count"
    for i, (a, e) in enumerate(zip(actual["positions"], expected["positions"])):
        assert a[0] == e[0], f"{what}: position {i} closed at {a[0]} != {e[0]}"
        assert a[1] == pytest.approx(e[1], abs=1e-8), f"{what}: position {i} PnL {a[1]} != {e[1]}"
    assert actual["balance"] == pytest.approx(expected["balance"], abs=1e-8), f"{what}: balance"


def test_parity_with_raw_nautilus_trader_on_real_binance_data(tmp_path):
    if not REAL_BTC_CSV.exists():
        skip_or_fail(f"real data file {REAL_BTC_CSV} is absent")
    from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
    from nautilus_trader.backtest.config import BacktestEngineConfig, BacktestRunConfig
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.models import FillModel, MakerTakerFeeModel
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    # The raw runs below must be stock NautilusTrader: the workbench patches its analyzer only
    # inside worker processes.
    assert not getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False)

    # Arrange: a catalog with the real bars; settings that differ from every default, and a
    # fill model that slips at random, so a lost seed, balance or size would change the fills.
    instrument, bars = _btc_perpetual(), _real_btc_bars()
    catalog_path = tmp_path / "catalog"
    catalog = ParquetDataCatalog(str(catalog_path))
    catalog.write_data([instrument])
    catalog.write_data(bars)
    start, end = pd.Timestamp("2022-01-03", tz="UTC"), pd.Timestamp("2022-01-31", tz="UTC")
    parameters = {"fast_ema_period": 12, "slow_ema_period": 40, "trade_size": "0.25"}
    venue = VenueSettings(starting_balance="250000", prob_slippage=0.5, random_seed=7)
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(catalog_path), scheduler=True)

    # Act 1: the workbench, end to end through a worker process.
    run_id = wb.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start=start.isoformat(), end=end.isoformat(),
        parameters=parameters, venue=venue))
    info = wb.backtests.wait(run_id, timeout=180)
    assert info.status == "Completed", info.error
    results = wb.backtests.results(run_id)
    workbench = _workbench_outcome(results)
    wb.close()

    # Act 2: NautilusTrader's BacktestNode on the exact config.json the worker ran.
    config = BacktestRunConfig.parse((Path(info.run_folder) / "config.json").read_bytes())
    node = BacktestNode(configs=[config])
    node.run()
    from_config = _engine_outcome(node.get_engine(config.id))
    node.dispose()

    # Act 3: a BacktestEngine put together by hand from the same choices, no workbench code.
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        venue=Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
        base_currency=USDT, starting_balances=[Money(250_000, USDT)], default_leverage=Decimal(1),
        fill_model=FillModel(prob_fill_on_limit=1.0, prob_slippage=0.5, random_seed=7),
        fee_model=MakerTakerFeeModel(),
    )
    engine.add_instrument(instrument)
    engine.add_data([b for b in bars if start.value <= b.ts_event <= end.value])
    engine.add_strategy(EMACross(EMACrossConfig(
        instrument_id=instrument.id, bar_type=BarType.from_str(BTC_BARS),
        trade_size=Decimal("0.25"), fast_ema_period=12, slow_ema_period=40,
        request_bars=False, subscribe_trade_ticks=False, subscribe_quote_ticks=False,
        close_positions_on_stop=True,
    )))
    engine.run()
    by_hand = _engine_outcome(engine)
    engine.dispose()

    # Assert
    assert len(workbench["fills"]) > 100
    assert results.summary["iterations"] == sum(start.value <= b.ts_event <= end.value for b in bars)
    assert any(f[3] % 1 != 0 for f in workbench["fills"])  # slipped fills (the data has whole prices)
    _assert_same_outcome(workbench, from_config, "workbench vs BacktestNode(config.json)")
    _assert_same_outcome(workbench, by_hand, "workbench vs hand-built BacktestEngine")
    assert results.equity["equity"].iloc[-1] == pytest.approx(by_hand["balance"], abs=1e-6)


# -- c. failure paths ------------------------------------------------------------------------
def test_killed_worker_ends_failed_without_results(workbench, stop_unfinished):
    # Arrange
    run_id = workbench.backtests.submit(_long_spec("killed"))
    try:
        pid = _wait_until_running(workbench, run_id)

        # Act
        os.kill(pid, signal.SIGKILL)
        info = workbench.backtests.wait(run_id, timeout=30)
    finally:
        stop_unfinished(workbench)

    # Assert
    assert info.status == "Failed"
    assert "killed" in info.error and "SIGKILL" in info.error
    assert info.finished_at is not None
    folder = Path(info.run_folder)
    assert not (folder / "results").exists()
    assert not (folder / "results.partial").exists()
    with pytest.raises(BacktestError, match="Failed"):
        workbench.backtests.results(run_id)


def test_cancelled_run_ends_cancelled_and_its_worker_is_gone(workbench, stop_unfinished):
    # Arrange
    run_id = workbench.backtests.submit(_long_spec("cancelled"))
    try:
        pid = _wait_until_running(workbench, run_id)

        # Act
        returned = workbench.backtests.cancel(run_id, principal=TESTER)
        info = workbench.backtests.wait(run_id, timeout=30)
    finally:
        stop_unfinished(workbench)

    # Assert
    assert returned.status == "Cancelled"
    assert info.status == "Cancelled" and "tester" in info.error
    assert _pid_gone(pid), f"worker {pid} still alive after cancel"
    time.sleep(0.5)  # let the watcher thread record the exit; the status must not change
    assert workbench.backtests.get(run_id).status == "Cancelled"
    assert not (Path(info.run_folder) / "results").exists()
    with pytest.raises(BacktestError, match="Cancelled"):
        workbench.backtests.results(run_id)
    with pytest.raises(BacktestError, match="already Cancelled"):
        workbench.backtests.cancel(run_id)


def test_date_range_outside_the_data_is_refused_before_queueing(workbench):
    # Arrange
    rows, folders = _row_count(workbench), _run_folders(workbench)
    spec = BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS, start="2019-01-01", end="2019-02-01")

    # Act
    with pytest.raises(ValidationError) as raised:
        workbench.backtests.submit(spec)

    # Assert
    assert any(p.startswith("start:") and "2019-01-01" in p for p in raised.value.problems)
    assert any(p.startswith("end:") for p in raised.value.problems)
    assert _row_count(workbench) == rows
    assert _run_folders(workbench) == folders


def test_unknown_strategy_is_a_template_error(workbench):
    rows, folders = _row_count(workbench), _run_folders(workbench)

    with pytest.raises(TemplateError, match="no_such_strategy"):
        workbench.backtests.submit(BacktestSpec(strategy="no_such_strategy", bar_type=BTC_BARS))

    assert _row_count(workbench) == rows
    assert _run_folders(workbench) == folders


def test_catalog_without_data_is_a_catalog_error(tmp_path):
    empty = tmp_path / "empty_catalog"
    empty.mkdir()
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(empty))
    try:
        with pytest.raises(CatalogError, match="no data"):
            wb.backtests.submit(BacktestSpec(strategy="ema_cross", bar_type=BTC_BARS))
        assert _row_count(wb) == 0
        assert _run_folders(wb) == set()
    finally:
        wb.database.dispose()


# -- d. restart reconcile ----------------------------------------------------------------------
def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _stand_in_worker(folder: Path) -> subprocess.Popen:
    """A live process that looks like the worker of ``folder`` (its command line names it)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(folder)])


def _running_row(run_id: str, folder: Path, pid: int) -> BacktestRunRow:
    now = datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    return BacktestRunRow(
        run_id=run_id, status="Running", strategy="ema_cross", instrument_id="BTCUSDT-PERP.BINANCE",
        bar_type=BTC_BARS, start=now, end=now, spec={}, run_folder=str(folder), actor="test",
        created_at=now, started_at=now, worker_pid=pid, phase="running", currency="USDT",
    )


def test_restart_fails_runs_whose_worker_died(tmp_path, sample_catalog_path):
    # Arrange: a database left behind by a server that stopped mid-run.
    state = tmp_path / "state"
    wb = Workbench.open(state_dir=state, catalog=str(sample_catalog_path))
    runs = wb.settings.runs_dir
    finished = runs / "finished-before-restart"
    live_worker = _stand_in_worker(runs / "other-server")
    try:
        with wb.database.session() as session:
            session.add(_running_row("interrupted", runs / "interrupted", _dead_pid()))
            # The recorded pid now belongs to an unrelated live process (pid reuse).
            session.add(_running_row("pid-reused", runs / "pid-reused", os.getpid()))
            session.add(_running_row("other-server", runs / "other-server", live_worker.pid))
            session.add(_running_row("finished-before-restart", finished, _dead_pid()))
        (finished / "results").mkdir()
        (finished / "results" / "summary.json").write_text(json.dumps({"statistics": {
            "total_return": 0.01, "sharpe": 1.5, "max_drawdown": -0.02, "num_trades": 3,
            "final_equity": 1_010_000.0}}))

        # Act: a new service over the same database and its scheduler (a server restart).
        service = BacktestService(wb.database, wb.templates, wb.catalog, runs, wb.authorizer)
        scheduler = service.start_scheduler()
        assert scheduler.wait_active(timeout=10)

        # Assert
        for run_id in ("interrupted", "pid-reused"):
            info = service.get(run_id)
            assert info.status == "Failed", run_id
            assert info.error.startswith("Interrupted"), run_id
            assert info.finished_at is not None, run_id
        assert service.get("other-server").status == "Running"  # its worker is alive
        completed = service.get("finished-before-restart")
        assert completed.status == "Completed" and completed.num_trades == 3
        assert completed.final_equity == pytest.approx(1_010_000.0)

        # Opening the workbench elsewhere (a notebook, the CLI) reconciles nothing.
        scheduler.stop()
        wb.database.dispose()
        reopened = Workbench.open(state_dir=state, catalog=str(sample_catalog_path))
        try:
            assert reopened.backtests.get("interrupted").status == "Failed"
            assert reopened.backtests.get("other-server").status == "Running"
        finally:
            reopened.database.dispose()
    finally:
        live_worker.kill()
        live_worker.wait()


def test_restart_finishes_a_run_whose_orphaned_worker_ends_later(tmp_path, sample_catalog_path):
    # Arrange: the previous server left a live worker behind (stand-in: a sleeping process).
    state = tmp_path / "state"
    wb = Workbench.open(state_dir=state, catalog=str(sample_catalog_path))
    orphan = _stand_in_worker(wb.settings.runs_dir / "orphaned")
    try:
        with wb.database.session() as session:
            session.add(_running_row("orphaned", wb.settings.runs_dir / "orphaned", orphan.pid))
        wb.database.dispose()
        restarted = Workbench.open(state_dir=state, catalog=str(sample_catalog_path),
                                   scheduler=True)
        assert restarted.backtests.get("orphaned").status == "Running"

        # Act: the orphaned worker dies without results.
        orphan.kill()
        orphan.wait()
        info = restarted.backtests.wait("orphaned", timeout=10)

        # Assert
        assert info.status == "Failed"
        restarted.close()
    finally:
        orphan.kill()
        orphan.wait()
