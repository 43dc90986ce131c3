"""The live state's run feed re-reads only the runs that changed (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from services import Workbench
from services.backtest import BacktestSpec
from services.live import RECENT_RUNS, LiveState, RunFeed
from tests.conftest import close_workbench

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def queued(tmp_path, sample_catalog_path, new_database_url):
    """A workbench without a scheduler and three runs that stay Queued in it."""
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                        scheduler=False, database_url=new_database_url())
    run_ids = [wb.backtests.submit(BacktestSpec(
        "ema_cross", BTC_BARS, {"fast_ema_period": fast, "slow_ema_period": 30},
        start="2024-03-04", end="2024-03-05")) for fast in (5, 10, 15)]
    yield wb, run_ids
    close_workbench(wb)


def test_the_feed_lists_what_list_runs_lists_and_reads_again_only_changed_runs(queued):
    # Arrange: count the runs the feed reads in full, through the real repository
    wb, run_ids = queued
    repository = wb.backtests.repository
    read: list[str] = []
    full_read = repository.runs

    def counted(ids):
        ids = list(ids)
        read.extend(ids)
        return full_read(ids)

    repository.runs = counted
    state = LiveState(wb.hub, wb.engines)
    feed = RunFeed(wb.backtests, state)

    # Act / Assert: the first refresh reads all three, in list_runs' order
    feed.refresh()
    expected = wb.backtests.list_runs(limit=RECENT_RUNS, active_first=True)
    assert [r.run_id for r in state.runs] == [r.run_id for r in expected]
    assert sorted(read) == sorted(run_ids)

    # Nothing changed: nothing is read again (a queued run changes only with its status)
    read.clear()
    feed.refresh()
    assert read == [] and [r.run_id for r in state.runs] == [r.run_id for r in expected]

    # One is cancelled: only it is read again, and the state shows it so
    wb.backtests.cancel(run_ids[1])
    read.clear()
    feed.refresh()
    assert read == [run_ids[1]]
    by_id = {r.run_id: r for r in state.runs}
    assert by_id[run_ids[1]].status == "Cancelled" and by_id[run_ids[0]].status == "Queued"
    assert [r.run_id for r in state.runs] == [
        r.run_id for r in wb.backtests.list_runs(limit=RECENT_RUNS, active_first=True)]
