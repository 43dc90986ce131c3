"""Tests of services/backtest/analyzer_fix.py.

``install()`` patches NautilusTrader's PortfolioAnalyzer for the whole process, so every check
runs in ONE child process: it first computes an unpatched reference, then installs the fix and
repeats the same calls, and prints both as JSON. The pytest process is never patched.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD_SCRIPT = r'''
import json

from nautilus_trader.accounting.accounts.cash import CashAccount
from nautilus_trader.analysis import (
    AvgLoser, AvgWinner, Expectancy, MaxLoser, MaxWinner, MinLoser, MinWinner, ProfitFactor,
    WinRate,
)
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import EUR, USD
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.identifiers import AccountId, PositionId
from nautilus_trader.model.objects import AccountBalance, Money

DAY = 86_400_000_000_000
# A position id with a UUID4 suffix; NautilusTrader matches it to the plain id "P-5".
P5_WITH_UUID = "P-5-0f8fad5b-d9cb-469f-a165-70867728950e"


def account_state(total, ts):
    return AccountState(
        account_id=AccountId("SIM-001"), account_type=AccountType.CASH, base_currency=USD,
        reported=True, balances=[AccountBalance(Money(total, USD), Money(0, USD), Money(total, USD))],
        margins=[], info={}, event_id=UUID4(), ts_event=ts, ts_init=ts,
    )


def series(s):
    if s is None:
        return None
    return {"ids": [str(i) for i in s.index], "values": [repr(float(v)) for v in s],
            "dtype": str(s.dtype), "index_dtype": str(s.index.dtype)}


def snapshot(a):
    return {
        "usd": series(a.realized_pnls(USD)),
        "eur": series(a.realized_pnls(EUR)),
        "default": series(a.realized_pnls()),
        "total_pnl": repr(a.total_pnl()),
        "total_pnl_pct": repr(a.total_pnl_percentage()),
        "stats": {k: repr(v) for k, v in a.get_performance_stats_pnls(USD).items()},
    }


def scenario():
    """Trades recorded during a run, then the end-of-run statistics, as the engine does."""
    account = CashAccount(account_state(1000, 0))
    account.apply(account_state(1015.5, 3 * DAY))
    a = PortfolioAnalyzer()
    for stat in (AvgLoser, AvgWinner, Expectancy, MaxLoser, MaxWinner, MinLoser, MinWinner,
                 ProfitFactor, WinRate):
        a.register_statistic(stat())
    out = {}
    a.record_trade(PositionId("P-1"), Money(12.5, USD), 1 * DAY)
    a.record_trade(PositionId("P-2"), Money(-4.25, USD), 2 * DAY)
    a.record_trade(PositionId("P-9"), Money(3, EUR), 2 * DAY)
    out["mid_run"] = series(a.realized_pnls(USD))  # a read between writes
    a.record_trade(PositionId("P-3"), Money(7, USD), None)
    a.record_trade(PositionId("P-5"), Money(1.5, USD), 3 * DAY)
    a.calculate_statistics(account, [])
    a.add_trade(PositionId("P-1"), Money(12.5, USD), 1 * DAY)  # already recorded: not twice
    a.add_trade(PositionId("P-4"), Money(-1.75, USD), 2 * DAY)
    a.add_trade(PositionId("P-4"), Money(2, USD), 3 * DAY)  # same id again (netting re-entry)
    a.add_trade(PositionId(P5_WITH_UUID), Money(1.5, USD), 3 * DAY)  # recorded as "P-5"
    a.add_trade(PositionId("P-8"), Money(-0.5, EUR), 3 * DAY)
    out["end_of_run"] = snapshot(a)
    return out


def reset_scenario():
    a = PortfolioAnalyzer()
    a.record_trade(PositionId("P-1"), Money(1, USD), 1)
    a.add_trade(PositionId("P-2"), Money(2, USD), 2)
    a.reset()
    after_reset = series(a.realized_pnls(USD))
    a.record_trade(PositionId("P-3"), Money(3, USD), 3)
    return {"after_reset": after_reset, "after_new_trade": series(a.realized_pnls(USD))}


def many_trades(n):
    a = PortfolioAnalyzer()
    for i in range(n):
        a.record_trade(PositionId(f"P-{i}"), Money(i % 7 - 3, USD), i)
    pnls = a.realized_pnls(USD)
    return {"count": len(pnls), "sum": float(pnls.sum()), "first": str(pnls.index[0]),
            "last": str(pnls.index[-1])}


report = {"reference": {"scenario": scenario(), "reset": reset_scenario()}}

import services.backtest.analyzer_fix as analyzer_fix

report["patched_by_import"] = bool(
    getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False))
analyzer_fix.install()
analyzer_fix.install()  # idempotent: must not wrap twice
report["patched_by_install"] = bool(
    getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False))
report["double_wrapped"] = bool(
    getattr(getattr(PortfolioAnalyzer.realized_pnls, "__wrapped__", None),
            "_workbench_flushing", False))
report["patched"] = {"scenario": scenario(), "reset": reset_scenario()}
report["many_trades"] = many_trades(20_000)
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def child_report(request) -> dict:
    """Run the reference and the patched analyzer in one child process; return its report."""
    root = request.config.rootpath
    done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT], cwd=root, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_alone_does_not_patch(child_report):
    # Assert
    assert child_report["patched_by_import"] is False


def test_install_patches_once_even_when_called_twice(child_report):
    # Assert
    assert child_report["patched_by_install"] is True
    assert child_report["double_wrapped"] is False


def test_reference_scenario_exercises_deduplication(child_report):
    # Arrange: a sanity check on the unpatched reference itself, so the equivalence tests
    # below compare something non-trivial.
    usd = child_report["reference"]["scenario"]["end_of_run"]["usd"]

    # Assert: P-1 and P-5 are recorded AND added but appear once; P-4 appears twice
    assert usd["ids"] == ["P-4", "P-4", "P-1", "P-2", "P-3", "P-5"]
    assert [float(v) for v in usd["values"]] == [-1.75, 2.0, 12.5, -4.25, 7.0, 1.5]


def test_realized_pnls_are_unchanged_by_the_fix(child_report):
    # Arrange
    reference = child_report["reference"]["scenario"]
    patched = child_report["patched"]["scenario"]

    # Assert: ids, values (exact reprs), order and dtypes, per currency and mid-run
    assert patched["mid_run"] == reference["mid_run"]
    for key in ("usd", "eur", "default"):
        assert patched["end_of_run"][key] == reference["end_of_run"][key], key


def test_total_pnl_and_pnl_statistics_are_unchanged_by_the_fix(child_report):
    # Arrange
    reference = child_report["reference"]["scenario"]["end_of_run"]
    patched = child_report["patched"]["scenario"]["end_of_run"]

    # Assert
    assert float(reference["total_pnl"]) == 15.5  # 1015.5 - 1000
    assert patched["total_pnl"] == reference["total_pnl"]
    assert patched["total_pnl_pct"] == reference["total_pnl_pct"]
    assert set(reference["stats"]) >= {"PnL (total)", "PnL% (total)"}
    assert len(reference["stats"]) > 2, "the registered statistics should report values"
    assert patched["stats"] == reference["stats"]


def test_reset_drops_buffered_records(child_report):
    # Arrange
    reference = child_report["reference"]["reset"]
    patched = child_report["patched"]["reset"]

    # Assert
    assert patched["after_reset"] is None
    assert patched["after_new_trade"]["ids"] == ["P-3"]
    assert patched == reference


def test_twenty_thousand_recorded_trades_are_all_kept(child_report):
    # Arrange: values cycle through i % 7 - 3 = -3..3; 20,000 = 2,857 * 7 + 1 and each full
    # cycle sums to 0, so the total is that of the last, partial cycle: i % 7 == 0 -> -3
    many = child_report["many_trades"]

    # Assert
    assert many["count"] == 20_000
    assert many["sum"] == -3.0
    assert (many["first"], many["last"]) == ("P-0", "P-19999")
