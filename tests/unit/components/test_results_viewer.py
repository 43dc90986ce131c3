"""ResultsViewer driven through its parameters and widgets, over real services and real runs.

The finished runs live in the session's ``runs_workbench`` (see conftest.py); tests that add runs
to it look runs up by id, never expect an exact list.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import panel as pn
import pytest

from components import ResultsViewer, RunComparison
from services.backtest.metric_labels import HEADLINE_LABELS
from services.formatting import format_duration
from services.identity.principal import Principal

COMPONENT_TESTER = Principal.user("component-test", {"researcher", "admin"})
RUN_TIMEOUT_S = 180  # a week of sample bars runs in seconds


def _tables(viewer: ResultsViewer) -> list[pn.widgets.Tabulator]:
    """The layout's tables in order: runs, then the run's trades, fills and orders."""
    return viewer.__panel__().select(pn.widgets.Tabulator)


def test_needs_a_workbench():
    with pytest.raises(ValueError, match="workbench"):
        ResultsViewer()


def test_without_runs_there_is_nothing_to_show(workbench):
    viewer = ResultsViewer(workbench=workbench)

    assert viewer.param.run_id.objects == []
    assert viewer.run_id is None
    assert viewer.statistics == {} and viewer.message == ""
    assert len(_tables(viewer)[0].value) == 0


def test_lists_the_runs_without_showing_one_until_asked(runs_workbench, completed_run, failed_run):
    viewer = ResultsViewer(workbench=runs_workbench)

    assert {completed_run, failed_run} <= set(viewer.param.run_id.objects)
    assert viewer.run_id is None
    assert viewer.statistics == {} and viewer.message == ""


def test_completed_run_shows_its_statistics(runs_workbench, completed_run):
    # Arrange
    results = runs_workbench.backtests.results(completed_run)

    # Act
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)

    # Assert
    assert viewer.message == ""
    assert set(HEADLINE_LABELS) <= set(viewer.statistics)
    assert viewer.statistics["num_trades"] == len(results.positions) == results.summary["positions"]
    assert viewer.statistics["num_trades"] > 0  # a week of 1-minute bars crosses many times
    assert viewer.statistics == results.statistics
    assert runs_workbench.backtests.get(completed_run).num_trades == viewer.statistics["num_trades"]


def test_completed_run_fills_the_tables_and_cards(runs_workbench, completed_run):
    # Arrange
    results = runs_workbench.backtests.results(completed_run)

    # Act
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)

    # Assert
    runs, trades, fills, orders = _tables(viewer)
    assert completed_run in set(runs.value["run_id"])
    assert len(trades.value) == len(results.positions)  # one row per closed position
    assert len(fills.value) == len(results.fills) == results.summary["fills"]
    assert len(orders.value) == len(results.orders) == results.summary["orders"]
    card_text = " ".join(str(p.object) for p in viewer.__panel__().select(pn.pane.HTML))
    for label, _ in HEADLINE_LABELS.values():
        assert label in card_text
    assert "nan" not in card_text.lower() and "inf " not in card_text.lower()


def test_failed_run_shows_why_and_no_statistics(runs_workbench, failed_run):
    # Act
    viewer = ResultsViewer(workbench=runs_workbench, run_id=failed_run)

    # Assert
    assert viewer.statistics == {}
    assert failed_run in viewer.message
    assert "Failed" in viewer.message and "Interrupted" in viewer.message


def test_switching_between_runs_replaces_statistics_and_message(runs_workbench, completed_run,
                                                                 failed_run):
    # Arrange
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)
    assert viewer.statistics

    # Act / Assert: to the failed run ...
    viewer.run_id = failed_run
    assert viewer.statistics == {} and "Failed" in viewer.message

    # ... and back.
    viewer.run_id = completed_run
    assert viewer.message == ""
    assert viewer.statistics["num_trades"] == runs_workbench.backtests.get(completed_run).num_trades


def test_cancelled_run_shows_why_and_no_statistics(runs_workbench, short_spec):
    # Arrange
    run_id = runs_workbench.backtests.submit(short_spec(label="to cancel"))
    runs_workbench.backtests.cancel(run_id, principal=COMPONENT_TESTER)

    # Act
    viewer = ResultsViewer(workbench=runs_workbench, run_id=run_id)

    # Assert
    assert viewer.statistics == {}
    assert "Cancelled" in viewer.message and "component-test" in viewer.message


def test_selecting_a_row_shows_that_run(runs_workbench, completed_run, failed_run):
    # Arrange
    viewer = ResultsViewer(workbench=runs_workbench, run_id=failed_run)
    table = _tables(viewer)[0]
    row = list(table.value["run_id"]).index(completed_run)

    # Act: the user clicks the completed run's row.
    table.selection = [row]

    # Assert
    assert viewer.run_id == completed_run
    assert viewer.message == ""
    assert viewer.statistics["num_trades"] == runs_workbench.backtests.get(completed_run).num_trades


def test_runs_are_named_and_the_one_shown_is_the_selected_row(runs_workbench, completed_run):
    # Arrange: the run as a user would recognise it
    info = runs_workbench.backtests.get(completed_run)
    name = info.label or (f"{info.strategy} · {info.instrument_id} · "
                          f"{info.start:%Y-%m-%d}–{info.end:%Y-%m-%d}")

    # Act: the run is chosen by its id (as the URL does)
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)

    # Assert: the menu and the table name it; its row is the highlighted one
    assert viewer.param.run_id.names[f"{name} · {completed_run}"] == completed_run
    table = _tables(viewer)[0]
    (row,) = table.selection
    assert table.value.loc[row, ["name", "run_id"]].tolist() == [name, completed_run]
    assert list(table.value.columns[:3]) == ["name", "parameters", "status"]


def test_refresh_lists_new_runs_and_keeps_the_one_on_display(runs_workbench, completed_run,
                                                              short_spec):
    # Arrange
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)
    new_run = runs_workbench.backtests.submit(short_spec(label="after the viewer opened"))
    runs_workbench.backtests.cancel(new_run, principal=COMPONENT_TESTER)  # listing is all we need
    assert new_run not in viewer.param.run_id.objects

    # Act
    viewer.param.trigger("refresh")

    # Assert
    assert new_run in viewer.param.run_id.objects
    assert new_run in set(_tables(viewer)[0].value["run_id"])
    assert viewer.run_id == completed_run and viewer.statistics


def test_runs_table_shows_statuses_and_percentages(runs_workbench, completed_run, failed_run):
    # Arrange
    info = runs_workbench.backtests.get(completed_run)

    # Act
    viewer = ResultsViewer(workbench=runs_workbench)

    # Assert
    frame = _tables(viewer)[0].value.set_index("run_id")
    assert frame.loc[completed_run, "status"] == "Completed"
    assert frame.loc[failed_run, "status"] == "Failed"
    assert frame.loc[completed_run, "total_return"] == pytest.approx(info.total_return * 100)
    assert frame.loc[completed_run, "max_drawdown"] == pytest.approx(info.max_drawdown * 100)
    assert frame.loc[completed_run, "num_trades"] == info.num_trades


def test_runs_table_keeps_trade_counts_whole_next_to_runs_without_results(
        runs_workbench, completed_run, failed_run):
    frame = _tables(ResultsViewer(workbench=runs_workbench))[0].value

    assert not pd.api.types.is_float_dtype(frame["num_trades"]), frame["num_trades"].tolist()


def test_the_returns_and_trades_charts_are_built_when_their_tab_is_first_shown(
        runs_workbench, completed_run):
    # Arrange: a run on display, its Charts tab shown.
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)
    assert viewer._time_charts.object is not None
    assert viewer._distribution.object is None and viewer._trade_price.object is None

    # Act / Assert: each tab's charts appear when the tab is chosen.
    viewer._tabs.active = 1  # Returns
    assert viewer._distribution.object is not None
    viewer._tabs.active = 3  # Trades
    price = viewer._trade_price.object
    fills = runs_workbench.backtests.results(completed_run).fills
    markers = sum(len(r.data_source.data["ts"]) for r in price.renderers
                  if r.name in ("buy", "sell"))
    assert 0 < markers <= len(fills)


def test_searching_trades_filters_the_table(runs_workbench, completed_run):
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)
    trades = viewer._trades.value
    short = int((trades["side"] == "SHORT").sum())

    viewer._trade_search.value_input = "short"

    assert 0 < short < len(trades)
    assert len(viewer._trades.value) == short
    assert set(viewer._trades.value["side"]) == {"SHORT"}


def test_trades_read_at_the_instrument_s_precision_with_money_in_its_currency(runs_workbench,
                                                                             completed_run):
    # Arrange: an AAPL run (prices with 2 decimals, whole shares), recorded in USD.
    results = runs_workbench.backtests.results(completed_run)
    first = results.positions.iloc[0]

    # Act
    viewer = ResultsViewer(workbench=runs_workbench, run_id=completed_run)

    # Assert
    _, trades, fills, orders = _tables(viewer)
    assert results.precisions() == (2, 0)
    assert trades.titles["pnl"] == "PnL (USD)" and trades.titles["entry_price"] == "Entry price"
    assert {"quantity", "entry_price", "exit_price", "pnl", "commission"} <= set(trades.formatters)
    assert {"quantity", "price", "commission"} <= set(fills.formatters)
    assert {"quantity", "filled_qty", "avg_px"} <= set(orders.formatters)
    expected = format_duration((first["closed"] - first["opened"]).total_seconds())
    assert trades.value["duration"].iloc[0] == expected
    assert "days" not in expected


def test_runs_recorded_without_precisions_infer_them_from_their_fills(runs_workbench,
                                                                      completed_run):
    # Arrange: a run as an older workbench recorded it (no precisions in its summary).
    results = runs_workbench.backtests.results(completed_run)
    older = replace(results, summary={"currency": "USD"}, fills=pd.DataFrame({
        "price": [1.05838, 1.058, 1.0579], "quantity": [100_000.0, 100_000.0, 250_000.0]}))

    # Act / Assert
    assert older.precisions() == (5, 0)


def test_a_run_chosen_on_a_later_page_turns_the_table_to_it(workbench, short_spec):
    # Arrange: ten runs, newest first, eight to a page.
    ids = [workbench.backtests.submit(short_spec(label=f"run {i}")) for i in range(10)]
    for run_id in ids:
        workbench.backtests.cancel(run_id, principal=COMPONENT_TESTER)

    # Act: open the oldest (as its link does): the table's last row.
    viewer = ResultsViewer(workbench=workbench, run_id=ids[0])

    # Assert: the table shows the second page, where that run's row is the selected one.
    table = _tables(viewer)[0]
    assert table.page == 2
    assert table.value.loc[table.selection[0], "run_id"] == ids[0]


def test_a_run_behind_the_newest_500_still_opens_and_stays_listed(workbench, short_spec):
    # Arrange: a completed run, then a 501-run sweep on top of it (stopped at once), as a
    # trader's link to yesterday's run meets today's big sweep
    from services.backtest.sweep import SweepSpec

    spec = short_spec(label="older run")
    run_id = workbench.backtests.submit(spec)
    assert workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S).status == "Completed"
    sweep_id = workbench.backtests.submit_sweep(SweepSpec(
        "ema_cross", spec.bar_type, {"fast_ema_period": list(range(2, 503)),
                                     "slow_ema_period": [600]}, start=spec.start, end=spec.end))
    workbench.backtests.stop_sweep(sweep_id)
    assert run_id not in {r.run_id for r in workbench.backtests.list_runs()}
    viewer = ResultsViewer(workbench=workbench)
    assert run_id not in viewer.param.run_id.objects

    # Act
    opened = viewer.open_run(run_id)

    # Assert: shown and listed, also after a refresh; a run that does not exist is refused
    assert opened and viewer.run_id == run_id and viewer.message == ""
    assert viewer.statistics["num_trades"] == len(workbench.backtests.results(run_id).positions)
    assert run_id in viewer.param.run_id.objects
    assert run_id in list(_tables(viewer)[0].value["run_id"])
    viewer.param.trigger("refresh")
    assert run_id in viewer.param.run_id.objects
    assert not viewer.open_run("20200101-000000-000000")
    assert viewer.run_id == run_id
    # The page opened without a run shows the newest completed one, behind the sweep too.
    fresh = ResultsViewer(workbench=workbench)
    assert fresh.open_latest() and fresh.run_id == run_id
    # And Compare offers it, though none of the newest 500 runs completed.
    assert run_id in RunComparison(workbench=workbench).param.run_ids.objects


def test_comparison_highlights_no_winner_where_the_figures_read_the_same(runs_workbench,
                                                                          completed_run):
    # Arrange: two runs whose best days differ only below the shown precision
    from components.report import metrics_comparison_html

    base = runs_workbench.backtests.results(completed_run)

    def run(run_id: str, best_day: float, worst_day: float):
        return replace(base, info=replace(base.info, run_id=run_id, label=run_id),
                       statistics={**base.statistics, "best_day": best_day,
                                   "worst_day": worst_day})

    # Act
    table = metrics_comparison_html([run("A", 0.00001, -0.0004), run("B", 0.00002, -0.0009)])

    # Assert: both best days read 0.00 %, so neither is marked; A's worst day is the better
    rows = {r.split("</td>")[0].split(": ")[-1]: r for r in table.split("<tr><td>")[1:]}
    assert rows["Best day"].count("0.00 %") == 2 and 'class="best"' not in rows["Best day"]
    assert '<td class="best">-0.04 %</td>' in rows["Worst day"]
