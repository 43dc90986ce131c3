"""SweepView and RunQueue driven through their parameters over real services (no browser)."""

from __future__ import annotations

import time

import pytest

from components import RunQueue, SweepView
from services.errors import PermissionDenied, RuntimeUnavailableError
from services.identity.principal import Principal
from tests.conftest import docker_with_engine_image, wait_for_status

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 240


def _settles(predicate, what: str, timeout: float = 20.0) -> None:
    """Wait for an update the live state's thread applies to a view (not served: no loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _small_sweep(view: SweepView) -> None:
    view.form.strategy, view.form.bar_type = "ema_cross", BTC_BARS
    view.form.start, view.form.end = "2024-03-04", "2024-03-05"
    view.form.values.fast_ema_period = "5,10"
    view.form.values.slow_ema_period = "30"


def test_before_any_sweep_the_menus_already_speak_in_titles(workbench):
    # Act
    view = SweepView(workbench=workbench)

    # Assert: what the Select widgets show (names) for the values the services take
    assert view.param.metric.names == {"Sharpe": "sharpe"}
    assert view.param.rank_by.names == {"Metric": "metric", "Smoothed": "smoothed"}
    choose_by = view.param.choose_by.names
    assert choose_by["Total return"] == "total_return" and choose_by["Sharpe"] == "sharpe"
    assert not set(choose_by) & set(choose_by.values())  # no field name shown as its own title


def test_sweep_view_runs_a_sweep_ranks_it_and_draws_a_heatmap(workbench):
    # Arrange: before any sweep, the page says how to start one and shows no empty tables.
    view = SweepView(workbench=workbench)
    assert not view._analysis.visible and "No sweeps yet" in view._summary.object
    _small_sweep(view)

    # Act
    view.param.trigger("submit")
    sweep_id = view.sweep_id
    info = workbench.backtests.wait_sweep(sweep_id, timeout=RUN_TIMEOUT_S)
    view.poll()

    # Assert: two completed runs; the best by the chosen metric is linked; a heatmap exists.
    assert sweep_id and "submitted: 2 runs" in view.message
    assert info.status == "Completed", [r.error for r in info.runs]
    board = workbench.backtests.leaderboard(sweep_id, "sharpe")
    # The live state's thread may still be ranking the last completed run.
    _settles(lambda: view.best_run == board["run_id"].iloc[0], "the view to rank both runs")
    assert f"./results?run={view.best_run}" in view._best.object
    assert list(view._leaderboard.value["run_id"]) == list(board["run_id"])
    # The ranked figure beside the status, the long run id last; parameters by their titles.
    columns = list(view._leaderboard.value.columns)
    assert columns[:3] == ["open", "status", "sharpe"] and columns[-1] == "run_id"
    assert view._leaderboard.titles["fast_ema_period"] == "Fast EMA period"
    assert "total_return" in view.param.metric.objects
    view.metric = "total_return"
    best_by_return = workbench.backtests.leaderboard(sweep_id, "total_return")["run_id"].iloc[0]
    assert view.best_run == best_by_return
    assert view.x == "fast_ema_period" and view.y == "slow_ema_period"
    (metric_map,) = view._heatmap.object.children  # one parameter varies: no stability map
    cells = metric_map.select_one({"name": "cells"}).data_source.data
    assert sorted(cells["x"]) == ["10", "5"] and list(cells["y"]) == ["30", "30"]
    by_fast = dict(zip(cells["x"], cells["value"], strict=True))
    returns = {str(r.parameters["fast_ema_period"]): r.total_return for r in info.runs}
    assert by_fast == pytest.approx(returns, rel=1e-12)
    # Menus, heatmap and best-run line speak in titles, not NautilusTrader field names.
    assert view._axis_menus["x"].options == {"Fast EMA period": "fast_ema_period",
                                             "Slow EMA period": "slow_ema_period"}
    assert view.param.metric.names["Total return"] == "total_return"
    assert metric_map.title.text == "Total return by Fast EMA period and Slow EMA period"
    assert metric_map.xaxis[0].axis_label == "Fast EMA period"
    assert view._best.object.startswith("Best by Total return: ")
    assert "No local stability" in view._stability.object
    assert view._queue.sweep_id == sweep_id and len(view._queue.runs) == 2
    assert view._analysis.visible

    # A view opened on the sweep keeps its heatmap axes when it is drawn (as a notebook
    # displays it): the menus show the axes it chose.
    shown = SweepView(workbench=workbench)
    shown.sweep_id = sweep_id
    shown.__panel__().get_root()
    assert (shown.x, shown._axis_menus["x"].value) == ("fast_ema_period", "fast_ema_period")


def test_sweep_view_shows_what_is_wrong_with_a_bad_sweep(workbench):
    view = SweepView(workbench=workbench)
    _small_sweep(view)
    view.form.values.fast_ema_period = "50..40"

    view.param.trigger("submit")

    assert "Fix these and run again" in view.message and "the range is empty" in view.message
    assert workbench.backtests.list_sweeps() == []


def test_sweep_view_offers_only_the_runtimes_that_work_now(workbench):
    """No Dask scheduler configured, no docker runtime attached: only local is offered, and
    the page says why the others are not, instead of failing on Run."""
    # Act
    view = SweepView(workbench=workbench)
    choice = view.runtime_choice

    # Assert
    assert choice.param.runtime.objects == ["local"] and choice.runtime == "local"
    notes = choice._notes.object
    assert "(`dask`) not offered: No Dask scheduler is configured" in notes
    assert "--dask-address" in notes
    assert "(`docker`) not offered:" in notes
    with pytest.raises(ValueError):
        choice.runtime = "docker"
    # The service refuses it as well (API, CLI), before anything is queued.
    _small_sweep(view)
    with pytest.raises(RuntimeUnavailableError, match="docker runtime is not attached"):
        workbench.backtests.submit_sweep(view.spec(), runtime="docker")
    assert workbench.backtests.list_runs() == []


def test_an_admin_attaches_the_docker_runtime_from_the_sweeps_page(workbench):
    # Arrange: Docker and the engine image are there, the runtime is not attached.
    docker_with_engine_image()
    view = SweepView(workbench=workbench)  # in a notebook: the local OS user, every role
    choice = view.runtime_choice
    docker = next(o for o in choice.options if o.name == "docker")
    assert (docker.available, docker.fix) == (False, "attach_docker")
    assert choice._fix_button.visible and choice._fix_button.name == "Attach docker runtime"

    # Act
    choice.param.trigger("fix")

    # Assert
    assert "docker runtime is attached" in choice.message, choice.message
    assert choice.param.runtime.objects == ["local", "docker"]
    assert not choice._fix_button.visible
    assert workbench.backtests.attached_runtime("docker") is not None
    (entry,) = workbench.audit.entries("engine.build_image")
    assert entry.outcome == "done" and "attached" in entry.detail


def test_a_missing_engine_image_offers_the_build_only_to_an_admin(workbench, monkeypatch):
    # Arrange: Docker answers, the image the runtime would use does not exist.
    docker_with_engine_image()
    monkeypatch.setenv("WORKBENCH_ENGINE_IMAGE", "nautilus-workbench-engine:runform-absent")
    researcher = Principal.user("rico", {"researcher"})  # may run sweeps, not build images

    # Act
    admin_view = SweepView(workbench=workbench)
    researcher_view = SweepView(workbench=workbench, principal=researcher)

    # Assert
    for view in (admin_view, researcher_view):
        docker = next(o for o in view.runtime_choice.options if o.name == "docker")
        assert (docker.available, docker.fix) == (False, "build_image")
        assert "nautilus-workbench-engine:runform-absent is not built yet" in docker.reason
    assert admin_view.runtime_choice._fix_button.visible
    assert admin_view.runtime_choice._fix_button.name == "Build engine image"
    assert not researcher_view.runtime_choice._fix_button.visible
    # The service refuses the build to them too, and audits the refusal.
    with pytest.raises(PermissionDenied):
        workbench.backtests.enable_docker_runtime(principal=researcher)
    (entry,) = workbench.audit.entries("engine.build_image")
    assert (entry.actor, entry.outcome) == ("rico", "refused")


def test_stopping_a_sweep_asks_first(workbench):
    # Arrange: a sweep of long runs.
    view = SweepView(workbench=workbench)
    _small_sweep(view)
    view.form.start, view.form.end = "2024-01-01", "2024-06-30"
    view.param.trigger("submit")
    sweep_id = view.sweep_id

    # Act
    view.param.trigger("stop")

    # Assert: nothing is cancelled until the user confirms.
    assert view.confirmation.pending and f"Stop sweep `{sweep_id}`?" in view.confirmation.summary
    assert workbench.backtests.repository.sweep_summary(sweep_id).count("Cancelled") == 0
    view.confirmation.param.trigger("confirm")
    summary = workbench.backtests.repository.sweep_summary(sweep_id)
    assert summary.count("Cancelled") == summary.runs == 2
    assert "2 runs cancelled" in view.message


def test_stop_sweep_is_offered_only_while_the_sweep_has_runs_to_stop(workbench):
    # Arrange: no sweep yet.
    view = SweepView(workbench=workbench)
    assert view._stop_button.disabled

    # Act: a sweep of long runs is submitted, then stopped.
    _small_sweep(view)
    view.form.start, view.form.end = "2024-01-01", "2024-06-30"
    view.param.trigger("submit")
    running = view._stop_button.disabled
    view.param.trigger("stop")
    view.confirmation.param.trigger("confirm")
    view.poll()

    # Assert
    assert running is False
    assert view._stop_button.disabled  # every run is cancelled: nothing left to stop


def test_run_queue_pauses_resumes_and_cancels_the_selected_run(workbench):
    # Arrange: a long run in flight.
    from services.backtest import BacktestSpec

    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01", end="2024-12-31",
        parameters={"fast_ema_period": 50, "slow_ema_period": 200}))
    wait_for_status(workbench, run_id, "Running")
    queue = RunQueue(workbench=workbench)
    assert queue.selected == run_id
    assert queue.runs.iloc[0]["status"] == "Running"

    # Act / Assert
    queue.param.trigger("pause")
    assert workbench.backtests.get(run_id).status == "Paused"
    assert queue.runs.iloc[0]["status"] == "Paused"
    assert queue._buttons["pause"].disabled and not queue._buttons["resume"].disabled
    queue.param.trigger("resume")
    assert workbench.backtests.get(run_id).status == "Running"
    queue.param.trigger("resume")
    assert "only a Paused run can be resumed" in queue.message
    queue.param.trigger("cancel")  # asks first
    assert queue.confirmation.pending and f"Cancel run `{run_id}` (Running)?" in \
        queue.confirmation.summary
    assert workbench.backtests.get(run_id).status == "Running"
    queue.confirmation.param.trigger("cancel")  # the user thinks again
    assert not queue.confirmation.pending
    assert workbench.backtests.get(run_id).status == "Running"
    queue.param.trigger("cancel")
    queue.confirmation.param.trigger("confirm")
    assert workbench.backtests.get(run_id).status == "Cancelled"
    assert queue.runs.iloc[0]["status"] == "Cancelled"
    assert queue._buttons["cancel"].disabled


def test_run_queue_shows_progress_of_a_running_run(workbench):
    from services.backtest import BacktestSpec

    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01", end="2024-12-31",
        parameters={"fast_ema_period": 50, "slow_ema_period": 200}))
    queue = RunQueue(workbench=workbench)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        queue.param.trigger("refresh")
        row = queue.runs.iloc[0]
        if row["events"] and row["sim_time"] and row["progress"] > 0:
            break
        time.sleep(0.2)
    workbench.backtests.cancel(run_id)

    assert row["run_id"] == run_id and row["status"] == "Running"
    assert 0 < row["progress"] < 100
    assert row["sim_time"].startswith("2024-") and int(row["events"].replace(",", "")) > 0
    assert row["memory"] > 50 and row["parameters"].startswith("fast_ema_period=50")


def test_the_leaderboard_reads_each_metric_as_the_cards_do():
    # Arrange
    import pandas as pd

    from components.sweep_view import board_formats

    board = pd.DataFrame({"open": [""], "run_id": ["r1"], "status": ["Completed"],
                          "fast_ema_period": [10], "sharpe": [4.516725],
                          "total_return": [0.001035], "num_trades": [116],
                          "expectancy": [-4.59], "smoothed": [3.7], "psr": [0.93]})

    # Act
    titles, formatters = board_formats(board, "sharpe")

    # Assert: ratios, percentages, counts and money each get their format; parameters none.
    code = {name: f.js_code for name, f in formatters.items() if hasattr(f, "js_code")}
    assert "rd(Number(v))" in code["sharpe"] and "rd(Number(v))" in code["smoothed"]
    assert "*100" in code["total_return"] and "*100" in code["psr"]
    assert "fx(v,0)" in code["num_trades"] and "fx(v,2)" in code["expectancy"]
    assert "fast_ema_period" not in formatters
    assert (titles["sharpe"], titles["total_return"], titles["num_trades"],
            titles["smoothed"]) == ("Sharpe", "Total return", "Trades", "Smoothed Sharpe")


def test_a_running_sweep_is_ranked_again_at_most_every_few_seconds(workbench):
    # Arrange: a finished two-run sweep on display, then summaries as a long sweep's would
    # come once a second, each with another run finished
    from dataclasses import replace

    from components.sweep_view import RERANK_S

    view = SweepView(workbench=workbench)
    _small_sweep(view)
    view.param.trigger("submit")
    workbench.backtests.wait_sweep(view.sweep_id, timeout=RUN_TIMEOUT_S)
    summary = workbench.backtests.repository.sweep_summary(view.sweep_id)

    def finished(done: int, of: int = 100):
        return replace(summary, counts=(("Completed", done), ("Running", of - done)))

    # Act / Assert: the first finished run ranks at once; the next ones within RERANK_S wait
    view.poll(finished(1))
    first = view._latest_ranking
    view.poll(finished(2))
    view.poll(finished(3))
    assert view._latest_ranking == first
    # ... until RERANK_S has passed since that ranking, then one ranking takes them all in
    view._ranked_at -= RERANK_S
    view.poll(finished(3))
    second = view._latest_ranking
    assert second > first
    # The last run finishing ranks at once, however soon after the one before
    view.poll(finished(100))
    assert view._latest_ranking > second
