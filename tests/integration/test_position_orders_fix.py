"""The orders-for-position fix changes how fast a backtest runs, never what it produces.

Each scenario runs on NautilusTrader 1.231 as it ships (its ``Cache``) and with the worker's
fixes installed (``nautilus_fixes.install()``: ``LiveOrdersCache`` and the analyzer fix), in ONE
child process: ``install()`` patches NautilusTrader for the whole process, and the pytest process
is never patched. The child pickles NautilusTrader's own reports (fills, order fills, orders,
positions, account) and the final balance; this module compares them cell by cell.

The bracket strategy is what exercises the resync loop the fix touches: after each flattening
fill the venue must cancel the open reduce-only stop-loss and take-profit. A third run with a
cache that hides every order from the loop shows that its results then differ, so the equality
of the patched run is not an accident of a loop that never acts.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from services.backtest.spec import BacktestSpec, VenueSettings

pytestmark = pytest.mark.integration

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
# Six days of 1-minute bars: 8,640 bars, hundreds of round trips per scenario.
WINDOW = {"start": "2024-01-01", "end": "2024-01-07"}
SCENARIOS = {
    "ema_netting": ("ema_cross", "NETTING"),
    "ema_hedging": ("ema_cross", "HEDGING"),
    "bracket_netting": ("ema_cross_bracket", "NETTING"),
    "bracket_hedging": ("ema_cross_bracket", "HEDGING"),
}
REPORTS = ("fills", "order_fills", "orders", "positions", "account")
# Columns holding a fresh UUID4 per event or order: they differ between any two runs.
RANDOM_COLUMNS = ("event_id", "init_id")
# NETTING position snapshots are named "<position id>-<UUID4>".
SNAPSHOT_SUFFIX = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

CHILD_SCRIPT = r'''
import json, pickle, sys
from pathlib import Path

from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.cache.cache import Cache
from nautilus_trader.system import kernel

from services.backtest import nautilus_fixes

configs = json.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])


def run(name, mode):
    config = BacktestRunConfig.parse(configs[name].encode())
    node = BacktestNode(configs=[config])
    node.run()
    engine = node.get_engine(config.id)
    trader, venue = engine.trader, engine.list_venues()[0]
    outcome = {
        "cache": type(engine.cache).__name__,
        "balance": [str(m) for m in engine.portfolio.account(venue).balances_total().values()],
        "fills": trader.generate_fills_report(),
        "order_fills": trader.generate_order_fills_report(),
        "orders": trader.generate_orders_report(),
        "positions": trader.generate_positions_report(),
        "account": trader.generate_account_report(venue),
    }
    (out / f"{name}-{mode}.pickle").write_bytes(pickle.dumps(outcome))
    node.dispose()


class BlindCache(Cache):
    """A cache that shows the matching engine's resync loop no orders at all."""

    def orders_for_position(self, position_id):
        return []


for name in configs:
    run(name, "shipped")
kernel.Cache = BlindCache
for name in configs:
    if name.startswith("bracket"):
        run(name, "blind")
kernel.Cache = Cache
outcome = nautilus_fixes.install()
assert outcome.installed == ("analyzer_fix", "position_orders_fix"), outcome
for name in configs:
    run(name, "fixed")
'''


def _config_json(workbench, strategy: str, oms_type: str) -> str:
    spec = BacktestSpec(strategy=strategy, bar_type=BTC_BARS, **WINDOW,
                        venue=VenueSettings(oms_type=oms_type))
    data = json.loads(workbench.backtests.validate(spec).json())
    data["engine"]["actors"] = []  # the progress actor writes into a run folder; none here
    return json.dumps(data)


@pytest.fixture(scope="module")
def runs(workbench, tmp_path_factory) -> dict[tuple[str, str], dict]:
    """``{(scenario, "shipped" | "fixed" | "blind"): outcome}`` from one child process."""
    folder = tmp_path_factory.mktemp("position-orders-fix")
    configs = {name: _config_json(workbench, *how) for name, how in SCENARIOS.items()}
    (folder / "configs.json").write_text(json.dumps(configs))
    (folder / "child.py").write_text(CHILD_SCRIPT)
    project = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, str(folder / "child.py"), str(folder / "configs.json"),
                            str(folder)], cwd=project, capture_output=True, text=True,
                           timeout=600, env={**os.environ, "PYTHONPATH": str(project)})
    assert child.returncode == 0, child.stderr[-3000:]
    return {tuple(path.stem.rsplit("-", 1)): pickle.loads(path.read_bytes())
            for path in folder.glob("*.pickle")}


def _comparable(report: pd.DataFrame) -> pd.DataFrame:
    """The report without its random UUIDs, rows in a deterministic order."""
    report = report.drop(columns=[c for c in RANDOM_COLUMNS if c in report.columns])
    if report.index.name == "position_id":
        report = report.rename(index=lambda pid: SNAPSHOT_SUFFIX.sub("", pid))
        report = report.sort_values(["ts_opened", "ts_last"], kind="stable")
    return report


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fixed_run_reports_equal_the_shipped_run_cell_by_cell(runs, scenario):
    # Arrange
    shipped, fixed = runs[(scenario, "shipped")], runs[(scenario, "fixed")]

    # Assert
    assert (shipped["cache"], fixed["cache"]) == ("Cache", "LiveOrdersCache")
    assert len(shipped["positions"]) > 200, "too few trades to prove anything"
    for name in REPORTS:
        pd.testing.assert_frame_equal(_comparable(fixed[name]), _comparable(shipped[name]),
                                      check_exact=True, obj=f"{scenario} {name} report")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fixed_run_ends_with_the_shipped_balance_to_the_cent(runs, scenario):
    # Arrange
    shipped, fixed = runs[(scenario, "shipped")], runs[(scenario, "fixed")]
    amounts = [[round(float(m.split()[0]), 2) for m in o["balance"]] for o in (shipped, fixed)]

    # Assert
    assert fixed["balance"] == shipped["balance"]  # every digit, e.g. "982064.64136040 USDT"
    assert amounts[0] == amounts[1]
    assert shipped["balance"][0].endswith(" USDT")


@pytest.mark.parametrize("scenario", ["bracket_netting", "bracket_hedging"])
def test_bracket_runs_depend_on_the_resync_loop_the_fix_changes(runs, scenario):
    # Arrange
    shipped, blind = runs[(scenario, "shipped")], runs[(scenario, "blind")]
    orders = shipped["orders"]
    protective = orders[orders["is_reduce_only"] & orders["type"].isin(["STOP_MARKET", "LIMIT"])]

    # Assert: the venue cancelled stop-losses and take-profits (the strategy never does before
    # it stops), and without the loop the run would have ended differently.
    assert (protective["status"] == "CANCELED").sum() > 100
    assert not _comparable(blind["orders"]).equals(_comparable(shipped["orders"]))
    assert blind["balance"] != shipped["balance"]
